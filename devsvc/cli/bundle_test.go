package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/cabingest/rpm/rpmtest"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/internal/testtool"
)

// TestMain removes the devsvc binary that the end-to-end test built.
func TestMain(m *testing.M) { os.Exit(devsvctest.Run(m)) }

// run runs the command line in-process and returns its output and exit
// status.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

// bundleTree writes an update tree without descriptions: two phones and a
// RoundTable.
func bundleTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt":              cabtest.FirmwareLike(1, 200<<10),
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.cat":              []byte("catalog 600"),
		"UCPhone/Aastra/6725ip/A/ENU/4.0.7577.4366/6725ip.nbt":             cabtest.FirmwareLike(2, 100<<10),
		"UCPhone/Aastra/6725ip/A/ENU/4.0.7577.4366/6725ip.cat":             []byte("catalog 6725"),
		"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/RoundTable.nbt": cabtest.FirmwareLike(3, 150<<10),
		"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/RoundTable.cat": []byte("catalog rt"),
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBundleCommands(t *testing.T) {
	tree := bundleTree(t)
	out := filepath.Join(t.TempDir(), "UCUpdates.cab")

	// Without descriptions, pack refuses and says what to do.
	_, stderr, code := run(t, "bundle", "pack", tree, "-o", out)
	if code != 1 || !strings.Contains(stderr, "no description") || !strings.Contains(stderr, "devsvc bundle describe") {
		t.Fatalf("pack without descriptions: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused pack wrote the cabinet")
	}

	stdout, stderr, code := run(t, "bundle", "pack", tree, "--describe", "-o", out, "--compression", "lzx:16")
	if code != 0 {
		t.Fatalf("pack --describe: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"UCPhone/Polycom/CX600/A/ENU", "RoundTable/Microsoft/RoundTable/A/ENU", "3 update(s)", "lzx:16"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("pack output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "CX600.xml") {
		t.Errorf("pack --describe did not say it wrote CX600.xml:\n%s", stderr)
	}

	stdout, _, code = run(t, "bundle", "check", out, "--json")
	var rep bundleReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 {
		t.Fatalf("check --json: exit %d, %v\n%s", code, err, stdout)
	}
	if !rep.Valid || rep.Format != "cabinet" || len(rep.Updates) != 3 {
		t.Errorf("check --json = %+v, want a valid cabinet of 3 updates", rep)
	}

	// cabextract, an independent reader, sees the tree.
	cabextract := testtool.Need(t, "cabextract")
	dest := t.TempDir()
	if b, err := exec.Command(cabextract, "-q", "-d", dest, out).CombinedOutput(); err != nil {
		t.Fatalf("cabextract: %v\n%s", err, b)
	}
	for _, p := range []string{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.xml", "RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/RoundTable.nbt"} {
		want, _ := os.ReadFile(filepath.Join(tree, p))
		got, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("cabextract's %s differs from the tree's (%v)", p, err)
		}
	}

	// A damaged tree: check lists the problem, exit status 1.
	img := filepath.Join(tree, "UCPhone/Aastra/6725ip/A/ENU/4.0.7577.4366/6725ip.nbt")
	os.WriteFile(img, []byte("another image"), 0o644)
	_, stderr, code = run(t, "bundle", "check", tree)
	if code != 1 || !strings.Contains(stderr, "6725ip.nbt: content does not match the description") {
		t.Errorf("check of a damaged tree: exit %d\n%s", code, stderr)
	}
	stdout, _, code = run(t, "bundle", "check", tree, "--json")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 || rep.Valid || len(rep.Problems) != 1 {
		t.Errorf("check --json of a damaged tree: exit %d, %+v (%v)", code, rep, err)
	}
	stdout, _, code = run(t, "bundle", "describe", tree, "--overwrite")
	if code != 0 || strings.Count(stdout, "Wrote") != 3 {
		t.Errorf("describe --overwrite: exit %d\n%s", code, stdout)
	}
	if _, stderr, code = run(t, "bundle", "check", tree); code != 0 {
		t.Errorf("check after describe --overwrite: exit %d\n%s", code, stderr)
	}

	for _, bad := range [][]string{{"bundle"}, {"bundle", "frob", "x"}, {"bundle", "pack", tree, "--compression", "lzx:9"}} {
		if _, _, code := run(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", bad, code)
		}
	}
}

