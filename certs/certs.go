package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File names inside the data directory.
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
	AdminCertFile  = "admin.pem"
	AdminKeyFile   = "admin.key"
)

// RoleAdmin is the role of the admin client certificate made by [Bootstrap].
const RoleAdmin = "admin"

// Default validity periods and warning window; see [Config].
const (
	DefaultCAValidity     = 10 * 365 * 24 * time.Hour
	DefaultServerValidity = 825 * 24 * time.Hour
	DefaultClientValidity = 2 * 365 * 24 * time.Hour
	DefaultWarnBefore     = 30 * 24 * time.Hour
)

var (
	// ErrExists is returned by Bootstrap when a certificate or key file
	// already exists in the directory; nothing is written.
	ErrExists = errors.New("certificate files already exist")
	// ErrNotFound is returned by Open when the directory holds no CA
	// certificate.
	ErrNotFound = errors.New("no certificates: run devsvc init")
	// ErrExpired is returned when a certificate that an operation needs
	// has expired: the CA when issuing, a client certificate when loading
	// it, a server certificate found by Reload.
	ErrExpired = errors.New("certificate expired")
	// ErrNoCAKey is returned by RenewServer and IssueClient when ca.key is
	// not in the directory (it was moved offline).
	ErrNoCAKey = errors.New("CA private key not available")
	// ErrInvalidName is returned when a domain, DNS name, IP address,
	// client name or role is malformed, or when RenewServer is asked to
	// remove a name the server certificate must keep.
	ErrInvalidName = errors.New("invalid name")
	// ErrInsecureKey is returned by Open when a private key file may be
	// read by group or others.
	ErrInsecureKey = errors.New("private key file is readable by group or others")
	// ErrCorrupt is returned when a file is not the PEM certificate or key
	// expected, a key does not match its certificate, or a certificate was
	// not issued by the CA for the purpose it is used for.
	ErrCorrupt = errors.New("invalid certificate or key")
	// ErrFormat is returned by ExportCA for a format other than "pem" or
	// "der".
	ErrFormat = errors.New("unsupported export format")
)

// Config controls Bootstrap and, for its clock, validity and warning
// fields, Open. The zero value is usable by Open; Bootstrap requires Domain.
type Config struct {
	// Domain is the SIP/DNS domain the service serves, e.g. contoso.com.
	// Required by Bootstrap; ignored by Open (the names come from the
	// certificates on disk).
	Domain string

	// InternalName is the name devices inside the network use. Default:
	// the host name if it contains a dot, else HostName + "." + Domain.
	InternalName string
	// ExternalName is the name devices outside the network use. Default:
	// "ucupdates." + Domain.
	ExternalName string
	// HostName is this machine's host name, added to the server
	// certificate. Default: os.Hostname(); left out when unknown.
	HostName string
	// ExtraNames are further DNS names (a leading "*." is allowed) or IP
	// addresses for the server certificate.
	ExtraNames []string

	// Now is the clock used for validity periods, List, Expiring and
	// DeviceTLSConfig verification. Default: time.Now.
	Now func() time.Time

	// CAValidity is the CA's lifetime. Default: DefaultCAValidity (10y).
	CAValidity time.Duration
	// ServerValidity is the server certificate's lifetime, also used by
	// RenewServer. Default: DefaultServerValidity (825 days).
	ServerValidity time.Duration
	// ClientValidity is a client certificate's lifetime, used by Bootstrap
	// and IssueClient. Default: DefaultClientValidity (2y).
	ClientValidity time.Duration
	// WarnBefore is how long before expiry Watch starts logging warnings.
	// Default: DefaultWarnBefore (30 days).
	WarnBefore time.Duration
}

func (c Config) withDefaults() Config {
	if c.CAValidity <= 0 {
		c.CAValidity = DefaultCAValidity
	}
	if c.ServerValidity <= 0 {
		c.ServerValidity = DefaultServerValidity
	}
	if c.ClientValidity <= 0 {
		c.ClientValidity = DefaultClientValidity
	}
	if c.WarnBefore <= 0 {
		c.WarnBefore = DefaultWarnBefore
	}
	return c
}

// Store is an opened certificate directory. Its methods are safe for
// concurrent use.
type Store struct {
	dir   string
	cfg   Config
	ca    *x509.Certificate
	caPEM []byte
	caKey crypto.Signer     // nil when ca.key is absent
	admin *x509.Certificate // nil when admin.pem is absent

	server atomic.Pointer[tls.Certificate] // Leaf is always set
	mu     sync.Mutex                      // serialises RenewServer and Reload
}

