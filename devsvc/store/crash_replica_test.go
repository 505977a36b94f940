package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// crashReplicaEnv makes TestMain run crashReplicaChild: the directory
// holding the primary's and the replica's data directories.
const crashReplicaEnv = "OPENDUS_STORE_CRASH_REPLICA_DIR"

// followStep applies the next changes of primary to replica as a
// follower does (a snapshot when the feed does not reach back, or when a
// file is gone from the primary), at most maxBytes of them. done is true
// when the replica has caught up.
func followStep(ctx context.Context, primary, replica *Store, maxBytes int) (done bool, err error) {
	fetch := func(needed []firmware.Image) (FileSource, error) {
		got := map[[32]byte][]byte{}
		for _, im := range needed {
			f, _, err := primary.OpenBySHA256(im.SHA256)
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, err
			}
			got[im.SHA256] = data
		}
		return func(sha [32]byte) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(got[sha])), nil
		}, nil
	}
	snapshot := func() error {
		seq, recs, err := primary.Snapshot(ctx)
		if err != nil {
			return err
		}
		needed, err := replica.NeededSnapshotFiles(recs)
		if err != nil {
			return err
		}
		files, err := fetch(needed)
		if err != nil {
			return err
		}
		return replica.ApplySnapshot(ctx, seq, recs, files)
	}
	changes, head, ok, err := primary.Feed(ctx, replica.Position(), maxBytes)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, snapshot()
	}
	if len(changes) == 0 {
		return replica.Position() == head, nil
	}
	needed, err := replica.NeededFiles(changes)
	if err != nil {
		return false, err
	}
	files, err := fetch(needed)
	if errors.Is(err, ErrNotFound) {
		return false, snapshot()
	}
	if err != nil {
		return false, err
	}
	_, err = replica.ApplyChanges(ctx, changes, files)
	return false, err
}

// crashReplicaChild changes a primary's catalog and follows it with a
// replica, in one process, until it is killed. It writes "ready" once the
// stores are open, and "pos N" after every step the replica applied.
func crashReplicaChild(dir string, seed uint64) error {
	ctx := context.Background()
	primary, err := Open(filepath.Join(dir, "primary"), &Options{FeedKeep: 40})
	if err != nil {
		return err
	}
	replica, err := Open(filepath.Join(dir, "replica"), nil)
	if err != nil {
		return err
	}
	if err := replica.MakeReplica(ctx, "primary:9443"); err != nil {
		return err
	}
	fmt.Println("ready")
	rng := rand.New(rand.NewPCG(seed, 2))
	for {
		id := crashIdentities[rng.IntN(len(crashIdentities))]
		switch n := rng.IntN(10); {
		case n < 4:
			v := firmware.Version{4, 0, 1, uint32(1 + rng.IntN(30))}
			primary.Import(ctx, "child", []firmware.ImportUpdate{crashUpdate(rng, id, v)}, ImportOptions{})
		case n < 6:
			primary.Approve(ctx, "child", id.Path())
		case n < 7:
			primary.Reject(ctx, "child", id.Path())
		case n < 8:
			primary.Purge(ctx, "child")
		case n < 9:
			primary.AddTestDevice(ctx, "child", firmware.TestDevice{Serial: fmt.Sprintf("S%d", rng.IntN(20))})
		default:
			primary.Remove(ctx, "child", id.Path())
		}
		if _, err := followStep(ctx, primary, replica, 1+rng.IntN(64<<10)); err != nil {
			return err
		}
		fmt.Printf("pos %d\n", replica.Position())
	}
}

// TestCrashReplica kills, with SIGKILL at random moments, a process whose
// replica follows a primary that keeps importing, approving, rejecting,
// purging and removing. After every kill both stores are consistent (every
// update whole, no file extra, a gapless history), the replica has not
// lost what it applied, and its history is the primary's up to its
// position, each change applied once; in the end it catches up and holds
// exactly what the primary holds.
func TestCrashReplica(t *testing.T) {
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
	const kills = 15
	var last uint64
	for i := range kills {
		delay := time.Duration(10+rng.IntN(200)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashReplicaEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
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
		applied := make(chan uint64, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			var err error
			if !sc.Scan() || sc.Text() != "ready" {
				err = fmt.Errorf("child said %q", sc.Text())
			}
			ready <- err
			var pos uint64
			for sc.Scan() {
				if n, err := fmt.Sscanf(sc.Text(), "pos %d", &pos); n != 1 || err != nil {
					break
				}
			}
			applied <- pos
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
			t.Fatalf("kill %d: child did not open the stores within a minute\n%s", i, stderr.Bytes())
		}
		<-time.After(delay)
		cmd.Process.Kill()
		pos := <-applied
		cmd.Wait()
		if cmd.ProcessState.Exited() {
			t.Fatalf("kill %d: child exited by itself\n%s", i, stderr.Bytes())
		}
		primary := openDir(t, filepath.Join(dir, "primary"), &Options{FeedKeep: 40})
		replica := openDir(t, filepath.Join(dir, "replica"), nil)
		checkConsistent(t, primary)
		checkConsistent(t, replica)
		got := replica.Position()
		if got < pos {
			t.Errorf("kill %d: replica at %d after reopening, but it had applied %d", i, got, pos)
		}
		if got > primary.Catalog().Seq() {
			t.Errorf("kill %d: replica at %d, ahead of the primary's %d", i, got, primary.Catalog().Seq())
		}
		var pe []firmware.Event
		if got > 0 { // (a limit of 0 is no limit)
			pe, _ = primary.History(ctx, 0, int(got))
		}
		re, _ := replica.History(ctx, 0, 0)
		if diff := cmp.Diff(pe, re); diff != "" {
			t.Errorf("kill %d: the replica's history is not the primary's up to %d (-primary +replica):\n%s", i, got, diff)
		}
		t.Logf("kill %d after %v: replica at %d (was %d before), primary at %d", i, delay, got, last, primary.Catalog().Seq())
		last = got
		primary.Close()
		replica.Close()
		if t.Failed() {
			t.FailNow()
		}
	}
	primary := openDir(t, filepath.Join(dir, "primary"), &Options{FeedKeep: 40})
	replica := openDir(t, filepath.Join(dir, "replica"), nil)
	for range 1000 {
		done, err := followStep(ctx, primary, replica, 0)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	checkSame(t, primary, replica)
}
