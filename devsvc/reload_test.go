package devsvc

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/provisioning"
)

// reloading is a running Serve whose reloads the test asks for.
type reloading struct {
	*running
	reloads chan struct{}
	results chan ReloadResult
	file    *datadir.Settings // the settings of the last file that reloaded
}

func serveReloading(t *testing.T, edit func(*datadir.Settings), opts func(*ServeOptions)) *reloading {
	t.Helper()
	r := &reloading{reloads: make(chan struct{}), results: make(chan ReloadResult, 1)}
	r.running = serveOpts(t, edit, "", withAlice, func(_ string, o *ServeOptions) {
		o.Reload, o.Reloaded = r.reloads, func(res ReloadResult) { r.results <- res }
		if opts != nil {
			opts(o)
		}
	})
	return r
}

// reload writes the settings file (the last one that reloaded, changed by
// edit, with raw lines appended) and has Serve reload it.
func (r *reloading) reload(t *testing.T, edit func(*datadir.Settings), raw string) ReloadResult {
	t.Helper()
	if r.file == nil {
		s, err := datadir.LoadSettings(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		r.file = &s
	}
	s := *r.file
	if edit != nil {
		edit(&s)
	}
	if err := os.WriteFile(filepath.Join(r.dir, datadir.ConfigFile), append(s.Render(), raw...), 0o640); err != nil {
		t.Fatal(err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case r.reloads <- struct{}{}:
	case <-timeout.C:
		t.Fatal("Serve did not take the reload within 30s")
	}
	select {
	case res := <-r.results:
		if res.Err == nil {
			r.file = &s
		}
		return res
	case <-timeout.C:
		t.Fatal("the reload did not end within 30s")
	}
	return ReloadResult{}
}

func (r *reloading) warnings(t *testing.T) []string {
	t.Helper()
	st, err := r.admin(t).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Warnings
}

// TestServeReload changes settings under a running Serve and reloads:
// what can change applies at once and keeps the state it had (a sign-in
// failure counted before still counts), what needs a restart is said and
// not applied, and the listeners stay where they are.
func TestServeReload(t *testing.T) {
	r := serveReloading(t, func(s *datadir.Settings) { s.CheckInterval, s.CheckJitter = 24*time.Hour, 0 }, nil)
	if a := r.checkIn(t); a.NextCheck != 24*time.Hour || a.MovedInternalURL != "" {
		t.Fatalf("before the reload: next check %v, moved %q", a.NextCheck, a.MovedInternalURL)
	}
	basic, _ := r.signIns(t)
	if code := basic("alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d, want 401", code)
	}

	res := r.reload(t, func(s *datadir.Settings) {
		s.CheckInterval = 6 * time.Hour
		s.MovedInternalURL = "https://dus2.contoso.com/"
		s.SignInMaxFailures = 2
		s.MaxLogFileSize = 100
		s.ExternalName = "dus-ext.contoso.com" // in the certificate: a restart
		s.InventoryFlush = time.Second         // the store's: a restart
	}, "")
	if res.Err != nil {
		t.Fatalf("reload: %v", res.Err)
	}
	if want := []string{"moved_internal_url", "check_interval", "signin_max_failures", "max_log_file_size"}; !slices.Equal(res.Applied, want) {
		t.Errorf("applied %q, want %q", res.Applied, want)
	}
	if want := []string{"external_name", "inventory_flush"}; !slices.Equal(res.NeedRestart, want) {
		t.Errorf("need a restart: %q, want %q", res.NeedRestart, want)
	}
	a := r.checkIn(t) // on the listener bound at start
	if a.NextCheck != 6*time.Hour || !strings.HasPrefix(a.MovedInternalURL, "https://dus2.contoso.com/") {
		t.Errorf("after the reload: next check %v, moved %q; want 6h and the new URL", a.NextCheck, a.MovedInternalURL)
	}
	// The failure before the reload counts against the new limit of 2.
	if code := basic("alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d, want 401", code)
	}
	if code := basic("alice", "Winter2026!"); code != http.StatusUnauthorized {
		t.Errorf("right password after 2 wrong ones, the first before the reload = %d, want 401: locked", code)
	}
	c, base := r.device(t, false, nil)
	q := url.Values{"type": {"CELog"}, "name": {"a.clg"}, "mac": {"00-04-F2-00-00-01"}}
	if code, _ := do(t, c, http.MethodPost, base+devlogs.Path+"?"+q.Encode(), bytes.Repeat([]byte("x"), 101), nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("log upload over the reloaded max_log_file_size = %d, want 413", code)
	}
	warnings := r.warnings(t)
	if !slices.ContainsFunc(warnings, func(w string) bool {
		return strings.Contains(w, "take effect only after a restart: external_name, inventory_flush")
	}) {
		t.Errorf("status warnings %q, want one naming the settings that need a restart", warnings)
	}

	// Back as they were: nothing needs a restart any more.
	res = r.reload(t, func(s *datadir.Settings) {
		s.ExternalName, s.InventoryFlush = "ucupdates."+testDomain, datadir.DefaultSettings(testDomain).InventoryFlush
	}, "")
	if res.Err != nil || len(res.NeedRestart) != 0 || len(res.Applied) != 0 {
		t.Errorf("reload of the start's restart-only values: %+v, want nothing applied and no restart", res)
	}
	if w := r.warnings(t); slices.ContainsFunc(w, func(w string) bool { return strings.Contains(w, "restart") }) {
		t.Errorf("status warnings %q, want none about a restart", w)
	}
}

