package console

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/signin"
)

// publicRoutes are the routes served without a session: the sign-in and
// the embedded files, nothing that holds data. A new public route must be
// added here, on purpose.
var publicRoutes = []string{"GET /signin", "POST /signin", "GET /static/{file}"}

// TestEveryRouteNeedsASession sweeps every route of the console's router
// without a session, with a forged cookie and with an expired one: a page
// is redirected to the sign-in, anything else is 401, and no answer
// carries data.
func TestEveryRouteNeedsASession(t *testing.T) {
	e := newEnv(t, Config{}, 20)
	var public []string
	for _, rt := range e.c.routes {
		if rt.public {
			public = append(public, rt.pattern)
		}
	}
	if !slices.Equal(public, publicRoutes) {
		t.Errorf("public routes = %q, want %q", public, publicRoutes)
	}
	expired := e.signedIn("alice", alicePW)
	e.clock.Advance(DefaultIdleTimeout)
	cookies := map[string]*client{"none": e.client(), "expired": expired}
	forged := e.client()
	u, _ := url.Parse(e.srv.URL)
	forged.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: randomToken()}})
	cookies["forged"] = forged
	secrets := []string{e.devices[0].MAC, e.devices[0].User, "4.0.7577.4372", "alice", "helpdesk", "console_addr"}
	for _, rt := range e.c.routes {
		if rt.public {
			continue
		}
		for name, c := range cookies {
			method, p := samplePath(rt.pattern)
			req, _ := http.NewRequest(method, e.srv.URL+p+"?rule="+cx600+"&action=approve", strings.NewReader(url.Values{"csrf": {"x"}, "rule": {cx600}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp := c.do(req)
			switch {
			case method == "GET" && resp.StatusCode == http.StatusSeeOther:
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/signin") {
					t.Errorf("%s (%s cookie): redirected to %q, want the sign-in", rt.pattern, name, loc)
				}
			case method != "GET" && resp.StatusCode == http.StatusUnauthorized:
			default:
				t.Errorf("%s (%s cookie): %s, want a redirect to the sign-in (GET) or 401", rt.pattern, name, resp.Status)
			}
			for _, s := range secrets {
				if strings.Contains(resp.body, s) {
					t.Errorf("%s (%s cookie): the answer carries %q", rt.pattern, name, s)
				}
			}
		}
	}
	if n := e.seq(); n != 5 { // the two admins, the import and the two sites
		t.Errorf("history at %d after the sweep, want 5: something changed", n)
	}
}

// TestSecurityHeaders checks the headers of every kind of answer: pages,
// redirects, errors, the sign-in, static files and unknown paths.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, Config{}, 5)
	alice := e.signedIn("alice", alicePW)
	anon := e.client()
	want := map[string]string{
		"Content-Security-Policy":   "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "same-origin",
		"Strict-Transport-Security": "max-age=31536000",
	}
	check := func(what string, resp response, page bool) {
		t.Helper()
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
		if cc := resp.Header.Get("Cache-Control"); page && cc != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", what, cc)
		}
		if strings.Contains(resp.body, "http://") || strings.Contains(resp.body, "https://") {
			t.Errorf("%s: the page names another site:\n%s", what, resp.body)
		}
	}
	e.startRollout(t, "50%,100%")
	for _, rt := range e.c.routes {
		method, p := samplePath(rt.pattern)
		if method != "GET" || strings.Contains(p, "/static/") {
			continue
		}
		if rt.stream {
			r := alice.getStream(p)
			check("GET "+p+" signed in", r, true)
			if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" || !strings.Contains(r.body, "data: {") {
				t.Errorf("GET %s: %s %q, want an event stream with an event\n%s", p, r.Status, ct, r.body)
			}
		} else {
			check("GET "+p+" signed in", alice.get(p+"?rule="+cx600+"&action=approve"), true)
		}
		check("GET "+p+" signed out", anon.get(p), true)
	}
	check("a change without a token", alice.post("/testdevices/add", url.Values{"mac": {"00-04-F2-00-00-09"}}), true)
	check("an unknown path", alice.get("/nothing/here"), true)
	check("the sign-in", anon.get("/signin"), true)
	css := anon.get(e.c.assets["console.css"].url)
	check("static", css, false)
	if css.StatusCode != 200 || css.Header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(css.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("console.css: %s, %q, %q", css.Status, css.Header.Get("Content-Type"), css.Header.Get("Cache-Control"))
	}
	if r := anon.get("/static/console.css"); r.StatusCode != http.StatusNotFound {
		t.Errorf("static file by its plain name: %s, want 404 (only hashed names are served)", r.Status)
	}
}

