package lzx

// Near-optimal parsing.
//
// For every position of the frame the match finder lists the matches of
// increasing length that its binary tree walk meets. A forward dynamic
// programme then finds the cheapest way to code
// the frame as literals, matches and repeated-offset matches under a cost
// model taken from the previous block's Huffman path lengths, carrying the
// repeated offsets R0..R2 of the best arrival at every position. Matches of
// niceLen bytes or more are taken greedily.

const (
	maxCands = 24 // matches remembered per position
	// Every match length up to allLens (in the first of two parses,
	// allLensFirst) is tried; above, only each match's longest.
	allLens      = 12
	allLensFirst = 4
	unseenCost   = 14 // bits assumed for a symbol the previous tree did not code
	infiniteCost = 1 << 30
)

// arrival is the best known way to reach a position: its last step and
// the repeated offsets after it. Costs live in a separate array.
type arrival struct {
	from       int32  // position the step starts at
	length     uint16 // 0: literal
	off        uint32
	r0, r1, r2 uint32
}

type costModel struct {
	lit     [numChars]uint32
	main    []uint32 // per match symbol (slot*8 + length header)
	length  [numSecondaryLens]uint32
	slotExt [maxSlots]uint32
}

// setCosts fills the cost model from path lengths (nil: defaults).
func (e *Encoder) setCosts(mainL, lenL []uint8) {
	c := &e.costs
	if c.main == nil {
		c.main = make([]uint32, e.nslots*8)
	}
	bitsOf := func(l uint8, def uint32) uint32 {
		if l == 0 {
			return def
		}
		return uint32(l)
	}
	for i := range c.lit {
		if mainL == nil {
			c.lit[i] = 8
		} else {
			c.lit[i] = bitsOf(mainL[i], unseenCost)
		}
	}
	for i := range c.main {
		switch {
		case mainL == nil:
			c.main[i] = 10
			if i < 24 {
				c.main[i] = 8
			}
		default:
			c.main[i] = bitsOf(mainL[numChars+i], unseenCost)
		}
	}
	for i := range c.length {
		if lenL == nil {
			c.length[i] = 6
		} else {
			c.length[i] = bitsOf(lenL[i], unseenCost)
		}
	}
	for s := range c.slotExt {
		c.slotExt[s] = uint32(slots.extra[s])
	}
}

// matchCost is the cost of a match of length l in position slot s,
// without extra offset bits.
func (c *costModel) matchCost(s, l int) uint32 {
	lh := l - minMatch
	if lh >= numPrimaryLens {
		return c.main[s*8+numPrimaryLens] + c.length[lh-numPrimaryLens]
	}
	return c.main[s*8+lh]
}

// Match finding runs ahead of the parser on another goroutine: findAll
// publishes on the ready channel the k for which candIdx[0..k] are final
// (the candidates of the first k positions), every pipelineChunk positions
// and at the end, then closes it. The two share only hist (read-only while a frame is
// encoded) and the candidate arrays, whose entries the parser reads after
// receiving the count that covers them; the trees and the hash heads
// belong to the finder, the costs, arrivals and tokens to the parser.
const (
	pipelineChunk = 2048
	// Frames shorter than this are parsed after the finder is done, on
	// one goroutine.
	pipelineMin = 4 * pipelineChunk
)

// Positions without a match: after skipAfter of them in a row the finder
// steps over positions, one more every 2^skipShift misses, up to maxSkip.
const (
	skipAfter = 32
	skipShift = 4
	maxSkip   = 16
)

