package devlogs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opendus/opendus/devsvc/audit"
)

// The agreed paths of the upload on the internal and external listeners.
const (
	Path    = "/RequestHandler/logupload.upx"
	PathExt = "/RequestHandlerExt/logupload.upx"
)

// Defaults of Config.
const (
	DefaultMaxSize   = 1024000             // MaxLogFileSize, bytes
	DefaultRetention = 10 * 24 * time.Hour // LogCleanUpInterval
	DefaultMaxTotal  = 1 << 30             // all stored logs, bytes
	// DefaultReadTimeout is Config.ReadTimeout's default: 1,024,000
	// bytes at 8.5 KB/s.
	DefaultReadTimeout = 2 * time.Minute
)

// DefaultTypes and DefaultExtensions return the defaults of Config.Types
// (ValidLogFileTypes) and Config.Extensions (ValidLogFileExtensions).
func DefaultTypes() []string { return []string{"Watson", "CELog", "Config"} }

// DefaultExtensions: see DefaultTypes.
func DefaultExtensions() []string {
	return []string{".dmp", ".clg", ".clg2", ".bak", ".kdmp", ".dat", ".bin", ".cat", ".xml", ".txt", ".hex"}
}

// tempAge is how old a temporary file must be before Clean removes it.
const tempAge = time.Hour

// tsLayout is the time in stored and temporary names.
const tsLayout = "20060102T150405.000Z"

const tempPrefix = ".tmp-"

// Config configures the upload handler. The zero value, with Dir set, is
// the original service's defaults.
type Config struct {
	// Dir is the folder of uploaded logs, DATA/Logs/Client; each type has
	// a folder below it, created by NewHandler. Required.
	Dir string

	// MaxSize is the largest upload in bytes (MaxLogFileSize). Zero means
	// DefaultMaxSize, 1,024,000.
	MaxSize int64

	// Types are the accepted log types and the names of their folders
	// (ValidLogFileTypes). nil means DefaultTypes: Watson, CELog, Config.
	Types []string

	// Extensions are the accepted file extensions, with or without the
	// dot, compared without regard to case (ValidLogFileExtensions). nil
	// means DefaultExtensions.
	Extensions []string

	// Retention is how long an upload is kept (LogCleanUpInterval). Zero
	// means DefaultRetention, 10 days.
	Retention time.Duration

	// MaxTotal bounds the bytes of all stored logs, uploads in progress
	// included: the listener is anonymous, so without it devices (or
	// anyone on the LAN) could fill the disk within the retention time.
	// Uploads beyond it are refused with 507 until Clean removes old
	// logs. Zero means DefaultMaxTotal, 1 GiB.
	MaxTotal int64

	// Floor, if set, keeps room on the disk for what matters more than
	// logs (the device inventory): an upload is refused with 507 when it
	// would leave less free space than the floor, counting what the
	// uploads in progress may still write. nil means none: only MaxTotal
	// bounds the logs.
	Floor Floor

	// MaxPerAddress bounds the bytes the uploads in progress from one
	// address (IPv4, or an IPv6 /64) reserve at once: an upload reserves
	// its Content-Length (MaxSize when chunked) until it ends, so without
	// it one host that starts uploads and stalls could reserve all of
	// MaxTotal and have every other upload refused 507. An upload past it
	// is refused 429 with Retry-After. Devices behind one NAT or proxy
	// share an address. Zero means MaxTotal/16, and it is at least
	// MaxSize.
	MaxPerAddress int64

	// ReadTimeout bounds the time an upload's body may take to arrive,
	// from when the handler starts. A body not complete by then is
	// refused 408 (ErrStalled), its connection closed and its reservation
	// freed. Zero means DefaultReadTimeout, 2 minutes.
	ReadTimeout time.Duration

	// Now is the clock for stored names and retention. nil means time.Now.
	Now func() time.Time

	// Logger receives one record per upload stored or refused, and
	// storage failures. nil discards.
	Logger *slog.Logger
}

