package ntlm

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
)

// NTHash returns the NT one-way function of password as [MS-NLMP] section
// 3.3.1 defines it: MD4 of the password encoded as UTF-16LE. It is what an
// account store keeps instead of the password; NTLMv2 keys everything on it.
func NTHash(password string) [16]byte {
	return md4Sum(utf16LE(password))
}

// md4Sum is the MD4 message digest of RFC 1320. It lives here because NTLM
// needs it and golang.org/x/crypto/md4 is deprecated; nothing else may use
// it, MD4 is broken as a general-purpose hash.
func md4Sum(msg []byte) [16]byte {
	a, b, c, d := uint32(0x67452301), uint32(0xefcdab89), uint32(0x98badcfe), uint32(0x10325476)

	// Padding (RFC 1320 section 3.1 and 3.2): a 1 bit, zeros up to 56 mod
	// 64 bytes, then the bit length as a 64-bit little-endian integer.
	n := len(msg)
	padded := make([]byte, (n+8)/64*64+64)
	copy(padded, msg)
	padded[n] = 0x80
	binary.LittleEndian.PutUint64(padded[len(padded)-8:], uint64(n)<<3)

	var x [16]uint32
	for blk := padded; len(blk) > 0; blk = blk[64:] {
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(blk[4*i:])
		}
		aa, bb, cc, dd := a, b, c, d

		// Round 1: F(X,Y,Z) = XY v not(X) Z.
		f := func(x, y, z uint32) uint32 { return x&y | ^x&z }
		for _, i := range [4]int{0, 4, 8, 12} {
			a = bits.RotateLeft32(a+f(b, c, d)+x[i], 3)
			d = bits.RotateLeft32(d+f(a, b, c)+x[i+1], 7)
			c = bits.RotateLeft32(c+f(d, a, b)+x[i+2], 11)
			b = bits.RotateLeft32(b+f(c, d, a)+x[i+3], 19)
		}

		// Round 2: G(X,Y,Z) = XY v XZ v YZ, plus 0x5A827999.
		g := func(x, y, z uint32) uint32 { return x&y | x&z | y&z }
		for _, i := range [4]int{0, 1, 2, 3} {
			a = bits.RotateLeft32(a+g(b, c, d)+x[i]+0x5a827999, 3)
			d = bits.RotateLeft32(d+g(a, b, c)+x[i+4]+0x5a827999, 5)
			c = bits.RotateLeft32(c+g(d, a, b)+x[i+8]+0x5a827999, 9)
			b = bits.RotateLeft32(b+g(c, d, a)+x[i+12]+0x5a827999, 13)
		}

		// Round 3: H(X,Y,Z) = X xor Y xor Z, plus 0x6ED9EBA1.
		for _, i := range [4]int{0, 2, 1, 3} {
			a = bits.RotateLeft32(a+(b^c^d)+x[i]+0x6ed9eba1, 3)
			d = bits.RotateLeft32(d+(a^b^c)+x[i+8]+0x6ed9eba1, 9)
			c = bits.RotateLeft32(c+(d^a^b)+x[i+4]+0x6ed9eba1, 11)
			b = bits.RotateLeft32(b+(c^d^a)+x[i+12]+0x6ed9eba1, 15)
		}

		a, b, c, d = a+aa, b+bb, c+cc, d+dd
	}

	var sum [16]byte
	binary.LittleEndian.PutUint32(sum[0:], a)
	binary.LittleEndian.PutUint32(sum[4:], b)
	binary.LittleEndian.PutUint32(sum[8:], c)
	binary.LittleEndian.PutUint32(sum[12:], d)
	return sum
}

// utf16LE encodes s as UTF-16 little-endian, the encoding of every string in
// a Unicode NTLM exchange and of the password in NTHash.
func utf16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

// fromUTF16LE decodes UTF-16 little-endian bytes; ok is false for an odd
// length. Unpaired surrogates decode to U+FFFD.
func fromUTF16LE(b []byte) (s string, ok bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), true
}
