package ntlm

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
)

// BenchmarkHandshake measures full sign-ins over new TLS connections, as
// devsvc's edge serves them: the service's own certificate (ECDSA P-256,
// from the certs package), a new transport each iteration, the three NTLM
// messages with the go-ntlmssp client. go-ntlmssp sends its first
// anonymous request on a connection it keeps busy, so a sign-in costs it
// two TLS handshakes; tls-conns/op reports how many the server saw.
func BenchmarkHandshake(b *testing.B) {
	e := newTestEnvTLS(b, Config{Now: timeNow})
	var conns atomic.Int64
	e.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	start := time.Now()
	for b.Loop() {
		tr := &http.Transport{TLSClientConfig: e.deviceTLS.Clone()}
		client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: tr}}
		req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, e.srv.URL+"/catalogue", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.SetBasicAuth("alice", "correct horse")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		tr.CloseIdleConnections()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
	b.ReportMetric(float64(conns.Load())/float64(b.N), "tls-conns/op")
}

// newTestEnvTLS is newTestEnv serving with the certs package's server
// configuration and certificate; deviceTLS trusts it.
func newTestEnvTLS(b *testing.B, cfg Config) *testEnv {
	cs := certstest.NewStore(b, certs.Config{})
	e := newTestEnvWith(b, cfg, cs.ServerTLSConfig(), nil)
	e.deviceTLS = cs.DeviceTLSConfig()
	e.deviceTLS.ServerName = "127.0.0.1"
	return e
}

// BenchmarkAuthenticate measures the acceptor alone: NEGOTIATE and a
// verified AUTHENTICATE with a MIC and key exchange, no network.
func BenchmarkAuthenticate(b *testing.B) {
	a := NewAcceptor(newMemAccounts(alice), Config{Now: func() time.Time { return testStart }})
	a.rand = zeroReader{}
	neg, auth := validAuthenticate(b)
	start := time.Now()
	for b.Loop() {
		// A fresh replay cache each time: the response is the same.
		a.replay = newReplayCache(time.Minute, 16)
		st := &connState{}
		if _, _, err := a.step(b.Context(), st, "192.0.2.1", neg); err != nil {
			b.Fatal(err)
		}
		if _, user, err := a.step(b.Context(), st, "192.0.2.1", auth); err != nil || user != "alice" {
			b.Fatalf("AUTHENTICATE: %q, %v", user, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}
