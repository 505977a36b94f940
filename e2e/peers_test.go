package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// peerFleet is a scenario of subnets of n peer-capable CX600s each, in
// 127.3.k.0/24, through six simulated hours.
func peerFleet(seed uint64, subnets, n int, faults *simulator.Faults, wanRate int64) simulator.Scenario {
	// A minute's deadline per piece: a piece late for the machine's load
	// (other tests at once) is no fault of the peer's, and would cost its
	// subnet another copy.
	sc := simulator.Scenario{Seed: seed, Start: rehearsalStart, Duration: simulator.Duration(6 * time.Hour),
		Behaviour: simulator.Behaviour{WANRate: wanRate, PeerPieceTimeout: simulator.Duration(time.Minute)}}
	for k := range subnets {
		sc.Groups = append(sc.Groups, simulator.Group{Model: cx600.Path(), Count: n, Version: "1.0.0.1",
			Subnet: fmt.Sprintf("127.3.%d.0/24", k+1), Peers: 1, Faults: faults})
	}
	return sc
}

// peerRun is one run of a peer fleet against its own real devsvc serve
// on a simulated clock (peers set to on or off), with an image of size
// bytes: the report and the wall time.
func peerRun(t testing.TB, sc simulator.Scenario, size int64, peers bool) (simulator.Report, []simulator.DeviceInfo, time.Duration) {
	t.Helper()
	s := startRehearsal(t, rehearsalStart, func(dir string) {
		setSetting(t, dir, "peers", strconv.FormatBool(peers))
	})
	importVersion(t, s, "2.0.0.1", size, cx600)
	s.CLI(t, "approve", cx600.Path())
	sim := newSim(t, s, sc)
	start := time.Now()
	runUntil(t, sim, time.Duration(sc.Duration))
	wall := time.Since(start)
	rep := sim.Report()
	devs := sim.Devices()
	settled(t, s, func(inv map[string]firmware.Device) (problems []string) {
		for _, d := range devs {
			if rec := inv[d.MAC]; rec.Version.String() != "2.0.0.1" || rec.State != firmware.StateSuccess {
				problems = append(problems, fmt.Sprintf("device %s: inventory %s, %q; want 2.0.0.1, success", d.MAC, rec.Version, rec.State))
			}
		}
		return problems
	})
	return rep, devs, wall
}

// checkPeerRun checks that every device runs 2.0.0.1 and each subnet
// fetched at most maxCopies copies of the image across the WAN.
func checkPeerRun(t *testing.T, rep simulator.Report, devs []simulator.DeviceInfo, size int64, maxCopies float64) {
	t.Helper()
	for _, d := range devs {
		if d.Version.String() != "2.0.0.1" {
			t.Errorf("device %s runs %s, want 2.0.0.1 (error %q)", d.MAC, d.Version, d.Error)
		}
	}
	for _, sr := range rep.Subnets {
		copies := float64(sr.WANBytes) / float64(size)
		if copies > maxCopies || copies < 1 {
			t.Errorf("subnet %s: %d bytes across the WAN = %.4f copies of the image, want 1 to %.2f", sr.Subnet, sr.WANBytes, copies, maxCopies)
		}
	}
}

// TestPeerSubnets is the acceptance of subnet peers, with real devsvc
// serve processes and the simulator: every subnet takes a release with
// WAN bytes of at most 1.05 copies, a representative killed mid-transfer
// costs its subnet at most one more copy, poisoned pieces are detected,
// their peers avoided (a poisoned representative replaced, at most one
// more copy), and every device converges. The full size (2,000
// devices in 40 subnets, a 20 MB image) runs without the race detector
// and without -short (about 2 minutes on two cores:
// go test -run TestPeerSubnets ./e2e/); under either, 80 devices in 4
// subnets take 2 MB.
func TestPeerSubnets(t *testing.T) {
	subnets, n, size := 40, 50, int64(20<<20)
	if testing.Short() || devsvctest.Race() {
		subnets, n, size = 4, 20, 2<<20
	}
	t.Run(fmt.Sprintf("%d devices in %d subnets, %d MB", subnets*n, subnets, size>>20), func(t *testing.T) {
		rep, devs, wall := peerRun(t, peerFleet(11, subnets, n, nil, 0), size, true)
		checkPeerRun(t, rep, devs, size, 1.05)
		var wan, peer int64
		for _, sr := range rep.Subnets {
			wan += sr.WANBytes
			peer += sr.PeerBytes
		}
		t.Logf("%d devices: WAN %.4f copies per subnet, %d bytes from peers, converged at %v simulated (%v wall)",
			len(devs), float64(wan)/float64(size)/float64(len(rep.Subnets)), peer, time.Duration(rep.Converge.All), wall.Round(time.Millisecond))
	})
	t.Run("representative killed mid-transfer", func(t *testing.T) {
		size := int64(2 << 20)
		rep, devs, _ := peerRun(t, peerFleet(12, 4, 20, &simulator.Faults{KillRepresentative: 1}, 0), size, true)
		checkPeerRun(t, rep, devs, size, 2.05)
		if rep.PeerFailures == 0 {
			t.Error("no device saw its peer fail")
		}
		t.Logf("peer failures %d; WAN per subnet: %v", rep.PeerFailures, wanCopies(rep, size))
	})
	t.Run("poisoned pieces", func(t *testing.T) {
		size := int64(2 << 20)
		rep, devs, _ := peerRun(t, peerFleet(13, 4, 20, &simulator.Faults{PoisonPieces: 0.25}, 0), size, true)
		// A poisoned representative is replaced like a killed one: its
		// subnet may take one more copy.
		checkPeerRun(t, rep, devs, size, 2.05)
		if rep.BadPieces == 0 {
			t.Error("no bad piece was detected")
		}
		t.Logf("bad pieces %d; WAN per subnet: %v", rep.BadPieces, wanCopies(rep, size))
	})
}

