package lzx

import (
	"encoding/binary"
	"fmt"
)

// Table sizes of the decoding tables (primary bits).
const (
	mainTableBits    = 12
	lengthTableBits  = 12
	pretreeTableBits = 8
	alignedTableBits = 7
)

// Decoder decodes the LZX frames of one cabinet folder. It is not safe for
// concurrent use.
type Decoder struct {
	windowBits int
	window     []byte
	mainSyms   int

	pos        int   // window position of the next output byte
	frameStart int   // window position of the current frame's start
	total      int64 // bytes output in this folder
	frame      int   // frames decoded in this folder
	short      bool  // a frame shorter than FrameSize was decoded
	err        error // sticky error until Reset

	headerRead bool
	e8Size     int32 // 0: no E8 translation

	r0, r1, r2 uint32

	blockType      int
	blockRemaining int
	blockLength    int
	padPending     bool // uncompressed block of odd size ended, pad byte not yet skipped

	mainLens    []uint8 // mainSyms + lenSafety
	lengthLens  []uint8 // numSecondaryLens + lenSafety
	alignedLens [alignedSyms]uint8
	pretreeLens [pretreeSyms]uint8

	main, length, aligned, pretree *huffDecoder
}

// NewDecoder returns a decoder for a folder compressed with a window of
// 2^windowBits bytes (MinWindowBits..MaxWindowBits).
func NewDecoder(windowBits int) (*Decoder, error) {
	if err := checkWindowBits(windowBits); err != nil {
		return nil, err
	}
	mainSyms := numChars + numPositionSlots(windowBits)*8
	d := &Decoder{
		windowBits: windowBits,
		window:     make([]byte, 1<<windowBits),
		mainSyms:   mainSyms,
		mainLens:   make([]uint8, mainSyms+lenSafety),
		lengthLens: make([]uint8, numSecondaryLens+lenSafety),
		main:       newHuffDecoder(mainSyms, mainTableBits),
		length:     newHuffDecoder(numSecondaryLens, lengthTableBits),
		aligned:    newHuffDecoder(alignedSyms, alignedTableBits),
		pretree:    newHuffDecoder(pretreeSyms, pretreeTableBits),
	}
	d.Reset()
	return d, nil
}

// Reset prepares the decoder for a new folder: an empty window, repeated
// offsets of 1, zero path lengths and a stream header still to read.
func (d *Decoder) Reset() {
	d.pos, d.total, d.frame = 0, 0, 0
	d.short, d.err = false, nil
	d.headerRead, d.e8Size = false, 0
	d.r0, d.r1, d.r2 = 1, 1, 1
	d.blockType, d.blockRemaining, d.blockLength = blockInvalid, 0, 0
	d.padPending = false
	clear(d.mainLens)
	clear(d.lengthLens)
	// The window need not be cleared: no match may reach before the start
	// of the folder's output.
}

// Decode decodes one CFDATA block of a cabinet folder: src is the block's
// compressed payload, len(dst) is its uncompressed size (at most FrameSize;
// only the last block of a folder may be shorter). State (window, R0..R2,
// the previous trees' path lengths, block remaining, E8 translation state,
// frame counter) carries over between calls within one folder. Errors wrap
// ErrCorrupt or ErrFrameSize; after one, Decode returns it again until
// Reset.
func (d *Decoder) Decode(dst, src []byte) error {
	if d.err != nil {
		return d.err
	}
	if len(dst) > FrameSize {
		d.err = fmt.Errorf("lzx: frame %d: %d bytes: %w", d.frame, len(dst), ErrFrameSize)
		return d.err
	}
	if d.short {
		d.err = fmt.Errorf("lzx: frame %d: follows a short frame: %w", d.frame, ErrFrameSize)
		return d.err
	}
	if len(dst) == 0 {
		d.short = true
		return nil
	}
	if err := d.decodeFrame(dst, src); err != nil {
		d.err = fmt.Errorf("lzx: frame %d: %w", d.frame, err)
		return d.err
	}
	return nil
}

