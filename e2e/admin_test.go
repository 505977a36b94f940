package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// writeTree writes an update tree: path -> content.
func writeTree(t *testing.T, files map[string]string) string {
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

func TestEndToEndImportApprove(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	svc := devsvctest.Start(t, bin, dir)

	tree := writeTree(t, map[string]string{
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt":      strings.Repeat("image", 100000),
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.cat":      "catalog",
		"UCPhone/Aastra/6725ip/A/ENU/4.0.7577.4372/6725ip.nbt":     "aastra image",
		"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/rt.nbt": "roundtable image",
		"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/rt.xml": "<description/>",
	})

	var imported []adminapi.ImportResult
	svc.JSON(t, &imported, "import", tree)
	if len(imported) != 3 {
		t.Fatalf("import returned %d results, want 3: %+v", len(imported), imported)
	}

	var rules []firmware.Rule
	svc.JSON(t, &rules, "rules")
	byPath := map[string]firmware.Rule{}
	for _, r := range rules {
		byPath[r.Identity.Path()] = r
	}
	v4 := firmware.MustParseVersion("4.0.7577.4372")
	if r := byPath["UCPhone/Polycom/CX600/A/ENU"]; r.Pending != v4 || !r.Approved.IsZero() {
		t.Errorf("CX600 after import = %+v, want pending %v, nothing approved", r, v4)
	}
	if r := byPath["RoundTable/Microsoft/RoundTable/A/ENU"]; r.Approved != firmware.MustParseVersion("1.0.522.101") || !r.Pending.IsZero() {
		t.Errorf("RoundTable after import = %+v, want approved at once", r)
	}

	var approved firmware.Rule
	svc.JSON(t, &approved, "approve", "UCPhone/Polycom/CX600/A/ENU")
	if approved.Approved != v4 || !approved.Pending.IsZero() {
		t.Errorf("approve returned %+v, want approved %v", approved, v4)
	}
	// The state read back through a fresh CLI call, by rule ID this time.
	var again []firmware.Rule
	svc.JSON(t, &again, "rules", approved.ID)
	if len(again) != 1 || again[0].Approved != v4 {
		t.Errorf("rules %s = %+v, want approved %v", approved.ID, again, v4)
	}

	// A second approve is refused with a message that names the rule.
	_, stderr, err := svc.TryCLI("approve", "UCPhone/Polycom/CX600/A/ENU")
	if err == nil || !strings.Contains(stderr, "rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve") {
		t.Errorf("second approve: err %v, stderr %q; want a refusal naming the rule", err, stderr)
	}
	// An unknown rule says so.
	if _, stderr, err := svc.TryCLI("reject", "UCPhone/Polycom/CX999/A/ENU"); err == nil || !strings.Contains(stderr, "CX999") {
		t.Errorf("reject of an unknown rule: err %v, stderr %q", err, stderr)
	}

	// Test devices and accounts round-trip through the CLI.
	svc.CLI(t, "testdevices", "add", "--mac", "00:04:f2:ab:cd:ef", "--note", "lab")
	var tds []firmware.TestDevice
	svc.JSON(t, &tds, "testdevices", "list")
	if len(tds) != 1 || tds[0].MAC != "00-04-F2-AB-CD-EF" {
		t.Errorf("test devices = %+v, want the one added, normalised", tds)
	}
	if _, errOut, err := devsvctest.RunCLI(bin, dir, "s3cret!s3cret!\n", "accounts", "add", "alice", "--password-stdin"); err != nil {
		t.Fatalf("accounts add: %v: %s", err, errOut)
	}
	svc.CLI(t, "accounts", "disable", "alice")
	var accts []firmware.Account
	svc.JSON(t, &accts, "accounts", "list")
	if len(accts) != 1 || accts[0].Name != "alice" || !accts[0].Disabled {
		t.Errorf("accounts = %+v, want alice, disabled", accts)
	}

	// The history names who did what, in one numbered sequence.
	var events []firmware.Event
	svc.JSON(t, &events, "history")
	var actions []string
	for i, ev := range events {
		// One numbered sequence; the metadata's signings (the system's,
		// after each change) are not listed, so numbers may be skipped.
		if i > 0 && ev.Seq <= events[i-1].Seq || i == 0 && ev.Seq != 1 {
			t.Errorf("event %d has seq %d after %d", i, ev.Seq, events[max(i-1, 0)].Seq)
		}
		if i == 0 {
			// init records the admin certificate it made.
			if ev.Actor != "devsvc init" || ev.Action != "cert-issue" || ev.Subject != "admin" {
				t.Errorf("event 0 = %+v, want init's record of the admin certificate", ev)
			}
			continue
		}
		if ev.Action == "metadata-sign" {
			t.Errorf("event %d: devsvc history lists a signing of the metadata", i)
		}
		if ev.Actor != "cert:admin" {
			t.Errorf("event %d actor = %q, want cert:admin", i, ev.Actor)
		}
		actions = append(actions, ev.Action)
	}
	joined := strings.Join(actions, " ")
	for _, want := range []string{"import", "approve"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history actions %q lack %q", joined, want)
		}
	}

	var st adminapi.Status
	svc.JSON(t, &st, "status")
	if st.Counts["rules"] != 3 || st.Counts["accounts"] != 1 || st.Counts["testDevices"] != 1 || len(st.Certificates) < 3 {
		t.Errorf("status = %+v", st)
	}

	// An online backup (TestBackupUnderLoad restores one).
	backup := filepath.Join(t.TempDir(), "backup.tar")
	svc.CLI(t, "backup", backup)
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
		t.Errorf("backup file: %v", err)
	}
}

