package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opendus/opendus/internal/testtool"
)

const testDomain = "contoso.com"

// testConfig returns a Config for contoso.com on host "upd1".
func testConfig() Config {
	return Config{Domain: testDomain, HostName: "upd1"}
}

// bootstrap creates a certificate directory in a fresh temporary directory.
func bootstrap(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Bootstrap(filepath.Join(t.TempDir(), "data"), cfg)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return s
}

// equateAddr compares netip.Addr values by ==.
var equateAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// fixedClock returns a clock that always reads at.
func fixedClock(at time.Time) func() time.Time {
	return func() time.Time { return at }
}

var allFiles = []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile, AdminCertFile, AdminKeyFile}

func TestBootstrapOpen(t *testing.T) {
	s := bootstrap(t, testConfig())
	dir := s.Dir()

	for _, name := range allFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			want = 0o600
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(allFiles) {
		t.Errorf("directory holds %d entries, want %d (temporary files left?)", len(entries), len(allFiles))
	}

	o, err := Open(dir, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if diff := cmp.Diff(s.List(), o.List(), cmpopts.EquateApproxTime(0), cmpopts.IgnoreFields(CertInfo{}, "DaysLeft"), equateAddr); diff != "" {
		t.Errorf("Open(%s).List() differs from Bootstrap's (-bootstrap +open):\n%s", dir, diff)
	}
	if o.caKey == nil {
		t.Errorf("Open did not load %s", CAKeyFile)
	}
}

func TestBootstrapRefusesOverwrite(t *testing.T) {
	s := bootstrap(t, testConfig())
	before := readAll(t, s.Dir())
	_, err := Bootstrap(s.Dir(), testConfig())
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Bootstrap = %v, want ErrExists", err)
	}
	if diff := cmp.Diff(before, readAll(t, s.Dir())); diff != "" {
		t.Errorf("second Bootstrap changed files:\n%s", diff)
	}

	for _, name := range allFiles {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Bootstrap(dir, testConfig())
			if !errors.Is(err, ErrExists) {
				t.Fatalf("Bootstrap with existing %s = %v, want ErrExists", name, err)
			}
			if got := readAll(t, dir); len(got) != 1 {
				t.Errorf("Bootstrap with existing %s left files %v, want only it", name, slices.Sorted(mapKeys(got)))
			}
		})
	}
}

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestBootstrapInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no domain", Config{}},
		{"single-label domain", Config{Domain: "contoso"}},
		{"bad domain", Config{Domain: "con_toso.com"}},
		{"bad extra name", Config{Domain: testDomain, ExtraNames: []string{"a..b"}}},
		{"bad external name", Config{Domain: testDomain, ExternalName: "-x.contoso.com"}},
		{"IPv6 zone", Config{Domain: testDomain, ExtraNames: []string{"fe80::1%eth0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Bootstrap(dir, tt.cfg)
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("Bootstrap(%+v) = %v, want ErrInvalidName", tt.cfg, err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	foreign := bootstrap(t, testConfig())
	tests := []struct {
		name   string
		modify func(t *testing.T, dir string)
		want   error
	}{
		{"empty directory", func(t *testing.T, dir string) {
			for _, f := range allFiles {
				os.Remove(filepath.Join(dir, f))
			}
		}, ErrNotFound},
		{"no server certificate", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ServerCertFile))
		}, fs.ErrNotExist},
		{"no server key", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ServerKeyFile))
		}, fs.ErrNotExist},
		{"readable CA key", func(t *testing.T, dir string) {
			chmod(t, filepath.Join(dir, CAKeyFile), 0o644)
		}, ErrInsecureKey},
		{"group-readable server key", func(t *testing.T, dir string) {
			chmod(t, filepath.Join(dir, ServerKeyFile), 0o640)
		}, ErrInsecureKey},
		{"server key of another certificate", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, AdminKeyFile), filepath.Join(dir, ServerKeyFile))
		}, ErrCorrupt},
		{"server certificate of a foreign CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(foreign.Dir(), ServerCertFile), filepath.Join(dir, ServerCertFile))
			copyFile(t, filepath.Join(foreign.Dir(), ServerKeyFile), filepath.Join(dir, ServerKeyFile))
		}, ErrCorrupt},
		{"client certificate as server certificate", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, AdminCertFile), filepath.Join(dir, ServerCertFile))
			copyFile(t, filepath.Join(dir, AdminKeyFile), filepath.Join(dir, ServerKeyFile))
		}, ErrCorrupt},
		{"CA key of a foreign CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(foreign.Dir(), CAKeyFile), filepath.Join(dir, CAKeyFile))
		}, ErrCorrupt},
		{"garbage CA certificate", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, CACertFile), []byte("not PEM"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrCorrupt},
		{"leaf as CA certificate", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, ServerCertFile), filepath.Join(dir, CACertFile))
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bootstrap(t, testConfig())
			tt.modify(t, s.Dir())
			_, err := Open(s.Dir(), Config{})
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateProfiles(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := testConfig()
	cfg.Now = fixedClock(now)
	cfg.ExtraNames = []string{"UPD.Fabrikam.com.", "10.0.0.5", "*.lab.contoso.com", "localhost"}
	s := bootstrap(t, cfg)
	ca := s.CACertificate()
	srv := s.ServerCertificate()
	adm := s.admin

	for _, c := range []*x509.Certificate{ca, srv, adm} {
		if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Errorf("%s: signature algorithm = %v, want ECDSA-SHA256", c.Subject, c.SignatureAlgorithm)
		}
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: public key %T, want ECDSA P-256", c.Subject, c.PublicKey)
		}
		if n := c.SerialNumber.BitLen(); n < 64 || n > 128 || c.SerialNumber.Sign() <= 0 {
			t.Errorf("%s: serial %x has %d bits, want positive and at most 128", c.Subject, c.SerialNumber, n)
		}
		if len(c.SubjectKeyId) != 20 {
			t.Errorf("%s: SubjectKeyId has %d bytes, want 20", c.Subject, len(c.SubjectKeyId))
		}
		if want := now.Add(-time.Hour); !c.NotBefore.Equal(want) {
			t.Errorf("%s: NotBefore = %v, want %v", c.Subject, c.NotBefore, want)
		}
	}

	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v, want CA with path length 0",
			ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if got, want := ca.KeyUsage, x509.KeyUsageCertSign|x509.KeyUsageCRLSign; got != want {
		t.Errorf("CA KeyUsage = %v, want %v", got, want)
	}
	if got, want := ca.NotAfter, now.Add(DefaultCAValidity); !got.Equal(want) {
		t.Errorf("CA NotAfter = %v, want %v", got, want)
	}

	tests := []struct {
		name     string
		cert     *x509.Certificate
		eku      x509.ExtKeyUsage
		validity time.Duration
	}{
		{"server", srv, x509.ExtKeyUsageServerAuth, DefaultServerValidity},
		{"admin", adm, x509.ExtKeyUsageClientAuth, DefaultClientValidity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cert
			if c.IsCA {
				t.Errorf("IsCA = true, want false")
			}
			if got, want := c.KeyUsage, x509.KeyUsageDigitalSignature; got != want {
				t.Errorf("KeyUsage = %v, want %v", got, want)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{tt.eku}, c.ExtKeyUsage); diff != "" {
				t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
			}
			if !bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want CA's SubjectKeyId %x", c.AuthorityKeyId, ca.SubjectKeyId)
			}
			if err := c.CheckSignatureFrom(ca); err != nil {
				t.Errorf("CheckSignatureFrom(CA) = %v", err)
			}
			if got, want := c.NotAfter, now.Add(tt.validity); !got.Equal(want) {
				t.Errorf("NotAfter = %v, want %v", got, want)
			}
		})
	}

	if got, want := srv.Subject.CommonName, "ucupdates-r2.contoso.com"; got != want {
		t.Errorf("server CommonName = %q, want %q", got, want)
	}
	wantDNS := []string{"ucupdates-r2.contoso.com", "ucupdates.contoso.com", "upd1.contoso.com", "upd1", "localhost", "upd.fabrikam.com", "*.lab.contoso.com"}
	if diff := cmp.Diff(wantDNS, srv.DNSNames); diff != "" {
		t.Errorf("server DNS names (-want +got):\n%s", diff)
	}
	var gotIPs []string
	for _, ip := range srv.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "::1", "10.0.0.5"}, gotIPs); diff != "" {
		t.Errorf("server IP addresses (-want +got):\n%s", diff)
	}
	if name, role := ClientIdentity(adm); name != "admin" || role != RoleAdmin {
		t.Errorf("ClientIdentity(admin.pem) = %q, %q, want %q, %q", name, role, "admin", RoleAdmin)
	}
}

