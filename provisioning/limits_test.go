package provisioning_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
	"github.com/opendus/opendus/signin"
)

// TestLockout: MaxFailures wrong passwords within the window lock the
// account, from every address, with the answer of a wrong password, until
// the lockout is over; nothing that names no account locks anything.
func TestLockout(t *testing.T) {
	type attempt struct {
		remote, user, password string // user "": a malformed header
		advance                time.Duration
		want                   int
	}
	const (
		alice = "alice"
		pw    = "Passw0rd!"
		addr1 = "192.0.2.1:50000"
		addr2 = "192.0.2.2:50000"
		v6a   = "[2001:db8:1:2::a]:50000"
		v6b   = "[2001:db8:1:2::b]:50001"
	)
	tests := []struct {
		name       string
		attempts   []attempt
		wantSlowed []string // address keys slowed at the end
	}{
		{"user locked after 3 failures, from any address", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr2, alice, "y", 0, 401},
			{addr1, `CONTOSO\alice`, "z", time.Minute, 401}, // the same account, however named
			{addr2, alice, pw, 0, 401},                      // locked
			{"192.0.2.3:1", alice, pw, 9 * time.Minute, 401},
			{"192.0.2.3:1", alice, pw, time.Minute, 200}, // lockout over
		}, nil},
		{"failures outside the window do not add up", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr1, alice, "y", 0, 401},
			{addr1, alice, "z", 10 * time.Minute, 401},
			{addr1, alice, pw, 0, 200},
		}, nil},
		{"a success forgets the user's failures", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr2, alice, pw, 0, 200},
			{addr2, alice, "y", 0, 401},
			{addr2, alice, pw, 0, 200},
		}, nil},
		{"guesses at other users slow the address, IPv6 by /64, and lock no one", []attempt{
			{v6a, "mallory", "x", 0, 401},
			{v6b, "trudy", "x", 0, 401},
			{v6a, "eve", "x", 0, 401},
			{v6b, alice, pw, 0, 200},
		}, []string{"2001:db8:1:2::/64"}},
		{"malformed headers count nowhere", []attempt{
			{addr1, "", "", 0, 401},
			{addr1, "", "", 0, 401},
			{addr1, "", "", 0, 401},
			{addr1, "", "", 0, 401},
			{addr1, alice, pw, 0, 200},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &clocktest.Clock{T: t0}
			cfg := testConfig(directory{users: testUsers}.authenticator(), io.Discard)
			cfg.Now = clock.Now
			cfg.Limiter = signin.New(signin.Config{Now: clock.Now, MaxFailures: 3, MaxAddressFailures: 3, Window: 10 * time.Minute,
				Lockout: 10 * time.Minute, Delay: time.Nanosecond})
			h := provisioning.NewHandler(cfg)
			var refusal string
			for i, a := range tt.attempts {
				clock.Advance(a.advance)
				req := httptest.NewRequest(http.MethodPost, provisioning.Path, nil)
				req.TLS = &tls.ConnectionState{}
				req.RemoteAddr = a.remote
				if a.user != "" {
					req.SetBasicAuth(a.user, a.password)
				} else {
					req.Header.Set("Authorization", "Basic !")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != a.want {
					t.Fatalf("attempt %d (%s %s/%s) = %d, want %d", i, a.remote, a.user, a.password, rec.Code, a.want)
				}
				if rec.Code == 401 {
					got := rec.Header().Get("WWW-Authenticate") + "|" + rec.Header().Get("Connection") + "|" + rec.Body.String()
					if refusal == "" {
						refusal = got
					} else if got != refusal {
						t.Errorf("attempt %d: refusal %q differs from %q", i, got, refusal)
					}
				}
			}
			for _, a := range tt.wantSlowed {
				if !cfg.Limiter.Slowed(a) {
					t.Errorf("address %s is not slowed", a)
				}
			}
		})
	}
}

// TestSharedLimiter: the Basic sign-in and the NTLM acceptor of one
// service count against one limiter, so wrong passwords through either
// lock the account in both, and only that account.
func TestSharedLimiter(t *testing.T) {
	lim := signin.New(signin.Config{MaxFailures: 3})
	basicURL, basic := basicServer(t, func() provisioning.Config {
		c := testConfig(directory{users: testUsers}.authenticator(), io.Discard)
		c.Limiter = lim
		return c
	}())
	ntlmURL, newNTLM := ntlmServerWith(t, provisioning.NewHandler(testConfig(nil, io.Discard)), ntlm.Config{Limiter: lim})
	signIn := func(t *testing.T, viaNTLM bool, user, password string) int {
		t.Helper()
		url, c := basicURL, basic
		if viaNTLM {
			url, c = ntlmURL+provisioning.Path, newNTLM()
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, password)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readReply(t, resp).Status
	}
	for i, viaNTLM := range []bool{true, false, true} {
		if code := signIn(t, viaNTLM, "alice", "wrong"); code != 401 {
			t.Fatalf("wrong password %d = %d, want 401", i, code)
		}
	}
	if code := signIn(t, false, "alice", "Passw0rd!"); code != 401 {
		t.Errorf("Basic: alice's right password after three wrong ones through both sign-ins = %d, want 401", code)
	}
	if code := signIn(t, true, `CONTOSO\alice`, "Passw0rd!"); code != 401 {
		t.Errorf("NTLM: alice's right password after three wrong ones through both sign-ins = %d, want 401", code)
	}
	if !lim.Locked(signin.AccountKey("CONTOSO", "alice")) {
		t.Errorf("the limiter does not have alice locked")
	}
	if code := signIn(t, false, "carol", "Carol's secret"); code != 200 {
		t.Errorf("Basic: carol = %d, want 200 (only alice is locked)", code)
	}
	if code := signIn(t, true, "carol", "Carol's secret"); code != 200 {
		t.Errorf("NTLM: carol = %d, want 200 (only alice is locked)", code)
	}
}

// TestBusy: a slowed address whose held refusals are all pending gets
// 503 with Retry-After, and its credentials are not checked.
func TestBusy(t *testing.T) {
	calls := 0
	cfg := testConfig(authFunc(func(context.Context, string, string) (string, error) { calls++; return "", nil }), io.Discard)
	cfg.Limiter = signin.New(signin.Config{MaxAddressFailures: 1, MaxDelayed: 1, Delay: time.Hour})
	first, _ := cfg.Limiter.Begin("192.0.2.1")
	first.Fail(t.Context(), signin.Failure{}) // slows the address
	held, err := cfg.Limiter.Begin("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Abandon()
	req := httptest.NewRequest(http.MethodPost, provisioning.Path, nil)
	req.TLS = &tls.ConnectionState{}
	req.RemoteAddr = "192.0.2.1:1234"
	req.SetBasicAuth("alice", "Passw0rd!")
	rec := httptest.NewRecorder()
	provisioning.NewHandler(cfg).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || calls != 0 {
		t.Errorf("sign-in from a busy address = %d, Retry-After %q, %d checks; want 503, 1, none", rec.Code, rec.Header().Get("Retry-After"), calls)
	}
}
