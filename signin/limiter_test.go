package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opendus/opendus/internal/clocktest"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

var errWrong = errors.New("wrong password")

// step is one event of a limiter table test.
type step struct {
	advance time.Duration // before the step
	remote  string
	// What happens: "wrong" (a wrong password for account), "unknown" (a
	// name that is no account), "malformed" (names no user), "right" (the
	// right password for account).
	what    string
	account string
	// What the limiter says at this step.
	wantLocked bool // account is locked (for "right": the sign-in is refused)
	wantSlowed bool // remote is slowed after the step
}

// run plays steps on l and checks what it says at each.
func run(t *testing.T, l *Limiter, clock *clocktest.Clock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clock.Advance(s.advance)
		ctx := t.Context()
		switch s.what {
		case "malformed":
			l.Malformed(s.remote, "test", "", errors.New("malformed"))
		default:
			a, err := l.Begin(s.remote)
			if err != nil {
				t.Fatalf("step %d: Begin(%s) = %v", i, s.remote, err)
			}
			locked := s.account != "" && a.Locked(s.account)
			switch {
			case s.what == "unknown":
				a.Fail(ctx, Failure{Via: "test", User: "nobody", Reason: errors.New("unknown user")})
			case locked:
				a.Fail(ctx, Failure{Via: "test", Account: s.account, Reason: ErrLockedOut})
			case s.what == "wrong":
				a.Fail(ctx, Failure{Via: "test", Account: s.account, WrongPassword: true, Reason: errWrong})
			case s.what == "right":
				a.Succeed(s.account)
			default:
				t.Fatalf("step %d: unknown event %q", i, s.what)
			}
			if s.what == "right" && locked != s.wantLocked {
				t.Errorf("step %d: right password for %s from %s refused = %v, want %v", i, s.account, s.remote, locked, s.wantLocked)
			}
		}
		if s.account != "" {
			if got := l.Locked(s.account); got != s.wantLocked {
				t.Errorf("step %d (%s %s from %s): Locked(%s) = %v, want %v", i, s.what, s.account, s.remote, s.account, got, s.wantLocked)
			}
		}
		if got := l.Slowed(s.remote); got != s.wantSlowed {
			t.Errorf("step %d (%s %s from %s): Slowed(%s) = %v, want %v", i, s.what, s.account, s.remote, s.remote, got, s.wantSlowed)
		}
	}
}

