package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/freespace"
	"github.com/opendus/opendus/signin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Console. The zero value works.
type Config struct {
	Logger *slog.Logger // nil: discard
	// Now is the clock of sessions and of the pages' times; nil: time.Now.
	Now func() time.Time
	// IdleTimeout ends a session unused this long (default 30 minutes);
	// SessionLifetime ends any session this long after its sign-in
	// (default 12 hours).
	IdleTimeout, SessionLifetime time.Duration
	// MaxSessions bounds the sessions held (default 1,000): when full, a
	// sign-in ends the expired ones, then the one unused the longest.
	MaxSessions int
	// ClientAddress returns the key of the address a sign-in counts
	// against (signin.Limiter.ClientAddress, which knows the trusted
	// proxies); nil: the connection's peer address (signin.AddressKey).
	ClientAddress func(*http.Request) string
	// SpoolDir is where a zipped tree is kept while it is unpacked; it
	// should be the service's spool directory. Default: the OS temp dir.
	SpoolDir string
	// MaxUploadBytes bounds an upload (default 8 GiB; the service bounds
	// what it imports again); MaxZipEntries the entries of a zipped tree
	// (default 10,000).
	MaxUploadBytes int64
	MaxZipEntries  int
	// LivePeriod is how often a live page (a rollout's progress) is
	// brought up to date through its event stream (default 2 seconds).
	LivePeriod time.Duration
	// MaxStreamTime ends an event stream this long after it began
	// (default 10 minutes); the browser opens another, which checks the
	// session again.
	MaxStreamTime time.Duration
	// Version is shown in the pages' footer.
	Version string
}

// Defaults of a zero Config.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultSessionLifetime = 12 * time.Hour
	DefaultMaxSessions     = 1000
	DefaultMaxUploadBytes  = 8 << 30
	DefaultMaxZipEntries   = 10000
	DefaultLivePeriod      = 2 * time.Second
	DefaultMaxStreamTime   = 10 * time.Minute
)

// Console is the web console: an http.Handler over the service layer.
// Serve it over TLS only (its cookies are Secure).
type Console struct {
	cfg      Config
	svc      *service.Service
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []route
	sessions *sessions
	pages    map[string]*template.Template
	assets   map[string]asset // by file name
	cop      *http.CrossOriginProtection
	// stopping is closed when Run's context is done: the event streams
	// end, so that the listener's shutdown need not wait for them.
	stopping chan struct{}
	stopOnce sync.Once
	live     liveCache
}

// route is one pattern of the console's router.
type route struct {
	pattern string // a ServeMux pattern with its method
	// public routes are served without a session: the sign-in page and
	// the static assets, nothing that holds data.
	public bool
	// multipart routes check the CSRF token themselves, from the first
	// part of the body, before they read the rest.
	multipart bool
	// stream routes serve an event stream (text/event-stream) rather than
	// a page; they do not count as the admin's activity, so a page left
	// open does not keep its session from idling out.
	stream bool
	h      handler
}

// handler serves one route. rq is nil for public routes. An error is
// rendered as an error page with the status statusOf gives it.
type handler func(w http.ResponseWriter, r *http.Request, rq *request) error

// request is what a handler of a signed-in route gets: the context
// carrying the principal, and the session.
type request struct {
	ctx     context.Context
	p       service.Principal
	s       *session
	sid     sessionID
	console *Console
}

// canChange reports whether the principal's role may change things; the
// pages show action controls only then (the service refuses the changes
// of others anyway).
func (rq *request) canChange() bool { return rq.p.Role == service.RoleAdmin }

// asset is one embedded static file, served under a name that carries
// its content's hash, so that it can be cached for good.
type asset struct {
	data  []byte
	ctype string
	url   string
}

