package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

func contextWithTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// TestRollout walks a rollout: the fleet converges to the approved
// versions, test devices take the pending one and the others do not, remote
// devices with nobody signed in are refused and counted, and after restore
// the fleet goes back.
func TestRollout(t *testing.T) {
	s := startService(t, nil)
	importVersion(t, s, "1.0.0.1", 32<<10, cx600, hp)
	s.CLI(t, "approve", cx600.Path())
	s.CLI(t, "approve", hp.Path())
	importVersion(t, s, "2.0.0.1", 32<<10, cx600, hp, rt) // the RoundTable deploys on import
	s.CLI(t, "approve", cx600.Path())                     // CX600: 2 approved, 1 to restore; HP: 2 pending
	sc := simulator.Scenario{Seed: 1, Accounts: 4, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 12, Version: "1.0.0.1", SignIn: 0.5},
		{Model: cx600.Path(), Count: 8, Version: "1.0.0.1", SignIn: 0.5, Location: firmware.External},
		{Model: hp.Path(), Count: 8, Version: "1.0.0.1", TestDevices: 3},
		{Model: rt.Path(), Count: 2, Version: "1.0.0.1"},
	}}
	prepare(t, s, &sc)
	sim := newSim(t, s, sc)

	runUntil(t, sim, 12*time.Hour)
	want := map[string]int{
		"CX600/internal 2.0.0.1":      6,
		"CX600/internal/user 2.0.0.1": 6,
		"CX600/external/user 2.0.0.1": 4,
		"CX600/external 1.0.0.1":      4, // refused: nobody signed in
		"4120/internal/test 2.0.0.1":  3, // the pending version
		"4120/internal 1.0.0.1":       5,
		"RoundTable/internal 2.0.0.1": 2,
	}
	if diff := cmp.Diff(want, count(sim.Devices(), kind)); diff != "" {
		t.Errorf("after the approval, devices by kind and version (-want +got):\n%s", diff)
	}
	rep := sim.Report()
	if len(rep.Refusals) != 1 || !strings.Contains(rep.Refusals[0].Reason, "nobody signed in") || rep.Refusals[0].Count < 8 {
		t.Errorf("refusals %+v: want at least 8 of remote devices with nobody signed in", rep.Refusals)
	}
	if rep.RefusedDevices != 8 {
		t.Errorf("refused devices %d, want 8: the remote ones before their users sign in, and those nobody signs in to", rep.RefusedDevices)
	}
	if rep.Updates != 21 {
		t.Errorf("updates %d, want 21", rep.Updates)
	}
	// The service's inventory agrees, and never saw the refused devices.
	settled(t, s, func(inv map[string]firmware.Device) (problems []string) {
		for _, d := range sim.Devices() {
			rec, ok := inv[d.MAC]
			switch {
			case d.Location == firmware.External && d.User == "":
				if ok {
					problems = append(problems, fmt.Sprintf("refused device %s is in the inventory", d.MAC))
				}
			case !ok:
				problems = append(problems, fmt.Sprintf("device %s is not in the inventory", d.MAC))
			case rec.Version != d.Version:
				problems = append(problems, fmt.Sprintf("device %s: inventory says %s, the device %s", d.MAC, rec.Version, d.Version))
			case d.Updates > 0 && (rec.State != firmware.StateSuccess || rec.LastUpdate.IsZero()):
				problems = append(problems, fmt.Sprintf("device %s: inventory state %q, last update %v; want success and a time", d.MAC, rec.State, rec.LastUpdate))
			}
		}
		return problems
	})

	// Restore: CX600 goes back to 1.0.0.1 at its next daily check.
	s.CLI(t, "restore", cx600.Path())
	runUntil(t, sim, 40*time.Hour)
	want["CX600/internal 1.0.0.1"], want["CX600/internal 2.0.0.1"] = 6, 0
	want["CX600/internal/user 1.0.0.1"], want["CX600/internal/user 2.0.0.1"] = 6, 0
	want["CX600/external/user 1.0.0.1"], want["CX600/external/user 2.0.0.1"] = 4, 0
	for k, n := range want {
		if n == 0 {
			delete(want, k)
		}
	}
	if diff := cmp.Diff(want, count(sim.Devices(), kind)); diff != "" {
		t.Errorf("after restore, devices by kind and version (-want +got):\n%s", diff)
	}
	for _, d := range sim.Devices() {
		if d.Identity.Model == "CX600" && d.User != "" && (d.Updates != 2 || d.LastUpdate.Before(sc.Start.Add(12*time.Hour))) {
			t.Errorf("device %s: System Information: %d updates, last %v; want 2, after the restore", d.MAC, d.Updates, d.LastUpdate)
		}
	}
}

