package service

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// CertIssuer signs admin client certificates for keys their owners made;
// *certs.Store is one.
type CertIssuer interface {
	SignClient(pub crypto.PublicKey, name, role string) (certPEM []byte, err error)
}

// AdminCertOf is the registry record of an admin client certificate: its
// serial, name, role, fingerprint and expiry.
func AdminCertOf(cert *x509.Certificate) firmware.AdminCert {
	name, role := certs.ClientIdentity(cert)
	d := certs.Describe(name, cert, time.Now())
	return firmware.AdminCert{Serial: d.Serial, Name: name, Role: role, SHA256: d.SHA256, Expires: cert.NotAfter}
}

// RecordAdminCert records cert in st's registry of admin certificates as
// actor, unless it is there already (recorded false): what the
// composition does for the data directory's own admin.pem, at init and
// at every start, so that it keeps working after an upgrade from a
// version without the registry, or after a PKI was copied in. A
// certificate recorded already keeps its state, so a revoked admin.pem
// stays revoked.
func RecordAdminCert(ctx context.Context, st *store.Store, actor string, cert *x509.Certificate, note string) (recorded bool, err error) {
	c := AdminCertOf(cert)
	if _, err := st.AdminCert(ctx, c.Serial); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if err := st.AddAdminCert(ctx, actor, c, note); err != nil {
		return false, err
	}
	return true, nil
}

// CertPrincipal is the principal of a verified client certificate (one
// that chains to the service's CA: the transport checked that), named
// "cert:" + its common name, with the role of its organizational unit. It
// is refused, ErrForbidden with a message that names the certificate,
// when its role is not an admin role, when the registry has no record of
// it (it was not issued by this service: devsvc certs issue, or found as
// the data directory's admin.pem) or when it was revoked. Every transport
// calls it on every call, so a revocation takes effect at once.
func (s *Service) CertPrincipal(ctx context.Context, cert *x509.Certificate) (Principal, error) {
	name, role := certs.ClientIdentity(cert)
	if name == "" {
		name = "unnamed"
	}
	switch Role(role) {
	case RoleAdmin, RoleReadOnly, RoleReplica:
	default:
		return Principal{}, fmt.Errorf("%w: certificate %q has no admin role (its OU is %q): ask an admin for one made with devsvc certs issue --role admin|readonly", ErrForbidden, name, role)
	}
	serial := cert.SerialNumber.Text(16)
	rec, err := s.st.AdminCert(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, fmt.Errorf("%w: certificate %q (serial %s) is not one this service issued: it is not in its registry of admin certificates (devsvc certs list). Ask an admin for one made with devsvc certs issue", ErrForbidden, name, serial)
	case err != nil:
		return Principal{}, err
	case !rec.Revoked.IsZero():
		reason := ""
		if rec.Reason != "" {
			reason = " (" + rec.Reason + ")"
		}
		what := "ask an admin for a new one (devsvc certs issue)"
		if Role(role) == RoleReplica {
			what = "this replica was removed; to make it one again, an admin adds it again on the primary (devsvc replicas add) and initialises it with the new credentials"
		}
		return Principal{}, fmt.Errorf("%w: certificate %q (serial %s) was revoked on %s by %s%s: %s",
			ErrForbidden, name, serial, rec.Revoked.UTC().Format(time.RFC3339), rec.RevokedBy, reason, what)
	case rec.Name != name || rec.Role != role:
		return Principal{}, fmt.Errorf("%w: certificate %q (serial %s, role %s) does not match the registry's record of that serial (%q, role %s)", ErrForbidden, name, serial, role, rec.Name, rec.Role)
	}
	if Role(role) == RoleReplica {
		return Principal{Name: "replica:" + name, Role: RoleReplica, CertSerial: serial}, nil
	}
	return Principal{Name: "cert:" + name, Role: Role(role), CertSerial: serial}, nil
}

