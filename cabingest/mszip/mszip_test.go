package mszip

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

// newEncoder returns an encoder at level, failing the test on error.
func newEncoder(tb testing.TB, level int) *Encoder {
	tb.Helper()
	enc, err := NewEncoder(level)
	if err != nil {
		tb.Fatalf("NewEncoder(%d): %v", level, err)
	}
	return enc
}

// encode encodes src as enc's next block, failing the test on error.
func encode(tb testing.TB, enc *Encoder, src []byte) []byte {
	tb.Helper()
	b, err := enc.Encode(nil, src)
	if err != nil {
		tb.Fatalf("Encode of %d bytes: %v", len(src), err)
	}
	return b
}

func roundTrip(t *testing.T, data []byte, level int) {
	t.Helper()
	enc := newEncoder(t, level)
	var blocks [][]byte
	var sizes []int
	for off := 0; off < len(data); off += MaxBlock {
		end := min(off+MaxBlock, len(data))
		b := encode(t, enc, data[off:end])
		blocks = append(blocks, b)
		sizes = append(sizes, end-off)
	}
	dec := NewDecoder()
	var out []byte
	for i, b := range blocks {
		dst := make([]byte, sizes[i])
		if err := dec.Decode(dst, b); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		out = append(out, dst...)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("round trip of %d bytes differs", len(data))
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		level int
	}{
		{"empty", nil, Default},
		{"one", []byte{1}, Default},
		{"firmware-1MB", cabtest.FirmwareLike(1, 1<<20), Default},
		{"firmware-speed", cabtest.FirmwareLike(2, 300000), Fast},
		{"random", cabtest.FirmwareLike(3, 0), Store},
		{"repeat", bytes.Repeat([]byte("abc"), 100000), Best},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.data, tt.level) })
	}
}

func TestHistoryIsUsed(t *testing.T) {
	// The second block repeats the first; with the dictionary it is tiny.
	data := cabtest.FirmwareLike(9, MaxBlock)
	enc := newEncoder(t, Default)
	b1 := encode(t, enc, data)
	b2 := encode(t, enc, data)
	if len(b2) > len(b1)/4 {
		t.Errorf("second block %d bytes, first %d: dictionary unused", len(b2), len(b1))
	}
	dec := NewDecoder()
	out := make([]byte, MaxBlock)
	if err := dec.Decode(out, b1); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(out, b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Error("second block differs")
	}
	dec.Reset()
	if err := dec.Decode(out, b2); err == nil {
		t.Error("Decode after Reset without history succeeded, want error")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := encode(t, newEncoder(t, Default), []byte("hello, hello, hello"))
	tests := []struct {
		name string
		dst  int
		src  []byte
	}{
		{"no-signature", 5, []byte("XX\x03\x00")},
		{"short", 5, []byte("C")},
		{"too-long-output", 5, good},
		{"too-short-output", 100, good},
		{"truncated", 19, good[:6]},
		{"too-big", MaxBlock + 1, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewDecoder().Decode(make([]byte, tt.dst), tt.src)
			if !errors.Is(err, ErrFormat) {
				t.Errorf("Decode = %v, want ErrFormat", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, newEncoder(f, Default), cabtest.FirmwareLike(1, 2000)), uint16(2000))
	f.Add([]byte("CK\x03\x00"), uint16(0))
	f.Fuzz(func(t *testing.T, src []byte, n uint16) {
		dst := make([]byte, int(n)%(MaxBlock+1))
		d := NewDecoder()
		_ = d.Decode(dst, src)
		_ = d.Decode(dst, src)
	})
}

func BenchmarkDecode(b *testing.B) {
	data := cabtest.FirmwareLike(1, 8<<20)
	enc := newEncoder(b, Default)
	var blocks [][]byte
	for off := 0; off < len(data); off += MaxBlock {
		blocks = append(blocks, encode(b, enc, data[off:off+MaxBlock]))
	}
	dst := make([]byte, MaxBlock)
	dec := NewDecoder()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dec.Reset()
		for _, blk := range blocks {
			if err := dec.Decode(dst, blk); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// flateBlocks compresses data in MSZIP blocks with compress/flate (which
// uses dynamic Huffman codes, unlike our encoder), for decoder tests.
func flateBlocks(t testing.TB, data []byte, level int) ([][]byte, []int) {
	var blocks [][]byte
	var sizes []int
	var hist []byte
	for off := 0; off < len(data); off += MaxBlock {
		end := min(off+MaxBlock, len(data))
		var buf bytes.Buffer
		buf.WriteString("CK")
		fw, err := flate.NewWriterDict(&buf, level, hist)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data[off:end]); err != nil {
			t.Fatalf("flate Write: %v", err)
		}
		if err := fw.Close(); err != nil {
			t.Fatalf("flate Close: %v", err)
		}
		blocks = append(blocks, buf.Bytes())
		sizes = append(sizes, end-off)
		hist = data[off:end]
	}
	return blocks, sizes
}

func TestDecodeFlateStreams(t *testing.T) {
	inputs := map[string][]byte{
		"firmware": cabtest.FirmwareLike(4, 1<<20),
		"zeros":    make([]byte, 100000),
		"text":     bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog "), 3000),
	}
	for name, data := range inputs {
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
			t.Run(fmt.Sprintf("%s/%d", name, level), func(t *testing.T) {
				blocks, sizes := flateBlocks(t, data, level)
				d := NewDecoder()
				var out []byte
				for i, b := range blocks {
					dst := make([]byte, sizes[i])
					if err := d.Decode(dst, b); err != nil {
						t.Fatalf("block %d: %v", i, err)
					}
					out = append(out, dst...)
				}
				if !bytes.Equal(out, data) {
					t.Fatal("decoded data differs")
				}
			})
		}
	}
}

// FuzzDecodeDifferential checks the decoder against compress/flate on
// arbitrary deflate streams: both must agree on the bytes whenever ours
// succeeds.
func FuzzDecodeDifferential(f *testing.F) {
	blocks, _ := flateBlocks(f, cabtest.FirmwareLike(5, 5000), flate.DefaultCompression)
	f.Add(blocks[0][2:], uint16(5000))
	f.Add([]byte{1, 0, 0, 0xff, 0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, src []byte, n uint16) {
		size := int(n) % (MaxBlock + 1)
		d := NewDecoder()
		got := make([]byte, size)
		err := d.Decode(got, append([]byte("CK"), src...))
		if err != nil {
			return
		}
		want, ferr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(src)), int64(size)+1))
		if len(want) < size {
			t.Fatalf("ours decoded %d bytes, compress/flate only %d (%v)", size, len(want), ferr)
		}
		if !bytes.Equal(got, want[:size]) {
			t.Fatalf("ours and compress/flate differ")
		}
	})
}
