package deviceapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/audit"
	"github.com/opendus/opendus/devsvc/peers"
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
	DefaultMinOpen       = time.Hour
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
	// DeviceState, Downloading and RetryPolicy are what the check-in
	// decision needs besides the catalog (see firmware.OfferRequest).
	DeviceState(key string) store.DeviceState
	Downloading(ro *firmware.Rollout) int
	WaveEarliest(ro *firmware.Rollout) time.Time
	RetryPolicy() firmware.RetryPolicy
	RecordCheckIn(ctx context.Context, d firmware.Device) error
	Report(ctx context.Context, r store.Report) error
	RecordRefusal(ctx context.Context, key, reason string) error
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
	// given the device's site (as the check-in found it: by the address
	// Config.ClientAddr gives; "" for none), the listener it came through
	// and the offered update, it returns the base URLs of a service near
	// the device that holds the update (its site's replica) and true. The
	// offer then names the files there, with this service's own URLs as
	// the alternatives. It is asked at every offer: it must not block.
	Mirror func(site string, loc firmware.Location, u firmware.Update) (internalBase, externalBase string, ok bool)

	// CheckInterval is how often devices check; default 24h.
	CheckInterval time.Duration
	// CheckJitter spreads next checks: a device checks after CheckInterval
	// plus an offset in [-CheckJitter/2, CheckJitter/2) fixed by a hash of
	// its MAC (or serial), so a fleet switched on at once spreads out and
	// each device keeps a steady rhythm. A device told to come back
	// earlier (its wave's or its windows' opening, a scheduled release)
	// comes at that time plus an offset in [0, CheckJitter) from the same
	// hash, so that the fleet does not arrive at once. The spread is at
	// most CheckInterval. Default 2h; negative means no spread.
	CheckJitter time.Duration
	// Schedule, if set, is asked for scheduled approvals; nil means none.
	Schedule Schedule
	// MinOpen is how long the maintenance windows that apply to an offer
	// must stay open for it to be made (firmware.OfferRequest.MinOpen):
	// the time a device needs to download and install. Default 1h;
	// negative means none.
	MinOpen time.Duration
	// ClientAddr returns the address a request on the internal listener
	// comes from, which its device's site is looked up by: the peer's,
	// or behind trusted proxies the client they name
	// (signin.Limiter.Client). nil means the peer's (r.RemoteAddr).
	ClientAddr func(r *http.Request) (netip.Addr, bool)

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
	// offer, and at debug level per status report; nil discards.
	Logger *slog.Logger
	// Observer, if set, is told how every check-in, report and download
	// was answered (for metrics); nil tells nobody.
	Observer Observer
	// Peers, if set, elects subnet representatives: peer-capable devices
	// (a check-in with <Peer>) offered an update are told to download it
	// or which peer to fetch it from (docs/protocol.md, "Subnet peers").
	// nil: peers are off, and every device downloads from the service.
	Peers *peers.Elector
	// Signed, if set, reports whether the signed update metadata this
	// service serves names every file of an update (a replica: whether
	// its primary's signing of the change has arrived, a moment after the
	// change). An offer of an update it does not is held back, the device
	// told to come back after SignedWait (spread over as much again by
	// its key, as other come-backs are): a device that verifies would
	// refuse it (offer-unsigned) and leave for the primary. nil: every
	// offer is made.
	Signed func(firmware.Update) bool
	// Metadata, if set, returns what every answer says of the signed
	// update metadata the service serves (docs/protocol.md, "Signed
	// update metadata"): the timestamp's version and the latest root's,
	// so that a device that trusts them fetches nothing; and the signed
	// timestamp, stapled to the answer of a device whose check-in names
	// an older one (deviceproto CheckIn.Metadata), so that it verifies
	// the new one without a request.
	Metadata func() (timestamp, root int64, signed []byte)
}

// SignedWait is how soon a device whose offer waits for its signing
// (Config.Signed) is told to check in again.
const SignedWait = time.Minute

// Answer is how a check-in or a status report was answered, as an
// Observer is told.
type Answer uint8

