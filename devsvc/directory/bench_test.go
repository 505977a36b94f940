package directory

import (
	"testing"
)

// BenchmarkLookupNT measures a lookup answered by slapd over a pooled
// LDAPS connection, and one answered by the cache.
func BenchmarkLookupNT(b *testing.B) {
	e := newEnv(b)
	for _, bc := range []struct {
		name string
		ttl  int
	}{{"slapd", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := e.config(false)
			if bc.ttl < 0 {
				cfg.CacheTTL = -1
			}
			d := open(b, cfg)
			for b.Loop() {
				if _, err := d.LookupNT(b.Context(), "", "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticate measures an admin sign-in: a search, a new TLS
// connection and bind as the user, and a group search.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			d := open(b, e.config(tr.startTLS))
			for b.Loop() {
				if _, err := d.Authenticate(b.Context(), "erin", erin.Password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
