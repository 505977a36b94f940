package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

var (
	cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	hp    = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "HP", Model: "4120", Revision: "A", Locale: "ENU"}
	rt    = firmware.Identity{DeviceType: firmware.RoundTable, Vendor: "Microsoft", Model: "RoundTable", Revision: "A", Locale: "ENU"}
)

// run runs sc against s to its end and returns the simulator.
func run(t *testing.T, s *service, sc simulator.Scenario, cfg simulator.Config) *simulator.Sim {
	t.Helper()
	sim, err := simulator.New(sc, s.svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := sim.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return sim
}

// versions counts the simulated devices by group key and version.
func versions(devs []simulator.DeviceInfo, key func(simulator.DeviceInfo) string) map[string]int {
	m := map[string]int{}
	for _, d := range devs {
		m[key(d)+" "+d.Version.String()]++
	}
	return m
}

func byModelAndPlace(d simulator.DeviceInfo) string {
	who := "nobody"
	if d.User != "" {
		who = "user"
	}
	return d.Identity.Model + "/" + string(d.Location) + "/" + who
}

func TestFleetConverges(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, cx600, "1.0.0.1", 5000)
	s.approve(t, cx600)
	s.importVersion(t, cx600, "2.0.0.1", 7000)
	s.approve(t, cx600)
	s.importVersion(t, rt, "1.5.0.1", 9000) // a RoundTable deploys on import
	sc := simulator.Scenario{Seed: 7, Duration: simulator.Duration(12 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 12, Version: "1.0.0.1", SignIn: 0.5},
		{Model: cx600.Path(), Count: 10, Location: firmware.External, SignIn: 0.6, Version: "1.0.0.1"},
		{Model: rt.Path(), Count: 3, Version: "1.0.0.1"},
	}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	s.addAccounts(t, &sc)
	sim := run(t, s, sc, simulator.Config{})

	got := versions(sim.Devices(), byModelAndPlace)
	want := map[string]int{
		"CX600/internal/user 2.0.0.1":        6,
		"CX600/internal/nobody 2.0.0.1":      6,
		"CX600/external/user 2.0.0.1":        6,
		"CX600/external/nobody 1.0.0.1":      4,
		"RoundTable/internal/nobody 1.5.0.1": 3,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("devices %s: %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	rep := sim.Report()
	if rep.Updates != 21 || rep.UpdatedDevices != 21 {
		t.Errorf("updates %d on %d devices, want 21 on 21", rep.Updates, rep.UpdatedDevices)
	}
	// Every remote device is refused at boot, before its user signs in;
	// those nobody signs in to are refused at every check.
	if rep.RefusedDevices != 10 {
		t.Errorf("refused devices %d, want the 10 remote ones", rep.RefusedDevices)
	}
	if len(rep.Refusals) != 1 || rep.Refusals[0].Count < 10 {
		t.Errorf("refusals %+v, want only 'nobody signed in', at least 10", rep.Refusals)
	}
	if rep.SignIns != 12 {
		t.Errorf("sign-ins %d, want 12", rep.SignIns)
	}
	if len(rep.Failures) != 0 {
		t.Errorf("failures %v, want none", rep.Failures)
	}
	// The service saw the same: every device that checked in, on its
	// version, and the updated ones with their last update.
	if err := s.st.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	inv, err := s.st.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byMAC := map[string]firmware.Device{}
	for _, d := range inv {
		byMAC[d.MAC] = d
	}
	for _, d := range sim.Devices() {
		rec, ok := byMAC[d.MAC]
		if d.Location == firmware.External && d.User == "" {
			if ok {
				t.Errorf("device %s was refused at the edge but is in the inventory", d.MAC)
			}
			continue
		}
		if !ok {
			t.Errorf("device %s not in the inventory", d.MAC)
			continue
		}
		if rec.Version != d.Version {
			t.Errorf("device %s: inventory version %s, device says %s", d.MAC, rec.Version, d.Version)
		}
		if !d.LastUpdate.IsZero() && rec.State != firmware.StateSuccess {
			t.Errorf("device %s: inventory state %q, want success", d.MAC, rec.State)
		}
		if !d.LastUpdate.IsZero() && (len(rec.Modules) != 2 || rec.Modules[0].Timestamp == "" || rec.Modules[1].Name != d.Identity.Model+".cat") {
			t.Errorf("device %s: inventory modules %+v, want the image with its timestamp and the catalog", d.MAC, rec.Modules)
		}
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	t.Logf("report:\n%s", buf.String())
}

func TestTestDevicesThenRestore(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, hp, "1.0.0.1", 3000)
	s.approve(t, hp)
	s.importVersion(t, hp, "2.0.0.1", 3000)
	s.approve(t, hp)                        // approved 2, restore 1
	s.importVersion(t, hp, "3.0.0.1", 3000) // pending: test devices only
	sc := simulator.Scenario{Seed: 3, Groups: []simulator.Group{
		{Model: hp.Path(), Count: 15, Version: "1.0.0.1", TestDevices: 3},
	}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	s.markTestDevices(t, &sc)
	sim, err := simulator.New(sc, s.svc, simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	check := func(when string, want map[string]int) {
		t.Helper()
		got := versions(sim.Devices(), func(d simulator.DeviceInfo) string {
			if d.Test {
				return "test"
			}
			return "other"
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: versions (-want +got):\n%s", when, diff)
		}
	}
	if err := sim.RunUntil(t.Context(), sc.Start.Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after approval", map[string]int{"test 3.0.0.1": 3, "other 2.0.0.1": 12})
	if _, err := s.st.Restore(t.Context(), "test", hp.Path()); err != nil {
		t.Fatal(err)
	}
	// Every device checks within a day (24h ± 1h): the fleet goes back,
	// the test devices stay on the pending version.
	if err := sim.RunUntil(t.Context(), sc.Start.Add(40*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after restore", map[string]int{"test 3.0.0.1": 3, "other 1.0.0.1": 12})
	for _, d := range sim.Devices() {
		if d.LastUpdate.IsZero() || d.Updates == 0 {
			t.Errorf("device %s: System Information shows no update", d.MAC)
		}
	}
}

func TestCorruptAndBrokenDownloads(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, cx600, "2.0.0.1", 64<<10)
	s.approve(t, cx600)
	sc := simulator.Scenario{Seed: 11, Duration: simulator.Duration(24 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 20, Version: "1.0.0.1"},
	}, Faults: simulator.Faults{BrokenDownload: 0.5, CorruptImage: 0.4}}
	sim := run(t, s, sc, simulator.Config{})
	rep := sim.Report()
	// Corrupted images are refused and retried, broken transfers resumed:
	// every phone gets there.
	got := versions(sim.Devices(), func(d simulator.DeviceInfo) string { return d.Identity.Model })
	if diff := cmp.Diff(map[string]int{"CX600 2.0.0.1": 20}, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Reason != "corrupted image refused (SHA-256), retried" {
		t.Errorf("failures %+v, want only corrupted images", rep.Failures)
	}
	if rep.ResumedDownloads == 0 {
		t.Error("no transfer resumed")
	}
	if rep.Updates != 20 {
		t.Errorf("updates %d, want 20", rep.Updates)
	}
	if err := s.st.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	inv, err := s.st.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range inv {
		if d.Version.String() != "2.0.0.1" || d.State != firmware.StateSuccess {
			t.Errorf("device %s: inventory %s, state %q; want 2.0.0.1, success", d.MAC, d.Version, d.State)
		}
	}
}

func TestPowerLoss(t *testing.T) {
	s := newService(t, serviceConfig{})
	s.importVersion(t, hp, "2.0.0.1", 8000)
	s.approve(t, hp)
	// One attempt in the day: the retry would come after two.
	sc := simulator.Scenario{Seed: 2, Duration: simulator.Duration(24 * time.Hour), Groups: []simulator.Group{
		{Model: hp.Path(), Count: 3, Version: "1.0.0.1"},
	}, Faults: simulator.Faults{PowerLoss: 1}, Behaviour: simulator.Behaviour{RetryDelay: simulator.Duration(48 * time.Hour)}}
	sim := run(t, s, sc, simulator.Config{})
	rep := sim.Report()
	want := []simulator.Count{{Reason: "power loss during install: previous image kept", Count: 3}}
	if diff := cmp.Diff(want, rep.Failures); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	for _, d := range sim.Devices() {
		if d.Version.String() != "1.0.0.1" || d.Error != "power-loss" || !d.LastUpdate.IsZero() {
			t.Errorf("device %s: version %s, error %q, last update %v; want 1.0.0.1, power-loss, none", d.MAC, d.Version, d.Error, d.LastUpdate)
		}
	}
	if err := s.st.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	inv, err := s.st.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 3 {
		t.Fatalf("inventory has %d devices, want 3", len(inv))
	}
	for _, d := range inv {
		if d.Version.String() != "1.0.0.1" || d.State != firmware.StateFailure || d.Error != "power-loss" {
			t.Errorf("device %s: inventory %s, state %q (%s); want 1.0.0.1, failure (power-loss)", d.MAC, d.Version, d.State, d.Error)
		}
	}
}

func TestMovedService(t *testing.T) {
	a := newService(t, serviceConfig{})
	b := newService(t, serviceConfig{certs: a.certs})
	for _, s := range []*service{a, b} {
		s.importVersion(t, cx600, "2.0.0.1", 3000)
		s.approve(t, cx600)
	}
	// The old service tells every device that it moved to b.
	moved := newService(t, serviceConfig{certs: a.certs, api: deviceapi.Config{MovedInternalURL: b.svc.InternalURL}})
	moved.importVersion(t, cx600, "2.0.0.1", 3000)
	moved.approve(t, cx600)
	sc := simulator.Scenario{Seed: 5, Duration: simulator.Duration(30 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 5, Version: "2.0.0.1"},
	}}
	sim := run(t, moved, sc, simulator.Config{})
	if got := sim.Report().Moved; got != 5 {
		t.Errorf("moved devices: %d, want 5", got)
	}
	for _, d := range sim.Devices() {
		if want := b.svc.InternalURL + "RequestHandler/ucdevice.upx"; d.CheckInURL != want {
			t.Errorf("device %s checks in at %s, want %s", d.MAC, d.CheckInURL, want)
		}
	}
	// b saw the devices' next check-ins.
	if err := b.st.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	inv, err := b.st.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 5 {
		t.Errorf("the new service saw %d devices, want 5", len(inv))
	}
}

func TestSameSeedSameReport(t *testing.T) {
	sc := simulator.Scenario{Seed: 42, Duration: simulator.Duration(30 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 15, Version: "1.0.0.1", SignIn: 0.5, TestDevices: 2},
		{Model: cx600.Path(), Count: 8, Version: "1.0.0.1", SignIn: 0.5, Location: firmware.External},
		{Model: rt.Path(), Count: 4, Version: "1.0.0.1", Faults: &simulator.Faults{PowerLoss: 0.5}},
	}, Faults: simulator.Faults{BrokenDownload: 0.3, CorruptImage: 0.3}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	report := func(seed uint64, workers int) []byte {
		s := newService(t, serviceConfig{})
		s.importVersion(t, cx600, "2.0.0.1", 20000)
		s.approve(t, cx600)
		s.importVersion(t, cx600, "3.0.0.1", 20000)
		s.importVersion(t, rt, "2.0.0.1", 30000)
		s.addAccounts(t, &sc)
		s.markTestDevices(t, &sc)
		sc := sc
		sc.Seed = seed
		// The service's answers depend on its clock (back-offs after the
		// faults), which trails the devices' by up to the lookahead: a
		// lookahead of a nanosecond makes them exact.
		sim := run(t, s, sc, simulator.Config{Workers: workers, Lookahead: time.Nanosecond})
		j, err := json.MarshalIndent(sim.Report(), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := report(42, 32)
	// Another service, another number of workers: the same report.
	if again := report(42, 3); !bytes.Equal(first, again) {
		t.Errorf("same seed, different reports:\n%s\n%s", first, again)
	}
	if other := report(43, 32); bytes.Equal(first, other) {
		t.Errorf("seeds 42 and 43 gave the same report:\n%s", first)
	}
}

func TestPacedRun(t *testing.T) {
	s := newService(t, serviceConfig{})
	sc := simulator.Scenario{Duration: simulator.Duration(2 * time.Hour), Speed: 36000, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 2, Version: "1.0.0.1"},
	}}
	var progress []time.Time
	start := time.Now()
	run(t, s, sc, simulator.Config{ProgressEvery: 50 * time.Millisecond, Progress: func(p simulator.Progress) { progress = append(progress, p.Now) }})
	// Two simulated hours at 36,000 times real time take 200 ms.
	if got := time.Since(start); got < 200*time.Millisecond {
		t.Errorf("a paced run of 2h at speed 36000 took %v, want at least 200ms", got)
	}
	if end := simulator.DefaultStart.Add(2 * time.Hour); len(progress) == 0 || !progress[len(progress)-1].Equal(end) {
		t.Errorf("progress times %v: want them to end at %v", progress, end)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Before(progress[i-1]) {
			t.Errorf("progress went back in time: %v after %v", progress[i], progress[i-1])
		}
	}
}

// TestRetryAfter: a device the service sheds (503) checks again after the
// time in Retry-After, in simulated time.
func TestRetryAfter(t *testing.T) {
	var mu sync.Mutex
	shed := map[string]bool{}
	s := newService(t, serviceConfig{wrapInternal: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == deviceproto.CheckInPath {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				ci, err := deviceproto.ParseCheckIn(body)
				mu.Lock()
				first := err == nil && !shed[ci.MAC]
				shed[ci.MAC] = true
				mu.Unlock()
				if first {
					w.Header().Set("Retry-After", "900")
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}})
	s.importVersion(t, cx600, "2.0.0.1", 3000)
	s.approve(t, cx600)
	sc := simulator.Scenario{Duration: simulator.Duration(6 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 5, Version: "1.0.0.1"},
	}, Behaviour: simulator.Behaviour{BootSpread: simulator.Duration(time.Minute)}}
	sim := run(t, s, sc, simulator.Config{})
	if got := sim.Report().Busy; got != 5 {
		t.Errorf("503 answers: %d, want 5", got)
	}
	for _, d := range sim.Devices() {
		// Boot within a minute, 15 minutes of Retry-After, then the update.
		if d.Version.String() != "2.0.0.1" || d.LastUpdate.Before(simulator.DefaultStart.Add(15*time.Minute)) {
			t.Errorf("device %s: %s since %v; want 2.0.0.1, not before 06:15", d.MAC, d.Version, d.LastUpdate)
		}
	}
}
