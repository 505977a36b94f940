package updatemeta

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// fleetRules returns n rules of realistic shape: an approved and a
// pending version with an image and its catalog each.
func fleetRules(n int) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		r := Rule{Identity: fmt.Sprintf("UCPhone/Vendor%02d/Model%02d/A/ENU", i/10, i), Approved: "4.0.7577.4372", Pending: "4.0.7577.4400"}
		for _, v := range []string{r.Approved, r.Pending} {
			for _, name := range []string{"CPE.nbt", "CPE.cat"} {
				r.Files = append(r.Files, File{Version: v, Name: name, Length: 20 << 20, SHA256: sum(r.Identity + v + name), Pieces: sum("pieces" + r.Identity + v + name)})
			}
		}
		rules[i] = r
	}
	return rules
}

// BenchmarkPublish is the primary's signing cost per catalog change with
// 50 rules: targets, snapshot and timestamp signed anew.
func BenchmarkPublish(b *testing.B) {
	k, err := Init(b.TempDir(), t0, 365*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner(k)
	rules := fleetRules(50)
	set, _, err := s.Publish(nil, rules, t0, exp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rules[0].Pending = fmt.Sprintf("4.0.7577.%d", 5000+i%1000) // a change
		rules[0].Files[2].Version, rules[0].Files[3].Version = rules[0].Pending, rules[0].Pending
		if set, _, err = s.Publish(&set, rules, t0, exp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(set.Target)), "targets-bytes")
}

// BenchmarkRefresh is a device's verification per check-in with 50 rules
// in targets: "unchanged" when the timestamp is the one it trusts (the
// common check-in: one fetch, expiry checks), "changed" after a catalog
// change (timestamp, snapshot and targets verified and parsed).
func BenchmarkRefresh(b *testing.B) {
	k, err := Init(b.TempDir(), t0, 365*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner(k)
	rules := fleetRules(50)
	set1, _, err := s.Publish(nil, rules, t0, exp)
	if err != nil {
		b.Fatal(err)
	}
	rules[0].Approved = "4.0.7577.4401"
	rules[0].Files[0].Version, rules[0].Files[1].Version = rules[0].Approved, rules[0].Approved
	set2, _, err := s.Publish(&set1, rules, t0, exp)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	identity := rules[7].Identity
	b.Run("unchanged", func(b *testing.B) {
		c, err := NewClient(k.LatestRoot(), identity, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Refresh(ctx, fetchFrom(&set1), t0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Refresh(ctx, fetchFrom(&set1), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	// "changed" is a device; "changed-shared" a simulated device whose
	// fleet shares a Cache (targets verified once for all).
	for _, v := range []struct {
		name  string
		cache *Cache
	}{{"changed", nil}, {"changed-shared", NewCache()}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			c, err := NewClient(k.LatestRoot(), identity, v.cache)
			if err != nil {
				b.Fatal(err)
			}
			sets := []*Set{&set1, &set2}
			for i := 0; b.Loop(); i++ {
				// Reset the versions so that both sets verify in turn.
				c.tsVer, c.snapVer, c.targetsVer = 0, 0, 0
				if err := c.Refresh(ctx, fetchFrom(sets[i%2]), t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
