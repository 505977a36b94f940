package deviceapi

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/audit"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
)

// Defaults of Config.
const (
	DefaultCheckInterval = 24 * time.Hour
	DefaultCheckJitter   = 2 * time.Hour
	DefaultRetryAfter    = time.Minute
	DefaultMaxInFlight   = 1024
	DefaultBodyTimeout   = 10 * time.Second
	DefaultDownloadStall = time.Minute
	DefaultLogEvery      = time.Minute
)

// ErrNoUser is returned (and answered 403) when a request reaches the
// external handler without a user signed in through NTLM: outside the
// firewall only devices with a signed-in user are served.
var ErrNoUser = errors.New("the external service serves only devices with a signed-in user (NTLM)")

// errTooLarge is answered 413.
var errTooLarge = fmt.Errorf("the body is larger than %d bytes", deviceproto.MaxBodyBytes)

// errBodyTimeout is answered 408, and the connection closed.
var errBodyTimeout = errors.New("the body did not arrive in time")

// Store is what the handlers need of the store; *store.Store is one.
type Store interface {
	Catalog() *store.Catalog
	RecordCheckIn(ctx context.Context, d firmware.Device) error
	Report(ctx context.Context, r store.Report) error
	OpenFile(id firmware.Identity, v firmware.Version, name string) (*os.File, firmware.Image, error)
}

// Schedule tells when an admin has scheduled the approval of an identity's
// pending version. Next returns that time and true, or false when nothing is
// scheduled. A device whose next check would come later is told to check at
// that time instead (plus its jitter).
type Schedule interface {
	Next(id firmware.Identity) (time.Time, bool)
}

// Config configures the handlers. The zero value works: devices are given
// URLs on the host they asked for, check every 24 hours spread over two
// hours, and at most 1024 check-ins and reports are handled at once.
type Config struct {
	// InternalURL and ExternalURL are the service's base URLs
	// ("https://ucupdates-r2.contoso.com/"); the file URLs of an answer are
	// built on them. Empty: the handler that answers uses the request's
	// Host, and the other location's URL is left out.
	InternalURL, ExternalURL string
	// MovedInternalURL and MovedExternalURL, when set, are the new base
	// URLs of a service that has moved ("https://dus2.contoso.com/").
	// Every answer then carries the new check-in URLs (the base and
	// RequestHandler/ucdevice.upx or RequestHandlerExt/ucdevice.upx, as
	// provisioning gives them), which devices store in place of the
	// provisioned ones and use from their next check on. A URL that
	// already ends in ".upx" is taken as the check-in URL itself.
	MovedInternalURL, MovedExternalURL string
	// AltInternalURL and AltExternalURL, when set, are the base URLs of
	// another service that holds the same files (a replica's primary):
	// every offer names the files there too, as the alternative URLs
	// (InternalURLAlt, ExternalURLAlt) a device falls back to when a
	// download from this service fails.
	AltInternalURL, AltExternalURL string
	// Mirror, when set, may send a device elsewhere for an update's files:
	// given the device's address, the listener it came through and the
	// offered update, it returns the base URLs of a service near the
	// device that holds the update (its site's replica) and true. The
	// offer then names the files there, with this service's own URLs as
	// the alternatives. It is asked at every offer: it must not block.
	Mirror func(addr netip.Addr, loc firmware.Location, u firmware.Update) (internalBase, externalBase string, ok bool)

	// CheckInterval is how often devices check; default 24h.
	CheckInterval time.Duration
	// CheckJitter spreads next checks: a device checks after CheckInterval
	// plus an offset in [-CheckJitter/2, CheckJitter/2) fixed by a hash of
	// its MAC (or serial), so a fleet switched on at once spreads out and
	// each device keeps a steady rhythm. The spread is at most
	// CheckInterval. Default 2h; negative means no spread.
	CheckJitter time.Duration
	// Schedule, if set, is asked for scheduled approvals; nil means none.
	Schedule Schedule

	// MaxInFlight bounds the check-ins and status reports handled at once
	// (both handlers together); more are answered 503 with Retry-After.
	// Default 1024. Downloads are not counted.
	MaxInFlight int
	// RetryAfter is the base of the Retry-After a shed request gets; each
	// device is told a value in [RetryAfter, 2*RetryAfter) from a hash of
	// its key or address. Default 1 minute.
	RetryAfter time.Duration

	// BodyTimeout bounds the time a check-in's or a report's body may
	// take to arrive once its headers are read. The body is read before
	// the request takes one of the MaxInFlight slots, so a peer that
	// stalls holds no slot; one whose body is not complete in time is
	// answered 408 and its connection closed (on HTTP/2 its stream is
	// reset and the connection closed once its other streams end).
	// Default 10 s: a body is at most 64 KiB.
	BodyTimeout time.Duration
	// DownloadStall is how long a download may make no progress (no part
	// of the file taken by the connection) before it is dropped. A slow
	// link that keeps moving is served however long the file takes.
	// Default 1 minute.
	DownloadStall time.Duration
	// LogEvery is the least time between two log records about requests
	// shed (503) or dropped for a stalled body or download; each record
	// counts those since the one before. Stats counts every one. Default
	// 1 minute.
	LogEvery time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one record per refused or failed request and per
	// offer; nil discards.
	Logger *slog.Logger
}

