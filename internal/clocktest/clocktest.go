// Package clocktest is the settable clock tests inject where the code
// under test takes a Now func (the house style: injected clocks, never
// time.Sleep).
package clocktest

import (
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use. Now returns T and
// then moves T on by Step (zero: the clock stands still until Set or
// Advance).
type Clock struct {
	mu   sync.Mutex
	T    time.Time
	Step time.Duration
}

// New returns a Clock standing at t.
func New(t time.Time) *Clock { return &Clock{T: t} }

// Now returns the clock's time, then adds Step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.T
	c.T = c.T.Add(c.Step)
	return t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.T = t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.T = c.T.Add(d)
}
