package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// freeAddr returns a free TCP address on ip, for a listener that must
// keep its address across a restart.
func freeAddr(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// primaryProc is a primary on fixed loopback addresses, so that its
// replicas find it again after a restart.
type primaryProc struct {
	bin, dir               string
	internal, external, ad string
	svc                    *devsvctest.Service
}

func startPrimary(t testing.TB, configure func(dir string)) *primaryProc {
	t.Helper()
	bin, dir := devsvctest.Init(t, domain)
	if configure != nil {
		configure(dir)
	}
	p := &primaryProc{bin: bin, dir: dir, internal: freeAddr(t, "127.0.0.1"), external: freeAddr(t, "127.0.0.1"), ad: freeAddr(t, "127.0.0.1")}
	p.start(t)
	return p
}

func (p *primaryProc) start(t testing.TB) {
	t.Helper()
	p.svc = devsvctest.Start(t, p.bin, p.dir, "--internal-addr", p.internal, "--external-addr", p.external, "--admin-addr", p.ad,
		"--console-addr", "off", "--log-level", "debug")
}

// replicaProc is a replica of a site on its own loopback address.
type replicaProc struct {
	name, ip string
	bin, dir string
	svc      *devsvctest.Service
	// probes counts the check-ins offered made (the replica forwards
	// them too).
	probes int64
}

// addReplica makes a replica of site name on ip with the primary's
// credentials (devsvc replicas add, then devsvc init --replica-of) and
// starts it; configure may change its settings first.
func addReplica(t testing.TB, p *primaryProc, name, ip string, configure func(dir string)) *replicaProc {
	t.Helper()
	return addReplicaVia(t, p, p.ad, name, ip, configure)
}

// addReplicaVia is addReplica whose replica reaches the primary at
// primary (a proxy that counts the WAN's bytes, say).
func addReplicaVia(t testing.TB, p *primaryProc, primary, name, ip string, configure func(dir string)) *replicaProc {
	t.Helper()
	cred := filepath.Join(t.TempDir(), name+".cred")
	p.svc.CLI(t, "replicas", "add", name, "--site", name, "--internal-name", ip, "--primary", primary, "-o", cred)
	if fi, err := os.Stat(cred); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file %s: %v, mode %v; want 0600", cred, err, fi.Mode())
	}
	dir := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(p.bin, "init", "--data", dir, "--replica-of", primary, "--credentials", cred).CombinedOutput(); err != nil {
		t.Fatalf("devsvc init --replica-of: %v\n%s", err, out)
	}
	if configure != nil {
		configure(dir)
	}
	r := &replicaProc{name: name, ip: ip, bin: p.bin, dir: dir}
	r.start(t)
	return r
}

func (r *replicaProc) start(t testing.TB) {
	t.Helper()
	r.svc = devsvctest.Start(t, r.bin, r.dir, "--internal-addr", r.ip+":0", "--external-addr", r.ip+":0", "--admin-addr", r.ip+":0",
		"--console-addr", "off", "--log-level", "debug")
}

// url is the replica's internal base URL, as its devices reach it.
func (r *replicaProc) url(t testing.TB) string {
	return "https://" + r.ip + ":" + port(t, r.svc.Run.Internal) + "/"
}

// replication is devsvc status --json's replication part.
func replication(t testing.TB, s *devsvctest.Service) service.ReplicationStatus {
	t.Helper()
	var st struct {
		Seq         uint64                    `json:"seq"`
		Replication service.ReplicationStatus `json:"replication"`
	}
	s.JSON(t, &st, "status")
	return st.Replication
}

// seq is the service's history number.
func seq(t testing.TB, s *devsvctest.Service) uint64 {
	t.Helper()
	var st struct {
		Seq uint64 `json:"seq"`
	}
	s.JSON(t, &st, "status")
	return st.Seq
}

// probeMAC is the device offered checks in as.
const probeMAC = "00-04-F2-FF-FF-01"

