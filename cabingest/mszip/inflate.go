package mszip

import (
	"encoding/binary"
	"errors"
)

// This file is a deflate (RFC 1951) decoder specialised for MSZIP: input
// and output are whole slices, so the bit reader refills from memory
// without interface calls, and matches copy within one window buffer
// holding the history followed by the block being decoded.

var (
	errCorrupt   = errors.New("corrupt deflate data")
	errTooLong   = errors.New("block decodes to more bytes than declared")
	errTruncated = errors.New("deflate data ends early")
)

const (
	litTableBits  = 10
	distTableBits = 10
	maxCodeBits   = 15
)

// huffman decodes one canonical Huffman code: a direct table for codes of
// up to tableBits bits, and the canonical counts for longer ones.
type huffman struct {
	tableBits uint
	table     []uint32 // entry: symbol<<4 | length; 0 = invalid
	count     [maxCodeBits + 1]uint16
	symbols   []uint16 // symbols ordered by code
}

// init builds the decoder for code lengths; it fails on an
// over-subscribed code. Incomplete codes are accepted (unused codes are
// errors when met), as zlib and compress/flate accept some.
func (h *huffman) init(lengths []uint8, tableBits uint) error {
	h.tableBits = tableBits
	if cap(h.table) < 1<<tableBits {
		h.table = make([]uint32, 1<<tableBits)
	}
	h.table = h.table[:1<<tableBits]
	clear(h.table)
	h.count = [maxCodeBits + 1]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= maxCodeBits; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return errCorrupt
		}
	}
	var offs [maxCodeBits + 2]uint16
	for l := 1; l <= maxCodeBits; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	if cap(h.symbols) < len(lengths) {
		h.symbols = make([]uint16, len(lengths))
	}
	h.symbols = h.symbols[:len(lengths)]
	for s, l := range lengths {
		if l != 0 {
			h.symbols[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// Fill the direct table: walk codes in canonical order.
	code := 0
	idx := 0
	for l := 1; l <= int(tableBits); l++ {
		for i := 0; i < int(h.count[l]); i++ {
			sym := h.symbols[idx]
			idx++
			// The code is stored MSB first; the table is indexed by the
			// next bits LSB first, so reverse it.
			rev := 0
			for b := 0; b < l; b++ {
				rev |= (code >> b & 1) << (l - 1 - b)
			}
			for j := rev; j < 1<<tableBits; j += 1 << l {
				h.table[j] = uint32(sym)<<4 | uint32(l)
			}
			code++
		}
		code <<= 1
	}
	return nil
}

// inflater holds the state of decoding one block.
type inflater struct {
	in    []byte
	pos   int
	bits  uint64
	nbits uint
	over  int // zero bytes supplied past the end of in

	lit, dist, clen huffman
	lens            [320]uint8
}

func (f *inflater) refill() {
	for f.nbits <= 56 {
		if f.pos+8 <= len(f.in) {
			v := binary.LittleEndian.Uint64(f.in[f.pos:])
			f.bits |= v << f.nbits
			n := (63 - f.nbits) / 8
			f.pos += int(n)
			f.nbits += n * 8
			return
		}
		if f.pos < len(f.in) {
			f.bits |= uint64(f.in[f.pos]) << f.nbits
			f.pos++
		} else {
			f.over++
		}
		f.nbits += 8
	}
}

func (f *inflater) need(n uint) {
	if f.nbits < n {
		f.refill()
	}
}

func (f *inflater) take(n uint) uint32 {
	f.need(n)
	v := uint32(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nbits -= n
	return v
}

// sym decodes one symbol with h.
func (f *inflater) sym(h *huffman) (int, error) {
	f.need(maxCodeBits)
	e := h.table[f.bits&(1<<h.tableBits-1)]
	if e != 0 {
		l := uint(e & 15)
		f.bits >>= l
		f.nbits -= l
		return int(e >> 4), nil
	}
	// Long code: decode canonically, one bit at a time.
	code, first, index := 0, 0, 0
	for l := 1; l <= maxCodeBits; l++ {
		code |= int(f.bits>>(l-1)) & 1
		n := int(h.count[l])
		if code-first < n {
			f.bits >>= uint(l)
			f.nbits -= uint(l)
			return int(h.symbols[index+code-first]), nil
		}
		index += n
		first = (first + n) << 1
		code <<= 1
	}
	return 0, errCorrupt
}

var fixedLitLengths, fixedDistLengths = func() ([288]uint8, [30]uint8) {
	var l [288]uint8
	var d [30]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	for i := range d {
		d[i] = 5
	}
	return l, d
}()

var clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// inflate decodes the deflate stream src into win[start:end], where
// win[:start] is the history matches may reach into. It returns an error
// unless exactly end-start bytes are produced; a stream whose last block
// is not marked final is accepted once the output is complete.
func (f *inflater) inflate(win []byte, start, end int, src []byte) error {
	f.in, f.pos, f.bits, f.nbits, f.over = src, 0, 0, 0, 0
	out := start
	for {
		if f.over > 8 {
			return errTruncated
		}
		if out == end && f.pos >= len(f.in) && f.nbits < 8+8*uint(f.over) {
			return nil // complete, without a final block
		}
		final := f.take(1)
		switch f.take(2) {
		case 0:
			// Stored: skip to a byte boundary, LEN, NLEN, data.
			drop := f.nbits % 8
			f.bits >>= drop
			f.nbits -= drop
			n := int(f.take(16))
			if nn := int(f.take(16)); n != ^nn&0xFFFF {
				return errCorrupt
			}
			if out+n > end {
				return errTooLong
			}
			// Drain whole bytes still in the bit buffer, then copy.
			for n > 0 && f.nbits >= 8 {
				win[out] = byte(f.bits)
				f.bits >>= 8
				f.nbits -= 8
				out++
				n--
			}
			if f.nbits == 0 && f.over == 0 {
				// The buffer may hold bits of bytes past pos (refill loads
				// ahead); they are stale once pos moves.
				f.bits = 0
				if f.pos+n > len(f.in) {
					return errTruncated
				}
				out += copy(win[out:out+n], f.in[f.pos:f.pos+n])
				f.pos += n
			} else if n > 0 {
				return errTruncated
			}
		case 1:
			if err := f.lit.init(fixedLitLengths[:], litTableBits); err != nil {
				return err
			}
			if err := f.dist.init(fixedDistLengths[:], distTableBits); err != nil {
				return err
			}
			var err error
			if out, err = f.codes(win, out, end); err != nil {
				return err
			}
		case 2:
			if err := f.dynamic(); err != nil {
				return err
			}
			var err error
			if out, err = f.codes(win, out, end); err != nil {
				return err
			}
		default:
			return errCorrupt
		}
		if f.over > 8 || (f.over > 0 && 8*uint(f.over) > f.nbits) {
			return errTruncated
		}
		if final == 1 {
			if out != end {
				return errTruncated
			}
			return nil
		}
	}
}

// dynamic reads the code lengths of a dynamic block and builds its
// decoders.
func (f *inflater) dynamic() error {
	nlit := int(f.take(5)) + 257
	ndist := int(f.take(5)) + 1
	nclen := int(f.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return errCorrupt
	}
	var cl [19]uint8
	for i := 0; i < nclen; i++ {
		cl[clenOrder[i]] = uint8(f.take(3))
	}
	if err := f.clen.init(cl[:], 7); err != nil {
		return err
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if f.over > 8 {
			return errTruncated
		}
		s, err := f.sym(&f.clen)
		if err != nil {
			return err
		}
		var v uint8
		var rep int
		switch {
		case s < 16:
			lens[i] = uint8(s)
			i++
			continue
		case s == 16:
			if i == 0 {
				return errCorrupt
			}
			v, rep = lens[i-1], 3+int(f.take(2))
		case s == 17:
			rep = 3 + int(f.take(3))
		default:
			rep = 11 + int(f.take(7))
		}
		if i+rep > len(lens) {
			return errCorrupt
		}
		for ; rep > 0; rep-- {
			lens[i] = v
			i++
		}
	}
	if lens[256] == 0 {
		return errCorrupt
	}
	if err := f.lit.init(lens[:nlit], litTableBits); err != nil {
		return err
	}
	return f.dist.init(lens[nlit:], distTableBits)
}

var lengthBaseDec = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}

// codes decodes literal/length and distance codes until end of block. The
// bit buffer lives in local variables; with at least 48 bits buffered at
// the top of the loop, one literal or match (at most 15+5+15+13 bits)
// needs no further refill.
func (f *inflater) codes(win []byte, out, end int) (int, error) {
	bits, nbits := f.bits, f.nbits
	in, pos := f.in, f.pos
	lt, lmask := f.lit.table, uint64(len(f.lit.table)-1)
	dt, dmask := f.dist.table, uint64(len(f.dist.table)-1)
	for {
		if nbits < 48 {
			if pos+8 <= len(in) {
				bits |= binary.LittleEndian.Uint64(in[pos:]) << nbits
				n := (63 - nbits) >> 3
				pos += int(n)
				nbits += n << 3
			} else {
				f.bits, f.nbits, f.pos = bits, nbits, pos
				f.refill()
				bits, nbits, pos = f.bits, f.nbits, f.pos
				if f.over > 8 {
					return out, errTruncated
				}
			}
		}
		var s int
		if e := lt[bits&lmask]; e != 0 {
			l := uint(e & 15)
			bits >>= l
			nbits -= l
			s = int(e >> 4)
		} else {
			f.bits, f.nbits, f.pos = bits, nbits, pos
			var err error
			if s, err = f.sym(&f.lit); err != nil {
				return out, err
			}
			bits, nbits, pos = f.bits, f.nbits, f.pos
		}
		if s < 256 {
			if out >= end {
				return out, errTooLong
			}
			win[out] = byte(s)
			out++
			continue
		}
		if s == 256 {
			f.bits, f.nbits, f.pos = bits, nbits, pos
			return out, nil
		}
		s -= 257
		if s >= 29 {
			return out, errCorrupt
		}
		length := int(lengthBaseDec[s])
		if e := uint(lengthExtra[s]); e > 0 {
			length += int(bits & (1<<e - 1))
			bits >>= e
			nbits -= e
		}
		var ds int
		if e := dt[bits&dmask]; e != 0 {
			l := uint(e & 15)
			bits >>= l
			nbits -= l
			ds = int(e >> 4)
		} else {
			f.bits, f.nbits, f.pos = bits, nbits, pos
			var err error
			if ds, err = f.sym(&f.dist); err != nil {
				return out, err
			}
			bits, nbits, pos = f.bits, f.nbits, f.pos
		}
		if ds >= 30 {
			return out, errCorrupt
		}
		dist := int(distBase[ds])
		if e := uint(distExtra[ds]); e > 0 {
			dist += int(bits & (1<<e - 1))
			bits >>= e
			nbits -= e
		}
		if dist > out {
			return out, errCorrupt
		}
		if out+length > end {
			return out, errTooLong
		}
		// An overlapping copy repeats the last dist bytes; copying
		// win[from:out] again and again doubles the run each time.
		from := out - dist
		for stop := out + length; out < stop; {
			out += copy(win[out:stop], win[from:out])
		}
	}
}