func TestLimiter(t *testing.T) {
	const (
		alice = `opendus\alice`
		bob   = `opendus\bob`
		nat   = "192.0.2.1"
		other = "192.0.2.2"
	)
	repeat := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	concat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"three wrong passwords lock the account, from any address, for the lockout", Config{MaxFailures: 3, Window: time.Minute, Lockout: 5 * time.Minute}, []step{
			{remote: nat, what: "wrong", account: alice},
			{remote: other, what: "wrong", account: alice},
			{remote: "192.0.2.3", what: "wrong", account: alice, wantLocked: true},
			{remote: "192.0.2.4", what: "right", account: alice, wantLocked: true},
			{remote: nat, what: "right", account: bob}, // only alice
			{advance: 4*time.Minute + 59*time.Second, remote: nat, what: "right", account: alice, wantLocked: true},
			{advance: time.Second, remote: nat, what: "right", account: alice},
		}},
		{"failures spread wider than the window do not add up", Config{MaxFailures: 3, Window: time.Minute}, []step{
			{remote: nat, what: "wrong", account: alice},
			{advance: 31 * time.Second, remote: nat, what: "wrong", account: alice},
			{advance: 30 * time.Second, remote: nat, what: "wrong", account: alice}, // the first left the window
			{advance: 10 * time.Second, remote: nat, what: "wrong", account: alice, wantLocked: true},
		}},
		{"a success forgets the account's failures", Config{MaxFailures: 3}, []step{
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "right", account: alice},
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "right", account: alice},
		}},
		{"refusals while locked do not extend the lockout", Config{MaxFailures: 2, Lockout: 5 * time.Minute}, []step{
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "wrong", account: alice, wantLocked: true},
			{advance: 4 * time.Minute, remote: nat, what: "wrong", account: alice, wantLocked: true},
			{advance: time.Minute, remote: nat, what: "right", account: alice},
		}},
		{"malformed messages count nowhere", Config{MaxFailures: 3, MaxAddressFailures: 3}, concat(
			repeat(50, step{remote: nat, what: "malformed"}),
			[]step{{remote: nat, what: "right", account: alice}},
		)},
		{"unknown users slow the address, never lock an account", Config{MaxFailures: 3, MaxAddressFailures: 5}, concat(
			repeat(4, step{remote: nat, what: "unknown"}),
			[]step{{remote: nat, what: "unknown", wantSlowed: true}},
			repeat(25, step{remote: nat, what: "unknown", wantSlowed: true}),
			// A right password from the slowed address signs in.
			[]step{{remote: nat, what: "right", account: alice, wantSlowed: true}},
			[]step{{remote: other, what: "right", account: bob}},
		)},
		{"spraying wrong passwords slows the address; each account locks on its own", Config{MaxFailures: 3, MaxAddressFailures: 4, Lockout: 10 * time.Minute}, []step{
			{remote: nat, what: "wrong", account: `opendus\u1`},
			{remote: nat, what: "wrong", account: `opendus\u2`},
			{remote: nat, what: "wrong", account: `opendus\u3`},
			{remote: nat, what: "wrong", account: `opendus\u4`, wantSlowed: true},
			{remote: nat, what: "right", account: alice, wantSlowed: true},
			{remote: other, what: "right", account: bob},
			{advance: 10 * time.Minute, remote: nat, what: "right", account: alice}, // slowed for the lockout only
		}},
		{"a locked account's refusals still count for the address", Config{MaxFailures: 2, MaxAddressFailures: 4}, []step{
			{remote: nat, what: "wrong", account: alice},
			{remote: nat, what: "wrong", account: alice, wantLocked: true},
			{remote: nat, what: "wrong", account: alice, wantLocked: true},
			{remote: nat, what: "wrong", account: alice, wantLocked: true, wantSlowed: true},
		}},
		{"the address limit off", Config{MaxFailures: 3, MaxAddressFailures: -1}, concat(
			repeat(100, step{remote: nat, what: "unknown"}),
			[]step{{remote: nat, what: "right", account: alice}},
		)},
		{"the account limit off", Config{MaxFailures: -1, MaxAddressFailures: -1}, concat(
			repeat(100, step{remote: nat, what: "wrong", account: alice}),
			[]step{{remote: nat, what: "right", account: alice}},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktest.New(t0)
			cfg := tt.cfg
			cfg.Now = clock.Now
			cfg.Delay = time.Nanosecond // the slowed steps' refusals; TestSlowedAddress times them
			run(t, New(cfg), clock, tt.steps)
		})
	}
}

func TestDefaults(t *testing.T) {
	l := New(Config{})
	if l.cfg.MaxFailures != 5 || l.cfg.MaxAddressFailures != 20 || l.cfg.Window != 15*time.Minute || l.cfg.Lockout != 15*time.Minute ||
		l.cfg.Delay != time.Second || l.cfg.MaxDelayed != 4 {
		t.Errorf("New(Config{}) = %+v, want 5, 20, 15m, 15m, 1s, 4", l.cfg)
	}
	if l := New(Config{MaxFailures: 3}); l.cfg.MaxAddressFailures != 12 {
		t.Errorf("MaxAddressFailures with MaxFailures 3 = %d, want 12", l.cfg.MaxAddressFailures)
	}
}