// New returns the console of svc.
func New(svc *service.Service, cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ClientAddress == nil {
		cfg.ClientAddress = peerAddress
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.MaxZipEntries <= 0 {
		cfg.MaxZipEntries = DefaultMaxZipEntries
	}
	if cfg.LivePeriod <= 0 {
		cfg.LivePeriod = DefaultLivePeriod
	}
	if cfg.MaxStreamTime <= 0 {
		cfg.MaxStreamTime = DefaultMaxStreamTime
	}
	c := &Console{
		cfg: cfg, svc: svc, log: cfg.Logger, mux: http.NewServeMux(),
		sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.SessionLifetime, cfg.MaxSessions),
		cop:      http.NewCrossOriginProtection(),
		stopping: make(chan struct{}),
	}
	c.live.period = cfg.LivePeriod
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, errCrossOrigin)
	}))
	if err := c.loadAssets(); err != nil {
		return nil, err
	}
	if err := c.loadTemplates(); err != nil {
		return nil, err
	}
	c.routes = c.allRoutes()
	for _, rt := range c.routes {
		c.mux.Handle(rt.pattern, c.wrap(rt))
	}
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, fmt.Errorf("%w: no page at %s", errNoPage, r.URL.Path))
	})
	return c, nil
}

// allRoutes is every route of the console, page by page. A new page adds
// its routes here.
func (c *Console) allRoutes() []route {
	var rs []route
	for _, group := range [][]route{
		c.signInRoutes(),
		c.overviewRoutes(),
		c.updatesRoutes(),
		c.importRoutes(),
		c.deviceRoutes(),
		c.rolloutRoutes(),
		c.siteRoutes(),
		c.testDeviceRoutes(),
		c.accountRoutes(),
		c.adminRoutes(),
		c.historyRoutes(),
		c.certificateRoutes(),
		c.settingsRoutes(),
		{{pattern: "GET /static/{file}", public: true, h: c.static}},
	} {
		rs = append(rs, group...)
	}
	return rs
}

// Run does the console's background work until ctx is done: every
// minute it drops the sessions that expired (a sign-in would drop them
// only once the table is full). When ctx is done it ends the open event
// streams, so that a browser watching a live page does not hold up the
// listener's shutdown. Without Run, streams end when their client goes
// or after MaxStreamTime.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stopOnce.Do(func() { close(c.stopping) })
			return
		case <-t.C:
			c.sessions.sweep()
		}
	}
}

// ServeHTTP serves the console. Every response carries the security
// headers; see the package documentation.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	c.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows only the console's own files: no inline
// script or style, no other origin, no framing, forms posted only here.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

// Errors of the console itself, mapped by statusOf.
var (
	errCSRF        = errors.New("this form is stale or did not come from the console: reload the page and try again")
	errCrossOrigin = errors.New("refused a change sent from another site")
	errNoPage      = errors.New("page not found")
	errFormTooBig  = errors.New("the form is too large")
)

// statusOf maps an error to an HTTP status: the one place that knows
// which error of the service layer (and of the store and vocabulary it
// returns) is which status.
func statusOf(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, service.ErrUnauthenticated), errors.Is(err, service.ErrBadCredentials):
		return http.StatusUnauthorized
	case errors.Is(err, service.ErrForbidden), errors.Is(err, errCSRF), errors.Is(err, errCrossOrigin):
		return http.StatusForbidden
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNoPage):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists),
		errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrRevoked),
		errors.Is(err, store.ErrFollower),
		errors.Is(err, store.ErrNotCheckedIn),
		errors.Is(err, store.ErrRolloutLive),
		errors.Is(err, store.ErrNotOffered),
		errors.Is(err, firmware.ErrSchedule),
		errors.Is(err, firmware.ErrNoPending),
		errors.Is(err, firmware.ErrNothingToRestore),
		errors.Is(err, firmware.ErrNotApproved),
		errors.Is(err, firmware.ErrAlreadyApproved),
		errors.Is(err, firmware.ErrRolloutNotRunning),
		errors.Is(err, firmware.ErrRolloutNotPaused),
		errors.Is(err, firmware.ErrRolloutEnded):
		return http.StatusConflict
	case errors.Is(err, service.ErrTooLarge), errors.Is(err, errFormTooBig), errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, service.ErrInvalid),
		errors.Is(err, store.ErrIntegrity),
		errors.Is(err, firmware.ErrVersion),
		errors.Is(err, firmware.ErrIdentity),
		errors.Is(err, firmware.ErrMAC),
		errors.Is(err, firmware.ErrCertSerial),
		errors.Is(err, firmware.ErrPlan),
		errors.Is(err, firmware.ErrShare),
		errors.Is(err, firmware.ErrSite),
		errors.Is(err, firmware.ErrReplica),
		errors.Is(err, firmware.ErrWindow):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrClosed), errors.Is(err, signin.ErrBusy),
		errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// wrap makes a route's handler: the session, the principal, the
