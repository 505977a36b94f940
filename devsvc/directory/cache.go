package directory

import (
	"sync"
	"time"

	"github.com/opendus/opendus/ntlm"
)

// cache remembers LookupNT answers, found or not, for ttl. It holds at most
// max names: when full it drops the expired ones, then arbitrary ones, so
// that a flood of made-up names cannot grow it.
type cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	acct    ntlm.Account
	known   bool
	expires time.Time
}

func newCache(ttl time.Duration, max int, now func() time.Time) *cache {
	return &cache{ttl: ttl, max: max, now: now, m: make(map[string]cached)}
}

// get returns the cached answer for key, if any and fresh.
func (c *cache) get(key string) (cached, bool) {
	if c.ttl <= 0 {
		return cached{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return cached{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, key)
		return cached{}, false
	}
	return e, true
}

// put remembers an answer for key.
func (c *cache) put(key string, acct ntlm.Account, known bool) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cached{acct: acct, known: known, expires: now.Add(c.ttl)}
}

// len returns the number of names held, fresh or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
