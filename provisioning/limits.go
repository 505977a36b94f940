package provisioning

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of the Basic sign-in lockout, those of the NTLM acceptor.
const (
	DefaultMaxFailures   = 5
	DefaultFailureWindow = 15 * time.Minute
	DefaultLockout       = 15 * time.Minute
	// maxLimiterKeys bounds the users and addresses remembered.
	maxLimiterKeys = 10000
)

// lockouts counts failed Basic sign-ins per key (a user, or a remote
// address) in fixed windows and locks a key out once max failures fall in
// one window. It remembers at most maxLimiterKeys keys: when full it drops
// the keys whose window and lockout are over, then arbitrary ones, so a
// flood of names or addresses cannot exhaust memory (at the price of
// forgetting some lockouts early under such a flood).
type lockouts struct {
	max             int
	window, lockout time.Duration

	mu   sync.Mutex
	keys map[string]*failureCount
}

type failureCount struct {
	n           int
	start       time.Time // start of the current window
	lockedUntil time.Time
}

func newLockouts(max int, window, lockout time.Duration) *lockouts {
	return &lockouts{max: max, window: window, lockout: lockout, keys: map[string]*failureCount{}}
}

// locked reports whether any of keys is locked out at now.
func (l *lockouts) locked(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if f := l.keys[k]; f != nil && now.Before(f.lockedUntil) {
			return true
		}
	}
	return false
}

// fail records a failure of each of keys at now.
func (l *lockouts) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f := l.keys[k]
		if f == nil {
			if len(l.keys) >= maxLimiterKeys {
				l.evict(now)
			}
			f = &failureCount{start: now}
			l.keys[k] = f
		}
		if now.Sub(f.start) >= l.window || now.Before(f.start) {
			f.n, f.start = 0, now
		}
		f.n++
		if f.n >= l.max {
			f.lockedUntil = now.Add(l.lockout)
			f.n, f.start = 0, now
		}
	}
}

// succeed forgets the failures of key (a user who signed in).
func (l *lockouts) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.keys[key]; f != nil && f.lockedUntil.IsZero() {
		delete(l.keys, key)
	}
}

// evict drops the keys that are over, then arbitrary keys down to 90% of
// the bound. l.mu is held.
func (l *lockouts) evict(now time.Time) {
	for k, f := range l.keys {
		if now.Sub(f.start) >= l.window && !now.Before(f.lockedUntil) {
			delete(l.keys, k)
		}
	}
	for k := range l.keys {
		if len(l.keys) < maxLimiterKeys*9/10 {
			break
		}
		delete(l.keys, k)
	}
}

// userKey and addrKey are the lockout keys of a user name (case-folded)
// and of a remote address: the IPv4 address, or the /64 of an IPv6 one,
// since one IPv6 host usually holds a whole /64.
func userKey(user string) string { return "user:" + strings.ToLower(user) }

func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}
