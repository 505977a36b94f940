package devsvc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
)

// The composition tests run Serve in the test process on loopback ports
// chosen at start, with a data directory made by Init in t.TempDir(), and
// check that each setting that changes behaviour reaches the handler that
// uses it, through the listener a device or admin uses.

const testDomain = "contoso.com"

// running is a Serve in the test process.
type running struct {
	dir  string
	ri   datadir.RunInfo
	cs   *certs.Store
	stop func() error
}

// serve initialises a data directory, lets edit change its settings and
// seed its store, and runs Serve until the test ends (or stop).
func serve(t *testing.T, edit func(*datadir.Settings), seed func(*store.Store)) *running {
	t.Helper()
	return serveWith(t, edit, "", seed)
}

// serveWith is serve with raw lines appended to the settings file.
func serveWith(t *testing.T, edit func(*datadir.Settings), raw string, seed func(*store.Store)) *running {
	t.Helper()
	return serveOpts(t, edit, raw, seed, nil)
}

// serveOpts is serveWith with options to change.
func serveOpts(t *testing.T, edit func(*datadir.Settings), raw string, seed func(*store.Store), opts func(dir string, o *ServeOptions)) *running {
	t.Helper()
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	s, err := datadir.LoadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil || raw != "" {
		if edit != nil {
			edit(&s)
		}
		if err := os.WriteFile(filepath.Join(dir, datadir.ConfigFile), append(s.Render(), raw...), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if seed != nil {
		st, err := store.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		seed(st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan datadir.RunInfo, 1)
	done := make(chan error, 1)
	o := ServeOptions{Dir: dir, InternalAddr: "127.0.0.1:0", ExternalAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", ConsoleAddr: "127.0.0.1:0",
		Ready: func(ri datadir.RunInfo) { ready <- ri }}
	if opts != nil {
		opts(dir, &o)
	}
	go func() { done <- Serve(ctx, o) }()
	r := &running{dir: dir}
	select {
	case r.ri = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	var stopped bool
	var stopErr error
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	if r.cs, err = certs.Open(filepath.Join(dir, datadir.CertsDir), certs.Config{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// device returns a device's HTTP client for the internal or external
// listener, and the base URL with the name devices use.
func (r *running) device(t *testing.T, external bool, wrap func(http.RoundTripper) http.RoundTripper) (*http.Client, string) {
	addr, name := r.ri.Internal, "ucupdates-r2."+testDomain
	if external {
		addr, name = r.ri.External, "ucupdates."+testDomain
	}
	c := certstest.Client(r.cs.DeviceTLSConfig(), addr)
	if wrap != nil {
		c.Transport = wrap(c.Transport)
	}
	_, port, _ := net.SplitHostPort(addr)
	return c, "https://" + net.JoinHostPort(name, port)
}

func (r *running) admin(t *testing.T) *adminapi.Client {
	conf, err := r.cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminapi.Dial(r.ri.Admin, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends one request and returns the status and body.
func do(t *testing.T, c *http.Client, method, u string, body []byte, prepare func(*http.Request)) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

var cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}

// checkIn posts a check-in of an unknown CX600 on the LAN and returns the
// answer.
func (r *running) checkIn(t *testing.T) deviceproto.Answer {
	t.Helper()
	c, base := r.device(t, false, nil)
	ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-00-01"}
	code, body := do(t, c, http.MethodPost, base+deviceproto.CheckInPath, ci.AppendXML(nil), nil)
	if code != http.StatusOK {
		t.Fatalf("check-in = %d %s", code, body)
	}
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func withAlice(st *store.Store) {
	if err := st.PutAccount(context.Background(), "test", firmware.Account{Name: "alice", NTHash: ntlm.NTHash("Winter2026!")}); err != nil {
		panic(err)
	}
}

func TestServeCheckInterval(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) { s.CheckInterval, s.CheckJitter = 6*time.Hour, 0 }, nil)
	if a := r.checkIn(t); a.NextCheck != 6*time.Hour {
		t.Errorf("NextCheck = %v, want check_interval 6h (no jitter)", a.NextCheck)
	}
	// Provisioning tells signed-in devices the same interval.
	r2 := serve(t, func(s *datadir.Settings) { s.CheckInterval = 6 * time.Hour }, withAlice)
	c, base := r2.device(t, false, nil)
	code, body := do(t, c, http.MethodPost, base+provisioning.Path, nil, func(req *http.Request) { req.SetBasicAuth("alice", "Winter2026!") })
	if code != http.StatusOK {
		t.Fatalf("sign-in = %d %s", code, body)
	}
	doc, err := provisioning.ParseDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	if doc.CheckInterval != 6*time.Hour {
		t.Errorf("provisioning document's check interval = %v, want 6h", doc.CheckInterval)
	}
}

func TestServeMovedURLs(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) {
		s.MovedInternalURL, s.MovedExternalURL = "https://dus2.contoso.com/", "https://dus2-ext.contoso.com/"
	}, nil)
	a := r.checkIn(t)
	if !strings.HasPrefix(a.MovedInternalURL, "https://dus2.contoso.com/") || !strings.HasPrefix(a.MovedExternalURL, "https://dus2-ext.contoso.com/") {
		t.Errorf("moved URLs = %q, %q, want the settings' moved_internal_url and moved_external_url", a.MovedInternalURL, a.MovedExternalURL)
	}
}

// signIns returns sign-ins through the running service: Basic on the LAN
// (provisioning) and NTLM at the edge (a check-in), each on a new
// connection, returning the status.
func (r *running) signIns(t *testing.T) (basic, ntlmSignIn func(user, password string) int) {
	basic = func(user, pw string) int {
		c, base := r.device(t, false, nil)
		code, _ := do(t, c, http.MethodPost, base+provisioning.Path, nil, func(req *http.Request) { req.SetBasicAuth(user, pw) })
		return code
	}
	ntlmSignIn = func(user, pw string) int {
		c, base := r.device(t, true, func(rt http.RoundTripper) http.RoundTripper { return ntlmssp.Negotiator{RoundTripper: rt} })
		ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-00-02", User: user}
		code, _ := do(t, c, http.MethodPost, base+deviceproto.CheckInPathExt, ci.AppendXML(nil), func(req *http.Request) { req.SetBasicAuth(`CONTOSO\`+user, pw) })
		return code
	}
	return basic, ntlmSignIn
}

// TestServeSignInLockout checks that the sign-in settings reach the one
// limiter both sign-ins share: wrong passwords through Basic on the LAN
// and NTLM at the edge add up to signin_max_failures and lock the account
// in both, and only that account.
func TestServeSignInLockout(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) { s.SignInMaxFailures, s.SignInLockout = 2, time.Hour }, withAlice)
	if _, err := r.admin(t).PutAccount(t.Context(), "bob", "Summer2026!", false); err != nil {
		t.Fatal(err)
	}
	basic, ntlmSignIn := r.signIns(t)
	if code := ntlmSignIn("alice", "Winter2026!"); code != http.StatusOK {
		t.Fatalf("NTLM: right password = %d, want 200", code)
	}
	if code := basic("alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("Basic: wrong password = %d, want 401", code)
	}
	if code := ntlmSignIn("alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("NTLM: wrong password = %d, want 401", code)
	}
	if code := basic("alice", "Winter2026!"); code != http.StatusUnauthorized {
		t.Errorf("Basic: right password after signin_max_failures = 2 failures (one each way) = %d, want 401 (locked out)", code)
	}
	if code := ntlmSignIn("alice", "Winter2026!"); code != http.StatusUnauthorized {
		t.Errorf("NTLM: right password after signin_max_failures = 2 failures (one each way) = %d, want 401 (locked out)", code)
	}
	if code := basic("bob", "Summer2026!"); code != http.StatusOK {
		t.Errorf("Basic: bob from the same address = %d, want 200 (only alice is locked)", code)
	}
	if code := ntlmSignIn("bob", "Summer2026!"); code != http.StatusOK {
		t.Errorf("NTLM: bob from the same address = %d, want 200 (only alice is locked)", code)
	}
}

// TestServeOldSettingNames: a settings file with the old ntlm_* names
// still works, and devsvc status says what to rename.
func TestServeOldSettingNames(t *testing.T) {
	r := serveWith(t, nil, "\nntlm_max_failures = 1\nntlm_lockout = 1h\n", withAlice)
	basic, _ := r.signIns(t)
	if code := basic("alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d, want 401", code)
	}
	if code := basic("alice", "Winter2026!"); code != http.StatusUnauthorized {
		t.Errorf("right password after ntlm_max_failures = 1 failure = %d, want 401 (the old name still works)", code)
	}
	st, err := r.admin(t).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ntlm_max_failures is now called signin_max_failures", "ntlm_lockout is now called signin_lockout"} {
		if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("status warnings %q lack %q", st.Warnings, want)
		}
	}
}

func TestServeLogLimits(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) { s.MaxLogFileSize, s.MaxLogStorage = 100, 150 }, nil)
	c, base := r.device(t, false, nil)
	upload := func(name string, size int) int {
		q := url.Values{"type": {"CELog"}, "name": {name}, "mac": {"00-04-F2-00-00-01"}}
		code, _ := do(t, c, http.MethodPost, base+devlogs.Path+"?"+q.Encode(), bytes.Repeat([]byte("x"), size), nil)
		return code
	}
	if code := upload("big.clg", 101); code != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over max_log_file_size = %d, want 413", code)
	}
	if code := upload("a.clg", 100); code != http.StatusCreated {
		t.Fatalf("upload = %d, want 201", code)
	}
	if code := upload("b.clg", 100); code != http.StatusInsufficientStorage {
		t.Errorf("upload over max_log_storage = %d, want 507", code)
	}
}

// TestServeMinFreeSpace: with min_free_space above the disk's free space,
// log uploads are refused with 507 and status warns, while check-ins are
// still recorded: the floor is headroom for the store, not a limit on it.
func TestServeMinFreeSpace(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) { s.MinFreeSpace = 1 << 62 }, nil)
	c, base := r.device(t, false, nil)
	q := url.Values{"type": {"CELog"}, "name": {"a.clg"}, "mac": {"00-04-F2-00-00-01"}}
	if code, body := do(t, c, http.MethodPost, base+devlogs.Path+"?"+q.Encode(), []byte("log"), nil); code != http.StatusInsufficientStorage ||
		!strings.Contains(string(body), "nearly full") {
		t.Errorf("upload below min_free_space = %d %q, want 507 saying the disk is nearly full", code, body)
	}
	r.checkIn(t)
	if code, body := do(t, c, http.MethodGet, base+"/healthz", nil, nil); code != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok: the inventory is written", code, body)
	}
	admin := r.admin(t)
	st, err := admin.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Inventory.Writable || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "below min_free_space") {
		t.Errorf("status: inventory %+v, warnings %q; want writable and a warning about min_free_space", st.Inventory, st.Warnings)
	}
	if ds, err := admin.Devices(t.Context()); err != nil || len(ds) != 1 {
		t.Errorf("devices = %d (%v), want the check-in recorded", len(ds), err)
	}
}

func TestServeRoundTableDeploy(t *testing.T) {
	tree := t.TempDir()
	p := filepath.Join(tree, "RoundTable", "Microsoft", "RoundTable", "A", "ENU", "4.0.7577.4372")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "RoundTable.nbt"), []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, deploy := range []bool{true, false} {
		r := serve(t, func(s *datadir.Settings) { s.DeployRoundTableOnImport = deploy }, nil)
		res, err := r.admin(t).ImportTree(t.Context(), tree, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Deployed != deploy || res[0].Rule.Approved.IsZero() == deploy {
			t.Errorf("deploy_roundtable_on_import = %v: import = %+v, want deployed %v", deploy, res, deploy)
		}
	}
}

// TestServeStops checks the shutdown: Serve returns once ctx is done, the
// run file is gone, and the store is closed (it opens again).
func TestServeStops(t *testing.T) {
	r := serve(t, nil, nil)
	if _, err := datadir.ReadRunInfo(r.dir); err != nil {
		t.Fatalf("run file while serving: %v", err)
	}
	r.checkIn(t)
	if err := r.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := datadir.ReadRunInfo(r.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run file after Serve returned: %v, want it removed", err)
	}
	st, err := store.Open(r.dir, nil)
	if err != nil {
		t.Fatalf("store after Serve returned: %v", err)
	}
	defer st.Close()
	if ds, err := st.Devices(t.Context()); err != nil || len(ds) != 1 {
		t.Errorf("inventory after shutdown = %d devices (%v), want the one check-in flushed", len(ds), err)
	}
}

// TestServePortInUse checks that a taken port fails the start, naming the
// setting and the flag, and leaves nothing running.
func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	err = Serve(t.Context(), ServeOptions{Dir: dir, InternalAddr: "127.0.0.1:0", ExternalAddr: ln.Addr().String(), AdminAddr: "127.0.0.1:0", ConsoleAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "external_addr") || !strings.Contains(err.Error(), "--external-addr") {
		t.Errorf("Serve on a taken port = %v, want an error naming external_addr and --external-addr", err)
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatalf("store after a failed start: %v", err)
	}
	st.Close()
}

// TestServeImportSettings checks that max_import_bytes and rpm_keyring
// reach the service layer's importer.
func TestServeImportSettings(t *testing.T) {
	tree := t.TempDir()
	p := filepath.Join(tree, "UCPhone", "Polycom", "CX600", "A", "ENU", "4.0.7577.4372")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "CX600.nbt"), bytes.Repeat([]byte("x"), 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	r := serve(t, func(s *datadir.Settings) { s.MaxImportBytes = 1000 }, nil)
	if _, err := r.admin(t).ImportTree(t.Context(), tree, nil); err == nil || !strings.Contains(err.Error(), "max_import_bytes") {
		t.Errorf("import of 2,000 bytes with max_import_bytes = 1000: %v, want a refusal naming the setting", err)
	}
	r = serve(t, func(s *datadir.Settings) { s.RPMKeyring = "keys/missing.asc" }, nil)
	_, err := r.admin(t).ImportTree(t.Context(), tree, nil)
	if err == nil || !strings.Contains(err.Error(), "rpm_keyring") || !strings.Contains(err.Error(), filepath.Join(r.dir, "keys", "missing.asc")) {
		t.Errorf("import with an unreadable rpm_keyring: %v, want a refusal naming the setting and the path under the data directory", err)
	}
}

// TestStallSettings: request_body_timeout reaches the check-in, report and
// sign-in handlers and log_upload_timeout the log uploads: a body that
// stalls is answered 408 at about that time and its connection closed.
// A request answered without its body being read (an unknown path, NTLM's
// 401 at the edge) is answered and closed at request_body_timeout too,
// where the server would otherwise wait for the body for ever.
func TestStallSettings(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := serve(t, func(s *datadir.Settings) {
		s.RequestBodyTimeout, s.LogUploadTimeout = timeout, 2*timeout
	}, nil)
	for _, tt := range []struct {
		name, addr, path string
		within           time.Duration
	}{
		{"check-in", r.ri.Internal, deviceproto.CheckInPath, timeout},
		{"report", r.ri.Internal, deviceproto.StatusPath, timeout},
		{"sign-in", r.ri.Internal, provisioning.Path, timeout},
		{"log upload", r.ri.Internal, devlogs.Path + "?type=CELog&name=a.clg", 2 * timeout},
		{"unknown path", r.ri.Internal, "/nowhere", timeout},
		{"external, before NTLM", r.ri.External, deviceproto.CheckInPathExt, timeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := r.cs.DeviceTLSConfig()
			cfg.ServerName = "ucupdates-r2." + testDomain
			if tt.addr == r.ri.External {
				cfg.ServerName = "ucupdates." + testDomain
			}
			c, err := tls.Dial("tcp", tt.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\n<Dev", tt.path, cfg.ServerName)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]int{"unknown path": 404, "external, before NTLM": 401}[tt.name]
			if want == 0 {
				want = http.StatusRequestTimeout
			}
			if resp.StatusCode != want {
				t.Errorf("stalled %s = %d, want %d", tt.name, resp.StatusCode, want)
			}
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("after the answer: read %d, %v; want EOF (connection closed)", n, err)
			}
			if d := time.Since(start); d < tt.within || d > tt.within+5*time.Second {
				t.Errorf("dropped after %v, want about %v", d, tt.within)
			}
		})
	}
}

// TestServeConsole: the console is served on its own listener with the
// server certificate, which a browser on this host verifies against the
// CA at 127.0.0.1 and localhost; status lists it; and its sign-ins count
// against the settings' lockout (signin_max_failures).
func TestServeConsole(t *testing.T) {
	r := serve(t, func(s *datadir.Settings) { s.SignInMaxFailures = 2 }, nil)
	if r.ri.Console == "" {
		t.Fatal("no console in the run file")
	}
	adm := r.admin(t)
	if _, err := adm.AddConsoleAdmin(t.Context(), "alice", "admin", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(r.ri.Console)
	browser := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.cs.CertPool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(browser.CloseIdleConnections)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := browser.Get("https://" + net.JoinHostPort(host, port) + "/signin")
		if err != nil {
			t.Fatalf("GET the sign-in at %s: %v (the server certificate must cover it)", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET the sign-in at %s: %s, CSP %q", host, resp.Status, resp.Header.Get("Content-Security-Policy"))
		}
	}
	st, err := adm.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(st.Listeners, adminapi.Listener{Name: "console", Address: "https://127.0.0.1:" + port + "/"}) {
		t.Errorf("status listeners = %+v, want the console's URL", st.Listeners)
	}
	signIn := func(pw string) int {
		resp, err := browser.PostForm("https://127.0.0.1:"+port+"/signin", url.Values{"user": {"alice"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := signIn("correct horse battery staple"); code != http.StatusSeeOther {
		t.Fatalf("signing in: %d, want 303", code)
	}
	for range 2 {
		if code := signIn("wrong horse battery staple"); code != http.StatusUnauthorized {
			t.Fatalf("a wrong password: %d, want 401", code)
		}
	}
	if code := signIn("correct horse battery staple"); code != http.StatusUnauthorized {
		t.Errorf("the right password after signin_max_failures = 2 wrong ones: %d, want 401 (locked)", code)
	}
}
