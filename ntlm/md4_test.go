package ntlm

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestMD4RFC1320(t *testing.T) {
	// The test suite of RFC 1320 appendix A.5.
	tests := []struct{ in, want string }{
		{"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
		{"a", "bde52cb31de33e46245e05fbdbd6fb24"},
		{"abc", "a448017aaf21d8525fc10ae87aa6729d"},
		{"message digest", "d9130a8164549fe818874806e1c7014b"},
		{"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"},
		{strings.Repeat("1234567890", 8), "e33b4ddc9c38f2199c3e7b164fcc0536"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sum := md4Sum([]byte(tt.in))
			if got := hex.EncodeToString(sum[:]); got != tt.want {
				t.Errorf("md4Sum(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestMD4BlockBoundaries(t *testing.T) {
	// Lengths around the 56- and 64-byte padding boundaries must all hash
	// without panicking and to distinct values.
	seen := map[[16]byte]int{}
	for n := 50; n <= 130; n++ {
		sum := md4Sum([]byte(strings.Repeat("x", n)))
		if m, dup := seen[sum]; dup {
			t.Fatalf("md4Sum of %d and %d bytes collide", m, n)
		}
		seen[sum] = n
	}
}

func TestNTHash(t *testing.T) {
	// [MS-NLMP] 4.2.2.1.2: NTOWFv1("Password").
	got := NTHash("Password")
	if want := "a4f49c406510bdcab6824ee7c30fd852"; hex.EncodeToString(got[:]) != want {
		t.Errorf("NTHash(%q) = %x, want %s", "Password", got, want)
	}
}
