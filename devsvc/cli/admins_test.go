package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// runIn runs the command line in-process with stdin.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

func TestConsoleAdminsCommand(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	srv := devsvctest.Start(t, bin, dir)
	out, stderr, code := runIn(t, "correct horse battery staple\n", "--data", dir, "admins", "add", "alice", "--password-stdin")
	if code != 0 || !strings.Contains(out, "Added console admin alice.") || !strings.Contains(out, "alice (admin) signs in at https://127.0.0.1:") {
		t.Fatalf("admins add alice: exit %d, %q, %q", code, out, stderr)
	}
	if _, stderr, code := runIn(t, "too short\n", "--data", dir, "admins", "add", "bob", "--password-stdin"); code != 1 || !strings.Contains(stderr, "use at least 15") {
		t.Errorf("admins add with a short password: exit %d, %q; want a refusal saying 15 characters", code, stderr)
	}
	if out, stderr, code := runIn(t, "correct horse battery staple\n", "--data", dir, "admins", "add", "ALICE", "--password-stdin"); code != 0 || !strings.Contains(out, "Console admin alice is there already") {
		t.Errorf("admins add ALICE again, the same: exit %d, %q, %q; want success, nothing changed", code, out, stderr)
	}
	if _, stderr, code := runIn(t, "another horse battery staple\n", "--data", dir, "admins", "add", "ALICE", "--password-stdin"); code != 1 || !strings.Contains(stderr, "already exists with another password: to set this one use admins passwd alice") {
		t.Errorf("admins add ALICE again with another password: exit %d, %q", code, stderr)
	}
	if _, _, code := runIn(t, "", "--data", dir, "admins", "add", "bob", "--role", "root"); code != 2 {
		t.Errorf("admins add --role root: exit %d, want 2 (misuse)", code)
	}
	if _, stderr, code := runIn(t, "a fine and long passphrase\n", "--data", dir, "admins", "add", "helpdesk", "--role", "readonly", "--password-stdin"); code != 0 {
		t.Fatalf("admins add helpdesk: %s", stderr)
	}
	admin(t, dir, "admins", "disable", "helpdesk")
	var list []firmware.ConsoleAdmin
	adminJSON(t, dir, &list, "admins", "list")
	if len(list) != 2 || list[0].Name != "alice" || list[0].Role != "admin" || list[1].Role != "readonly" || !list[1].Disabled {
		t.Errorf("admins list = %+v, want alice (admin) and helpdesk (read-only, disabled)", list)
	}
	if out := admin(t, dir, "admins", "list"); !strings.Contains(out, "helpdesk") || !strings.Contains(out, "disabled") || strings.Contains(out, "argon2") {
		t.Errorf("admins list:\n%s", out)
	}
	if ev := lastEvent(t, dir); ev.Actor != "cert:admin" || ev.Action != "console-admin-disable" || ev.Subject != "helpdesk" {
		t.Errorf("last event = %+v", ev)
	}
	admin(t, dir, "admins", "remove", "helpdesk")

	// Stopped: --offline adds the account on the data directory.
	srv.Stop(t)
	if _, stderr, code := runIn(t, "another long passphrase\n", "--data", dir, "admins", "add", "carol", "--password-stdin", "--timeout", "3s"); code != 1 || !strings.Contains(stderr, "--offline") {
		t.Errorf("admins add with the server stopped: exit %d, %q; want a hint about --offline", code, stderr)
	}
	if _, stderr, code := runIn(t, "another long passphrase\n", "--data", dir, "admins", "add", "carol", "--password-stdin", "--offline"); code != 0 {
		t.Fatalf("admins add --offline: %s", stderr)
	}
	out, _, _ = runIn(t, "", "--data", dir, "admins", "list", "--offline", "--json")
	if !strings.Contains(out, `"name": "carol"`) {
		t.Errorf("admins list --offline = %s, want carol", out)
	}
}