// Reasons an upload is refused. The handler answers with their text.
var (
	// ErrType is returned when the type parameter is missing or not one of
	// Config.Types.
	ErrType = errors.New("unknown or missing log type")
	// ErrName is returned when the name parameter is missing or nothing
	// usable remains of it.
	ErrName = errors.New("missing or unusable file name")
	// ErrExtension is returned when the name's extension is not one of
	// Config.Extensions.
	ErrExtension = errors.New("file extension not accepted")
	// ErrMAC is returned when the mac parameter is not a MAC address.
	ErrMAC = errors.New("mac is not a MAC address")
	// ErrQuery is returned when the query does not parse or repeats a
	// parameter.
	ErrQuery = errors.New("malformed query")
	// ErrEmpty is returned when the body is empty.
	ErrEmpty = errors.New("empty upload")
	// ErrTooLarge is returned when the body exceeds Config.MaxSize.
	ErrTooLarge = errors.New("upload larger than the maximum log file size")
	// ErrMediaType is returned for multipart bodies.
	ErrMediaType = errors.New("send the file as the raw body, not multipart")
	// ErrInterrupted is returned when the body could not be read to its end.
	ErrInterrupted = errors.New("upload interrupted")
	// ErrFull is returned when the upload would take the stored logs past
	// Config.MaxTotal.
	ErrFull = errors.New("device log storage is full; uploads resume as old logs expire")
	// ErrLowSpace is returned when the upload would leave less free disk
	// space than Config.Floor keeps, or the disk is full.
	ErrLowSpace = errors.New("the server's disk is nearly full; uploads resume when space is freed")
	// ErrAddressBusy is returned when the uploads in progress from the
	// client's address would reserve more than Config.MaxPerAddress.
	ErrAddressBusy = errors.New("too many uploads in progress from this address; retry when they end")
	// ErrStalled is returned when the body did not arrive within
	// Config.ReadTimeout.
	ErrStalled = errors.New("upload stalled: the body did not arrive in time")
)

// Floor is a floor of free disk space (*freespace.Floor is one).
type Floor interface {
	// Room returns how many bytes may be written before the free space
	// falls below the floor; zero or less when it is below already.
	Room() (int64, error)
}

// retryAfter is the Retry-After of an upload refused ErrAddressBusy, in
// seconds.
const retryAfter = "60"

// Handler stores uploaded device logs. It is safe for concurrent use.
type Handler struct {
	cfg  Config // Dir, Floor, Now and Logger; the limits are lim's
	lim  atomic.Pointer[limits]
	root *os.Root
	now  func() time.Time
	log  *slog.Logger
	used atomic.Int64 // bytes stored and reserved by uploads in progress
	// writing is the bytes reserved by the uploads in progress: what they
	// may still write, which the free space does not show yet.
	writing atomic.Int64

	mu     sync.Mutex
	byAddr map[string]int64 // bytes reserved by the uploads in progress per address

	// folders are the type folders of every type accepted since
	// NewHandler, which Clean keeps cleaning after Reconfigure drops a
	// type; guarded by mu.
	folders []string

	stats stats

	reserved func() // tests: called after an upload reserved its bytes
}

// limits are the part of Config that Reconfigure changes, with the types
// and extensions ready to look up. A limits is never changed once made.
type limits struct {
	cfg   Config
	types map[string]string // lower-case type -> folder name
	exts  map[string]bool   // lower-case ".ext"
}

// newLimits fills cfg's defaults and checks its types and extensions.
func newLimits(cfg Config) (*limits, error) {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Types == nil {
		cfg.Types = DefaultTypes()
	}
	if cfg.Extensions == nil {
		cfg.Extensions = DefaultExtensions()
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxTotal <= 0 {
		cfg.MaxTotal = DefaultMaxTotal
	}
	if cfg.MaxPerAddress <= 0 {
		cfg.MaxPerAddress = cfg.MaxTotal / 16
	}
	cfg.MaxPerAddress = max(cfg.MaxPerAddress, cfg.MaxSize)
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	l := &limits{cfg: cfg, types: map[string]string{}, exts: map[string]bool{}}
	for _, t := range cfg.Types {
		if s, err := sanitizeName(t); err != nil || s != t || strings.ContainsAny(t, ".") {
			return nil, fmt.Errorf("devlogs: log type %q cannot name a folder", t)
		}
		l.types[strings.ToLower(t)] = t
	}
	for _, e := range cfg.Extensions {
		e = strings.ToLower(e)
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		if len(e) < 2 || strings.ContainsAny(e[1:], "./\\") {
			return nil, fmt.Errorf("devlogs: bad extension %q", e)
		}
		l.exts[e] = true
	}
	return l, nil
}

// limits returns the limits in force.
func (h *Handler) limits() *limits { return h.lim.Load() }

// NewHandler returns the upload handler, creating Dir and a folder per
// type. Close it when done.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Dir == "" {
		return nil, errors.New("devlogs: Config.Dir is empty")
	}
	lim, err := newLimits(cfg)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: lim.cfg, now: cfg.Now, log: cfg.Logger, byAddr: map[string]int64{}}
	h.lim.Store(lim)
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("devlogs: %w", err)
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("devlogs: %w", err)
	}
	h.root = root
	if err := h.mkdirs(lim); err != nil {
		root.Close()
		return nil, err
	}
	used, err := h.storedBytes()
	if err != nil {
		root.Close()
		return nil, err
	}
	h.used.Store(used)
	return h, nil
}

