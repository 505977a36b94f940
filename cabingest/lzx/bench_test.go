package lzx

import (
	"bytes"
	"compress/flate"
	"runtime"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

const benchSize = 16 << 20

// mszipSize returns the MSZIP size of data: deflate level 6 per 32 KiB
// block with the previous block as dictionary, plus the 2-byte "CK"
// signature of each block.
func mszipSize(tb testing.TB, data []byte) int {
	tb.Helper()
	total := 0
	var buf bytes.Buffer
	var prev []byte
	for off := 0; off < len(data); off += FrameSize {
		chunk := data[off:min(off+FrameSize, len(data))]
		buf.Reset()
		fw, err := flate.NewWriterDict(&buf, 6, prev)
		if err != nil {
			tb.Fatal(err)
		}
		fw.Write(chunk)
		fw.Close()
		total += 2 + buf.Len()
		prev = chunk
	}
	return total
}

func compressedSize(blocks [][]byte) int {
	n := 0
	for _, b := range blocks {
		n += len(b)
	}
	return n
}

func BenchmarkEncode(b *testing.B) {
	data := cabtest.FirmwareLike(1, benchSize)
	e, err := NewEncoder(21)
	if err != nil {
		b.Fatal(err)
	}
	var blocks [][]byte
	b.SetBytes(int64(len(data)))
	runtime.GC()
	cpu0, cpuOK := processCPU()
	b.ResetTimer()
	for b.Loop() {
		e.Reset()
		blocks, _ = encodeAll(b, e, data)
	}
	b.StopTimer()
	// MB per CPU second: the speed on one core, and what the second core
	// adds to the wall-clock MB/s.
	if cpu1, ok := processCPU(); ok && cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(len(data))*float64(b.N)/(cpu1-cpu0).Seconds()/1e6, "cpu-MB/s")
	}
	lzx := compressedSize(blocks)
	ms := mszipSize(b, data)
	b.ReportMetric(float64(lzx)/float64(len(data)), "ratio")
	b.ReportMetric(float64(lzx)/float64(ms), "vs-mszip")
}

func BenchmarkDecode(b *testing.B) {
	data := cabtest.FirmwareLike(1, benchSize)
	e, err := NewEncoder(21)
	if err != nil {
		b.Fatal(err)
	}
	blocks, sizes := encodeAll(b, e, data)
	d, err := NewDecoder(21)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, FrameSize)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		d.Reset()
		for i, blk := range blocks {
			if err := d.Decode(dst[:sizes[i]], blk); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(compressedSize(blocks))/float64(mszipSize(b, data)), "vs-mszip")
}
