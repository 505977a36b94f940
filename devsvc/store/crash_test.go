package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

// The crash test runs this test binary again as a child process that
// imports bundles in a loop; the environment variables below make TestMain
// run the child instead of the tests.
const (
	crashDirEnv  = "OPENDUS_STORE_CRASH_DIR"
	crashSeedEnv = "OPENDUS_STORE_CRASH_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
		if err := crashChild(dir, seed); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(crashReplicaEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
		if err := crashReplicaChild(dir, seed); err != nil {
			fmt.Fprintln(os.Stderr, "crash replica child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashIdentities are the identities the crash child imports for.
var crashIdentities = []firmware.Identity{
	phone, phone2, table,
	{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX3000", Revision: "A", Locale: "DEU"},
}

// crashUpdate returns an update whose content depends only on identity and
// version (so that a re-import is the same), with sizes up to 384 KiB.
func crashUpdate(rng *rand.Rand, id firmware.Identity, v firmware.Version) firmware.ImportUpdate {
	sizes := rand.New(rand.NewPCG(uint64(v[3]), uint64(len(id.Model))))
	u := firmware.ImportUpdate{Identity: id, Version: v, UpdateType: "Firmware"}
	for _, name := range []string{id.Model + ".nbt", id.Model + ".cat", id.Model + ".xml"} {
		data := content(id.Path()+name, v, sizes.IntN(128<<10))
		f := file(name, data)
		switch rng.IntN(3) {
		case 0:
			f.Size, f.SHA256 = -1, nil // hashed while written
		case 1:
			f.SHA256 = nil
		}
		u.Files = append(u.Files, f)
	}
	return u
}

// crashChild imports bundles into dir until it is killed, mixing in
// approvals, rejections, purges, removals and refused bundles, sites,
// rollouts and their steps, alarms, check-ins and reports. It writes
// "ready" once the store is open, and after every operation the history
// number it committed up to.
func crashChild(dir string, seed uint64) error {
	s, err := Open(dir, nil)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 1))
	for {
		id := crashIdentities[rng.IntN(len(crashIdentities))]
		switch n := rng.IntN(34); {
		case n < 12:
			var bundle []firmware.ImportUpdate
			for range 1 + rng.IntN(3) {
				id := crashIdentities[rng.IntN(len(crashIdentities))]
				v := firmware.Version{4, 0, 1, uint32(1 + rng.IntN(40))}
				dup := false
				for _, u := range bundle {
					dup = dup || u.Identity == id && u.Version == v
				}
				if !dup {
					bundle = append(bundle, crashUpdate(rng, id, v))
				}
			}
			if n == 0 { // a refused bundle: its last file is corrupt
				last := &bundle[len(bundle)-1].Files[2]
				last.Size, last.SHA256 = -1, &[32]byte{1}
			}
			s.Import(ctx, "child", bundle, ImportOptions{})
		case n < 15:
			s.Approve(ctx, "child", id.Path())
		case n < 17:
			s.Reject(ctx, "child", id.Path())
		case n < 19:
			if _, err := s.Purge(ctx, "child"); err != nil {
				return err
			}
		case n < 20:
			s.Remove(ctx, "child", id.Path())
		default:
			if err := crashRollouts(ctx, s, rng, id, n-20); err != nil {
				return err
			}
		}
		// What is committed must survive the kill.
		fmt.Printf("seq %d\n", s.Catalog().Seq())
	}
}

// crashRollouts is the crash child's share of sites, rollouts, alarms
// and the inventory: op picks one of 14.
func crashRollouts(ctx context.Context, s *Store, rng *rand.Rand, id firmware.Identity, op int) error {
	names := []string{"hq", "ny", "lab", firmware.RemoteSite}
	now := time.Now()
	switch op {
	case 0, 1:
		name := names[rng.IntN(len(names))]
		site := firmware.Site{Name: name, TimeZone: []string{"", "Europe/Berlin", "America/New_York"}[rng.IntN(3)],
			Windows: firmware.MustParseSchedule([]string{"", "Mon-Fri 22:00-05:00", "Sat,Sun 00:00-24:00"}[rng.IntN(3)])}
		if name != firmware.RemoteSite {
			site.Subnets = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), 0, 0}), 16)}
		}
		s.PutSite(ctx, "child", site, rng.IntN(2) == 0)
	case 2:
		s.RemoveSite(ctx, "child", names[rng.IntN(len(names))])
	case 3, 4:
		p := firmware.Plan{Waves: firmware.Waves{1000, 5000, firmware.Whole}, WaveWait: time.Duration(rng.IntN(3)) * time.Hour,
			Success: firmware.Share(rng.IntN(10001)), MaxFailures: firmware.FailureCount(rng.IntN(3))}
		if rng.IntN(3) == 0 {
			p.At = now.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
		}
		s.StartRollout(ctx, "child", id.Path(), p)
	case 5:
		s.PauseRollout(ctx, "child", id.Path(), "")
	case 6:
		s.ResumeRollout(ctx, "child", id.Path())
	case 7:
		s.StopRollout(ctx, "child", id.Path())
	case 8, 9:
		for _, ro := range s.Catalog().Rollouts() {
			if _, _, err := s.StepRollout(ctx, ro.Rule, now.Add(time.Duration(rng.IntN(72))*time.Hour)); err != nil {
				return err
			}
		}
	case 10, 11:
		r, _ := s.Catalog().Rule(id)
		for range 50 {
			key := fmt.Sprintf("00-04-F2-00-%02X-%02X", len(id.Model), rng.IntN(256))
			if rng.IntN(2) == 0 {
				s.RecordCheckIn(ctx, firmware.Device{MAC: key, Identity: id, Version: r.Approved, Offered: r.Pending, Site: names[rng.IntN(len(names))]})
			} else {
				st := []firmware.State{firmware.StateDownloading, firmware.StateSuccess, firmware.StateFailure}[rng.IntN(3)]
				s.Report(ctx, Report{Key: key, State: st, Target: r.Pending, Error: "0x1"})
			}
		}
		if rng.IntN(2) == 0 {
			if err := s.Flush(ctx); err != nil {
				return err
			}
		}
	case 12:
		s.Schedule(ctx, "child", id.Path(), now.Add(time.Duration(1+rng.IntN(48))*time.Hour))
	default:
		if ro, ok := s.Catalog().Rollout(id.RuleID()); ok && ro.Live() {
			a := firmware.Alarm{ID: "overdue-" + ro.Rule, Kind: firmware.AlarmOverdue, Rule: ro.Rule, Identity: ro.Identity, Version: ro.Version, Detail: "test"}
			if rng.IntN(2) == 0 {
				s.RaiseAlarm(ctx, a)
			} else {
				s.ClearAlarm(ctx, a.ID)
			}
		}
	}
	return nil
}