// findAll lists the match candidates of every position of the frame at
// hist[start:], inserting the positions into the binary trees. With a
// non-nil ready channel it publishes its progress there and closes it.
//
// The trees stay ordered only if every position is inserted comparing up
// to maxMatch bytes, so positions closer than that to the end of the data
// are only searched, and inserted when the next frame has arrived
// (e.deferred), unless this is the folder's final frame: there no later
// comparison looks further than the data.
func (e *Encoder) findAll(start int, final bool, ready chan<- int) {
	h := e.hist
	end := len(h)
	n := end - start
	idx := e.candIdx[:n+1]
	cs := e.cands[:0]
	if ready != nil {
		defer close(ready)
	}
	if e.deferred >= 0 {
		for p := e.deferred; p < start; p++ {
			if limit := min(maxMatch, end-p); limit >= hashLen {
				x := hashAt(h[p:])
				e.btFind(p, limit, x, int(e.head[x]), e.scratch8[:0])
			}
		}
		e.deferred = -1
	}
	cutoff := n // positions from cutoff on are only searched
	if !final {
		cutoff = max(n-maxMatch+1, 0)
	}
	// The hash bucket of the next position is looked up one position
	// ahead, so that its cache miss overlaps the current tree walk.
	nextX, nextCur := uint32(0), int32(-1)
	if n >= hashLen {
		nextX = hashAt(h[start:])
		nextCur = e.head[nextX]
	}
	published := 0
	misses := 0 // positions in a row without a match
	for i := 0; i < n; i++ {
		if ready != nil && i-published >= pipelineChunk {
			// idx[0..i-1] are final (the greedy steps below fill
			// ahead only up to i-1).
			ready <- i - 1
			published = i
		}
		idx[i] = int32(len(cs))
		p := start + i
		limit := min(maxMatch, end-p)
		if limit < hashLen {
			continue
		}
		x, cur := nextX, nextCur
		insert := i < cutoff
		if p+1+hashLen <= end {
			nextX = hashAt(h[p+1:])
			nextCur = e.head[nextX]
			if nextX == x && insert {
				nextCur = int32(p)
			}
		}
		var bestLen int
		if insert {
			bestLen, cs = e.btFind(p, limit, x, int(cur), cs)
		} else {
			if e.deferred < 0 {
				e.deferred = p
			}
			bestLen, cs = e.btSearch(p, limit, int(cur), cs)
		}
		step := 1
		switch {
		case bestLen >= e.nice:
			// Taken greedily: the positions inside get no candidates and
			// stay out of the trees.
			step, misses = bestLen, 0
		case bestLen > 2:
			misses = 0
		default:
			// In a long run without matches (incompressible data), look
			// at fewer and fewer positions.
			if misses++; misses > skipAfter {
				step = min(1+(misses-skipAfter)>>skipShift, maxSkip)
			}
		}
		if step > 1 {
			for k := 1; k < step && i+k < n; k++ {
				idx[i+k] = int32(len(cs))
			}
			i += step - 1
			if q := start + i + 1; q+hashLen <= end {
				nextX = hashAt(h[q:])
				nextCur = e.head[nextX]
			}
		}
	}
	idx[n] = int32(len(cs))
	if ready != nil {
		ready <- n
	}
}

// btSearch is btFind without the insertion: it walks the tree of position
// p's hash bucket from cur and appends the matches it meets to cs.
func (e *Encoder) btSearch(p, limit, cur int, cs []cand32) (int, []cand32) {
	h := e.hist
	son := e.son
	off, mask := e.sonBase, e.ws-1
	minPos := max(p-(e.ws-3), 0)
	len0, len1 := 0, 0
	bestLen := 2
	found := 0
	for depth := e.depth; depth > 0 && cur >= minPos; depth-- {
		l := min(len0, len1)
		l += matchLen(h, cur+l, p+l, limit-l)
		if l > bestLen {
			bestLen = l
			if found < maxCands {
				cs = append(cs, cand32{uint16(l), uint8(slotOf(uint32(p-cur) + 2)), uint32(p - cur)})
				found++
			}
		}
		if l >= limit {
			break
		}
		c2 := 2 * ((cur + off) & mask)
		if h[cur+l] < h[p+l] {
			cur = int(son[c2+1])
			len1 = l
		} else {
			cur = int(son[c2])
			len0 = l
		}
	}
	return bestLen, cs
}

// btFind inserts position p into the binary tree of its hash bucket
// (LZ77 binary-tree match finding, as in LZMA's BT4), appends the matches
// of increasing length it meets on the way to e.cands, and returns the
// longest length found. It needs hashLen bytes at p; x is their hash and cur
// the bucket's head. It returns cs with the candidates appended.
func (e *Encoder) btFind(p, limit int, x uint32, cur int, cs []cand32) (int, []cand32) {
	h := e.hist
	son := e.son
	off, mask := e.sonBase, e.ws-1
	e.head[x] = int32(p)
	minPos := max(p-(e.ws-3), 0)
	ptr0, ptr1 := 2*((p+off)&mask)+1, 2*((p+off)&mask)
	len0, len1 := 0, 0
	bestLen := 2
	found := 0
	for depth := e.depth; ; depth-- {
		if cur < minPos || depth == 0 {
			son[ptr0], son[ptr1] = -1, -1
			return bestLen, cs
		}
		l := min(len0, len1)
		l += matchLen(h, cur+l, p+l, limit-l)
		if l > bestLen {
			bestLen = l
			if found < maxCands {
				cs = append(cs, cand32{uint16(l), uint8(slotOf(uint32(p-cur) + 2)), uint32(p - cur)})
				found++
			}
		}
		c2 := 2 * ((cur + off) & mask)
		if l >= limit {
			son[ptr1], son[ptr0] = son[c2], son[c2+1]
			return bestLen, cs
		}
		if h[cur+l] < h[p+l] {
			son[ptr1] = int32(cur)
			ptr1 = c2 + 1
			cur = int(son[ptr1])
			len1 = l
		} else {
			son[ptr0] = int32(cur)
			ptr0 = c2
			cur = int(son[ptr0])
			len0 = l
		}
	}
}