// TestSlowedAddress checks what a slowed address gets, on synctest's fake
// clock: refusals held back for Delay, at most MaxDelayed at once, ErrBusy
// beyond, right passwords at once; and that the slots come back.
func TestSlowedAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const nat = "192.0.2.1"
		l := New(Config{MaxAddressFailures: 1, MaxDelayed: 2, Delay: time.Second})
		guess := func(ctx context.Context) error {
			a, err := l.Begin(nat)
			if err != nil {
				return err
			}
			a.Fail(ctx, Failure{Reason: errors.New("unknown user")})
			return nil
		}
		start := time.Now()
		if err := guess(t.Context()); err != nil || time.Since(start) != 0 {
			t.Fatalf("first guess = %v after %v, want a refusal at once", err, time.Since(start))
		}
		if !l.Slowed(nat) {
			t.Fatal("address not slowed after MaxAddressFailures guesses")
		}

		// Two guesses are held back; a third is busy; a right password
		// signs in at once.
		var wg sync.WaitGroup
		done := make([]time.Duration, 2)
		for i := range 2 {
			wg.Go(func() {
				if err := guess(t.Context()); err != nil {
					t.Errorf("held guess %d: %v", i, err)
				}
				done[i] = time.Since(start)
			})
		}
		synctest.Wait()
		if err := guess(t.Context()); !errors.Is(err, ErrBusy) {
			t.Errorf("third guess while two are held = %v, want ErrBusy", err)
		}
		if _, err := l.Begin("192.0.2.2"); err != nil {
			t.Errorf("another address while %s is busy: %v", nat, err)
		}
		wg.Wait()
		for i, d := range done {
			if d != time.Second {
				t.Errorf("held guess %d answered after %v, want Delay, 1s", i, d)
			}
		}
		// The slots are back: a right password signs in without waiting.
		a, err := l.Begin(nat)
		if err != nil {
			t.Fatalf("Begin after the held refusals: %v", err)
		}
		before := time.Now()
		a.Succeed(`opendus\alice`)
		if time.Since(before) != 0 {
			t.Errorf("a right password from a slowed address waited %v", time.Since(before))
		}
		if l.total != 0 || len(l.delayed) != 0 {
			t.Errorf("after every attempt ended: %d held, per address %v; want none", l.total, l.delayed)
		}

		// A client that goes away frees its slot at once.
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		before = time.Now()
		if err := guess(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(before); d != 100*time.Millisecond {
			t.Errorf("held refusal of a client that left after 100ms ended after %v", d)
		}
		a, err = l.Begin(nat)
		if err != nil {
			t.Fatal(err)
		}
		a.Abandon()
		if l.total != 0 {
			t.Errorf("%d refusals held after Abandon, want 0", l.total)
		}
	})
}

// TestDelayedBounded checks that however many slowed addresses, no more
// than maxDelayedTotal refusals are held at once.
func TestDelayedBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(Config{MaxAddressFailures: 1, MaxDelayed: 4})
		var wg sync.WaitGroup
		busy := 0
		var mu sync.Mutex
		for i := range 200 {
			addr := fmt.Sprintf("198.51.100.%d", i)
			a, _ := l.Begin(addr)
			a.Fail(t.Context(), Failure{}) // slows addr at once
			for range 4 {
				a, err := l.Begin(addr)
				if err != nil {
					mu.Lock()
					busy++
					mu.Unlock()
					continue
				}
				wg.Go(func() { a.Fail(t.Context(), Failure{}) })
			}
		}
		synctest.Wait()
		l.mu.Lock()
		held := l.total
		l.mu.Unlock()
		if held != maxDelayedTotal || busy != 800-maxDelayedTotal {
			t.Errorf("%d held and %d busy of 800 guesses from 200 slowed addresses, want %d held", held, busy, maxDelayedTotal)
		}
		wg.Wait()
	})
}

func TestCounterBounded(t *testing.T) {
	c := newCounter(2, time.Minute, time.Hour, 100)
	for i := range 1000 {
		key := fmt.Sprint("k", i)
		c.fail(key, t0)
		c.fail(key, t0) // held
		if len(c.keys) > 100 {
			t.Fatalf("after %d keys the counter holds %d, want at most 100", i+1, len(c.keys))
		}
	}
	if !c.held("k999", t0) {
		t.Errorf("the newest key is not held")
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	l := New(Config{Now: clocktest.New(t0).Now})
	for i := range 3 * maxKeys / 2 {
		a, _ := l.Begin(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		a.Fail(t.Context(), Failure{Account: fmt.Sprint("u", i), WrongPassword: true})
	}
	if len(l.accounts.keys) > maxKeys || len(l.addrs.keys) > maxKeys {
		t.Errorf("after %d accounts and addresses: %d accounts, %d addresses remembered; want at most %d each",
			3*maxKeys/2, len(l.accounts.keys), len(l.addrs.keys), maxKeys)
	}
}

// logLines is a slog handler that keeps each record as "msg key=value ...".
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (h *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *logLines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logLines) WithGroup(string) slog.Handler            { return h }
func (h *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, b.String())
	return nil
}

func (h *logLines) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.lines
	h.lines = nil
	return l
}

