package lzx

import (
	"cmp"
	"errors"
	"slices"
)

// Decoding tables.
//
// A table has a primary part of 2^bits entries indexed by the next bits of
// input, followed by secondary tables for codes longer than bits. An entry
// is sym<<8 | length for a symbol (length = the whole code length), or
// start<<8 | entrySub | subBits for a pointer to a secondary table of
// 2^subBits entries indexed by the input bits after the first bits.
const entrySub = 1 << 5

var (
	errOversubscribed = errors.New("over-subscribed huffman tree")
	errIncomplete     = errors.New("incomplete huffman tree")
)

type huffDecoder struct {
	table []uint32
	bits  uint
	empty bool // all path lengths zero: no symbol may be decoded

	// scratch for build
	codes   []uint16
	subMax  []uint8
	subBase []int32
}

func newHuffDecoder(nsyms int, bits uint) *huffDecoder {
	size := 1<<bits + nsyms<<(maxCodeLen-bits)
	return &huffDecoder{
		table:   make([]uint32, 1<<bits, size),
		bits:    bits,
		empty:   true,
		codes:   make([]uint16, nsyms),
		subMax:  make([]uint8, 1<<bits),
		subBase: make([]int32, 1<<bits),
	}
}

// build makes the table for canonical Huffman path lengths lens (each at
// most maxCodeLen). An all-zero set builds an empty table; any other set
// must form a complete prefix code.
func (h *huffDecoder) build(lens []uint8) error {
	var count [maxCodeLen + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	total := 0
	for l := 1; l <= maxCodeLen; l++ {
		left <<= 1
		left -= count[l]
		total += count[l]
		if left < 0 {
			return errOversubscribed
		}
	}
	h.table = h.table[:1<<h.bits]
	if total == 0 {
		h.empty = true
		return nil
	}
	if left != 0 {
		return errIncomplete
	}
	h.empty = false
	var next [maxCodeLen + 2]int
	code := 0
	for l := 1; l <= maxCodeLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	P := h.bits
	// First pass: codes, and the longest code below each long prefix.
	for s, l := range lens {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		h.codes[s] = uint16(c)
		if uint(l) > P {
			p := c >> (uint(l) - P)
			h.subMax[p] = 0
			h.subBase[p] = -1
		}
	}
	for s, l := range lens {
		if uint(l) > P {
			p := int(h.codes[s]) >> (uint(l) - P)
			if d := l - uint8(P); d > h.subMax[p] {
				h.subMax[p] = d
			}
		}
	}
	for s, l := range lens {
		if l == 0 {
			continue
		}
		c := int(h.codes[s])
		if uint(l) <= P {
			e := uint32(s)<<8 | uint32(l)
			start := c << (P - uint(l))
			fill := h.table[start : start+1<<(P-uint(l))]
			for i := range fill {
				fill[i] = e
			}
			continue
		}
		d := uint(l) - P
		p := c >> d
		sb := uint(h.subMax[p])
		if h.subBase[p] < 0 {
			h.subBase[p] = int32(len(h.table))
			h.table[p] = uint32(len(h.table))<<8 | entrySub | uint32(sb)
			h.table = h.table[:len(h.table)+1<<sb]
		}
		e := uint32(s)<<8 | uint32(l)
		start := int(h.subBase[p]) + (c&(1<<d-1))<<(sb-d)
		fill := h.table[start : start+1<<(sb-d)]
		for i := range fill {
			fill[i] = e
		}
	}
	return nil
}

// Encoding.

// buildLengths computes Huffman path lengths for freq, none longer than
// limit, into lens. When fewer than two symbols occur and complete is set,
// a second symbol gets a code too, so that the code is a complete prefix
// code, which decoders require; with no symbols at all every length is 0.
func buildLengths(freq []uint32, limit int, lens []uint8, complete bool, sc *huffScratch) {
	for i := range lens {
		lens[i] = 0
	}
	syms := sc.syms[:0]
	for s, f := range freq {
		if f > 0 {
			syms = append(syms, s)
		}
	}
	sc.syms = syms
	switch len(syms) {
	case 0:
		if complete {
			lens[0], lens[1] = 1, 1
		}
		return
	case 1:
		if complete {
			lens[syms[0]] = 1
			if syms[0] == 0 {
				lens[1] = 1
			} else {
				lens[0] = 1
			}
		} else {
			lens[syms[0]] = 1
		}
		return
	}
	f := sc.freq[:0]
	for _, s := range syms {
		f = append(f, freq[s])
	}
	sc.freq = f
	for {
		if huffmanDepths(syms, f, lens, sc) <= limit {
			return
		}
		for i := range f {
			f[i] = f[i]/2 + 1
		}
	}
}

type huffScratch struct {
	syms   []int
	freq   []uint32
	order  []int
	nodeF  []uint64
	parent []int32
	depth  []int32
}

// huffmanDepths builds a Huffman tree over syms with weights f (f[i] for
// syms[i]) with the two-queue method and stores the depths in lens. It
// returns the largest depth.
func huffmanDepths(syms []int, f []uint32, lens []uint8, sc *huffScratch) int {
	n := len(syms)
	order := sc.order[:0]
	for i := range n {
		order = append(order, i)
	}
	sc.order = order
	slices.SortFunc(order, func(a, b int) int {
		if f[a] != f[b] {
			return cmp.Compare(f[a], f[b])
		}
		return cmp.Compare(a, b)
	})
	// Nodes 0..n-1 are leaves in sorted order, n..2n-2 internal.
	nodeF := sc.nodeF[:0]
	for _, i := range order {
		nodeF = append(nodeF, uint64(f[i]))
	}
	parent := sc.parent[:0]
	for range 2*n - 1 {
		parent = append(parent, -1)
	}
	li, ii := 0, n
	pick := func() int {
		if li < n && (ii >= len(nodeF) || nodeF[li] <= nodeF[ii]) {
			li++
			return li - 1
		}
		ii++
		return ii - 1
	}
	for k := 0; k < n-1; k++ {
		a := pick()
		b := pick()
		id := len(nodeF)
		nodeF = append(nodeF, nodeF[a]+nodeF[b])
		parent[a] = int32(id)
		parent[b] = int32(id)
	}
	sc.nodeF, sc.parent = nodeF, parent
	// Depths: the root is the last node; parents come after children.
	depth := sc.depth[:0]
	for range 2*n - 1 {
		depth = append(depth, 0)
	}
	sc.depth = depth
	maxDepth := 0
	for id := 2*n - 3; id >= 0; id-- {
		depth[id] = depth[parent[id]] + 1
	}
	for k, i := range order {
		d := int(depth[k])
		lens[syms[i]] = uint8(min(d, 255))
		if d > maxDepth {
			maxDepth = d
		}
	}
	return maxDepth
}

// canonicalCodes assigns canonical codes (shorter first, then by symbol) to
// the path lengths lens.
func canonicalCodes(lens []uint8, codes []uint16) {
	var count [maxCodeLen + 2]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [maxCodeLen + 2]int
	code := 0
	for l := 1; l <= maxCodeLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range lens {
		if l != 0 {
			codes[s] = uint16(next[l])
			next[l]++
		}
	}
}
