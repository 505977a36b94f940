package lzx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestWindowBits(t *testing.T) {
	for _, wb := range []int{0, 14, 22, 25} {
		if _, err := NewDecoder(wb); !errors.Is(err, ErrWindowBits) {
			t.Errorf("NewDecoder(%d) error = %v, want ErrWindowBits", wb, err)
		}
		if _, err := NewEncoder(wb); !errors.Is(err, ErrWindowBits) {
			t.Errorf("NewEncoder(%d) error = %v, want ErrWindowBits", wb, err)
		}
	}
}

func TestPositionSlots(t *testing.T) {
	want := map[int]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}
	for wb, n := range want {
		if got := numPositionSlots(wb); got != n {
			t.Errorf("numPositionSlots(%d) = %d, want %d", wb, got, n)
		}
		// The last slot reaches exactly the largest offset, window - 3.
		last := n - 1
		maxOff := int(slots.base[last]) + 1<<slots.extra[last] - 1 - 2
		if maxOff != 1<<wb-3 {
			t.Errorf("window %d: largest offset %d, want %d", wb, maxOff, 1<<wb-3)
		}
	}
}

// uncompressedStream builds an LZX stream (split into frames) holding one
// uncompressed block of data, which may span frames, followed by a second
// uncompressed block of tail.
func uncompressedStream(data, tail []byte) (frames [][]byte, sizes []int) {
	total := append(append([]byte{}, data...), tail...)
	w := bitWriter{}
	w.write(0, 1) // no E8
	block := func(b []byte) {
		w.write(blockUncompressed, 3)
		w.write(uint32(len(b)), 24)
		w.write(0, 16-w.n)
		var r [12]byte
		binary.LittleEndian.PutUint32(r[0:], 1)
		binary.LittleEndian.PutUint32(r[4:], 1)
		binary.LittleEndian.PutUint32(r[8:], 1)
		w.out = append(w.out, r[:]...)
	}
	block(data)
	// The first frame ends FrameSize bytes into the output.
	first := FrameSize
	w.out = append(w.out, data[:first]...)
	frames = append(frames, w.out)
	sizes = append(sizes, first)
	w = bitWriter{}
	w.out = append(w.out, data[first:]...)
	if len(data)%2 == 1 {
		w.out = append(w.out, 0)
	}
	block(tail)
	w.out = append(w.out, tail...)
	frames = append(frames, w.out)
	sizes = append(sizes, len(total)-first)
	return frames, sizes
}

func TestUncompressedBlockSpansFrames(t *testing.T) {
	data := randomBytes(9, FrameSize+1001) // odd: a padding byte follows
	tail := []byte("tail block")
	frames, sizes := uncompressedStream(data, tail)
	d, _ := NewDecoder(16)
	got, err := decodeAll(d, frames, sizes)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if want := append(append([]byte{}, data...), tail...); !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes that differ from the %d stored", len(got), len(want))
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := NewEncoder(16)
	frame1, _ := good.Encode(nil, repetitive(FrameSize))
	frame2, _ := good.Encode(nil, repetitive(FrameSize)[:5000])
	fresh, _ := NewEncoder(16)
	short, _ := fresh.Encode(nil, repetitive(5000))
	tests := []struct {
		name   string
		frames [][]byte
		sizes  []int
		want   error
	}{
		{"empty input", [][]byte{{}}, []int{100}, ErrCorrupt},
		{"block type 0", [][]byte{{0x00, 0x00, 0x00, 0x00}}, []int{100}, ErrCorrupt},
		{"block type 7", [][]byte{{0x00, 0x70, 0x00, 0x00}}, []int{100}, ErrCorrupt},
		{"truncated", [][]byte{frame1[:len(frame1)/2]}, []int{FrameSize}, ErrCorrupt},
		{"frame too large", [][]byte{frame1}, []int{FrameSize + 1}, ErrFrameSize},
		{"frame after short frame", [][]byte{short, frame1}, []int{5000, FrameSize}, ErrFrameSize},
		{"frames swapped", [][]byte{frame2, frame1}, []int{FrameSize, FrameSize}, ErrCorrupt},
		{"uncompressed header cut", [][]byte{{0x00, 0x30, 0x30, 0x00, 1, 0}}, []int{3}, ErrCorrupt},
		{"uncompressed data cut", [][]byte{{0x00, 0x30, 0x30, 0x00, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a'}}, []int{3}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := NewDecoder(16)
			_, err := decodeAll(d, tc.frames, tc.sizes)
			if !errors.Is(err, tc.want) {
				t.Fatalf("decode error = %v, want %v", err, tc.want)
			}
			// The error sticks until Reset.
			if err2 := d.Decode(make([]byte, 10), frame1); err2 == nil {
				t.Errorf("Decode after error succeeded, want the error again")
			}
			d.Reset()
			got := make([]byte, FrameSize)
			if err := d.Decode(got, frame1); err != nil || !bytes.Equal(got, repetitive(FrameSize)) {
				t.Errorf("Decode after Reset: %v", err)
			}
		})
	}
}

func TestUncompressedExample(t *testing.T) {
	// [MS-PATCH] 3: "abc" in an uncompressed block, less the LZXD chunk
	// size prefix that cabinets do not have.
	src := []byte{0x00, 0x30, 0x30, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63, 0x00}
	d, _ := NewDecoder(15)
	got := make([]byte, 3)
	if err := d.Decode(got, src); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if string(got) != "abc" {
		t.Errorf("Decode = %q, want %q", got, "abc")
	}
}

func TestE8Inverse(t *testing.T) {
	data := x86Like(3 * FrameSize)
	for f := 0; f < 3; f++ {
		frame := data[f*FrameSize : (f+1)*FrameSize]
		b := append([]byte{}, frame...)
		e8Encode(b, int64(f*FrameSize), e8FileSize)
		if bytes.Equal(b, frame) {
			t.Errorf("frame %d: E8 translation changed nothing", f)
		}
		e8Decode(b, int64(f*FrameSize), e8FileSize)
		if !bytes.Equal(b, frame) {
			t.Errorf("frame %d: e8Decode(e8Encode(x)) != x", f)
		}
	}
}

func TestIncompressible(t *testing.T) {
	ramp := make([]byte, FrameSize)
	for i := range ramp {
		ramp[i] = byte(i)
	}
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"random", randomBytes(4, FrameSize), true},
		{"short random", randomBytes(4, 1000), false},
		{"byte ramp", ramp, false},
		{"text", repetitive(FrameSize), false},
	}
	for _, tc := range tests {
		if got := incompressible(tc.data); got != tc.want {
			t.Errorf("incompressible(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
