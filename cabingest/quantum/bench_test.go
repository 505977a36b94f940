package quantum

import (
	"fmt"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

// BenchmarkDecode decodes 1 MiB folders made by the test encoder (whose
// output cabextract accepts, see TestRoundTripCabextract).
func BenchmarkDecode(b *testing.B) {
	const size = 1 << 20
	for _, bc := range []struct {
		name string
		data []byte
		bits int
	}{
		{"firmware", cabtest.FirmwareLike(1, size), 21},
		{"firmware", cabtest.FirmwareLike(1, size), 16},
		{"text", textData(size), 21},
		{"literals", cabtest.FirmwareLike(1, size), 21},
	} {
		cfg := encoderConfig{literalsOnly: bc.name == "literals"}
		blocks := encodeQuantum(bc.data, bc.bits, cfg)
		packed := 0
		for _, blk := range blocks {
			packed += len(blk.payload)
		}
		b.Run(fmt.Sprintf("%s/window=%d", bc.name, bc.bits), func(b *testing.B) {
			d, err := NewDecoder(bc.bits)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, FrameSize)
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				d.Reset()
				for _, blk := range blocks {
					if err := d.Decode(dst[:blk.size], blk.payload); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(packed)/float64(len(bc.data)), "packed/byte")
		})
	}
}