// corrupt makes an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorrupt)...)
}

// bitReader reads 16-bit little-endian words, most significant bit first.
// Past the end of src it reads zeros; the caller checks overrun.
type bitReader struct {
	src []byte
	pos int    // next byte to load
	buf uint64 // next bits, left-aligned
	n   uint   // valid bits in buf
}

func (br *bitReader) refill() {
	for br.n <= 48 {
		var w uint64
		if br.pos+1 < len(br.src) {
			w = uint64(br.src[br.pos]) | uint64(br.src[br.pos+1])<<8
		} else if br.pos < len(br.src) {
			w = uint64(br.src[br.pos])
		}
		br.pos += 2
		br.buf |= w << (48 - br.n)
		br.n += 16
	}
}

// bits reads k <= 32 bits.
func (br *bitReader) bits(k uint) uint32 {
	if br.n < k {
		br.refill()
	}
	v := uint32(br.buf >> (64 - k))
	br.buf <<= k
	br.n -= k
	return v
}

// overrun reports whether more bits were consumed than src holds.
func (br *bitReader) overrun() bool {
	return br.pos*8-int(br.n) > len(br.src)*8
}

// sym decodes one symbol with h.
func (br *bitReader) sym(h *huffDecoder) (int, bool) {
	if h.empty {
		return 0, false
	}
	if br.n < maxCodeLen {
		br.refill()
	}
	e := h.table[br.buf>>(64-h.bits)]
	if e&entrySub != 0 {
		e = h.table[e>>8+uint32((br.buf<<h.bits)>>(64-(e&31)))]
	}
	l := uint(e & 31)
	br.buf <<= l
	br.n -= l
	return int(e >> 8), true
}

func (d *Decoder) decodeFrame(dst, src []byte) error {
	br := bitReader{src: src}
	if d.padPending {
		if len(src) < 1 {
			return corrupt("missing padding byte")
		}
		br.pos = 1
		d.padPending = false
	}
	if !d.headerRead {
		d.headerRead = true
		if br.bits(1) == 1 {
			hi := br.bits(16)
			lo := br.bits(16)
			d.e8Size = int32(hi<<16 | lo)
		}
	}
	start := d.pos
	d.frameStart = start
	end := start + len(dst)
	if end > len(d.window) {
		// Cannot happen with whole frames and a window that is a multiple
		// of FrameSize, but keep the window accesses provably in range.
		return corrupt("frame crosses window end")
	}
	inBytes := false // reading raw bytes of an uncompressed block at br.pos
	for d.pos < end {
		if d.blockRemaining == 0 {
			if inBytes {
				br.buf, br.n = 0, 0
				inBytes = false
			}
			if br.overrun() {
				return corrupt("input ends before block header")
			}
			if err := d.readBlockHeader(&br); err != nil {
				return err
			}
			inBytes = d.blockType == blockUncompressed
			continue
		}
		run := min(d.blockRemaining, end-d.pos)
		switch d.blockType {
		case blockVerbatim, blockAligned:
			if err := d.decodeSymbols(&br, d.pos+run); err != nil {
				return err
			}
		case blockUncompressed:
			if br.pos+run > len(src) {
				return corrupt("uncompressed block: input ends after %d of %d bytes",
					max(len(src)-br.pos, 0), run)
			}
			copy(d.window[d.pos:d.pos+run], src[br.pos:br.pos+run])
			br.pos += run
			d.pos += run
		}
		d.blockRemaining -= run
		if d.blockRemaining == 0 && d.blockType == blockUncompressed && d.blockLength&1 != 0 {
			if br.pos < len(src) {
				br.pos++
			} else {
				d.padPending = true
			}
		}
	}
	if inBytes {
		if br.pos > len(src) {
			return corrupt("input ends early")
		}
	} else if br.overrun() {
		return corrupt("input ends early")
	}

	copy(dst, d.window[start:end])
	if d.pos == len(d.window) {
		d.pos = 0
	}
	if d.e8Size != 0 && d.frame < e8MaxFrames {
		e8Decode(dst, d.total, d.e8Size)
	}
	d.total += int64(len(dst))
	d.frame++
	if len(dst) < FrameSize {
		d.short = true
	}
	return nil
}

