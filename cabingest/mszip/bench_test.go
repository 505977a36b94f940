package mszip

import (
	"bytes"
	"compress/flate"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/cabingest/cabtest"
)

// cpuTime returns the process's user+system CPU time: the machine these
// benchmarks run on is shared, so CPU time is the steadier figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeDynamic decodes MSZIP blocks made by compress/flate
// (dynamic Huffman codes, like gcab's zlib output) with our decoder and,
// for comparison, with compress/flate's reader.
func BenchmarkDecodeDynamic(b *testing.B) {
	data := cabtest.FirmwareLike(1, 8<<20)
	blocks, sizes := flateBlocks(b, data, flate.DefaultCompression)
	dst := make([]byte, MaxBlock)
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		d := NewDecoder()
		start := cpuTime()
		for b.Loop() {
			d.Reset()
			for i, blk := range blocks {
				if err := d.Decode(dst[:sizes[i]], blk); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
	b.Run("compress-flate", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var src bytes.Reader
		fr := flate.NewReader(&src)
		start := cpuTime()
		for b.Loop() {
			var hist []byte
			for i, blk := range blocks {
				src.Reset(blk[2:])
				fr.(flate.Resetter).Reset(&src, hist)
				if _, err := io.ReadFull(fr, dst[:sizes[i]]); err != nil {
					b.Fatal(err)
				}
				hist = append(hist[:0], dst[:sizes[i]]...)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
}
