package lzx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"runtime"
)

// Encoder effort. Measured on cabtest.FirmwareLike data (BenchmarkEncode):
// a second parse per frame gains 1.5% of output size for 30% of speed;
// niceLen 16 rather than 20 costs 0.9% of size and gains 15-25% of speed,
// enough for 10 MB/s on one core; tree depth 8 rather than 12 costs
// another 1% for 5%.
const (
	hashBits    = 18 // the hash of the first hashLen bytes selects a binary tree
	hashLen     = 4
	treeDepth   = 12 // tree nodes visited per position
	niceLen     = 16 // a match this long is taken without parsing inside it
	parsePasses = 1  // parses per frame, each with costs from the one before
	maxTokens   = FrameSize
)

// token is one literal or match of the frame being encoded.
type token struct {
	extra  uint32 // extra offset bits (slot >= 3)
	main   uint16 // main tree symbol
	length uint8  // length tree symbol, when the main symbol's length header is 7
	slot   uint8
}

// Encoder compresses the frames of one cabinet folder with LZX. It is not
// safe for concurrent use.
//
// Each frame becomes one block: verbatim, aligned offset or uncompressed,
// whichever is smallest, with Huffman trees built from the frame's own
// symbol frequencies. Matches are found with binary trees over the whole
// window and chosen by a near-optimal parser (see the package
// documentation); the match finder runs on a goroutine of its own, ahead
// of the parser, when GOMAXPROCS allows. An encoder holds about 10 times
// its window in memory plus 6 MiB (28 MiB for a 2 MiB window).
type Encoder struct {
	windowBits int
	ws         int
	nslots     int
	mainSyms   int

	hist []byte  // the window: recent input after E8 translation
	head []int32 // hash -> latest hist index, -1 when none
	// son holds the binary trees: for hist index p in slot
	// s = (p+sonBase) mod window, son[2s] and son[2s+1] are the hist indexes
	// of p's smaller and larger children, -1 when none.
	son     []int32
	sonBase int
	// deferred is the first hist index whose insertion into the trees
	// waits for the next frame, -1 when none (see findAll).
	deferred int
	scratch8 []cand32 // candidates of deferred insertions, discarded

	total   int64
	frame   int
	short   bool
	started bool
	e8Size  int32

	r0, r1, r2 uint32

	prevMain []uint8
	prevLen  []uint8

	tokens  []token
	mainF   []uint32
	lenF    []uint32
	alF     [alignedSyms]uint32
	mainL   []uint8
	lenL    []uint8
	alL     [alignedSyms]uint8
	mainC   []uint16
	lenC    []uint16
	alC     [alignedSyms]uint16
	pre     [3]preTree
	scratch huffScratch

	// parser state
	costs     costModel
	haveCosts bool
	// cands has room for maxCands per position of a frame, so the match
	// finder appends to it (through its own slice header) without ever
	// moving it while the parser reads it; candIdx[i] is where position
	// i's candidates start.
	cands   []cand32
	candIdx []int32
	arr     []arrival
	cost    []uint32
	path    []int32

	// effort: tree nodes visited per position, the match length taken
	// greedily, parsing passes per frame
	depth, nice, passes int

	// counts of the block types emitted, for tests
	nVerbatim, nAligned, nUncompressed int
}

// preTree is the pretree encoding of one range of path lengths.
type preTree struct {
	syms  []preSym
	freq  [pretreeSyms]uint32
	lens  [pretreeSyms]uint8
	codes [pretreeSyms]uint16
}

type preSym struct {
	sym   uint8
	nbits uint8
	val   uint8
}

