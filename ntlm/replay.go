package ntlm

import (
	"sync"
	"time"
)

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