// Bootstrap creates the CA, server and admin certificates and keys in dir
// (created with mode 0700 if missing) and returns the opened Store. It
// writes nothing and returns an error wrapping ErrExists if any of the
// files already exists.
func Bootstrap(dir string, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	names, err := serverNames(cfg)
	if err != nil {
		return nil, fmt.Errorf("certs: bootstrap: %w", err)
	}
	for _, f := range []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile, AdminCertFile, AdminKeyFile} {
		p := filepath.Join(dir, f)
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("certs: bootstrap: %s: %w", p, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("certs: bootstrap: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: bootstrap: %w", err)
	}

	now := nowFunc(cfg)()
	ca, caKey, err := newCA(cfg.Domain, now, cfg.CAValidity)
	if err != nil {
		return nil, fmt.Errorf("certs: bootstrap: %w", err)
	}
	srv, srvKey, err := newServer(ca, caKey, names, now, cfg.ServerValidity)
	if err != nil {
		return nil, fmt.Errorf("certs: bootstrap: %w", err)
	}
	adm, admKey, err := newClient(ca, caKey, "admin", RoleAdmin, now, cfg.ClientValidity)
	if err != nil {
		return nil, fmt.Errorf("certs: bootstrap: %w", err)
	}

	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CAKeyFile, caKey, 0o600},
		{CACertFile, ca, 0o644},
		{ServerKeyFile, srvKey, 0o600},
		{ServerCertFile, srv, 0o644},
		{AdminKeyFile, admKey, 0o600},
		{AdminCertFile, adm, 0o644},
	}
	var written []string
	for _, f := range files {
		if err := writeFile(dir, f.name, f.data, f.perm, false); err != nil {
			for _, w := range written {
				os.Remove(filepath.Join(dir, w))
			}
			return nil, fmt.Errorf("certs: bootstrap: %w", err)
		}
		written = append(written, f.name)
	}
	return Open(dir, cfg)
}

// Open loads the certificates in dir. Only Now, the validity periods and
// WarnBefore of cfg are used. It returns an error wrapping ErrNotFound when
// dir holds no ca.pem, fs.ErrNotExist when server.pem or server.key is
// missing, ErrInsecureKey when a key file is readable by group
// or others, and ErrCorrupt when the files do not form a valid set. An
// expired server certificate is loaded (so that it can be renewed).
func Open(dir string, cfg Config) (*Store, error) {
	s := &Store{dir: dir, cfg: cfg.withDefaults()}
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("certs: %s: %w", dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", filepath.Join(dir, CACertFile), err)
	}
	if !ca.IsCA || ca.CheckSignatureFrom(ca) != nil {
		return nil, fmt.Errorf("certs: %s: not a self-signed CA certificate: %w", filepath.Join(dir, CACertFile), ErrCorrupt)
	}
	s.ca, s.caPEM = ca, caPEM

	keyPEM, err := readKeyFile(filepath.Join(dir, CAKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Kept offline; RenewServer and IssueClient will say so.
	case err != nil:
		return nil, fmt.Errorf("certs: %w", err)
	default:
		key, err := parseKeyPEM(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: %w", filepath.Join(dir, CAKeyFile), err)
		}
		if !publicKeysEqual(key.Public(), ca.PublicKey) {
			return nil, fmt.Errorf("certs: %s does not match %s: %w", CAKeyFile, CACertFile, ErrCorrupt)
		}
		s.caKey = key
	}

	srv, err := s.loadServer(false)
	if err != nil {
		return nil, err
	}
	s.server.Store(srv)

	admPEM, err := os.ReadFile(filepath.Join(dir, AdminCertFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("certs: %w", err)
	default:
		adm, err := parseCertPEM(admPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: %w", filepath.Join(dir, AdminCertFile), err)
		}
		s.admin = adm
	}
	return s, nil
}

// Dir returns the directory the Store was opened from.
func (s *Store) Dir() string { return s.dir }

func (s *Store) now() time.Time { return nowFunc(s.cfg)() }

func nowFunc(cfg Config) func() time.Time {
	if cfg.Now != nil {
		return cfg.Now
	}
	return time.Now
}

// loadServer reads server.pem and server.key and checks that they match,
// chain to the CA and are for server authentication; with fresh set, an
// expired certificate is refused with ErrExpired.
func (s *Store) loadServer(fresh bool) (*tls.Certificate, error) {
	certPath := filepath.Join(s.dir, ServerCertFile)
	keyPath := filepath.Join(s.dir, ServerKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	keyPEM, err := readKeyFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pair, err := s.checkPair(certPEM, keyPEM, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certPath, err)
	}
	if fresh && !s.now().Before(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("certs: %s: expired %s: %w", certPath, pair.Leaf.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	}
	return pair, nil
}

// checkPair parses a certificate and key, and checks that they match, that
// the certificate was signed by the CA and that it allows usage.
func (s *Store) checkPair(certPEM, keyPEM []byte, usage x509.ExtKeyUsage) (*tls.Certificate, error) {
	leaf, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("key does not match certificate: %w", ErrCorrupt)
	}
	if err := leaf.CheckSignatureFrom(s.ca); err != nil {
		return nil, fmt.Errorf("not issued by this CA: %w", ErrCorrupt)
	}
	if !hasUsage(leaf, usage) {
		return nil, fmt.Errorf("certificate lacks the required extended key usage: %w", ErrCorrupt)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func hasUsage(c *x509.Certificate, usage x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == usage {
			return true
		}
	}
	return false
}

// readKeyFile reads a private key file, refusing one that group or others
// may read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %v: %w", path, fi.Mode().Perm(), ErrInsecureKey)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: too large: %w", path, ErrCorrupt)
	}
	return data, nil
}