// mkdirs creates the folders of l's types and adds them to h.folders.
func (h *Handler) mkdirs(l *limits) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range l.cfg.Types {
		t = l.types[strings.ToLower(t)]
		if slices.Contains(h.folders, t) {
			continue
		}
		if err := h.root.Mkdir(t, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("devlogs: %w", err)
		}
		h.folders = append(h.folders, t)
	}
	return nil
}

// typeFolders returns the folders of the types accepted since NewHandler.
func (h *Handler) typeFolders() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.folders)
}

// Reconfigure applies cfg's limits (MaxSize, Types, Extensions,
// Retention, MaxTotal, MaxPerAddress, ReadTimeout) to the uploads that
// start from now on, with the defaults of NewHandler for zero values; the
// uploads in progress keep theirs. Dir, Floor, Now and Logger are kept.
// What is stored and reserved stays counted: a MaxTotal below what the
// stored logs take refuses uploads until Clean makes room. A new type's
// folder is created; the folders of types no longer accepted keep being
// cleaned. On error nothing changes.
func (h *Handler) Reconfigure(cfg Config) error {
	cfg.Dir, cfg.Floor, cfg.Now, cfg.Logger = h.cfg.Dir, h.cfg.Floor, h.cfg.Now, h.cfg.Logger
	l, err := newLimits(cfg)
	if err != nil {
		return err
	}
	if err := h.mkdirs(l); err != nil {
		return err
	}
	h.lim.Store(l)
	return nil
}

// storedBytes adds up the sizes of the stored logs.
func (h *Handler) storedBytes() (int64, error) {
	var n int64
	for _, typ := range h.typeFolders() {
		err := fs.WalkDir(h.root.FS(), typ, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// Temporary files are left by a crash: Clean removes them.
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), tempPrefix) {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				n += fi.Size()
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("devlogs: measuring the stored logs: %w", err)
		}
	}
	return n, nil
}

// reserve takes n bytes of MaxTotal, and of addr's MaxPerAddress, for an
// upload: ErrAddressBusy or ErrFull when they are not free. Give back
// what the upload does not keep with unreserve.
func (h *Handler) reserve(addr string, n int64) error {
	lim := h.limits().cfg
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.byAddr[addr]; r+n > lim.MaxPerAddress {
		return fmt.Errorf("%w (%d of %d bytes reserved by %s)", ErrAddressBusy, r, lim.MaxPerAddress, addr)
	}
	for {
		u := h.used.Load()
		if u+n > lim.MaxTotal {
			return fmt.Errorf("%w (%d of %d bytes used)", ErrFull, u, lim.MaxTotal)
		}
		if h.used.CompareAndSwap(u, u+n) {
			break
		}
	}
	h.byAddr[addr] += n
	return nil
}

// unreserve ends an upload's reservation of n bytes, of which kept stay
// used by the stored file.
func (h *Handler) unreserve(addr string, n, kept int64) {
	h.used.Add(kept - n)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byAddr[addr] -= n; h.byAddr[addr] <= 0 {
		delete(h.byAddr, addr)
	}
}

// Reserved returns the bytes reserved by the uploads in progress from
// addr (an IP address, or an IPv6 /64 as addressKey writes it).
func (h *Handler) Reserved(addr string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byAddr[addressKey(addr)]
}