// TestSessionCookie checks the flags of the session cookie and that every
// sign-in starts a new session.
func TestSessionCookie(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	c := e.client()
	resp := c.post("/signin", url.Values{"user": {"alice"}, "password": {alicePW}, "next": {"/devices?q=x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/devices?q=x" {
		t.Fatalf("sign-in: %s to %q, want 303 to /devices?q=x", resp.Status, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("sign-in set %d cookies, want 1", len(cookies))
	}
	ck := cookies[0]
	if ck.Name != "__Host-opendus-session" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge != 0 {
		t.Errorf("session cookie %+v: want __Host-opendus-session, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain, no Max-Age", ck)
	}
	raw := resp.Header.Get("Set-Cookie")
	for _, flag := range []string{"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(raw, flag) {
			t.Errorf("Set-Cookie %q lacks %s", raw, flag)
		}
	}
	if len(ck.Value) < 43 { // 256 bits, base64
		t.Errorf("session ID %q is shorter than 256 bits", ck.Value)
	}
	// A second sign-in from the same browser replaces the session.
	resp2 := c.post("/signin", url.Values{"user": {"alice"}, "password": {alicePW}})
	if ck2 := resp2.Cookies()[0]; ck2.Value == ck.Value {
		t.Error("a second sign-in kept the session ID")
	}
	if n := e.c.sessions.len(); n != 1 {
		t.Errorf("%d sessions after signing in twice from one browser, want 1", n)
	}
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/signin?next=/"} {
		r := e.client().post("/signin", url.Values{"user": {"alice"}, "password": {alicePW}, "next": {next}})
		if loc := r.Header.Get("Location"); loc != "/" {
			t.Errorf("sign-in with next %q sent the browser to %q, want /", next, loc)
		}
	}
}

// TestSessionLifetime checks the idle timeout, the absolute lifetime, the
// sign-out, the bound of the table, and that disabling an admin ends its
// sessions.
func TestSessionLifetime(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: 10 * time.Minute, SessionLifetime: time.Hour, MaxSessions: 3}, 0)
	ok := func(c *client) bool { return c.get("/settings").StatusCode == http.StatusOK }
	c := e.signedIn("alice", alicePW)
	for range 7 { // busy for 54 minutes, never idle for 10
		if !ok(c) {
			t.Fatalf("a busy session ended after %v", e.clock.Now().Sub(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)))
		}
		e.clock.Advance(9 * time.Minute)
	}
	if ok(c) {
		t.Error("a session lived past its lifetime of an hour")
	}
	c = e.signedIn("alice", alicePW)
	e.clock.Advance(10 * time.Minute)
	if r := c.get("/settings"); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "ended=1") {
		t.Errorf("after 10 idle minutes: %s to %q, want the sign-in saying the session ended", r.Status, r.Header.Get("Location"))
	}
	c = e.signedIn("alice", alicePW)
	if r := c.change("/signout", nil); r.StatusCode != http.StatusSeeOther || ok(c) {
		t.Errorf("sign-out: %s, and the session still works: %v", r.Status, ok(c))
	}
	// Bounded: a fourth sign-in ends the session unused the longest.
	var cs []*client
	for range 4 {
		cs = append(cs, e.signedIn("helpdesk", helpPW))
		e.clock.Advance(time.Second)
	}
	if n := e.c.sessions.len(); n != 3 {
		t.Errorf("%d sessions, want at most 3", n)
	}
	if ok(cs[0]) || !ok(cs[3]) {
		t.Error("the table did not end the session unused the longest")
	}
	admin := service.WithPrincipal(t.Context(), certAdmin)
	if _, err := e.svc.SetConsoleAdminDisabled(admin, "helpdesk", true); err != nil {
		t.Fatal(err)
	}
	if ok(cs[3]) {
		t.Error("a disabled admin's session still works")
	}
}

