package deviceapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// BenchmarkCheckInDecision measures what a check-in's offer decision
// costs the handler over a real store: the catalog snapshot, the site
// lookup (200 sites in six zones, with night windows), the rule, and
// decide (the test devices, the rule's rollout with a window and a
// downloads cap, the device's state in the fleet index of 10,000 devices,
// firmware.Decide, and when a device is held, its windows' slack), at
// three times of the week. "offer" is the decision before rollouts, for
// reference: the rule, the test devices and firmware.Offer.
func BenchmarkCheckInDecision(b *testing.B) {
	w := newDecisionBench(b)
	b.Run("offer", func(b *testing.B) {
		offered := 0
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &w.checkIns[i%len(w.checkIns)]
			cat := w.st.Catalog()
			if rule, ok := cat.Rule(c.Identity); ok {
				if _, ok := firmware.Offer(&rule, c.Version(), cat.IsTestDevice(c.MAC, c.Serial)); ok {
					offered++
				}
			}
			i++
		}
		b.ReportMetric(float64(offered)/float64(i), "offered/op")
	})
	for _, at := range []struct{ name, t string }{
		{"monday-night", "2026-11-02T21:30:00Z"},
		{"tuesday-noon", "2026-11-03T11:00:00Z"},
		{"dst-change", "2026-10-25T00:30:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, at.t)
		b.Run("decide/"+at.name, func(b *testing.B) {
			offered := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % len(w.checkIns)
				c := &w.checkIns[k]
				cat := w.st.Catalog()
				site, _ := cat.Sites().Lookup(w.addrs[k])
				sc := w.srv.scratch.Get().(*scratch)
				var ok bool
				if sc.rule, ok = cat.Rule(c.Identity); ok {
					if d, _ := w.srv.decide(cat, sc, c, w.keys[k], site, now); !d.Version.IsZero() {
						offered++
					}
				}
				*sc = scratch{}
				w.srv.scratch.Put(sc)
				i++
			}
			b.ReportMetric(float64(offered)/float64(i), "offered/op")
		})
	}
}

type decisionBench struct {
	st       *store.Store
	srv      *Server
	checkIns []deviceproto.CheckIn
	keys     []string
	addrs    []netip.Addr
}

func newDecisionBench(b *testing.B) *decisionBench {
	ctx := context.Background()
	t0 := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	st, err := store.Open(b.TempDir(), &store.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	v1, v2 := firmware.MustParseVersion("3.5.6907.35"), firmware.MustParseVersion("4.0.7577.4372")
	for _, v := range []firmware.Version{v1, v2} {
		data := []byte("image " + v.String())
		sum := sha256.Sum256(data)
		u := firmware.ImportUpdate{Identity: id, Version: v, Files: []firmware.ImportFile{{Name: "CX500.nbt", Size: int64(len(data)), SHA256: &sum,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}}
		if _, err := st.Import(ctx, "bench", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		if v == v1 {
			if _, err := st.Approve(ctx, "bench", id.Path()); err != nil {
				b.Fatal(err)
			}
		}
	}
	zones := []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC", "America/Los_Angeles"}
	for i := range 200 {
		site := firmware.Site{Name: fmt.Sprintf("site-%03d", i), TimeZone: zones[i%len(zones)],
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 50), byte(i % 50 * 4), 0}), 22)},
			Windows: firmware.MustParseSchedule("Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00")}
		if _, err := st.PutSite(ctx, "bench", site, false); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		if err := st.AddTestDevice(ctx, "bench", firmware.TestDevice{Serial: fmt.Sprintf("SN%05d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	p := firmware.DefaultPlan()
	p.Window = firmware.MustParseSchedule("Mon-Sun 20:00-06:00")
	p.MaxDownloads = 1000
	if _, err := st.StartRollout(ctx, "bench", id.Path(), p); err != nil {
		b.Fatal(err)
	}
	w := &decisionBench{st: st, srv: New(st, Config{})}
	for i := range 10_000 {
		mac := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16, i>>8&255, i&255)
		c := deviceproto.CheckIn{Identity: id, MAC: mac, Modules: []firmware.Module{{Name: "CX500.nbt", Version: v1}}}
		s := i * 7 % 200
		a := netip.AddrFrom4([4]byte{10, byte(s / 50), byte(s%50*4 + i%4), byte(i)})
		// Every device is known to the fleet index; a tenth were offered
		// the version and failed once.
		d := firmware.Device{Key: mac, MAC: mac, Identity: id, Version: v1, Location: firmware.Internal, LastCheckIn: t0}
		if i%10 == 0 {
			d.Offered = v2
		}
		if err := st.RecordCheckIn(ctx, d); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			if err := st.Report(ctx, store.Report{Key: mac, State: firmware.StateFailure, Target: v2, Error: "0x1", Time: t0}); err != nil {
				b.Fatal(err)
			}
		}
		w.checkIns, w.keys, w.addrs = append(w.checkIns, c), append(w.keys, mac), append(w.addrs, a)
	}
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return w
}
