package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

// wan is a TCP proxy standing for the WAN between a replica and its
// primary: it counts the bytes each way.
type wan struct {
	addr     string
	down, up atomic.Int64 // primary to replica, replica to primary
}

func newWAN(t testing.TB, ip, upstream string) *wan {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wan{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			copyCount := func(dst, src net.Conn, n *atomic.Int64) {
				buf := make([]byte, 32<<10)
				for {
					k, err := src.Read(buf)
					if k > 0 {
						n.Add(int64(k))
						if _, werr := dst.Write(buf[:k]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				dst.Close()
				src.Close()
			}
			wg.Go(func() { copyCount(c, u, &w.down) })
			wg.Go(func() { copyCount(u, c, &w.up) })
		}
	})
	return w
}

// BenchmarkReplicaRelease measures what a release costs the WAN: the
// bytes the primary sends a replica (TLS, gRPC, the feed, heartbeats and
// the files, counted on the wire by a proxy between them) from the import
// of a 20 MiB update until the replica offers it, against the update's
// size (the goal: at most 1.02 times), and how long that takes:
//
//	go test -run '^$' -bench ReplicaRelease -benchtime 3x ./e2e/
func BenchmarkReplicaRelease(b *testing.B) {
	p := startPrimary(b, nil)
	w := newWAN(b, "127.0.0.1", p.ad)
	r := addReplicaVia(b, p, w.addr, "paris", "127.0.0.2", nil)
	importVersion(b, p.svc, "1.0.0.1", 64<<10, cx600)
	p.svc.CLI(b, "approve", cx600.Path())
	r.offers(b, firmware.MustParseVersion("1.0.0.1"), time.Minute)
	const size = 20 << 20
	var sent, received int64
	var took time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := fmt.Sprintf("2.0.0.%d", i+1)
		tree := b.TempDir()
		if err := simulator.WriteFirmware(tree, cx600, firmware.MustParseVersion(v), size); err != nil {
			b.Fatal(err)
		}
		down, up := w.down.Load(), w.up.Load()
		start := time.Now()
		p.svc.CLI(b, "import", tree)
		p.svc.CLI(b, "approve", cx600.Path())
		r.offers(b, firmware.MustParseVersion(v), 5*time.Minute)
		took = time.Since(start)
		sent, received = w.down.Load()-down, w.up.Load()-up
	}
	b.StopTimer()
	update := float64(size + 1024) // the image and its catalog
	b.ReportMetric(float64(sent), "bytes-sent/release")
	b.ReportMetric(float64(sent)/update, "x-update")
	b.ReportMetric(float64(received), "bytes-received/release")
	b.ReportMetric(took.Seconds(), "s-to-offer")
	b.Logf("a release of %d bytes: the primary sent the replica %d bytes (%.4f times the update), received %d; offered %v after the import began",
		int64(update), sent, float64(sent)/update, received, took.Round(time.Millisecond))
}

// BenchmarkReplicaFleet runs device-sim with 10,000 devices in 20 sites
// behind 4 replicas (5 sites each, every site its own subnet on
// loopback) through two simulated days, after one release on the
// primary, and reports the wall time and, per site, the bytes fetched
// from the primary and from the replicas:
//
//	go test -run '^$' -bench ReplicaFleet -benchtime 1x ./e2e/
func BenchmarkReplicaFleet(b *testing.B) {
	p := startPrimary(b, nil)
	var replicas []*replicaProc
	for i := range 4 {
		replicas = append(replicas, addReplica(b, p, fmt.Sprintf("r%d", i+1), fmt.Sprintf("127.0.0.%d", i+2), nil))
	}
	importVersion(b, p.svc, "3.5.6907.35", 128<<10, cx600)
	p.svc.CLI(b, "approve", cx600.Path())
	importVersion(b, p.svc, "4.0.7577.4372", 128<<10, cx600)
	p.svc.CLI(b, "approve", cx600.Path())
	for _, r := range replicas {
		r.offers(b, firmware.MustParseVersion("4.0.7577.4372"), time.Minute)
	}
	sim := deviceSimBinary(b)
	args := []string{"--data", p.dir, "--seed", "1", "--duration", "2d", "--json", "--broken", "0.02"}
	for i := range 20 {
		site := fmt.Sprintf("s%02d", i+1)
		args = append(args, "--group", fmt.Sprintf("%s,500,3.5.6907.35,site=%s,subnet=127.2.%d.0/24", cx600.Path(), site, i+1),
			"--replica", site+"="+replicas[i%4].url(b))
	}
	b.ResetTimer()
	var wall time.Duration
	var rep simulator.Report
	for range b.N {
		cmd := exec.Command(sim, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("device-sim: %v\n%s", err, errOut.String())
		}
		wall = time.Since(start)
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			b.Fatalf("device-sim --json: %v\n%s", err, out.String())
		}
	}
	b.StopTimer()
	var fromPrimary, fromReplicas int64
	for _, s := range rep.Sites {
		fromPrimary += s.BytesPrimary
		fromReplicas += s.BytesReplica
	}
	b.ReportMetric(wall.Seconds(), "wall-s/run")
	b.ReportMetric(float64(rep.Updates), "updates")
	b.ReportMetric(float64(fromPrimary), "bytes-from-primary")
	b.ReportMetric(float64(fromReplicas), "bytes-from-replicas")
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, r := range replicas { // what they answered last is forwarded within a second
		r.svc.WaitUntil(time.Minute, func() bool { f := replication(b, r.svc).Follower; return f != nil && f.Outbox == 0 })
	}
	var list struct {
		Replicas []struct {
			Name     string `json:"name"`
			Progress struct {
				BytesFetched int64 `json:"bytesFetched"`
				Reports      int64 `json:"reports"`
			} `json:"progress"`
		} `json:"replicas"`
	}
	p.svc.JSON(b, &list, "replicas", "list")
	for _, r := range list.Replicas {
		fmt.Fprintf(&text, "replica %s fetched %d bytes from the primary and forwarded %d check-ins and reports\n", r.Name, r.Progress.BytesFetched, r.Progress.Reports)
	}
	fmt.Fprintf(&text, "wall %.1fs\n", wall.Seconds())
	b.Logf("10,000 devices in 20 sites behind 4 replicas:\n%s", text.String())
}
