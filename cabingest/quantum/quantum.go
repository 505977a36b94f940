package quantum

import (
	"errors"
	"fmt"
	"math/bits"
)

// FrameSize is the number of bytes one Quantum frame decodes to, and the
// largest block Decode accepts.
const FrameSize = 32768

// Window sizes a Decoder accepts, as powers of two.
const (
	MinWindowBits = 10
	MaxWindowBits = 21
)

var (
	// ErrCorrupt is returned when the compressed data is not a valid
	// Quantum stream: a match before the start of the data or beyond the
	// window, a literal or match crossing a frame end, a block larger
	// than a frame, or input that ends too early. The Decoder then
	// refuses further blocks until Reset.
	ErrCorrupt = errors.New("quantum: corrupt data")

	// ErrWindowBits is returned by NewDecoder when the window size is
	// outside MinWindowBits..MaxWindowBits.
	ErrWindowBits = errors.New("quantum: window bits out of range")

	// errBeforeStart marks the one check the reference decoder lacks (it
	// reads whatever its window held), for the differential tests.
	errBeforeStart = errors.New("reaches before the start of the data")
)

// Slot tables (see the package comment for the rules that generate them;
// TestSlotTables checks them). They are never written.
var (
	positionBase = [2 * MaxWindowBits]uint32{
		0, 1, 2, 3, 4, 6, 8, 12,
		16, 24, 32, 48, 64, 96, 128, 192,
		256, 384, 512, 768, 1024, 1536, 2048, 3072,
		4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152,
		65536, 98304, 131072, 196608, 262144, 393216, 524288, 786432,
		1048576, 1572864,
	}
	positionExtra = [2 * MaxWindowBits]uint8{
		0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9,
		9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 19, 19,
	}
	lengthBase = [27]uint16{
		0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 18, 22, 26,
		30, 38, 46, 54, 62, 78, 94, 110, 126, 158, 190, 222, 254,
	}
	lengthExtra = [27]uint8{
		0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
	}
)

// Selector values: 0..3 are literals from the literal model of that
// number.
const (
	selMatch3   = 4 // match of length 3
	selMatch4   = 5 // match of length 4
	selMatchVar = 6 // match of length 5 and more
)

// minVarLength is the length of a selector 6 match with length slot 0.
const minVarLength = 5

// A Decoder decodes the Quantum-compressed blocks of one cabinet folder
// after another. It is not safe for concurrent use.
type Decoder struct {
	windowBits int
	window     []byte
	mask       int
	pos        int   // where the next byte goes in window
	total      int64 // bytes decoded since Reset

	frameLeft int  // bytes the current frame still has to produce
	fresh     bool // the arithmetic decoder must be (re)started
	h, l, c   uint32

	matchLeft int // bytes of the last match not yet copied
	matchOff  int

	selector model
	literal  [4]model
	pos3     model // position slots of matches of length 3
	pos4     model // ... length 4
	posVar   model // ... length 5 and more
	length   model // length slots of selector 6 matches

	br  bitReader
	err error
}

// NewDecoder returns a decoder for a folder compressed with a window of
// 2^windowBits bytes, MinWindowBits <= windowBits <= MaxWindowBits.
func NewDecoder(windowBits int) (*Decoder, error) {
	if windowBits < MinWindowBits || windowBits > MaxWindowBits {
		return nil, fmt.Errorf("%w: %d, want %d..%d", ErrWindowBits, windowBits, MinWindowBits, MaxWindowBits)
	}
	size := 1 << windowBits
	d := &Decoder{windowBits: windowBits, window: make([]byte, size), mask: size - 1}
	d.Reset()
	return d, nil
}