// NewEncoder returns an encoder with a window of 2^windowBits bytes
// (MinWindowBits..MaxWindowBits).
func NewEncoder(windowBits int) (*Encoder, error) {
	if err := checkWindowBits(windowBits); err != nil {
		return nil, err
	}
	ws := 1 << windowBits
	nslots := numPositionSlots(windowBits)
	mainSyms := numChars + nslots*8
	e := &Encoder{
		windowBits: windowBits,
		ws:         ws,
		nslots:     nslots,
		mainSyms:   mainSyms,
		hist:       make([]byte, 0, 2*ws),
		head:       make([]int32, 1<<hashBits),
		son:        make([]int32, 2*ws),
		prevMain:   make([]uint8, mainSyms),
		prevLen:    make([]uint8, numSecondaryLens),
		tokens:     make([]token, 0, maxTokens),
		cands:      make([]cand32, 0, maxCands*FrameSize),
		candIdx:    make([]int32, FrameSize+1),
		scratch8:   make([]cand32, 0, maxCands),
		mainF:      make([]uint32, mainSyms),
		lenF:       make([]uint32, numSecondaryLens),
		mainL:      make([]uint8, mainSyms),
		lenL:       make([]uint8, numSecondaryLens),
		mainC:      make([]uint16, mainSyms),
		lenC:       make([]uint16, numSecondaryLens),
	}
	e.depth, e.nice, e.passes = treeDepth, niceLen, parsePasses
	e.Reset()
	return e, nil
}

// Reset prepares the encoder for a new folder.
func (e *Encoder) Reset() {
	e.hist = e.hist[:0]
	e.sonBase = 0
	e.deferred = -1
	for i := range e.head {
		e.head[i] = -1
	}
	e.total, e.frame = 0, 0
	e.short, e.started = false, false
	e.e8Size = 0
	e.r0, e.r1, e.r2 = 1, 1, 1
	clear(e.prevMain)
	clear(e.prevLen)
	e.haveCosts = false
}

// Encode appends to dst the compressed payload of one CFDATA block for src
// (len(src) <= FrameSize; only the last block of a folder may be shorter)
// and returns the extended slice. The payload never exceeds
// MaxCompressedSize bytes. The encoder's window carries over between calls.
func (e *Encoder) Encode(dst, src []byte) ([]byte, error) {
	if len(src) > FrameSize {
		return dst, fmt.Errorf("lzx: frame %d: %d bytes: %w", e.frame, len(src), ErrFrameSize)
	}
	if e.short {
		return dst, fmt.Errorf("lzx: frame %d: follows a short frame: %w", e.frame, ErrFrameSize)
	}
	if len(src) == 0 {
		e.short = true
		return dst, nil
	}
	w := bitWriter{out: dst}
	if !e.started {
		e.started = true
		// E8 translation costs little where there is no x86 code and
		// gains much where there is, so it is always on.
		e.e8Size = e8FileSize
		w.write(1, 1)
		w.write(uint32(e.e8Size)>>16, 16)
		w.write(uint32(e.e8Size)&0xFFFF, 16)
	}

	// Append the frame to the window, E8-translated.
	if len(e.hist)+len(src) > cap(e.hist) {
		e.slide()
	}
	start := len(e.hist)
	e.hist = append(e.hist, src...)
	frame := e.hist[start:]
	if e.e8Size != 0 && e.frame < e8MaxFrames {
		e8Encode(frame, e.total, e.e8Size)
	}

	if incompressible(frame) {
		// Nothing to find; the frame also stays out of the match finder.
		e.writeUncompressed(&w, frame)
		e.deferred = -1
	} else {
		e.parse(start, len(src) < FrameSize)
		e.writeBlock(&w, frame)
		e.updateCosts()
	}
	w.align()

	e.total += int64(len(src))
	e.frame++
	if len(src) < FrameSize {
		e.short = true
	}
	return w.out, nil
}

// slide drops all but the last window's worth of history.
func (e *Encoder) slide() {
	keep := min(e.ws, len(e.hist))
	delta := len(e.hist) - keep
	copy(e.hist, e.hist[delta:])
	e.hist = e.hist[:keep]
	d32 := int32(delta)
	for i, v := range e.head {
		if v -= d32; v < 0 {
			v = -1
		}
		e.head[i] = v
	}
	e.sonBase = (e.sonBase + delta) & (e.ws - 1)
	if e.deferred >= 0 {
		e.deferred = max(e.deferred-delta, 0)
	}
	for i, v := range e.son {
		if v -= d32; v < 0 {
			v = -1
		}
		e.son[i] = v
	}
}

