package quantum

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// libmspackInputMax is the largest CFDATA payload cabextract accepts.
const libmspackInputMax = 32768 + 6144

type roundTrip struct {
	name       string
	data       []byte
	windowBits int
	cfg        encoderConfig
}

func textData(size int) []byte {
	r := cabtest.NewRand(7)
	words := []string{"There ", "was ", "a ", "young ", "lady ", "of ", "Niger\n", "who ", "smiled ", "as ", "she ", "rode ", "on ", "a ", "tiger. "}
	var b []byte
	for len(b) < size {
		b = append(b, words[r.Intn(len(words))]...)
	}
	return b[:size]
}

func randomData(size int) []byte {
	b := make([]byte, size)
	cabtest.NewRand(3).Fill(b)
	return b
}

func roundTrips() []roundTrip {
	fw := cabtest.FirmwareLike(1, 140_000)
	return []roundTrip{
		{name: "one byte", data: []byte{'x'}, windowBits: 15},
		{name: "text 1000", data: textData(1000), windowBits: 10},
		{name: "zeros one frame", data: make([]byte, FrameSize), windowBits: 16},
		{name: "zeros 100000", data: make([]byte, 100_000), windowBits: 18},
		{name: "text frame+1", data: textData(FrameSize + 1), windowBits: 12},
		{name: "text 100000 window 2^10", data: textData(100_000), windowBits: 10},
		{name: "firmware 140000 window 2^15", data: fw, windowBits: 15},
		{name: "firmware 140000 window 2^16", data: fw, windowBits: 16},
		{name: "firmware 140000 window 2^21", data: fw, windowBits: 21},
		{name: "firmware literals only", data: fw[:70_000], windowBits: 17, cfg: encoderConfig{literalsOnly: true}},
		{name: "random 20000", data: randomData(20_000), windowBits: 20},
		{name: "text repeated at window distance", data: bytes.Repeat(textData(1024), 40), windowBits: 10},
	}
}

func decodeBlocks(t *testing.T, windowBits int, blocks []testBlock) []byte {
	t.Helper()
	d, err := NewDecoder(windowBits)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i, blk := range blocks {
		dst := make([]byte, blk.size)
		if err := d.Decode(dst, blk.payload); err != nil {
			t.Fatalf("Decode(block %d of %d) = %v", i, len(blocks), err)
		}
		out = append(out, dst...)
	}
	return out
}

// TestRoundTrip decodes streams of the test encoder.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips() {
		t.Run(tc.name, func(t *testing.T) {
			blocks := encodeQuantum(tc.data, tc.windowBits, tc.cfg)
			packed := 0
			for _, b := range blocks {
				packed += len(b.payload)
			}
			t.Logf("%d bytes in %d blocks, %d packed", len(tc.data), len(blocks), packed)
			got := decodeBlocks(t, tc.windowBits, blocks)
			if !bytes.Equal(got, tc.data) {
				t.Errorf("decoded %d bytes, want the %d encoded (first difference at %d)", len(got), len(tc.data), firstDiff(got, tc.data))
			}
		})
	}
}