func (d *Decoder) readBlockHeader(br *bitReader) error {
	typ := int(br.bits(3))
	size := int(br.bits(24))
	d.blockType = typ
	d.blockLength = size
	d.blockRemaining = size
	switch typ {
	case blockAligned:
		for i := range d.alignedLens {
			d.alignedLens[i] = uint8(br.bits(3))
		}
		if err := d.aligned.build(d.alignedLens[:]); err != nil {
			return corrupt("aligned tree: %v", err)
		}
		fallthrough
	case blockVerbatim:
		if err := d.readLengths(br, d.mainLens, 0, numChars); err != nil {
			return fmt.Errorf("main tree: %w", err)
		}
		if err := d.readLengths(br, d.mainLens, numChars, d.mainSyms); err != nil {
			return fmt.Errorf("main tree: %w", err)
		}
		if err := d.main.build(d.mainLens[:d.mainSyms]); err != nil {
			return corrupt("main tree: %v", err)
		}
		if d.main.empty {
			return corrupt("main tree: no path lengths")
		}
		if err := d.readLengths(br, d.lengthLens, 0, numSecondaryLens); err != nil {
			return fmt.Errorf("length tree: %w", err)
		}
		if err := d.length.build(d.lengthLens[:numSecondaryLens]); err != nil {
			return corrupt("length tree: %v", err)
		}
		if br.overrun() {
			return corrupt("input ends in block header")
		}
	case blockUncompressed:
		// Realign to 16 bits, consuming 1..16 bits.
		br.refill()
		k := br.n % 16
		if k == 0 {
			k = 16
		}
		br.buf <<= k
		br.n -= k
		p := br.pos - int(br.n/8)
		br.buf, br.n = 0, 0
		if p < 0 || p+12 > len(br.src) {
			return corrupt("uncompressed block header: input ends early")
		}
		d.r0 = binary.LittleEndian.Uint32(br.src[p:])
		d.r1 = binary.LittleEndian.Uint32(br.src[p+4:])
		d.r2 = binary.LittleEndian.Uint32(br.src[p+8:])
		br.pos = p + 12
	default:
		return corrupt("invalid block type %d", typ)
	}
	return nil
}

// readLengths reads the path lengths lens[first:last] as deltas against
// their previous values through a freshly sent pretree. Runs may spill
// past last into the following entries (and the safety slack), as
// libmspack allows.
func (d *Decoder) readLengths(br *bitReader, lens []uint8, first, last int) error {
	for i := range d.pretreeLens {
		d.pretreeLens[i] = uint8(br.bits(4))
	}
	if err := d.pretree.build(d.pretreeLens[:]); err != nil {
		return corrupt("pretree: %v", err)
	}
	for x := first; x < last; {
		z, ok := br.sym(d.pretree)
		if !ok {
			return corrupt("empty pretree")
		}
		switch {
		case z == 17:
			n := 4 + int(br.bits(4))
			for ; n > 0; n-- {
				lens[x] = 0
				x++
			}
		case z == 18:
			n := 20 + int(br.bits(5))
			for ; n > 0; n-- {
				lens[x] = 0
				x++
			}
		case z == 19:
			n := 4 + int(br.bits(1))
			z, ok = br.sym(d.pretree)
			if !ok || z > 16 {
				return corrupt("invalid pretree run")
			}
			v := (int(lens[x]) + 17 - z) % 17
			for ; n > 0; n-- {
				lens[x] = uint8(v)
				x++
			}
		default:
			lens[x] = uint8((int(lens[x]) + 17 - z) % 17)
			x++
		}
	}
	return nil
}