// Server holds the device handlers' shared state: the store, the
// configuration and the in-flight limiter. Its handlers are safe for
// concurrent use.
type Server struct {
	st       Store
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	inflight chan struct{}
	bufs     sync.Pool // *[]byte, bodies and answers
	copyBufs sync.Pool // *[]byte of copyBufferSize, file copies
	internal http.Handler
	external http.Handler
	// movedInt and movedExt are the check-in URLs of a moved service.
	movedInt, movedExt string
	// shedLog, bodyLog and stallLog count and log (rate-limited) the
	// requests shed, the bodies and the downloads that stalled.
	shedLog, bodyLog, stallLog *eventLog
}

// Stats are the counts of requests the handlers refused for load or
// dropped for stalling, since New.
type Stats struct {
	// Shed is the check-ins and reports answered 503 busy: more than
	// MaxInFlight at once, or the inventory queue full.
	Shed uint64
	// BodyTimeouts is the check-ins and reports whose body did not arrive
	// within BodyTimeout (answered 408, connection closed).
	BodyTimeouts uint64
	// DownloadsStalled is the downloads dropped after DownloadStall
	// without progress.
	DownloadsStalled uint64
}

// Stats returns the counts so far; safe to call at any time.
func (s *Server) Stats() Stats {
	return Stats{Shed: s.shedLog.Total(), BodyTimeouts: s.bodyLog.Total(), DownloadsStalled: s.stallLog.Total()}
}

