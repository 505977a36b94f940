package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// threeParts packs a set of three cabinets (out.cab, out-2.cab, out-3.cab)
// into dir, with files continued across both boundaries, and returns the
// files packed and the part names.
func threeParts(t *testing.T, dir string) ([]cabtest.TreeFile, []string) {
	t.Helper()
	files := []cabtest.TreeFile{
		{Name: "a.bin", Data: cabtest.FirmwareLike(1, 90000)},
		{Name: "fw\\b.bin", Data: cabtest.FirmwareLike(2, 150000)},
		{Name: "c.txt", Data: []byte("after the big ones")},
	}
	names := pack(t, dir, files, WriterConfig{Compression: Compression{Type: CompressNone}, SplitSize: 100 << 10, SetID: 4242})
	if want := []string{"out.cab", "out-2.cab", "out-3.cab"}; !slices.Equal(names, want) {
		t.Fatalf("packed %q, want %q", names, want)
	}
	return files, names
}

// withPrev returns the cabinet b with its previous-cabinet name set to
// prev (added when b has none), moving the tables and data behind it.
func withPrev(t *testing.T, b []byte, prev string) []byte {
	t.Helper()
	le := binary.LittleEndian
	flags := le.Uint16(b[30:])
	if flags&flagReservePresent != 0 {
		t.Fatal("withPrev: reserved areas not supported")
	}
	at, end := headerSize, headerSize
	if flags&flagPrevCabinet != 0 {
		for range 2 { // name and disk
			end += bytes.IndexByte(b[end:], 0) + 1
		}
	}
	field := append([]byte(prev), 0, 0)
	delta := len(field) - (end - at)
	out := slices.Concat(b[:at], field, b[end:])
	le.PutUint16(out[30:], flags|flagPrevCabinet)
	le.PutUint32(out[8:], uint32(int(le.Uint32(out[8:]))+delta))
	le.PutUint32(out[16:], uint32(int(le.Uint32(out[16:]))+delta))
	strs := at + len(field)
	if flags&flagNextCabinet != 0 {
		for range 2 {
			strs += bytes.IndexByte(out[strs:], 0) + 1
		}
	}
	for i := range int(le.Uint16(out[26:])) {
		o := strs + i*folderSize
		le.PutUint32(out[o:], uint32(int(le.Uint32(out[o:]))+delta))
	}
	return out
}

// setPrev rewrites the cabinet file at p with previous-cabinet name prev.
func setPrev(t *testing.T, p, prev string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, withPrev(t, b, prev), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// TestOpenSetFromAnyPart opens a three-cabinet set from each of its parts:
// each time the whole set is listed, tested and extracted, as cabextract
// does, with the files that continue into and out of the named part.
func TestOpenSetFromAnyPart(t *testing.T) {
	dir := t.TempDir()
	files, names := threeParts(t, dir)
	root := openRoot(t, dir)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c, err := OpenSet(root, name, nil)
			if err != nil {
				t.Fatalf("OpenSet(%s): %v", name, err)
			}
			defer c.Close()
			if got := c.Name(); got != name {
				t.Errorf("Name() = %q, want %q", got, name)
			}
			if got := c.Parts(); !slices.Equal(got, names) {
				t.Errorf("Parts() = %q, want %q", got, names)
			}
			var listed []string
			for _, f := range c.Files() {
				listed = append(listed, f.Name)
			}
			if want := []string{"a.bin", "fw\\b.bin", "c.txt"}; !slices.Equal(listed, want) {
				t.Errorf("Files() = %q, want %q", listed, want)
			}
			if err := c.Test(t.Context()); err != nil {
				t.Errorf("Test: %v", err)
			}
			out := t.TempDir()
			if err := c.ExtractAll(t.Context(), out); err != nil {
				t.Fatalf("ExtractAll: %v", err)
			}
			checkTree(t, "ours", readTree(t, out), slashed(files))

			// OpenAll, what the command line uses, opens the set once.
			cs, err := OpenAll(root, name, nil)
			if err != nil {
				t.Fatalf("OpenAll(%s): %v", name, err)
			}
			for _, c := range cs {
				c.Close()
			}
			if len(cs) != 1 || len(cs[0].Files()) != len(files) {
				t.Errorf("OpenAll(%s) = %d cabinets, want the set as one", name, len(cs))
			}
		})
	}
	t.Run("cabextract", func(t *testing.T) {
		cabextract := testtool.Need(t, "cabextract")
		for _, name := range names {
			out := t.TempDir()
			runTool(t, dir, cabextract, "-q", "-d", out, name)
			checkTree(t, "cabextract "+name, readTree(t, out), slashed(files))
		}
	})
}

// slashed returns files with the separators of extracted paths.
func slashed(files []cabtest.TreeFile) []cabtest.TreeFile {
	out := make([]cabtest.TreeFile, len(files))
	for i, f := range files {
		out[i] = cabtest.TreeFile{Name: SafePath(f.Name), Data: f.Data}
	}
	return out
}

