package provisioning

import (
	"errors"
	"fmt"
	"strings"
)

// FallbackLabel is the first label of the name a device that was never
// signed in looks up: ucupdates-r2.<domain>.
const FallbackLabel = "ucupdates-r2"

// ErrInvalidDomain is returned when a domain or host name is not a valid
// DNS name.
var ErrInvalidDomain = errors.New("provisioning: invalid domain")

// FallbackHost returns ucupdates-r2.<domain>, the name a device that was
// never signed in looks up in DNS to find the update service; the service
// is then https://<FallbackHost>/ and its check-in URL that plus
// CheckInPath.
func FallbackHost(domain string) (string, error) {
	d, err := CanonicalDomain(domain)
	if err != nil {
		return "", err
	}
	return FallbackLabel + "." + d, nil
}

// CanonicalDomain checks that domain is a DNS name under which
// ucupdates-r2.<domain> is a valid host name (letters, digits and hyphens,
// labels of 1 to 63 bytes not starting or ending with a hyphen, at most 253
// bytes in all) and returns it lower-case without a final dot.
func CanonicalDomain(domain string) (string, error) {
	return canonicalName(domain, len(FallbackLabel)+1)
}

// canonicalName checks that name is a host name that leaves room for
// prefix more bytes, and returns it lower-case without a final dot.
func canonicalName(name string, prefix int) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(name, "."))
	if d == "" || prefix+len(d) > 253 {
		return "", fmt.Errorf("%w: %q", ErrInvalidDomain, name)
	}
	for label := range strings.SplitSeq(d, ".") {
		if !validLabel(label) {
			return "", fmt.Errorf("%w: %q: label %q", ErrInvalidDomain, name, label)
		}
	}
	return d, nil
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