// New returns the device handlers over st.
func New(st Store, cfg Config) *Server {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	switch {
	case cfg.CheckJitter == 0:
		cfg.CheckJitter = DefaultCheckJitter
	case cfg.CheckJitter < 0:
		cfg.CheckJitter = 0
	}
	cfg.CheckJitter = min(cfg.CheckJitter, cfg.CheckInterval)
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.DownloadStall <= 0 {
		cfg.DownloadStall = DefaultDownloadStall
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	s := &Server{st: st, cfg: cfg, log: cfg.Logger, now: cfg.Now, inflight: make(chan struct{}, cfg.MaxInFlight)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.shedLog = newEventLog(s.log, slog.LevelWarn, "shedding load: answered 503 busy (too many check-ins and reports at once, or the inventory queue full)", cfg.LogEvery, s.now)
	s.bodyLog = newEventLog(s.log, slog.LevelWarn, "dropped requests whose body stalled: answered 408 and closed their connections", cfg.LogEvery, s.now)
	s.stallLog = newEventLog(s.log, slog.LevelWarn, "dropped downloads that made no progress", cfg.LogEvery, s.now)
	s.movedInt, s.movedExt = checkInURL(cfg.MovedInternalURL, deviceproto.CheckInPath), checkInURL(cfg.MovedExternalURL, deviceproto.CheckInPathExt)
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.copyBufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	s.internal = &listener{s: s, loc: firmware.Internal, checkIn: deviceproto.CheckInPath, status: deviceproto.StatusPath, files: deviceproto.FilesPrefix,
		cacheControl: []string{"public, max-age=31536000, immutable"}}
	s.external = &listener{s: s, loc: firmware.External, checkIn: deviceproto.CheckInPathExt, status: deviceproto.StatusPathExt, files: deviceproto.FilesPrefixExt,
		cacheControl: []string{"private, max-age=31536000, immutable"}}
	return s
}

// Internal returns the handler of the internal (LAN) listener: anonymous
// check-ins and reports under /RequestHandler/, files under
// /DeviceUpdateFiles_Int/.
func (s *Server) Internal() http.Handler { return s.internal }

// External returns the handler of the external (edge) listener:
// /RequestHandlerExt/ and /DeviceUpdateFiles_Ext/. It must be wrapped by
// ntlm.Acceptor.Require; a request without an NTLM user is refused 403
// (ErrNoUser).
func (s *Server) External() http.Handler { return s.external }

// listener is the handler of one listener; its location is fixed.
type listener struct {
	s                      *Server
	loc                    firmware.Location
	checkIn, status, files string
	cacheControl           []string // of files
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == l.checkIn:
		l.serveCheckIn(w, r)
	case p == l.status:
		l.serveStatus(w, r)
	case strings.HasPrefix(p, l.files):
		l.serveFile(w, r)
	default:
		l.s.fail(w, r, "", fmt.Errorf("%w: no such endpoint %s", store.ErrNotFound, p))
	}
}

// user returns the user a request counts as signed in with: on the
// external listener the NTLM user (required), inside what the device says.
func (l *listener) user(r *http.Request, said string) (string, error) {
	if l.loc != firmware.External {
		return said, nil
	}
	u, ok := ntlm.UserFrom(r.Context())
	if !ok || u == "" {
		return "", ErrNoUser
	}
	return u, nil
}

// readBody reads a POST body of at most deviceproto.MaxBodyBytes into a
// pooled buffer, under a read deadline BodyTimeout away; release it with
// s.bufs.Put. The deadline is real time, whatever Config.Now says: the
// network enforces it. It is lifted once the whole body is read, so that
// it cannot fire while the request is handled; it stays when the body
// broke off, so that the server does not wait for the rest of it either
// and closes the connection.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, errMethod
	}
	if r.ContentLength > deviceproto.MaxBodyBytes {
		// Not read: close rather than have the server wait for it.
		w.Header().Set("Connection", "close")
		return nil, errTooLarge
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	bp := s.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	body := http.MaxBytesReader(w, r.Body, deviceproto.MaxBodyBytes)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			rc.SetReadDeadline(time.Time{})
			break
		}
		if err != nil {
			*bp = b
			s.bufs.Put(bp)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				w.Header().Set("Connection", "close")
				return nil, errTooLarge
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, fmt.Errorf("%w: %d bytes within %v", errBodyTimeout, len(b), s.cfg.BodyTimeout)
			}
			return nil, fmt.Errorf("%w: reading the body: %w", errClient, err)
		}
	}
	*bp = b
	return bp, nil
}

var (
	errMethod = errors.New("method not allowed")
	errClient = errors.New("client error")
)

// acquire takes an in-flight slot; false when none is free.
func (s *Server) acquire() bool {
	select {
	case s.inflight <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) release() { <-s.inflight }

// readMessage reads a device message's body, then takes an in-flight
// slot and parses the body. When any of them fails it has answered the
// device, and ok is false; else the caller holds a slot and must release
// it. Reading comes first: the slots bound the work of parsing and
// answering, not the wait for peers, so a peer that stalls holds none.
func readMessage[T any](s *Server, w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (m T, ok bool) {
	bp, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, "", err)
		return m, false
	}
	if !s.acquire() {
		s.bufs.Put(bp)
		s.shed(w, r, "")
		return m, false
	}
	m, err = parse(*bp)
	s.bufs.Put(bp) // parse copies what it keeps
	if err != nil {
		s.release()
		s.fail(w, r, "", err)
		return m, false
	}
	return m, true
}