// TestMovedService: a service told it moved sends every device to the new
// address, where the devices check in from then on.
func TestMovedService(t *testing.T) {
	newSvc := startService(t, nil)
	old := startService(t, func(dir string) {
		// The new service's PKI, which the devices trust; its address.
		for _, f := range []string{"ca.pem", "ca.key", "server.pem", "server.key", "admin.pem", "admin.key"} {
			data, err := os.ReadFile(filepath.Join(newSvc.Dir, "certs", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "certs", f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		setSetting(t, dir, "moved_internal_url", "https://127.0.0.1:"+port(t, newSvc.Run.Internal)+"/")
	})
	importVersion(t, old, "2.0.0.1", 8<<10, cx600)
	importVersion(t, newSvc, "2.0.0.1", 8<<10, cx600)
	old.CLI(t, "approve", cx600.Path())
	newSvc.CLI(t, "approve", cx600.Path())
	sc := simulator.Scenario{Seed: 2, Groups: []simulator.Group{{Model: cx600.Path(), Count: 4, Version: "1.0.0.1"}}}
	prepare(t, old, &sc)
	sim := newSim(t, old, sc)
	runUntil(t, sim, 30*time.Hour)
	if got := sim.Report().Moved; got != 4 {
		t.Errorf("devices that moved: %d, want 4", got)
	}
	want := "https://127.0.0.1:" + port(t, newSvc.Run.Internal) + "/RequestHandler/ucdevice.upx"
	for _, d := range sim.Devices() {
		if d.CheckInURL != want {
			t.Errorf("device %s checks in at %s, want %s", d.MAC, d.CheckInURL, want)
		}
		if d.Version.String() != "2.0.0.1" {
			t.Errorf("device %s runs %s, want 2.0.0.1", d.MAC, d.Version)
		}
	}
	// Both services saw the devices: the old one first, the new one since.
	settled(t, old, func(inv map[string]firmware.Device) []string {
		if len(inv) != 4 {
			return []string{fmt.Sprintf("the old service saw %d devices, want 4", len(inv))}
		}
		return nil
	})
	settled(t, newSvc, func(inv map[string]firmware.Device) (problems []string) {
		for _, d := range sim.Devices() {
			if rec, ok := inv[d.MAC]; !ok || rec.Version.String() != "2.0.0.1" {
				problems = append(problems, fmt.Sprintf("the new service has device %s as %+v, want it on 2.0.0.1", d.MAC, rec))
			}
		}
		return problems
	})
}

func port(t testing.TB, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}

// TestFaults: a corrupted image is refused and retried, a broken transfer
// resumed, and a power loss during the install leaves the old version
// running and reported. The service runs on the simulations' clock: its
// back-off after a failure passes in simulated time; it retries a device
// twenty times, an hour apart at most, so that every phone gets there
// however often its image arrives corrupted.
func TestFaults(t *testing.T) {
	s := startRehearsal(t, rehearsalStart, func(dir string) {
		setSetting(t, dir, "rollout_retries", "20")
		setSetting(t, dir, "rollout_backoff", "30m")
		setSetting(t, dir, "rollout_max_backoff", "1h")
	})
	importVersion(t, s, "2.0.0.1", 64<<10, cx600, hp)
	s.CLI(t, "approve", cx600.Path())
	s.CLI(t, "approve", hp.Path())

	t.Run("corrupted and broken downloads", func(t *testing.T) {
		sc := simulator.Scenario{Seed: 3, Duration: simulator.Duration(24 * time.Hour), Groups: []simulator.Group{
			{Model: cx600.Path(), Count: 8, Version: "1.0.0.1"},
		}, Faults: simulator.Faults{CorruptImage: 0.5, BrokenDownload: 0.5}}
		sim := newSim(t, s, sc)
		runUntil(t, sim, 24*time.Hour)
		rep := sim.Report()
		if diff := cmp.Diff(map[string]int{"CX600/internal 2.0.0.1": 8}, count(sim.Devices(), kind)); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
		if len(rep.Failures) != 1 || !strings.HasPrefix(rep.Failures[0].Reason, "corrupted image refused") {
			t.Errorf("failures %+v, want corrupted images only", rep.Failures)
		}
		if rep.ResumedDownloads == 0 {
			t.Error("no broken transfer was resumed")
		}
		settled(t, s, func(inv map[string]firmware.Device) (problems []string) {
			for _, d := range sim.Devices() {
				if rec := inv[d.MAC]; rec.Version.String() != "2.0.0.1" || rec.State != firmware.StateSuccess {
					problems = append(problems, fmt.Sprintf("device %s: inventory %s, %q; want 2.0.0.1, success", d.MAC, rec.Version, rec.State))
				}
			}
			return problems
		})
	})

	t.Run("power loss", func(t *testing.T) {
		// One attempt within the day: the retry would come two days later.
		sc := simulator.Scenario{Seed: 4, Duration: simulator.Duration(24 * time.Hour), Groups: []simulator.Group{
			{Model: hp.Path(), Count: 3, Version: "1.0.0.1"},
		}, Faults: simulator.Faults{PowerLoss: 1}, Behaviour: simulator.Behaviour{RetryDelay: simulator.Duration(48 * time.Hour)}}
		sim := newSim(t, s, sc)
		runUntil(t, sim, 24*time.Hour)
		for _, d := range sim.Devices() {
			if d.Version.String() != "1.0.0.1" || d.Error != "power-loss" || !d.LastUpdate.IsZero() {
				t.Errorf("device %s: runs %s, error %q, last update %v; want 1.0.0.1, power-loss, never", d.MAC, d.Version, d.Error, d.LastUpdate)
			}
		}
		settled(t, s, func(inv map[string]firmware.Device) (problems []string) {
			for _, d := range sim.Devices() {
				rec := inv[d.MAC]
				if rec.Version.String() != "1.0.0.1" || rec.State != firmware.StateFailure || rec.Error != "power-loss" || rec.Target.String() != "2.0.0.1" {
					problems = append(problems, fmt.Sprintf("device %s: inventory %s, %q (%s), target %s; want 1.0.0.1, failure (power-loss), target 2.0.0.1",
						d.MAC, rec.Version, rec.State, rec.Error, rec.Target))
				}
			}
			return problems
		})
	})
}

// TestDeviceSimCommand runs the device-sim command: the same seed gives the
// same report, another seed another one. Each run has a service of its own,
// as it was before the first: the service remembers what devices did (a
// device that failed is retried after a back-off), so a second run against
// the same one is another story.
func TestDeviceSimCommand(t *testing.T) {
	bin := deviceSimBinary(t)
	args := []string{"--json", "--duration", "30h", "--accounts", "2",
		"--group", cx600.Path() + ",10,1.0.0.1,signin=0.5,test=2",
		"--group", cx600.Path() + ",4,1.0.0.1,external,signin=0.5",
		"--group", rt.Path() + ",2,1.0.0.1",
		"--broken", "0.3", "--corrupt", "0.2", "--power-loss", "0.2"}
	// The accounts the signed-in users need.
	out := runCmd(t, bin, append(args, "--list", "accounts")...)
	sc := simulator.Scenario{Accounts: 2, Groups: []simulator.Group{{Model: cx600.Path(), Count: 1, Version: "1.0.0.1"}}}
	if got, want := strings.Fields(out), (&sc).AccountNames(); !cmp.Equal(got, want) {
		t.Fatalf("--list accounts = %q, want %q", got, want)
	}
	report := func(seed string) []byte {
		s := startService(t, nil)
		importVersion(t, s, "2.0.0.1", 16<<10, cx600, rt)
		s.CLI(t, "approve", cx600.Path())
		sc := sc
		prepare(t, s, &sc)
		out := runCmd(t, bin, append(args, "--data", s.Dir, "--seed", seed)...)
		var rep simulator.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("device-sim --json: %v\n%s", err, out)
		}
		if rep.Devices != 16 || rep.Updates == 0 {
			t.Errorf("report of seed %s: %d devices, %d updates; want 16 and some", seed, rep.Devices, rep.Updates)
		}
		return []byte(out)
	}
	first := report("9")
	if again := report("9"); !bytes.Equal(first, again) {
		t.Errorf("seed 9 twice gave two reports:\n%s\n%s", first, again)
	}
	if other := report("10"); bytes.Equal(first, other) {
		t.Errorf("seeds 9 and 10 gave the same report:\n%s", first)
	}
}

func runCmd(t testing.TB, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}
