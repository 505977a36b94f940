package cabtest

import (
	"bytes"
	"compress/flate"
	"testing"
)

func TestFirmwareLikeDeterministic(t *testing.T) {
	for _, size := range []int{0, 1, 100, 4096, 1 << 20} {
		a := FirmwareLike(7, size)
		b := FirmwareLike(7, size)
		if len(a) != size {
			t.Errorf("len(FirmwareLike(7, %d)) = %d, want %d", size, len(a), size)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("FirmwareLike(7, %d) differs between calls", size)
		}
	}
	if bytes.Equal(FirmwareLike(1, 4096), FirmwareLike(2, 4096)) {
		t.Error("FirmwareLike gives the same bytes for seeds 1 and 2")
	}
}

func TestFirmwareLikeCompressible(t *testing.T) {
	data := FirmwareLike(1, 4<<20)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(data)
	w.Close()
	ratio := float64(buf.Len()) / float64(len(data))
	if ratio < 0.2 || ratio > 0.8 {
		t.Errorf("deflate ratio = %.2f, want within [0.2, 0.8]", ratio)
	}
	if !bytes.Contains(data, []byte{0xe8}) {
		t.Error("no E8 opcodes")
	}
	t.Logf("deflate ratio %.3f", ratio)
}

func TestRandomTree(t *testing.T) {
	files := RandomTree(3, TreeConfig{Files: 50, Big: 1 << 20})
	if len(files) < 10 {
		t.Fatalf("len = %d, want >= 10", len(files))
	}
	dir := t.TempDir()
	if err := WriteTree(dir, files); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("ReadTree: %d files, want %d", len(got), len(files))
	}
	for i := range got {
		if got[i].Name != files[i].Name || !bytes.Equal(got[i].Data, files[i].Data) {
			t.Errorf("file %d: got %q, want %q", i, got[i].Name, files[i].Name)
		}
	}
}