// count returns how many lines start with msg.
func count(lines []string, msg string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, msg+" ") {
			n++
		}
	}
	return n
}

func TestRefusalLog(t *testing.T) {
	clock := clocktest.New(t0)
	h := &logLines{}
	l := New(Config{Now: clock.Now, MaxFailures: 3, MaxAddressFailures: 20, Logger: slog.New(h), Delay: time.Nanosecond})
	fail := func(remote, account string, wrong bool) {
		a, err := l.Begin(remote)
		if err != nil {
			t.Fatal(err)
		}
		a.Fail(t.Context(), Failure{Via: "ntlm", User: "x", Account: account, WrongPassword: wrong, Reason: errWrong})
	}

	// A flood from one address: 20 malformed messages and 30 unknown
	// users are one refusal line and the slowing.
	for range 20 {
		l.Malformed("192.0.2.1", "ntlm", "", errors.New("malformed"))
	}
	for range 30 {
		fail("192.0.2.1", "", false)
	}
	lines := h.take()
	if got := count(lines, "sign-in refused"); got != 1 {
		t.Errorf("50 refusals from one address in a minute: %d refusal lines, want 1:\n%s", got, strings.Join(lines, "\n"))
	}
	if got := count(lines, "sign-in: address slowed"); got != 1 {
		t.Errorf("%d lines announce the slowing, want 1:\n%s", got, strings.Join(lines, "\n"))
	}

	// Wrong passwords for an account get a line of their own, and the
	// lockout a warning.
	for range 3 {
		fail("192.0.2.1", `opendus\alice`, true)
	}
	lines = h.take()
	if count(lines, "sign-in refused") != 1 || count(lines, "sign-in: account locked") != 1 {
		t.Errorf("three wrong passwords for alice: want one refusal line and one lockout:\n%s", strings.Join(lines, "\n"))
	}

	// The next minute: the summary counts what was not logged.
	clock.Advance(time.Minute)
	fail("192.0.2.1", "", false)
	lines = h.take()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "sign-in refusals refused=51 addresses=1 busiest=192.0.2.1 busiest_refused=51") ||
		!strings.HasPrefix(lines[1], "sign-in refused ") {
		t.Errorf("a minute later: want the summary of the 51 refusals not logged, then the refusal:\n%s", strings.Join(lines, "\n"))
	}

	// Many addresses: at most maxLinesPerPeriod lines a minute.
	clock.Advance(time.Minute)
	h.take()
	for i := range 1000 {
		l.Malformed(fmt.Sprintf("198.51.%d.%d", i/250, i%250), "basic", "", errors.New("malformed"))
	}
	if got := len(h.take()); got != maxLinesPerPeriod {
		t.Errorf("1000 refusals from 1000 addresses: %d lines, want %d", got, maxLinesPerPeriod)
	}
	clock.Advance(time.Minute)
	l.Malformed("192.0.2.1", "basic", "", errors.New("malformed"))
	if lines := h.take(); len(lines) != 2 || !strings.HasPrefix(lines[0], "sign-in refusals refused=900 addresses=900 ") {
		t.Errorf("the minute after: want the summary of 900 refusals from 900 addresses, then the refusal:\n%s", strings.Join(lines, "\n"))
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &logLines{}
		l := New(Config{Logger: slog.New(h)})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		for range 10 {
			l.Malformed("192.0.2.1", "ntlm", "", errors.New("malformed"))
		}
		time.Sleep(logPeriod + time.Second)
		synctest.Wait()
		lines := h.take()
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "sign-in refusals refused=9 ") {
			t.Errorf("a minute after 10 refusals: want the first and a summary of 9:\n%s", strings.Join(lines, "\n"))
		}
		l.Malformed("192.0.2.1", "ntlm", "", errors.New("malformed"))
		l.Malformed("192.0.2.1", "ntlm", "", errors.New("malformed"))
		cancel()
		<-done
		if lines := h.take(); len(lines) != 2 || !strings.HasPrefix(lines[1], "sign-in refusals refused=1 ") {
			t.Errorf("Run's end: want the last summary:\n%s", strings.Join(lines, "\n"))
		}
	})
}