func (l *listener) serveCheckIn(w http.ResponseWriter, r *http.Request) {
	s := l.s
	c, ok := readMessage(s, w, r, deviceproto.ParseCheckIn)
	if !ok {
		return
	}
	out, key, err := l.answer(r, c)
	s.release() // the answer is written without a slot: the peer may be slow to take it
	if err != nil {
		s.fail(w, r, key, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/xml; charset=utf-8"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(*out))}
	w.WriteHeader(http.StatusOK)
	w.Write(*out)
	s.bufs.Put(out)
}

// answer records a parsed check-in and returns its answer in a pooled
// buffer (release it with s.bufs.Put), and the device's key.
func (l *listener) answer(r *http.Request, c deviceproto.CheckIn) (*[]byte, string, error) {
	s := l.s
	key := c.Key()
	audit.SetDevice(r.Context(), c.MAC)
	user, err := l.user(r, c.User)
	if err != nil {
		return nil, key, err
	}
	now := s.now()
	current := c.Version()
	cat := s.st.Catalog()
	var (
		offered firmware.Version
		update  firmware.Update
	)
	if rule, ok := cat.Rule(c.Identity); ok {
		if v, ok := firmware.Offer(&rule, current, cat.IsTestDevice(c.MAC, c.Serial)); ok {
			if update, ok = cat.Update(c.Identity, v); ok {
				offered = v
			} else {
				s.log.Error("rule offers a version the store does not hold", "rule", rule.ID, "device", c.Identity.Path(), "version", v.String())
			}
		}
	}
	err = s.st.RecordCheckIn(r.Context(), firmware.Device{
		Key: key, MAC: c.MAC, Serial: c.Serial, Identity: c.Identity, Version: current, Modules: c.Modules,
		User: user, Location: l.loc, Address: remoteIP(r), LastCheckIn: now.UTC(), Offered: offered,
	})
	if err != nil {
		return nil, key, err
	}
	a := deviceproto.Answer{MovedInternalURL: s.movedInt, MovedExternalURL: s.movedExt}
	if !offered.IsZero() {
		a.Version = offered
		a.Files = files(update)
		a.InternalURL, a.ExternalURL = l.baseURLs(r, update)
		l.alternatives(r, &a, update)
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			s.log.Info("offer", "mac", c.MAC, "device", key, "model", c.Identity.Path(), "version", current.String(), "offered", offered.String(), "remote", r.RemoteAddr)
		}
	}
	a.NextCheck = s.nextCheck(key, c.Identity, now)
	a.NextCheckAt = now.Add(a.NextCheck).Truncate(time.Second)
	out := s.bufs.Get().(*[]byte)
	*out = a.AppendXML((*out)[:0])
	return out, key, nil
}

// files lists an update's images, each with the update's security catalog:
// the .cat of the same base name if there is one, else the first .cat.
func files(u firmware.Update) []deviceproto.File {
	var cats []firmware.Image
	for _, f := range u.Files {
		if f.Role == firmware.RoleCatalog {
			cats = append(cats, f)
		}
	}
	var out []deviceproto.File
	for _, f := range u.Files {
		if f.Role != firmware.RoleImage {
			continue
		}
		file := deviceproto.File{FileName: f.Name, Version: u.Version, Timestamp: u.Imported, Size: f.Size, SHA256: f.SHA256Hex()}
		if len(cats) > 0 {
			cat := cats[0]
			base := strings.TrimSuffix(f.Name, pathExt(f.Name))
			for _, c := range cats {
				if strings.EqualFold(strings.TrimSuffix(c.Name, pathExt(c.Name)), base) {
					cat = c
					break
				}
			}
			file.SignatureFileName, file.SignatureSize, file.SignatureSHA256 = cat.Name, cat.Size, cat.SHA256Hex()
		}
		out = append(out, file)
	}
	return out
}

func pathExt(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[i:]
	}
	return ""
}

// baseURLs returns the internal and external base URLs of an update's
// directory: the configured URLs, or this request's host for this
// listener's location when none is configured.
func (l *listener) baseURLs(r *http.Request, u firmware.Update) (internal, external string) {
	dir := u.Identity.Path() + "/" + u.Version.String() + "/"
	in, ext := l.s.cfg.InternalURL, l.s.cfg.ExternalURL
	self := "https://" + r.Host + "/"
	if l.loc == firmware.Internal && in == "" {
		in = self
	}
	if l.loc == firmware.External && ext == "" {
		ext = self
	}
	if in != "" {
		internal = withSlash(in) + strings.TrimPrefix(deviceproto.FilesPrefix, "/") + dir
	}
	if ext != "" {
		external = withSlash(ext) + strings.TrimPrefix(deviceproto.FilesPrefixExt, "/") + dir
	}
	return internal, external
}