// TestCSRF posts to every change route with a valid session but without
// the token, with a wrong one, and from another site with the right one:
// each is refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t, Config{}, 5)
	c := e.signedIn("alice", alicePW)
	before := e.seq()
	form := url.Values{"rule": {cx600}, "mac": {"00-04-F2-00-00-77"}, "name": {"helpdesk"}, "key": {"00-04-F2-00-00-01"},
		"password": {"a long new passphrase"}, "confirm": {"a long new passphrase"}, "role": {"admin"}, "at": {"2027-01-01T10:00"}}
	for _, rt := range e.c.routes {
		method, p := samplePath(rt.pattern)
		if method != "POST" || rt.public {
			continue
		}
		for _, tc := range []struct {
			name  string
			token string
			site  string
		}{
			{"no token", "", ""},
			{"wrong token", randomToken(), ""},
			{"another site", c.csrf, "cross-site"},
		} {
			var resp response
			if rt.multipart {
				if tc.site != "" {
					continue // covered below
				}
				resp = c.upload("x.zip", zipOf(t, [2]string{cx600 + "/4.0.7577.9999/CX600.nbt", "x"}), tc.token)
			} else {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if tc.token != "" {
					f.Set("csrf", tc.token)
				}
				req, _ := http.NewRequest("POST", e.srv.URL+p, strings.NewReader(f.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.site != "" {
					req.Header.Set("Sec-Fetch-Site", tc.site)
					req.Header.Set("Origin", "https://evil.example")
				}
				resp = c.do(req)
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %s: %s, want 403", rt.pattern, tc.name, resp.Status)
			}
		}
	}
	if e.seq() != before {
		t.Errorf("refused changes moved the history from %d to %d", before, e.seq())
	}
	// The same change with the token is made.
	if r := c.change("/testdevices/add", url.Values{"mac": {"00-04-F2-00-00-77"}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("adding a test device with the token: %s\n%s", r.Status, r.body)
	}
	es, _ := e.svc.History(service.WithPrincipal(t.Context(), certAdmin), before, 0)
	if len(es) != 1 || es[0].Actor != "web:alice" || es[0].Action != store.ActionTestDeviceAdd {
		t.Errorf("history after the change: %+v, want web:alice's testdevice-add", es)
	}
}

// TestReadOnly: a read-only admin's pages have no action control, and
// every change it forges (with a valid session and token) is refused by
// the service with 403, changing nothing.
func TestReadOnly(t *testing.T) {
	e := newEnv(t, Config{}, 5)
	e.startRollout(t, "50%,100%")
	ro := e.signedIn("helpdesk", helpPW)
	alice := e.signedIn("alice", alicePW)
	// Pages that an admin sees with action controls: the test must see
	// them there for a read-only admin's page without them to prove
	// anything.
	withActions := map[string]bool{"/updates": true, "/rollouts/" + cx600ID.RuleID(): true,
		"/rollouts/" + cx600ID.RuleID() + "/confirm": true, "/updates/confirm": true, "/sites": true, "/sites/hq": true, "/testdevices": true}
	for _, rt := range e.c.routes {
		method, p := samplePath(rt.pattern)
		if method != "GET" || rt.public {
			continue
		}
		q := "?rule=" + cx600 + "&action=pause"
		if p == "/updates/confirm" {
			q = "?rule=" + cx600 + "&action=reject"
		}
		if rt.stream {
			if page := ro.getStream(p); page.StatusCode != http.StatusOK || strings.Contains(page.body, "<form") {
				t.Errorf("read-only GET %s: %s\n%s", p, page.Status, page.body)
			}
			continue
		}
		page := ro.get(p + q)
		if page.StatusCode != http.StatusOK && page.StatusCode != http.StatusNotFound {
			t.Errorf("read-only GET %s: %s", p, page.Status)
		}
		for _, f := range formActions(page.body) {
			if f != "/signout" {
				t.Errorf("read-only GET %s has a form posting to %s", p, f)
			}
		}
		for _, link := range []string{"/updates/confirm?", "/confirm?action", "/rollouts/new?"} {
			if strings.Contains(page.body, link) && p != "/rollouts/new" { // its own link to the defaults
				t.Errorf("read-only GET %s links to a confirm page (%s)", p, link)
			}
		}
		if withActions[p] {
			admin := alice.get(p + q)
			if len(formActions(admin.body)) < 2 && !strings.Contains(admin.body, "confirm?") && !strings.Contains(admin.body, "/rollouts/new?") {
				t.Errorf("an admin's GET %s has no action: the test would prove nothing\n%s", p, admin.body)
			}
		}
	}
	before := e.seq()
	form := url.Values{"rule": {cx600}, "mac": {"00-04-F2-00-00-77"}, "name": {"hq"}, "key": {"00-04-F2-00-00-01"}, "serial": {"1"},
		"password": {"a long new passphrase"}, "confirm": {"a long new passphrase"}, "role": {"admin"}, "at": {"2027-01-01T10:00"}}
	for _, rt := range e.c.routes {
		method, p := samplePath(rt.pattern)
		if method != "POST" || rt.public || p == "/signout" {
			continue
		}
		var resp response
		if rt.multipart {
			resp = ro.upload("x.zip", zipOf(t, [2]string{cx600 + "/4.0.7577.9999/CX600.nbt", "x"}), ro.csrf)
		} else {
			resp = ro.change(p, form)
		}
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, "read-only") {
			t.Errorf("read-only POST %s: %s, want 403 saying read-only\n%s", p, resp.Status, resp.body)
		}
	}
	if e.seq() != before {
		t.Errorf("read-only changes moved the history from %d to %d", before, e.seq())
	}
}

var formRE = `<form[^>]*method="post"[^>]*action="([^"]+)"`

func formActions(body string) []string { return regexpAll(formRE, body) }

// TestLockout: five wrong passwords lock the account, whatever the
// address: the right password is refused with the same answer, until the
// lockout ends.
func TestLockout(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	c := e.client()
	var wrong response
	for i := range 5 {
		wrong = c.post("/signin", url.Values{"user": {"alice"}, "password": {fmt.Sprintf("wrong guess number %d", i)}})
		if wrong.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %s, want 401", i, wrong.Status)
		}
	}
	right := e.client().post("/signin", url.Values{"user": {"alice"}, "password": {alicePW}})
	if right.StatusCode != http.StatusUnauthorized || len(right.Cookies()) != 0 {
		t.Errorf("the right password after five wrong ones: %s, cookies %v; want 401 and no session", right.Status, right.Cookies())
	}
	if msg := errorText(right.body); msg == "" || msg != errorText(wrong.body) {
		t.Errorf("a locked account answers %q, a wrong password %q: want the same", msg, errorText(wrong.body))
	}
	e.clock.Advance(signin.DefaultLockout)
	if r := e.client().post("/signin", url.Values{"user": {"alice"}, "password": {alicePW}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after the lockout: %s, want signed in", r.Status)
	}
}

func errorText(body string) string {
	m := regexpAll(`<p class="error" role="alert" id="signin-error">([^<]*)</p>`, body)
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// TestStatusOf checks the one mapping of errors to statuses, for every
// sentinel error the service layer, the store and the vocabulary declare
// (read from their sources, so that a new one without a status here fails
// instead of becoming a 500).
func TestStatusOf(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{service.ErrUnauthenticated, 401},
		{service.ErrForbidden, 403},
		{errCSRF, 403},
		{errCrossOrigin, 403},
		{store.ErrNotFound, 404},
		{errNoPage, 404},
		{store.ErrExists, 409},
		{firmware.ErrNoPending, 409},
		{firmware.ErrNothingToRestore, 409},
		{store.ErrConflict, 409},
		{store.ErrNotCheckedIn, 409},
		{store.ErrRolloutLive, 409},
		{store.ErrNotOffered, 409},
		{service.ErrInvalid, 400},
		{firmware.ErrMAC, 400},
		{service.ErrTooLarge, 413},
		{&http.MaxBytesError{Limit: 1}, 413},
		{store.ErrBusy, 503},
		{signin.ErrBusy, 503},
		{store.ErrUnavailable, 503},
		{errors.New("disk on fire"), 500},
		{service.ErrNoRole, 500}, // wrapped in ErrForbidden when returned
		{service.ErrBadCredentials, 401},
		{store.ErrIntegrity, 400},
		{store.ErrClosed, 503},
		{store.ErrSchema, 500},
		{store.ErrRevoked, 409},
		{store.ErrFollower, 409},
		{firmware.ErrReplica, 400},
		{firmware.ErrCertSerial, 400},
		{firmware.ErrNotApproved, 409},
		{firmware.ErrAlreadyApproved, 409},
		{firmware.ErrSchedule, 409},
		{firmware.ErrVersion, 400},
		{firmware.ErrIdentity, 400},
		{firmware.ErrPlan, 400},
		{firmware.ErrShare, 400},
		{firmware.ErrSite, 400},
		{firmware.ErrWindow, 400},
		{firmware.ErrRolloutNotRunning, 409},
		{firmware.ErrRolloutNotPaused, 409},
		{firmware.ErrRolloutEnded, 409},
	}
	mapped := map[string]bool{}
	for _, tc := range cases {
		mapped[tc.err.Error()] = true
		wrapped := fmt.Errorf("rule x: %w", tc.err)
		if got := statusOf(wrapped); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", wrapped, got, tc.want)
		}
	}
	for _, dir := range []string{"../service", "../store", "../../firmware"} {
		for _, name := range sentinels(t, dir) {
			if !mapped[name] {
				t.Errorf("%s declares the error %q, which TestStatusOf does not map: give it a status here (and in statusOf)", dir, name)
			}
		}
	}
}

// sentinels returns the messages of the exported errors.New variables of
// the package in dir.
func sentinels(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if !id.IsExported() || i >= len(vs.Values) {
					continue
				}
				call, ok := vs.Values[i].(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					continue
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "New" {
					continue
				}
				if lit, ok := call.Args[0].(*ast.BasicLit); ok {
					msg, _ := strconv.Unquote(lit.Value)
					out = append(out, msg)
				}
			}
			return true
		})
	}
	return out
}

// TestFormLimit: a form larger than 64 KiB is refused, 413.
func TestFormLimit(t *testing.T) {
	e := newEnv(t, Config{}, 0)
	c := e.signedIn("alice", alicePW)
	r := c.change("/testdevices/add", url.Values{"note": {strings.Repeat("x", 70<<10)}})
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB form: %s, want 413", r.Status)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/devices?q=a":          "/devices?q=a",
		"/devices/00-04-F2":     "/devices/00-04-F2",
		"//evil.example":        "/",
		"https://evil.example/": "/",
		"/\\evil":               "/",
		"devices":               "/",
		"/signin":               "/",
		"/x\r\nSet-Cookie: a=b": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
