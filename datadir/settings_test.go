package datadir

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

func TestSettingsRoundTrip(t *testing.T) {
	s := DefaultSettings("contoso.com")
	s.AdminAddr = "127.0.0.1:7443"
	s.CheckInterval = 12 * time.Hour
	s.ValidLogFileTypes = []string{"CELog"}
	s.TrustedProxies = []string{"10.0.0.0/8", "2001:db8::/48", "192.0.2.10"}
	s.SignInMaxFailures, s.SignInLockout = 3, time.Hour
	s.ConsoleAddr, s.ConsoleIdleTimeout = "", 10*time.Minute
	s.RolloutRetries, s.OverdueTolerance, s.WindowMinOpen = 0, 1250, 90*time.Minute
	got, err := ParseSettings("test.conf", s.Render())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("Render then Parse changed the settings (-want +got):\n%s", diff)
	}
	def, err := ParseSettings("def.conf", DefaultSettings("contoso.com").Render())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultSettings("contoso.com"), def); diff != "" {
		t.Errorf("defaults round trip (-want +got):\n%s", diff)
	}
}

// TestEntries checks the list a reader of the settings gets: every key
// once, with its value and default.
func TestEntries(t *testing.T) {
	s := DefaultSettings("contoso.com")
	s.ConsoleAddr = "127.0.0.1:8444"
	s.LDAPBindPasswordFile = "/etc/opendus/ldap.pw"
	es := s.Entries()
	if len(es) != len(settings) {
		t.Fatalf("%d entries, want %d", len(es), len(settings))
	}
	byKey := map[string]Entry{}
	for _, e := range es {
		if _, dup := byKey[e.Key]; dup || e.Help == "" {
			t.Errorf("entry %+v: a duplicate or without help", e)
		}
		byKey[e.Key] = e
	}
	for _, want := range []Entry{
		{Key: "console_addr", Value: "127.0.0.1:8444", Default: "127.0.0.1:9444"},
		{Key: "console_idle_timeout", Value: "30m", Default: "30m"},
		{Key: "ldap_bind_password_file", Value: "/etc/opendus/ldap.pw", Default: ""},
	} {
		if got := byKey[want.Key]; got.Value != want.Value || got.Default != want.Default {
			t.Errorf("entry %s = %q (default %q), want %q (default %q)", want.Key, got.Value, got.Default, want.Value, want.Default)
		}
	}
}

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no domain", "internal_addr = :443\n", "domain is not set"},
		{"unknown key", "domain = a.b\nfoo = 1\n", `unknown setting "foo"`},
		{"no equals", "domain = a.b\njunk\n", "want key = value"},
		{"bad duration", "domain = a.b\ncheck_interval = soon\n", "check_interval"},
		{"bad bool", "domain = a.b\ndeploy_roundtable_on_import = maybe\n", "true or false"},
		{"bad number", "domain = a.b\nmax_log_file_size = -1\n", "whole number"},
		{"bad share", "domain = a.b\noverdue_tolerance = 120%\n", `overdue_tolerance: want a percentage like 5%, got "120%"`},
		{"bad proxy", "domain = a.b\ntrusted_proxies = 10.0.0.0/8, proxy.a.b\n", `trusted_proxies: want addresses or CIDR prefixes like 10.0.0.0/8, got "proxy.a.b"`},
		{"bad prefix", "domain = a.b\ntrusted_proxies = 10.0.0.0/33\n", "trusted_proxies"},
		{"old and new name", "domain = a.b\nsignin_lockout = 1h\nntlm_lockout = 2h\n", "x.conf:3: ntlm_lockout is the old name of signin_lockout, already set on line 2: keep one"},
		{"new after old name", "domain = a.b\nntlm_max_failures = 3\nsignin_max_failures = 4\n", "x.conf:3: signin_max_failures is already set on line 2 under its old name: keep one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSettings("x.conf", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSettings(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 10 * 24 * time.Hour: "10d", 5 * time.Minute: "5m", 200 * time.Millisecond: "200ms", 90 * time.Minute: "1h30m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := parseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("parseDuration(%q) = %v, %v, want %v", formatDuration(d), back, err, d)
		}
	}
}

// TestRenamedSettings: the old names of the sign-in settings are still
// read, each with a warning that names the new one; the file init writes
// lists only the new names.
func TestRenamedSettings(t *testing.T) {
	in := "domain = contoso.com\nntlm_max_failures = 3\nntlm_max_address_failures = 0\nntlm_lockout = 1h\n"
	s, err := ParseSettings("devsvc.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.SignInMaxFailures != 3 || s.SignInMaxAddressFailures != 0 || s.SignInLockout != time.Hour {
		t.Errorf("old names read as %d, %d, %v; want 3, 0, 1h", s.SignInMaxFailures, s.SignInMaxAddressFailures, s.SignInLockout)
	}
	want := []string{
		"devsvc.conf:2: ntlm_max_failures is now called signin_max_failures: rename it (the old name still works)",
		"devsvc.conf:3: ntlm_max_address_failures is now called signin_max_address_failures: rename it (the old name still works)",
		"devsvc.conf:4: ntlm_lockout is now called signin_lockout: rename it (the old name still works)",
	}
	if diff := cmp.Diff(want, s.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if s, _ := ParseSettings("devsvc.conf", []byte("domain = contoso.com\nsignin_lockout = 1h\n")); s.Warnings != nil {
		t.Errorf("warnings of a file with the new names: %q, want none", s.Warnings)
	}
	rendered := string(DefaultSettings("contoso.com").Render())
	for _, want := range []string{"# signin_max_failures = 5\n", "# signin_max_address_failures = 20\n", "# signin_lockout = 15m\n", "# trusted_proxies = \n"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("the settings file init writes lacks %q", want)
		}
	}
	for old := range renamed {
		if strings.Contains(rendered, "# "+old+" =") {
			t.Errorf("the settings file init writes lists the old name %s", old)
		}
	}
}

