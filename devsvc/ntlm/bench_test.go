package ntlm

import (
	"io"
	"net/http"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

// BenchmarkHandshake measures full sign-ins over new TLS connections:
// each iteration is a new transport, so a TLS handshake (two, since
// go-ntlmssp sends its first anonymous request on a connection it keeps
// busy) plus the three NTLM messages, with the go-ntlmssp client.
func BenchmarkHandshake(b *testing.B) {
	e := newTestEnv(b, Config{Now: timeNow})
	base := e.srv.Client().Transport.(*http.Transport)
	start := time.Now()
	for b.Loop() {
		tr := base.Clone()
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
		st := &connState{remote: "192.0.2.1"}
		if _, _, err := a.step(b.Context(), st, neg); err != nil {
			b.Fatal(err)
		}
		if _, user, err := a.step(b.Context(), st, auth); err != nil || user != "alice" {
			b.Fatalf("AUTHENTICATE: %q, %v", user, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}
