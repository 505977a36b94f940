package signin

import "time"

// counter counts failures per key (an account, or an address) in a
// sliding window and holds a key (locks an account, slows an address) for
// hold once max failures fall within the window. It keeps at most maxKeys
// keys: when full it first drops keys whose window and hold are over, then
// arbitrary keys (those not held first) down to 90%, so a flood of keys
// cannot exhaust memory; under such a flood some holds end early. The
// caller serialises access.
type counter struct {
	max     int // <= 0: never holds
	window  time.Duration
	hold    time.Duration
	maxKeys int
	keys    map[string]*failures
}

type failures struct {
	times []time.Time // failures within the window, oldest first; fewer than max
	until time.Time   // held until
}

func newCounter(max int, window, hold time.Duration, maxKeys int) *counter {
	return &counter{max: max, window: window, hold: hold, maxKeys: maxKeys, keys: make(map[string]*failures)}
}

// prune drops the failures that left the window ending at now (and any
// from a clock that went back).
func (f *failures) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(f.times) && (now.Sub(f.times[i]) >= window || now.Before(f.times[i])) {
		i++
	}
	f.times = f.times[i:]
}

// held reports whether key is held at now.
func (c *counter) held(key string, now time.Time) bool {
	if c.max <= 0 {
		return false
	}
	f := c.keys[key]
	return f != nil && now.Before(f.until)
}

// fail records a failure of key at now. It reports whether this failure
// started a hold (or renewed one: failures while held still count, so that
// a key kept failing stays held).
func (c *counter) fail(key string, now time.Time) bool {
	if c.max <= 0 {
		return false
	}
	f := c.keys[key]
	if f == nil {
		if len(c.keys) >= c.maxKeys {
			c.evict(now)
		}
		f = &failures{}
		c.keys[key] = f
	}
	f.prune(now, c.window)
	if len(f.times)+1 >= c.max {
		f.until = now.Add(c.hold)
		f.times = nil
		return true
	}
	f.times = append(f.times, now)
	return false
}

// reset forgets key's failures, unless it is held.
func (c *counter) reset(key string, now time.Time) {
	if f := c.keys[key]; f != nil && !now.Before(f.until) {
		delete(c.keys, key)
	}
}

// evict makes room for a new key.
func (c *counter) evict(now time.Time) {
	for k, f := range c.keys {
		f.prune(now, c.window)
		if !now.Before(f.until) && len(f.times) == 0 {
			delete(c.keys, k)
		}
	}
	// Still full: free a tenth, keys not held first, so that a flood of
	// new keys pays for a scan only once in a while.
	target := c.maxKeys - c.maxKeys/10 - 1
	for k, f := range c.keys {
		if len(c.keys) <= target {
			return
		}
		if !now.Before(f.until) {
			delete(c.keys, k)
		}
	}
	for k := range c.keys {
		if len(c.keys) <= target {
			return
		}
		delete(c.keys, k)
	}
}
