// Package certstest gives tests of other packages real certificates and
// real TLS servers from package certs, so that they exercise the same TLS
// configuration that devsvc serves.
//
// Use NewServer rather than httptest.NewTLSServer or
// httptest.Server.StartTLS: StartTLS puts its own certificate in
// tls.Config.Certificates, and crypto/tls then presents that certificate,
// not the Store's, to every client that sends no server name, which is
// every client dialing an IP address such as the server's URL.
package certstest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
)

// Domain and HostName are the defaults NewStore fills in.
const (
	Domain   = "contoso.com"
	HostName = "testhost"
)

// NewStore bootstraps a certificate directory under tb.TempDir() and
// returns it. An empty cfg.Domain becomes Domain and an empty cfg.HostName
// becomes HostName, so that the server certificate covers
// ucupdates-r2.contoso.com, testhost, localhost, 127.0.0.1 and ::1 whatever
// machine runs the test.
func NewStore(tb testing.TB, cfg certs.Config) *certs.Store {
	tb.Helper()
	if cfg.Domain == "" {
		cfg.Domain = Domain
	}
	if cfg.HostName == "" {
		cfg.HostName = HostName
	}
	s, err := certs.Bootstrap(filepath.Join(tb.TempDir(), "certs"), cfg)
	if err != nil {
		tb.Fatalf("certstest: %v", err)
	}
	return s
}

// NewServer starts an HTTPS server on loopback that serves h with cfg
// (for example store.ServerTLSConfig() or store.AdminServerTLSConfig())
// unchanged, and closes it when the test ends. Its URL is
// https://127.0.0.1:port. Reach it with a client built from
// store.DeviceTLSConfig() or store.ClientTLSConfig, or with Client; its
// Client method does not trust the Store's CA. Refused handshakes are not
// logged.
func NewServer(tb testing.TB, cfg *tls.Config, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
	tb.Cleanup(srv.Close)
	return srv
}

// Client returns an HTTP client with TLS configuration cfg that connects
// every request to addr (host:port), whatever host its URL names; the TLS
// layer still verifies the URL's host against the server certificate. Use
// it to test names such as https://ucupdates-r2.contoso.com:port/ without
// DNS.
func Client(cfg *tls.Config, addr string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: cfg,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}
