package firmware

import (
	"errors"
	"testing"
	"time"
)

func TestParseCertSerial(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"3f9a", "3f9a", nil},
		{"3F:9A", "3f9a", nil},
		{" 00:3f:9a ", "3f9a", nil},
		{"0", "", ErrCertSerial},
		{"", "", ErrCertSerial},
		{"helpdesk", "", ErrCertSerial},
		{"0123456789abcdef0123456789abcdef012345678", "", ErrCertSerial},
	}
	for _, tt := range tests {
		got, err := ParseCertSerial(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseCertSerial(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestAdminCertState(t *testing.T) {
	c := AdminCert{Expires: t0.Add(time.Hour)}
	if got := c.State(t0); got != CertValid {
		t.Errorf("State before expiry = %s", got)
	}
	if got := c.State(t0.Add(time.Hour)); got != CertExpired {
		t.Errorf("State at expiry = %s", got)
	}
	c.Revoked = t0
	if got := c.State(t0); got != CertRevoked {
		t.Errorf("State revoked = %s", got)
	}
}