// cross-origin and CSRF checks of a change, and the error page.
func (c *Console) wrap(rt route) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.public {
			if err := rt.h(w, r, nil); err != nil {
				c.fail(w, r, nil, err)
			}
			return
		}
		rq, err := c.authenticate(r, !rt.stream)
		if err != nil {
			c.signInFirst(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodPost && !rt.multipart {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, rq, fmt.Errorf("%w: %v", errFormTooBig, err))
				return
			}
			if err := rq.checkCSRF(r.PostForm.Get("csrf")); err != nil {
				c.fail(w, r, rq, err)
				return
			}
		}
		if err := rt.h(w, r, rq); err != nil {
			c.fail(w, r, rq, err)
		}
	})
	if strings.HasPrefix(rt.pattern, "POST ") {
		h = c.cop.Handler(h)
	}
	return h
}

// maxFormBytes bounds the body of a form that is not an upload.
const maxFormBytes = 64 << 10

// authenticate finds the session of r and its principal, which the
// service checks again (a disabled console admin's sessions end). touch
// counts the request as the admin's activity (the idle timeout starts
// again).
func (c *Console) authenticate(r *http.Request, touch bool) (*request, error) {
	id, s, err := c.sessions.fromRequest(r, touch)
	if err != nil {
		return nil, err
	}
	p, err := c.svc.ConsolePrincipal(r.Context(), s.principal)
	if err != nil {
		c.sessions.end(id)
		return nil, err
	}
	s.principal = p
	return &request{ctx: service.WithPrincipal(r.Context(), p), p: p, s: s, sid: id, console: c}, nil
}

// signInFirst answers a request without a valid session: a page is
// redirected to the sign-in (which comes back to it), anything else is
// 401.
func (c *Console) signInFirst(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		q := url.Values{}
		if next := r.URL.RequestURI(); next != "/" {
			q.Set("next", next)
		}
		if errors.Is(err, errSessionEnded) || !errors.Is(err, errNoSession) {
			q.Set("ended", "1")
		}
		target := "/signin"
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	c.fail(w, r, nil, fmt.Errorf("%w: your session ended: sign in again", service.ErrUnauthenticated))
}

// fail renders err as an error page with its status. An internal error
// is logged and its cause is not shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		c.log.Error("console: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong inside the service; its log says what. Try again, and tell whoever runs it if it keeps failing."
	} else {
		c.log.Info("console: refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, rq, status, "error", http.StatusText(status), errorView{Status: status, Message: msg, Back: backLink(r)})
}

type errorView struct {
	Status  int
	Message string
	Back    string
}

// backLink is where an error page sends the admin back to: the page the
// form came from, when it is one of ours.
func backLink(r *http.Request) string {
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && strings.HasPrefix(ref.Path, "/") {
		return ref.RequestURI()
	}
	if r.Method == http.MethodGet {
		return ""
	}
	return path.Dir(r.URL.Path)
}

// view is what every page's template gets.
type view struct {
	Title     string
	Nav       string // the page's entry in the navigation
	Who       service.Principal
	CanChange bool
	CSRF      string
	Flash     string
	Version   string
	Now       time.Time
	Data      any
}

// render writes the page named page with status.
func (c *Console) render(w http.ResponseWriter, rq *request, status int, page, title string, data any) {
	v := view{Title: title, Nav: page, Version: c.cfg.Version, Now: c.cfg.Now(), Data: data}
	if rq != nil {
		v.Who, v.CanChange, v.CSRF = rq.p, rq.canChange(), rq.s.csrf
		v.Flash = c.sessions.takeFlash(rq.sid)
	}
	t := c.pages[page]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: rendering a page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered; the service log says why", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	if _, err := w.Write([]byte(b.String())); err != nil {
		c.log.Debug("console: writing a page", "page", page, "err", err)
	}
}