// TestBundleImportEndToEnd packs a bundle with the command line and imports
// it into a real server: phones pending, the RoundTable approved; a bundle
// with a bad description is refused whole; with rpm_keyring set, an
// unsigned RPM is refused and a signed one imports.
func TestBundleImportEndToEnd(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	key := rpmtest.NewKey(t, "Vendor Release Key")
	if err := os.WriteFile(filepath.Join(dir, "vendor.asc"), key.Armored, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "devsvc.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("rpm_keyring = vendor.asc\n")
	f.Close()
	svc := devsvctest.Start(t, bin, dir)

	tree := bundleTree(t)
	cabFile := filepath.Join(t.TempDir(), "UCUpdates.cab")
	if _, stderr, code := run(t, "bundle", "pack", tree, "--describe", "-o", cabFile); code != 0 {
		t.Fatalf("pack: %s", stderr)
	}
	var imported []adminapi.ImportResult
	svc.JSON(t, &imported, "import", cabFile)
	if len(imported) != 3 {
		t.Fatalf("import returned %d results, want 3", len(imported))
	}
	var rules []firmware.Rule
	svc.JSON(t, &rules, "rules")
	for _, r := range rules {
		isTable := r.Identity.DeviceType == firmware.RoundTable
		if isTable != r.Pending.IsZero() || isTable == r.Approved.IsZero() {
			t.Errorf("%s: pending %s approved %s; want phones pending, the RoundTable approved", r.Identity, r.Pending, r.Approved)
		}
	}

	// A bad description: refused whole, rules unchanged.
	desc := filepath.Join(tree, "UCPhone/Aastra/6725ip/A/ENU/4.0.7577.4366/6725ip.xml")
	b, _ := os.ReadFile(desc)
	os.WriteFile(desc, bytes.Replace(b, []byte("<Version>4.0.7577.4366"), []byte("<Version>4.0.7577.4400"), 1), 0o644)
	os.WriteFile(filepath.Join(tree, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt"), []byte("newer image"), 0o644)
	badCab := filepath.Join(t.TempDir(), "bad.cab")
	writeCabinet(t, tree, badCab)
	_, stderr, err := svc.TryCLI("import", badCab)
	if err == nil {
		t.Fatal("import of a bundle with a bad description succeeded")
	}
	for _, want := range []string{"6725ip.xml", "version 4.0.7577.4400 does not match its directory 4.0.7577.4366", "CX600.nbt", "2 invalid part(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("import error lacks %q:\n%s", want, stderr)
		}
	}
	var after []firmware.Rule
	svc.JSON(t, &after, "rules")
	if len(after) != len(rules) {
		t.Errorf("rules changed by a refused bundle: %d before, %d after", len(rules), len(after))
	}

	// RPM with the keyring configured.
	rpmTree := t.TempDir()
	rtDir := filepath.Join(rpmTree, "RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.200")
	os.MkdirAll(rtDir, 0o755)
	os.WriteFile(filepath.Join(rtDir, "RoundTable.nbt"), []byte("roundtable image 200"), 0o644)
	if _, stderr, code := run(t, "bundle", "describe", rpmTree); code != 0 {
		t.Fatal(stderr)
	}
	unsigned := rpmtest.Build(t, rpmTree, rpmtest.Gzip)
	_, stderr, err = svc.TryCLI("import", unsigned)
	if err == nil || !strings.Contains(stderr, "not signed") {
		t.Errorf("import of an unsigned RPM with rpm_keyring set: %v\n%s", err, stderr)
	}
	signed := filepath.Join(t.TempDir(), "signed.rpm")
	rpmtest.Sign(t, key, unsigned, signed)
	svc.JSON(t, &imported, "import", signed)
	if len(imported) != 1 || imported[0].Version != firmware.MustParseVersion("1.0.522.200") {
		t.Errorf("import of the signed RPM = %+v", imported)
	}
}

// writeCabinet packs every file under dir, valid or not, with gcab (as a
// vendor's own tooling would).
func writeCabinet(t *testing.T, dir, out string) {
	t.Helper()
	gcab := testtool.Need(t, "gcab")
	var paths []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	cmd := exec.Command(gcab, append([]string{"-cz", out}, paths...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcab: %v\n%s", err, b)
	}
}
