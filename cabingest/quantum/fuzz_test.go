package quantum

import (
	"bytes"
	"errors"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

// FuzzDecode feeds arbitrary payloads, split into two blocks, to a decoder
// of any window size: it must return nil or ErrCorrupt, never panic or
// hang. Time and memory are bounded by the two blocks (at most 2 frames of
// output) and the window (at most 2 MiB). The seeds are small streams of
// the test encoder, so that minimising stays quick.
func FuzzDecode(f *testing.F) {
	for _, seed := range []struct {
		bits int
		data []byte
	}{
		{16, textData(2000)},
		{10, bytes.Repeat(textData(300), 120)},
		{21, cabtest.FirmwareLike(2, 5000)},
		{15, make([]byte, 2*FrameSize)},
	} {
		blocks := encodeQuantum(seed.data, seed.bits, encoderConfig{})
		first := blocks[0]
		var rest testBlock
		if len(blocks) > 1 {
			rest = blocks[1]
		}
		f.Add(uint8(seed.bits), uint16(first.size), uint16(rest.size), uint16(len(first.payload)), append(append([]byte{}, first.payload...), rest.payload...))
	}
	f.Add(uint8(12), uint16(100), uint16(0), uint16(0), make([]byte, 64))
	f.Add(uint8(18), uint16(FrameSize), uint16(FrameSize), uint16(5), bytes.Repeat([]byte{0xFF}, 12))

	f.Fuzz(func(t *testing.T, bits uint8, size1, size2, split uint16, payload []byte) {
		windowBits := MinWindowBits + int(bits)%(MaxWindowBits-MinWindowBits+1)
		d, err := NewDecoder(windowBits)
		if err != nil {
			t.Fatal(err)
		}
		cut := min(int(split), len(payload))
		blocks := []testBlock{
			{payload: payload[:cut], size: int(size1) % (FrameSize + 1)},
			{payload: payload[cut:], size: int(size2) % (FrameSize + 1)},
		}
		var outs [][]byte
		for _, blk := range blocks {
			dst := make([]byte, blk.size)
			if err := d.Decode(dst, blk.payload); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Decode error %v does not wrap ErrCorrupt", err)
				}
				return
			}
			outs = append(outs, dst)
		}
		// Decoding is deterministic: Reset gives the same bytes again.
		d.Reset()
		for i, blk := range blocks {
			dst := make([]byte, blk.size)
			if err := d.Decode(dst, blk.payload); err != nil {
				t.Fatalf("after Reset, block %d: %v", i, err)
			}
			if !bytes.Equal(dst, outs[i]) {
				t.Fatalf("after Reset, block %d decodes differently", i)
			}
		}
	})
}

// FuzzRoundTrip encodes arbitrary data with the test encoder and checks
// that it decodes back. The input (at most 1 KiB) is repeated up to 40
// times so that small inputs still cross a frame end.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(6), uint8(0), false, textData(1000))
	f.Add(uint8(0), uint8(0), true, []byte("a"))
	f.Add(uint8(11), uint8(30), false, cabtest.FirmwareLike(4, 1000))
	f.Add(uint8(0), uint8(39), false, textData(1024))
	f.Fuzz(func(t *testing.T, bits, reps uint8, literalsOnly bool, input []byte) {
		if len(input) == 0 || len(input) > 1024 {
			return
		}
		data := bytes.Repeat(input, 1+int(reps)%40)
		windowBits := MinWindowBits + int(bits)%(MaxWindowBits-MinWindowBits+1)
		blocks := encodeQuantum(data, windowBits, encoderConfig{literalsOnly: literalsOnly})
		got := decodeBlocks(t, windowBits, blocks)
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip differs at byte %d of %d", firstDiff(got, data), len(data))
		}
	})
}
