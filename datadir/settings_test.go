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
