package quantum

// A Quantum encoder for the tests: there is no Quantum compressor on
// Linux, so the tests make their own streams, have cabextract check them,
// and then hold the decoder to the original bytes. It is written for
// clarity, not speed: greedy LZ77 with hash chains, the adaptive models of
// model.go, and the textbook 16-bit arithmetic encoder whose decoder is
// Decoder.symbol.

// encoderConfig tunes the test encoder. The zero value finds matches.
type encoderConfig struct {
	literalsOnly bool // never emit a match
	chainDepth   int  // candidates tried per position; 0 means 32
}

type rawBits struct {
	at    int // coder bit position before which they are read
	value uint32
	n     uint
}

// frameWriter collects one frame's output: the arithmetic coder's bits and
// the raw extra bits, which the decoder reads from the same stream 16 bits
// ahead of the coder (its C register holds 16 bits of look-ahead).
type frameWriter struct {
	h, l    uint32
	pending int // opposite bits owed after the next decided bit
	bits    []byte
	raw     []rawBits
}

func (w *frameWriter) start() {
	w.h, w.l, w.pending = 0xFFFF, 0, 0
	w.bits = w.bits[:0]
	w.raw = w.raw[:0]
}

func (w *frameWriter) emit(bit byte) {
	w.bits = append(w.bits, bit)
	for ; w.pending > 0; w.pending-- {
		w.bits = append(w.bits, 1-bit)
	}
}

// shifts is how many coder bits the decoder has shifted into C so far,
// beyond its first 16.
func (w *frameWriter) shifts() int { return len(w.bits) + w.pending }

func (w *frameWriter) symbol(m *model, sym int) {
	r := 0
	for r < m.n && int(m.sym[r]) != sym {
		r++
	}
	if r == m.n {
		panic("symbol not in model")
	}
	total := uint32(m.cum[0])
	rng := w.h - w.l + 1
	w.h = w.l + uint32(m.cum[r])*rng/total - 1
	w.l = w.l + uint32(m.cum[r+1])*rng/total
	m.bump(r)
	for {
		switch {
		case w.l&0x8000 == w.h&0x8000:
			w.emit(byte(w.h >> 15))
		case w.l&0x4000 != 0 && w.h&0x4000 == 0:
			w.pending++
			w.l &= 0x3FFF
			w.h |= 0x4000
		default:
			return
		}
		w.l = (w.l << 1) & 0xFFFF
		w.h = (w.h<<1 | 1) & 0xFFFF
	}
}

func (w *frameWriter) extra(value uint32, n uint) {
	if n > 0 {
		w.raw = append(w.raw, rawBits{at: w.shifts() + 16, value: value, n: n})
	}
}

// finish flushes the coder and returns the frame's bytes: coder bits with
// the raw bits merged in at their places, zero-padded so that the
// decoder's look-ahead stays inside the frame, then to a byte.
func (w *frameWriter) finish() []byte {
	consumed := w.shifts() + 16
	w.pending++
	if w.l < 0x4000 {
		w.emit(0)
	} else {
		w.emit(1)
	}
	for len(w.bits) < consumed {
		w.bits = append(w.bits, 0)
	}
	var out []byte
	var acc byte
	nacc := 0
	put := func(bit byte) {
		acc = acc<<1 | bit
		nacc++
		if nacc == 8 {
			out = append(out, acc)
			acc, nacc = 0, 0
		}
	}
	ri := 0
	for i := 0; i <= len(w.bits); i++ {
		for ; ri < len(w.raw) && w.raw[ri].at == i; ri++ {
			for k := int(w.raw[ri].n) - 1; k >= 0; k-- {
				put(byte(w.raw[ri].value>>k) & 1)
			}
		}
		if i < len(w.bits) {
			put(w.bits[i])
		}
	}
	if ri != len(w.raw) {
		panic("raw bits beyond the frame")
	}
	for nacc != 0 {
		put(0)
	}
	return out
}

// testEncoder holds the models, which carry over between frames.
type testEncoder struct {
	windowBits int
	cfg        encoderConfig
	selector   model
	literal    [4]model
	pos3       model
	pos4       model
	posVar     model
	length     model
}

