package replica

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/firmware"
)

// CredentialsFormat names the credentials file's format and version.
const CredentialsFormat = "opendus-replica-credentials/1"

// RoleReplica is the role (the certificate's organizational unit) of a
// replica's client certificate.
const RoleReplica = "replica"

// ErrCredentials is returned by ParseCredentials for a file that is not
// a replica's credentials, or whose parts do not fit together.
var ErrCredentials = errors.New("invalid replica credentials")

// maxCredentialsBytes bounds the file ParseCredentials reads.
const maxCredentialsBytes = 1 << 20

// Credentials are what `devsvc replicas add` writes into one file and
// `devsvc init --replica-of` reads: who the replica is, where its primary
// is, and its certificates and keys, all under the primary's CA. The file
// holds private keys: keep it like one (mode 0600), move it to the
// replica's host by a safe way, and delete it once init has read it.
type Credentials struct {
	Format string `json:"format"`
	// Replica is the replica's name, Site the site it serves, Domain the
	// SIP/DNS domain (the primary's).
	Replica string `json:"replica"`
	Site    string `json:"site"`
	Domain  string `json:"domain"`
	// Primary are the primary's admin API addresses (host:port), tried in
	// order.
	Primary []string `json:"primary"`
	// PrimaryInternalURL and PrimaryExternalURL are the primary's base
	// URLs for devices: the alternative URLs a replica's answers give.
	PrimaryInternalURL string `json:"primaryInternalURL,omitempty"`
	PrimaryExternalURL string `json:"primaryExternalURL,omitempty"`
	// InternalName and ExternalName are the names the replica's devices
	// reach it by, which its server certificate covers (with Names).
	InternalName string   `json:"internalName"`
	ExternalName string   `json:"externalName,omitempty"`
	Names        []string `json:"names,omitempty"`
	// CA is the primary's CA certificate (PEM): devices trust it, and the
	// replica trusts only it.
	CA string `json:"ca"`
	// Cert and Key are the replica's client certificate (role replica)
	// and key, for the primary's admin API.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// ServerCert and ServerKey are its server certificate, for its own
	// names, issued by the CA.
	ServerCert string `json:"serverCert"`
	ServerKey  string `json:"serverKey"`
	// AdminCert and AdminKey are the admin certificate of the replica's
	// own data directory (devsvc status and the other commands run on the
	// replica's host): it is in the replica's registry only, never the
	// primary's.
	AdminCert string `json:"adminCert"`
	AdminKey  string `json:"adminKey"`
	// Issued is when the primary wrote them.
	Issued time.Time `json:"issued"`
}

// Marshal returns the credentials file's content.
func (c Credentials) Marshal() []byte {
	c.Format = CredentialsFormat
	data, _ := json.MarshalIndent(c, "", "  ")
	return append(data, '\n')
}

// ParseCredentials reads a credentials file and checks that it is whole:
// a known format, valid names, addresses and URLs, every certificate
// issued by the CA for its purpose (the client certificate named for the
// replica with the replica role, the server certificate for its internal
// name), and every key the one of its certificate. It lists every problem
// found.
func ParseCredentials(data []byte) (Credentials, error) {
	if len(data) > maxCredentialsBytes {
		return Credentials{}, fmt.Errorf("%w: %d bytes: not a credentials file", ErrCredentials, len(data))
	}
	var c Credentials
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Credentials{}, fmt.Errorf("%w: %v (devsvc replicas add writes the file; pass it as it is)", ErrCredentials, err)
	}
	if c.Format != CredentialsFormat {
		return Credentials{}, fmt.Errorf("%w: format %.40q, want %s: make the credentials with the same version of devsvc replicas add", ErrCredentials, c.Format, CredentialsFormat)
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := firmware.ValidReplicaName(c.Replica); err != nil {
		bad("replica: %v", err)
	}
	if err := firmware.ValidSiteName(c.Site); err != nil {
		bad("site: %v", err)
	}
	if _, err := certs.ServerNames(certs.Config{Domain: c.Domain, InternalName: c.InternalName, ExternalName: c.ExternalName, HostName: c.InternalName, ExtraNames: c.Names}); err != nil {
		bad("names: %v", err)
	}
	if c.InternalName == "" {
		bad("no internal name")
	}
	if len(c.Primary) == 0 || len(c.Primary) > 16 {
		bad("%d primary addresses, want 1 to 16", len(c.Primary))
	}
	for _, a := range c.Primary {
		if err := checkAddr(a); err != nil {
			bad("primary address %.64q: %v", a, err)
		}
	}
	for _, u := range []string{c.PrimaryInternalURL, c.PrimaryExternalURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" || pu.User != nil || pu.RawQuery != "" || pu.Fragment != "" {
			bad("primary URL %.64q: want https://host[:port]/", u)
		}
	}
	pool := x509.NewCertPool()
	ca, err := certs.ParseCertPEM([]byte(c.CA))
	if err != nil || !ca.IsCA {
		bad("the CA certificate: %v", orCA(err))
	} else {
		pool.AddCert(ca)
	}
	pair := func(what, certPEM, keyPEM string, usage x509.ExtKeyUsage) *x509.Certificate {
		p, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			bad("%s: %v", what, err)
			return nil
		}
		leaf := p.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(p.Certificate[0]); err != nil {
				bad("%s: %v", what, err)
				return nil
			}
		}
		if ca != nil {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				bad("%s is not one of the CA's: %v", what, err)
			}
		}
		return leaf
	}
	if leaf := pair("the replica certificate", c.Cert, c.Key, x509.ExtKeyUsageClientAuth); leaf != nil {
		if name, role := certs.ClientIdentity(leaf); name != c.Replica || role != RoleReplica {
			bad("the replica certificate is %q with role %q, want %q with role %s", name, role, c.Replica, RoleReplica)
		}
	}
	if leaf := pair("the admin certificate", c.AdminCert, c.AdminKey, x509.ExtKeyUsageClientAuth); leaf != nil {
		if _, role := certs.ClientIdentity(leaf); role != "admin" && role != "readonly" {
			bad("the admin certificate has role %q, want admin or readonly", role)
		}
	}
	if leaf := pair("the server certificate", c.ServerCert, c.ServerKey, x509.ExtKeyUsageServerAuth); leaf != nil && c.InternalName != "" {
		if err := leaf.VerifyHostname(c.InternalName); err != nil {
			bad("the server certificate does not cover %s: %v", c.InternalName, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Credentials{}, fmt.Errorf("%w:\n%w", ErrCredentials, err)
	}
	return c, nil
}

func orCA(err error) error {
	if err == nil {
		return errors.New("not a CA certificate")
	}
	return err
}

// checkAddr checks a host:port address.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if host == "" || strings.ContainsAny(host, "/ \t") {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("bad port")
	}
	return nil
}

// ParseAddr reads a primary's admin address as an admin gives it:
// host:port, or an https URL with a host and port
// (https://dus.contoso.com:9443); the port defaults to 9443.
func ParseAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		s = strings.TrimSuffix(rest, "/")
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		s = net.JoinHostPort(strings.Trim(s, "[]"), "9443")
	}
	if err := checkAddr(s); err != nil {
		return "", fmt.Errorf("primary address %q: %v: want host:port (dus.contoso.com:9443)", s, err)
	}
	return s, nil
}
