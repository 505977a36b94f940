package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/testtool"
)

// run runs an external program and returns its combined output, failing
// the test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serve starts an HTTPS server on loopback with cfg and returns its
// address. The handler answers with the client's name and role, if it
// presented a certificate. httptest.Server.StartTLS would install its own
// certificate in cfg.Certificates, which hides GetCertificate from clients
// that send no SNI (those dialing an IP address), so the TLS listener is
// set up here instead.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			name, role := ClientIdentity(r.TLS.PeerCertificates[0])
			fmt.Fprintf(w, "%s/%s", name, role)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// client returns an HTTP client with cfg that connects every request to
// addr, whatever host its URL names, so that the TLS layer verifies that
// name.
func client(cfg *tls.Config, addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: cfg,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			ForceAttemptHTTP2: false,
		},
	}
}

// get fetches https://host:port/ through c and returns the body and the
// server's leaf certificate.
func get(c *http.Client, host, addr string) (string, *x509.Certificate, error) {
	_, port, _ := net.SplitHostPort(addr)
	resp, err := c.Get("https://" + net.JoinHostPort(host, port) + "/")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("status %s", resp.Status)
	}
	return string(body), resp.TLS.PeerCertificates[0], nil
}

func TestDeviceConnects(t *testing.T) {
	s := bootstrap(t, testConfig())
	addr := serve(t, s.ServerTLSConfig())
	hosts := []string{"localhost", "127.0.0.1", "::1", "ucupdates-r2.contoso.com", "ucupdates.contoso.com", "upd1.contoso.com", "upd1", "UCUPDATES-R2.CONTOSO.COM"}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := s.DeviceTLSConfig()
		cfg.MaxVersion = version
		c := client(cfg, addr)
		for _, host := range hosts {
			t.Run(tls.VersionName(version)+"/"+host, func(t *testing.T) {
				body, leaf, err := get(c, host, addr)
				if err != nil {
					t.Fatalf("GET via %s: %v", host, err)
				}
				if body != "ok" {
					t.Errorf("GET via %s = %q, want ok", host, body)
				}
				if !leaf.Equal(s.ServerCertificate()) {
					t.Errorf("GET via %s: server presented serial %x, want %x", host, leaf.SerialNumber, s.ServerCertificate().SerialNumber)
				}
			})
		}
	}
}

func TestDeviceRefuses(t *testing.T) {
	s := bootstrap(t, testConfig())
	foreign := bootstrap(t, testConfig())

	// A server certificate that expired a year ago, under a CA still valid.
	pastCfg := testConfig()
	pastCfg.Now = fixedClock(time.Now().AddDate(-2, 0, 0))
	pastCfg.ServerValidity = 365 * 24 * time.Hour
	past := bootstrap(t, pastCfg)
	pastNow, err := Open(past.Dir(), Config{}) // the device's clock is right
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		server *Store // whose server certificate is presented
		device *Store // whose CA the device trusts
		host   string
		check  func(error) bool
	}{
		{"foreign CA", foreign, s, "ucupdates-r2.contoso.com", func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
		{"expired server certificate", past, pastNow, "ucupdates-r2.contoso.com", func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{"name not in certificate", s, s, "evil.contoso.com", func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{"IP not in certificate", s, s, "127.0.0.2", func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.server.ServerTLSConfig())
			_, _, err := get(client(tt.device.DeviceTLSConfig(), addr), tt.host, addr)
			if err == nil || !tt.check(err) {
				t.Errorf("GET via %s = %v, want a %s verification error", tt.host, err, tt.name)
			}
		})
	}
}

