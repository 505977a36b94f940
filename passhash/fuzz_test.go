package passhash

import (
	"testing"
)

// FuzzParse feeds Parse arbitrary strings: it never panics, and what it
// accepts it writes back byte for byte (one spelling per hash), with
// parameters within bounds.
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Parse(s)
		if err != nil {
			return
		}
		if got := format(p, salt, key); got != s {
			t.Errorf("Parse(%q) accepted a spelling that formats as %q", s, got)
		}
		if p.validate() != nil {
			t.Errorf("Parse(%q) accepted out-of-bounds parameters %+v", s, p)
		}
	})
}
