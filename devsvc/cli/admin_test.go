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

// copyTree copies the files under src into a new directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(src, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return writeFiles(t, files)
}

// TestTreeAndItsBundleAreTheSameUpdate imports an update as a plain tree
// and as the bundle packed from it (with generated descriptions), in both
// orders: the second import is the same update, already imported.
func TestTreeAndItsBundleAreTheSameUpdate(t *testing.T) {
	dir := startServer(t)
	for _, tt := range []struct {
		name       string
		model      string
		bundleLast bool
	}{
		{"tree, then its bundle", "CX600", true},
		{"bundle, then its tree", "CX500", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := "UCPhone/Polycom/" + tt.model + "/A/ENU/4.0.7577.4372/"
			tree := writeFiles(t, map[string]string{path + tt.model + ".nbt": "image of " + tt.model, path + tt.model + ".cat": "catalog"})
			cabFile := filepath.Join(t.TempDir(), "UCUpdates.cab")
			admin(t, dir, "bundle", "pack", copyTree(t, tree), "--describe", "-o", cabFile)
			first, second := tree, cabFile
			if !tt.bundleLast {
				first, second = cabFile, tree
			}
			admin(t, dir, "import", first)
			var res []struct{ Unchanged bool }
			adminJSON(t, dir, &res, "import", second)
			if len(res) != 1 || !res[0].Unchanged {
				t.Errorf("second import = %+v, want the update unchanged", res)
			}
			if out := admin(t, dir, "import", second); !strings.Contains(out, "already imported") {
				t.Errorf("import output:\n%s\nwant already imported", out)
			}
		})
	}
}

