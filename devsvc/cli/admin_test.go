package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

const cx600 = "UCPhone/Polycom/CX600/A/ENU"

// startServer initialises a data directory and runs a real devsvc serve
// on it; the admin commands of a test run in-process against it.
func startServer(t *testing.T) string {
	t.Helper()
	bin, dir := devsvctest.Init(t, "contoso.com")
	devsvctest.Start(t, bin, dir)
	return dir
}

// admin runs an admin command in-process against the server of dir and
// fails the test if it fails.
func admin(t *testing.T, dir string, args ...string) string {
	t.Helper()
	stdout, stderr, code := run(t, append([]string{"--data", dir}, args...)...)
	if code != 0 {
		t.Fatalf("devsvc %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// adminJSON runs an admin command with --json and decodes its output.
func adminJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out := admin(t, dir, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("devsvc %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeFiles writes path -> content under a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// importVersion imports an image of version v for CX600 as a tree.
func importVersion(t *testing.T, dir, v string) {
	t.Helper()
	admin(t, dir, "import", writeFiles(t, map[string]string{cx600 + "/" + v + "/CX600.nbt": "image " + v}))
}

func ruleOf(t *testing.T, dir string) firmware.Rule {
	t.Helper()
	var rules []firmware.Rule
	adminJSON(t, dir, &rules, "rules", cx600)
	return rules[0]
}

func lastEvent(t *testing.T, dir string) firmware.Event {
	t.Helper()
	var es []firmware.Event
	adminJSON(t, dir, &es, "history")
	return es[len(es)-1]
}

// TestRestoreTwiceKeepsTheApprovedVersion: a restore with nothing to
// restore is an error that says what restore does and how to withdraw,
// and leaves the approved version offered; --withdraw withdraws it, and
// the history says so.
func TestRestoreTwiceKeepsTheApprovedVersion(t *testing.T) {
	dir := startServer(t)
	importVersion(t, dir, "4.0.7577.100")
	admin(t, dir, "approve", cx600)
	importVersion(t, dir, "4.0.7577.200")
	admin(t, dir, "approve", cx600)

	admin(t, dir, "restore", cx600)
	if r := ruleOf(t, dir); r.Approved.String() != "4.0.7577.100" || !r.Restore.IsZero() {
		t.Fatalf("after restore: %+v, want 4.0.7577.100 approved, no restore version", r)
	}
	_, stderr, code := run(t, "--data", dir, "restore", cx600)
	if code != 1 || !strings.Contains(stderr, "nothing to restore: no version was approved before 4.0.7577.100") || !strings.Contains(stderr, "restore --withdraw") {
		t.Errorf("second restore: exit %d, stderr %q; want exit 1, nothing to restore, and how to withdraw", code, stderr)
	}
	if r := ruleOf(t, dir); r.Approved.String() != "4.0.7577.100" {
		t.Errorf("after a second restore: approved %q, want 4.0.7577.100 still offered", r.Approved)
	}
	if ev := lastEvent(t, dir); ev.Action != "restore" {
		t.Errorf("a refused restore recorded %+v", ev)
	}

	out := admin(t, dir, "restore", cx600, "--withdraw")
	if !strings.Contains(out, "Withdrew the approved version of "+cx600) {
		t.Errorf("restore --withdraw printed %q", out)
	}
	if r := ruleOf(t, dir); !r.Approved.IsZero() {
		t.Errorf("after restore --withdraw: approved %q, want none", r.Approved)
	}
	if ev := lastEvent(t, dir); ev.Action != "withdraw" || ev.Version.String() != "4.0.7577.100" || ev.Actor != "cert:admin" {
		t.Errorf("history after restore --withdraw: %+v, want withdraw of 4.0.7577.100 by cert:admin", ev)
	}
}

// TestImportCancellingAScheduleSaysSo: importing a newer version over a
// pending one whose approval is scheduled cancels the schedule; the
// import's output and the history say so.
func TestImportCancellingAScheduleSaysSo(t *testing.T) {
	dir := startServer(t)
	importVersion(t, dir, "4.0.7577.100")
	var r firmware.Rule
	adminJSON(t, dir, &r, "approve", cx600, "--at", "+8h")
	if r.ApproveAt.IsZero() {
		t.Fatalf("approve --at: %+v, want a scheduled approval", r)
	}
	tree := writeFiles(t, map[string]string{cx600 + "/4.0.7577.200/CX600.nbt": "image 200"})
	out := admin(t, dir, "import", tree)
	for _, want := range []string{"scheduled approval cancelled", "NOTE: " + cx600 + " 4.0.7577.100 was to be approved at", "devsvc approve " + cx600 + " --at "} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	if r := ruleOf(t, dir); !r.ApproveAt.IsZero() || r.Pending.String() != "4.0.7577.200" {
		t.Errorf("rule after the import: %+v, want 4.0.7577.200 pending, nothing scheduled", r)
	}
	ev := lastEvent(t, dir)
	if ev.Action != "schedule-cancel" || ev.Version.String() != "4.0.7577.100" || !strings.Contains(ev.Detail, "the import of 4.0.7577.200 replaced the pending version") {
		t.Errorf("last event %+v, want schedule-cancel of 4.0.7577.100 with the reason", ev)
	}
	// --json carries it too.
	adminJSON(t, dir, &r, "approve", cx600, "--at", "+8h")
	var res []struct {
		CancelledApproval time.Time        `json:"cancelledApproval"`
		CancelledVersion  firmware.Version `json:"cancelledVersion"`
	}
	adminJSON(t, dir, &res, "import", writeFiles(t, map[string]string{cx600 + "/4.0.7577.300/CX600.nbt": "image 300"}))
	if len(res) != 1 || !res[0].CancelledApproval.Equal(r.ApproveAt) || res[0].CancelledVersion.String() != "4.0.7577.200" {
		t.Errorf("import --json = %+v, want the approval of 4.0.7577.200 at %v cancelled", res, r.ApproveAt)
	}
}
