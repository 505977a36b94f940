package mszip

import "fmt"

// Encoder produces the MSZIP blocks of one folder. The zero value is not
// usable; call NewEncoder.
type Encoder struct {
	chain int       // hash chain positions examined per match search
	buf   []byte    // history followed by the block being encoded
	head  []int32   // hash -> last position + 1
	prev  []int32   // position -> previous position + 1 with the same hash
	bw    bitWriter // output of the block being encoded
}

// Levels for NewEncoder.
const (
	Store   = 0 // stored blocks only
	Fast    = 1
	Default = 6
	Best    = 9
)

const (
	hashBits = 15
	minMatch = 3
	maxMatch = 258
)

// NewEncoder returns an encoder. level runs from Store (0, no
// compression) to Best (9); higher levels search longer for matches.
func NewEncoder(level int) (*Encoder, error) {
	if level < Store || level > Best {
		return nil, fmt.Errorf("mszip: invalid level %d", level)
	}
	return &Encoder{
		chain: []int{0, 4, 8, 12, 16, 24, 32, 64, 128, 256}[level],
		buf:   make([]byte, 0, 2*MaxBlock),
		head:  make([]int32, 1<<hashBits),
		prev:  make([]int32, 2*MaxBlock),
	}, nil
}

// Reset prepares the encoder for a new folder.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// Encode appends to dst the payload of one block holding src (at most
// MaxBlock bytes) and returns the extended slice.
func (e *Encoder) Encode(dst, src []byte) ([]byte, error) {
	if len(src) > MaxBlock {
		return dst, fmt.Errorf("mszip: block of %d bytes exceeds %d", len(src), MaxBlock)
	}
	// Keep at most MaxBlock bytes of history before the new block.
	if len(e.buf) > MaxBlock {
		e.buf = append(e.buf[:0], e.buf[len(e.buf)-MaxBlock:]...)
	}
	start := len(e.buf)
	e.buf = append(e.buf, src...)
	dst = append(dst, 'C', 'K')
	if e.chain > 0 && len(src) > 0 {
		e.bw.reset()
		e.compress(start)
		if e.bw.size() < len(src)+5 {
			return append(dst, e.bw.out...), nil
		}
	}
	// Stored block: BFINAL=1, BTYPE=00, aligned LEN and NLEN.
	n := len(src)
	dst = append(dst, 1, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	return append(dst, src...), nil
}

func hash3(b []byte) uint32 {
	return (uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])) * 2654435761 >> (32 - hashBits)
}

// compress writes a fixed-Huffman block for e.buf[start:], matching
// against everything in e.buf.
func (e *Encoder) compress(start int) {
	buf := e.buf
	clear(e.head)
	insert := func(i int) {
		h := hash3(buf[i:])
		e.prev[i] = e.head[h]
		e.head[h] = int32(i + 1)
	}
	for i := 0; i+minMatch <= start; i++ {
		insert(i)
	}
	w := &e.bw
	w.bits(1, 1) // BFINAL
	w.bits(1, 2) // BTYPE = 01, fixed Huffman
	end := len(buf)
	for i := start; i < end; {
		bestLen, bestDist := 0, 0
		if i+minMatch <= end {
			maxLen := min(maxMatch, end-i)
			cand := int(e.head[hash3(buf[i:])]) - 1
			for n := e.chain; cand >= 0 && n > 0; n-- {
				d := i - cand
				if d > MaxBlock {
					break
				}
				if buf[cand+bestLen] == buf[i+bestLen] || bestLen == 0 {
					l := 0
					for l < maxLen && buf[cand+l] == buf[i+l] {
						l++
					}
					if l > bestLen {
						bestLen, bestDist = l, d
						if l == maxLen {
							break
						}
					}
				}
				cand = int(e.prev[cand]) - 1
			}
		}
		if bestLen >= minMatch {
			w.length(bestLen)
			w.distance(bestDist)
			for stop := i + bestLen; i < stop; i++ {
				if i+minMatch <= end {
					insert(i)
				}
			}
			continue
		}
		w.literal(int(buf[i]))
		if i+minMatch <= end {
			insert(i)
		}
		i++
	}
	w.literal(256) // end of block
	w.flush()
}
