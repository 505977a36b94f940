package signin

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a zero Config.
const (
	DefaultMaxFailures = 5
	DefaultWindow      = 15 * time.Minute
	DefaultLockout     = 15 * time.Minute
	DefaultDelay       = time.Second
	DefaultMaxDelayed  = 4
)

// Bounds on what a Limiter holds.
const (
	// maxKeys bounds the accounts, and separately the addresses,
	// remembered.
	maxKeys = 1 << 16
	// maxDelayedTotal bounds the refusals held back at once, whatever
	// their addresses.
	maxDelayedTotal = 256
)

var (
	// ErrBusy is returned by Limiter.Begin for an address that is slowed
	// and already has Config.MaxDelayed refusals held back: the sign-in is
	// answered "try again shortly" without its credentials being checked.
	ErrBusy = errors.New("signin: too many failed sign-ins from this address at once; try again shortly")

	// ErrLockedOut is the reason to give Attempt.Fail for an account that
	// Attempt.Locked reported locked.
	ErrLockedOut = errors.New("account locked out after too many wrong passwords")
)

// Config configures a Limiter. The zero value is a working configuration.
type Config struct {
	// MaxFailures wrong passwords for one account within Window lock the
	// account for Lockout. Default DefaultMaxFailures (5); negative: never.
	MaxFailures int
	// MaxAddressFailures guesses (refused sign-ins that name a user,
	// existing or not) from one address within Window slow that address
	// for Lockout (see the package documentation). Default 4 times
	// MaxFailures; negative: never.
	MaxAddressFailures int
	// Window is how long failures count; Lockout how long an account stays
	// locked and an address slowed. Defaults 15 minutes each.
	Window, Lockout time.Duration
	// Delay is how long a refusal to a slowed address is held back, and
	// MaxDelayed how many of one address's may be held at once. Defaults
	// 1 second and 4.
	Delay      time.Duration
	MaxDelayed int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client (see ClientAddress). Empty: the peer is the client.
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now. Refusals are held back on real
	// timers (time.NewTimer), which testing/synctest fakes.
	Now func() time.Time
	// Logger receives the account lockouts and slowed addresses (Warn) and
	// the refusals, rate-limited (Info), with the keys via, user, account,
	// remote and reason. nil discards.
	Logger *slog.Logger
}

// Limiter counts failed sign-ins per account and per address and decides
// what a sign-in may do. It is safe for concurrent use; one Limiter is
// shared by every sign-in of a service.
type Limiter struct {
	cfg Config
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex
	accounts *counter       // wrong passwords per account
	addrs    *counter       // guesses per address
	delayed  map[string]int // refusals held back per address
	total    int            // refusals held back in all
	logs     refusalLog
	stats    Stats
	// proxies is Config.TrustedProxies, swapped whole by Reconfigure:
	// ClientAddress reads it without the lock.
	proxies atomic.Pointer[[]netip.Prefix]
}

// Stats are the counts of what a Limiter saw since New, for metrics.
type Stats struct {
	// Refused counts the refused sign-ins that named a user (Attempt.Fail),
	// by the sign-in they came through (Failure.Via: "ntlm", "basic").
	Refused map[string]uint64
	// Malformed counts the refused messages that named no user, by
	// sign-in.
	Malformed map[string]uint64
	// Lockouts counts the accounts locked (or kept locked by a failure
	// while locked); Slowed the addresses that began to be slowed.
	Lockouts, Slowed uint64
	// Busy counts the sign-ins answered ErrBusy unchecked.
	Busy uint64
}

// Stats returns the counts so far; the maps are the caller's.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Refused, st.Malformed = maps.Clone(st.Refused), maps.Clone(st.Malformed)
	return st
}