func TestAdminMTLS(t *testing.T) {
	s := bootstrap(t, testConfig())
	foreign := bootstrap(t, testConfig())
	addr := serve(t, s.AdminServerTLSConfig())

	certPEM, keyPEM, err := s.IssueClient("alice", "operator")
	if err != nil {
		t.Fatal(err)
	}
	writeClient(t, s.Dir(), "alice", certPEM, keyPEM)
	foreignCert, foreignKey, err := foreign.IssueClient("mallory", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	writeClient(t, s.Dir(), "mallory", foreignCert, foreignKey)

	adminCfg := mustClientConfig(t, s, "")
	aliceCfg := mustClientConfig(t, s, "alice")
	noCert := s.DeviceTLSConfig()
	noCert.MinVersion = tls.VersionTLS13
	// A foreign CA's admin certificate, trusting our CA for the server.
	foreignCfg := mustClientConfig(t, foreign, "")
	foreignCfg.RootCAs = s.CertPool()
	// Our server certificate used as a client certificate: wrong usage.
	srvPair := *s.server.Load()
	wrongUsage := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: s.CertPool(), Certificates: []tls.Certificate{srvPair}}

	tests := []struct {
		name     string
		cfg      *tls.Config
		wantBody string // "" means the request must fail
	}{
		{"admin certificate", adminCfg, "admin/admin"},
		{"issued client certificate", aliceCfg, "alice/operator"},
		{"no client certificate", noCert, ""},
		{"foreign CA", foreignCfg, ""},
		{"server certificate as client", wrongUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _, err := get(client(tt.cfg, addr), "localhost", addr)
			switch {
			case tt.wantBody == "" && err == nil:
				t.Errorf("GET = %q, want a handshake failure", body)
			case tt.wantBody != "" && err != nil:
				t.Errorf("GET: %v, want %q", err, tt.wantBody)
			case body != tt.wantBody:
				t.Errorf("GET = %q, want %q", body, tt.wantBody)
			}
		})
	}

	if _, err := s.ClientTLSConfig("mallory"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ClientTLSConfig(mallory) = %v, want ErrCorrupt (foreign CA)", err)
	}
	if _, err := s.ClientTLSConfig("nobody"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ClientTLSConfig(nobody) = %v, want fs.ErrNotExist", err)
	}
	for _, name := range []string{"server", "ca", "../admin", ".hidden"} {
		if _, err := s.ClientTLSConfig(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ClientTLSConfig(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestClientTLSConfigExpired(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cfg := testConfig()
	cfg.Now = func() time.Time { return clock }
	s := bootstrap(t, cfg)
	clock = now.Add(DefaultClientValidity + time.Second)
	if _, err := s.ClientTLSConfig(""); !errors.Is(err, ErrExpired) {
		t.Errorf("ClientTLSConfig of an expired admin certificate = %v, want ErrExpired", err)
	}
}

func writeClient(t *testing.T, dir, name string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustClientConfig(t *testing.T, s *Store, name string) *tls.Config {
	t.Helper()
	cfg, err := s.ClientTLSConfig(name)
	if err != nil {
		t.Fatalf("ClientTLSConfig(%q): %v", name, err)
	}
	return cfg
}

// TestRenewUnderLoad renews the server certificate while keep-alive
// clients hammer the server, some reconnecting now and then: no request may
// fail, connections opened before the renewal keep working, and new
// handshakes see the new serial.
func TestRenewUnderLoad(t *testing.T) {
	const (
		workers  = 8
		requests = 150 // per worker
	)
	s := bootstrap(t, testConfig())
	addr := serve(t, s.ServerTLSConfig())
	oldSerial := s.ServerCertificate().SerialNumber.Text(16)

	var (
		done      atomic.Int64          // requests completed
		halfway   = make(chan struct{}) // closed when half the requests are done
		renewed   = make(chan struct{}) // closed after RenewServer
		newSerial string
		mu        sync.Mutex
		failures  []error
		afterOld  int // requests after the renewal answered on an old connection
		afterNew  int // requests after the renewal answered on a new connection
		wg        sync.WaitGroup
	)
	for w := range workers {
		c := client(s.DeviceTLSConfig(), addr) // one keep-alive connection per worker
		defer c.CloseIdleConnections()
		wg.Go(func() {
			// Each worker goes on past requests until it has made 30
			// after the renewal (which may end late on a loaded machine),
			// so that both kinds of connection are seen after it.
			post := 0
			for i := 0; i < requests || post < 30; i++ {
				if i >= 100*requests {
					mu.Lock()
					failures = append(failures, fmt.Errorf("worker %d: the renewal did not end within %d requests", w, i))
					mu.Unlock()
					return
				}
				if w%2 == 1 && i%25 == 24 {
					c.CloseIdleConnections() // odd workers reconnect now and then
				}
				after := isClosed(renewed)
				if after {
					post++
				}
				_, leaf, err := get(c, "ucupdates-r2.contoso.com", addr)
				if done.Add(1) == workers*requests/2 {
					close(halfway)
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Errorf("worker %d request %d: %w", w, i, err))
				} else if after && leaf.SerialNumber.Text(16) == oldSerial {
					afterOld++
				} else if after {
					afterNew++
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		<-halfway
		info, err := s.RenewServer(RenewOptions{})
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Errorf("RenewServer: %w", err))
			mu.Unlock()
		}
		newSerial = info.Serial
		close(renewed)
	})
	wg.Wait()

	for _, err := range failures {
		t.Error(err)
	}
	if newSerial == "" || newSerial == oldSerial {
		t.Fatalf("renewal serial %q, old %q: want a new one", newSerial, oldSerial)
	}
	if afterOld == 0 {
		t.Errorf("no request after the renewal used a connection opened before it; keep-alive did not hold")
	}
	if afterNew == 0 {
		t.Errorf("no request after the renewal saw the new certificate")
	}
	// Fresh handshakes (a new client has no connections) see the new serial.
	for i := range 3 {
		_, leaf, err := get(client(s.DeviceTLSConfig(), addr), "localhost", addr)
		if err != nil {
			t.Fatalf("GET after renewal: %v", err)
		}
		if got := leaf.SerialNumber.Text(16); got != newSerial {
			t.Errorf("handshake %d after renewal: serial %s, want %s", i, got, newSerial)
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestCurlTrustsCA(t *testing.T) {
	curl := testtool.Need(t, "curl")
	s := bootstrap(t, testConfig())
	dir := s.Dir()
	tests := []struct {
		name string
		cfg  *tls.Config
		args []string
		want string
	}{
		{"device", s.ServerTLSConfig(), nil, "ok"},
		{"admin", s.AdminServerTLSConfig(), []string{"--cert", filepath.Join(dir, AdminCertFile), "--key", filepath.Join(dir, AdminKeyFile)}, "admin/admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.cfg)
			_, port, _ := net.SplitHostPort(addr)
			args := append([]string{"-sS", "--fail", "--max-time", "10", "--cacert", filepath.Join(dir, CACertFile),
				"--resolve", "ucupdates-r2.contoso.com:" + port + ":127.0.0.1"}, tt.args...)
			args = append(args, "https://ucupdates-r2.contoso.com:"+port+"/")
			if got := run(t, curl, args...); got != tt.want {
				t.Errorf("curl = %q, want %q", got, tt.want)
			}
		})
	}
}