// addressKey is the address reservations are counted by: the IP
// address of remote (host or host:port), or for IPv6 its /64.
func addressKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Used returns the bytes the stored logs and the uploads in progress take.
func (h *Handler) Used() int64 { return h.used.Load() }

// Close releases the handler's directory handle.
func (h *Handler) Close() error { return h.root.Close() }

// Refusals are the reasons an upload is refused, as Stats counts them.
var Refusals = []string{"method", "invalid", "too_large", "media_type", "storage_full", "low_space", "address_busy", "stalled", "error"}

// refusal returns the index in Refusals of why err refused an upload.
func refusal(err error) int {
	switch {
	case errors.Is(err, errMethod):
		return 0
	case errors.Is(err, ErrTooLarge):
		return 2
	case errors.Is(err, ErrMediaType):
		return 3
	case errors.Is(err, ErrFull):
		return 4
	case errors.Is(err, ErrLowSpace):
		return 5
	case errors.Is(err, ErrAddressBusy):
		return 6
	case errors.Is(err, ErrStalled):
		return 7
	case statusOf(err) == http.StatusBadRequest:
		return 1
	}
	return 8
}

var errMethod = errors.New("method not allowed")

// stats counts the uploads, without a lock.
type stats struct {
	stored, bytes atomic.Uint64
	refused       [9]atomic.Uint64 // by Refusals
}

// Stats are the counts of uploads since NewHandler, for metrics.
type Stats struct {
	// Stored is the uploads stored, StoredBytes their bytes.
	Stored, StoredBytes uint64
	// Refused counts the uploads refused, by reason: every one of
	// Refusals is a key.
	Refused map[string]uint64
}

// Stats returns the counts so far; safe to call at any time.
func (h *Handler) Stats() Stats {
	st := Stats{Stored: h.stats.stored.Load(), StoredBytes: h.stats.bytes.Load(), Refused: make(map[string]uint64, len(Refusals))}
	for i, r := range Refusals {
		st.Refused[r] = h.stats.refused[i].Load()
	}
	return st
}

// ServeHTTP handles one upload; see the package comment.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.stats.refused[refusal(errMethod)].Add(1)
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Connection", "close")
		reply(w, http.StatusMethodNotAllowed, "method not allowed: upload with POST")
		return
	}
	stored, up, n, err := h.upload(w, r)
	if err != nil {
		h.stats.refused[refusal(err)].Add(1)
		// The body was not read to its end: close the connection rather
		// than have the server wait for the rest of it.
		w.Header().Set("Connection", "close")
		code := statusOf(err)
		attrs := []any{"remote", r.RemoteAddr, "type", up.typ, "name", up.name, "mac", up.mac, "err", err}
		switch {
		case errors.Is(err, ErrLowSpace):
			// The floor logs when the disk crosses it, once each way;
			// the device is not told how much space is free.
			h.log.Info("devlogs: upload refused: the disk is nearly full (min_free_space)", attrs...)
			reply(w, code, ErrLowSpace.Error())
		case code == http.StatusInsufficientStorage:
			// Before the 5xx case: 507 is one, but the device is told
			// why (not how full), so it stops retrying at once.
			h.log.Warn("devlogs: upload refused: the device log storage is full (max_log_storage)", attrs...)
			reply(w, code, ErrFull.Error())
		case code >= 500:
			h.log.Error("devlogs: upload not stored", attrs...)
			reply(w, code, "the log could not be stored; try again later")
		case code == http.StatusTooManyRequests:
			h.log.Info("devlogs: upload refused: the address's uploads in progress reserve max_log_upload_per_address", attrs...)
			w.Header().Set("Retry-After", retryAfter)
			reply(w, code, err.Error())
		case code == http.StatusRequestTimeout:
			h.log.Warn("devlogs: upload dropped: its body stalled; its reservation is freed", attrs...)
			reply(w, code, err.Error())
		default:
			h.log.Info("devlogs: upload refused", attrs...)
			reply(w, code, err.Error())
		}
		return
	}
	h.stats.stored.Add(1)
	h.stats.bytes.Add(uint64(n))
	h.log.Info("devlogs: upload stored", "remote", r.RemoteAddr, "mac", up.mac, "type", up.typ, "stored", stored)
	reply(w, http.StatusCreated, stored)
}

