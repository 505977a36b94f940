package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Kinds of certificate in a CertInfo.
const (
	KindCA     = "ca"
	KindServer = "server"
	KindClient = "client"
)

// CertInfo describes a certificate for listings and warnings.
type CertInfo struct {
	Name        string       `json:"name"`        // file name without .pem: "ca", "server", "admin"
	Kind        string       `json:"kind"`        // KindCA, KindServer or KindClient
	Role        string       `json:"role"`        // a client's role (see ClientIdentity); empty otherwise
	Subject     string       `json:"subject"`     // RFC 2253 distinguished name
	DNSNames    []string     `json:"dnsNames"`    // DNS subject alternative names
	IPAddresses []netip.Addr `json:"ipAddresses"` // IP subject alternative names
	Serial      string       `json:"serial"`      // serial number, lower-case hex
	NotBefore   time.Time    `json:"notBefore"`
	NotAfter    time.Time    `json:"notAfter"`
	// SHA256 is the fingerprint of the DER certificate as openssl x509
	// -fingerprint -sha256 prints it: upper-case hex pairs joined by ':'.
	SHA256 string `json:"sha256"`
	// DaysLeft is the number of whole days until NotAfter at the Store's
	// clock; negative once expired.
	DaysLeft int `json:"daysLeft"`
}

// Describe returns the CertInfo of cert, named name, at time now.
func Describe(name string, cert *x509.Certificate, now time.Time) CertInfo {
	kind := KindClient
	switch {
	case cert.IsCA:
		kind = KindCA
	case hasUsage(cert, x509.ExtKeyUsageServerAuth):
		kind = KindServer
	}
	info := CertInfo{
		Name:      name,
		Kind:      kind,
		Subject:   cert.Subject.String(),
		DNSNames:  slices.Clone(cert.DNSNames),
		Serial:    cert.SerialNumber.Text(16),
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
		SHA256:    fingerprint(cert.Raw),
		DaysLeft:  int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24)),
	}
	if kind == KindClient {
		_, info.Role = ClientIdentity(cert)
	}
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			info.IPAddresses = append(info.IPAddresses, a.Unmap())
		}
	}
	return info
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// List describes the CA, the current server certificate and, if present,
// the admin certificate, in that order.
func (s *Store) List() []CertInfo {
	now := s.now()
	out := []CertInfo{
		Describe("ca", s.ca, now),
		Describe("server", s.server.Load().Leaf, now),
	}
	if s.admin != nil {
		out = append(out, Describe("admin", s.admin, now))
	}
	return out
}

// Expiring returns the certificates of List that expire within the given
// duration from now, or have expired.
func (s *Store) Expiring(within time.Duration) []CertInfo {
	limit := s.now().Add(within)
	var out []CertInfo
	for _, c := range s.List() {
		if c.NotAfter.Before(limit) {
			out = append(out, c)
		}
	}
	return out
}

// ExportCA returns the CA certificate as "pem" or "der" (the two forms
// devices and their provisioning tools accept), or an error wrapping
// ErrFormat.
func (s *Store) ExportCA(format string) ([]byte, error) {
	switch strings.ToLower(format) {
	case "pem":
		return bytes.Clone(s.caPEM), nil
	case "der":
		return bytes.Clone(s.ca.Raw), nil
	}
	return nil, fmt.Errorf("certs: export %q: %w", format, ErrFormat)
}

// RenewOptions changes the names of the server certificate at renewal.
type RenewOptions struct {
	// AddNames are DNS names or IP addresses to add.
	AddNames []string
	// RemoveNames are names to drop. The common name
	// (ucupdates-r2.<domain>), localhost, 127.0.0.1 and ::1 cannot be
	// removed.
	RemoveNames []string
	// Validity is the new certificate's lifetime. Default: the Config's
	// ServerValidity.
	Validity time.Duration
}

// RenewServer issues a new key and server certificate under the same CA
// with the current names changed by opts, writes them (server.key, then
// server.pem, each atomically) and swaps them in: handshakes from then on
// present the new certificate, established connections are untouched. It
// returns the new certificate's description.
func (s *Store) RenewServer(opts RenewOptions) (CertInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caKey == nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", ErrNoCAKey)
	}
	cur := s.server.Load().Leaf
	names := []string{cur.Subject.CommonName}
	names = append(names, cur.DNSNames...)
	for _, ip := range cur.IPAddresses {
		names = append(names, ip.String())
	}
	names = append(names, opts.AddNames...)
	names, err := normalizeNames(names)
	if err != nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
	}
	required := []string{names[0], "localhost", "127.0.0.1", "::1"}
	for _, r := range opts.RemoveNames {
		n, err := normalizeName(r)
		if err != nil {
			return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
		}
		if slices.Contains(required, n) {
			return CertInfo{}, fmt.Errorf("certs: renew server certificate: cannot remove required name %q: %w", n, ErrInvalidName)
		}
		names = slices.DeleteFunc(names, func(m string) bool { return m == n })
	}
	validity := opts.Validity
	if validity <= 0 {
		validity = s.cfg.ServerValidity
	}
	certPEM, keyPEM, err := issueServer(s.ca, s.caKey, names, s.now(), validity)
	if err != nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
	}
	pair, err := s.checkPair(certPEM, keyPEM, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
	}
	if err := writeFile(s.dir, ServerKeyFile, keyPEM, 0o600, true); err != nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
	}
	if err := writeFile(s.dir, ServerCertFile, certPEM, 0o644, true); err != nil {
		return CertInfo{}, fmt.Errorf("certs: renew server certificate: %w", err)
	}
	s.server.Store(pair)
	return Describe("server", pair.Leaf, s.now()), nil
}