func TestSetKeys(t *testing.T) {
	def := DefaultSettings("contoso.com").Render()
	edited := strings.Replace(string(def), "# check_interval = 24h", "# the lab wants 12h\ncheck_interval = 12h", 1)
	tests := []struct {
		name  string
		in    string
		kv    map[string]string
		want  []string // lines the result holds
		wantS func(Settings) bool
	}{
		{"active line replaced", edited, map[string]string{"domain": "fabrikam.com"},
			[]string{"domain = fabrikam.com\n", "# the lab wants 12h\ncheck_interval = 12h\n"},
			func(s Settings) bool { return s.Domain == "fabrikam.com" && s.CheckInterval == 12*time.Hour }},
		{"commented default becomes active", edited, map[string]string{"internal_name": "dus.contoso.com"},
			[]string{"\ninternal_name = dus.contoso.com\n"},
			func(s Settings) bool { return s.InternalName == "dus.contoso.com" && s.CheckInterval == 12*time.Hour }},
		{"missing key appended", "domain = contoso.com", map[string]string{"external_name": "ext.contoso.com"},
			[]string{"domain = contoso.com\nexternal_name = ext.contoso.com\n"},
			func(s Settings) bool { return s.ExternalName == "ext.contoso.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := SetKeys("x.conf", []byte(tt.in), tt.kv)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("SetKeys result lacks %q:\n%s", w, out)
				}
			}
			s, err := ParseSettings("x.conf", out)
			if err != nil || !tt.wantS(s) {
				t.Errorf("ParseSettings(result) = %+v, %v", s, err)
			}
			if n := strings.Count(string(out), "\n"); n < strings.Count(tt.in, "\n") {
				t.Errorf("SetKeys dropped lines: %d, had %d", n, strings.Count(tt.in, "\n"))
			}
		})
	}
	if _, err := SetKeys("x.conf", def, map[string]string{"check_interval": "soon"}); err == nil {
		t.Error("SetKeys to an invalid value succeeded")
	}
}

func TestRetryPolicy(t *testing.T) {
	s := DefaultSettings("contoso.com")
	if got := s.RetryPolicy(); got != (firmware.RetryPolicy{Retries: 3, Backoff: time.Hour, MaxBackoff: 24 * time.Hour, ReportTimeout: 2 * time.Hour, StallTimeout: 24 * time.Hour}) {
		t.Errorf("default RetryPolicy = %+v", got)
	}
	s.RolloutRetries = 0
	if got := s.RetryPolicy(); got.Retries != -1 {
		t.Errorf("rollout_retries = 0: Retries = %d, want -1 (never again)", got.Retries)
	}
}

func TestChangedAndMerge(t *testing.T) {
	a := DefaultSettings("contoso.com")
	b := a
	b.CheckInterval = 6 * time.Hour
	b.InternalAddr = ":8443"
	b.TrustedProxies = []string{"10.0.0.0/8"}
	b.Warnings = []string{"not a setting"}
	got := Changed(a, b)
	want := []string{"internal_addr", "check_interval", "trusted_proxies"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Changed (-want +got):\n%s", diff)
	}
	if got := Changed(a, a); len(got) != 0 {
		t.Errorf("Changed(a, a) = %q, want none", got)
	}
	m, err := Merge(a, b, []string{"check_interval", "trusted_proxies"})
	if err != nil {
		t.Fatal(err)
	}
	if m.CheckInterval != 6*time.Hour || !slices.Equal(m.TrustedProxies, b.TrustedProxies) || m.InternalAddr != a.InternalAddr {
		t.Errorf("Merge took check_interval %v, trusted_proxies %q, internal_addr %q; want 6h, %q and the base's %q",
			m.CheckInterval, m.TrustedProxies, m.InternalAddr, b.TrustedProxies, a.InternalAddr)
	}
	if _, err := Merge(a, b, []string{"no_such_setting"}); err == nil {
		t.Error("Merge of an unknown key succeeded")
	}
	if keys := Keys(); len(keys) != len(settings) || keys[0] != "domain" || !slices.Contains(keys, "metrics_addr") {
		t.Errorf("Keys() = %q, want every setting from domain on, metrics_addr among them", keys)
	}
}