// statusOf maps an upload error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrFull), errors.Is(err, ErrLowSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrAddressBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrStalled):
		return http.StatusRequestTimeout
	case errors.Is(err, ErrType), errors.Is(err, ErrName), errors.Is(err, ErrExtension), errors.Is(err, ErrMAC),
		errors.Is(err, ErrQuery), errors.Is(err, ErrEmpty), errors.Is(err, ErrInterrupted):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// upload is a parsed upload request.
type upload struct {
	typ  string // folder name
	name string // sanitised name
	mac  string // 12 lower-case hex digits, or ""
}

// upload stores the request's body and returns its stored path,
// "<type>/<name>", and its length.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) (string, upload, int64, error) {
	lim := h.limits()
	up, err := h.parse(lim, r.URL.RawQuery)
	if err != nil {
		return "", up, 0, err
	}
	if up.mac != "" {
		audit.SetDevice(r.Context(), up.mac)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(mt, "multipart/") {
			return "", up, 0, ErrMediaType
		}
	}
	if r.ContentLength > lim.cfg.MaxSize {
		return "", up, 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, lim.cfg.MaxSize)
	}
	// Reserve the most the body may take; the unused part is given back.
	reserved := lim.cfg.MaxSize
	if r.ContentLength >= 0 {
		reserved = r.ContentLength
	}
	addr := addressKey(r.RemoteAddr)
	if err := h.reserve(addr, reserved); err != nil {
		return "", up, 0, err
	}
	var kept int64
	defer func() { h.unreserve(addr, reserved, kept) }()
	if err := h.roomFor(reserved); err != nil {
		return "", up, 0, err
	}
	defer h.writing.Add(-reserved)
	if h.reserved != nil {
		h.reserved()
	}
	// The deadline stays when the body breaks off, so that the server
	// does not wait for the rest either and closes the connection.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(lim.cfg.ReadTimeout))
	who := up.mac
	if who == "" {
		who = remoteName(r.RemoteAddr)
	}
	now := h.now().UTC()
	ts := now.Format(tsLayout)

	tmp, f, err := h.createTemp(up.typ, ts)
	if err != nil {
		return "", up, 0, err
	}
	committed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !committed {
			h.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, reserved))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", up, 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, lim.cfg.MaxSize)
		}
		if errors.Is(err, syscall.ENOSPC) {
			return "", up, 0, fmt.Errorf("%w: writing %s: %v", ErrLowSpace, tmp, err)
		}
		if errors.Is(err, fs.ErrClosed) || isWriteErr(f, err) {
			return "", up, 0, fmt.Errorf("devlogs: writing %s: %w", tmp, err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", up, 0, fmt.Errorf("%w: %d bytes within %v", ErrStalled, n, lim.cfg.ReadTimeout)
		}
		return "", up, 0, fmt.Errorf("%w: %v", ErrInterrupted, err)
	}
	rc.SetReadDeadline(time.Time{})
	if n == 0 {
		return "", up, 0, ErrEmpty
	}
	if err := f.Sync(); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return "", up, 0, fmt.Errorf("%w: %s: %v", ErrLowSpace, tmp, err)
		}
		return "", up, 0, fmt.Errorf("devlogs: %s: %w", tmp, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", up, 0, fmt.Errorf("devlogs: %s: %w", tmp, err)
	}
	stored, err := h.link(tmp, up.typ, who+"-"+ts+"-", up.name)
	if err != nil {
		return "", up, 0, err
	}
	committed = true
	kept = n
	if err := h.root.Remove(tmp); err != nil {
		h.log.Warn("devlogs: removing the temporary file", "err", err)
	}
	if err := h.syncDir(up.typ); err != nil {
		return "", up, 0, err
	}
	return stored, up, n, nil
}

