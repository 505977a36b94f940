package lzx

import (
	"runtime"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

// TestFinderCandidates checks what the parser trusts: every candidate the
// match finder lists is a match of exactly the length it claims (the
// longest up to the frame's end and maxMatch), at a distance inside the
// window, in increasing length per position. The inputs cross frame ends
// inside long repeats (deferred insertions), slide the window many times
// (window 15) and mix in random data (skipped positions); the finder runs
// on its own goroutine and, with GOMAXPROCS 1, inline.
func TestFinderCandidates(t *testing.T) {
	mixed := append(cabtest.FirmwareLike(3, 5*FrameSize), randomBytes(2, 3*FrameSize)...)
	mixed = append(mixed, repetitive(4*FrameSize+100)...)
	inputs := []struct {
		name string
		data []byte
	}{
		{"repetitive", repetitive(9*FrameSize + 17)},
		{"mixed", mixed},
		{"zeros", make([]byte, 4*FrameSize)},
		{"mutated copies", mutatedCopies(6*FrameSize + 3)},
		// Without deferred insertions this one lists a wrong length in
		// frame 36.
		{"firmware", cabtest.FirmwareLike(1, 40*FrameSize)},
	}
	for _, procs := range []int{1, 2} {
		for _, wb := range []int{15, 17, 21} {
			for _, in := range inputs {
				prev := runtime.GOMAXPROCS(procs)
				checkCandidates(t, wb, in.data)
				runtime.GOMAXPROCS(prev)
			}
		}
	}
}

func checkCandidates(t *testing.T, wb int, data []byte) {
	t.Helper()
	e, err := NewEncoder(wb)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for at := 0; at < len(data); at += FrameSize {
		frame := data[at:min(at+FrameSize, len(data))]
		if _, err := e.Encode(nil, frame); err != nil {
			t.Fatal(err)
		}
		if incompressible(e.hist[len(e.hist)-len(frame):]) {
			continue
		}
		h := e.hist
		start := len(h) - len(frame)
		for i := range frame {
			p := start + i
			limit := min(maxMatch, len(h)-p)
			prevLen := 0
			for _, c := range e.cands[e.candIdx[i]:e.candIdx[i+1]] {
				listed++
				off := int(c.off)
				if off <= 0 || off > p || off > e.ws-3 {
					t.Fatalf("window %d, frame at %d, position %d: offset %d outside the window", wb, at, i, off)
				}
				if got := matchLen(h, p-off, p, limit); got != int(c.length) || got <= prevLen {
					t.Fatalf("window %d, frame at %d, position %d: candidate length %d at offset %d, real %d, previous %d",
						wb, at, i, c.length, off, got, prevLen)
				}
				if int(c.slot) != slotOf(c.off+2) {
					t.Fatalf("position %d: slot %d, want %d", i, c.slot, slotOf(c.off+2))
				}
				prevLen = int(c.length)
			}
		}
	}
	if listed == 0 {
		t.Fatalf("window %d: no candidates listed", wb)
	}
}

// mutatedCopies repeats a random block with a few random bytes changed in
// each copy, so that matches of every length up to past maxMatch end at
// every position, frame ends included.
func mutatedCopies(n int) []byte {
	base := randomBytes(5, 700)
	r := randomBytes(6, n)
	out := make([]byte, 0, n)
	for k := 0; len(out) < n; k++ {
		at := len(out)
		out = append(out, base...)
		for j := range 3 {
			out[at+int(r[k*3+j])*int(r[k*3+j+1]+1)%len(base)] ^= 1 + r[k+j]
		}
	}
	return out[:n]
}