type cand32 struct {
	length uint16
	slot   uint8 // position slot of off
	off    uint32
}

// optimalParse chooses the frame's literals and matches and replays them
// into tokens. The candidates of the first avail positions are final;
// ready, when not nil, announces more (see findAll).
func (e *Encoder) optimalParse(start, allLens, avail int, ready <-chan int) {
	h := e.hist
	n := len(h) - start
	if cap(e.arr) < n+1 {
		e.arr = make([]arrival, n+1)
		e.cost = make([]uint32, n+1)
	}
	arr := e.arr[:n+1]
	cost := e.cost[:n+1]
	for i := range cost {
		cost[i] = infiniteCost
	}
	cost[0] = 0
	arr[0] = arrival{from: -1, r0: e.r0, r1: e.r1, r2: e.r2}
	c := &e.costs

	relax := func(i, j int, cst uint32, l int, off uint32, r0, r1, r2 uint32) {
		if cst < cost[j] {
			cost[j] = cst
			arr[j] = arrival{from: int32(i), length: uint16(l), off: off, r0: r0, r1: r1, r2: r2}
		}
	}

	for i := 0; i < n; {
		a := arr[i]
		ac := cost[i]
		p := start + i
		limit := min(maxMatch, n-i)
		// literal
		relax(i, i+1, ac+c.lit[h[p]], 0, 0, a.r0, a.r1, a.r2)
		if limit < minMatch {
			i++
			continue
		}
		// repeated offsets
		reps := [3]uint32{a.r0, a.r1, a.r2}
		longRep := 0
		for k, r := range reps {
			if int(r) > p || (k >= 1 && r == reps[0]) || (k == 2 && r == reps[1]) ||
				h[p-int(r)] != h[p] || h[p-int(r)+1] != h[p+1] {
				continue
			}
			L := matchLen(h, p-int(r), p, limit)
			if L < minMatch {
				continue
			}
			var n0, n1, n2 uint32
			switch k {
			case 0:
				n0, n1, n2 = a.r0, a.r1, a.r2
			case 1:
				n0, n1, n2 = a.r1, a.r0, a.r2
			case 2:
				n0, n1, n2 = a.r2, a.r1, a.r0
			}
			for l := minMatch; l <= L; l++ {
				if l > allLens && l < L {
					l = L
				}
				relax(i, i+l, ac+c.matchCost(k, l), l, r, n0, n1, n2)
			}
			longRep = max(longRep, L)
		}
		if longRep >= e.nice {
			i += longRep
			continue
		}
		// explicit offsets
		for i+1 > avail {
			avail = <-ready
		}
		cs := e.cands[e.candIdx[i]:e.candIdx[i+1]]
		prevLen := minMatch
		longest := 0
		for _, cd := range cs {
			off := cd.off
			L := int(cd.length)
			var s int
			var n0, n1, n2 uint32
			var extra uint32
			switch off {
			case a.r0:
				s, n0, n1, n2 = 0, a.r0, a.r1, a.r2
			case a.r1:
				s, n0, n1, n2 = 1, a.r1, a.r0, a.r2
			case a.r2:
				s, n0, n1, n2 = 2, a.r2, a.r1, a.r0
			default:
				s = int(cd.slot)
				extra = c.slotExt[s]
				n0, n1, n2 = off, a.r0, a.r1
			}
			for l := prevLen + 1; l <= L; l++ {
				if l > allLens && l < L {
					l = L
				}
				relax(i, i+l, ac+c.matchCost(s, l)+extra, l, off, n0, n1, n2)
			}
			prevLen = L
			longest = L
		}
		if longest >= e.nice {
			i += longest
			continue
		}
		i++
	}

	// Walk back from the end, then replay forwards.
	path := e.path[:0]
	for j := n; j > 0; j = int(arr[j].from) {
		path = append(path, int32(j))
	}
	e.path = path
	for k := len(path) - 1; k >= 0; k-- {
		j := int(path[k])
		st := arr[j]
		if st.length == 0 {
			e.literal(h[start+j-1])
		} else {
			e.emitMatch(int(st.length), int(st.off))
		}
	}
}