// Reset prepares the decoder for a new folder: empty window, initial
// models, next block starts a frame.
func (d *Decoder) Reset() {
	d.pos = 0
	d.total = 0
	d.frameLeft = FrameSize
	d.fresh = true
	d.h, d.l, d.c = 0, 0, 0
	d.matchLeft, d.matchOff = 0, 0
	slots := 2 * d.windowBits
	d.selector.init(0, 7)
	for i := range d.literal {
		d.literal[i].init(64*i, 64)
	}
	d.pos3.init(0, min(24, slots))
	d.pos4.init(0, min(36, slots))
	d.posVar.init(0, slots)
	d.length.init(0, len(lengthBase))
	d.br.reset()
	d.err = nil
}

// Decode decodes one CFDATA block: src is its compressed payload as stored
// in the cabinet, len(dst) its uncompressed size (at most FrameSize). State
// carries over to the next call until Reset. Decode keeps neither slice.
//
// Normally a block holds one frame: all blocks of a folder but the last
// decode to FrameSize bytes. Like the reference decoder, which reads a
// folder's payloads as one stream with a 0xFF after each, Decode also
// accepts blocks that end inside a frame: it keeps their unread input (at
// most 128 KiB) for the next call. A zero-length dst decodes nothing.
//
// After an error, which wraps ErrCorrupt, Decode keeps returning it until
// Reset.
func (d *Decoder) Decode(dst, src []byte) error {
	if d.err != nil {
		return d.err
	}
	if len(dst) > FrameSize {
		d.err = fmt.Errorf("%w: block of %d bytes is larger than a frame (%d)", ErrCorrupt, len(dst), FrameSize)
		return d.err
	}
	d.br.start(src)
	err := d.decode(dst)
	if err == nil {
		if berr := d.br.finish(); berr != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, berr)
		}
	}
	if err != nil {
		d.br.src = nil
		d.err = err
	}
	return err
}