// TestServeReloadRefused: a settings file that does not parse, or that a
// part refuses, changes nothing; the service says so until a good one is
// reloaded.
func TestServeReloadRefused(t *testing.T) {
	r := serveReloading(t, func(s *datadir.Settings) { s.CheckInterval, s.CheckJitter = 24*time.Hour, 0 }, nil)
	for _, tt := range []struct {
		name, raw string
		edit      func(*datadir.Settings)
		want      string
	}{
		{"does not parse", "check_interval = soon\n", nil, "check_interval"},
		{"a part refuses it", "", func(s *datadir.Settings) {
			s.CheckInterval = time.Hour              // would apply...
			s.ValidLogFileTypes = []string{"../etc"} // ...but the log uploads refuse this
		}, "cannot name a folder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.reload(t, tt.edit, tt.raw)
			if res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) {
				t.Fatalf("reload = %v, want an error naming %q", res.Err, tt.want)
			}
			if a := r.checkIn(t); a.NextCheck != 24*time.Hour {
				t.Errorf("next check after a refused reload = %v, want the running 24h", a.NextCheck)
			}
			if w := r.warnings(t); !slices.ContainsFunc(w, func(w string) bool {
				return strings.Contains(w, "could not be reloaded") && strings.Contains(w, tt.want)
			}) {
				t.Errorf("status warnings %q, want one saying the file could not be reloaded, and why", w)
			}
			c, base := r.device(t, false, nil)
			q := url.Values{"type": {"CELog"}, "name": {"a.clg"}}
			if code, body := do(t, c, http.MethodPost, base+devlogs.Path+"?"+q.Encode(), []byte("log"), nil); code != http.StatusCreated {
				t.Errorf("log upload of a running type = %d %s, want 201", code, body)
			}
		})
	}
	res := r.reload(t, func(s *datadir.Settings) { s.CheckInterval = 12 * time.Hour }, "")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if a := r.checkIn(t); a.NextCheck != 12*time.Hour {
		t.Errorf("next check after a good reload = %v, want 12h", a.NextCheck)
	}
	if w := r.warnings(t); slices.ContainsFunc(w, func(w string) bool { return strings.Contains(w, "could not be reloaded") }) {
		t.Errorf("status warnings %q after a good reload, want none about the file", w)
	}
}