func TestAccountKey(t *testing.T) {
	if a, b := AccountKey("OPENDUS", "Alice"), AccountKey("opendus", "alice"); a != b || a != `opendus\alice` {
		t.Errorf("AccountKey = %q and %q, want both opendus\\alice", a, b)
	}
}

// TestStats checks the counts a Limiter keeps for metrics: refusals and
// malformed messages by sign-in, lockouts, slowed addresses and busy
// refusals.
func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(Config{MaxFailures: 2, MaxAddressFailures: 3, MaxDelayed: 1, Delay: time.Second})
		const nat = "192.0.2.1"
		fail := func(via, account string) {
			a, err := l.Begin(nat)
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			a.Fail(t.Context(), Failure{Via: via, Account: account, WrongPassword: account != "", Reason: errWrong})
		}
		fail("ntlm", `opendus\alice`)
		fail("basic", `opendus\alice`) // locks alice
		fail("basic", "")              // slows the address
		l.Malformed(nat, "ntlm", "", errors.New("malformed"))
		// A slowed address with its one delay slot taken: busy.
		a, err := l.Begin(nat)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Begin(nat); !errors.Is(err, ErrBusy) {
			t.Fatalf("Begin with the slot taken = %v, want ErrBusy", err)
		}
		a.Abandon()
		got := l.Stats()
		want := Stats{Refused: map[string]uint64{"ntlm": 1, "basic": 2}, Malformed: map[string]uint64{"ntlm": 1}, Lockouts: 1, Slowed: 1, Busy: 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
		got.Refused["ntlm"] = 99
		if l.Stats().Refused["ntlm"] != 1 {
			t.Error("changing the map Stats returned changed the Limiter's counts")
		}
	})
}

// TestReconfigure checks that new limits apply to what was counted
// before: failures in the window count against the new limit, a lockout
// keeps its end, and the trusted proxies change.
func TestReconfigure(t *testing.T) {
	clock := clocktest.New(t0)
	const alice, bob, nat = `opendus\alice`, `opendus\bob`, "192.0.2.1"
	l := New(Config{MaxFailures: 5, Lockout: 10 * time.Minute, Now: clock.Now, Delay: time.Nanosecond})
	run(t, l, clock, []step{
		{remote: nat, what: "wrong", account: alice},
		{remote: nat, what: "wrong", account: alice},
		{remote: nat, what: "wrong", account: bob},
		{remote: nat, what: "wrong", account: bob},
		{remote: nat, what: "wrong", account: bob},
		{remote: nat, what: "wrong", account: bob},
		{remote: nat, what: "wrong", account: bob, wantLocked: true}, // locked until t0+10m
	})
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	l.Reconfigure(Config{MaxFailures: 3, MaxAddressFailures: -1, Lockout: time.Hour, TrustedProxies: []netip.Prefix{proxy}})
	run(t, l, clock, []step{
		{remote: nat, what: "wrong", account: alice, wantLocked: true},        // the third within the window: the new limit
		{advance: 10 * time.Minute, remote: nat, what: "right", account: bob}, // the lockout kept the end it had
		{remote: nat, what: "right", account: `opendus\carol`},
	})
	if !l.Locked(alice) {
		t.Error("alice is not locked by the new lockout of an hour")
	}
	r := &http.Request{RemoteAddr: "10.0.0.5:443", Header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}}
	if got := l.ClientAddress(r); got != "198.51.100.7" {
		t.Errorf("ClientAddress after trusting 10.0.0.0/8 = %q, want the forwarded client", got)
	}
	if l.cfg.Now == nil || l.cfg.Delay != DefaultDelay {
		t.Errorf("Reconfigure: Now kept = %v, Delay %v; want the clock kept and the default delay", l.cfg.Now != nil, l.cfg.Delay)
	}
}
