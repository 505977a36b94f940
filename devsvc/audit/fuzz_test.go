package audit

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseLine feeds arbitrary lines to ParseLine (audit files are read
// back by tools): it must refuse them or return an entry that formats back
// to exactly the same line.
func FuzzParseLine(f *testing.F) {
	f.Add("2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /RequestHandler/ucdevice.upx 200 1234 532 -")
	f.Add("2026-11-21T22:25:50.123Z [::1]:443 external CONTOSO%5Calice GET /a%20b%0A 404 19 7 %2D")
	f.Add("2026-11-21T22:25:50.123Z - - - - - 0 0 0 -\n")
	f.Add("#Fields: time remote listener user method path status bytes duration_us device")
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > 1<<14 {
			return
		}
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		got := string(AppendLine(nil, &e))
		if want := strings.TrimSuffix(line, "\n") + "\n"; got != want {
			t.Fatalf("ParseLine(%q) = %+v, which formats as %q", line, e, got)
		}
	})
}

// FuzzEscape checks that any request values give exactly one line of ten
// printable fields that parses back to them.
func FuzzEscape(f *testing.F) {
	f.Add("/x 200 0 0 -\n2026", "alice", "POST", "00:11:22:33:44:55", "1.2.3.4:5")
	f.Add("-", "", "\x00\r\n\t%", "\xff", "ö\u2028")
	f.Fuzz(func(t *testing.T, path, user, method, device, remote string) {
		e := Entry{Time: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Remote: remote, Listener: External,
			User: user, Method: method, Path: path, Status: 200, Bytes: 1, Duration: time.Millisecond, Device: device}
		line := string(AppendLine(nil, &e))
		body, ok := strings.CutSuffix(line, "\n")
		if !ok || strings.Count(body, " ") != numFields-1 {
			t.Fatalf("line %q: want %d fields and one newline", line, numFields)
		}
		for i := 0; i < len(body); i++ {
			if c := body[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("line %q has byte %#x", line, c)
			}
		}
		back, err := ParseLine(line)
		if err != nil {
			t.Fatalf("ParseLine(%q): %v", line, err)
		}
		if back != e {
			t.Fatalf("ParseLine(AppendLine(%+v)) = %+v", e, back)
		}
	})
}