// TestServeReloadProvisioning: provisioning is made anew by a reload and
// gives signed-in devices the new check interval.
func TestServeReloadProvisioning(t *testing.T) {
	r := serveReloading(t, nil, nil)
	if res := r.reload(t, func(s *datadir.Settings) { s.CheckInterval = 3 * time.Hour }, ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	c, base := r.device(t, false, nil)
	code, body := do(t, c, http.MethodPost, base+provisioning.Path, nil, func(req *http.Request) { req.SetBasicAuth("alice", "Winter2026!") })
	if code != http.StatusOK {
		t.Fatalf("sign-in = %d %s", code, body)
	}
	doc, err := provisioning.ParseDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	if doc.CheckInterval != 3*time.Hour {
		t.Errorf("provisioning document's check interval after the reload = %v, want 3h", doc.CheckInterval)
	}
}

// TestReloadableSettings keeps the list of settings a reload applies
// honest: each names a setting, each is applied by the handlers (a
// setting that reloads is documented as such in docs/operations.md), and
// every setting is documented as reloadable or needing a restart.
func TestReloadableSettings(t *testing.T) {
	keys := datadir.Keys()
	for _, k := range reloadable {
		if !slices.Contains(keys, k) {
			t.Errorf("reloadable names %q, which is no setting", k)
		}
	}
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	section := func(title string) string {
		m := regexp.MustCompile("(?s)" + regexp.QuoteMeta(title) + "(.*?)\n\n").FindSubmatch(doc)
		if m == nil {
			t.Fatalf("docs/operations.md has no paragraph starting %q", title)
		}
		return string(m[1])
	}
	reloads, restarts := section("**Applied by a reload:**"), section("**Need a restart:**")
	for _, k := range keys {
		in, re := strings.Contains(reloads, "`"+k+"`"), strings.Contains(restarts, "`"+k+"`")
		switch want := slices.Contains(reloadable, k); {
		case want && (!in || re):
			t.Errorf("docs/operations.md does not list %s among the settings a reload applies (only)", k)
		case !want && (!re || in):
			t.Errorf("docs/operations.md does not list %s among the settings that need a restart (only)", k)
		}
	}
}

// TestServeMetrics runs Serve with a metrics listener: it serves the
// metrics, which count what the devices did, and the checks; the device
// listeners serve the checks too; status lists the listener.
func TestServeMetrics(t *testing.T) {
	r := serveOpts(t, nil, "", nil, func(_ string, o *ServeOptions) { o.MetricsAddr = "127.0.0.1:0" })
	if r.ri.Metrics == "" {
		t.Fatal("RunInfo has no metrics listener")
	}
	r.checkIn(t)
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("http://" + r.ri.Metrics + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d\n%s", code, body)
	}
	for _, want := range []string{
		`opendus_checkins_total{answer="nothing",listener="internal"} 1`,
		`opendus_build_info{goversion="go`,
		`opendus_ready{check="store"} 1`,
		`opendus_ready{check="listeners"} 1`,
		`opendus_inventory_writable 1`,
		`opendus_certificate_remaining_seconds{certificate="server"}`,
		`opendus_config_last_reload_successful 1`,
		`opendus_signin_refusals_total{via="ntlm"} 0`,
		`opendus_log_uploads_total{result="stored"} 0`,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for path, want := range map[string]string{"/readyz": "ok\n", "/healthz": "ok\n"} {
		if code, body := get("http://" + r.ri.Metrics + path); code != http.StatusOK || body != want {
			t.Errorf("metrics listener %s = %d %q, want 200 %q", path, code, body, want)
		}
		c, base := r.device(t, false, nil)
		if code, body := do(t, c, http.MethodGet, base+path, nil, nil); code != http.StatusOK || string(body) != want {
			t.Errorf("internal listener %s = %d %q, want 200 %q", path, code, body, want)
		}
	}
	if code, body := get("http://" + r.ri.Metrics + "/"); code != http.StatusNotFound || !strings.Contains(body, "/metrics") {
		t.Errorf("metrics listener / = %d %q, want 404 naming what it serves", code, body)
	}
	st, err := r.admin(t).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Listeners, func(l adminapi.Listener) bool { return l.Name == "metrics" && l.Address == r.ri.Metrics }) {
		t.Errorf("status listeners %+v, want the metrics listener", st.Listeners)
	}
}
