package firmware

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrVersion is returned when a version string is not four dotted numbers.
var ErrVersion = errors.New("invalid version")

// Version is a firmware version of four dotted numbers, such as
// 4.0.7577.4372. The zero value means "no version": 0.0.0.0 is never a real
// firmware version, and Parse refuses it.
type Version [4]uint32

// maxVersionLen bounds the input Parse looks at: four 10-digit numbers and
// three dots.
const maxVersionLen = 4*10 + 3

// ParseVersion parses four dotted decimal numbers, each 0..4294967295,
// without signs, spaces or leading zeros.
func ParseVersion(s string) (Version, error) {
	var v Version
	if len(s) > maxVersionLen {
		return Version{}, fmt.Errorf("%w %.20q...: longer than %d characters", ErrVersion, s, maxVersionLen)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return Version{}, fmt.Errorf("%w %q: want four dotted numbers like 4.0.7577.4372, got %d part(s)", ErrVersion, s, len(parts))
	}
	for i, p := range parts {
		if p == "" {
			return Version{}, fmt.Errorf("%w %q: part %d is empty", ErrVersion, s, i+1)
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return Version{}, fmt.Errorf("%w %q: part %d (%q) is not a decimal number", ErrVersion, s, i+1, p)
			}
		}
		if len(p) > 1 && p[0] == '0' {
			return Version{}, fmt.Errorf("%w %q: part %d (%q) has a leading zero", ErrVersion, s, i+1, p)
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("%w %q: part %d (%q) is larger than 4294967295", ErrVersion, s, i+1, p)
		}
		v[i] = uint32(n)
	}
	if v.IsZero() {
		return Version{}, fmt.Errorf("%w %q: 0.0.0.0 is not a firmware version", ErrVersion, s)
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants in tests and examples; it
// panics on a malformed version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// IsZero reports whether v is "no version".
func (v Version) IsZero() bool { return v == Version{} }

// String returns the dotted form, or "" for no version.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	var b [maxVersionLen]byte
	out := b[:0]
	for i, n := range v {
		if i > 0 {
			out = append(out, '.')
		}
		out = strconv.AppendUint(out, uint64(n), 10)
	}
	return string(out)
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w,
// comparing the four numbers in order. No version is older than any version.
func (v Version) Compare(w Version) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler (JSON and XML use it).
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is no version.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = Version{}
		return nil
	}
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
