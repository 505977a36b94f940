package passhash

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/opendus/opendus/internal/testtool"
)

// cheap keeps the tests quick; the parameters are in the string.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestVector checks the argon2id vector of the reference implementation's
// test suite (phc-winner-argon2 src/test.c), which the Debian argon2 tool
// prints too: echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -e.
func TestVector(t *testing.T) {
	const want = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, err := Verify(want, "password")
	if err != nil || !ok {
		t.Fatalf("Verify(vector, password) = %v, %v; want true", ok, err)
	}
	if ok, err := Verify(want, "passwore"); err != nil || ok {
		t.Errorf("Verify(vector, passwore) = %v, %v; want false", ok, err)
	}
	p, salt, key, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := format(p, salt, key); got != want {
		t.Errorf("format(Parse(vector)) = %s, want %s", got, want)
	}
}

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash = %s, want the PHC form with its parameters", h)
	}
	h2, _ := Hash("correct horse battery staple", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"", false},
		{"Correct horse battery staple", false},
	} {
		if got, err := Verify(h, tc.pw); err != nil || got != tc.want {
			t.Errorf("Verify(h, %q) = %v, %v; want %v", tc.pw, got, err, tc.want)
		}
	}
	if _, err := Hash("x", Params{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}); !errors.Is(err, ErrFormat) {
		t.Errorf("Hash with 1 TiB of memory = %v, want ErrFormat", err)
	}
}

func TestDefaultIsOWASP(t *testing.T) {
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if Default != want {
		t.Errorf("Default = %+v, want OWASP's m=19456 t=2 p=1 (%+v)", Default, want)
	}
}

func TestParseRefuses(t *testing.T) {
	good := format(cheap, []byte("0123456789abcdef"), make([]byte, 32))
	if _, _, _, err := Parse(good); err != nil {
		t.Fatalf("Parse(%s) = %v", good, err)
	}
	for _, s := range []string{
		"",
		"password",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=064,t=1,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=+64,t=1,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=999999999,t=1,p=1", 1), // 1 TB
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=0,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1,p=300", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1,p=0", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=4,t=1,p=1", 1),
		good + "$",
		good + "=",
		strings.Replace(good, "$MDEy", "$!DEy", 1),
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + strings.Repeat("A", 43), // salt too short
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAA",       // key too short
		strings.Repeat("$", 600),
	} {
		if _, _, _, err := Parse(s); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%q) = %v, want ErrFormat", s, err)
		}
		if ok, err := Verify(s, "x"); ok || !errors.Is(err, ErrFormat) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrFormat", s, ok, err)
		}
	}
}

// TestArgon2Tool checks the hashes against the reference implementation,
// Debian's argon2 tool, for several parameters.
func TestArgon2Tool(t *testing.T) {
	bin := testtool.Need(t, "argon2")
	for _, p := range []Params{
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 256, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32},
		{Memory: 1024, Time: 2, Threads: 4, SaltLen: 16, KeyLen: 16},
		Default,
	} {
		salt := []byte("opendus-salt-123")
		const pw = "Winter is coming, 2026!"
		// argon2 takes memory as a power of two (KiB) with -m.
		log2 := strconv.Itoa(bitsLen(p.Memory) - 1)
		if 1<<(bitsLen(p.Memory)-1) != p.Memory {
			// Default's 19456 KiB is no power of two: -k takes KiB.
			log2 = ""
		}
		args := []string{string(salt), "-id", "-t", strconv.Itoa(int(p.Time)), "-p", strconv.Itoa(int(p.Threads)), "-l", strconv.Itoa(int(p.KeyLen)), "-e"}
		if log2 != "" {
			args = append(args, "-m", log2)
		} else {
			args = append(args, "-k", strconv.Itoa(int(p.Memory)))
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(pw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("argon2 %v: %v", args, err)
		}
		want := strings.TrimSpace(string(out))
		key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		if got := format(p, salt, key); got != want {
			t.Errorf("params %+v: ours %s, argon2 tool %s", p, got, want)
		}
		if ok, err := Verify(want, pw); !ok || err != nil {
			t.Errorf("Verify(argon2 tool's %s) = %v, %v", want, ok, err)
		}
	}
}

func bitsLen(n uint32) int {
	l := 0
	for ; n > 0; n >>= 1 {
		l++
	}
	return l
}