func (d *Decoder) decode(dst []byte) error {
	w, mask := d.window, d.mask
	out := 0
	for out < len(dst) {
		if d.matchLeft > 0 {
			n := min(d.matchLeft, len(dst)-out)
			d.copyMatch(dst[out : out+n])
			d.matchLeft -= n
			d.total += int64(n)
			out += n
			continue
		}
		if d.fresh {
			c, err := d.br.bits(16)
			if err != nil {
				return d.fail("frame header", err)
			}
			d.h, d.l, d.c = 0xFFFF, 0, c
			d.fresh = false
		}
		sel, err := d.symbol(&d.selector)
		if err != nil {
			return d.fail("selector", err)
		}
		if sel < selMatch3 {
			lit, err := d.symbol(&d.literal[sel])
			if err != nil {
				return d.fail("literal", err)
			}
			w[d.pos] = byte(lit)
			d.pos = (d.pos + 1) & mask
			dst[out] = byte(lit)
			out++
			d.total++
			d.frameLeft--
		} else {
			length, offset, err := d.match(sel)
			if err != nil {
				return err
			}
			if length > d.frameLeft {
				return fmt.Errorf("%w: match of %d bytes at output byte %d crosses the frame end %d bytes ahead", ErrCorrupt, length, d.total, d.frameLeft)
			}
			if int64(offset) > min(d.total, int64(len(w))) {
				return fmt.Errorf("%w: match offset %d at output byte %d %w (window %d bytes)", ErrCorrupt, offset, d.total, errBeforeStart, len(w))
			}
			d.frameLeft -= length
			d.matchLeft, d.matchOff = length, offset
		}
		if d.frameLeft == 0 {
			if err := d.endFrame(); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyMatch copies len(dst) bytes of the current match into the window
// and dst.
func (d *Decoder) copyMatch(dst []byte) {
	w, n := d.window, len(dst)
	from := (d.pos - d.matchOff) & d.mask
	if d.pos+n <= len(w) && from+n <= len(w) {
		// Neither end wraps around the window.
		to := w[d.pos : d.pos+n]
		if d.matchOff >= n {
			copy(to, w[from:from+n])
		} else {
			// Overlapping: each byte may be one this match just wrote.
			src := w[from : from+n]
			for i := range to {
				to[i] = src[i]
			}
		}
		copy(dst, to)
		d.pos = (d.pos + n) & d.mask
		return
	}
	pos := d.pos
	for i := range dst {
		b := w[from]
		w[pos] = b
		dst[i] = b
		from = (from + 1) & d.mask
		pos = (pos + 1) & d.mask
	}
	d.pos = pos
}

// match reads the rest of a match after its selector.
func (d *Decoder) match(sel int) (length, offset int, err error) {
	posModel := &d.pos3
	switch sel {
	case selMatch3:
		length = 3
	case selMatch4:
		length = 4
		posModel = &d.pos4
	case selMatchVar:
		slot, err := d.symbol(&d.length)
		if err != nil {
			return 0, 0, d.fail("match length", err)
		}
		extra, err := d.br.extra(uint(lengthExtra[slot]))
		if err != nil {
			return 0, 0, d.fail("match length", err)
		}
		length = int(lengthBase[slot]) + int(extra) + minVarLength
		posModel = &d.posVar
	default:
		// The selector model has 7 symbols; this cannot happen.
		return 0, 0, fmt.Errorf("%w: selector %d", ErrCorrupt, sel)
	}
	slot, err := d.symbol(posModel)
	if err != nil {
		return 0, 0, d.fail("match position", err)
	}
	extra, err := d.br.extra(uint(positionExtra[slot]))
	if err != nil {
		return 0, 0, d.fail("match position", err)
	}
	return length, int(positionBase[slot]) + int(extra) + 1, nil
}

// endFrame skips the frame's padding: realign to a byte, then read up to
// and including the 0xFF trailer.
func (d *Decoder) endFrame() error {
	d.br.align()
	for {
		b, err := d.br.bits(8)
		if err != nil {
			return d.fail("frame trailer", err)
		}
		if b == trailerByte {
			break
		}
	}
	d.fresh = true
	d.frameLeft = FrameSize
	return nil
}

// symbol decodes one symbol from m and updates m.
//
// The arithmetic is that of the reference decoder, 16-bit registers in
// 32-bit unsigned arithmetic, so that even corrupt input decodes the same
// way.
func (d *Decoder) symbol(m *model) (int, error) {
	h, l, c := d.h, d.l, d.c
	total := uint32(m.cum[0])
	rng := (h-l)&0xFFFF + 1
	target := (((c-l+1)*total - 1) / rng) & 0xFFFF
	r := 1
	for r < m.n && uint32(m.cum[r]) > target {
		r++
	}
	r-- // the rank of the decoded symbol
	sym := int(m.sym[r])

	rng = h - l + 1
	h = (l + uint32(m.cum[r])*rng/total - 1) & 0xFFFF
	l = (l + uint32(m.cum[r+1])*rng/total) & 0xFFFF
	m.bump(r)

	for {
		if same := ^(l ^ h) & 0xFFFF; same&0x8000 != 0 {
			// The top k bits of L and H agree: shift them all out.
			k := uint(bits.LeadingZeros16(^uint16(same)))
			in, err := d.br.bits(k)
			if err != nil {
				return 0, err
			}
			l = (l << k) & 0xFFFF
			h = (h<<k | (1<<k - 1)) & 0xFFFF
			c = (c<<k | in) & 0xFFFF
			continue
		}
		if l&0x4000 == 0 || h&0x4000 != 0 {
			break
		}
		// The interval straddles the middle: drop the second bit.
		c ^= 0x4000
		l &= 0x3FFF
		h |= 0x4000
		in, err := d.br.bit()
		if err != nil {
			return 0, err
		}
		l = (l << 1) & 0xFFFF
		h = (h<<1 | 1) & 0xFFFF
		c = (c<<1 | in) & 0xFFFF
	}
	d.h, d.l, d.c = h, l, c
	return sym, nil
}

// fail wraps a bit reader error with what was being read and where.
func (d *Decoder) fail(what string, err error) error {
	return fmt.Errorf("%w: %s at output byte %d: %w", ErrCorrupt, what, d.total, err)
}
