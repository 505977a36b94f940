package simulator_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/rollout"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

// addSites gives the service the scenario's sites, with the windows and
// zones given by name.
func (s *service) addSites(t *testing.T, sc *simulator.Scenario, zones, windows map[string]string) {
	t.Helper()
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	for _, si := range sc.Sites() {
		site := firmware.Site{Name: si.Name, Subnets: si.Subnets, TimeZone: zones[si.Name]}
		if w := windows[si.Name]; w != "" {
			site.Windows = firmware.MustParseSchedule(w)
		}
		if _, err := s.st.PutSite(context.Background(), "test", site, false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRolloutRehearsal rehearses a two-wave rollout at two sites, one with
// a night window in New York, on the service's clock, which the run
// drives: the service places every device at its group's site by the
// subnet it connects from, the second wave is first offered the version
// only after the first has had its wave wait, the night site's devices
// install only inside their window, and the report tells it per site and
// per wave.
func TestRolloutRehearsal(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, cx600, "1.0.0.1", 8000)
	s.approve(t, cx600)
	s.importVersion(t, cx600, "2.0.0.1", 8000)
	sc := simulator.Scenario{Seed: 5, Waves: "20%,100%", Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 100, Version: "1.0.0.1", Site: "hq", Subnet: "127.1.0.0/16"},
		{Model: cx600.Path(), Count: 50, Version: "1.0.0.1", Site: "nyc", Subnet: "127.2.0.0/16"},
	}}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	night := firmware.MustParseSchedule("22:00-05:00")
	s.addSites(t, &sc, map[string]string{"nyc": "America/New_York"}, map[string]string{"nyc": night.String()})
	plan := firmware.Plan{Waves: firmware.Waves{2000, firmware.Whole}, WaveWait: 6 * time.Hour, Success: 8000, MaxFailures: firmware.FailureShare(5000)}
	if _, err := s.st.StartRollout(context.Background(), "test", cx600.Path(), plan); err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.New(sc, s.svc, simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// The rollout engine steps the rollout every simulated half hour, on
	// the service's clock, between runs (as devsvc serve's engine does
	// every 100 ms of real time on a simulated clock).
	engine := rollout.New(s.st, rollout.Config{Now: s.clock.Now})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for at := sc.Start; at.Before(sc.End()); {
		at = at.Add(30 * time.Minute)
		if err := sim.RunUntil(ctx, at); err != nil {
			t.Fatal(err)
		}
		if got := s.clock.Now(); !got.Equal(at) {
			t.Fatalf("after RunUntil(%v) the service's clock is %v", at, got)
		}
		if err := engine.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ro, _ := s.st.Catalog().Rollout(cx600.RuleID())
	if ro.State != firmware.RolloutCompleted {
		t.Errorf("the rollout is %s after two days, want completed", ro.State)
	}
	if got := versions(sim.Devices(), func(d simulator.DeviceInfo) string { return d.Site }); got["hq 2.0.0.1"] != 100 || got["nyc 2.0.0.1"] != 50 {
		t.Errorf("devices by site and version: %v, want all on 2.0.0.1", got)
	}
	for _, d := range sim.Devices() {
		for _, in := range d.Installs {
			if d.Site == "nyc" && (!night.Open(in.Began, ny) || night.CloseAt(in.Began, ny).Before(in.Ended)) {
				t.Errorf("device %s installed from %v to %v, outside its window %s in New York", d.MAC, in.Began.In(ny), in.Ended.In(ny), night)
			}
		}
	}
	// The service placed each device at its group's site, from its subnet.
	if err := s.st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	inv, err := s.st.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subnets := map[string]netip.Prefix{"hq": netip.MustParsePrefix("127.1.0.0/16"), "nyc": netip.MustParsePrefix("127.2.0.0/16")}
	site := map[string]string{}
	for _, d := range sim.Devices() {
		site[d.MAC] = d.Site
	}
	for _, d := range inv {
		a, err := netip.ParseAddr(d.Address)
		if d.Site != site[d.MAC] || err != nil || !subnets[d.Site].Contains(a) {
			t.Errorf("inventory: device %s at site %q from %s, want %q from %s", d.MAC, d.Site, d.Address, site[d.MAC], subnets[site[d.MAC]])
		}
	}

	rep := sim.Report()
	wantSites := map[string][2]int{"hq": {100, 100}, "nyc": {50, 50}}
	for _, sr := range rep.Sites {
		if w := wantSites[sr.Site]; sr.Devices != w[0] || sr.Updated != w[1] {
			t.Errorf("site report %+v, want %d devices, %d updated", sr, w[0], w[1])
		}
	}
	if len(rep.Offers) != 1 || len(rep.Offers[0].Waves) != 2 {
		t.Fatalf("offers %+v, want 2.0.0.1 in two waves", rep.Offers)
	}
	w1, w2 := rep.Offers[0].Waves[0], rep.Offers[0].Waves[1]
	if w1.Devices+w2.Devices != 150 || w1.Installed != w1.Devices || w2.Installed != w2.Devices || w1.Devices == 0 {
		t.Errorf("waves %+v, %+v: want 150 devices between them, all installed", w1, w2)
	}
	// The rollout started, wave 1 open, at the start of the run.
	if time.Duration(w2.FirstOffer) < plan.WaveWait || time.Duration(w1.FirstOffer) > time.Hour {
		t.Errorf("wave 1 first offered at +%v, wave 2 at +%v: want wave 1 at once, wave 2 after the wave wait (%v)", time.Duration(w1.FirstOffer), time.Duration(w2.FirstOffer), plan.WaveWait)
	}
	var text strings.Builder
	rep.WriteText(&text)
	for _, want := range []string{"SITE", "nyc", "WAVE", "0%-20%", "20%-100%"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report does not show %q:\n%s", want, text.String())
		}
	}
}

// TestInstallFails: devices installing a version that always fails keep
// their old image, report each failure, are retried by the service after
// its back-off and given up after its retries; the report counts them.
func TestInstallFails(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, cx600, "2.0.0.1", 8000)
	s.approve(t, cx600)
	sc := simulator.Scenario{Seed: 7, Duration: simulator.Duration(24 * time.Hour),
		Groups: []simulator.Group{{Model: cx600.Path(), Count: 20, Version: "1.0.0.1"}},
		Faults: simulator.Faults{InstallFails: map[string]float64{"2.0.0.1": 1}}}
	sim := run(t, s, sc, simulator.Config{})
	for _, d := range sim.Devices() {
		if d.Version.String() != "1.0.0.1" || len(d.Installs) == 0 || len(d.Installs) > firmware.DefaultRetries+1 || d.Error != "install" {
			t.Errorf("device %s: version %s, %d installs, error %q; want 1.0.0.1 after 1 to %d failed installs", d.MAC, d.Version, len(d.Installs), d.Error, firmware.DefaultRetries+1)
		}
		for _, in := range d.Installs {
			if !in.Failed {
				t.Errorf("device %s: install %+v did not fail", d.MAC, in)
			}
		}
	}
	rep := sim.Report()
	if len(rep.Offers) != 1 || rep.Offers[0].Failed != 20 || rep.Offers[0].Installed != 0 {
		t.Errorf("offers %+v, want 2.0.0.1 failed by 20 devices", rep.Offers)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Reason != "install failed: previous image kept" || rep.Failures[0].Count < 20 {
		t.Errorf("failures %+v, want failed installs only", rep.Failures)
	}
	// The service gave most devices up after its retries.
	gaveUp := 0
	for _, d := range sim.Devices() {
		st := s.st.DeviceState(d.MAC)
		if st.Attempt.GaveUp(s.st.RetryPolicy()) {
			gaveUp++
		}
	}
	if gaveUp == 0 {
		t.Errorf("no device was given up after %d retries in a day", firmware.DefaultRetries)
	}
}

// TestInstallByMissed: devices that cannot install before the window
// closes (an install takes them two hours, the window is open an hour and
// a half) drop the update rather than install after InstallBy; they were
// offered it inside the window, every one (the service spreads their
// returns over the half hour it still makes offers in).
func TestInstallByMissed(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, cx600, "2.0.0.1", 8000)
	s.approve(t, cx600)
	sc := simulator.Scenario{Seed: 9, Duration: simulator.Duration(30 * time.Hour),
		Groups:    []simulator.Group{{Model: cx600.Path(), Count: 10, Version: "1.0.0.1", Site: "short", Subnet: "127.3.0.0/24"}},
		Behaviour: simulator.Behaviour{RebootTime: simulator.Duration(2 * time.Hour)}}
	s.addSites(t, &sc, nil, map[string]string{"short": "22:00-23:30"})
	sim := run(t, s, sc, simulator.Config{})
	rep := sim.Report()
	if rep.Updates != 0 || rep.Missed < 10 || len(rep.Offers) != 1 || rep.Offers[0].Offered != 10 {
		t.Errorf("%d updates, %d missed windows, offers %+v; want none, at least 10, 2.0.0.1 offered to 10", rep.Updates, rep.Missed, rep.Offers)
	}
	for _, d := range sim.Devices() {
		if len(d.Installs) > 0 {
			t.Errorf("device %s installed %+v after its window closed", d.MAC, d.Installs)
		}
	}
}
