package cabcli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPackListTestExtract(t *testing.T) {
	files := cabtest.RandomTree(11, cabtest.TreeConfig{Files: 20, MaxSize: 50 << 10, Big: 300 << 10})
	src := filepath.Join(t.TempDir(), "src")
	if err := cabtest.WriteTree(src, files); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"none", []string{"--compression", "none"}},
		{"mszip", nil},
		{"lzx16", []string{"--compression=lzx:16"}},
		{"split", []string{"--split", "100K"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "fw.cab")
			args := append([]string{"pack", "-o", out}, tt.args...)
			if code, _, stderr := runMain(t, append(args, src)...); code != 0 {
				t.Fatalf("pack: exit %d: %s", code, stderr)
			}
			code, stdout, stderr := runMain(t, "list", out)
			if code != 0 || !strings.Contains(stdout, "firmware.img") {
				t.Errorf("list: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, _ = runMain(t, "list", out, "--json")
			var listed []jsonFile
			if err := json.Unmarshal([]byte(stdout), &listed); err != nil || code != 0 {
				t.Fatalf("list --json: exit %d, %v", code, err)
			}
			if got, want := len(listed), len(files); got != want {
				t.Errorf("list --json: %d files, want %d", got, want)
			}
			if code, stdout, stderr := runMain(t, "test", out); code != 0 || !strings.Contains(stdout, "OK") {
				t.Errorf("test: exit %d, %q, %q", code, stdout, stderr)
			}
			dst := filepath.Join(dir, "x")
			if code, _, stderr := runMain(t, "extract", out, "-C", dst); code != 0 {
				t.Fatalf("extract: exit %d: %s", code, stderr)
			}
			got, err := cabtest.ReadTree(dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(files) {
				t.Fatalf("extracted %d files, want %d", len(got), len(files))
			}
			for i := range got {
				if got[i].Name != files[i].Name || !bytes.Equal(got[i].Data, files[i].Data) {
					t.Errorf("file %d: got %q, want %q", i, got[i].Name, files[i].Name)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cab")
	os.WriteFile(bad, []byte("MSCF not really a cabinet at all, just text"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no-command", nil, 2},
		{"unknown", []string{"frobnicate"}, 2},
		{"list-no-file", []string{"list"}, 2},
		{"missing", []string{"list", filepath.Join(dir, "nope.cab")}, 1},
		{"corrupt", []string{"test", bad}, 1},
		{"bad-compression", []string{"pack", "-o", filepath.Join(dir, "o.cab"), "--compression", "lzx:9", dir}, 2},
		{"bad-split", []string{"pack", "-o", filepath.Join(dir, "o.cab"), "--split", "lots", dir}, 2},
		{"pack-no-out", []string{"pack", dir}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit = %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.HasPrefix(stderr, "devsvc cab: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line starting with \"devsvc cab: \"", stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"list", "--help"}} {
		code, stdout, _ := runMain(t, args...)
		if code != 0 || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true},
		{"64K", 64 << 10, true},
		{"1440k", 1440 << 10, true},
		{"100M", 100 << 20, true},
		{"2G", 2 << 30, true},
		{"1MiB", 1 << 20, true},
		{"", 0, false},
		{"-5", 0, false},
		{"5T", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d (ok=%v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestSeveralCabinets packs two cabinets and joins them behind a stub, as
// a self-extracting installer carries them: list, test and extract handle
// both, and list --json names the cabinet of each file.
func TestSeveralCabinets(t *testing.T) {
	dir := t.TempDir()
	exe := []byte("MZ stub\x00")
	for i, name := range []string{"a.bin", "b.bin"} {
		src := filepath.Join(dir, "src"+name)
		if err := cabtest.WriteTree(src, []cabtest.TreeFile{{Name: name, Data: cabtest.FirmwareLike(int64(i), 5000)}}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, name+".cab")
		if code, _, stderr := runMain(t, "pack", "-o", out, src); code != 0 {
			t.Fatalf("pack: exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		exe = append(exe, b...)
	}
	installer := filepath.Join(dir, "setup.exe")
	if err := os.WriteFile(installer, exe, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runMain(t, "list", installer, "--json")
	var listed []jsonFile
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil || code != 0 {
		t.Fatalf("list --json: exit %d, %v", code, err)
	}
	if len(listed) != 2 || listed[0].Cabinet != "setup.exe" || listed[1].Name != "b.bin" || !strings.HasPrefix(listed[1].Cabinet, "setup.exe@") {
		t.Errorf("list --json = %+v, want a.bin in setup.exe and b.bin in the next cabinet", listed)
	}
	if code, stdout, stderr := runMain(t, "test", installer); code != 0 || strings.Count(stdout, ": OK") != 2 {
		t.Errorf("test: exit %d, %q, %q; want two cabinets OK", code, stdout, stderr)
	}
	dst := filepath.Join(dir, "out")
	if code, _, stderr := runMain(t, "extract", installer, "-C", dst); code != 0 {
		t.Fatalf("extract: exit %d: %s", code, stderr)
	}
	got, err := cabtest.ReadTree(dst)
	if err != nil || len(got) != 2 || got[0].Name != "a.bin" || got[1].Name != "b.bin" {
		t.Errorf("extracted %v, %v; want a.bin and b.bin", got, err)
	}
}

// TestSetFromAnyPart packs a set of three cabinets and names each part in
// turn: as with cabextract, list, test and extract cover the whole set.
// Without the first part, a later one fails naming it.
func TestSetFromAnyPart(t *testing.T) {
	dir := t.TempDir()
	files := []cabtest.TreeFile{ // in the order pack stores them
		{Name: "a.bin", Data: cabtest.FirmwareLike(1, 90000)},
		{Name: "c.txt", Data: []byte("small")},
		{Name: "fw/b.bin", Data: cabtest.FirmwareLike(2, 150000)},
	}
	src := filepath.Join(dir, "src")
	if err := cabtest.WriteTree(src, files); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "set", "fw.cab")
	os.Mkdir(filepath.Dir(out), 0o755)
	code, stdout, stderr := runMain(t, "pack", "-o", out, "--compression", "none", "--split", "100K", src)
	if want := "wrote 3 cabinets: fw.cab, fw-2.cab, fw-3.cab\n"; code != 0 || stdout != want {
		t.Fatalf("pack: exit %d, %q, %q; want %q", code, stdout, stderr, want)
	}
	const cabinets = "3 cabinets (fw.cab to fw-3.cab)"
	for _, name := range []string{"fw.cab", "fw-2.cab", "fw-3.cab"} {
		t.Run(name, func(t *testing.T) {
			part := filepath.Join(dir, "set", name)
			code, stdout, stderr := runMain(t, "list", part)
			if code != 0 || !strings.Contains(stdout, "a.bin") || !strings.Contains(stdout, "3 files in 1 folders, "+cabinets+"\n") {
				t.Errorf("list: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, _ = runMain(t, "list", part, "--json")
			var listed []jsonFile
			if err := json.Unmarshal([]byte(stdout), &listed); err != nil || code != 0 || len(listed) != len(files) {
				t.Errorf("list --json: exit %d, %d files, %v; want %d files", code, len(listed), err, len(files))
			}
			code, stdout, stderr = runMain(t, "test", part)
			if want := name + ": OK, 3 files, 240005 bytes, " + cabinets + "\n"; code != 0 || stdout != want {
				t.Errorf("test: exit %d, %q, %q; want %q", code, stdout, stderr, want)
			}
			dst := filepath.Join(dir, "x-"+name)
			if code, _, stderr := runMain(t, "extract", part, "-C", dst); code != 0 {
				t.Fatalf("extract: exit %d: %s", code, stderr)
			}
			got, err := cabtest.ReadTree(dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(files) {
				t.Fatalf("extracted %d files, want %d", len(got), len(files))
			}
			for i := range got {
				if got[i].Name != files[i].Name || !bytes.Equal(got[i].Data, files[i].Data) {
					t.Errorf("file %d: got %q, want %q", i, got[i].Name, files[i].Name)
				}
			}
		})
	}

	if err := os.Remove(filepath.Join(dir, "set", "fw.cab")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runMain(t, "extract", filepath.Join(dir, "set", "fw-3.cab"), "-C", filepath.Join(dir, "partial"))
	want := `devsvc cab: cab: fw-3.cab: cabinet set is incomplete: previous cabinet "fw.cab" (named in fw-2.cab) not found; put the earlier cabinets of the set in the same directory as fw-3.cab` + "\n"
	if code != 1 || stderr != want {
		t.Errorf("extract without the first part: exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
}

// TestListShowsNamesAsStored: the table shows a name as the cabinet
// stores it, a Windows path with one backslash per separator (not the
// doubled backslashes of a Go quoted string), and escapes only what a
// terminal would not show; list --json has the exact names, and test
// --json what it checked.
func TestListShowsNamesAsStored(t *testing.T) {
	src := t.TempDir()
	for _, f := range []string{"UCPhone/CX600/CX600.nbt", "tab\there.txt", "quote\"d.txt"} {
		p := filepath.Join(src, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "fw.cab")
	if code, _, stderr := runMain(t, "pack", "-o", out, src); code != 0 {
		t.Fatalf("pack: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runMain(t, "list", out)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	for _, want := range []string{` UCPhone\CX600\CX600.nbt`, ` tab\there.txt`, ` quote"d.txt`} {
		if !strings.Contains(stdout, want+"\n") {
			t.Errorf("list shows no line ending in %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, `\\`) {
		t.Errorf("list doubles backslashes:\n%s", stdout)
	}

	_, stdout, _ = runMain(t, "list", out, "--json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, stdout)
	}
	var names []string
	for _, f := range listed {
		names = append(names, f["name"].(string))
	}
	if want := []string{`UCPhone\CX600\CX600.nbt`, `quote"d.txt`, "tab\there.txt"}; strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("list --json names = %q, want %q", names, want)
	}

	code, stdout, stderr = runMain(t, "test", out, "--json")
	var tested []jsonTested
	if err := json.Unmarshal([]byte(stdout), &tested); err != nil || code != 0 {
		t.Fatalf("test --json: exit %d, %v, %s%s", code, err, stdout, stderr)
	}
	if len(tested) != 1 || tested[0].Cabinet != "fw.cab" || tested[0].Files != 3 || len(tested[0].Parts) != 1 {
		t.Errorf("test --json = %+v, want fw.cab with 3 files in 1 part", tested)
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`UCPhone\Polycom\CX600.nbt`, `UCPhone\Polycom\CX600.nbt`},
		{"a\tb", `a\tb`},
		{"esc\x1b[31m", `esc\x1b[31m`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"é ü \uFFFD", "é ü \uFFFD"},
		{`"quoted"`, `"quoted"`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHelpMatchesFlags: the usage shows every flag of every command,
// spelt as given (-o, --json), and mentions no flag that none has.
func TestHelpMatchesFlags(t *testing.T) {
	defined := map[string]bool{"help": true}
	for _, cmd := range []string{"list", "extract", "test", "pack"} {
		newFlagSet(cmd, &options{}).VisitAll(func(f *flag.Flag) {
			defined[f.Name] = true
			spelt := "--" + f.Name
			if len(f.Name) == 1 {
				spelt = "-" + f.Name
			}
			if !regexp.MustCompile(`[ \[]` + regexp.QuoteMeta(spelt) + `[ \]=]`).MatchString(usage) {
				t.Errorf("the usage does not show %s's flag %s", cmd, spelt)
			}
		})
	}
	for _, m := range regexp.MustCompile(`(?:^|[\s\[(|])(-{1,2})([A-Za-z][A-Za-z0-9-]*)`).FindAllStringSubmatch(usage, -1) {
		dashes, name := m[1], m[2]
		if !defined[name] {
			t.Errorf("the usage mentions %s%s, which no command has", dashes, name)
		}
		if (len(name) == 1) != (dashes == "-") {
			t.Errorf("the usage spells %s as %s%s", name, dashes, name)
		}
	}
}