// roomFor takes n bytes of the room above Config.Floor for an upload, or
// returns ErrLowSpace. What the uploads in progress have reserved counts as
// taken, though part of it is on the disk already: the floor errs on the
// side of the space it keeps. On success the caller gives the n bytes back
// (writing.Add(-n)) when the upload ends.
func (h *Handler) roomFor(n int64) error {
	if h.cfg.Floor == nil {
		h.writing.Add(n)
		return nil
	}
	room, err := h.cfg.Floor.Room()
	if err != nil {
		return fmt.Errorf("devlogs: measuring free disk space: %w", err)
	}
	if w := h.writing.Add(n); w > room {
		h.writing.Add(-n)
		return fmt.Errorf("%w (%d bytes may be written above min_free_space, uploads in progress may write %d)", ErrLowSpace, max(room, 0), w-n)
	}
	return nil
}

// isWriteErr reports whether err came from writing f rather than reading
// the request. io.Copy does not say; a write error is an *fs.PathError on
// f's name.
func isWriteErr(f *os.File, err error) bool {
	pe, ok := errors.AsType[*fs.PathError](err)
	return ok && pe.Path == f.Name()
}

// createTemp creates a new temporary file in the type's folder.
func (h *Handler) createTemp(typ, ts string) (string, *os.File, error) {
	for range 5 {
		var rnd [8]byte
		rand.Read(rnd[:])
		name := typ + "/" + tempPrefix + ts + "-" + hex.EncodeToString(rnd[:])
		f, err := h.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("devlogs: %w", err)
		}
		return name, f, nil
	}
	return "", nil, errors.New("devlogs: could not create a temporary file")
}

// maxCollisions bounds the search for a free stored name.
const maxCollisions = 1000

// link gives tmp its stored name, prefix+name, or prefix+"N-"+name for the
// first N from 2 that is free, and returns "<typ>/<stored name>".
func (h *Handler) link(tmp, typ, prefix, name string) (string, error) {
	for i := 1; i <= maxCollisions; i++ {
		stored := prefix + name
		if i > 1 {
			stored = prefix + strconv.Itoa(i) + "-" + name
		}
		err := h.root.Link(tmp, typ+"/"+stored)
		if err == nil {
			return typ + "/" + stored, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("devlogs: %w", err)
		}
	}
	return "", fmt.Errorf("devlogs: no free name for %s%s", prefix, name)
}

// syncDir fsyncs the type's folder, making the new name durable.
func (h *Handler) syncDir(typ string) error {
	d, err := h.root.Open(typ)
	if err != nil {
		return fmt.Errorf("devlogs: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("devlogs: fsync %s: %w", typ, err)
	}
	return nil
}

// remoteName returns the client's IP address for a stored name.
func remoteName(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	var b strings.Builder
	for _, c := range []byte(host) {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'z', c == '.':
			b.WriteByte(c)
		case 'A' <= c && c <= 'F':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 45 {
			break
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// Clean removes the uploads stored more than Retention before now, and
// temporary files more than an hour old. It satisfies audit.Cleaner.
func (h *Handler) Clean(now time.Time) error {
	var errs []error
	retention := h.limits().cfg.Retention
	for _, typ := range h.typeFolders() {
		d, err := h.root.Open(typ)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("devlogs: %w", err))
			continue
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("devlogs: %s: %w", typ, err))
		}
		for _, name := range names {
			t, temp, ok := storedTime(name)
			if !ok {
				continue
			}
			age := retention
			if temp {
				age = tempAge
			}
			if now.Sub(t) <= age {
				continue
			}
			p := typ + "/" + name
			fi, err := h.root.Lstat(p)
			if err != nil {
				continue
			}
			if err := h.root.Remove(p); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("devlogs: %w", err))
				}
				continue
			}
			if fi.Mode().IsRegular() && !temp {
				// A temporary file's bytes are reserved by its upload,
				// or it was left by a crash before this handler counted
				// it among the stored ones.
				h.used.Add(-fi.Size())
			}
		}
	}
	return errors.Join(errs...)
}

// storedTime returns the time in a stored or temporary name, and whether
// it is a temporary one.
func storedTime(name string) (t time.Time, temp, ok bool) {
	rest, temp := strings.CutPrefix(name, tempPrefix)
	if !temp {
		_, rest, ok = strings.Cut(name, "-")
		if !ok {
			return t, false, false
		}
	}
	ts, _, ok := strings.Cut(rest, "-")
	if !ok {
		return t, false, false
	}
	t, err := time.Parse(tsLayout, ts)
	return t, temp, err == nil
}