func TestValidityCappedByCA(t *testing.T) {
	cfg := testConfig()
	cfg.CAValidity = 100 * 24 * time.Hour
	s := bootstrap(t, cfg)
	if got, want := s.ServerCertificate().NotAfter, s.CACertificate().NotAfter; !got.Equal(want) {
		t.Errorf("server NotAfter = %v, want the CA's %v", got, want)
	}
}

func TestOpenSSLAgrees(t *testing.T) {
	openssl := testtool.Need(t, "openssl")
	s := bootstrap(t, testConfig())
	dir := s.Dir()
	tests := []struct {
		file, purpose string
	}{
		{ServerCertFile, "sslserver"},
		{AdminCertFile, "sslclient"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out := run(t, openssl, "verify", "-x509_strict", "-CAfile", filepath.Join(dir, CACertFile), "-purpose", tt.purpose, filepath.Join(dir, tt.file))
			if !strings.Contains(out, ": OK") {
				t.Errorf("openssl verify: %s", out)
			}
		})
	}
	t.Run("fingerprint", func(t *testing.T) {
		out := run(t, openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(dir, ServerCertFile))
		got := strings.TrimSpace(out[strings.Index(out, "=")+1:])
		if want := s.List()[1].SHA256; got != want {
			t.Errorf("openssl fingerprint = %s, List() SHA256 = %s", got, want)
		}
	})
	t.Run("keys", func(t *testing.T) {
		for _, f := range []string{CAKeyFile, ServerKeyFile, AdminKeyFile} {
			out := run(t, openssl, "pkey", "-noout", "-text", "-in", filepath.Join(dir, f))
			if !strings.Contains(out, "prime256v1") {
				t.Errorf("openssl pkey %s: not P-256:\n%s", f, out)
			}
		}
	})
}

