package cabingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/firmware"
)

// testUpdate is one update of a test tree.
type testUpdate struct {
	id        string // identity path
	version   string
	imageSize int
}

// testUpdates is a bundle with several identities: UCPhone models of two
// vendors and a RoundTable.
var testUpdates = []testUpdate{
	{"UCPhone/Polycom/CX600/A/ENU", "4.0.7577.4372", 300 << 10},
	{"UCPhone/Polycom/CX700/A/ENU", "4.0.7577.4372", 200 << 10},
	{"UCPhone/Aastra/6725ip/A/ENU", "4.0.7577.4366", 100 << 10},
	{"RoundTable/Microsoft/RoundTable/A/ENU", "1.0.522.101", 150 << 10},
}

// writeTree writes the updates under dir, each with an image, a catalog
// and a description, and returns the files' contents by tree path.
func writeTree(t testing.TB, dir string, updates []testUpdate) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i, u := range updates {
		id, err := firmware.ParseIdentity(u.id)
		if err != nil {
			t.Fatal(err)
		}
		vdir := u.id + "/" + u.version
		files[vdir+"/"+id.Model+".nbt"] = cabtest.FirmwareLike(int64(i+1), u.imageSize)
		files[vdir+"/"+id.Model+".cat"] = cabtest.FirmwareLike(int64(100+i), 1500)
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
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	written, err := Describe(context.Background(), s, DescribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range written {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		files[p] = data
	}
	return files
}

// packTree packs the tree under dir into a cabinet file and returns its
// path.
func packTree(t testing.TB, dir, out string, comp cab.Compression) string {
	t.Helper()
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b bytes.Buffer
	if _, err := Pack(context.Background(), s, &b, filepath.Base(out), &cab.WriterConfig{Compression: comp, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
