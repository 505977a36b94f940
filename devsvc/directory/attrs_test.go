package directory

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/opendus/opendus/ntlm"
)

func TestParseNTHash(t *testing.T) {
	h := ntlm.NTHash("correct horse")
	upper := strings.ToUpper(hex.EncodeToString(h[:]))
	tests := []struct {
		in     string
		want   [16]byte
		wantOK bool
	}{
		{upper, h, true},
		{strings.ToLower(upper), h, true},
		{"00000000000000000000000000000000", [16]byte{}, true},
		{"", [16]byte{}, false},
		{upper[:31], [16]byte{}, false},
		{upper + "0", [16]byte{}, false},
		{" " + upper[1:], [16]byte{}, false},
		{"G" + upper[1:], [16]byte{}, false},
		{"NO PASSWORDXXXXXXXXXXXXXXXXXXXXX", [16]byte{}, false}, // Samba's placeholder
		{"{MD4}" + upper[5:], [16]byte{}, false},
	}
	for _, tt := range tests {
		got, err := parseNTHash(tt.in)
		if (err == nil) != tt.wantOK || got != tt.want {
			t.Errorf("parseNTHash(%q) = %x, %v; want %x, ok %v", tt.in, got, err, tt.want, tt.wantOK)
		}
	}
}

func TestParseAcctFlags(t *testing.T) {
	tests := []struct {
		in           string
		wantOK       bool
		wantDisabled bool
	}{
		{"[U          ]", true, false},
		{"[UX         ]", true, false},
		{"[U]", true, false},
		{"[]", true, false},
		{"[DU         ]", true, true},
		{"[UD]", true, true},
		{"[LU         ]", true, true},
		{"[W          ]", true, true},
		{"[S          ]", true, true},
		{"[I          ]", true, true},
		{"[UNX        ]", true, false},
		{"U", false, true},
		{"", false, true},
		{"[", false, true},
		{"[U", false, true},
		{"U]", false, true},
		{"[u          ]", false, true},
		{"[U          ] ", false, true},
		{"[U              ]", false, true}, // 17 characters
		{"[U\x00]", false, true},
	}
	for _, tt := range tests {
		f, err := parseAcctFlags(tt.in)
		if (err == nil) != tt.wantOK {
			t.Errorf("parseAcctFlags(%q) error %v, want ok %v", tt.in, err, tt.wantOK)
			continue
		}
		// As Directory.disabled reads them: malformed means disabled.
		if got := err != nil || f.disabled(); got != tt.wantDisabled {
			t.Errorf("parseAcctFlags(%q): disabled %v, want %v", tt.in, got, tt.wantDisabled)
		}
	}
}

func TestPlausibleName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"alice", true},
		{"Alice.Smith", true},
		{"phone-0042", true},
		{"a_b", true},
		{"0042", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".alice", false},
		{"-alice", false},
		{"_alice", false},
		{"al ice", false},
		{"al*ce", false},
		{"alice)", false},
		{"(alice", false},
		{`al\ce`, false},
		{"alice\x00", false},
		{"alicé", false},
		{"alice@example.com", false},
		{`DOMAIN\alice`, false},
		{"alice,ou=x", false},
		{"alice=x", false},
	}
	for _, tt := range tests {
		if got := plausibleName(tt.in); got != tt.want {
			t.Errorf("plausibleName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestExpandOracle compares expand with an independent escaper that
// writes every byte as \xx: both filters must compile to the same bytes.
func TestExpandOracle(t *testing.T) {
	for _, name := range []string{"alice", "*", "a*", "admin)(uid=*", `\2a`, "al\x00ce", "é", "(|(uid=*))", "\xff"} {
		if err := sameFilter(DefaultUserFilter, "{user}", name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// sameFilter checks that expanding value into template compiles exactly as
// the template with every byte of value hex-escaped (RFC 4515 allows any
// byte to be written so), or that both fail to compile.
func sameFilter(template, placeholder, value string) error {
	var all strings.Builder
	for i := 0; i < len(value); i++ {
		fmt.Fprintf(&all, `\%02x`, value[i])
	}
	got, gotErr := ldap.CompileFilter(expand(template, placeholder, value))
	want, wantErr := ldap.CompileFilter(strings.ReplaceAll(template, placeholder, all.String()))
	switch {
	case gotErr != nil && wantErr != nil:
		return nil
	case gotErr != nil || wantErr != nil:
		return fmt.Errorf("compile: %v, oracle: %v", gotErr, wantErr)
	case !bytes.Equal(got.Bytes(), want.Bytes()):
		return fmt.Errorf("filter %x, oracle %x", got.Bytes(), want.Bytes())
	}
	return nil
}
