package directory

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The attributes come from the directory, which the service trusts less
// than itself: a value written by another tool, or by an attacker with
// write access to their own entry, must never panic or be half-read.

func FuzzParseNTHash(f *testing.F) {
	for _, s := range []string{"0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef", "", "NO PASSWORDXXXXXXXXXXXXXXXXXXXXX", "0123456789ABCDEF0123456789ABCDE\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseNTHash(s)
		if err != nil {
			if h != [16]byte{} {
				t.Fatalf("parseNTHash(%q) failed but returned %x", s, h)
			}
			return
		}
		if got := hex.EncodeToString(h[:]); got != strings.ToLower(s) {
			t.Fatalf("parseNTHash(%q) = %s, does not round-trip", s, got)
		}
	})
}

func FuzzParseAcctFlags(f *testing.F) {
	for _, s := range []string{"[U          ]", "[DU         ]", "[]", "U", "[u]", "[U          ] "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flags, err := parseAcctFlags(s)
		if err != nil {
			if flags != 0 {
				t.Fatalf("parseAcctFlags(%q) failed but returned %b", s, flags)
			}
			return
		}
		if len(s) > 16 || s[0] != '[' || s[len(s)-1] != ']' {
			t.Fatalf("parseAcctFlags(%q) accepted a malformed value", s)
		}
		for c := byte('A'); c <= 'Z'; c++ {
			if got, want := flags.has(c), strings.IndexByte(s, c) >= 0; got != want {
				t.Fatalf("parseAcctFlags(%q): flag %c = %v, want %v", s, c, got, want)
			}
		}
		if got, want := flags.disabled(), strings.ContainsAny(s, "DLWSI"); got != want {
			t.Fatalf("parseAcctFlags(%q): disabled = %v, want %v", s, got, want)
		}
	})
}

// FuzzUserFilter checks that no user name, plausible or not, changes the
// shape of the user and group filters: each compiles exactly as the
// template with the name hex-escaped byte by byte.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "a*", "admin)(uid=*", `\2a`, "al\x00ce", "é", "uid=x,dc=example,dc=com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if len(name) > 1024 {
			return
		}
		if err := sameFilter(DefaultUserFilter, "{user}", name); err != nil {
			t.Fatalf("user %q: %v", name, err)
		}
		if err := sameFilter(DefaultGroupFilter, "{dn}", name); err != nil {
			t.Fatalf("dn %q: %v", name, err)
		}
		if plausibleName(name) && strings.ContainsAny(name, "*()\\\x00 @") {
			t.Fatalf("plausibleName(%q) accepted a metacharacter", name)
		}
	})
}