// hashAt hashes the first hashLen bytes of b.
func hashAt(b []byte) uint32 {
	v := uint64(binary.LittleEndian.Uint32(b))
	if hashLen > 4 {
		v |= uint64(b[4]) << 32
	}
	return uint32((v * 0x9E3779B97F4A7C15) >> (64 - hashBits))
}

// matchLen returns how many bytes at a and b agree, up to limit.
func matchLen(h []byte, a, b, limit int) int {
	n := 0
	for n+8 <= limit {
		x := binary.LittleEndian.Uint64(h[a+n:]) ^ binary.LittleEndian.Uint64(h[b+n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)/8
		}
		n += 8
	}
	for n < limit && h[a+n] == h[b+n] {
		n++
	}
	return n
}

// slotOf returns the position slot of a formatted offset (offset + 2).
func slotOf(f uint32) int {
	if f < 4 {
		return int(f)
	}
	if f >= 1<<18 {
		return 36 + int((f-1<<18)>>17)
	}
	hb := bits.Len32(f) - 1
	return 2*hb + int(f>>(hb-1)&1)
}

// parse turns the frame at hist[start:] into tokens and counts symbol
// frequencies. Without a cost model from a previous frame it parses twice,
// the second time with costs from the first.
func (e *Encoder) parse(start int, final bool) {
	first := !e.haveCosts
	if first {
		e.setCosts(nil, nil)
	}
	n := len(e.hist) - start
	var ready chan int
	avail := n
	if n >= pipelineMin && runtime.GOMAXPROCS(0) > 1 {
		ready = make(chan int, n/pipelineChunk+2)
		avail = 0
		go e.findAll(start, final, ready)
	} else {
		e.findAll(start, final, nil)
	}
	passes := e.passes
	if first {
		passes = max(passes, 2)
	}
	r0, r1, r2 := e.r0, e.r1, e.r2
	for pass := range passes {
		if pass > 0 {
			buildLengths(e.mainF, maxCodeLen, e.mainL, true, &e.scratch)
			buildLengths(e.lenF, maxCodeLen, e.lenL, false, &e.scratch)
			e.setCosts(e.mainL, e.lenL)
			e.r0, e.r1, e.r2 = r0, r1, r2
		}
		e.tokens = e.tokens[:0]
		clear(e.mainF)
		clear(e.lenF)
		e.alF = [alignedSyms]uint32{}
		lens := allLens
		if pass < passes-1 {
			lens = allLensFirst
		}
		e.optimalParse(start, lens, avail, ready)
		if ready != nil {
			// The finder is done with the trees when it closes the
			// channel.
			for range ready {
			}
			ready, avail = nil, n
		}
	}
}

func (e *Encoder) literal(b byte) {
	e.tokens = append(e.tokens, token{main: uint16(b)})
	e.mainF[b]++
}

func (e *Encoder) emitMatch(length, off int) {
	var t token
	o := uint32(off)
	switch o {
	case e.r0:
		t.slot = 0
	case e.r1:
		t.slot = 1
		e.r1 = e.r0
		e.r0 = o
	case e.r2:
		t.slot = 2
		e.r2 = e.r0
		e.r0 = o
	default:
		f := o + 2
		s := slotOf(f)
		t.slot = uint8(s)
		t.extra = f - slots.base[s]
		if slots.extra[s] >= 3 {
			e.alF[t.extra&7]++
		}
		e.r2 = e.r1
		e.r1 = e.r0
		e.r0 = o
	}
	lh := length - minMatch
	if lh >= numPrimaryLens {
		t.length = uint8(lh - numPrimaryLens)
		e.lenF[t.length]++
		lh = numPrimaryLens
	}
	t.main = uint16(numChars + int(t.slot)*8 + lh)
	e.mainF[t.main]++
	e.tokens = append(e.tokens, t)
}

