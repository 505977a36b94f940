package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// TestBackupUnderLoad takes a backup with devsvc backup while a simulated
// fleet checks in and downloads and while an import is under way (its
// upload held half-way), restores it with devsvc restore-backup into a new
// data directory that has the old settings and certificates, starts
// devsvc serve there, and checks that it serves the catalog of the moment
// of the backup: the same rules, a history that is the old one's up to the
// backup, none of the import that was under way, the devices checked in
// by then, and an image a device downloads whole.
func TestBackupUnderLoad(t *testing.T) {
	a := startService(t, nil)
	v1 := firmware.MustParseVersion("1.0.0.1")
	tree := t.TempDir()
	for _, id := range []firmware.Identity{cx600, hp} {
		if err := simulator.WriteFirmware(tree, id, v1, 256<<10); err != nil {
			t.Fatal(err)
		}
	}
	a.CLI(t, "import", tree)
	a.CLI(t, "approve", cx600.Path())
	a.CLI(t, "approve", hp.Path())

	// The fleet: 150 phones on an older version check in and download,
	// a simulated day every few real seconds, until the test is done.
	sc := simulator.Scenario{Seed: 7, Speed: 20000, Duration: simulator.Duration(30 * 24 * time.Hour), Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 100, Version: "0.9.0.1"},
		{Model: hp.Path(), Count: 50, Version: "0.9.0.1"},
	}}
	prepare(t, a, &sc)
	svc, err := simulator.LoadService(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	checkedIn := make(chan struct{})
	fired := false // the callback runs on the simulation's goroutine only
	sim, err := simulator.New(sc, svc, simulator.Config{ProgressEvery: 20 * time.Millisecond, Progress: func(p simulator.Progress) {
		if p.CheckedIn >= 50 && !fired {
			fired = true
			close(checkedIn)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	fleetCtx, stopFleet := context.WithCancel(context.Background())
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- sim.Run(fleetCtx) }()
	fleetStopped := false
	stop := func() {
		if !fleetStopped {
			fleetStopped = true
			stopFleet()
			if err := <-fleetDone; err != nil && !errors.Is(err, simulator.ErrCanceled) {
				t.Errorf("the fleet: %v", err)
			}
		}
	}
	defer stop()
	select {
	case <-checkedIn:
	case err := <-fleetDone:
		fleetStopped = true
		t.Fatalf("the fleet ended before 50 devices checked in: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("50 devices did not check in within 2 minutes")
	}

	// An import of a RoundTable update, its upload held after the first
	// MiB until the backup is taken.
	big := t.TempDir()
	if err := simulator.WriteFirmware(big, rt, v1, 8<<20); err != nil {
		t.Fatal(err)
	}
	client := adminClient(t, a)
	uploading, release := make(chan struct{}), make(chan struct{})
	imported := make(chan error, 1)
	go func() {
		held := false
		_, err := client.ImportTree(context.Background(), big, func(done, total int64) {
			if !held && done >= 1<<20 {
				held = true
				close(uploading)
				<-release
			}
		})
		imported <- err
	}()
	select {
	case <-uploading:
	case err := <-imported:
		t.Fatalf("the import ended before it was held: %v", err)
	}

	backup := filepath.Join(t.TempDir(), "opendus.tar")
	var taken struct {
		store.BackupInfo
		Bytes int64 `json:"bytes"`
	}
	a.JSON(t, &taken, "backup", backup)
	var rulesThen []adminapi.RuleInfo
	a.JSON(t, &rulesThen, "rules")
	var historyThen []firmware.Event
	a.JSON(t, &historyThen, "history")
	close(release)
	if err := <-imported; err != nil {
		t.Fatalf("the import held during the backup: %v", err)
	}
	stop()
	var devicesNow []firmware.Device
	a.JSON(t, &devicesNow, "devices")
	t.Logf("backup: %d bytes, history at %d, %d files of %d updates; the fleet: %d of %d devices checked in", taken.Bytes, taken.Seq, taken.Files, taken.Updates, sim.Progress().CheckedIn, sim.Progress().Devices)
	if taken.Updates != 2 || taken.Files != 4 {
		t.Errorf("the backup holds %d updates, %d files; want the 2 imported before it, of 2 files each, not the import under way", taken.Updates, taken.Files)
	}

	// A new data directory with the old settings and certificates, as on
	// a new machine: devices keep trusting the CA.
	b := filepath.Join(t.TempDir(), "restored")
	copyFile(t, filepath.Join(a.Dir, datadir.ConfigFile), filepath.Join(b, datadir.ConfigFile))
	for _, f := range []string{certs.CACertFile, certs.CAKeyFile, certs.ServerCertFile, certs.ServerKeyFile, certs.AdminCertFile, certs.AdminKeyFile} {
		copyFile(t, filepath.Join(a.Dir, datadir.CertsDir, f), filepath.Join(b, datadir.CertsDir, f))
	}
	out, errOut, err := devsvctest.RunCLI(a.Bin, b, "", "restore-backup", backup)
	if err != nil || !strings.Contains(out, "Restored "+backup) {
		t.Fatalf("devsvc restore-backup: %v\n%s%s", err, out, errOut)
	}
	t.Logf("%s", out)
	restored := devsvctest.Start(t, a.Bin, b)

	var rulesNow []adminapi.RuleInfo
	restored.JSON(t, &rulesNow, "rules")
	if diff := cmp.Diff(catalogOf(rulesThen), catalogOf(rulesNow)); diff != "" {
		t.Errorf("the restored rules (-at the backup +restored):\n%s", diff)
	}
	var historyNow []firmware.Event
	restored.JSON(t, &historyNow, "history")
	// The restored service may sign the update metadata anew (the
	// backup may hold a change taken before its signing), which devsvc
	// history does not list; the backup's own last event may be such a
	// signing too.
	// Since the backup: the held import, and the admin certificate of the
	// restored directory's PKI (the same here: nothing new).
	var upToBackup []firmware.Event
	for _, e := range historyThen {
		if e.Seq <= taken.Seq {
			upToBackup = append(upToBackup, e)
		}
	}
	if len(historyNow) == 0 || historyNow[len(historyNow)-1].Seq > taken.Seq {
		t.Fatalf("the restored history ends at %d events, want the backup's history number %d", len(historyNow), taken.Seq)
	}
	if diff := cmp.Diff(upToBackup, historyNow); diff != "" {
		t.Errorf("the restored history is not the old one up to the backup (-old +restored):\n%s", diff)
	}
	for _, r := range rulesNow {
		if r.Identity == rt {
			t.Errorf("the restored catalog has %s, whose import was under way during the backup", rt.Path())
		}
	}
	var devicesRestored []firmware.Device
	restored.JSON(t, &devicesRestored, "devices")
	if len(devicesRestored) < 50 || len(devicesRestored) > len(devicesNow) {
		t.Errorf("the restored inventory has %d devices, want the 50 or more checked in before the backup, at most the %d there are now", len(devicesRestored), len(devicesNow))
	}

	// A device updates from the restored service: offered the approved
	// version, it downloads the image whole.
	_, port, _ := net.SplitHostPort(restored.Run.Internal)
	base := "https://ucupdates-r2.contoso.com:" + port
	dev := deviceClient(t, b, restored.Run.Internal, nil)
	ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-B4-C0-01", Serial: "BACKUP-1",
		Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("0.9.0.1")}}}
	code, body := post(t, dev, base+deviceproto.CheckInPath, ci.AppendXML(nil), "", "")
	ans, err := deviceproto.ParseAnswer(body)
	if code != 200 || err != nil || ans.Version != v1 || len(ans.Files) == 0 {
		t.Fatalf("check-in on the restored service = %d, %+v, %v; want %s offered", code, ans, err, v1)
	}
	for _, f := range ans.Files {
		resp, err := dev.Get(ans.InternalURL + f.FileName)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(resp.Body)
		resp.Body.Close()
		want, _ := os.ReadFile(filepath.Join(tree, filepath.FromSlash(cx600.Path()), v1.String(), f.FileName))
		if resp.StatusCode != 200 || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("GET %s from the restored service = %d, %d bytes; want the %d imported", f.FileName, resp.StatusCode, got.Len(), len(want))
		}
	}
}

// catalogOf is what a backup must restore of rules: everything but the
// device counts, which devices change.
func catalogOf(rules []adminapi.RuleInfo) []firmware.Rule {
	out := make([]firmware.Rule, len(rules))
	for i, r := range rules {
		out[i] = r.Rule
	}
	return out
}

// adminClient connects to the admin API of s with its data directory's
// admin certificate.
func adminClient(t *testing.T, s *devsvctest.Service) *adminapi.Client {
	t.Helper()
	cs, err := certs.Open(filepath.Join(s.Dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminapi.Dial(s.Run.Admin, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