// offered checks in at the replica as a CX600 that runs no version and
// returns the version offered: the approved one (none when nothing is).
func (r *replicaProc) offered(t testing.TB) firmware.Version {
	t.Helper()
	c := deviceClient(t, r.dir, r.svc.Run.Internal, nil)
	ci := deviceproto.CheckIn{Identity: cx600, MAC: probeMAC}
	code, body := post(t, c, r.url(t)+strings.TrimPrefix(deviceproto.CheckInPath, "/"), ci.AppendXML(nil), "", "")
	if code != http.StatusOK {
		t.Fatalf("check-in at replica %s = %d %s", r.name, code, body)
	}
	r.probes++
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	return a.Version
}

// offers waits until the replica offers v (its approval applied).
func (r *replicaProc) offers(t testing.TB, v firmware.Version, limit time.Duration) {
	t.Helper()
	if !r.svc.WaitUntil(limit, func() bool { return r.offered(t) == v }) {
		t.Fatalf("replica %s does not offer %s within %v\n%s", r.name, v, limit, r.svc.Logs())
	}
}

// caughtUp waits until the replica has applied everything up to the
// primary's history number n.
func (r *replicaProc) caughtUp(t testing.TB, n uint64, limit time.Duration) {
	t.Helper()
	if !r.svc.WaitUntil(limit, func() bool { return seq(t, r.svc) >= n }) {
		t.Fatalf("replica %s is not at change %d within %v (at %d)\n%s", r.name, n, limit, seq(t, r.svc), r.svc.Logs())
	}
}

