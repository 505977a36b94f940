package ntlm

import (
	"sync"
	"time"
)

// failureLimiter counts failed sign-ins per key (an account, or a remote
// address) and locks a key out for a while after too many failures in a
// window. It holds at most maxKeys keys: when full it first drops keys whose
// window and lockout are over, then, if still full, an arbitrary unlocked
// key, so a flood of addresses cannot exhaust memory.
type failureLimiter struct {
	max     int
	window  time.Duration
	lockout time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	count       int
	first       time.Time // start of the current window
	lockedUntil time.Time
}

func newFailureLimiter(max int, window, lockout time.Duration, maxKeys int) *failureLimiter {
	return &failureLimiter{max: max, window: window, lockout: lockout, maxKeys: maxKeys, keys: make(map[string]*failures)}
}

// locked reports whether key is locked out at now.
func (l *failureLimiter) locked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	return f != nil && now.Before(f.lockedUntil)
}

// fail records a failure for key at now; it reports whether key is now
// locked out.
func (l *failureLimiter) fail(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil {
		if len(l.keys) >= l.maxKeys {
			l.evict(now)
		}
		f = &failures{first: now}
		l.keys[key] = f
	}
	if now.Sub(f.first) >= l.window || now.Before(f.first) {
		f.count, f.first = 0, now
	}
	f.count++
	if f.count >= l.max {
		f.lockedUntil = now.Add(l.lockout)
		f.count, f.first = 0, now
		return true
	}
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
		if !now.Before(f.lockedUntil) && now.Sub(f.first) >= l.window {
			delete(l.keys, k)
		}
	}
	for k, f := range l.keys {
		if len(l.keys) < l.maxKeys {
			return
		}
		if !now.Before(f.lockedUntil) {
			delete(l.keys, k)
		}
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