// writeBlock writes the frame as one block of the cheapest type.
func (e *Encoder) writeBlock(w *bitWriter, frame []byte) {
	buildLengths(e.mainF, maxCodeLen, e.mainL, true, &e.scratch)
	buildLengths(e.lenF, maxCodeLen, e.lenL, false, &e.scratch)
	if n := countNonZero(e.lenL); n == 1 {
		buildLengths(e.lenF, maxCodeLen, e.lenL, true, &e.scratch)
	}
	e.pre[0].encode(e.mainL[:numChars], e.prevMain[:numChars], &e.scratch)
	e.pre[1].encode(e.mainL[numChars:], e.prevMain[numChars:], &e.scratch)
	e.pre[2].encode(e.lenL, e.prevLen, &e.scratch)

	cost := 3 + 24
	for i := range e.pre {
		cost += e.pre[i].cost()
	}
	for s, f := range e.mainF {
		cost += int(f) * int(e.mainL[s])
	}
	for s, f := range e.lenF {
		cost += int(f) * int(e.lenL[s])
	}
	verbatimExtra, alignedExtra := 0, 0
	nAl := 0
	for _, t := range e.tokens {
		if t.main >= numChars && t.slot >= 3 {
			eb := int(slots.extra[t.slot])
			verbatimExtra += eb
			if eb >= 3 {
				alignedExtra += eb - 3
				nAl++
			} else {
				alignedExtra += eb
			}
		}
	}
	aligned := false
	if nAl > 0 {
		buildLengths(e.alF[:], 7, e.alL[:], true, &e.scratch)
		alCost := 3 * alignedSyms
		for s, f := range e.alF {
			alCost += int(f) * int(e.alL[s])
		}
		if alignedExtra+alCost < verbatimExtra {
			aligned = true
			cost += alignedExtra + alCost
		}
	}
	if !aligned {
		cost += verbatimExtra
	}
	rawCost := 3 + 24 + 16 + 96 + 8*len(frame) + 8*(len(frame)&1)
	if rawCost <= cost {
		e.writeUncompressed(w, frame)
		return
	}

	typ := uint32(blockVerbatim)
	if aligned {
		typ = blockAligned
		e.nAligned++
	} else {
		e.nVerbatim++
	}
	w.write(typ, 3)
	w.write(uint32(len(frame)), 24)
	if aligned {
		for _, l := range e.alL {
			w.write(uint32(l), 3)
		}
		canonicalCodes(e.alL[:], e.alC[:])
	}
	for i := range e.pre {
		e.pre[i].write(w)
	}
	canonicalCodes(e.mainL, e.mainC)
	canonicalCodes(e.lenL, e.lenC)
	for _, t := range e.tokens {
		w.write(uint32(e.mainC[t.main]), uint(e.mainL[t.main]))
		if t.main < numChars {
			continue
		}
		if (t.main-numChars)&7 == numPrimaryLens {
			w.write(uint32(e.lenC[t.length]), uint(e.lenL[t.length]))
		}
		if t.slot < 3 {
			continue
		}
		eb := uint(slots.extra[t.slot])
		if aligned && eb >= 3 {
			w.write(t.extra>>3, eb-3)
			a := t.extra & 7
			w.write(uint32(e.alC[a]), uint(e.alL[a]))
		} else {
			w.write(t.extra, eb)
		}
	}
	copy(e.prevMain, e.mainL)
	copy(e.prevLen, e.lenL)
}

// updateCosts sets the cost model for the next frame from this frame's
// path lengths.
func (e *Encoder) updateCosts() {
	e.setCosts(e.mainL, e.lenL)
	e.haveCosts = true
}

// writeUncompressed writes the frame as an uncompressed block.
func (e *Encoder) writeUncompressed(w *bitWriter, frame []byte) {
	e.nUncompressed++
	w.write(blockUncompressed, 3)
	w.write(uint32(len(frame)), 24)
	// Realign with 1..16 bits, as decoders expect.
	w.write(0, 16-w.n)
	var r [12]byte
	binary.LittleEndian.PutUint32(r[0:], e.r0)
	binary.LittleEndian.PutUint32(r[4:], e.r1)
	binary.LittleEndian.PutUint32(r[8:], e.r2)
	w.out = append(w.out, r[:]...)
	w.out = append(w.out, frame...)
	if len(frame)&1 != 0 {
		w.out = append(w.out, 0)
	}
}

