package firmware

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrCertSerial is returned by ParseCertSerial for a malformed serial.
var ErrCertSerial = errors.New("invalid certificate serial number")

// States of an admin certificate (AdminCert.State).
const (
	CertValid   = "valid"
	CertExpired = "expired"
	CertRevoked = "revoked"
)

// AdminCert is an admin client certificate the service issued, or found
// in its data directory: the record the admin API checks every call
// against, so that certificates can be listed and revoked.
type AdminCert struct {
	// Serial is the certificate's serial number in lower-case hex
	// without leading zeros (see ParseCertSerial): its key.
	Serial string `json:"serial"`
	// Name is the certificate's common name, the admin who holds it; the
	// history records its calls as "cert:" + Name.
	Name string `json:"name"`
	// Role is what it may do: admin or readonly.
	Role string `json:"role"`
	// SHA256 is the DER certificate's fingerprint as openssl prints it:
	// upper-case hex pairs joined by ':'.
	SHA256 string `json:"sha256"`
	// Issued is when the service issued (or first recorded) it; Expires
	// is its NotAfter.
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// IssuedBy is the actor that issued or recorded it.
	IssuedBy string `json:"issuedBy"`
	// Revoked, when set, is when it was revoked, by RevokedBy, for
	// Reason; the admin API refuses it from then on.
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revokedBy,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// State returns CertRevoked, CertExpired or CertValid at now.
func (c AdminCert) State(now time.Time) string {
	switch {
	case !c.Revoked.IsZero():
		return CertRevoked
	case !now.Before(c.Expires):
		return CertExpired
	}
	return CertValid
}

// ParseCertSerial reads a certificate serial number as admins copy it
// (hex, in either case, with or without ':' between the bytes, as openssl
// and devsvc certs list print it) and returns it in lower-case hex
// without leading zeros, the form AdminCert.Serial has.
func ParseCertSerial(s string) (string, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if t == "" || len(t) > 40 {
		return "", fmt.Errorf("%w %.48q: want up to 40 hex digits", ErrCertSerial, s)
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w %.48q: %q is not a hex digit", ErrCertSerial, s, c)
		}
	}
	if t = strings.TrimLeft(t, "0"); t == "" {
		return "", fmt.Errorf("%w %q: zero", ErrCertSerial, s)
	}
	return t, nil
}
