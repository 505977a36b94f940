package cab

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// smallCabinet returns a cabinet written by our writer.
func smallCabinet(tb testing.TB, comp Compression, files []cabtest.TreeFile) []byte {
	tb.Helper()
	w, err := NewWriter(&WriterConfig{Compression: comp})
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		data := f.Data
		if err := w.Add(f.Name, int64(len(data)), time.Time{}, 0, func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := w.WriteTo(context.Background(), &buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

var fuzzConfig = &Config{MaxFiles: 1000, MaxTotalSize: 64 << 20, MaxScan: 1 << 20}

// FuzzOpen feeds arbitrary bytes to Open, Test and Extract: they must
// return (an error or not) without panicking, hanging or using unbounded
// memory. It is seeded with the corpus and with cabinets of every
// compression type.
func FuzzOpen(f *testing.F) {
	files := []cabtest.TreeFile{{Name: "a.txt", Data: []byte("hello hello hello")}, {Name: "dir\\b", Data: cabtest.FirmwareLike(1, 40000)}}
	for _, c := range []Compression{{Type: CompressNone}, {Type: CompressMSZIP}, {Type: CompressLZX, Window: 15}} {
		f.Add(smallCabinet(f, c, files))
	}
	// The corpus seeds are optional, so this reads the variable itself
	// rather than calling testtool.Corpus: without the corpus the target
	// still runs on the cabinets above instead of being skipped (or, under
	// CI=true, failed twice: the corpus tests already fail).
	if dir := os.Getenv(testtool.CorpusEnv); dir != "" {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			for _, p := range corpusFiles(f, dir) {
				if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
					f.Add(data)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Open(bytes.NewReader(data), int64(len(data)), "fuzz.cab", fuzzConfig)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Test(ctx)
		_ = c.Extract(ctx, func(f *File, r io.Reader) error {
			_ = f.Path()
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

// FuzzRoundTrip writes files derived from the input with each
// compression and checks that reading them back gives the same bytes.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("firmware"), uint8(0), uint8(1))
	f.Add(cabtest.FirmwareLike(2, 70000), uint8(1), uint8(3))
	f.Add(bytes.Repeat([]byte{0xE8, 0, 0, 0, 0}, 9000), uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, comp, nfiles uint8) {
		if len(data) > 1<<20 {
			return
		}
		c := []Compression{{Type: CompressNone}, {Type: CompressMSZIP}, {Type: CompressLZX, Window: 15}}[comp%3]
		n := int(nfiles%4) + 1
		var files []cabtest.TreeFile
		for i := 0; i < n; i++ {
			part := data[i*len(data)/n : (i+1)*len(data)/n]
			files = append(files, cabtest.TreeFile{Name: string(rune('a'+i)) + ".bin", Data: part})
		}
		cabinet := smallCabinet(t, c, files)
		cb, err := Open(bytes.NewReader(cabinet), int64(len(cabinet)), "rt.cab", nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		i := 0
		err = cb.Extract(context.Background(), func(f *File, r io.Reader) error {
			got, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if f.Name != files[i].Name || !bytes.Equal(got, files[i].Data) {
				t.Errorf("file %d: got %q (%d bytes), want %q (%d bytes)", i, f.Name, len(got), files[i].Name, len(files[i].Data))
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatalf("Extract: %v", err)
		}
		if i != n {
			t.Errorf("extracted %d files, want %d", i, n)
		}
	})
}
