package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServerTLSConfig returns the TLS configuration for the device-facing
// server. Its GetCertificate returns the current server certificate on
// every handshake, so renewals take effect without a restart.
//
// Do not set Certificates on the result: crypto/tls consults
// GetCertificate only when Certificates is empty or the client sent a
// server name (SNI), and clients that connect to an IP address send none.
// For the same reason, httptest.Server.StartTLS, which fills Certificates
// with its own certificate, cannot serve it; use http.Server.ServeTLS(ln,
// "", "") or tls.NewListener instead, and certstest.NewServer in tests.
func (s *Store) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
	}
}

// AdminServerTLSConfig returns the TLS configuration for the admin API:
// the current server certificate, as ServerTLSConfig, and a required client
// certificate that chains to the CA and allows client authentication. Use
// ClientIdentity on the verified peer certificate to authorise requests.
func (s *Store) AdminServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: s.getCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      s.CertPool(),
	}
}

// DeviceTLSConfig returns the TLS configuration that device code (and the
// device simulator) uses to reach the service: it trusts only the CA and
// verifies the server's name against the host it dials, at the Store's
// clock.
func (s *Store) DeviceTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    s.CertPool(),
		Time:       s.cfg.Now,
	}
}

// ClientTLSConfig returns the TLS configuration the admin CLI uses to reach
// the admin API with the client certificate name (files name.pem and
// name.key in the directory; "" means "admin"). It trusts only the CA. It
// returns an error wrapping fs.ErrNotExist if the files are missing,
// ErrCorrupt if they are not a client certificate of this CA with its key,
// and ErrExpired if the certificate has expired.
func (s *Store) ClientTLSConfig(name string) (*tls.Config, error) {
	if name == "" {
		name = "admin"
	}
	if strings.ContainsAny(name, `/\`) || name == "ca" || name == "server" || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("certs: client certificate %q: %w", name, ErrInvalidName)
	}
	certPath := filepath.Join(s.dir, name+".pem")
	certPEM, err := os.ReadFile(certPath)
	if err == nil {
		var keyPEM []byte
		keyPEM, err = readKeyFile(filepath.Join(s.dir, name+".key"))
		if err == nil {
			return s.clientConfig(certPath, certPEM, keyPEM)
		}
	}
	return nil, fmt.Errorf("certs: client certificate %q: %w", name, err)
}

func (s *Store) clientConfig(path string, certPEM, keyPEM []byte) (*tls.Config, error) {
	pair, err := s.checkPair(certPEM, keyPEM, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	if !s.now().Before(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("certs: %s: expired %s: %w", path, pair.Leaf.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*pair},
		RootCAs:      s.CertPool(),
		Time:         s.cfg.Now,
	}, nil
}

func (s *Store) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.server.Load(), nil
}

// ServerCertificate returns the server certificate currently in use.
func (s *Store) ServerCertificate() *x509.Certificate {
	return s.server.Load().Leaf
}

// AdminCertificate returns the admin client certificate of the directory
// (admin.pem, made by Bootstrap), or nil when it is absent.
func (s *Store) AdminCertificate() *x509.Certificate {
	return s.admin
}

// CACertificate returns the CA certificate.
func (s *Store) CACertificate() *x509.Certificate {
	return s.ca
}

// CertPool returns a new pool holding only the CA certificate.
func (s *Store) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca)
	return p
}
