package lzx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// encodeAll compresses data frame by frame and returns the CFDATA payloads
// and their uncompressed sizes.
func encodeAll(t testing.TB, e *Encoder, data []byte) ([][]byte, []int) {
	t.Helper()
	var blocks [][]byte
	var sizes []int
	for off := 0; off < len(data); off += FrameSize {
		chunk := data[off:min(off+FrameSize, len(data))]
		out, err := e.Encode(nil, chunk)
		if err != nil {
			t.Fatalf("Encode(frame %d): %v", off/FrameSize, err)
		}
		if len(out) > MaxCompressedSize {
			t.Fatalf("frame %d: %d compressed bytes, limit %d", off/FrameSize, len(out), MaxCompressedSize)
		}
		if len(out)%2 != 0 {
			t.Fatalf("frame %d: odd payload size %d", off/FrameSize, len(out))
		}
		blocks = append(blocks, out)
		sizes = append(sizes, len(chunk))
	}
	return blocks, sizes
}

func decodeAll(d *Decoder, blocks [][]byte, sizes []int) ([]byte, error) {
	var out []byte
	for i, b := range blocks {
		dst := make([]byte, sizes[i])
		if err := d.Decode(dst, b); err != nil {
			return out, err
		}
		out = append(out, dst...)
	}
	return out, nil
}

func repetitive(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d: the quick brown fox %d\n", i%37, i%5)
	}
	return b.Bytes()[:n]
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// x86Like has E8 calls near the end of frames and across frame boundaries.
func x86Like(n int) []byte {
	b := repetitive(n)
	for i := 0; i+5 <= n; i += 97 {
		b[i] = 0xE8
		binary.LittleEndian.PutUint32(b[i+1:], uint32(int32(i%5000-2500)))
	}
	for f := FrameSize; f < n; f += FrameSize {
		for _, d := range []int{-12, -11, -10, -9, -3, -1} {
			if f+d >= 0 && f+d < n {
				b[f+d] = 0xE8
			}
		}
	}
	return b
}

func roundTripInputs() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{'x'}},
		{"two bytes", []byte{0xE8, 0}},
		{"eleven bytes", []byte{0xE8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"zeros", make([]byte, 3*FrameSize+5)},
		{"random", randomBytes(1, 2*FrameSize+333)},
		{"repetitive", repetitive(5*FrameSize + 1)},
		{"x86", x86Like(4*FrameSize + 77)},
		{"firmware", cabtest.FirmwareLike(7, 250_000)},
		{"exact frame", cabtest.FirmwareLike(8, FrameSize)},
	}
}

func TestRoundTrip(t *testing.T) {
	for wb := MinWindowBits; wb <= MaxWindowBits; wb++ {
		e, err := NewEncoder(wb)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(wb)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range roundTripInputs() {
			t.Run(fmt.Sprintf("w%d/%s", wb, tc.name), func(t *testing.T) {
				e.Reset()
				d.Reset()
				blocks, sizes := encodeAll(t, e, tc.data)
				got, err := decodeAll(d, blocks, sizes)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(got, tc.data) {
					t.Fatalf("round trip of %d bytes differs (got %d bytes)", len(tc.data), len(got))
				}
			})
		}
	}
}

// TestBlockTypes checks that the encoder emits all three block types on
// suitable data.
func TestBlockTypes(t *testing.T) {
	e, err := NewEncoder(21)
	if err != nil {
		t.Fatal(err)
	}
	data := append(cabtest.FirmwareLike(3, 1<<20), randomBytes(2, 2*FrameSize)...)
	blocks, sizes := encodeAll(t, e, data)
	d, _ := NewDecoder(21)
	got, err := decodeAll(d, blocks, sizes)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip failed: %v", err)
	}
	if e.nVerbatim == 0 || e.nAligned == 0 || e.nUncompressed == 0 {
		t.Errorf("blocks: verbatim %d, aligned %d, uncompressed %d; want all > 0",
			e.nVerbatim, e.nAligned, e.nUncompressed)
	}
}

// TestCabextract checks the encoder's output with an independent decoder.
func TestCabextract(t *testing.T) {
	cabextract := testtool.Need(t, "cabextract")
	for _, wb := range []int{15, 18, 21} {
		for _, tc := range roundTripInputs() {
			if len(tc.data) == 0 {
				continue
			}
			t.Run(fmt.Sprintf("w%d/%s", wb, tc.name), func(t *testing.T) {
				e, err := NewEncoder(wb)
				if err != nil {
					t.Fatal(err)
				}
				blocks, sizes := encodeAll(t, e, tc.data)
				dir := t.TempDir()
				cab := filepath.Join(dir, "test.cab")
				if err := writeTestCab(cab, wb, "data.bin", blocks, sizes); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "out")
				if msg, err := exec.Command(cabextract, "-q", "-d", out, cab).CombinedOutput(); err != nil {
					t.Fatalf("cabextract: %v: %s", err, msg)
				}
				got, err := os.ReadFile(filepath.Join(out, "data.bin"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.data) {
					t.Fatalf("cabextract extracted %d bytes that differ from the %d input bytes", len(got), len(tc.data))
				}
			})
		}
	}
}