// TestCrash kills an importing child process with SIGKILL at random
// moments and checks, after each kill, that Open leaves a consistent store:
// every recorded update whole, no other file, a gapless history, sites,
// rollouts and alarms as their rules and the catalog say, and the fleet
// index as the devices bucket holds it (checkConsistent).
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	ctx := context.Background()
	const kills = 20
	var cleanups bytes.Buffer // what Open removed
	log := slog.New(slog.NewTextHandler(&cleanups, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i := range kills {
		delay := time.Duration(5+rng.IntN(146)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan error, 1)
		committed := make(chan uint64, 1) // the last history number the child reported
		go func() {
			sc := bufio.NewScanner(stdout)
			var err error
			if !sc.Scan() || sc.Text() != "ready" {
				err = fmt.Errorf("child said %q", sc.Text())
			}
			ready <- err
			var seq uint64
			for sc.Scan() {
				if n, err := fmt.Sscanf(sc.Text(), "seq %d", &seq); n != 1 || err != nil {
					break // a line cut by the kill
				}
			}
			committed <- seq
			io.Copy(io.Discard, stdout)
		}()
		select {
		case err := <-ready:
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: child did not start: %v\n%s", i, err, stderr.Bytes())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: child did not open the store within a minute\n%s", i, stderr.Bytes())
		}
		<-time.After(delay) // the random moment of the crash
		cmd.Process.Kill()
		seq := <-committed // stdout ends with the child
		err = cmd.Wait()
		if cmd.ProcessState.Exited() {
			t.Fatalf("kill %d: child exited by itself: %v\n%s", i, err, stderr.Bytes())
		}

		s, err := Open(dir, &Options{Logger: log})
		if err != nil {
			t.Fatalf("kill %d after %v: Open = %v", i, delay, err)
		}
		if got := s.Catalog().Seq(); got < seq {
			t.Errorf("kill %d: history number %d after reopen, but the child had committed %d", i, got, seq)
		}
		us, _ := s.Updates(ctx)
		st, _ := s.Stats(ctx)
		alarms, _ := s.Alarms(ctx, true)
		t.Logf("kill %d after %v: %d updates, history %d, %d sites, %d rollouts, %d alarms, %d devices", i, delay, len(us), s.Catalog().Seq(),
			s.Catalog().Sites().Len(), len(s.Catalog().Rollouts()), len(alarms), st.Devices)
		checkConsistent(t, s)
		s.Close()
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("Open removed %d leftover files over %d kills", strings.Count(cleanups.String(), "removing a file"), kills)
	if strings.Contains(cleanups.String(), "level=ERROR") {
		t.Errorf("Open logged errors:\n%s", cleanups.String())
	}
	s := openDir(t, dir, nil)
	s.StopRollout(ctx, "admin", phone.Path()) // an import is refused during one
	u := update(phone, firmware.Version{5, 0, 0, 1})
	if _, err := s.Import(ctx, "admin", []firmware.ImportUpdate{u}, ImportOptions{}); err != nil {
		t.Fatalf("Import after the crashes = %v", err)
	}
	checkConsistent(t, s)
}
