package console

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/passhash"
	"github.com/opendus/opendus/signin"
)

const (
	alicePW = "correct horse battery staple"
	helpPW  = "a read-only admin's passphrase"
	cx600   = "UCPhone/Polycom/CX600/A/ENU"
)

var (
	certAdmin = service.Principal{Name: "cert:admin", Role: service.RoleAdmin}
	cx600ID   = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
)

// env is a console over a real store and service, served over real TLS,
// with alice (admin) and helpdesk (read-only), a rule for CX600 with
// 4.0.7577.4372 pending, the sites hq and ny, and devices that checked
// in from them.
type env struct {
	t       testing.TB
	st      *store.Store
	svc     *service.Service
	c       *Console
	srv     *httptest.Server
	clock   *clocktest.Clock
	devices []firmware.Device
}

func newEnv(t testing.TB, cfg Config, devices int) *env {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))
	st, err := store.Open(t.TempDir(), &store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lim := signin.New(signin.Config{Now: clock.Now})
	svc := service.New(st, service.Config{Now: clock.Now, Limiter: lim, SpoolDir: t.TempDir(),
		PasswordParams: passhash.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		Settings: func() []service.Setting {
			return []service.Setting{{Key: "console_addr", Value: "127.0.0.1:9444", Default: "127.0.0.1:9444", Help: "where the console is"}}
		},
	})
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	c, err := New(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, svc: svc, c: c, clock: clock}
	ctx := service.WithPrincipal(context.Background(), certAdmin)
	if _, err := svc.AddConsoleAdmin(ctx, "alice", service.RoleAdmin, alicePW); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsoleAdmin(ctx, "helpdesk", service.RoleReadOnly, helpPW); err != nil {
		t.Fatal(err)
	}
	e.importTree(ctx, "4.0.7577.4372")
	for _, site := range []firmware.Site{
		{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin"},
		{Name: "ny", Subnets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}, TimeZone: "America/New_York", Windows: firmware.MustParseSchedule("Mon-Fri 22:00-05:00")},
	} {
		if _, err := svc.PutSite(ctx, site, false); err != nil {
			t.Fatal(err)
		}
	}
	e.devices = e.checkIn(devices)
	e.srv = httptest.NewTLSServer(c)
	t.Cleanup(e.srv.Close)
	return e
}

// importTree imports one image of CX600 at version v.
func (e *env) importTree(ctx context.Context, v string) {
	e.t.Helper()
	up, err := e.svc.NewUpload(ctx, "tree")
	if err != nil {
		e.t.Fatal(err)
	}
	defer up.Close()
	w, err := up.TreeFile(cx600+"/"+v+"/CX600.nbt", 5)
	if err != nil {
		e.t.Fatal(err)
	}
	io.WriteString(w, "image")
	w.Close()
	if _, err := e.svc.Import(ctx, up, nil); err != nil {
		e.t.Fatal(err)
	}
}

// checkIn records n devices' check-ins through the store's API: CX600s
// on 4.0.7577.4300, every tenth failing an update, and a few CX500s;
// every third at ny, the others at hq.
func (e *env) checkIn(n int) []firmware.Device {
	e.t.Helper()
	ctx := context.Background()
	ds := make([]firmware.Device, n)
	for i := range ds {
		d := firmware.Device{
			MAC:    fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff),
			Serial: fmt.Sprintf("SN%08d", i), Identity: cx600ID, Version: firmware.MustParseVersion("4.0.7577.4300"),
			User: fmt.Sprintf("user%d@contoso.com", i), Location: firmware.Internal, Address: fmt.Sprintf("10.1.%d.%d", i>>8&0xff, i&0xff),
			LastCheckIn: e.clock.Now(), Site: "hq",
			Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("4.0.7577.4300")}},
		}
		if i%3 == 0 {
			d.Site, d.Address = "ny", fmt.Sprintf("10.2.%d.%d", i>>8&0xff, i&0xff)
		}
		if i%7 == 3 {
			d.Identity.Model = "CX500"
			d.Version = firmware.MustParseVersion("4.0.7577.4100")
		}
		d.Key, _ = firmware.DeviceKey(d.MAC, d.Serial)
		if i%10 == 5 {
			d.Offered = firmware.MustParseVersion("4.0.7577.4372") // it reports on what it was offered
		}
		e.retry(func() error { return e.st.RecordCheckIn(ctx, d) })
		if i%10 == 5 {
			r := store.Report{Key: d.Key, State: firmware.StateFailure, Target: firmware.MustParseVersion("4.0.7577.4372"), Error: "0x80070005"}
			e.retry(func() error { return e.st.Report(ctx, r) })
			d.State, d.Target, d.Error = r.State, r.Target, r.Error
		}
		ds[i] = d
	}
	if err := e.st.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// retry runs an inventory write until the queue takes it.
