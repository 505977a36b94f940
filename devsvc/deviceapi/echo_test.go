package deviceapi

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEcho(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct{ in, want string }{
		{`malformed message: Model "CX600" is bad`, `malformed message: Model "CX600" is bad`},
		{`invalid MAC address "` + long + `"`, `invalid MAC address "` + long[:maxEchoQuoted] + `"...`},
		{`two "` + long + `" and "ab\"c"`, `two "` + long[:maxEchoQuoted] + `"... and "ab\"c"`},
		{`unbalanced " quote`, `unbalanced " quote`},
		{`utf-8 "` + strings.Repeat("é", 20) + `"`, `utf-8 "` + strings.Repeat("é", 12) + `"...`},
		{"element <" + long + "> closed", "element <" + long[:maxEchoWord-1] + "... closed"},
		{strings.Repeat("y ", 200), strings.Repeat("y ", maxEchoBytes/2) + "..."},
	}
	for _, tt := range tests {
		if got := echo(errors.New(tt.in)); got != tt.want {
			t.Errorf("echo(%.40q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEcho checks the bound on anything: what echo returns is at most
// maxEchoBytes plus the ellipsis, and valid UTF-8 when its input is.
func FuzzEcho(f *testing.F) {
	f.Add(`invalid MAC address "00-04-F2"`)
	f.Add(`"\"" "\x00" "` + strings.Repeat("z", 50) + `"`)
	f.Add(`element <a> closed by </b>`)
	f.Fuzz(func(t *testing.T, msg string) {
		got := echo(errors.New(msg))
		if len(got) > maxEchoBytes+3 {
			t.Errorf("echo(%q) has %d bytes", msg, len(got))
		}
		if utf8.ValidString(msg) && !utf8.ValidString(got) {
			t.Errorf("echo(%q) = %q is not UTF-8", msg, got)
		}
	})
}