// IssueServer issues a server certificate and its key under the CA for
// the names cfg describes, as Bootstrap gives them (ucupdates-r2.<Domain>,
// the external and internal names, HostName, localhost and the loopback
// addresses, and ExtraNames), valid for the Store's ServerValidity. It
// writes nothing: the certificate is for another server under the same CA
// (a replica), whose devices trust it because they trust the CA. Set
// HostName: its default is this machine's name.
func (s *Store) IssueServer(cfg Config) (certPEM, keyPEM []byte, err error) {
	if s.caKey == nil {
		return nil, nil, fmt.Errorf("certs: issue server certificate: %w", ErrNoCAKey)
	}
	names, err := serverNames(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	certPEM, keyPEM, err = issueServer(s.ca, s.caKey, names, s.now(), s.cfg.ServerValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// IssueClient issues a client certificate for the admin API with the given
// name (1–64 letters, digits and ._@-) and role (lower-case letters, digits
// and hyphens, e.g. RoleAdmin), valid for the Config's ClientValidity. It
// writes nothing: the caller hands the key to its owner.
func (s *Store) IssueClient(name, role string) (certPEM, keyPEM []byte, err error) {
	if s.caKey == nil {
		return nil, nil, fmt.Errorf("certs: issue client certificate: %w", ErrNoCAKey)
	}
	certPEM, keyPEM, err = issueClient(s.ca, s.caKey, name, role, s.now(), s.cfg.ClientValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issue client certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// SignClient issues a client certificate for the admin API, as
// IssueClient, for a key its owner made: pub must be an ECDSA P-256 public
// key (see the package documentation), and its private key never reaches
// the service. It writes nothing and returns the certificate as PEM.
func (s *Store) SignClient(pub crypto.PublicKey, name, role string) (certPEM []byte, err error) {
	if s.caKey == nil {
		return nil, fmt.Errorf("certs: issue client certificate: %w", ErrNoCAKey)
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("certs: issue client certificate %q: the key is %T, want ECDSA P-256: %w", name, pub, ErrCorrupt)
	}
	if err := checkClientName(name, role); err != nil {
		return nil, fmt.Errorf("certs: issue client certificate: %w", err)
	}
	certPEM, err = issueFor(clientTemplate(name, role), s.ca, s.caKey, pub, s.now(), s.cfg.ClientValidity)
	if err != nil {
		return nil, fmt.Errorf("certs: issue client certificate %q: %w", name, err)
	}
	return certPEM, nil
}

// NewClientKey returns a fresh key for SignClient and its PKCS #8 PEM
// form, to be written with mode 0600.
func NewClientKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Reload reads server.pem and server.key again and, if they hold a
// different certificate that matches its key, chains to the CA and has not
// expired, swaps it in. It reports whether the certificate changed. On
// error the current certificate stays in use.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The expected, frequent case: nothing changed.
	if certPEM, err := os.ReadFile(filepath.Join(s.dir, ServerCertFile)); err == nil {
		if c, err := parseCertPEM(certPEM); err == nil && bytes.Equal(c.Raw, s.server.Load().Leaf.Raw) {
			return false, nil
		}
	}
	pair, err := s.loadServer(true)
	if err != nil {
		return false, err
	}
	s.server.Store(pair)
	return true, nil
}

// Watch calls Reload every interval (default one minute) until ctx is
// done, so that a server certificate renewed by another process (the CLI)
// is picked up, and logs a warning for every certificate that Expiring
// reports within the Config's WarnBefore, when it starts and then daily.
// A failed reload is logged as a warning only if it fails again on the next
// tick, since another process may be between its two renames. A nil logger
// discards.
func (s *Store) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastWarn time.Time
	var lastErr error
	for {
		if now := s.now(); lastWarn.IsZero() || now.Sub(lastWarn) >= 24*time.Hour {
			lastWarn = now
			for _, c := range s.Expiring(s.cfg.WarnBefore) {
				logger.WarnContext(ctx, "certificate expires soon", "cert", c.Name, "subject", c.Subject,
					"not_after", c.NotAfter, "days_left", c.DaysLeft, "serial", c.Serial)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.Reload()
		switch {
		case err != nil && lastErr != nil:
			logger.WarnContext(ctx, "server certificate reload failed", "dir", s.dir, "err", err)
		case err != nil:
			logger.DebugContext(ctx, "server certificate reload failed; retrying", "dir", s.dir, "err", err)
		case changed:
			c := s.server.Load().Leaf
			logger.InfoContext(ctx, "server certificate reloaded", "serial", c.SerialNumber.Text(16), "not_after", c.NotAfter)
		}
		lastErr = err
	}
}