// TestOpenSetLimitsCountTheSet opens the last part of a set with limits
// that each part keeps but the set exceeds.
func TestOpenSetLimitsCountTheSet(t *testing.T) {
	dir := t.TempDir()
	_, names := threeParts(t, dir)
	root := openRoot(t, dir)
	for _, cfg := range []Config{
		{MaxParts: 2},
		{MaxFiles: 2},
		{MaxTotalSize: 200000},
	} {
		c, err := OpenSet(root, names[2], &cfg)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, ErrLimit) {
			t.Errorf("OpenSet(%s, %+v) = %v, want ErrLimit", names[2], cfg, err)
		}
	}
}

// TestOpenSetMissingPrevious removes the first part of a set: opening a
// later part fails with ErrIncomplete, naming the missing cabinet and
// what to do; a part named in another case is found, as by cabextract.
func TestOpenSetMissingPrevious(t *testing.T) {
	dir := t.TempDir()
	_, names := threeParts(t, dir)
	root := openRoot(t, dir)
	if err := os.Rename(filepath.Join(dir, "out.cab"), filepath.Join(dir, "OUT.CAB")); err != nil {
		t.Fatal(err)
	}
	c, err := OpenSet(root, names[2], nil)
	if err != nil {
		t.Fatalf("OpenSet with the first part as OUT.CAB: %v", err)
	}
	if got, want := c.Parts(), []string{"OUT.CAB", "out-2.cab", "out-3.cab"}; !slices.Equal(got, want) {
		t.Errorf("Parts() = %q, want %q", got, want)
	}
	c.Close()

	if err := os.Remove(filepath.Join(dir, "OUT.CAB")); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"out-2.cab", `cab: out-2.cab: cabinet set is incomplete: previous cabinet "out.cab" not found; put the earlier cabinets of the set in the same directory as out-2.cab`},
		{"out-3.cab", `cab: out-3.cab: cabinet set is incomplete: previous cabinet "out.cab" (named in out-2.cab) not found; put the earlier cabinets of the set in the same directory as out-3.cab`},
	}
	for _, tt := range tests {
		c, err := OpenSet(root, tt.name, nil)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, ErrIncomplete) {
			t.Errorf("OpenSet(%s) = %v, want ErrIncomplete", tt.name, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("OpenSet(%s) = %q, want %q", tt.name, err, tt.want)
		}
	}
}

// TestOpenSetLoop makes cabinets name each other as previous: opening
// either fails with ErrFormat instead of walking round.
func TestOpenSetLoop(t *testing.T) {
	for _, tt := range []struct {
		name string
		prev string // out.cab's previous cabinet
	}{
		{"pair", "out-2.cab"},
		{"pair-other-case", "OUT-2.CAB"},
		{"self", "out.cab"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			names := pack(t, dir, []cabtest.TreeFile{{Name: "a.bin", Data: cabtest.FirmwareLike(7, 120000)}},
				WriterConfig{SplitSize: 64 << 10})
			if len(names) != 2 {
				t.Fatalf("packed %q, want two parts", names)
			}
			setPrev(t, filepath.Join(dir, "out.cab"), tt.prev)
			root := openRoot(t, dir)
			for _, name := range names {
				c, err := OpenSet(root, name, nil)
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "loops back") {
					t.Errorf("OpenSet(%s) = %v, want ErrFormat for a loop", name, err)
				}
			}
		})
	}
}

// TestOpenSetPrevNameStaysInside stores previous-cabinet names that lead
// out of the directory of the named cabinet, where a genuine first part
// waits: none is opened. A name into a subdirectory is followed, as
// cabextract does.
func TestOpenSetPrevNameStaysInside(t *testing.T) {
	base := t.TempDir()
	_, names := threeParts(t, base)
	in := filepath.Join(base, "in")
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(base, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "first.cab"), filepath.Join(in, "sub", "first.cab")} {
		if err := os.WriteFile(p, first, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(base, "first.cab"), filepath.Join(in, "link.cab")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(in, "dir.cab"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(base, names[1]))
	if err != nil {
		t.Fatal(err)
	}
	third, err := os.ReadFile(filepath.Join(base, names[2]))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, names[2]), third, 0o644); err != nil {
		t.Fatal(err)
	}
	root := openRoot(t, in)
	for _, tt := range []struct {
		prev string
		ok   bool
	}{
		{"../first.cab", false},
		{`..\first.cab`, false},
		{"sub/../../first.cab", false},
		{base + "/first.cab", false}, // looked up as a relative name
		{"link.cab", false},          // a symlink out of the directory
		{"dir.cab", false},
		{"sub/first.cab", true},
		{`sub\first.cab`, true},
	} {
		if err := os.WriteFile(filepath.Join(in, names[1]), withPrev(t, second, tt.prev), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := OpenSet(root, names[2], nil)
		if err == nil {
			if len(c.Files()) != 3 {
				t.Errorf("previous %q: %d files, want 3", tt.prev, len(c.Files()))
			}
			if err := c.Test(t.Context()); err != nil {
				t.Errorf("previous %q: Test: %v", tt.prev, err)
			}
			c.Close()
		}
		if tt.ok {
			if err != nil {
				t.Errorf("previous %q: OpenSet = %v, want the set", tt.prev, err)
			}
			continue
		}
		if !errors.Is(err, ErrIncomplete) {
			t.Errorf("previous %q: OpenSet = %v, want ErrIncomplete", tt.prev, err)
		}
	}
}