// TestPeerSubnetsDeviceSim runs peer-capable devices with the device-sim
// command (peers=1 in --group): its report's subnets fetched one copy
// across the WAN each.
func TestPeerSubnetsDeviceSim(t *testing.T) {
	const size = 1 << 20
	s := startRehearsal(t, rehearsalStart, nil)
	importVersion(t, s, "2.0.0.1", size, cx600)
	s.CLI(t, "approve", cx600.Path())
	rep, devs := deviceSim(t, s, "--duration", "6h", "--seed", "3",
		"--group", cx600.Path()+",10,1.0.0.1,subnet=127.4.1.0/24,peers=1",
		"--group", cx600.Path()+",10,1.0.0.1,subnet=127.4.2.0/24,peers=0.5")
	if rep.PeerDevices != 15 || len(rep.Subnets) != 2 {
		t.Fatalf("%d peer-capable devices in %d subnets, want 15 in 2", rep.PeerDevices, len(rep.Subnets))
	}
	// In the second subnet the five devices without peers download
	// themselves: six copies.
	second := rep
	second.Subnets = rep.Subnets[1:]
	rep.Subnets = rep.Subnets[:1]
	t.Logf("waits %d, bad pieces %d, peer failures %d %v, failures %v", rep.PeerWaits, rep.BadPieces, rep.PeerFailures, rep.PeerFailureReasons, rep.Failures)
	checkPeerRun(t, rep, devs, size, 1.05)
	checkPeerRun(t, second, nil, size, 6.05)
	if got := float64(second.Subnets[0].WANBytes) / size; got < 6 {
		t.Errorf("the second subnet fetched %.3f copies across the WAN, want 6", got)
	}
}

func wanCopies(rep simulator.Report, size int64) []string {
	var out []string
	for _, sr := range rep.Subnets {
		out = append(out, fmt.Sprintf("%s %.3f", sr.Subnet, float64(sr.WANBytes)/float64(size)))
	}
	return out
}

// BenchmarkPeerSubnets measures, with peers on and off in the same run,
// what a release costs: 4 subnets of 50 peer-capable devices, each
// subnet behind a 2 Mbit/s line to the service (Behaviour.WANRate, 256
// KiB/s, shared by its downloads from the service), powering on within 5
// minutes, take a 20 MB image. It reports the WAN copies per subnet, the
// simulated time after the start by which the last device of the slowest
// subnet was back on the new version (download, 5 idle minutes, a 3-minute
// reboot) and the wall time of the run:
//
//	go test -run '^$' -bench PeerSubnets -benchtime 1x ./e2e/
func BenchmarkPeerSubnets(b *testing.B) {
	const size = 20 << 20
	for _, peers := range []bool{true, false} {
		b.Run("peers="+strconv.FormatBool(peers), func(b *testing.B) {
			for range b.N {
				sc := peerFleet(21, 4, 50, nil, 256<<10)
				sc.Duration = simulator.Duration(24 * time.Hour)
				sc.Behaviour.BootSpread = simulator.Duration(5 * time.Minute)
				rep, _, wall := peerRun(b, sc, size, peers)
				var wan int64
				var last simulator.Duration
				for _, sr := range rep.Subnets {
					wan += sr.WANBytes
					last = max(last, sr.LastUpdate)
				}
				b.ReportMetric(float64(wan)/size/float64(len(rep.Subnets)), "wan-copies/subnet")
				b.ReportMetric(time.Duration(last).Minutes(), "converge-sim-min")
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(float64(rep.UpdatedDevices), "updated")
			}
		})
	}
}