// incompressible reports whether b looks like random bytes: whole frames
// of compressed or encrypted data, whose byte histogram is nearly flat.
func incompressible(b []byte) bool {
	if len(b) < 4096 {
		return false
	}
	var hist [256]int
	for _, c := range b {
		hist[c]++
	}
	// Entropy in bits per byte, against a threshold just below what
	// random data of this size shows.
	n := float64(len(b))
	h := 0.0
	for _, k := range hist {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	if h <= 7.99 {
		return false
	}
	// A flat histogram may still repeat (a counter, a byte ramp): count
	// 4-byte strings seen before, through a small direct-mapped table.
	var seen [4096]uint32
	repeats := 0
	for i := 0; i+4 <= len(b); i++ {
		v := binary.LittleEndian.Uint32(b[i:])
		k := (v * 2654435761) >> 20
		if seen[k] == v {
			repeats++
		}
		seen[k] = v
	}
	return repeats < len(b)/1024
}

func countNonZero(l []uint8) int {
	n := 0
	for _, v := range l {
		if v != 0 {
			n++
		}
	}
	return n
}

// encode prepares the pretree encoding of lens against prev.
func (pt *preTree) encode(lens, prev []uint8, sc *huffScratch) {
	pt.syms = pt.syms[:0]
	pt.freq = [pretreeSyms]uint32{}
	add := func(sym, nbits, val uint8) {
		pt.syms = append(pt.syms, preSym{sym: sym, nbits: nbits, val: val})
		pt.freq[sym]++
	}
	delta := func(i int, v uint8) uint8 {
		return uint8((int(prev[i]) + 17 - int(v)) % 17)
	}
	for i := 0; i < len(lens); {
		v := lens[i]
		j := i + 1
		for j < len(lens) && lens[j] == v {
			j++
		}
		run := j - i
		if v == 0 && run >= 4 {
			for run >= 20 {
				r := min(run, 51)
				add(18, 5, uint8(r-20))
				i += r
				run -= r
			}
			if run >= 4 {
				add(17, 4, uint8(run-4))
				i += run
				run = 0
			}
		} else if run >= 4 {
			same := true
			for k := i; k < j; k++ {
				same = same && prev[k] == v
			}
			if !same {
				for run >= 4 {
					r := min(run, 5)
					add(19, 1, uint8(r-4))
					add(delta(i, v), 0, 0)
					i += r
					run -= r
				}
			}
		}
		for ; run > 0; run-- {
			add(delta(i, v), 0, 0)
			i++
		}
	}
	buildLengths(pt.freq[:], 15, pt.lens[:], true, sc)
	canonicalCodes(pt.lens[:], pt.codes[:])
}

func (pt *preTree) cost() int {
	c := 4 * pretreeSyms
	for _, s := range pt.syms {
		c += int(pt.lens[s.sym]) + int(s.nbits)
	}
	return c
}

func (pt *preTree) write(w *bitWriter) {
	for _, l := range pt.lens {
		w.write(uint32(l), 4)
	}
	for _, s := range pt.syms {
		w.write(uint32(pt.codes[s.sym]), uint(pt.lens[s.sym]))
		if s.nbits > 0 {
			w.write(uint32(s.val), uint(s.nbits))
		}
	}
}

// bitWriter writes 16-bit little-endian words, most significant bit first.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint // pending bits in acc, < 16 between calls
}

// write writes the low k <= 32 bits of v.
func (w *bitWriter) write(v uint32, k uint) {
	w.acc = w.acc<<k | uint64(v)&(1<<k-1)
	w.n += k
	for w.n >= 16 {
		w.n -= 16
		x := uint16(w.acc >> w.n)
		w.out = append(w.out, byte(x), byte(x>>8))
	}
}

// align pads with zero bits to a 16-bit boundary.
func (w *bitWriter) align() {
	if w.n > 0 {
		w.write(0, 16-w.n)
	}
}
