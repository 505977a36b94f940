package directory

import (
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/signin"
)

// TestNTLM signs in with go-ntlmssp through a real ntlm.Acceptor that finds
// its accounts in slapd through a Directory, over the TLS configuration
// devsvc serves (HTTP/1.1: NTLM authenticates connections).
func TestNTLM(t *testing.T) {
	e := newEnv(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cfg := e.config(tr.startTLS)
			cfg.CacheTTL = -1 // the outage case below must reach slapd
			d := open(t, cfg)
			logs := &logRecorder{}
			// Every case comes from 127.0.0.1: no limits here.
			lim := signin.New(signin.Config{MaxFailures: -1, MaxAddressFailures: -1, Logger: slog.New(logs)})
			acc := ntlm.NewAcceptor(d, ntlm.Config{TargetName: "OPENDUS", Limiter: lim, Logger: slog.New(logs)})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				user, _ := ntlm.UserFrom(r.Context())
				io.WriteString(w, "hello "+user)
			})
			// As certstest.NewServer, plus the acceptor's ConnContext,
			// which must be set before the server starts.
			srv := httptest.NewUnstartedServer(acc.Require(h))
			srv.Config.ConnContext = acc.ConnContext
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Listener = tls.NewListener(srv.Listener, e.store.ServerTLSConfig())
			srv.Start()
			defer srv.Close()
			url := "https://" + srv.Listener.Addr().String() + "/"

			get := func(user, password string) (int, string) {
				t.Helper()
				tr := &http.Transport{TLSClientConfig: e.store.DeviceTLSConfig(), ForceAttemptHTTP2: false}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: tr}, Timeout: 30 * time.Second}
				req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.SetBasicAuth(user, password)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET as %s: %v", user, err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}

			tests := []struct {
				user, password string
				wantStatus     int
				wantBody       string
			}{
				{"alice", alice.Password, 200, "hello alice"},
				{`OPENDUS\ALICE`, alice.Password, 200, "hello alice"},
				{"alice@example.com", alice.Password, 200, "hello alice"},
				{"carol", carol.Password, 200, "hello carol"},
				{"alice", "wrong", 401, ""},
				{"bob", bob.Password, 401, ""},         // disabled
				{"mallory", mallory.Password, 401, ""}, // outside BaseDN
				{"nobody", "x", 401, ""},
				{"*", alice.Password, 401, ""},
				{`EVIL\alice`, alice.Password, 401, ""},
			}
			for _, tt := range tests {
				t.Run(tt.user, func(t *testing.T) {
					status, body := get(tt.user, tt.password)
					if status != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
						t.Errorf("GET as %s = %d %q, want %d %q", tt.user, status, body, tt.wantStatus, tt.wantBody)
					}
				})
			}
			if got := logs.find(slog.LevelInfo, "sign-in"); len(got) < 4 {
				t.Errorf("acceptor logged %d sign-ins, want at least 4", len(got))
			}

			// The directory is down: the acceptor answers 503 and logs an
			// outage, never a bad password.
			e.srv.Stop()
			defer e.srv.Restart()
			if status, body := get("dave", dave.Password); status != http.StatusServiceUnavailable {
				t.Errorf("GET as dave with slapd stopped = %d %q, want 503", status, body)
			}
			if got := logs.find(slog.LevelError, "lookup failed"); len(got) != 1 {
				t.Errorf("acceptor logged %d lookup failures, want 1", len(got))
			}
		})
	}
}
