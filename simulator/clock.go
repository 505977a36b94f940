package simulator

import (
	"math"
	"time"
)

// never is the time of a timer that is not set.
const never = math.MaxInt64

// timer is a device's next wake-up on the simulated time line (nanoseconds
// since the scenario's start).
type timer struct {
	at  int64
	dev int32
}

// before orders timers by time, then by device: a total order that does
// not depend on when the timers were set, so that runs are reproducible.
func (a timer) before(b timer) bool {
	return a.at < b.at || a.at == b.at && a.dev < b.dev
}

// queue is a binary min-heap of timers: the virtual clock's timers fire in
// its order. Each device has at most one timer in the queue.
type queue []timer

func (q queue) Len() int    { return len(q) }
func (q queue) peek() timer { return q[0] }
func (q queue) empty() bool { return len(q) == 0 }
func (q *queue) push(t timer) {
	*q = append(*q, t)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() timer {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// pace maps simulated time to real time: simulated time runs speed times
// faster than real time from (realStart, simStart). Speed 0 means as fast as
// possible: every simulated time is due at once.
type pace struct {
	speed     float64
	realStart time.Time
	simStart  int64
}

// reached returns the simulated time that real time now has reached.
func (p pace) reached(now time.Time) int64 {
	if p.speed <= 0 {
		return never
	}
	v := float64(p.simStart) + float64(now.Sub(p.realStart))*p.speed
	if v >= float64(never) {
		return never
	}
	return int64(v)
}

// due returns the real time at which simulated time t is reached.
func (p pace) due(t int64) time.Time {
	if p.speed <= 0 {
		return p.realStart
	}
	return p.realStart.Add(time.Duration(math.Ceil(float64(t-p.simStart) / p.speed)))
}
