package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheckPair feeds arbitrary certificate and key files to the parser
// that Open, Reload and ClientTLSConfig use. Whatever it accepts must be a
// matching pair issued by the CA that crypto/tls also accepts.
func FuzzCheckPair(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "data")
	s, err := Bootstrap(dir, testConfig())
	if err != nil {
		f.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	srvCert, srvKey := read(ServerCertFile), read(ServerKeyFile)
	admCert, admKey := read(AdminCertFile), read(AdminKeyFile)
	f.Add(srvCert, srvKey)
	f.Add(admCert, admKey)
	f.Add(srvCert, admKey)
	f.Add(read(CACertFile), read(CAKeyFile))
	f.Add(srvCert[:len(srvCert)/2], srvKey)
	f.Add(append(append([]byte{}, srvCert...), srvCert...), srvKey)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte{})

	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		if len(certPEM)+len(keyPEM) > 64<<10 {
			return
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			pair, err := s.checkPair(certPEM, keyPEM, usage)
			if err != nil {
				continue
			}
			if err := pair.Leaf.CheckSignatureFrom(s.ca); err != nil {
				t.Fatalf("accepted a certificate the CA did not sign: %v", err)
			}
			if !hasUsage(pair.Leaf, usage) {
				t.Fatalf("accepted a certificate without usage %v", usage)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatalf("accepted a pair that crypto/tls refuses: %v", err)
			}
		}
	})
}