// alternatives sets where else an offer's files are: on a replica, the
// primary's URLs as the alternatives; on a primary whose Mirror sends the
// device to its site's replica, the replica's URLs first and this
// service's as the alternatives.
func (l *listener) alternatives(r *http.Request, a *deviceproto.Answer, u firmware.Update) {
	s := l.s
	dir := u.Identity.Path() + "/" + u.Version.String() + "/"
	if s.cfg.Mirror != nil {
		addr, _ := netip.ParseAddr(remoteIP(r))
		if in, ext, ok := s.cfg.Mirror(addr, l.loc, u); ok {
			if in != "" {
				a.InternalURLAlt, a.InternalURL = a.InternalURL, fileBase(in, deviceproto.FilesPrefix, dir)
			}
			if ext != "" {
				a.ExternalURLAlt, a.ExternalURL = a.ExternalURL, fileBase(ext, deviceproto.FilesPrefixExt, dir)
			}
			return
		}
	}
	if s.cfg.AltInternalURL != "" {
		a.InternalURLAlt = fileBase(s.cfg.AltInternalURL, deviceproto.FilesPrefix, dir)
	}
	if s.cfg.AltExternalURL != "" {
		a.ExternalURLAlt = fileBase(s.cfg.AltExternalURL, deviceproto.FilesPrefixExt, dir)
	}
}

// fileBase is the base URL of an update's directory dir under a
// service's base URL.
func fileBase(base, prefix, dir string) string {
	return withSlash(base) + strings.TrimPrefix(prefix, "/") + dir
}

// checkInURL returns the check-in URL on base: base itself when it names
// the endpoint already (ends in ".upx"), "" when base is empty.
func checkInURL(base, path string) string {
	if base == "" || strings.HasSuffix(base, ".upx") {
		return base
	}
	return withSlash(base) + strings.TrimPrefix(path, "/")
}

func withSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}

// nextCheck says when a device checks next: CheckInterval plus its fixed
// jitter offset, or earlier when an approval for its identity is scheduled
// (then at that time plus an offset in [0, CheckJitter), so the fleet does
// not arrive at once). The result is whole seconds, at least one.
func (s *Server) nextCheck(key string, id firmware.Identity, now time.Time) time.Duration {
	h := hashKey(key)
	after := s.cfg.CheckInterval
	if j := s.cfg.CheckJitter; j > 0 {
		after += time.Duration(h%uint64(j)) - j/2
	}
	if s.cfg.Schedule != nil {
		if t, ok := s.cfg.Schedule.Next(id); ok && t.After(now) {
			at := t.Sub(now)
			if j := s.cfg.CheckJitter; j > 0 {
				at += time.Duration(h % uint64(j))
			}
			after = min(after, at)
		}
	}
	after = (after + time.Second - 1).Truncate(time.Second)
	return max(after, time.Second)
}

// hashKey is FNV-1a of a device key: stable across processes and
// releases, so each device keeps its place in the spread.
func hashKey(key string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, key)
	return h.Sum64()
}

// retryAfter is the Retry-After a shed request gets: RetryAfter plus a
// part of it fixed by the device's key (or address when the body was not
// read), in whole seconds.
func (s *Server) retryAfter(key string) int64 {
	base := s.cfg.RetryAfter
	d := base + time.Duration(hashKey(key)%uint64(base))
	return max(int64(d/time.Second), 1)
}

func (l *listener) serveStatus(w http.ResponseWriter, r *http.Request) {
	s := l.s
	st, ok := readMessage(s, w, r, deviceproto.ParseStatus)
	if !ok {
		return
	}
	key := st.Key()
	audit.SetDevice(r.Context(), st.MAC)
	_, err := l.user(r, "")
	if err == nil {
		err = s.st.Report(r.Context(), store.Report{Key: key, State: st.State, Target: st.Target, Error: st.ErrorCode, Time: s.now().UTC()})
	}
	s.release()
	if err != nil {
		s.fail(w, r, key, err)
		return
	}
	s.log.Info("status", "device", key, "state", string(st.State), "version", st.Target.String(), "error", st.ErrorCode, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// shed answers 503 with Retry-After when the in-flight limit is reached.
func (s *Server) shed(w http.ResponseWriter, r *http.Request, key string) {
	s.shedLog.Add(r.Context(), "remote", r.RemoteAddr)
	if key == "" {
		key = remoteIP(r)
	}
	w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(key), 10))
	s.reply(w, http.StatusServiceUnavailable, "busy: too many requests at once; retry after the time in Retry-After")
}

