package simulator_test

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/simulator"
)

// peerScenario is subnets of n peer-capable CX600s each, 127.2.k.0/24.
func peerScenario(seed uint64, subnets, n int, faults *simulator.Faults) simulator.Scenario {
	sc := simulator.Scenario{Seed: seed, Duration: simulator.Duration(6 * time.Hour)}
	for k := range subnets {
		sc.Groups = append(sc.Groups, simulator.Group{Model: cx600.Path(), Count: n, Version: "1.0.0.1",
			Subnet: fmt.Sprintf("127.2.%d.0/24", k+1), Peers: 1, Faults: faults})
	}
	return sc
}

// TestPeers runs peer-capable devices against the device handlers with an
// Elector: each subnet fetches the image across the WAN about once, every
// device ends on the new version, and poisoned pieces and a killed
// representative are survived.
func TestPeers(t *testing.T) {
	const size = 2 << 20 // 8 pieces
	for _, tc := range []struct {
		name    string
		off     bool // the service has no Elector: peers off
		faults  *simulator.Faults
		minWAN  float64 // copies per subnet
		maxWAN  float64
		bad     bool // bad pieces must be seen
		failure bool // peer failures must be seen
		// wanRate, when set, is each subnet's line to the service: slow
		// enough that the representative is still downloading when its
		// peers come (they must wait, not give up on it).
		wanRate int64
		// pieceTimeout, when set, is the devices' deadline per piece.
		pieceTimeout time.Duration
	}{
		{name: "peers off: the reference", off: true, minWAN: 10, maxWAN: 10.05},
		{name: "plain", minWAN: 1, maxWAN: 1.05},
		{name: "representative still downloading", minWAN: 1, maxWAN: 1.05, wanRate: 16 << 10},
		{name: "poisoned peers", faults: &simulator.Faults{PoisonPieces: 0.3}, minWAN: 1, maxWAN: 2.05, bad: true},
		{name: "representative killed", faults: &simulator.Faults{KillRepresentative: 1}, minWAN: 1, maxWAN: 2.05, failure: true},
		{name: "slow peers", faults: &simulator.Faults{SlowPeers: 0.3}, minWAN: 1, maxWAN: 2.05, failure: true, pieceTimeout: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := deviceapi.Config{Peers: peers.New(peers.Config{})}
			if tc.off {
				cfg.Peers = nil
			}
			s := newService(t, serviceConfig{api: cfg})
			s.importVersion(t, cx600, "2.0.0.1", size)
			s.approve(t, cx600)
			sc := peerScenario(7, 3, 10, tc.faults)
			sc.Behaviour.WANRate = tc.wanRate
			// A minute by default: a piece late for the machine's load
			// (other tests at once) is no fault of the peer's.
			sc.Behaviour.PeerPieceTimeout = simulator.Duration(cmp.Or(tc.pieceTimeout, time.Minute))
			sim, err := simulator.New(sc, s.svc, simulator.Config{Workers: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := sim.Run(ctx); err != nil {
				t.Fatal(err)
			}
			rep := sim.Report()
			if rep.UpdatedDevices != 30 {
				t.Errorf("%d of 30 devices updated; failures %+v", rep.UpdatedDevices, rep.Failures)
			}
			if len(rep.Subnets) != 3 {
				t.Fatalf("subnets %+v, want 3", rep.Subnets)
			}
			for _, sr := range rep.Subnets {
				copies := float64(sr.WANBytes) / size
				t.Logf("%s: %d devices, WAN %d bytes (%.3f copies), peers %d, lists %d, last update %v", sr.Subnet, sr.Devices, sr.WANBytes, copies, sr.PeerBytes, sr.ListBytes, sr.LastUpdate)
				if copies > tc.maxWAN || copies < tc.minWAN {
					t.Errorf("%s: WAN bytes %d = %.3f copies, want %.2f to %.2f", sr.Subnet, sr.WANBytes, copies, tc.minWAN, tc.maxWAN)
				}
				if !tc.off && sr.PeerBytes < 8*size {
					t.Errorf("%s: %d bytes from peers, want at least 8 copies", sr.Subnet, sr.PeerBytes)
				}
			}
			t.Logf("waits %d, bad pieces %d, peer failures %d", rep.PeerWaits, rep.BadPieces, rep.PeerFailures)
			if tc.bad && rep.BadPieces == 0 {
				t.Error("no bad piece detected")
			}
			if tc.failure && rep.PeerFailures == 0 {
				t.Error("no peer failure seen")
			}
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "SUBNET") || !strings.Contains(text.String(), "127.2.1.0/24") {
				t.Errorf("the text report lacks the subnet table (%v):\n%s", err, text.String())
			}
			if tc.wanRate > 0 && rep.PeerFailures > 0 {
				// A peer whose own download has not begun is waited for.
				t.Errorf("%d peers given up on, want none", rep.PeerFailures)
			}
			if tc.wanRate > 0 && rep.PeerWaits == 0 {
				t.Error("no device waited for a piece its peer had not got yet")
			}
		})
	}
}