func TestExportCA(t *testing.T) {
	s := bootstrap(t, testConfig())
	pemBytes, err := s.ExportCA("pem")
	if err != nil {
		t.Fatal(err)
	}
	derBytes, err := s.ExportCA("der")
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("ExportCA(pem) = %q, want one CERTIFICATE block", pemBytes)
	}
	fromPEM, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fromDER, err := x509.ParseCertificate(derBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !fromPEM.Equal(fromDER) || !fromDER.Equal(s.CACertificate()) {
		t.Errorf("ExportCA pem and der do not round-trip to the CA certificate")
	}
	onDisk, err := os.ReadFile(filepath.Join(s.Dir(), CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemBytes, onDisk) {
		t.Errorf("ExportCA(pem) differs from %s", CACertFile)
	}
	if _, err := s.ExportCA("p12"); !errors.Is(err, ErrFormat) {
		t.Errorf("ExportCA(p12) = %v, want ErrFormat", err)
	}
}

func TestListAndExpiring(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cfg := testConfig()
	cfg.Now = func() time.Time { return clock }
	s := bootstrap(t, cfg)

	list := s.List()
	var got []string
	for _, c := range list {
		got = append(got, c.Name+"/"+c.Kind+"/"+c.Role)
	}
	if diff := cmp.Diff([]string{"ca/ca/", "server/server/", "admin/client/admin"}, got); diff != "" {
		t.Errorf("List() names (-want +got):\n%s", diff)
	}
	srv := list[1]
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, srv.IPAddresses, equateAddr); diff != "" {
		t.Errorf("server IPAddresses (-want +got):\n%s", diff)
	}
	if !slices.Contains(srv.DNSNames, "ucupdates-r2.contoso.com") {
		t.Errorf("server DNSNames = %v, want ucupdates-r2.contoso.com among them", srv.DNSNames)
	}
	if got, want := srv.Serial, s.ServerCertificate().SerialNumber.Text(16); got != want {
		t.Errorf("server Serial = %s, want %s", got, want)
	}
	if got, want := srv.Subject, "CN=ucupdates-r2.contoso.com,O=OpenDUS"; got != want {
		t.Errorf("server Subject = %q, want %q", got, want)
	}

	tests := []struct {
		name     string
		at       time.Time
		within   time.Duration
		wantDays map[string]int
		wantSoon []string
	}{
		{"fresh", now, 30 * 24 * time.Hour, map[string]int{"ca": 3650, "server": 825, "admin": 730}, nil},
		{"admin within 30 days", now.Add(710 * 24 * time.Hour), 30 * 24 * time.Hour,
			map[string]int{"ca": 2940, "server": 115, "admin": 20}, []string{"admin"}},
		{"server expired", now.Add(826 * 24 * time.Hour), time.Hour,
			map[string]int{"ca": 2824, "server": -1, "admin": -96}, []string{"server", "admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = tt.at
			days := make(map[string]int)
			for _, c := range s.List() {
				days[c.Name] = c.DaysLeft
			}
			if diff := cmp.Diff(tt.wantDays, days); diff != "" {
				t.Errorf("DaysLeft (-want +got):\n%s", diff)
			}
			var soon []string
			for _, c := range s.Expiring(tt.within) {
				soon = append(soon, c.Name)
			}
			if diff := cmp.Diff(tt.wantSoon, soon); diff != "" {
				t.Errorf("Expiring(%v) (-want +got):\n%s", tt.within, diff)
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	s := bootstrap(t, testConfig())
	certPEM, keyPEM, err := s.IssueClient("alice@contoso.com", "operator")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := s.checkPair(certPEM, keyPEM, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatalf("issued pair does not check: %v", err)
	}
	if name, role := ClientIdentity(pair.Leaf); name != "alice@contoso.com" || role != "operator" {
		t.Errorf("ClientIdentity = %q, %q, want alice@contoso.com, operator", name, role)
	}

	bad := []struct{ name, role string }{
		{"", "admin"},
		{"a/b", "admin"},
		{"alice", ""},
		{"alice", "Admin"},
		{"alice", "1admin"},
		{strings.Repeat("a", 65), "admin"},
	}
	for _, b := range bad {
		if _, _, err := s.IssueClient(b.name, b.role); !errors.Is(err, ErrInvalidName) {
			t.Errorf("IssueClient(%q, %q) = %v, want ErrInvalidName", b.name, b.role, err)
		}
	}

	if err := os.Remove(filepath.Join(s.Dir(), CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	offline, err := Open(s.Dir(), Config{})
	if err != nil {
		t.Fatalf("Open without %s: %v", CAKeyFile, err)
	}
	if _, _, err := offline.IssueClient("bob", "admin"); !errors.Is(err, ErrNoCAKey) {
		t.Errorf("IssueClient without CA key = %v, want ErrNoCAKey", err)
	}
	if _, err := offline.RenewServer(RenewOptions{}); !errors.Is(err, ErrNoCAKey) {
		t.Errorf("RenewServer without CA key = %v, want ErrNoCAKey", err)
	}
}

// TestSignClient: a client certificate for a key its owner made chains
// to the CA, carries the name and role, and pairs with that key; other
// kinds of key and bad names are refused.
func TestSignClient(t *testing.T) {
	s := bootstrap(t, testConfig())
	_, keyPEM, err := NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := s.SignClient(key.Public(), "helpdesk", "readonly")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := s.checkPair(certPEM, keyPEM, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatalf("signed certificate and its key do not check: %v", err)
	}
	if name, role := ClientIdentity(pair.Leaf); name != "helpdesk" || role != "readonly" {
		t.Errorf("ClientIdentity = %q, %q, want helpdesk, readonly", name, role)
	}
	if c, err := ParseCertPEM(certPEM); err != nil || c.SerialNumber.Cmp(pair.Leaf.SerialNumber) != 0 {
		t.Errorf("ParseCertPEM = %v, %v", c, err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignClient(p384.Public(), "helpdesk", "readonly"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("SignClient(P-384 key) = %v, want ErrCorrupt", err)
	}
	if _, err := s.SignClient(key.Public(), "a/b", "readonly"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("SignClient(bad name) = %v, want ErrInvalidName", err)
	}
}

func TestIssueAfterCAExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cfg := testConfig()
	cfg.Now = func() time.Time { return clock }
	cfg.CAValidity = 24 * time.Hour
	s := bootstrap(t, cfg)
	clock = now.Add(25 * time.Hour)
	if _, _, err := s.IssueClient("bob", "admin"); !errors.Is(err, ErrExpired) {
		t.Errorf("IssueClient after CA expiry = %v, want ErrExpired", err)
	}
	if _, err := s.RenewServer(RenewOptions{}); !errors.Is(err, ErrExpired) {
		t.Errorf("RenewServer after CA expiry = %v, want ErrExpired", err)
	}
}

func TestRenewServerNames(t *testing.T) {
	s := bootstrap(t, testConfig())
	old := s.ServerCertificate()
	oldKey, err := os.ReadFile(filepath.Join(s.Dir(), ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.RenewServer(RenewOptions{AddNames: []string{"new.contoso.com", "192.0.2.7"}, RemoveNames: []string{"upd1"}})
	if err != nil {
		t.Fatal(err)
	}
	cur := s.ServerCertificate()
	if info.Serial == old.SerialNumber.Text(16) || info.Serial != cur.SerialNumber.Text(16) {
		t.Errorf("RenewServer serial = %s, old %x, current %x; want a new serial in use", info.Serial, old.SerialNumber, cur.SerialNumber)
	}
	wantDNS := []string{"ucupdates-r2.contoso.com", "ucupdates.contoso.com", "upd1.contoso.com", "localhost", "new.contoso.com"}
	if diff := cmp.Diff(wantDNS, cur.DNSNames); diff != "" {
		t.Errorf("renewed DNS names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("192.0.2.7")}, info.IPAddresses, equateAddr); diff != "" {
		t.Errorf("renewed IP addresses (-want +got):\n%s", diff)
	}
	newKey, err := os.ReadFile(filepath.Join(s.Dir(), ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(oldKey, newKey) {
		t.Errorf("RenewServer kept the old key")
	}
	if fi, err := os.Stat(filepath.Join(s.Dir(), ServerKeyFile)); err != nil {
		t.Error(err)
	} else if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("renewed %s: mode %v, want 0600", ServerKeyFile, got)
	}
	o, err := Open(s.Dir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.ServerCertificate().Equal(cur) {
		t.Errorf("Open after RenewServer loads serial %x, want %x", o.ServerCertificate().SerialNumber, cur.SerialNumber)
	}
	if got := readAll(t, s.Dir()); len(got) != len(allFiles) {
		t.Errorf("directory after renewal holds %v, want only the %d files", slices.Sorted(mapKeys(got)), len(allFiles))
	}

	for _, n := range []string{"localhost", "127.0.0.1", "::1", "UCUPDATES-R2.contoso.com"} {
		if _, err := s.RenewServer(RenewOptions{RemoveNames: []string{n}}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("RenewServer removing %q = %v, want ErrInvalidName", n, err)
		}
	}
	if _, err := s.RenewServer(RenewOptions{AddNames: []string{"bad_name"}}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("RenewServer adding bad_name = %v, want ErrInvalidName", err)
	}
	if !s.ServerCertificate().Equal(cur) {
		t.Errorf("failed renewals changed the server certificate")
	}
}

func TestReload(t *testing.T) {
	s := bootstrap(t, testConfig())
	other, err := Open(s.Dir(), Config{}) // another process, e.g. the CLI
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files = %v, %v, want false, nil", changed, err)
	}
	info, err := other.RenewServer(RenewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("Reload after renewal = %v, %v, want true, nil", changed, err)
	}
	if got := s.ServerCertificate().SerialNumber.Text(16); got != info.Serial {
		t.Errorf("after Reload serial = %s, want %s", got, info.Serial)
	}

	// Half-written renewals: the current certificate with a new key is
	// left alone (nothing changed yet); a new certificate with the old key
	// is refused.
	cur := s.ServerCertificate()
	certPEM, keyPEM, err := issueServer(s.ca, s.caKey, []string{"x.contoso.com"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, err := os.ReadFile(filepath.Join(s.Dir(), ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(s.Dir(), ServerKeyFile, keyPEM, 0o600, true); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("Reload of current certificate with new key = %v, %v, want false, nil", changed, err)
	}
	if err := writeFile(s.Dir(), ServerKeyFile, oldKey, 0o600, true); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(s.Dir(), ServerCertFile, certPEM, 0o644, true); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Reload of new certificate with old key = %v, %v, want false, ErrCorrupt", changed, err)
	}
	if !s.ServerCertificate().Equal(cur) {
		t.Errorf("failed Reload changed the server certificate")
	}
}

func TestReloadRefusesExpired(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cfg := testConfig()
	cfg.Now = func() time.Time { return clock }
	s := bootstrap(t, cfg)
	other, err := Open(s.Dir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.RenewServer(RenewOptions{Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour)
	if changed, err := s.Reload(); changed || !errors.Is(err, ErrExpired) {
		t.Errorf("Reload of an expired certificate = %v, %v, want false, ErrExpired", changed, err)
	}
}

// TestIssueServer: a server certificate for another server under the same
// CA (a replica) covers its names, chains to the CA, and with the CA
// certificate alone (no CA key) makes a directory Open accepts; nothing
// is written to the issuing directory.
func TestIssueServer(t *testing.T) {
	s := bootstrap(t, testConfig())
	before, _ := os.ReadDir(s.Dir())
	certPEM, keyPEM, err := s.IssueServer(Config{Domain: testDomain, InternalName: "dus-paris.contoso.com", HostName: "dus-paris.contoso.com", ExtraNames: []string{"127.0.0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadDir(s.Dir()); len(after) != len(before) {
		t.Errorf("IssueServer wrote into %s: %d entries, had %d", s.Dir(), len(after), len(before))
	}
	dir := filepath.Join(t.TempDir(), "replica")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := s.ExportCA("pem")
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{CACertFile, caPEM, 0o644}, {ServerCertFile, certPEM, 0o644}, {ServerKeyFile, keyPEM, 0o600}} {
		if err := writeFile(dir, f.name, f.data, f.perm, false); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir, Config{})
	if err != nil {
		t.Fatalf("Open of a directory with the issued certificate and the CA = %v", err)
	}
	c := r.ServerCertificate()
	for _, n := range []string{"dus-paris.contoso.com", "ucupdates-r2.contoso.com", "127.0.0.7", "localhost"} {
		if err := c.VerifyHostname(n); err != nil {
			t.Errorf("the replica's certificate does not cover %s: %v", n, err)
		}
	}
	if err := c.VerifyHostname("upd1"); err == nil {
		t.Error("the replica's certificate covers the issuing host's name")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: s.CertPool(), DNSName: "dus-paris.contoso.com"}); err != nil {
		t.Errorf("the replica's certificate does not chain to the CA: %v", err)
	}
	if _, _, err := r.IssueServer(testConfig()); !errors.Is(err, ErrNoCAKey) {
		t.Errorf("IssueServer without the CA key = %v, want ErrNoCAKey", err)
	}
	if _, _, err := s.IssueServer(Config{Domain: "nodot"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("IssueServer for a bad domain = %v, want ErrInvalidName", err)
	}
}