// The answers. Their String is the name metrics use.
const (
	AnswerNothing     Answer = iota // a check-in answered 200 without an update
	AnswerOffered                   // a check-in answered 200 with an update
	AnswerAccepted                  // a report answered 204
	AnswerRefused                   // refused for what was sent (400, 403, 405, 408, 409, 413)
	AnswerShed                      // 503 busy: too many at once, or the inventory queue full
	AnswerUnavailable               // 503: the inventory cannot be written, or the service is stopping
	AnswerFailed                    // 500: the service failed (it logs why)
	AnswerGone                      // the device went away before its answer
	answers
)

// Answers lists every Answer, in order.
func Answers() []Answer {
	out := make([]Answer, answers)
	for i := range out {
		out[i] = Answer(i)
	}
	return out
}

func (a Answer) String() string {
	switch a {
	case AnswerNothing:
		return "nothing"
	case AnswerOffered:
		return "offered"
	case AnswerAccepted:
		return "accepted"
	case AnswerRefused:
		return "refused"
	case AnswerShed:
		return "shed"
	case AnswerUnavailable:
		return "unavailable"
	case AnswerFailed:
		return "error"
	case AnswerGone:
		return "gone"
	}
	return "answer(" + strconv.Itoa(int(a)) + ")"
}

// Observer is told what the handlers answer, for metrics. Its methods
// run on the request path, concurrently: they must be quick and must not
// block (count, and return).
type Observer interface {
	// CheckIn is told how a check-in on loc was answered; deviceType is
	// the device's (firmware.UCPhone or firmware.RoundTable), or "" when
	// its message was not read.
	CheckIn(loc firmware.Location, a Answer, deviceType string)
	// Report is told how a status report on loc was answered; state is
	// the one reported, or "" when the message was not read.
	Report(loc firmware.Location, a Answer, state firmware.State)
	// Download is told of every request for a stored file on loc that
	// found it (a download, a resumed one, a HEAD or a 304), with the
	// bytes of the file sent.
	Download(loc firmware.Location, sent int64)
}

// nobody is the Observer of a Config without one.
type nobody struct{}

func (nobody) CheckIn(firmware.Location, Answer, string)        {}
func (nobody) Report(firmware.Location, Answer, firmware.State) {}
func (nobody) Download(firmware.Location, int64)                {}