// fail maps an error to its HTTP status, the one place that does. What
// the device did wrong is told to it; an internal cause is logged once and
// the device gets only the status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, key string, err error) {
	switch {
	case errors.Is(err, deviceproto.ErrMalformed), errors.Is(err, errClient):
		s.log.Info("refused", "reason", err.Error(), "device", key, "remote", r.RemoteAddr)
		s.reply(w, http.StatusBadRequest, echo(err))
	case errors.Is(err, errTooLarge):
		s.reply(w, http.StatusRequestEntityTooLarge, echo(err))
	case errors.Is(err, errBodyTimeout):
		s.bodyLog.Add(r.Context(), "remote", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("Connection", "close")
		s.reply(w, http.StatusRequestTimeout, err.Error()+": send the whole request at once")
	case errors.Is(err, store.ErrNotCheckedIn), errors.Is(err, store.ErrNotOffered):
		s.log.Info("refused", "reason", err.Error(), "device", key, "remote", r.RemoteAddr)
		s.reply(w, http.StatusConflict, refusal(err))
	case errors.Is(err, errMethod):
		s.reply(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, w.Header().Get("Allow")))
	case errors.Is(err, ErrNoUser):
		s.log.Warn("refused", "reason", err.Error(), "device", key, "remote", r.RemoteAddr)
		s.reply(w, http.StatusForbidden, echo(err))
	case errors.Is(err, errBadPath):
		s.reply(w, http.StatusBadRequest, echo(err))
	case errors.Is(err, store.ErrNotFound):
		s.reply(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrBusy):
		s.shedLog.Add(r.Context(), "reason", err.Error(), "device", key, "remote", r.RemoteAddr)
		if key == "" {
			key = remoteIP(r)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(key), 10))
		s.reply(w, http.StatusServiceUnavailable, "busy: retry after the time in Retry-After")
	case errors.Is(err, store.ErrUnavailable):
		// The store logs when the inventory stops and starts being
		// written, once each; not every device it turns away.
		if key == "" {
			key = remoteIP(r)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(key), 10))
		s.reply(w, http.StatusServiceUnavailable, "the service cannot record check-ins and reports right now; retry after the time in Retry-After")
	case errors.Is(err, store.ErrClosed):
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(remoteIP(r)), 10))
		s.reply(w, http.StatusServiceUnavailable, "the service is stopping; retry after the time in Retry-After")
	case errors.Is(err, context.Canceled):
		// The device went away; nobody reads an answer.
	default:
		s.log.Error("device request failed", "error", err, "device", key, "path", r.URL.Path, "remote", r.RemoteAddr)
		s.reply(w, http.StatusInternalServerError, "internal error")
	}
}

// Bounds of what a refusal echoes of the request: each quoted value at
// most maxEchoQuoted bytes, each other word (an element name) at most
// maxEchoWord, the whole message at most maxEchoBytes.
const (
	maxEchoQuoted = 24
	maxEchoWord   = 64
	maxEchoBytes  = 256
)

// echo is the reason a device is told: err's message with every quoted
// value and every long word cut to a short prefix, and the whole cut to
// maxEchoBytes, so that a refusal never sends back more than a few bytes
// of what was sent (a 2 KiB MAC address, an element name); the log keeps
// the whole reason.
func echo(err error) string {
	msg := err.Error()
	var b strings.Builder
	for len(msg) > 0 {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			echoWords(&b, msg)
			break
		}
		echoWords(&b, msg[:i])
		msg = msg[i:]
		q, qerr := strconv.QuotedPrefix(msg)
		if qerr != nil {
			b.WriteByte('"')
			msg = msg[1:]
			continue
		}
		msg = msg[len(q):]
		if v, _ := strconv.Unquote(q); len(v) > maxEchoQuoted {
			q = strconv.Quote(v[:runeCut(v, maxEchoQuoted)]) + "..."
		}
		b.WriteString(q)
	}
	out := b.String()
	if len(out) > maxEchoBytes {
		out = out[:runeCut(out, maxEchoBytes)] + "..."
	}
	return out
}

// echoWords writes s with every run of non-space bytes longer than
// maxEchoWord cut to that.
func echoWords(b *strings.Builder, s string) {
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		if w := s[:i]; len(w) > maxEchoWord {
			b.WriteString(w[:runeCut(w, maxEchoWord)] + "...")
		} else {
			b.WriteString(w)
		}
		if i < len(s) {
			b.WriteByte(' ')
			i++
		}
		s = s[i:]
	}
}

// runeCut returns the largest n' <= n that cuts s at a rune boundary.
func runeCut(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// refusal is what a device is told of a refused report: the store's
// reason without its "store: " prefix.
func refusal(err error) string {
	return strings.TrimPrefix(err.Error(), "store: ")
}

func (s *Server) reply(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// remoteIP is the request's remote address without its port.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