func TestAdminAPIRefusesClientsWithoutAdminCertificate(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	svc := devsvctest.Start(t, bin, dir)
	cs, err := certs.Open(filepath.Join(dir, "certs"), certs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cs.CACertificate())

	// A foreign CA's client certificate.
	foreignDir := filepath.Join(t.TempDir(), "foreign")
	foreign, err := certs.Bootstrap(foreignDir, certs.Config{Domain: "evil.example"})
	if err != nil {
		t.Fatal(err)
	}
	foreignTLS, err := foreign.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	foreignTLS.RootCAs = pool // trusts our server, presents the foreign cert

	tests := []struct {
		name string
		conf *tls.Config
	}{
		{"no client certificate", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		{"foreign client certificate", foreignTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := adminapi.Dial(svc.Run.Admin, tt.conf)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if rules, err := c.Rules(ctx); err == nil {
				t.Fatalf("Rules without the admin certificate succeeded: %v", rules)
			}
			if _, err := c.Approve(ctx, "UCPhone/Polycom/CX600/A/ENU"); err == nil {
				t.Fatal("Approve without the admin certificate succeeded")
			}
		})
	}

	// The admin certificate itself works through the same client code.
	good, err := cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminapi.Dial(svc.Run.Admin, good)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Rules(ctx); err != nil {
		t.Errorf("Rules with the admin certificate: %v", err)
	}
}

// TestInitRefusesToOverwrite: a second init is refused; init --force keeps
// the CA (devices that cached it keep connecting) and the settings, and
// only --new-ca replaces the CA, keeping the old one in a backup.
func TestInitRefusesToOverwrite(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	_, stderr, err := devsvctest.RunCLI(bin, dir, "", "init", "--domain", "contoso.com")
	if err == nil || !strings.Contains(stderr, "--force") {
		t.Errorf("second init: err %v, stderr %q; want a refusal that mentions --force", err, stderr)
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	setSetting(t, dir, "check_interval", "12h")
	if _, stderr, err := devsvctest.RunCLI(bin, dir, "", "init", "--domain", "contoso.com", "--force"); err != nil {
		t.Errorf("init --force: %v: %s", err, stderr)
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, "certs", "ca.pem")); !bytes.Equal(ca, caBefore) {
		t.Error("init --force made a new CA: devices that cached the old one stop connecting")
	}
	if conf, _ := os.ReadFile(filepath.Join(dir, "devsvc.conf")); !strings.Contains(string(conf), "check_interval = 12h") {
		t.Error("init --force reset the settings")
	}
	out, stderr, err := devsvctest.RunCLI(bin, dir, "", "init", "--domain", "contoso.com", "--force", "--new-ca")
	if err != nil {
		t.Fatalf("init --force --new-ca: %v: %s", err, stderr)
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, "certs", "ca.pem")); bytes.Equal(ca, caBefore) {
		t.Error("init --force --new-ca kept the CA")
	}
	backups, _ := filepath.Glob(filepath.Join(dir, "backups", "init-*", "certs", "ca.pem"))
	if len(backups) != 1 || !strings.Contains(out, filepath.Dir(filepath.Dir(backups[0]))) {
		t.Errorf("backups of the old CA: %v; output %q should name where", backups, out)
	} else if old, _ := os.ReadFile(backups[0]); !bytes.Equal(old, caBefore) {
		t.Error("the backup does not hold the old CA")
	}
	for _, name := range []string{"ca.key", "server.key", "admin.key"} {
		fi, err := os.Stat(filepath.Join(dir, "certs", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, fi.Mode().Perm())
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, "devsvc.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"domain = contoso.com", "# internal_addr = :443", "# check_interval = 24h", "# log_cleanup_interval = 10d"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("devsvc.conf lacks %q", want)
		}
	}
}

func TestHelp(t *testing.T) {
	bin := devsvctest.Binary(t)
	out, _, err := devsvctest.RunCLI(bin, t.TempDir(), "", "--help")
	if err != nil || !strings.Contains(out, "devsvc init --data") || !strings.Contains(out, "approve") {
		t.Errorf("devsvc --help: %v\n%s", err, out)
	}
	out, _, err = devsvctest.RunCLI(bin, t.TempDir(), "", "import", "--help")
	if err != nil || !strings.Contains(out, "DeviceType/Vendor/Model/Revision/Locale/Version") {
		t.Errorf("devsvc import --help: %v\n%s", err, out)
	}
	_, stderr, err := devsvctest.RunCLI(bin, t.TempDir(), "", "aprove")
	if err == nil || !strings.Contains(stderr, "unknown command") {
		t.Errorf("devsvc aprove: %v, %q", err, stderr)
	}
	// With no server running, an admin command says how to fix it.
	_, dir := devsvctest.Init(t, "contoso.com")
	_, stderr, err = devsvctest.RunCLI(bin, dir, "", "rules", "--timeout", "5s")
	if err == nil || !strings.Contains(stderr, "devsvc serve") {
		t.Errorf("rules without a server: %v, %q", err, stderr)
	}
}
