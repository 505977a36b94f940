package mszip

// bitWriter writes a deflate bit stream: values LSB first, Huffman codes
// MSB first (stored reversed).
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) reset() { w.out, w.acc, w.nacc = w.out[:0], 0, 0 }

// size is the number of bytes written so far, counting partial bytes.
func (w *bitWriter) size() int { return len(w.out) + int(w.nacc+7)/8 }

func (w *bitWriter) bits(v uint32, n uint) {
	w.acc |= uint64(v) << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
	}
	w.acc, w.nacc = 0, 0
}

func reverse(code uint32, n uint) uint32 {
	var r uint32
	for i := uint(0); i < n; i++ {
		r = r<<1 | code&1
		code >>= 1
	}
	return r
}

// fixedLit holds the reversed fixed Huffman codes of literal/length
// symbols 0..287 and their lengths (RFC 1951 3.2.6).
var fixedLit, fixedLitLen = func() ([288]uint32, [288]uint8) {
	var c [288]uint32
	var l [288]uint8
	for s := 0; s < 288; s++ {
		var code uint32
		var n uint
		switch {
		case s < 144:
			code, n = 0x30+uint32(s), 8
		case s < 256:
			code, n = 0x190+uint32(s-144), 9
		case s < 280:
			code, n = uint32(s-256), 7
		default:
			code, n = 0xC0+uint32(s-280), 8
		}
		c[s], l[s] = reverse(code, n), uint8(n)
	}
	return c, l
}()

var lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
var lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
var distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
var distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

// lengthCode maps a match length 3..258 to its code index 0..28.
var lengthCode = func() [259]uint8 {
	var t [259]uint8
	for c := 0; c < 29; c++ {
		hi := 259
		if c < 28 {
			hi = int(lengthBase[c+1])
		}
		for l := int(lengthBase[c]); l < hi && l <= 258; l++ {
			t[l] = uint8(c)
		}
	}
	t[258] = 28
	return t
}()

func (w *bitWriter) literal(sym int) {
	w.bits(fixedLit[sym], uint(fixedLitLen[sym]))
}

func (w *bitWriter) length(l int) {
	c := lengthCode[l]
	w.literal(257 + int(c))
	if e := lengthExtra[c]; e > 0 {
		w.bits(uint32(l-int(lengthBase[c])), uint(e))
	}
}

func (w *bitWriter) distance(d int) {
	c := 0
	for c < 29 && int(distBase[c+1]) <= d {
		c++
	}
	w.bits(reverse(uint32(c), 5), 5)
	if e := distExtra[c]; e > 0 {
		w.bits(uint32(d-int(distBase[c])), uint(e))
	}
}
