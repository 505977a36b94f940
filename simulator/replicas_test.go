package simulator_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/simulator"
)

// replicaPair is a primary and a replica of site paris that holds the
// same catalog, under one CA; failFiles makes the replica answer 503 to
// every file.
func replicaPair(t *testing.T, failFiles bool) (primary, replica *service) {
	t.Helper()
	primary = newService(t, serviceConfig{})
	cfg := serviceConfig{certs: primary.certs, api: deviceapi.Config{AltInternalURL: primary.svc.InternalURL}}
	if failFiles {
		cfg.wrapInternal = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, deviceproto.FilesPrefix) {
					http.Error(w, "disk broken", http.StatusServiceUnavailable)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	}
	replica = newService(t, cfg)
	for _, s := range []*service{primary, replica} {
		s.importVersion(t, cx600, "2.0.0.1", 50_000)
		s.approve(t, cx600)
	}
	return primary, replica
}

// sitesScenario puts 20 phones at paris (with a replica) and 10 at lyon
// (without), each site from its own subnet on loopback.
func sitesScenario(replicaURL string) simulator.Scenario {
	return simulator.Scenario{Seed: 4, Duration: simulator.Duration(12 * time.Hour), Replicas: map[string]string{"paris": replicaURL}, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 20, Version: "1.0.0.1", Site: "paris", Subnet: "127.0.5.0/24"},
		{Model: cx600.Path(), Count: 10, Version: "1.0.0.1", Site: "lyon", Subnet: "127.0.6.0/24"},
	}}
}

// TestSitesWithReplicas: the devices of a site with a replica check in
// and fetch there, those of a site without fetch from the primary; the
// report counts each site's bytes by where they came from, and the
// service sees each site's devices from its subnet.
func TestSitesWithReplicas(t *testing.T) {
	primary, replica := replicaPair(t, false)
	sim := run(t, primary, sitesScenario(replica.svc.InternalURL), simulator.Config{})
	rep := sim.Report()
	if rep.Updates != 30 {
		t.Fatalf("updates %d, want 30", rep.Updates)
	}
	per := int64(50_000 + len("catalog 2.0.0.1"))
	want := []simulator.SiteReport{
		{Site: "lyon", Devices: 10, BytesPrimary: 10 * per},
		{Site: "paris", Devices: 20, Replica: replica.svc.InternalURL, BytesReplica: 20 * per},
	}
	var got []simulator.SiteReport
	for _, s := range rep.Sites {
		got = append(got, simulator.SiteReport{Site: s.Site, Devices: s.Devices, Replica: s.Replica, BytesPrimary: s.BytesPrimary, BytesReplica: s.BytesReplica, Fallbacks: s.Fallbacks})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sites (-want +got):\n%s", diff)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "FROM THE PRIMARY (WAN)") || !strings.Contains(text.String(), "paris") {
		t.Errorf("the report does not show the sites:\n%s", text.String())
	}
	for _, tc := range []struct {
		s      *service
		n      int
		subnet netip.Prefix
	}{{primary, 10, netip.MustParsePrefix("127.0.6.0/24")}, {replica, 20, netip.MustParsePrefix("127.0.5.0/24")}} {
		if err := tc.s.st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		ds, _ := tc.s.st.Devices(context.Background())
		if len(ds) != tc.n {
			t.Errorf("%d devices checked in at %s, want %d", len(ds), tc.s.svc.InternalURL, tc.n)
		}
		for _, d := range ds {
			if a, err := netip.ParseAddr(d.Address); err != nil || !tc.subnet.Contains(a) {
				t.Errorf("device %s came from %s, want an address of its site's %s", d.MAC, d.Address, tc.subnet)
				break
			}
		}
	}
}

// TestSitesFallBack: when the replica cannot serve a file, its devices
// fetch it from the alternative URL, the primary's, and still update.
func TestSitesFallBack(t *testing.T) {
	primary, replica := replicaPair(t, true)
	sim := run(t, primary, sitesScenario(replica.svc.InternalURL), simulator.Config{})
	rep := sim.Report()
	if rep.Updates != 30 {
		t.Fatalf("updates %d, want 30 (the replica's devices through the alternative)", rep.Updates)
	}
	paris := rep.Sites[1]
	per := int64(50_000 + len("catalog 2.0.0.1"))
	if paris.Site != "paris" || paris.BytesReplica != 0 || paris.BytesPrimary != 20*per || paris.Fallbacks != 40 {
		t.Errorf("paris %+v: want every file of its 20 devices from the primary, 40 fallbacks", paris)
	}
}

// TestScenarioSites: sites, subnets and replicas are checked.
func TestScenarioSites(t *testing.T) {
	base := func() simulator.Scenario { return sitesScenario("https://paris.contoso.com/") }
	for _, tc := range []struct {
		name   string
		change func(sc *simulator.Scenario)
		want   string
	}{
		{"bad site", func(sc *simulator.Scenario) { sc.Groups[0].Site = "Paris" }, "site name"},
		{"subnet off loopback", func(sc *simulator.Scenario) { sc.Groups[0].Subnet = "10.0.0.0/24" }, "127.0.0.0/8"},
		{"subnet of one address", func(sc *simulator.Scenario) { sc.Groups[0].Subnet = "127.0.0.9/32" }, "too small"},
		{"a remote group at a site", func(sc *simulator.Scenario) { sc.Groups[0].Location = "external" }, "through the edge"},
		{"a replica of no site", func(sc *simulator.Scenario) { sc.Replicas["nice"] = "https://nice/" }, "no group"},
		{"a replica URL", func(sc *simulator.Scenario) { sc.Replicas["paris"] = "http://paris/" }, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := base()
			tc.change(&sc)
			if err := sc.Normalize(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Normalize = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	sc := base()
	if err := sc.Normalize(); err != nil {
		t.Errorf("Normalize of a good scenario = %v", err)
	}
}