func newTestEncoder(windowBits int, cfg encoderConfig) *testEncoder {
	e := &testEncoder{windowBits: windowBits, cfg: cfg}
	slots := 2 * windowBits
	e.selector.init(0, 7)
	for i := range e.literal {
		e.literal[i].init(64*i, 64)
	}
	e.pos3.init(0, min(24, slots))
	e.pos4.init(0, min(36, slots))
	e.posVar.init(0, slots)
	e.length.init(0, len(lengthBase))
	return e
}

// maxOffset is the largest offset the position model m can express.
func maxOffset(m *model) int {
	s := m.n - 1
	return int(positionBase[s]) + 1<<positionExtra[s]
}

func positionSlot(offset int) (slot int, extra uint32) {
	v := uint32(offset - 1)
	for s := len(positionBase) - 1; s >= 0; s-- {
		if positionBase[s] <= v {
			return s, v - positionBase[s]
		}
	}
	panic("bad offset")
}

func lengthSlot(length int) (slot int, extra uint32) {
	v := uint16(length - minVarLength)
	for s := len(lengthBase) - 1; s >= 0; s-- {
		if lengthBase[s] <= v {
			return s, uint32(v - lengthBase[s])
		}
	}
	panic("bad length")
}

// encodeQuantum compresses data as one folder and returns its blocks, one
// per frame.
func encodeQuantum(data []byte, windowBits int, cfg encoderConfig) []testBlock {
	e := newTestEncoder(windowBits, cfg)
	window := 1 << windowBits
	depth := cfg.chainDepth
	if depth == 0 {
		depth = 32
	}
	const hashBits = 15
	head := make([]int, 1<<hashBits)
	for i := range head {
		head[i] = -1
	}
	prev := make([]int, len(data))
	hash := func(p int) int {
		return int((uint32(data[p])<<16|uint32(data[p+1])<<8|uint32(data[p+2]))*2654435761) >> (32 - hashBits) & (1<<hashBits - 1)
	}
	insert := func(p int) {
		if p+3 <= len(data) {
			h := hash(p)
			prev[p] = head[h]
			head[h] = p
		}
	}

	var blocks []testBlock
	var w frameWriter
	for frame := 0; frame < len(data); frame += FrameSize {
		end := min(frame+FrameSize, len(data))
		w.start()
		p := frame
		for p < end {
			bestLen, bestOff := 0, 0
			limit := min(259, end-p)
			if !cfg.literalsOnly && limit >= 3 && p+3 <= len(data) {
				tries := depth
				for q := head[hash(p)]; q >= 0 && tries > 0; q = prev[q] {
					tries--
					off := p - q
					if off > window {
						break
					}
					n := 0
					for n < limit && data[q+n] == data[p+n] {
						n++
					}
					if n <= bestLen || n < 3 {
						continue
					}
					if (n == 3 && off > maxOffset(&e.pos3)) || (n == 4 && off > maxOffset(&e.pos4)) {
						continue
					}
					bestLen, bestOff = n, off
					if n == limit {
						break
					}
				}
			}
			switch {
			case bestLen == 0:
				b := int(data[p])
				w.symbol(&e.selector, b/64)
				w.symbol(&e.literal[b/64], b)
				insert(p)
				p++
				continue
			case bestLen == 3:
				w.symbol(&e.selector, selMatch3)
				s, x := positionSlot(bestOff)
				w.symbol(&e.pos3, s)
				w.extra(x, uint(positionExtra[s]))
			case bestLen == 4:
				w.symbol(&e.selector, selMatch4)
				s, x := positionSlot(bestOff)
				w.symbol(&e.pos4, s)
				w.extra(x, uint(positionExtra[s]))
			default:
				w.symbol(&e.selector, selMatchVar)
				ls, lx := lengthSlot(bestLen)
				w.symbol(&e.length, ls)
				w.extra(lx, uint(lengthExtra[ls]))
				s, x := positionSlot(bestOff)
				w.symbol(&e.posVar, s)
				w.extra(x, uint(positionExtra[s]))
			}
			for i := 0; i < bestLen; i++ {
				insert(p + i)
			}
			p += bestLen
		}
		blocks = append(blocks, testBlock{payload: w.finish(), size: end - frame})
	}
	return blocks
}
