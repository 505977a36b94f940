package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// setupScript is what an admin's provisioning script runs: every add of
// the CLI, each with its standard input.
var setupScript = []struct {
	stdin string
	args  []string
}{
	{"", []string{"testdevices", "add", "--mac", "00:04:f2:ab:cd:ef", "--note", "lab phone 1"}},
	{"", []string{"testdevices", "add", "--serial", "64167F0A8B2C"}},
	{"Winter2026!x\n", []string{"accounts", "add", "alice", "--password-stdin"}},
	{"correct horse battery staple\n", []string{"admins", "add", "bob", "--role", "readonly", "--password-stdin"}},
	{"", []string{"sites", "add", "berlin-hq", "--subnet", "10.1.0.0/16,10.9.0.0/16", "--timezone", "Europe/Berlin", "--window", "Mon-Fri 22:00-05:00"}},
	{"", []string{"sites", "add", "remote"}},
}

// TestAddsAreIdempotent: a script of adds that runs twice succeeds both
// times, and the second run changes nothing (the history has no new
// event) and says so; an add of something there already but different
// fails (exit status 1), says what differs and what to run instead, and
// changes nothing either. The rule is the service's, so the console's
// forms follow it too.
func TestAddsAreIdempotent(t *testing.T) {
	dir := startServer(t)
	for _, step := range setupScript {
		if _, stderr, code := runIn(t, step.stdin, append([]string{"--data", dir}, step.args...)...); code != 0 {
			t.Fatalf("devsvc %s: exit %d, %s", strings.Join(step.args, " "), code, stderr)
		}
	}
	seq := lastEvent(t, dir).Seq
	for _, step := range setupScript {
		out, stderr, code := runIn(t, step.stdin, append([]string{"--data", dir}, step.args...)...)
		if code != 0 || !strings.Contains(out, "nothing changed") {
			t.Errorf("devsvc %s again: exit %d, %q, %q; want success saying nothing changed", strings.Join(step.args, " "), code, out, stderr)
		}
	}
	if ev := lastEvent(t, dir); ev.Seq != seq {
		t.Errorf("the second run recorded %+v, want no change", ev)
	}
	// --json prints the record as it is, as for a new one.
	var d firmware.TestDevice
	adminJSON(t, dir, &d, "testdevices", "add", "--mac", "00-04-F2-AB-CD-EF", "--note", "lab phone 1")
	if d.MAC != "00-04-F2-AB-CD-EF" || d.Note != "lab phone 1" || d.Added.IsZero() {
		t.Errorf("testdevices add --json again = %+v", d)
	}

	if _, stderr, code := runIn(t, "Carol2026!x\n", "--data", dir, "accounts", "add", "carol", "--password-stdin"); code != 0 {
		t.Fatalf("accounts add carol: %s", stderr)
	}
	admin(t, dir, "accounts", "disable", "carol")
	differs := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"testdevices", "add", "--mac", "00-04-F2-AB-CD-EF", "--note", "lab phone 2"}, `test device 00-04-F2-AB-CD-EF already exists with the note "lab phone 1": to change it, remove it and add it again`},
		{"Summer2026!x\n", []string{"accounts", "add", "alice", "--password-stdin"}, `account "alice" already exists with another password: to set this one use accounts passwd alice`},
		{"Carol2026!x\n", []string{"accounts", "add", "carol", "--password-stdin"}, `account "carol" already exists, disabled: enable it with accounts enable carol`},
		{"correct horse battery staple\n", []string{"admins", "add", "bob", "--password-stdin"}, `console admin "bob" already exists with the role readonly`},
		{"another horse battery staple\n", []string{"admins", "add", "bob", "--role", "readonly", "--password-stdin"}, `console admin "bob" already exists with another password`},
		{"", []string{"sites", "add", "berlin-hq", "--subnet", "10.1.0.0/16", "--timezone", "Europe/Berlin"}, "site berlin-hq already exists: change it with sites update"},
	}
	seq = lastEvent(t, dir).Seq
	for _, tt := range differs {
		_, stderr, code := runIn(t, tt.stdin, append([]string{"--data", dir}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("devsvc %s: exit %d, %q; want exit 1 saying %q", strings.Join(tt.args, " "), code, stderr, tt.want)
		}
	}
	if ev := lastEvent(t, dir); ev.Seq != seq {
		t.Errorf("a refused add recorded %+v", ev)
	}
}

// TestMinPasswordLength: accounts add and passwd refuse a password
// shorter than min_password_length, saying the minimum and the setting,
// and take one as long; the default is 8.
func TestMinPasswordLength(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		dir := startServer(t)
		if _, stderr, code := runIn(t, "x\n", "--data", dir, "accounts", "add", "alice", "--password-stdin"); code != 1 ||
			!strings.Contains(stderr, "the password of alice has 1 character(s): device account passwords need at least 8 (min_password_length)") {
			t.Errorf("accounts add with a one-character password: exit %d, %q", code, stderr)
		}
		if _, stderr, code := runIn(t, "Winter26\n", "--data", dir, "accounts", "add", "alice", "--password-stdin"); code != 0 {
			t.Errorf("accounts add with 8 characters: exit %d, %q", code, stderr)
		}
	})
	t.Run("setting", func(t *testing.T) {
		bin, dir := devsvctest.Init(t, "contoso.com")
		f, err := os.OpenFile(filepath.Join(dir, "devsvc.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("\nmin_password_length = 12\n")
		f.Close()
		devsvctest.Start(t, bin, dir)
		for _, tt := range []struct {
			pw, action string
			code       int
			want       string
		}{
			{"Winter2026!", "add", 1, "has 11 character(s): device account passwords need at least 12 (min_password_length)"},
			{"Wintér2026!x", "add", 0, ""}, // 12 characters, 13 bytes
			{"Summer2026!", "passwd", 1, "need at least 12"},
			{"Summer2026!x", "passwd", 0, ""},
		} {
			_, stderr, code := runIn(t, tt.pw+"\n", "--data", dir, "accounts", tt.action, "alice", "--password-stdin")
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("accounts %s alice with %q: exit %d, %q; want exit %d saying %q", tt.action, tt.pw, code, stderr, tt.code, tt.want)
			}
		}
	})
}