func (e *env) retry(write func() error) {
	e.t.Helper()
	for {
		err := write()
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrBusy) {
			e.t.Fatal(err)
		}
		if err := e.st.Flush(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// client is a browser of the console: a cookie jar, no redirects
// followed, and the last page's CSRF token.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	hc := *e.srv.Client() // a browser of its own: its own cookie jar
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{e: e, hc: &hc}
}

// signedIn returns a client signed in as user.
func (e *env) signedIn(user, password string) *client {
	e.t.Helper()
	c := e.client()
	resp := c.post("/signin", url.Values{"user": {user}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("signing in as %s: %s\n%s", user, resp.Status, resp.body)
	}
	c.get("/") // the CSRF token
	return c
}

type response struct {
	*http.Response
	body string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) do(req *http.Request) response {
	c.e.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return response{resp, string(b)}
}

func (c *client) get(p string) response {
	c.e.t.Helper()
	req, _ := http.NewRequest("GET", c.e.srv.URL+p, nil)
	return c.do(req)
}

// getStream opens an event stream and returns its answer with the body
// read up to the first event (or the whole body of an answer that is no
// stream), then closes it.
func (c *client) getStream(p string) response {
	c.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.e.srv.URL+p, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		return response{resp, string(b)}
	}
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for !strings.Contains(b.String(), "\ndata: ") || !strings.HasSuffix(b.String(), "\n\n") {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return response{resp, b.String()}
}

// post sends a form as it is (add csrf to send the token).
func (c *client) post(p string, form url.Values) response {
	c.e.t.Helper()
	req, _ := http.NewRequest("POST", c.e.srv.URL+p, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// change posts a form with the session's CSRF token.
func (c *client) change(p string, form url.Values) response {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf)
	return c.post(p, form)
}

// upload posts a file to /import as the import form does.
func (c *client) upload(name string, data []byte, token string) response {
	c.e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if token != "" {
		mw.WriteField("csrf", token)
	}
	fw, _ := mw.CreateFormFile("bundle", name)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", c.e.srv.URL+"/import", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

// zipOf zips files (name -> content) in order.
func zipOf(t testing.TB, files ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// startRollout starts a rollout of CX600's pending version in waves (the
// default plan's other settings), as cert:admin.
func (e *env) startRollout(t testing.TB, waves string) firmware.Rollout {
	t.Helper()
	plan := firmware.DefaultPlan()
	ws, err := firmware.ParseWaves(waves)
	if err != nil {
		t.Fatal(err)
	}
	plan.Waves = ws
	ro, err := e.svc.StartRollout(service.WithPrincipal(context.Background(), certAdmin), cx600, plan)
	if err != nil {
		t.Fatal(err)
	}
	return ro
}

// seq is the history's last number.
func (e *env) seq() uint64 { return e.st.Catalog().Seq() }

// samplePath fills a route pattern's wildcards with sample values.
func samplePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{$}", "")
	for _, w := range []struct{ wild, v string }{
		{"{key}", "00-04-F2-00-00-01"}, {"{id}", "1"}, {"{file}", "console.css"}, {"{rule}", cx600ID.RuleID()}, {"{name}", "hq"},
	} {
		path = strings.ReplaceAll(path, w.wild, w.v)
	}
	return method, path
}

// regexpAll returns the first group of every match of expr in s.
func regexpAll(expr, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(expr).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
