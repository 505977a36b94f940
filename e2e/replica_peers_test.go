package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

// TestReplicaPeers: a branch's devices that check in with their site's
// replica take a release from each other as they would from the
// primary's: the replica elects a representative per subnet and serves
// the piece lists, the representative alone downloads from the replica
// (one copy per subnet, nothing from the primary), and every device ends
// on the new version, verified.
func TestReplicaPeers(t *testing.T) {
	hourly := func(dir string) { setSetting(t, dir, "check_interval", "1h") }
	p := startPrimary(t, hourly)
	importVersion(t, p.svc, "1.0.0.1", 32<<10, cx600)
	p.svc.CLI(t, "approve", cx600.Path())
	r := addReplica(t, p, "lyon", "127.0.0.5", hourly)
	const size = 1 << 20 // four pieces
	importVersion(t, p.svc, "2.0.0.1", size, cx600)
	p.svc.CLI(t, "approve", cx600.Path())
	v2 := firmware.MustParseVersion("2.0.0.1")
	r.offers(t, v2, time.Minute)

	const n = 20
	subnets := []string{"127.1.5.0/24", "127.1.6.0/24"}
	sc := simulator.Scenario{Seed: 16, Replicas: map[string]string{"lyon": r.url(t)},
		Behaviour: simulator.Behaviour{PeerPieceTimeout: simulator.Duration(time.Minute)}}
	for _, subnet := range subnets {
		sc.Groups = append(sc.Groups, simulator.Group{Model: cx600.Path(), Count: n, Version: "1.0.0.1", Site: "lyon", Subnet: subnet, Peers: 1})
	}
	sim := newSim(t, p.svc, sc)
	runUntil(t, sim, 6*time.Hour)
	rep := sim.Report()
	var text strings.Builder
	rep.WriteText(&text)
	for _, d := range sim.Devices() {
		if d.Version != v2 {
			t.Errorf("device %s runs %s, want %s (error %q)", d.MAC, d.Version, v2, d.Error)
		}
	}
	if rep.PeerDevices != len(subnets)*n || len(rep.Subnets) != len(subnets) {
		t.Fatalf("%d peer-capable devices in %d subnets, want %d in %d:\n%s", rep.PeerDevices, len(rep.Subnets), len(subnets)*n, len(subnets), text.String())
	}
	for _, s := range rep.Subnets {
		// The image once from the replica; every device's catalog (1 KiB)
		// from it too.
		if copies := float64(s.ReplicaBytes-n*1024) / size; copies < 1 || copies > 1.05 || s.WANBytes != 0 {
			t.Errorf("subnet %s: %d bytes from the replica (%.3f copies of the image), %d across the WAN to the primary; want one copy, all from the replica\n%s",
				s.Subnet, s.ReplicaBytes, copies, s.WANBytes, text.String())
		}
		if s.PeerBytes < (n-1)*size {
			t.Errorf("subnet %s: %d bytes from peers, want at least %d (every device but the representative)", s.Subnet, s.PeerBytes, (n-1)*size)
		}
	}
	if len(rep.VerifyRefusals) != 0 || rep.BadPieces != 0 {
		t.Errorf("refusals %v, bad pieces %d; want none\n%s", rep.VerifyRefusals, rep.BadPieces, text.String())
	}
	t.Logf("%d devices behind the replica: %v", len(subnets)*n, rep.Subnets)
}
