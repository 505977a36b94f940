package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
// approvals, rejections, purges, removals and refused bundles. It writes
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
		switch n := rng.IntN(20); {
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
		default:
			s.Remove(ctx, "child", id.Path())
		}
		// What is committed must survive the kill.
		fmt.Printf("seq %d\n", s.Catalog().Seq())
	}
}

// TestCrash kills an importing child process with SIGKILL at random
// moments and checks, after each kill, that Open leaves a consistent store:
// every recorded update whole, no other file, a gapless history.
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
		t.Logf("kill %d after %v: %d updates, history %d", i, delay, len(us), s.Catalog().Seq())
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
	u := update(phone, firmware.Version{5, 0, 0, 1})
	if _, err := s.Import(ctx, "admin", []firmware.ImportUpdate{u}, ImportOptions{}); err != nil {
		t.Fatalf("Import after the crashes = %v", err)
	}
	checkConsistent(t, s)
}