// done ends a change: the message is shown on the next page, which the
// browser is sent to (post, redirect, get).
func (c *Console) done(w http.ResponseWriter, r *http.Request, rq *request, to, msg string) error {
	c.sessions.setFlash(rq.sid, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (c *Console) loadAssets() error {
	c.assets = map[string]asset{}
	return fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		name := path.Base(p)
		ext := path.Ext(name)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ctype := mime.TypeByExtension(ext)
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a := asset{data: data, ctype: ctype, url: "/static/" + hashed}
		c.assets[name], c.assets[hashed] = a, a
		return nil
	})
}

// static serves an embedded file under its hashed name, cached for good.
func (c *Console) static(w http.ResponseWriter, r *http.Request, _ *request) error {
	name := r.PathValue("file")
	a, ok := c.assets[name]
	if !ok || a.url != "/static/"+name {
		return fmt.Errorf("%w: no file %s", errNoPage, name)
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, err := w.Write(a.data)
	if err != nil {
		c.log.Debug("console: writing a static file", "file", name, "err", err)
	}
	return nil
}

func (c *Console) loadTemplates() error {
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := c.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %s", name)
			}
			return a.url, nil
		},
		"when":       when,
		"ago":        func(t time.Time) string { return ago(c.cfg.Now(), t) },
		"version":    func(v firmware.Version) string { return versionText(v) },
		"pathesc":    url.PathEscape,
		"queryesc":   url.QueryEscape,
		"plural":     plural,
		"add":        func(a, b int) int { return a + b },
		"bytes":      freespace.Bytes,
		"roleLabel":  roleLabel,
		"who":        principalLabel,
		"dict":       dict,
		"confirmURL": confirmURL,
		"devicePath": func(key string) string { return "/devices/" + url.PathEscape(key) },
		"sitePath":   func(name string) string { return "/sites/" + url.PathEscape(name) },
		"siteDevices": func(name string) string {
			return "/devices?" + url.Values{"site": {name}}.Encode()
		},
		"rolloutPath":       rolloutPath,
		"rolloutConfirmURL": rolloutConfirmURL,
		"newRolloutURL": func(r firmware.Rule) string {
			return "/rollouts/new?" + url.Values{"rule": {r.ID}}.Encode()
		},
		"pct":       pct,
		"siteKey":   siteKey,
		"holdText":  firmware.Hold.Text,
		"eventText": firmware.DeviceEvent.Text,
		"duration":  durationText,
		"counts":    countText,
		"zone":      zoneText,
		"orNothing": orNothing,
		"waveOpen":  waveOpenText,
		"sentence":  func(ro firmware.Rollout) string { return rolloutSentence(&ro) },
		"share":     func(n int) string { return firmware.Share(n).String() },
		"failedDevices": func(ruleID string) string {
			return "/devices?" + url.Values{"rule": {ruleID}, "state": {string(firmware.OutcomeFailed)}}.Encode()
		},
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		page := strings.TrimSuffix(path.Base(n), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return err
		}
		c.pages[page] = t
	}
	return nil
}

// dict makes a map of key, value pairs, for a template called with
// several values.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: want key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, errors.New("dict: keys are strings")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// peerAddress is the address key of the connection's peer.
func peerAddress(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return signin.AddressKey(ap.Addr())
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04")
}

// ago says how long before now t was, or how long after.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if d := now.Sub(t); d >= 0 {
		if d < time.Minute {
			return "just now"
		}
		return span(d) + " ago"
	}
	return "in " + span(t.Sub(now))
}

func span(d time.Duration) string {
	switch {
	case d < time.Hour:
		return plural(max(1, int(d/time.Minute)), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func versionText(v firmware.Version) string {
	if v.IsZero() {
		return ""
	}
	return v.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func roleLabel(r service.Role) string {
	if r == service.RoleReadOnly {
		return "read-only admin"
	}
	return string(r)
}
