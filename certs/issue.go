package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// backdate is how far NotBefore lies before the issuing time, to tolerate
// clocks that run behind (devices often boot before NTP has synced).
const backdate = time.Hour

// maxFileSize bounds every file read from the directory.
const maxFileSize = 1 << 20

const organization = "OpenDUS"

// newKey returns a fresh P-256 key.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// newSerial returns a random, positive, non-zero 128-bit serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID returns the RFC 7093 method 1 key identifier: the leftmost
// 160 bits of the SHA-256 hash of the subjectPublicKey BIT STRING.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	h := sha256.Sum256(spki.PublicKey.Bytes)
	return h[:20], nil
}

// issue creates a certificate for a fresh key from tmpl, signed by parent
// and parentKey (or self-signed when parent is nil), and returns the
// certificate and key as PEM. NotAfter is capped at the parent's.
func issue(tmpl, parent *x509.Certificate, parentKey crypto.Signer, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parentKey = key
	}
	certPEM, err = issueFor(tmpl, parent, parentKey, key.Public(), now, validity)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// issueFor creates a certificate for the public key pub from tmpl, signed
// by parent and parentKey (self-signed when parent is nil: parentKey is
// then pub's private key), and returns it as PEM.
func issueFor(tmpl, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey, now time.Time, validity time.Duration) (certPEM []byte, err error) {
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, err
	}
	if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
		return nil, err
	}
	tmpl.NotBefore = now.Add(-backdate).UTC().Truncate(time.Second)
	tmpl.NotAfter = now.Add(validity).UTC().Truncate(time.Second)
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	if parent == nil {
		parent = tmpl
	} else {
		if !now.Before(parent.NotAfter) {
			return nil, fmt.Errorf("CA expired %s: %w", parent.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
		}
		if tmpl.NotAfter.After(parent.NotAfter) {
			tmpl.NotAfter = parent.NotAfter
		}
		if tmpl.NotBefore.Before(parent.NotBefore) {
			tmpl.NotBefore = parent.NotBefore
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// newCA returns a self-signed CA certificate and key, as PEM.
func newCA(domain string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "OpenDUS CA " + domain, Organization: []string{organization}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	certPEM, keyPEM, err = issue(tmpl, nil, nil, now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA: %w", err)
	}
	return certPEM, keyPEM, nil
}

// newServer returns a server certificate for names (names[0] is the common
// name) and its key, as PEM.
func newServer(caPEM, caKeyPEM []byte, names []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, caKey, err := parseCA(caPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	return issueServer(ca, caKey, names, now, validity)
}

func issueServer(ca *x509.Certificate, caKey crypto.Signer, names []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0], Organization: []string{organization}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	certPEM, keyPEM, err = issue(tmpl, ca, caKey, now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// newClient returns a client certificate and key, as PEM.
func newClient(caPEM, caKeyPEM []byte, name, role string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, caKey, err := parseCA(caPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	return issueClient(ca, caKey, name, role, now, validity)
}

func issueClient(ca *x509.Certificate, caKey crypto.Signer, name, role string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if err := checkClientName(name, role); err != nil {
		return nil, nil, err
	}
	certPEM, keyPEM, err = issue(clientTemplate(name, role), ca, caKey, now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("create client certificate %q: %w", name, err)
	}
	return certPEM, keyPEM, nil
}

func clientTemplate(name, role string) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{
			CommonName:         name,
			OrganizationalUnit: []string{role},
			Organization:       []string{organization},
		},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// ParseCertPEM parses a PEM file holding one certificate, as the files of
// the directory and what IssueClient and SignClient return are.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	c, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return c, nil
}

func parseCA(caPEM, caKeyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKeyPEM(caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// ClientIdentity returns the name and role that IssueClient (or Bootstrap,
// for the admin) encoded in a client certificate: the subject's common name
// and first organizational unit. The admin API calls it on the verified
// peer certificate to authorise requests.
func ClientIdentity(cert *x509.Certificate) (name, role string) {
	if len(cert.Subject.OrganizationalUnit) > 0 {
		role = cert.Subject.OrganizationalUnit[0]
	}
	return cert.Subject.CommonName, role
}

// parseCertPEM parses the single CERTIFICATE block in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM CERTIFICATE block: %w", ErrCorrupt)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("data after the certificate: %w", ErrCorrupt)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return c, nil
}

// parseKeyPEM parses the single PKCS #8 PRIVATE KEY block in data.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("no PEM PRIVATE KEY block: %w", ErrCorrupt)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("data after the key: %w", ErrCorrupt)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign: %w", k, ErrCorrupt)
	}
	return signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// ServerNames returns the names Bootstrap gives the server certificate
// for cfg, common name first, or an error wrapping ErrInvalidName for a
// malformed domain or name: a check before anything is written.
func ServerNames(cfg Config) ([]string, error) {
	names, err := serverNames(cfg)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return names, nil
}

// serverNames returns the names for the server certificate described by
// cfg, common name first, without duplicates.
func serverNames(cfg Config) ([]string, error) {
	domain := strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	if domain == "" {
		return nil, fmt.Errorf("domain is required: %w", ErrInvalidName)
	}
	if !strings.Contains(domain, ".") || !validDNSName(domain, false) {
		return nil, fmt.Errorf("domain %q: %w", cfg.Domain, ErrInvalidName)
	}
	host := cfg.HostName
	if host == "" {
		if h, err := os.Hostname(); err == nil && validDNSName(strings.ToLower(h), false) {
			host = h
		}
	}
	host = strings.ToLower(host)
	internal := cfg.InternalName
	if internal == "" && host != "" {
		internal = host
		if !strings.Contains(host, ".") {
			internal = host + "." + domain
		}
	}
	external := cfg.ExternalName
	if external == "" {
		external = "ucupdates." + domain
	}
	all := []string{"ucupdates-r2." + domain, external, internal, host, "localhost", "127.0.0.1", "::1"}
	all = append(all, cfg.ExtraNames...)
	return normalizeNames(all)
}

// normalizeNames lower-cases, validates and de-duplicates names, dropping
// empty ones and keeping the first occurrence's position. IP addresses
// are written in their canonical form.
func normalizeNames(in []string) ([]string, error) {
	seen := make(map[string]bool)
	var out []string
	for _, n := range in {
		n, err := normalizeName(n)
		if err != nil {
			return nil, err
		}
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func normalizeName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if n == "" {
		return "", nil
	}
	if ip, err := netip.ParseAddr(n); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("IP address %q has a zone: %w", n, ErrInvalidName)
		}
		return ip.Unmap().String(), nil
	}
	n = strings.ToLower(strings.TrimSuffix(n, "."))
	if !validDNSName(n, true) {
		return "", fmt.Errorf("name %q: %w", n, ErrInvalidName)
	}
	return n, nil
}

// validDNSName reports whether n is a lower-case host name of letters,
// digits and hyphens (RFC 1123), optionally with a leading "*." label.
func validDNSName(n string, wildcard bool) bool {
	if wildcard && strings.HasPrefix(n, "*.") && strings.Contains(n[2:], ".") {
		n = n[2:]
	}
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkClientName checks a client certificate's name (1–64 characters of
// letters, digits and ._@-) and role (1–32 lower-case letters, digits and
// hyphens, starting with a letter).
func checkClientName(name, role string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("client name %q: %w", name, ErrInvalidName)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return fmt.Errorf("client name %q: %w", name, ErrInvalidName)
		}
	}
	if role == "" || len(role) > 32 || role[0] < 'a' || role[0] > 'z' {
		return fmt.Errorf("role %q: %w", role, ErrInvalidName)
	}
	for _, c := range role {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("role %q: %w", role, ErrInvalidName)
		}
	}
	return nil
}