// decodeSymbols decodes a verbatim or aligned block's symbols until the
// window position reaches end. A match may not run past end.
func (d *Decoder) decodeSymbols(br *bitReader, end int) error {
	win := d.window
	ws := len(win)
	pos := d.pos
	// The folder's output before window position p is hist+p bytes.
	hist := d.total - int64(d.frameStart)
	buf, n, ip, src := br.buf, br.n, br.pos, br.src
	mainT := d.main.table
	lenT := d.length.table
	lenEmpty := d.length.empty
	aligned := d.blockType == blockAligned
	alT := d.aligned.table
	alEmpty := d.aligned.empty
	r0, r1, r2 := d.r0, d.r1, d.r2
	var err error

loop:
	for pos < end {
		if n < 32 {
			for n <= 48 {
				var w uint64
				if ip+1 < len(src) {
					w = uint64(src[ip]) | uint64(src[ip+1])<<8
				} else if ip < len(src) {
					w = uint64(src[ip])
				}
				ip += 2
				buf |= w << (48 - n)
				n += 16
			}
		}
		e := mainT[buf>>(64-mainTableBits)]
		if e&entrySub != 0 {
			e = mainT[e>>8+uint32((buf<<mainTableBits)>>(64-(e&31)))]
		}
		l := uint(e & 31)
		buf <<= l
		n -= l
		sym := int(e >> 8)
		if sym < numChars {
			win[pos] = byte(sym)
			pos++
			continue
		}
		sym -= numChars
		slot := sym >> 3
		length := sym & 7
		if length == numPrimaryLens {
			if lenEmpty {
				err = corrupt("match length with empty length tree")
				break loop
			}
			e := lenT[buf>>(64-lengthTableBits)]
			if e&entrySub != 0 {
				e = lenT[e>>8+uint32((buf<<lengthTableBits)>>(64-(e&31)))]
			}
			l := uint(e & 31)
			buf <<= l
			n -= l
			length += int(e >> 8)
		}
		length += minMatch
		var off uint32
		switch slot {
		case 0:
			off = r0
		case 1:
			off = r1
			r1 = r0
			r0 = off
		case 2:
			off = r2
			r2 = r0
			r0 = off
		default:
			if n < 32 {
				for n <= 48 {
					var w uint64
					if ip+1 < len(src) {
						w = uint64(src[ip]) | uint64(src[ip+1])<<8
					} else if ip < len(src) {
						w = uint64(src[ip])
					}
					ip += 2
					buf |= w << (48 - n)
					n += 16
				}
			}
			eb := uint(slots.extra[slot])
			off = slots.base[slot]
			if aligned && eb >= 3 {
				k := eb - 3
				off += uint32(buf>>(64-k)) << 3
				buf <<= k
				n -= k
				if alEmpty {
					err = corrupt("aligned offset with empty aligned tree")
					break loop
				}
				e := alT[buf>>(64-alignedTableBits)]
				l := uint(e & 31)
				buf <<= l
				n -= l
				off += e >> 8
			} else {
				off += uint32(buf >> (64 - eb))
				buf <<= eb
				n -= eb
			}
			off -= 2
			r2 = r1
			r1 = r0
			r0 = off
		}
		if length > end-pos {
			err = corrupt("match of %d bytes crosses a block or frame end", length)
			break loop
		}
		if off == 0 || int64(off) > hist+int64(pos) || int(off) > ws {
			err = corrupt("match offset %d outside the window", off)
			break loop
		}
		from := pos - int(off)
		if from < 0 {
			from += ws
			k := ws - from
			if k >= length {
				copy(win[pos:pos+length], win[from:from+length])
				pos += length
				continue
			}
			copy(win[pos:pos+k], win[from:ws])
			pos += k
			length -= k
			from = 0
		}
		if pos-from >= length {
			copy(win[pos:pos+length], win[from:from+length])
			pos += length
		} else {
			dstw := win[pos : pos+length]
			srcw := win[from : from+length]
			for i := range dstw {
				dstw[i] = srcw[i]
			}
			pos += length
		}
	}
	br.buf, br.n, br.pos = buf, n, ip
	d.r0, d.r1, d.r2 = r0, r1, r2
	d.pos = pos
	return err
}