// treeFiles lists the files of a data directory's file store with their
// SHA-256.
func treeFiles(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	root := filepath.Join(dir, "DeviceUpdateFiles")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplicas is the replicas' acceptance, with real processes on
// loopback: a primary and three replicas on 127.0.0.2-4. One import and
// approval on the primary reach every replica within seconds; each file
// crosses from the primary to each replica once (the primary counts);
// each site's devices download from their replica; with the primary
// stopped they keep checking in and reporting at their replica, and once
// it is back every check-in and report reaches it, once and in order.
func TestReplicas(t *testing.T) {
	hourly := func(dir string) {
		setSetting(t, dir, "check_interval", "1h")
		setSetting(t, dir, "replica_retry_max", "2s") // notice the primary back soon
	}
	p := startPrimary(t, hourly)
	importVersion(t, p.svc, "1.0.0.1", 32<<10, cx600)
	p.svc.CLI(t, "approve", cx600.Path())
	sites := []struct{ name, ip, subnet string }{{"paris", "127.0.0.2", "127.1.2.0/24"}, {"lyon", "127.0.0.3", "127.1.3.0/24"}, {"nice", "127.0.0.4", "127.1.4.0/24"}}
	var replicas []*replicaProc
	for _, s := range sites {
		replicas = append(replicas, addReplica(t, p, s.name, s.ip, hourly))
	}
	for _, r := range replicas {
		r.offers(t, firmware.MustParseVersion("1.0.0.1"), time.Minute)
	}

	// A release, once, on the primary: every replica offers it within
	// 5 s of the approval.
	const size = 1 << 20
	importVersion(t, p.svc, "2.0.0.1", size, cx600)
	approved := time.Now()
	p.svc.CLI(t, "approve", cx600.Path())
	limit := 5 * time.Second
	if devsvctest.Race() {
		limit = 15 * time.Second // the race detector slows every process down
	}
	v2 := firmware.MustParseVersion("2.0.0.1")
	for _, r := range replicas {
		r.offers(t, v2, limit-time.Since(approved))
		t.Logf("replica %s offers %s %v after the approval", r.name, v2, time.Since(approved).Round(time.Millisecond))
	}

	// Each file crossed from the primary to each replica once.
	var list struct {
		Replicas []service.ReplicaInfo `json:"replicas"`
	}
	p.svc.JSON(t, &list, "replicas", "list")
	wantBytes := int64(2*1024 + 32<<10 + size) // two versions' images and catalogs
	for _, r := range list.Replicas {
		if r.Progress.BytesFetched != wantBytes || r.Progress.FilesFetched != 4 {
			t.Errorf("replica %s fetched %d bytes in %d files, want %d in 4: each file once", r.Name, r.Progress.BytesFetched, r.Progress.FilesFetched, wantBytes)
		}
	}

	// A replica's certificate calls no admin method of the primary.
	rc := filepath.Join(replicas[0].dir, "certs")
	out, errOut, err := devsvctest.RunCLI(p.bin, p.dir, "", "--server", p.ad, "--cert", filepath.Join(rc, "replica.pem"), "--key", filepath.Join(rc, "replica.key"),
		"--ca", filepath.Join(rc, "ca.pem"), "rules")
	if err == nil || !strings.Contains(errOut, "replica's certificate") {
		t.Errorf("devsvc rules with a replica's certificate = %v, %q %q; want it refused", err, out, errOut)
	}
	// A replica refuses changes, naming its primary.
	if _, errOut, err := devsvctest.RunCLI(p.bin, replicas[0].dir, "", "approve", cx600.Path()); err == nil || !strings.Contains(errOut, "replica of "+p.ad) {
		t.Errorf("devsvc approve on a replica = %v, %q; want it refused naming the primary", err, errOut)
	}

	// Each site's devices update from their replica.
	sc := simulator.Scenario{Seed: 14, Replicas: map[string]string{}}
	for i, s := range sites {
		sc.Replicas[s.name] = replicas[i].url(t)
		sc.Groups = append(sc.Groups, simulator.Group{Model: cx600.Path(), Count: 30, Version: "1.0.0.1", Site: s.name, Subnet: s.subnet})
	}
	sim := newSim(t, p.svc, sc)
	runUntil(t, sim, 6*time.Hour)
	rep := sim.Report()
	if rep.Updates != 90 {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("updates %d, want 90:\n%s", rep.Updates, b.String())
	}
	for _, s := range rep.Sites {
		if s.BytesPrimary != 0 || s.BytesReplica != 30*(size+1024) {
			t.Errorf("site %s: %d bytes from the primary, %d from the replica; want every byte from the replica", s.Site, s.BytesPrimary, s.BytesReplica)
		}
	}

	// Another release, then the WAN goes: the primary stops.
	importVersion(t, p.svc, "3.0.0.1", 64<<10, cx600)
	p.svc.CLI(t, "approve", cx600.Path())
	v3 := firmware.MustParseVersion("3.0.0.1")
	for _, r := range replicas {
		r.offers(t, v3, time.Minute)
	}
	p.svc.Stop(t)
	runUntil(t, sim, 12*time.Hour)
	rep = sim.Report()
	for _, d := range sim.Devices() {
		if d.Version != v3 {
			t.Fatalf("device %s runs %s after the outage, want %s: it updated from its replica with the primary stopped", d.MAC, d.Version, v3)
		}
	}
	for _, r := range replicas {
		if !r.svc.WaitForLog("lost the primary", time.Minute) {
			t.Errorf("replica %s did not notice the primary is gone", r.name)
		}
		// The reports are queued in the outbox with the inventory's next
		// group commit (inventory_flush): poll for them, bounded.
		f := replication(t, r.svc).Follower
		tick := time.NewTicker(100 * time.Millisecond)
		for deadline := time.After(30 * time.Second); f != nil && f.Outbox == 0; f = replication(t, r.svc).Follower {
			select {
			case <-tick.C:
				continue
			case <-deadline:
			}
			break
		}
		tick.Stop()
		if f == nil || f.Connected || f.Outbox == 0 {
			t.Errorf("replica %s during the outage: %+v; want disconnected, with reports kept", r.name, f)
			var txt bytes.Buffer
			rep.WriteText(&txt)
			t.Logf("the devices' report:\n%s\nthe replica's log of replication:", txt.String())
			for _, line := range strings.Split(r.svc.Logs(), "\n") {
				if strings.Contains(line, `"WARN"`) || strings.Contains(line, `"ERROR"`) || strings.Contains(line, "Upstream") || strings.Contains(line, "replica:") {
					t.Log(line[:min(400, len(line))])
				}
			}
		}
	}

	// The primary is back: every check-in and report reaches it, once.
	p.start(t)
	for _, r := range replicas {
		if !r.svc.WaitUntil(2*time.Minute, func() bool { f := replication(t, r.svc).Follower; return f != nil && f.Connected && f.Outbox == 0 }) {
			t.Fatalf("replica %s has not forwarded everything after the primary came back: %+v", r.name, replication(t, r.svc).Follower)
		}
	}
	p.svc.JSON(t, &list, "replicas", "list")
	var forwarded int64
	for _, r := range list.Replicas {
		forwarded += r.Progress.Reports
	}
	answered := rep.CheckIns + rep.StatusReports - rep.LostReports
	for _, r := range replicas {
		answered += r.probes // the test's own check-ins at each replica
	}
	if forwarded != answered {
		t.Errorf("the primary applied %d forwarded check-ins and reports, the devices had %d answered: each must arrive once", forwarded, answered)
	}
	settled(t, p.svc, func(inv map[string]firmware.Device) (problems []string) {
		delete(inv, probeMAC)
		if len(inv) != 90 {
			problems = append(problems, fmt.Sprintf("the primary's inventory has %d devices, want 90", len(inv)))
		}
		for _, d := range sim.Devices() {
			rec := inv[d.MAC]
			if rec.Version != v3 || rec.State != firmware.StateSuccess || rec.Target != v3 || rec.LastUpdate.IsZero() {
				problems = append(problems, fmt.Sprintf("device %s in the primary's inventory: version %s, %s %s; want %s, success (its reports in order)", d.MAC, rec.Version, rec.State, rec.Target, v3))
			}
		}
		return problems
	})
}

// TestReplicaCrash kills a replica with SIGKILL at random moments while
// it follows a stream of imports, approvals, rejections and purges on the
// primary. After each restart it catches up by itself; in the end its
// catalog and history are the primary's (no change applied twice or
// lost) and its file store holds exactly the primary's files (no orphan,
// none missing).
func TestReplicaCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	p := startPrimary(t, nil)
	r := addReplica(t, p, "paris", "127.0.0.2", nil)
	other := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 24
		if devsvctest.Race() {
			n = 10 // each command takes a second under the race detector
		}
		for i := 1; i <= n; i++ {
			id := []firmware.Identity{cx600, other}[i%2]
			v := fmt.Sprintf("1.0.0.%d", i)
			tree := t.TempDir()
			if err := simulator.WriteFirmware(tree, id, firmware.MustParseVersion(v), int64(300<<10+i*1000)); err != nil {
				t.Error(err)
				return
			}
			if _, errOut, err := devsvctest.RunCLI(p.bin, p.dir, "", "import", tree); err != nil {
				t.Errorf("import %s: %v %s", v, err, errOut)
				return
			}
			switch i % 4 {
			case 1, 2:
				devsvctest.RunCLI(p.bin, p.dir, "", "approve", id.Path())
			case 3:
				devsvctest.RunCLI(p.bin, p.dir, "", "reject", id.Path())
			default:
				devsvctest.RunCLI(p.bin, p.dir, "", "purge")
			}
		}
	}()
	rng := uint64(seed)
	kills := 0
	for writing := true; (writing && kills < 20) || kills < 8; {
		rng = rng*6364136223846793005 + 1442695040888963407
		delay := time.Duration(30+(rng>>33)%400) * time.Millisecond
		<-time.After(delay) // the random moment of the crash
		select {
		case <-done:
			writing = false
		default:
		}
		r.svc.Kill(t)
		kills++
		r.start(t)
	}
	<-done
	head := seq(t, p.svc)
	r.caughtUp(t, head, 2*time.Minute)
	t.Logf("%d kills; the replica caught up with change %d", kills, head)
	for _, cmd := range [][]string{{"rules"}, {"history"}} {
		var want, got any
		p.svc.JSON(t, &want, cmd...)
		r.svc.JSON(t, &got, cmd...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("devsvc %s differs (-primary +replica):\n%s", cmd[0], diff)
		}
	}
	if diff := cmp.Diff(treeFiles(t, p.dir), treeFiles(t, r.dir)); diff != "" {
		t.Errorf("the replica's file store differs from the primary's (-primary +replica):\n%s", diff)
	}
	if entries, _ := os.ReadDir(filepath.Join(r.dir, "replica")); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left in the replica's download directory after it caught up: %v", names)
	}
}
