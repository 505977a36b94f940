// Package passhash hashes and verifies passwords with argon2id (RFC 9106)
// and writes the hash in the PHC string format that libargon2 and most
// libraries read:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<key, base64>
//
// The string carries its own parameters, so a hash made with older
// parameters keeps verifying after the defaults change. It is the only
// package that imports golang.org/x/crypto.
//
// # Parameters
//
// Default is OWASP's first recommended argon2id configuration (Password
// Storage Cheat Sheet): 19 MiB of memory, 2 passes, 1 lane, a 16-byte
// salt and a 32-byte key. OWASP lists it as equivalent in strength to its
// other configurations, which trade memory for passes; it is the one that
// asks least memory of a hash. That is what matters on a small server
// where a burst of sign-ins runs hashes at once: each takes Memory for its
// duration, so 19 MiB keeps a few concurrent sign-ins far from memory
// pressure, where RFC 9106's second recommended option (64 MiB, 3 passes,
// 4 lanes) would take 64 MiB each and its 4 lanes buy nothing on two
// cores. Callers bound how many hashes run at once.
//
// # Verification
//
// Verify recomputes the key with the parameters and salt of the string
// and compares it in constant time. Parse bounds every parameter it
// reads (at most 256 MiB, 16 passes, 16 lanes), so a corrupted stored
// string cannot make a verification take the machine's memory.
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrFormat is returned by Parse and Verify for a string that is not an
// argon2id hash in the PHC format, or whose parameters are out of bounds.
var ErrFormat = errors.New("passhash: not an argon2id hash")

// Params are argon2id's cost parameters and sizes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// Default is OWASP's first recommended configuration: m=19 MiB, t=2, p=1.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds Parse accepts.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

func (p Params) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: memory %d KiB out of bounds", ErrFormat, p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: %d passes out of bounds", ErrFormat, p.Time)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: %d lanes out of bounds", ErrFormat, p.Threads)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("%w: salt of %d bytes out of bounds", ErrFormat, p.SaltLen)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("%w: key of %d bytes out of bounds", ErrFormat, p.KeyLen)
	}
	return nil
}

var b64 = base64.RawStdEncoding

// Hash returns the argon2id hash of password with p and a new random
// salt, in the PHC string format.
func Hash(password string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return format(p, salt, key), nil
}

func format(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Parse reads a hash in the PHC string format: its parameters, salt and
// key. It returns ErrFormat (wrapped) for anything else, and for
// parameters out of bounds.
func Parse(encoded string) (p Params, salt, key []byte, err error) {
	if len(encoded) > 512 {
		return p, nil, nil, fmt.Errorf("%w: %d bytes long", ErrFormat, len(encoded))
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: want $argon2id$v=19$m=N,t=N,p=N$salt$key", ErrFormat)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q, want v=%d", ErrFormat, f[2], argon2.Version)
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q, want m=N,t=N,p=N", ErrFormat, f[3])
	}
	var n [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		u, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v != strconv.FormatUint(u, 10) {
			return p, nil, nil, fmt.Errorf("%w: parameters %q, want m=N,t=N,p=N", ErrFormat, f[3])
		}
		n[i] = uint32(u)
	}
	if n[2] > maxThreads {
		return p, nil, nil, fmt.Errorf("%w: %d lanes out of bounds", ErrFormat, n[2])
	}
	p.Memory, p.Time, p.Threads = n[0], n[1], uint8(n[2])
	if salt, err = b64.Strict().DecodeString(f[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %v", ErrFormat, err)
	}
	if key, err = b64.Strict().DecodeString(f[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: key: %v", ErrFormat, err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.validate(); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

// Verify reports whether password is the one encoded was made from,
// comparing in constant time. A malformed encoded is ErrFormat.
func Verify(encoded, password string) (bool, error) {
	p, salt, key, err := Parse(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
