package provisioning_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/provisioning"

	"github.com/opendus/opendus/internal/clocktest"
)

// TestLockout: after MaxFailures failures within the window, the user and
// the address are refused even with the right password, with the answer of
// a wrong password, until the lockout is over.
func TestLockout(t *testing.T) {
	type attempt struct {
		remote, user, password string
		advance                time.Duration // before the attempt
		want                   int
	}
	const (
		alice = "alice"
		pw    = "Passw0rd!"
		addr1 = "192.0.2.1:50000"
		addr2 = "192.0.2.2:50000"
		v6a   = "[2001:db8:1:2::a]:50000"
		v6b   = "[2001:db8:1:2::b]:50001"
		v6c   = "[2001:db8:1:3::a]:50000"
	)
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"user locked after 3 failures, from any address", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr2, alice, "y", 0, 401},
			{addr1, alice, "z", time.Minute, 401},
			{addr2, alice, pw, 0, 401}, // locked
			{"192.0.2.3:1", alice, pw, 9 * time.Minute, 401},
			{"192.0.2.3:1", alice, pw, time.Minute, 200}, // lockout over
		}},
		{"failures outside the window do not add up", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr1, alice, "y", 0, 401},
			{addr1, alice, "z", 10 * time.Minute, 401},
			{addr1, alice, pw, 0, 200},
		}},
		{"a success forgets the user's failures", []attempt{
			{addr1, alice, "x", 0, 401},
			{addr2, alice, pw, 0, 200},
			{addr2, alice, "y", 0, 401},
			{addr2, alice, pw, 0, 200},
		}},
		{"address locked for every user, IPv6 by /64", []attempt{
			{v6a, "mallory", "x", 0, 401},
			{v6b, "trudy", "x", 0, 401},
			{v6a, "eve", "x", 0, 401},
			{v6b, alice, pw, 0, 401}, // same /64
			{v6c, alice, pw, 0, 200}, // another /64
		}},
		{"malformed headers count for the address", []attempt{
			{addr1, "", "", 0, 401},
			{addr1, "", "", 0, 401},
			{addr1, "", "", 0, 401},
			{addr1, alice, pw, 0, 401},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &clocktest.Clock{T: t0}
			cfg := testConfig(directory{users: testUsers}.authenticator(), io.Discard)
			cfg.Now = clock.Now
			cfg.MaxFailures, cfg.FailureWindow, cfg.Lockout = 3, 10*time.Minute, 10*time.Minute
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
		})
	}
}
