package simulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLANClientReusesConnections: a body read to its end gives its
// connection back for the next exchange; one closed before it ends, or an
// answer with Connection: close, closes it; a connection the server
// closed while idle is found dead and the exchange fails (do retries).
func TestLANClientReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			io.WriteString(w, strings.Repeat("x", 100<<10))
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/post":
			b, _ := io.ReadAll(r.Body)
			if r.Header.Get("Content-Type") != "application/xml; charset=utf-8" || r.Header.Get("X-Test") != "1" {
				w.WriteHeader(http.StatusBadRequest)
			}
			w.Write(b)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var d net.Dialer
	lc := newLANClient(d.DialContext, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}, 4)
	defer lc.closeIdle()
	url := strings.Replace(srv.URL, "127.0.0.1", "example.com", 1) // the certificate's name
	lc.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	get := func(path string, body []byte, read bool) string {
		t.Helper()
		method := http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
		resp, err := lc.do(context.Background(), method, url+path, body, "test", []string{"X-Test", "1"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var got []byte
		if read {
			got, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		return string(got)
	}
	steps := []struct {
		path  string
		body  []byte
		read  bool
		want  string
		conns int32 // opened so far
	}{
		{"/", nil, true, "", 1},
		{"/", nil, false, "", 1}, // an empty body ends at once
		{"/post", []byte("<a/>"), true, "<a/>", 1},
		{"/big", nil, true, strings.Repeat("x", 100<<10), 1},
		{"/big", nil, false, "", 1}, // not read: closed
		{"/", nil, true, "", 2},
		{"/close", nil, true, "bye", 2}, // Connection: close
		{"/", nil, true, "", 3},
	}
	for i, s := range steps {
		if got := get(s.path, s.body, s.read); got != s.want {
			t.Errorf("step %d %s: body %.20q, want %.20q", i, s.path, got, s.want)
		}
		if n := conns.Load(); n != s.conns {
			t.Errorf("after step %d %s: %d connections opened, want %d", i, s.path, n, s.conns)
		}
	}
	// The server closes its idle connections: the next exchange on the
	// one kept fails, and the one after dials again.
	srv.CloseClientConnections()
	if _, err := lc.do(context.Background(), http.MethodGet, url+"/", nil, "test", nil); err == nil {
		t.Error("an exchange on a connection the server closed succeeded")
	}
	if got := get("/", nil, true); got != "" || conns.Load() != 4 {
		t.Errorf("after the server closed: %d connections opened, want 4", conns.Load())
	}
}
