package cab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// pack writes files as a cabinet (set) named out.cab in dir and returns
// the part names.
func pack(t *testing.T, dir string, files []cabtest.TreeFile, cfg WriterConfig) []string {
	t.Helper()
	w, err := NewWriter(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	mod := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
	for _, f := range files {
		data := f.Data
		if err := w.Add(f.Name, int64(len(data)), mod, AttrArchive, func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	names, err := w.Write(t.Context(), root, "out.cab")
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return names
}

// checkTree compares an extracted tree with the packed files.
func checkTree(t *testing.T, who string, got, want []cabtest.TreeFile) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: extracted %d files, want %d", who, len(got), len(want))
	}
	wm := map[string][]byte{}
	for _, f := range want {
		wm[f.Name] = f.Data
	}
	for _, f := range got {
		w, ok := wm[f.Name]
		switch {
		case !ok:
			t.Errorf("%s: unexpected file %q", who, f.Name)
		case !bytes.Equal(f.Data, w):
			t.Errorf("%s: %q: %d bytes differ from the %d packed", who, f.Name, len(f.Data), len(w))
		}
	}
}

func readTree(t *testing.T, dir string) []cabtest.TreeFile {
	t.Helper()
	files, err := cabtest.ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func ourExtract(t *testing.T, dir, first string) []cabtest.TreeFile {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	c, err := OpenSet(root, first, nil)
	if err != nil {
		t.Fatalf("OpenSet: %v", err)
	}
	defer c.Close()
	if err := c.Test(t.Context()); err != nil {
		t.Fatalf("Test: %v", err)
	}
	out := t.TempDir()
	if err := c.ExtractAll(t.Context(), out); err != nil {
		t.Fatalf("ExtractAll: %v", err)
	}
	return readTree(t, out)
}

func runTool(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	cabextract := testtool.Need(t, "cabextract")
	gcab, _ := testtool.Find("gcab")
	trees := []struct {
		name  string
		files []cabtest.TreeFile
	}{
		{"small", cabtest.RandomTree(1, cabtest.TreeConfig{Files: 12, MaxSize: 4096})},
		{"mixed", cabtest.RandomTree(2, cabtest.TreeConfig{Files: 40, MaxSize: 32 << 10, Big: 1 << 20})},
		{"many", cabtest.RandomTree(3, cabtest.TreeConfig{Files: 150, MaxSize: 2048, MaxDepth: 10})},
		{"empty-only", []cabtest.TreeFile{{Name: "a/empty", Data: nil}, {Name: "b", Data: []byte{}}}},
	}
	comps := []struct {
		name string
		c    Compression
	}{
		{"none", Compression{Type: CompressNone}},
		{"mszip", Compression{Type: CompressMSZIP}},
		{"lzx15", Compression{Type: CompressLZX, Window: 15}},
		{"lzx21", Compression{Type: CompressLZX, Window: 21}},
	}
	for _, tree := range trees {
		for _, comp := range comps {
			splits := []int64{0, 64 << 10, 200 << 10}
			if tree.name == "many" || comp.name == "lzx15" {
				splits = []int64{0} // split sets are covered by the others
			}
			for _, split := range splits {
				t.Run(fmt.Sprintf("%s/%s/split=%d", tree.name, comp.name, split), func(t *testing.T) {
					// Every compression the writer offers must have an
					// encoder: an error is a failure, not a reason to skip.
					if _, err := newEncoderFor(comp.c); err != nil {
						t.Fatalf("encoder for %+v: %v", comp.c, err)
					}
					dir := t.TempDir()
					names := pack(t, dir, tree.files, WriterConfig{Compression: comp.c, SplitSize: split, SetID: 77})
					for _, n := range names {
						fi, err := os.Stat(filepath.Join(dir, n))
						if err != nil {
							t.Fatal(err)
						}
						if split > 0 && fi.Size() > split {
							t.Errorf("%s: %d bytes, split size %d", n, fi.Size(), split)
						}
					}
					checkTree(t, "ours", ourExtract(t, dir, names[0]), tree.files)

					out := t.TempDir()
					runTool(t, dir, cabextract, "-q", "-d", out, names[0])
					checkTree(t, "cabextract", readTree(t, out), tree.files)

					// gcab extracts single cabinets only.
					if gcab != "" && len(names) == 1 {
						out := t.TempDir()
						runTool(t, dir, gcab, "-x", "-C", out, names[0])
						checkTree(t, "gcab", readTree(t, out), tree.files)
					}
				})
			}
		}
	}
}

func newEncoderFor(c Compression) (encoder, error) {
	w, err := NewWriter(&WriterConfig{Compression: c})
	if err != nil {
		return nil, err
	}
	return w.newEncoder()
}

func TestReadGcabCabinets(t *testing.T) {
	gcab := testtool.Need(t, "gcab")
	files := cabtest.RandomTree(5, cabtest.TreeConfig{Files: 30, MaxSize: 80 << 10, Big: 300 << 10, ASCII: true})
	src := t.TempDir()
	if err := cabtest.WriteTree(src, files); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	for _, mode := range []string{"-c", "-cz"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "g.cab")
			runTool(t, src, gcab, append([]string{mode, out}, names...)...)
			checkTree(t, "ours", ourExtract(t, dir, "g.cab"), files)
		})
	}
}
