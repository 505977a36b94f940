package ntlm

import (
	"sync"
	"time"
)

// failureLimiter counts failed sign-ins per key (an account, or a remote
// address) and locks a key out for lockout once max failures fall within a
// sliding window. It holds at most maxKeys keys: when full it first drops keys whose
// window and lockout are over, then arbitrary keys (unlocked ones first)
// down to 90%, so a flood of addresses cannot exhaust memory; under such a
// flood some lockouts are forgotten early.
type failureLimiter struct {
	max     int
	window  time.Duration
	lockout time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	times       []time.Time // failures within the window, oldest first; fewer than max
	lockedUntil time.Time
}

// prune drops the failures that left the window ending at now.
func (f *failures) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(f.times) && (now.Sub(f.times[i]) >= window || now.Before(f.times[i])) {
		i++
	}
	f.times = f.times[i:]
}

// newFailureLimiter returns a limiter; max <= 0 makes one that never
// locks.
func newFailureLimiter(max int, window, lockout time.Duration, maxKeys int) *failureLimiter {
	return &failureLimiter{max: max, window: window, lockout: lockout, maxKeys: maxKeys, keys: make(map[string]*failures)}
}

// locked reports whether key is locked out at now.
func (l *failureLimiter) locked(key string, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	return f != nil && now.Before(f.lockedUntil)
}

// fail records a failure for key at now; it reports whether key is now
// locked out.
func (l *failureLimiter) fail(key string, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil {
		if len(l.keys) >= l.maxKeys {
			l.evict(now)
		}
		f = &failures{}
		l.keys[key] = f
	}
	f.prune(now, l.window)
	if len(f.times)+1 >= l.max {
		f.lockedUntil = now.Add(l.lockout)
		f.times = nil
		return true
	}
	f.times = append(f.times, now)
	return false
}

// reset forgets key's failures (after a successful sign-in of the account).
func (l *failureLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// evict makes room; l.mu is held.
func (l *failureLimiter) evict(now time.Time) {
	for k, f := range l.keys {
		f.prune(now, l.window)
		if !now.Before(f.lockedUntil) && len(f.times) == 0 {
			delete(l.keys, k)
		}
	}
	// Still full: free a tenth, unlocked keys first, so that a flood of
	// new keys pays for a scan only once in a while.
	target := l.maxKeys - l.maxKeys/10 - 1
	for k, f := range l.keys {
		if len(l.keys) <= target {
			return
		}
		if !now.Before(f.lockedUntil) {
			delete(l.keys, k)
		}
	}
	for k := range l.keys {
		if len(l.keys) <= target {
			return
		}
		delete(l.keys, k)
	}
}

// replayCache remembers the NTProofStr of recently accepted responses for
// ttl, holding at most size of them (the oldest go first when full). A
// response is only ever valid once: the server challenge it signs is fresh
// per connection and single use, and this cache refuses a second use even if
// a challenge were ever repeated.
type replayCache struct {
	ttl  time.Duration
	size int

	mu    sync.Mutex
	seen  map[[16]byte]time.Time // NTProofStr -> expiry
	order []replayEntry          // insertion order, oldest first
}

type replayEntry struct {
	proof  [16]byte
	expiry time.Time
}

func newReplayCache(ttl time.Duration, size int) *replayCache {
	return &replayCache{ttl: ttl, size: size, seen: make(map[[16]byte]time.Time)}
}

// add records proof at now; it reports false when proof was already
// present and not yet expired.
func (c *replayCache) add(proof []byte, now time.Time) bool {
	var k [16]byte
	copy(k[:], proof)
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[k]; ok && now.Before(exp) {
		return false
	}
	for len(c.order) > 0 {
		oldest := c.order[0]
		if now.Before(oldest.expiry) && len(c.order) < c.size {
			break
		}
		if exp, ok := c.seen[oldest.proof]; ok && exp.Equal(oldest.expiry) {
			delete(c.seen, oldest.proof)
		}
		c.order = c.order[1:]
	}
	exp := now.Add(c.ttl)
	c.seen[k] = exp
	c.order = append(c.order, replayEntry{k, exp})
	return true
}