// countIn adds one to m[key], making m if needed; l.mu is held.
func countIn(m *map[string]uint64, key string) {
	if *m == nil {
		*m = make(map[string]uint64)
	}
	(*m)[key]++
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	cfg = cfg.withDefaults()
	l := &Limiter{
		cfg:      cfg,
		now:      cfg.Now,
		log:      cfg.Logger,
		accounts: newCounter(cfg.MaxFailures, cfg.Window, cfg.Lockout, maxKeys),
		addrs:    newCounter(cfg.MaxAddressFailures, cfg.Window, cfg.Lockout, maxKeys),
		delayed:  make(map[string]int),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.logs = newRefusalLog(l.now())
	l.setProxies(cfg.TrustedProxies)
	return l
}

// withDefaults fills cfg's zero limits.
func (cfg Config) withDefaults() Config {
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.MaxAddressFailures == 0 {
		cfg.MaxAddressFailures = 4 * DefaultMaxFailures
		if cfg.MaxFailures > 0 {
			cfg.MaxAddressFailures = 4 * cfg.MaxFailures
		}
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultLockout
	}
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.MaxDelayed <= 0 {
		cfg.MaxDelayed = DefaultMaxDelayed
	}
	return cfg
}

func (l *Limiter) setProxies(p []netip.Prefix) {
	p = slices.Clone(p)
	l.proxies.Store(&p)
}

// Reconfigure applies cfg's limits (MaxFailures, MaxAddressFailures,
// Window, Lockout, Delay, MaxDelayed) and TrustedProxies from now on,
// keeping what the Limiter counted: the failures in the window count
// against the new limits, and the accounts locked and addresses slowed
// stay so until the end of the hold they were given. Now and Logger are
// kept. Zero values take the defaults, as for New.
func (l *Limiter) Reconfigure(cfg Config) {
	cfg = cfg.withDefaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg.Now, cfg.Logger = l.cfg.Now, l.cfg.Logger
	l.cfg = cfg
	l.accounts.max, l.accounts.window, l.accounts.hold = cfg.MaxFailures, cfg.Window, cfg.Lockout
	l.addrs.max, l.addrs.window, l.addrs.hold = cfg.MaxAddressFailures, cfg.Window, cfg.Lockout
	l.setProxies(cfg.TrustedProxies)
}

// AccountKey is the key an account counts under: its canonical domain
// and user name, as the account store spells them, case-folded. Both
// sign-ins must give the same account the same key, or a guesser could
// spread guesses over them.
func AccountKey(domain, user string) string {
	return strings.ToLower(domain + `\` + user)
}

// Locked reports whether account (an AccountKey) is locked out now.
func (l *Limiter) Locked(account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accounts.held(account, l.now())
}

// Slowed reports whether the address key addr is slowed now.
func (l *Limiter) Slowed(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs.held(addr, l.now())
}

// Malformed records a refused message that names no user (a malformed
// token or header, an anonymous NTLM message) from the address key remote:
// it is logged, rate-limited, and counts nowhere. via names the sign-in
// ("ntlm", "basic"); user is the name as sent, if any.
func (l *Limiter) Malformed(remote, via, user string, reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	countIn(&l.stats.Malformed, via)
	l.logRefusal(l.now(), Failure{Via: via, User: user, Reason: reason}, remote)
}

// Attempt is one sign-in that names a user, from Begin until it ends with
// exactly one of Succeed, Fail or Abandon.
type Attempt struct {
	l      *Limiter
	remote string
	held   bool // holds one of the address's delay slots
}

// Begin starts a sign-in from the address key remote (see ClientAddress)
// that names a user, before its credentials are checked. For a slowed
// address it takes one of the address's MaxDelayed slots, and returns
// ErrBusy when none is free: the caller answers "try again shortly"
// without checking anything.
func (l *Limiter) Begin(remote string) (*Attempt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := &Attempt{l: l, remote: remote}
	if !l.addrs.held(remote, now) {
		return a, nil
	}
	if l.delayed[remote] >= l.cfg.MaxDelayed || l.total >= maxDelayedTotal {
		l.stats.Busy++
		l.logRefusal(now, Failure{Reason: ErrBusy}, remote)
		return nil, ErrBusy
	}
	l.delayed[remote]++
	l.total++
	a.held = true
	return a, nil
}

// Locked reports whether account (an AccountKey) is locked out. The
// caller refuses such a sign-in, with Fail and ErrLockedOut, whether or
// not the password is right.
func (a *Attempt) Locked(account string) bool { return a.l.Locked(account) }

// Succeed ends a sign-in of account (an AccountKey) that succeeded: the
// account's failures are forgotten.
func (a *Attempt) Succeed(account string) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accounts.reset(account, l.now())
	a.release()
}

// Abandon ends a sign-in that was neither refused nor accepted (the
// accounts could not be reached): nothing is counted.
func (a *Attempt) Abandon() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.release()
}

// release gives back the delay slot; l.mu is held.
func (a *Attempt) release() {
	if !a.held {
		return
	}
	a.held = false
	l := a.l
	l.total--
	if l.delayed[a.remote]--; l.delayed[a.remote] <= 0 {
		delete(l.delayed, a.remote)
	}
}

// Failure describes a refused sign-in that named a user.
type Failure struct {
	Via  string // the sign-in, "ntlm" or "basic", for the log and Stats (a fixed name)
	User string // the user name as the client sent it, for the log
	// Account is the AccountKey of the account the user names, empty when
	// it names none.
	Account string
	// WrongPassword says the password (or NTLM response) did not verify
	// against Account's: it counts against the account. Leave it false
	// for a locked account.
	WrongPassword bool
	Reason        error // why, for the log
}

// Fail ends a refused sign-in: it counts against the address, and against
// the account for a wrong password, and is logged (rate-limited). When
// the address was slowed at Begin, Fail returns only after Config.Delay,
// or when ctx is done, so that the refusal reaches the client late.
func (a *Attempt) Fail(ctx context.Context, f Failure) {
	l := a.l
	l.mu.Lock()
	now := l.now()
	countIn(&l.stats.Refused, f.Via)
	if f.Account != "" && f.WrongPassword && l.accounts.fail(f.Account, now) {
		l.stats.Lockouts++
		l.log.Warn("sign-in: account locked", "via", f.Via, "user", f.User, "account", f.Account, "remote", a.remote,
			"failures", l.cfg.MaxFailures, "locked_for", l.cfg.Lockout)
	}
	wasSlowed := l.addrs.held(a.remote, now)
	if l.addrs.fail(a.remote, now) && !wasSlowed {
		l.stats.Slowed++
		l.log.Warn("sign-in: address slowed", "remote", a.remote, "failures", l.cfg.MaxAddressFailures, "slowed_for", l.cfg.Lockout,
			"delay", l.cfg.Delay, "reason", "too many failed sign-ins from one address; right passwords still sign in, refusals are answered late")
	}
	l.logRefusal(now, f, a.remote)
	held, delay := a.held, l.cfg.Delay
	l.mu.Unlock()
	if held {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	l.mu.Lock()
	a.release()
	l.mu.Unlock()
}

// Run logs the summary of the refusals not logged one by one every
// minute, until ctx is done; then it logs what is left. Without Run, the
// summary comes with the first refusal of the next minute.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(logPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.logs.flush(l.log, l.now())
			l.mu.Unlock()
			return
		case <-t.C:
			l.mu.Lock()
			now := l.now()
			if !now.Before(l.logs.start.Add(logPeriod)) {
				l.logs.flush(l.log, now)
			}
			l.mu.Unlock()
		}
	}
}

// logRefusal logs f from remote, rate-limited; l.mu is held.
func (l *Limiter) logRefusal(now time.Time, f Failure, remote string) {
	if !l.logs.admit(l.log, now, remote, f.Account) {
		return
	}
	attrs := []any{"via", f.Via, "user", f.User, "remote", remote}
	if f.Account != "" {
		attrs = append(attrs, "account", f.Account)
	}
	if f.Reason != nil {
		attrs = append(attrs, "reason", f.Reason.Error())
	}
	l.log.Info("sign-in refused", attrs...)
}
