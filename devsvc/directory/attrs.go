package directory

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// maxNameLen is the longest user name looked up. sAMAccountName allows 20
// characters and Samba and POSIX names 32; 64 leaves room for both.
const maxNameLen = 64

// plausibleName reports whether s looks like an account name: 1 to
// maxNameLen ASCII letters, digits, '.', '-' and '_', starting with a letter
// or digit. Anything else (filter metacharacters, NUL, spaces, non-ASCII) is
// refused before it reaches the directory.
func plausibleName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// expand replaces every occurrence of placeholder in template with value
// escaped as an RFC 4515 assertion value, so that value can only ever be
// compared, never parsed as filter syntax.
func expand(template, placeholder, value string) string {
	return strings.ReplaceAll(template, placeholder, ldap.EscapeFilter(value))
}

// checkTemplate returns an error unless template contains placeholder and
// compiles as a filter once it is replaced.
func checkTemplate(name, template, placeholder string) error {
	if !strings.Contains(template, placeholder) {
		return fmt.Errorf("%s %q does not contain %s", name, template, placeholder)
	}
	if _, err := ldap.CompileFilter(expand(template, placeholder, "x")); err != nil {
		return fmt.Errorf("%s %q: %w", name, template, err)
	}
	return nil
}

// errBadHash is returned by parseNTHash for a value that is not 32
// hexadecimal digits.
var errBadHash = errors.New("NT hash is not 32 hexadecimal digits")

// parseNTHash decodes an NT hash attribute: exactly 32 hexadecimal digits,
// either case, nothing around them.
func parseNTHash(s string) ([16]byte, error) {
	var h [16]byte
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: %d characters", errBadHash, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return [16]byte{}, errBadHash
	}
	return h, nil
}

// errBadFlags is returned by parseAcctFlags for a malformed value.
var errBadFlags = errors.New("account flags are not [LETTERS] of at most 16 characters")

// acctFlags is the set of Samba account flag letters present.
type acctFlags uint32

func (f acctFlags) has(c byte) bool { return f&(1<<(c-'A')) != 0 }

// disabled reports whether the flags forbid signing in: D (disabled), L
// (auto-locked), or W, S, I (workstation, server and interdomain trust
// accounts, which are not people).
func (f acctFlags) disabled() bool {
	for _, c := range []byte("DLWSI") {
		if f.has(c) {
			return true
		}
	}
	return false
}

// parseAcctFlags decodes a Samba sambaAcctFlags value: '[', upper-case
// flag letters and spaces, ']', at most 16 characters in all (the
// attribute's syntax bound). Letters not known here are kept but mean
// nothing.
func parseAcctFlags(s string) (acctFlags, error) {
	if len(s) < 2 || len(s) > 16 || s[0] != '[' || s[len(s)-1] != ']' {
		return 0, errBadFlags
	}
	var f acctFlags
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == ' ':
		case 'A' <= c && c <= 'Z':
			f |= 1 << (c - 'A')
		default:
			return 0, errBadFlags
		}
	}
	return f, nil
}