// Server holds the device handlers' shared state: the store, the
// configuration and the in-flight limiter. Its handlers are safe for
// concurrent use.
type Server struct {
	st       Store
	cfg      Config // as New was given it, with defaults: MaxInFlight, LogEvery, Now, Logger, Observer
	live     atomic.Pointer[settings]
	obs      Observer
	retry    firmware.RetryPolicy
	log      *slog.Logger
	now      func() time.Time
	inflight chan struct{}
	bufs     sync.Pool  // *[]byte, bodies and answers
	scratch  sync.Pool  // *scratch, the check-in decisions' copies
	copyBufs sync.Pool  // *[]byte of copyBufferSize, file copies
	files    openFiles  // update files kept open for downloads
	lists    pieceLists // their piece lists, for subnet peers
	internal http.Handler
	external http.Handler
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

// settings are the Config that Reconfigure changes, with the check-in
// URLs of a moved service. A settings is never changed once made.
type settings struct {
	Config
	// movedInt and movedExt are the check-in URLs of a moved service.
	movedInt, movedExt string
}

// withDefaults fills cfg's zero values with the defaults.
func (cfg Config) withDefaults() Config {
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
	switch {
	case cfg.MinOpen == 0:
		cfg.MinOpen = DefaultMinOpen
	case cfg.MinOpen < 0:
		cfg.MinOpen = 0
	}
	return cfg
}

// settings returns the settings in force.
func (s *Server) settings() *settings { return s.live.Load() }

// Reconfigure applies cfg to the requests that start from now on: the
// URLs, the check interval and jitter, the Schedule, RetryAfter,
// BodyTimeout and DownloadStall, with New's defaults for zero values.
// What the Server holds is kept: MaxInFlight and its requests in flight,
// LogEvery, Now, Logger, Observer, ClientAddr, Peers, Signed, Metadata and the counts of Stats. A request
// already in progress finishes under the settings it started with (a
// download keeps its DownloadStall).
func (s *Server) Reconfigure(cfg Config) {
	cfg = cfg.withDefaults()
	cfg.MaxInFlight, cfg.LogEvery, cfg.Now, cfg.Logger, cfg.Observer, cfg.ClientAddr = s.cfg.MaxInFlight, s.cfg.LogEvery, s.cfg.Now, s.cfg.Logger, s.cfg.Observer, s.cfg.ClientAddr
	cfg.Peers, cfg.Signed, cfg.Metadata = s.cfg.Peers, s.cfg.Signed, s.cfg.Metadata
	s.live.Store(&settings{Config: cfg,
		movedInt: checkInURL(cfg.MovedInternalURL, deviceproto.CheckInPath), movedExt: checkInURL(cfg.MovedExternalURL, deviceproto.CheckInPathExt)})
}

// New returns the device handlers over st.
func New(st Store, cfg Config) *Server {
	given := cfg
	cfg = cfg.withDefaults()
	s := &Server{st: st, cfg: cfg, retry: st.RetryPolicy(), log: cfg.Logger, now: cfg.Now, obs: cfg.Observer, inflight: make(chan struct{}, cfg.MaxInFlight)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.obs == nil {
		s.obs = nobody{}
	}
	s.Reconfigure(given)
	s.shedLog = newEventLog(s.log, slog.LevelWarn, "shedding load: answered 503 busy (too many check-ins and reports at once, or the inventory queue full)", cfg.LogEvery, s.now)
	s.bodyLog = newEventLog(s.log, slog.LevelWarn, "dropped requests whose body stalled: answered 408 and closed their connections", cfg.LogEvery, s.now)
	s.stallLog = newEventLog(s.log, slog.LevelWarn, "dropped downloads that made no progress", cfg.LogEvery, s.now)
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.scratch.New = func() any { return new(scratch) }
	s.copyBufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	s.internal = &listener{s: s, loc: firmware.Internal, checkIn: deviceproto.CheckInPath, status: deviceproto.StatusPath, files: deviceproto.FilesPrefix,
		cacheControl: []string{"public, max-age=31536000, immutable"}}
	s.external = &listener{s: s, loc: firmware.External, checkIn: deviceproto.CheckInPathExt, status: deviceproto.StatusPathExt, files: deviceproto.FilesPrefixExt,
		cacheControl: []string{"private, max-age=31536000, immutable"}}
	return s
}

// Close closes the update files the handlers keep open for downloads.
// Call it once the listeners have stopped; the handlers still work after
// it, opening files again.
func (s *Server) Close() error {
	s.files.close()
	return nil
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
	cacheControl           []string // of files and piece lists
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
	case strings.HasPrefix(p, deviceproto.PiecesPrefix):
		l.servePieces(w, r)
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
	timeout := s.settings().BodyTimeout
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(timeout))
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
				return nil, fmt.Errorf("%w: %d bytes within %v", errBodyTimeout, len(b), timeout)
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
// device with a, and ok is false; else the caller holds a slot and must
// release it. Reading comes first: the slots bound the work of parsing
// and answering, not the wait for peers, so a peer that stalls holds none.
func readMessage[T any](s *Server, w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (m T, a Answer, ok bool) {
	bp, err := s.readBody(w, r)
	if err != nil {
		return m, s.fail(w, r, "", err), false
	}
	if !s.acquire() {
		s.bufs.Put(bp)
		return m, s.shed(w, r, ""), false
	}
	m, err = parse(*bp)
	s.bufs.Put(bp) // parse copies what it keeps
	if err != nil {
		s.release()
		return m, s.fail(w, r, "", err), false
	}
	return m, 0, true
}

func (l *listener) serveCheckIn(w http.ResponseWriter, r *http.Request) {
	s := l.s
	c, a, ok := readMessage(s, w, r, deviceproto.ParseCheckIn)
	if !ok {
		s.obs.CheckIn(l.loc, a, "")
		return
	}
	out, key, a, err := l.answer(r, c)
	s.release() // the answer is written without a slot: the peer may be slow to take it
	if err != nil {
		s.obs.CheckIn(l.loc, s.fail(w, r, key, err), c.Identity.DeviceType)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/xml; charset=utf-8"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(*out))}
	s.obs.CheckIn(l.loc, a, c.Identity.DeviceType) // counted before the device can see the answer
	w.WriteHeader(http.StatusOK)
	w.Write(*out)
	s.bufs.Put(out)
}

// answer decides and records a parsed check-in and returns its answer in
// a pooled buffer (release it with s.bufs.Put), the device's key, and
// whether it is offered an update.
func (l *listener) answer(r *http.Request, c deviceproto.CheckIn) (*[]byte, string, Answer, error) {
	s := l.s
	key := c.Key()
	audit.SetDevice(r.Context(), c.MAC)
	user, err := l.user(r, c.User)
	if err != nil {
		return nil, key, 0, err
	}
	now := s.now()
	cat := s.st.Catalog()
	site, addr := l.site(r, cat)
	var (
		d      firmware.Decision
		within time.Duration
		update firmware.Update
	)
	sc := s.scratch.Get().(*scratch)
	if rule, ok := cat.Rule(c.Identity); ok {
		sc.rule = rule
		d, within = s.decide(cat, sc, &c, key, site, now)
		if !d.Version.IsZero() {
			if update, ok = cat.Update(c.Identity, d.Version); !ok {
				s.log.Error("rule offers a version the store does not hold", "rule", rule.ID, "device", c.Identity.Path(), "version", d.Version.String())
				d.Version, d.InstallBy = firmware.Version{}, time.Time{}
			} else if s.cfg.Signed != nil && !s.cfg.Signed(update) {
				s.log.Debug("offer held until its signing arrives", "device", key, "model", c.Identity.Path(), "version", d.Version.String())
				d.Version, d.InstallBy, d.ComeBack = firmware.Version{}, time.Time{}, now.Add(SignedWait)
				within = SignedWait
			}
		}
	}
	*sc = scratch{} // the decision holds nothing of it
	s.scratch.Put(sc)
	err = s.st.RecordCheckIn(r.Context(), firmware.Device{
		Key: key, MAC: c.MAC, Serial: c.Serial, Identity: c.Identity, Version: c.Version(), Modules: c.Modules,
		User: user, Location: l.loc, Address: addr, LastCheckIn: now.UTC(), Site: site.Name,
		Offered: d.Version, Hold: d.Hold, Held: d.Held,
	})
	if err != nil {
		return nil, key, 0, err
	}
	cf := s.settings()
	a := deviceproto.Answer{MovedInternalURL: cf.movedInt, MovedExternalURL: cf.movedExt}
	if s.cfg.Metadata != nil {
		var signed []byte
		a.Metadata, a.MetadataRoot, signed = s.cfg.Metadata()
		// Only a newer one: a device ahead of this service (a replica a
		// moment behind its primary) would refuse an older one.
		if c.Metadata.Root > 0 && c.Metadata.Timestamp < a.Metadata {
			a.Stapled = signed
		}
	}
	answer := AnswerNothing
	if !d.Version.IsZero() {
		answer = AnswerOffered
		a.Version = d.Version
		a.Files = files(update)
		a.InternalURL, a.ExternalURL = l.baseURLs(r, update)
		l.alternatives(&a, site.Name, update)
		a.InstallBy = d.InstallBy
		l.peerCheckIn(r, &c, key, site, addr, a.Files, now)
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			s.log.Info("offer", "mac", c.MAC, "device", key, "model", c.Identity.Path(), "version", c.Version().String(), "offered", d.Version.String(),
				"site", site.Name, "remote", r.RemoteAddr)
		}
	}
	if d.Version.IsZero() {
		l.peerCheckIn(r, &c, key, site, addr, nil, now)
	}
	a.NextCheck = s.nextCheck(key, c.Identity, &d, within, now)
	a.NextCheckAt = now.Add(a.NextCheck).Truncate(time.Second)
	out := s.bufs.Get().(*[]byte)
	*out = a.AppendXML((*out)[:0])
	return out, key, answer, nil
}

// site returns the site of a check-in, and the address it is recorded
// with. Through the edge it is the remote site, whatever the address; on
// the internal listener the site whose subnet holds the address the
// request comes from (Config.ClientAddr), or none (the zero ZonedSite:
// UTC, always open).
func (l *listener) site(r *http.Request, cat *store.Catalog) (firmware.ZonedSite, string) {
	peer := remoteIP(r)
	sites := cat.Sites()
	if l.loc == firmware.External {
		return sites.Remote(), peer
	}
	var (
		a  netip.Addr
		ok bool
	)
	if f := l.s.cfg.ClientAddr; f != nil {
		if a, ok = f(r); ok {
			if pa, err := netip.ParseAddr(peer); err != nil || pa.Unmap() != a {
				peer = a.String() // a client behind a trusted proxy
			}
		}
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a, ok = ap.Addr().Unmap(), true
	}
	if !ok {
		return firmware.ZonedSite{}, peer
	}
	site, _ := sites.Lookup(a)
	return site, peer
}

// scratch holds the copies of a rule and its rollout a check-in's decision
// reads: reused, so that a check-in allocates neither (the decision's
// times refer to the rollout's, so a copy on the stack would escape).
type scratch struct {
	rule firmware.Rule
	ro   firmware.Rollout
}

// decide is the offer decision of a check-in on sc.rule (firmware.Decide):
// the rule's rollout, the device's cohort and attempts from the fleet
// index, its site's windows, the downloads under way when the rollout caps
// them. within, when positive, is how long after the decision's ComeBack
// the windows that apply still let an offer be made (they stay open
// MinOpen more): the spread the device's return may have, so that a
// short window is not missed.
func (s *Server) decide(cat *store.Catalog, sc *scratch, c *deviceproto.CheckIn, key string, site firmware.ZonedSite, now time.Time) (d firmware.Decision, within time.Duration) {
	rule, ro := &sc.rule, &sc.ro
	q := firmware.OfferRequest{Rule: rule, Current: c.Version(), Test: cat.IsTestDevice(c.MAC, c.Serial),
		Retry: s.retry, Site: site, MinOpen: s.settings().MinOpen, Now: now}
	var ok bool
	if *ro, ok = cat.Rollout(rule.ID); ok {
		q.Rollout = ro
		ro.Earliest = s.st.WaveEarliest(ro)
		if ro.MaxDownloads > 0 {
			q.Downloading = s.st.Downloading(ro)
		}
	}
	ds := s.st.DeviceState(key)
	q.Cohort, q.Attempt = ds.Cohort, ds.Attempt
	d = firmware.Decide(&q)
	if d.ComeBack.IsZero() {
		return d, 0
	}
	// The rollout's window applies to its version, but for test devices.
	var rw firmware.Schedule
	if ok && !q.Test && d.Held == ro.Version && ro.Version == rule.Pending {
		rw = ro.Window
	}
	if site.Windows.IsZero() && rw.IsZero() {
		return d, 0
	}
	if w := firmware.CheckWindows(d.ComeBack, site.Location, q.MinOpen, site.Windows, rw); w.Open && !w.Close.IsZero() {
		within = max(w.Close.Sub(d.ComeBack)-q.MinOpen, time.Second)
	}
	return d, within
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
	cf := l.s.settings()
	in, ext := cf.InternalURL, cf.ExternalURL
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
// service's as the alternatives. site is the device's site.
func (l *listener) alternatives(a *deviceproto.Answer, site string, u firmware.Update) {
	s := l.s
	dir := u.Identity.Path() + "/" + u.Version.String() + "/"
	if s.cfg.Mirror != nil {
		if in, ext, ok := s.cfg.Mirror(site, l.loc, u); ok {
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
// jitter offset, or earlier when the decision says when to come back (its
// wave's or windows' opening, the end of its back-off), or an approval
// for its identity is scheduled: then at that time plus an offset in
// [0, CheckJitter) (a device held back by the downloads cap: in [0,
// DownloadsRecheck); one whose windows let an offer be made only for
// within after it: in [0, within)), so the fleet does not arrive at once.
// Never later than the interval. The result is whole seconds, at least
// one.
func (s *Server) nextCheck(key string, id firmware.Identity, d *firmware.Decision, within time.Duration, now time.Time) time.Duration {
	cf := s.settings()
	h := hashKey(key)
	j := cf.CheckJitter
	after := cf.CheckInterval
	if j > 0 {
		after += time.Duration(h%uint64(j)) - j/2
	}
	earlier := func(t time.Time, spread time.Duration) {
		if !t.After(now) {
			return
		}
		at := t.Sub(now)
		if spread > 0 {
			at += time.Duration(h % uint64(spread))
		}
		after = min(after, at)
	}
	if cf.Schedule != nil {
		if t, ok := cf.Schedule.Next(id); ok {
			earlier(t, j)
		}
	}
	if !d.ComeBack.IsZero() {
		spread := j
		if d.Hold == firmware.HoldDownloads {
			spread = min(spread, firmware.DownloadsRecheck)
		}
		if within > 0 {
			spread = min(spread, within)
		}
		earlier(d.ComeBack, spread)
	}
	after = (after + time.Second - 1).Truncate(time.Second)
	return max(after, time.Second)
}

// hashKey is FNV-1a of a device key: stable across processes and
// releases, so each device keeps its place in the spread.
func hashKey(key string) uint64 {
	h := uint64(14695981039346656037) // FNV-1a 64, as hash/fnv, without allocating
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}

// retryAfter is the Retry-After a shed request gets: RetryAfter plus a
// part of it fixed by the device's key (or address when the body was not
// read), in whole seconds.
func (s *Server) retryAfter(key string) int64 {
	base := s.settings().RetryAfter
	d := base + time.Duration(hashKey(key)%uint64(base))
	return max(int64(d/time.Second), 1)
}

func (l *listener) serveStatus(w http.ResponseWriter, r *http.Request) {
	s := l.s
	st, a, ok := readMessage(s, w, r, deviceproto.ParseStatus)
	if !ok {
		s.obs.Report(l.loc, a, "")
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
		if errors.Is(err, store.ErrNotOffered) {
			// In the device's history, for whoever looks at it (devices
			// show); the device is told the same.
			s.st.RecordRefusal(context.WithoutCancel(r.Context()), key, refusal(err))
		}
		s.obs.Report(l.loc, s.fail(w, r, key, err), st.State)
		return
	}
	// At debug: a fleet reports five times an update, and each report is
	// in the audit log and the device's history already.
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("status", "device", key, "state", string(st.State), "version", st.Target.String(), "error", st.ErrorCode, "remote", r.RemoteAddr)
	}
	s.peerReport(r.Context(), key, st.State, s.now())
	s.obs.Report(l.loc, AnswerAccepted, st.State)
	w.WriteHeader(http.StatusNoContent)
}

// shed answers 503 with Retry-After when the in-flight limit is reached.
func (s *Server) shed(w http.ResponseWriter, r *http.Request, key string) Answer {
	s.shedLog.Add(r.Context(), "remote", r.RemoteAddr)
	if key == "" {
		key = remoteIP(r)
	}
	w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(key), 10))
	s.reply(w, http.StatusServiceUnavailable, "busy: too many requests at once; retry after the time in Retry-After")
	return AnswerShed
}

// fail maps an error to its HTTP status, the one place that does, and
// returns the Answer that is. What the device did wrong is told to it; an
// internal cause is logged once and the device gets only the status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, key string, err error) (a Answer) {
	a = AnswerRefused // what the device sent
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
		a = AnswerShed
	case errors.Is(err, store.ErrUnavailable):
		// The store logs when the inventory stops and starts being
		// written, once each; not every device it turns away.
		if key == "" {
			key = remoteIP(r)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(key), 10))
		s.reply(w, http.StatusServiceUnavailable, "the service cannot record check-ins and reports right now; retry after the time in Retry-After")
		a = AnswerUnavailable
	case errors.Is(err, store.ErrClosed):
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfter(remoteIP(r)), 10))
		s.reply(w, http.StatusServiceUnavailable, "the service is stopping; retry after the time in Retry-After")
		a = AnswerUnavailable
	case errors.Is(err, context.Canceled):
		// The device went away; nobody reads an answer.
		a = AnswerGone
	default:
		s.log.Error("device request failed", "error", err, "device", key, "path", r.URL.Path, "remote", r.RemoteAddr)
		s.reply(w, http.StatusInternalServerError, "internal error")
		a = AnswerFailed
	}
	return a
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