// TestRoundTripCabextract has cabextract check the test encoder's output,
// so that TestRoundTrip does not just agree with itself.
func TestRoundTripCabextract(t *testing.T) {
	cabextract := testtool.Need(t, "cabextract")
	dir := t.TempDir()
	for i, tc := range roundTrips() {
		t.Run(tc.name, func(t *testing.T) {
			blocks := encodeQuantum(tc.data, tc.windowBits, tc.cfg)
			for j, b := range blocks {
				if len(b.payload) > libmspackInputMax {
					t.Skipf("block %d packs to %d bytes, more than cabextract accepts", j, len(b.payload))
				}
			}
			path := filepath.Join(dir, fmt.Sprintf("case%d.cab", i))
			if err := os.WriteFile(path, buildTestCab("data.bin", tc.windowBits, blocks), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := extract(t, cabextract, path, "data.bin")
			if err != nil {
				t.Fatalf("cabextract: %v", err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("cabextract extracted %d bytes, want the %d encoded (first difference at %d)", len(got), len(tc.data), firstDiff(got, tc.data))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBlockEndsInsideFrame splits one frame over two Decode calls: the
// second block is empty and the decoder must go on with the unread input
// of the first, as the reference decoder reads its input as one stream.
func TestBlockEndsInsideFrame(t *testing.T) {
	data := textData(20_000)
	blocks := encodeQuantum(data, 16, encoderConfig{})
	if len(blocks) != 1 {
		t.Fatalf("got %d blocks, want 1", len(blocks))
	}
	for _, split := range []int{1, 3, 5000, 19_999} {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			d, err := NewDecoder(16)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(data))
			if err := d.Decode(got[:split], blocks[0].payload); err != nil {
				t.Fatalf("Decode(first %d bytes) = %v", split, err)
			}
			if err := d.Decode(got[split:], nil); err != nil {
				t.Fatalf("Decode(rest) = %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("first difference at %d", firstDiff(got, data))
			}
		})
	}
}

// TestReset decodes two folders with one decoder.
func TestReset(t *testing.T) {
	a, b := textData(40_000), cabtest.FirmwareLike(9, 50_000)
	ba, bb := encodeQuantum(a, 15, encoderConfig{}), encodeQuantum(b, 15, encoderConfig{})
	d, err := NewDecoder(15)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data   []byte
		blocks []testBlock
	}{{a, ba}, {b, bb}, {a, ba}} {
		d.Reset()
		var got []byte
		for i, blk := range tc.blocks {
			dst := make([]byte, blk.size)
			if err := d.Decode(dst, blk.payload); err != nil {
				t.Fatalf("Decode(block %d) = %v", i, err)
			}
			got = append(got, dst...)
		}
		if !bytes.Equal(got, tc.data) {
			t.Errorf("after Reset: first difference at %d", firstDiff(got, tc.data))
		}
	}
}

func TestNewDecoderWindowBits(t *testing.T) {
	for _, tc := range []struct {
		bits int
		ok   bool
	}{{9, false}, {10, true}, {15, true}, {21, true}, {22, false}, {0, false}, {-1, false}} {
		t.Run(fmt.Sprint(tc.bits), func(t *testing.T) {
			d, err := NewDecoder(tc.bits)
			if tc.ok && (err != nil || d == nil) {
				t.Errorf("NewDecoder(%d) = %v, %v; want a decoder", tc.bits, d, err)
			}
			if !tc.ok && !errors.Is(err, ErrWindowBits) {
				t.Errorf("NewDecoder(%d) error = %v, want ErrWindowBits", tc.bits, err)
			}
		})
	}
}

// TestCorrupt checks that damaged streams end in ErrCorrupt, and that the
// error sticks until Reset.
func TestCorrupt(t *testing.T) {
	good := encodeQuantum(textData(3*FrameSize), 16, encoderConfig{})
	zeros := make([]byte, 64)
	cases := []struct {
		name   string
		blocks []testBlock
	}{
		{"block larger than a frame", []testBlock{{payload: good[0].payload, size: FrameSize + 1}}},
		{"match before the start", []testBlock{{payload: zeros, size: 100}}},
		{"empty payload", []testBlock{{payload: nil, size: 100}}},
		{"truncated frame", []testBlock{{payload: good[0].payload[:len(good[0].payload)/2], size: FrameSize}}},
		{"frames swapped", []testBlock{good[0], good[2], good[1]}},
		{"frame cut short", []testBlock{{payload: good[0].payload, size: FrameSize}, {payload: good[1].payload[:40], size: FrameSize}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDecoder(16)
			if err != nil {
				t.Fatal(err)
			}
			var first error
			for _, blk := range tc.blocks {
				if first = d.Decode(make([]byte, blk.size), blk.payload); first != nil {
					break
				}
			}
			if !errors.Is(first, ErrCorrupt) {
				t.Fatalf("Decode error = %v, want ErrCorrupt", first)
			}
			if err := d.Decode(make([]byte, 10), good[0].payload); err != first {
				t.Errorf("Decode after error = %v, want the first error again", err)
			}
			d.Reset()
			if err := d.Decode(make([]byte, good[0].size), good[0].payload); err != nil {
				t.Errorf("Decode after Reset = %v", err)
			}
		})
	}
}

// TestSlotTables checks the tables against the rules of the package
// comment.
func TestSlotTables(t *testing.T) {
	base := uint32(0)
	for s := range positionBase {
		extra := max(0, s-2) / 2
		if positionBase[s] != base || int(positionExtra[s]) != extra {
			t.Errorf("position slot %d: base %d extra %d, want %d %d", s, positionBase[s], positionExtra[s], base, extra)
		}
		base += 1 << extra
	}
	if base != 1<<MaxWindowBits {
		t.Errorf("position slots reach %d, want %d", base, 1<<MaxWindowBits)
	}
	b := uint16(0)
	for s := 0; s < 26; s++ {
		extra := max(0, s-2) / 4
		if lengthBase[s] != b || int(lengthExtra[s]) != extra {
			t.Errorf("length slot %d: base %d extra %d, want %d %d", s, lengthBase[s], lengthExtra[s], b, extra)
		}
		b += 1 << extra
	}
	if lengthBase[26] != 254 || lengthExtra[26] != 0 {
		t.Errorf("length slot 26: base %d extra %d, want 254 0", lengthBase[26], lengthExtra[26])
	}
}

var damagedCases = flag.Int("damaged", 60, "streams TestDamagedLikeCabextract damages and compares with cabextract")

// damage is one way TestDamagedLikeCabextract breaks a folder's blocks;
// it reports whether a block before the last was damaged.
type damage struct {
	name  string
	apply func(r *cabtest.Rand, bl []testBlock) (midFolder bool)
}

var damages = []damage{
	{"none", func(*cabtest.Rand, []testBlock) bool { return false }},
	{"bits flipped", func(r *cabtest.Rand, bl []testBlock) bool {
		k := r.Intn(len(bl))
		p := append([]byte{}, bl[k].payload...)
		for range 1 + r.Intn(3) {
			i := r.Intn(len(p) * 8)
			p[i/8] ^= 1 << (i % 8)
		}
		bl[k].payload = p
		return k < len(bl)-1
	}},
	{"byte overwritten", func(r *cabtest.Rand, bl []testBlock) bool {
		k := r.Intn(len(bl))
		p := append([]byte{}, bl[k].payload...)
		p[r.Intn(len(p))] = byte(r.Intn(256))
		bl[k].payload = p
		return k < len(bl)-1
	}},
	{"block truncated", func(r *cabtest.Rand, bl []testBlock) bool {
		k := r.Intn(len(bl))
		bl[k].payload = bl[k].payload[:len(bl[k].payload)-r.Intn(min(8, len(bl[k].payload)))]
		return k < len(bl)-1
	}},
	// The reference decoder ignores the blocks' sizes (it decodes the
	// files' bytes from one stream), so blocks that do not end at frame
	// ends must decode the same.
	{"block sizes moved", func(r *cabtest.Rand, bl []testBlock) bool {
		for i := 0; i+1 < len(bl); i++ {
			total := bl[i].size + bl[i+1].size
			lo := max(0, total-FrameSize)
			bl[i].size = lo + r.Intn(min(FrameSize, total)-lo+1)
			bl[i+1].size = total - bl[i].size
		}
		return false
	}},
}

// TestDamagedLikeCabextract damages streams of the test encoder and holds
// the decoder to cabextract: the same bytes where it extracts, an error
// where it refuses. The allowed differences:
//   - a match reaching before the start of the data, which this decoder
//     refuses and cabextract fills from its fresh window;
//   - a block other than the last that runs out of input, where cabextract
//     reads on into the next block and this decoder cannot;
//   - a last match running past the end of the folder's data, which this
//     decoder cuts off (it cannot tell the last block) and cabextract
//     accepts too, unless the match also crosses the end of its window,
//     which it cannot flush.
//
// Run with -damaged=3000 for a longer comparison.
func TestDamagedLikeCabextract(t *testing.T) {
	cabextract := testtool.Need(t, "cabextract")
	dir := t.TempDir()
	r := cabtest.NewRand(77)
	for i := range *damagedCases {
		var data []byte
		size := 1 + r.Intn(3*FrameSize)
		switch r.Intn(3) {
		case 0:
			data = textData(size)
		case 1:
			data = cabtest.FirmwareLike(int64(i), size)
		case 2:
			data = randomData(min(size, 20_000))
		}
		bits := MinWindowBits + r.Intn(MaxWindowBits-MinWindowBits+1)
		blocks := encodeQuantum(data, bits, encoderConfig{literalsOnly: r.Intn(8) == 0})
		dmg := damages[r.Intn(len(damages))]
		midFolder := dmg.apply(r, blocks)
		name := fmt.Sprintf("case %d (%d bytes, window 2^%d, %d blocks, %s)", i, len(data), bits, len(blocks), dmg.name)

		path := filepath.Join(dir, fmt.Sprintf("case%d.cab", i))
		if err := os.WriteFile(path, buildTestCab("data.bin", bits, blocks), 0o644); err != nil {
			t.Fatal(err)
		}
		want, cerr := extract(t, cabextract, path, "data.bin")
		got, overrun, err := decodeFolderOverrun(testFolder{typeCompress: uint16(compQuantum | bits<<compWindowBits), blocks: blocks})
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		case cerr == nil && errors.Is(err, errBeforeStart):
		case cerr == nil && errors.Is(err, errExhausted) && midFolder:
		case cerr == nil && err != nil:
			t.Errorf("%s: cabextract extracts it, decoding fails: %v", name, err)
		case cerr == nil && !bytes.Equal(got, want):
			t.Errorf("%s: decoded bytes differ from cabextract's at %d", name, firstDiff(got, want))
		case cerr != nil && err == nil && !overrun:
			t.Errorf("%s: cabextract fails (%v), decoding succeeds", name, cerr)
		}
	}
}
