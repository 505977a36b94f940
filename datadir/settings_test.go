package datadir

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSettingsRoundTrip(t *testing.T) {
	s := DefaultSettings("contoso.com")
	s.AdminAddr = "127.0.0.1:7443"
	s.CheckInterval = 12 * time.Hour
	s.ValidLogFileTypes = []string{"CELog"}
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

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no domain", "internal_addr = :443\n", "domain is not set"},
		{"unknown key", "domain = a.b\nfoo = 1\n", `unknown setting "foo"`},
		{"no equals", "domain = a.b\njunk\n", "want key = value"},
		{"bad duration", "domain = a.b\ncheck_interval = soon\n", "check_interval"},
		{"bad bool", "domain = a.b\ndeploy_roundtable_on_import = maybe\n", "true or false"},
		{"bad number", "domain = a.b\nmax_log_file_size = -1\n", "whole number"},
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