// IssueAdminCert issues an admin client certificate named name with role
// (admin or readonly) for the public key pubDER (PKIX DER, ECDSA P-256:
// the key stays with its owner), records it in the registry and the
// history, and returns the record and the certificate as PEM.
func (s *Service) IssueAdminCert(ctx context.Context, name string, role Role, pubDER []byte) (firmware.AdminCert, []byte, error) {
	p, err := s.change(ctx, "issue admin certificates")
	if err != nil {
		return firmware.AdminCert{}, nil, err
	}
	if role != RoleAdmin && role != RoleReadOnly {
		return firmware.AdminCert{}, nil, fmt.Errorf("%w: role %q: want %s or %s", ErrInvalid, role, RoleAdmin, RoleReadOnly)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return firmware.AdminCert{}, nil, fmt.Errorf("%w: the public key to certify: %v", ErrInvalid, err)
	}
	if s.cfg.Issuer == nil {
		return firmware.AdminCert{}, nil, errors.New("this service has no CA key to issue certificates with")
	}
	certPEM, err := s.cfg.Issuer.SignClient(pub, name, string(role))
	switch {
	case errors.Is(err, certs.ErrInvalidName), errors.Is(err, certs.ErrCorrupt):
		return firmware.AdminCert{}, nil, invalid(err)
	case errors.Is(err, certs.ErrNoCAKey):
		return firmware.AdminCert{}, nil, fmt.Errorf("%w: put ca.key back into the certs directory to issue certificates", err)
	case err != nil:
		return firmware.AdminCert{}, nil, err
	}
	cert, err := certs.ParseCertPEM(certPEM)
	if err != nil {
		return firmware.AdminCert{}, nil, err
	}
	rec := AdminCertOf(cert)
	if err := s.st.AddAdminCert(ctx, p.Name, rec, ""); err != nil {
		return firmware.AdminCert{}, nil, err
	}
	if rec, err = s.st.AdminCert(ctx, rec.Serial); err != nil {
		return firmware.AdminCert{}, nil, err
	}
	s.cfg.Logger.Info("admin certificate issued", "name", rec.Name, "role", rec.Role, "serial", rec.Serial, "actor", p.Name)
	return rec, certPEM, nil
}

// AdminCerts lists the registry of admin certificates.
func (s *Service) AdminCerts(ctx context.Context) ([]firmware.AdminCert, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.AdminCerts(ctx)
}

// RevokeAdminCert revokes the admin certificate ref names, by serial (as
// devsvc certs list prints it) or by name when exactly one certificate of
// that name is not revoked; from then on every call made with it is
// refused. The certificate the caller is signed in with cannot be revoked
// through it (that would lock the caller out mid-call): sign in with
// another one.
func (s *Service) RevokeAdminCert(ctx context.Context, ref, reason string) (firmware.AdminCert, error) {
	p, err := s.change(ctx, "revoke admin certificates")
	if err != nil {
		return firmware.AdminCert{}, err
	}
	serial, err := s.resolveCert(ctx, ref)
	if err != nil {
		return firmware.AdminCert{}, err
	}
	if serial == p.CertSerial {
		return firmware.AdminCert{}, fmt.Errorf("%w: %s is the certificate you are signed in with (serial %s): revoke it with another admin certificate, or with devsvc certs revoke --offline while the server is stopped", ErrInvalid, ref, serial)
	}
	c, err := s.st.RevokeAdminCert(ctx, p.Name, serial, reason)
	if err != nil {
		return firmware.AdminCert{}, err
	}
	s.cfg.Logger.Warn("admin certificate revoked", "name", c.Name, "serial", c.Serial, "actor", p.Name, "reason", reason)
	return c, nil
}

// resolveCert returns the serial of the certificate ref names: a serial
// in the registry, else the one certificate not revoked with that name.
func (s *Service) resolveCert(ctx context.Context, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", fmt.Errorf("%w: name the certificate by its name or serial (devsvc certs list)", ErrInvalid)
	}
	if serial, err := firmware.ParseCertSerial(ref); err == nil {
		if _, err := s.st.AdminCert(ctx, serial); err == nil {
			return serial, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	all, err := s.st.AdminCerts(ctx)
	if err != nil {
		return "", err
	}
	var match []firmware.AdminCert
	revoked := 0
	for _, c := range all {
		if strings.EqualFold(c.Name, ref) {
			if c.Revoked.IsZero() {
				match = append(match, c)
			} else {
				revoked++
			}
		}
	}
	switch len(match) {
	case 0:
		if revoked > 0 {
			return "", fmt.Errorf("every admin certificate named %q is %w", ref, store.ErrRevoked)
		}
		return "", fmt.Errorf("admin certificate %q %w: name one by its name or serial, as devsvc certs list shows them", ref, store.ErrNotFound)
	case 1:
		return match[0].Serial, nil
	}
	serials := make([]string, len(match))
	for i, c := range match {
		serials[i] = c.Serial
	}
	return "", fmt.Errorf("%w: %d admin certificates named %q are valid (serials %s): name the one to revoke by its serial", ErrInvalid, len(match), ref, strings.Join(serials, ", "))
}
