package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrIdentity is returned when a device identity or one of its names is
// malformed.
var ErrIdentity = errors.New("invalid device identity")

// Device types known to the service.
const (
	UCPhone    = "UCPhone"    // desk phones
	RoundTable = "RoundTable" // conference units
)

// MaxNameLen bounds each of an identity's five names.
const MaxNameLen = 64

// Identity names the kind of device a rule applies to. Its path form,
// DeviceType/Vendor/Model/Revision/Locale, is also its place in the file
// store.
type Identity struct {
	DeviceType string `json:"deviceType"`
	Vendor     string `json:"vendor"`
	Model      string `json:"model"`
	Revision   string `json:"revision"`
	Locale     string `json:"locale"`
}

// Path returns DeviceType/Vendor/Model/Revision/Locale.
func (id Identity) Path() string {
	return id.DeviceType + "/" + id.Vendor + "/" + id.Model + "/" + id.Revision + "/" + id.Locale
}

// String is Path.
func (id Identity) String() string { return id.Path() }

// RuleID returns the identity's stable rule ID: the first 8 bytes of the
// SHA-256 of its path, in hex. Every server derives the same ID for the same
// identity, so mirrors and scripts can name rules portably.
func (id Identity) RuleID() string {
	sum := sha256.Sum256([]byte(id.Path()))
	return hex.EncodeToString(sum[:8])
}

// Validate checks that every name is present, at most MaxNameLen bytes, and
// made only of ASCII letters, digits, '-', '_' and '.', not starting with a
// dot, so that the path form is safe as a directory name on every system.
// DeviceType is UCPhone or RoundTable.
func (id Identity) Validate() error {
	names := [...]struct{ field, value string }{
		{"DeviceType", id.DeviceType}, {"Vendor", id.Vendor}, {"Model", id.Model},
		{"Revision", id.Revision}, {"Locale", id.Locale},
	}
	for _, n := range names {
		if err := ValidName(n.value); err != nil {
			return fmt.Errorf("%w: %s %w", ErrIdentity, n.field, err)
		}
	}
	if id.DeviceType != UCPhone && id.DeviceType != RoundTable {
		return fmt.Errorf("%w: DeviceType %q is neither %s nor %s", ErrIdentity, id.DeviceType, UCPhone, RoundTable)
	}
	return nil
}

// Printable reports whether s is valid UTF-8 without control characters:
// free text a device sends (a user, an error code, a module's timestamp).
func Printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// ValidName reports whether s may be used as one name of an identity or as
// a file name in the store: 1..MaxNameLen bytes of ASCII letters, digits,
// '-', '_' and '.', not starting with a dot.
func ValidName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%.16q... is longer than %d bytes", s, MaxNameLen)
	}
	if s[0] == '.' {
		return fmt.Errorf("%q starts with a dot", s)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q has the character %q; use letters, digits, '-', '_' and '.'", s, c)
		}
	}
	return nil
}

// ParseIdentity parses the path form DeviceType/Vendor/Model/Revision/Locale
// and validates it.
func ParseIdentity(path string) (Identity, error) {
	parts := strings.Split(path, "/")
	if len(parts) != 5 {
		return Identity{}, fmt.Errorf("%w %q: want DeviceType/Vendor/Model/Revision/Locale, like UCPhone/Polycom/CX600/A/ENU", ErrIdentity, path)
	}
	id := Identity{DeviceType: parts[0], Vendor: parts[1], Model: parts[2], Revision: parts[3], Locale: parts[4]}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// DeploysOnImport reports whether an import for id is approved at once:
// RoundTable units deploy on import, as the original service does, unless
// the admin turned that off (deployRoundTable false).
func DeploysOnImport(id Identity, deployRoundTable bool) bool {
	return deployRoundTable && id.DeviceType == RoundTable
}