// TestBundleCheckAgreesWithImport checks trees with `bundle check` and
// imports them: check calls valid exactly what import accepts.
func TestBundleCheckAgreesWithImport(t *testing.T) {
	dir := startServer(t)
	described := func(t *testing.T, files map[string]string, damage string) string {
		tree := writeFiles(t, files)
		admin(t, dir, "bundle", "describe", tree)
		if damage != "" {
			if err := os.WriteFile(filepath.Join(tree, filepath.FromSlash(damage)), []byte("changed after describe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return tree
	}
	p := func(model, v string) string { return "UCPhone/Polycom/" + model + "/A/ENU/" + v + "/" }
	tests := []struct {
		name  string
		tree  func(t *testing.T) string
		valid bool
	}{
		{"plain tree", func(t *testing.T) string {
			return writeFiles(t, map[string]string{p("CX600", "1.0.0.1") + "CX600.nbt": "a", p("CX600", "1.0.0.1") + "CX600.cat": "c"})
		}, true},
		{"plain tree under DeviceUpdateFiles", func(t *testing.T) string {
			return writeFiles(t, map[string]string{"DeviceUpdateFiles/" + p("CX500", "1.0.0.1") + "CX500.nbt": "a"})
		}, true},
		{"described tree", func(t *testing.T) string {
			return described(t, map[string]string{p("CX3000", "1.0.0.1") + "CX3000.nbt": "a", p("CX3000", "1.0.0.1") + "CX3000.cat": "c"}, "")
		}, true},
		{"described tree, image changed", func(t *testing.T) string {
			return described(t, map[string]string{p("CX700", "1.0.0.1") + "CX700.nbt": "a"}, p("CX700", "1.0.0.1")+"CX700.nbt")
		}, false},
		{"file outside the layout", func(t *testing.T) string {
			return writeFiles(t, map[string]string{p("HP4120", "1.0.0.1") + "x.nbt": "a", "README.txt": "read me"})
		}, false},
		{"bad version directory", func(t *testing.T) string {
			return writeFiles(t, map[string]string{p("HP4110", "1.0") + "x.nbt": "a"})
		}, false},
		{"two versions of one identity", func(t *testing.T) string {
			return writeFiles(t, map[string]string{p("LG8540", "1.0.0.1") + "x.nbt": "a", p("LG8540", "1.0.0.2") + "x.nbt": "b"})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := tt.tree(t)
			_, checkErr, check := run(t, "bundle", "check", tree)
			_, importErr, imp := run(t, "--data", dir, "import", tree)
			if (check == 0) != tt.valid || (imp == 0) != tt.valid {
				t.Errorf("bundle check: exit %d %s\nimport: exit %d %s\nwant both to say valid=%v", check, checkErr, imp, importErr, tt.valid)
			}
		})
	}
}

// TestAdminCertificateLifecycle: an admin certificate issued through the
// server works, is listed and in the history; revoked, it is refused at
// once with a message that names it (not "is devsvc serve running?"),
// and the revocation is in the history. With the server stopped, --offline
// issues on the data directory, and list still reads the registry.
func TestAdminCertificateLifecycle(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	srv := devsvctest.Start(t, bin, dir)
	prefix := filepath.Join(t.TempDir(), "helpdesk")
	out := admin(t, dir, "certs", "issue", "helpdesk", "--role", "readonly", "-o", prefix)
	if !strings.Contains(out, "Issued helpdesk (readonly), serial ") {
		t.Errorf("certs issue printed %q", out)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if _, _, code := run(t, "--data", dir, "certs", "issue", "helpdesk", "-o", prefix); code == 0 {
		t.Error("certs issue over existing files succeeded")
	}
	ca := filepath.Join(dir, "certs", "ca.pem")
	as := func(args ...string) (string, string, int) {
		return run(t, append([]string{"--data", dir, "--cert", prefix + ".pem", "--key", prefix + ".key", "--ca", ca}, args...)...)
	}
	if _, stderr, code := as("rules"); code != 0 {
		t.Fatalf("rules with the issued certificate: exit %d: %s", code, stderr)
	}
	var list struct {
		AdminCertificates []firmware.AdminCert `json:"adminCertificates"`
	}
	adminJSON(t, dir, &list, "certs", "list")
	if len(list.AdminCertificates) != 2 || list.AdminCertificates[1].Name != "helpdesk" || list.AdminCertificates[1].State(time.Now()) != firmware.CertValid {
		t.Fatalf("certs list = %+v, want admin and helpdesk, valid", list)
	}
	serial := list.AdminCertificates[1].Serial
	if ev := lastEvent(t, dir); ev.Action != "cert-issue" || ev.Subject != "helpdesk" || ev.Actor != "cert:admin" {
		t.Errorf("history after issue: %+v, want cert-issue of helpdesk by cert:admin", ev)
	}

	out = admin(t, dir, "certs", "revoke", "helpdesk", "--reason", "laptop lost")
	if !strings.Contains(out, "Revoked helpdesk (readonly, serial "+serial+")") {
		t.Errorf("certs revoke printed %q", out)
	}
	_, stderr, code := as("rules")
	if code != 1 || !strings.Contains(stderr, `certificate "helpdesk" (serial `+serial+`) was revoked`) || !strings.Contains(stderr, "laptop lost") || strings.Contains(stderr, "devsvc serve") {
		t.Errorf("rules with the revoked certificate: exit %d, %q; want a refusal naming it", code, stderr)
	}
	if ev := lastEvent(t, dir); ev.Action != "cert-revoke" || ev.Subject != "helpdesk" || ev.Actor != "cert:admin" || !strings.Contains(ev.Detail, "laptop lost") {
		t.Errorf("history after revoke: %+v, want cert-revoke of helpdesk by cert:admin", ev)
	}
	if out := admin(t, dir, "certs", "list"); !strings.Contains(out, "revoked") || !strings.Contains(out, "laptop lost") {
		t.Errorf("certs list does not show the revocation:\n%s", out)
	}

	// With the server stopped: issue --offline; without --offline the
	// error says so; list reads the data directory.
	srv.Stop(t)
	_, stderr, code = run(t, "--data", dir, "certs", "issue", "ops", "--role", "admin", "-o", filepath.Join(t.TempDir(), "ops"), "--timeout", "3s")
	if code != 1 || !strings.Contains(stderr, "--offline") {
		t.Errorf("certs issue with the server stopped: exit %d, %q; want a hint about --offline", code, stderr)
	}
	admin(t, dir, "certs", "issue", "ops", "--role", "admin", "-o", filepath.Join(t.TempDir(), "ops"), "--offline")
	adminJSON(t, dir, &list, "certs", "list", "--timeout", "3s")
	if n := len(list.AdminCertificates); n != 3 || list.AdminCertificates[2].Name != "ops" || !strings.HasPrefix(list.AdminCertificates[2].IssuedBy, "local:") {
		t.Errorf("certs list with the server stopped = %+v, want ops issued by local:USER", list.AdminCertificates)
	}
}

// TestRefusedCertificateIsNotAnUnreachableServer: a certificate of
// another CA is refused; the command says the server refused it, not that
// the server may not be running.
func TestRefusedCertificateIsNotAnUnreachableServer(t *testing.T) {
	dir := startServer(t)
	_, other := devsvctest.Init(t, "fabrikam.com")
	_, stderr, code := run(t, "--data", dir, "--cert", filepath.Join(other, "certs", "admin.pem"), "--key", filepath.Join(other, "certs", "admin.key"),
		"--ca", filepath.Join(dir, "certs", "ca.pem"), "rules", "--timeout", "10s")
	if code != 1 || !strings.Contains(stderr, "client certificate") || !strings.Contains(stderr, "refused") || strings.Contains(stderr, "devsvc serve") {
		t.Errorf("rules with another CA's certificate: exit %d, %q; want a refusal, not a hint that the server is down", code, stderr)
	}
}

// doubled returns a prefix repeated in msg, like "store: store:".
func doubled(msg string) string {
	parts := strings.Split(msg, ": ")
	for i := 1; i < len(parts); i++ {
		prev := parts[i-1]
		if j := strings.LastIndexByte(prev, ' '); j >= 0 {
			prev = prev[j+1:]
		}
		if prev != "" && prev == parts[i] {
			return prev + ": " + parts[i]
		}
	}
	return ""
}

// TestErrorsReadCleanly: a rule named by its model alone, or in another
// case, is not found, in the case typed, with the identity path suggested;
// no error doubles its prefix.
func TestErrorsReadCleanly(t *testing.T) {
	dir := startServer(t)
	importVersion(t, dir, "4.0.7577.100")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"approve", "CX600"}, `rule "CX600" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
		{[]string{"restore", "ucphone/polycom/cx600/a/enu"}, `rule "ucphone/polycom/cx600/a/enu" not found: did you mean UCPhone/Polycom/CX600/A/ENU?`},
		{[]string{"reject", "CX700"}, `rule "CX700" not found: name a rule by its ID or its identity path`},
		{[]string{"accounts", "disable", "Bob"}, `account "Bob" not found`},
		{[]string{"testdevices", "remove", "00-04-F2-AA-BB-CC"}, `test device "00-04-F2-AA-BB-CC" not found`},
		{[]string{"certs", "revoke", "Nobody"}, `admin certificate "Nobody" not found`},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, append([]string{"--data", dir}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("devsvc %s: exit %d, %q; want %q", strings.Join(tt.args, " "), code, stderr, tt.want)
		}
		if m := doubled(stderr); m != "" {
			t.Errorf("devsvc %s: %q reads %q", strings.Join(tt.args, " "), stderr, m)
		}
	}
}
