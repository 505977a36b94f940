package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// TestReplicatedBuckets keeps the decision of what a replica receives
// explicit: a bucket added to the store is replicated unless localBuckets
// names it, and this test fails until it is listed here or there.
func TestReplicatedBuckets(t *testing.T) {
	var got []string
	for _, b := range replicatedBuckets() {
		got = append(got, string(b))
	}
	want := []string{"rules", "updates", "testdevices", "accounts", "sites", "rollouts", "alarms", "metadata"}
	if !slices.Equal(got, want) {
		t.Errorf("replicated buckets %q, want %q: a new bucket is replicated to replicas unless it is in localBuckets; decide, and list it here or there", got, want)
	}
}

// dump returns what a replica must hold of s: the replicated buckets and
// the history, each value as a string.
func dump(t testing.TB, s *Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range append(replicatedBuckets(), bucketHistory) {
			m := map[string]string{}
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			})
			out[string(name)] = m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newReplica opens an empty store in a new directory as a replica.
func newReplica(t testing.TB) *Store {
	t.Helper()
	r := openTest(t, nil)
	if err := r.MakeReplica(context.Background(), "primary.example:9443"); err != nil {
		t.Fatal(err)
	}
	return r
}

// follow brings replica to primary's state as a follower does: from a
// snapshot when the feed does not reach back to its position, or when a
// file a change needs is no longer on the primary (removed since), then
// change by change, fetching the files each needs from the primary first.
// It returns how many file bytes it fetched.
func follow(t testing.TB, primary, replica *Store, maxBytes int) (fetched int64) {
	t.Helper()
	ctx := context.Background()
	fetch := func(needed []firmware.Image) (FileSource, bool) {
		got := map[[32]byte][]byte{}
		for _, im := range needed {
			f, _, err := primary.OpenBySHA256(im.SHA256)
			if errors.Is(err, ErrNotFound) {
				return nil, false
			}
			if err != nil {
				t.Fatalf("OpenBySHA256(%x) = %v", im.SHA256, err)
			}
			data, _ := io.ReadAll(f)
			f.Close()
			got[im.SHA256] = data
			fetched += int64(len(data))
		}
		return func(sha [32]byte) (io.ReadCloser, error) {
			data, ok := got[sha]
			if !ok {
				return nil, fmt.Errorf("file %x was not fetched", sha)
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}, true
	}
	snapshot := func() {
		seq, recs, err := primary.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		needed, err := replica.NeededSnapshotFiles(recs)
		if err != nil {
			t.Fatal(err)
		}
		files, ok := fetch(needed)
		if !ok {
			t.Fatal("a snapshot's file is not on the primary")
		}
		if err := replica.ApplySnapshot(ctx, seq, recs, files); err != nil {
			t.Fatalf("ApplySnapshot(%d) = %v", seq, err)
		}
	}
	for range 10000 {
		changes, head, ok, err := primary.Feed(ctx, replica.Position(), maxBytes)
		if err != nil {
			t.Fatalf("Feed(%d) = %v", replica.Position(), err)
		}
		if !ok {
			snapshot()
			continue
		}
		if len(changes) == 0 {
			if replica.Position() != head {
				t.Fatalf("the feed is empty at %d, but the primary is at %d", replica.Position(), head)
			}
			return fetched
		}
		needed, err := replica.NeededFiles(changes)
		if err != nil {
			t.Fatal(err)
		}
		files, ok := fetch(needed)
		if !ok {
			snapshot()
			continue
		}
		pos, err := replica.ApplyChanges(ctx, changes, files)
		if err != nil {
			t.Fatalf("ApplyChanges(%d..%d) = %v", changes[0].Seq, changes[len(changes)-1].Seq, err)
		}
		if want := changes[len(changes)-1].Seq; pos != want {
			t.Fatalf("ApplyChanges returned position %d, want %d", pos, want)
		}
	}
	t.Fatal("the replica did not catch up")
	return 0
}

// checkSame checks that replica holds what primary does, and that both
// are consistent stores.
func checkSame(t testing.TB, primary, replica *Store) {
	t.Helper()
	checkConsistent(t, primary)
	checkConsistent(t, replica)
	if diff := cmp.Diff(dump(t, primary), dump(t, replica)); diff != "" {
		t.Fatalf("the replica differs from the primary (-primary +replica):\n%s", diff)
	}
	if p, r := primary.Catalog().Seq(), replica.Position(); p != r {
		t.Fatalf("replica position %d, primary %d", r, p)
	}
	if diff := cmp.Diff(primary.Catalog().Rules(), replica.Catalog().Rules()); diff != "" {
		t.Fatalf("catalog rules differ (-primary +replica):\n%s", diff)
	}
	pu, _ := primary.Updates(context.Background())
	ru, _ := replica.Updates(context.Background())
	if diff := cmp.Diff(pu, ru); diff != "" {
		t.Fatalf("updates differ (-primary +replica):\n%s", diff)
	}
}

// operations are every kind of catalog change, in an order that makes
// each possible; each is applied to the primary in turn.
func operations(t testing.TB) []func(s *Store) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustRule := func(_ firmware.Rule, err error) { t.Helper(); must(err) }
	hash := [16]byte{1, 2, 3}
	return []func(s *Store){
		func(s *Store) { mustImport(t, s, update(phone, v1), update(phone2, v1)) },
		func(s *Store) { mustRule(s.Approve(ctx, "admin", phone.Path())) },
		func(s *Store) { mustImport(t, s, update(phone, v2)) },
		func(s *Store) { mustRule(s.Schedule(ctx, "admin", phone.Path(), time.Now().Add(time.Hour))) },
		func(s *Store) { mustRule(s.Approve(ctx, "admin", phone.Path())) },
		func(s *Store) { mustImport(t, s, update(table, v1)) }, // deploys on import
		func(s *Store) {
			must(s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: "00-04-F2-00-00-01", Note: "desk"}))
		},
		func(s *Store) { must(s.PutAccount(ctx, "admin", firmware.Account{Name: "alice", NTHash: hash})) },
		func(s *Store) { must(s.PutAccount(ctx, "admin", firmware.Account{Name: "Bob", NTHash: hash})) },
		func(s *Store) { must(s.SetAccountDisabled(ctx, "admin", "bob", true)) },
		func(s *Store) { mustImport(t, s, update(phone, v3)) },
		func(s *Store) { mustRule(s.Reject(ctx, "admin", phone.Path())) },
		func(s *Store) { mustRule(s.Restore(ctx, "admin", phone.Path())) },
		func(s *Store) {
			_, err := s.Purge(ctx, "admin")
			must(err)
		},
		func(s *Store) { mustRule(s.Approve(ctx, "admin", phone2.Path())) },
		func(s *Store) { mustRule(s.Withdraw(ctx, "admin", phone2.Path())) },
		func(s *Store) { must(s.RemoveTestDevice(ctx, "admin", "00:04:f2:00:00:01")) },
		func(s *Store) { must(s.RemoveAccount(ctx, "admin", "alice")) },
		func(s *Store) {
			must(s.AddAdminCert(ctx, "admin", firmware.AdminCert{Serial: "abc1", Name: "helpdesk", Role: "readonly", Expires: time.Now().Add(time.Hour)}, ""))
		},
		func(s *Store) { mustRule(s.Remove(ctx, "admin", phone2.Path())) },
		func(s *Store) {
			_, err := s.AddReplica(ctx, "admin", firmware.Replica{Name: "paris", Site: "paris"}, firmware.AdminCert{Serial: "beef", Name: "paris", Role: "replica"})
			must(err)
		},
		func(s *Store) { mustImport(t, s, update(phone2, v2)) },
	}
}

// TestFeedFollows makes every kind of catalog change on a primary and
// follows it with a replica after each one, after all of them at once,
// and in small pieces: the replica then holds exactly what the primary
// holds of the catalog and the history, every file whole, none extra.
func TestFeedFollows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		every    bool // follow after every operation
		maxBytes int
	}{
		{"after every change", true, 0},
		{"all at once", false, 0},
		{"one change at a time", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := openTest(t, nil)
			replica := newReplica(t)
			var fetched int64
			for _, op := range operations(t) {
				op(primary)
				if tc.every {
					fetched += follow(t, primary, replica, tc.maxBytes)
					checkSame(t, primary, replica)
				}
			}
			fetched += follow(t, primary, replica, tc.maxBytes)
			checkSame(t, primary, replica)
			if fetched == 0 {
				t.Error("the replica fetched no file")
			}
			// Idempotent: the same changes again change nothing.
			changes, _, ok, err := primary.Feed(context.Background(), 0, 0)
			if err != nil || !ok {
				t.Fatalf("Feed(0) = %v, %v", ok, err)
			}
			if pos, err := replica.ApplyChanges(context.Background(), changes, nil); err != nil || pos != primary.Catalog().Seq() {
				t.Errorf("ApplyChanges of what it has = %d, %v; want %d, nil", pos, err, primary.Catalog().Seq())
			}
			checkSame(t, primary, replica)
		})
	}
}

// TestFeedFetchesEachFileOnce: a file the replica holds already (under
// another update, or applied before) is not fetched again.
func TestFeedFetchesEachFileOnce(t *testing.T) {
	primary := openTest(t, nil)
	replica := newReplica(t)
	mustImport(t, primary, update(phone, v1))
	first := follow(t, primary, replica, 0)
	// The same content under another identity.
	u := update(phone2, v1)
	mustImport(t, primary, u)
	if got := follow(t, primary, replica, 0); got != 0 {
		t.Errorf("fetched %d bytes for an update whose files the replica holds, want 0", got)
	}
	var want int64
	for _, f := range update(phone, v1).Files {
		want += f.Size
	}
	if first != want {
		t.Errorf("first follow fetched %d bytes, want the update's %d", first, want)
	}
	checkSame(t, primary, replica)
}

// TestFeedCompacted: a replica further behind than the feed keeps starts
// again from a snapshot, and a replica that never followed starts from
// one too.
func TestFeedCompacted(t *testing.T) {
	ctx := context.Background()
	primary := openTest(t, &Options{FeedKeep: 5})
	replica := newReplica(t)
	mustImport(t, primary, update(phone, v1))
	follow(t, primary, replica, 0)
	at := replica.Position()
	for i := range 12 {
		if err := primary.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: fmt.Sprintf("S%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok, err := primary.Feed(ctx, at, 0); ok || err != nil {
		t.Fatalf("Feed(%d) after the feed dropped it = ok %v, %v; want a snapshot asked for", at, ok, err)
	}
	from, _ := primary.FeedFrom(ctx)
	if from <= at || from > primary.Catalog().Seq()-5 {
		t.Errorf("FeedFrom = %d at history %d with FeedKeep 5", from, primary.Catalog().Seq())
	}
	follow(t, primary, replica, 0)
	checkSame(t, primary, replica)
	fresh := newReplica(t)
	follow(t, primary, fresh, 0)
	checkSame(t, primary, fresh)
}

// TestApplyChangesRefuses: a gap, changes out of order, and records this
// version cannot hold are refused, and nothing is applied.
func TestApplyChangesRefuses(t *testing.T) {
	ctx := context.Background()
	primary := openTest(t, nil)
	mustImport(t, primary, update(phone, v1))
	if _, err := primary.Approve(ctx, "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	changes, _, _, err := primary.Feed(ctx, 0, 0)
	if err != nil || len(changes) != 2 {
		t.Fatalf("Feed = %d changes, %v; want 2", len(changes), err)
	}
	tamper := func(f func(cs []Change) []Change) []Change {
		var cs []Change
		for _, c := range changes {
			c.Records = slices.Clone(c.Records)
			cs = append(cs, c)
		}
		return f(cs)
	}
	for _, tc := range []struct {
		name    string
		changes []Change
		want    string
	}{
		{"a gap", tamper(func(cs []Change) []Change { return cs[1:] }), "gap"},
		{"out of order", tamper(func(cs []Change) []Change { return []Change{cs[1], cs[0]} }), "gap"},
		{"an unknown bucket", tamper(func(cs []Change) []Change {
			cs[1].Records = append(cs[1].Records, Record{Bucket: "devices", Key: []byte("k"), Value: []byte("{}")})
			return cs
		}), "does not replicate"},
		{"a rule under another key", tamper(func(cs []Change) []Change {
			for i, r := range cs[1].Records {
				if r.Bucket == "rules" {
					cs[1].Records[i].Key = []byte(phone2.Path())
				}
			}
			return cs
		}), "rule of"},
		{"a history event deleted", tamper(func(cs []Change) []Change {
			cs[1].Records[0].Delete = true
			return cs
		}), "deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replica := newReplica(t)
			_, err := replica.ApplyChanges(ctx, tc.changes, func([32]byte) (io.ReadCloser, error) { return nil, errors.New("no file") })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ApplyChanges = %v, want an error saying %q", err, tc.want)
			}
			if replica.Position() != 0 || len(dump(t, replica)["rules"]) != 0 {
				t.Errorf("after a refusal the replica is at %d with rules %v: want nothing applied", replica.Position(), dump(t, replica)["rules"])
			}
			checkConsistent(t, replica)
		})
	}
}

// TestApplyChangesMissingFile: a change whose files cannot be had is not
// applied, and leaves no file behind.
func TestApplyChangesMissingFile(t *testing.T) {
	ctx := context.Background()
	primary := openTest(t, nil)
	replica := newReplica(t)
	mustImport(t, primary, update(phone, v1))
	changes, _, _, _ := primary.Feed(ctx, 0, 0)
	_, err := replica.ApplyChanges(ctx, changes, func(sha [32]byte) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("not the file")), nil
	})
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("ApplyChanges with a wrong file = %v, want ErrIntegrity", err)
	}
	if replica.Position() != 0 {
		t.Errorf("position %d after a failed change, want 0", replica.Position())
	}
	checkConsistent(t, replica)
}

// TestApplyChangesReimport: a version removed and imported again with
// other files, all in one batch, ends with the new files on the replica.
func TestApplyChangesReimport(t *testing.T) {
	ctx := context.Background()
	primary := openTest(t, nil)
	replica := newReplica(t)
	mustImport(t, primary, update(phone, v1))
	follow(t, primary, replica, 0)
	if _, err := primary.Remove(ctx, "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	other := update(phone, v1)
	other.Files[0] = file("CX600.nbt", content("other", v1, 4000))
	mustImport(t, primary, other)
	follow(t, primary, replica, 0)
	checkSame(t, primary, replica)
}

// TestReplicaStoreRefusesChanges: a replica's catalog changes only by the
// feed; its own registry of admin certificates changes, without history.
func TestReplicaStoreRefusesChanges(t *testing.T) {
	ctx := context.Background()
	replica := newReplica(t)
	_, err := replica.Import(ctx, "admin", []firmware.ImportUpdate{update(phone, v1)}, ImportOptions{})
	if !errors.Is(err, ErrFollower) || !strings.Contains(err.Error(), "primary.example:9443") {
		t.Errorf("Import on a replica = %v, want ErrFollower naming the primary", err)
	}
	if err := replica.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: "S1"}); !errors.Is(err, ErrFollower) {
		t.Errorf("AddTestDevice on a replica = %v, want ErrFollower", err)
	}
	if err := replica.AddAdminCert(ctx, "devsvc init", firmware.AdminCert{Serial: "abc", Name: "admin", Role: "admin"}, ""); err != nil {
		t.Errorf("AddAdminCert on a replica = %v, want its own registry to change", err)
	}
	if _, err := replica.AdminCert(ctx, "abc"); err != nil {
		t.Error(err)
	}
	if replica.Position() != 0 {
		t.Errorf("a local change moved the replica to %d", replica.Position())
	}
	checkConsistent(t, replica)
	if err := replica.MakeReplica(ctx, "other:9443"); err == nil {
		t.Error("MakeReplica of another primary succeeded")
	}
	primary := openTest(t, nil)
	mustImport(t, primary, update(phone, v1))
	if err := primary.MakeReplica(ctx, "x:1"); err == nil {
		t.Error("MakeReplica of a store with a catalog succeeded")
	}
}

// TestWaitChange wakes a waiter at the next change.
func TestWaitChange(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	done := make(chan error)
	go func() { done <- s.WaitChange(ctx, 0) }()
	mustImport(t, s, update(phone, v1))
	if err := <-done; err != nil {
		t.Errorf("WaitChange = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.WaitChange(cctx, s.Catalog().Seq()); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitChange with a canceled context = %v", err)
	}
	go func() { done <- s.WaitChange(ctx, s.Catalog().Seq()) }()
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitChange at Close = %v, want ErrClosed", err)
	}
}

// FuzzDecodeRecords: the feed's records as stored decode, or are refused,
// and what decodes encodes and decodes back to the same records.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(encodeRecords([]Record{{Bucket: "rules", Key: []byte("k"), Value: []byte(`{}`)}, {Bucket: "updates", Key: []byte("x"), Delete: true}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := decodeRecords(data)
		if err != nil {
			return
		}
		back, err := decodeRecords(encodeRecords(rs))
		if err != nil || !cmp.Equal(back, rs) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, rs)
		}
	})
}

// FuzzCheckRecord: what a replica is sent is checked before it is
// written, and what passes reads back as its bucket's records do.
func FuzzCheckRecord(f *testing.F) {
	up, _ := EncodeForwarded(Forwarded{})
	f.Add("rules", []byte(phone.Path()), []byte(`{"identity":{"deviceType":"UCPhone","vendor":"Polycom","model":"CX600","revision":"A","locale":"ENU"}}`))
	f.Add("updates", []byte(phone.Path()+"/1.2.3.4"), []byte(`{"files":[]}`))
	f.Add("history", seqKey(1), []byte(`{"seq":1}`))
	f.Add("accounts", []byte("alice"), []byte(`{"name":"alice","ntHash":"00"}`))
	f.Add("testdevices", []byte("x"), up)
	f.Fuzz(func(t *testing.T, bucket string, key, value []byte) {
		r := Record{Bucket: bucket, Key: key, Value: value}
		if checkRecord(r) != nil {
			return
		}
		switch bucket {
		case "updates":
			if _, err := decodeUpdate(key, value); err != nil {
				t.Fatalf("checkRecord passed an update decodeUpdate refuses: %v", err)
			}
		case "accounts":
			var a accountRecord
			if err := json.Unmarshal(value, &a); err != nil {
				t.Fatal(err)
			}
			if _, err := a.account(); err != nil {
				t.Fatalf("checkRecord passed an account that does not read: %v", err)
			}
		}
	})
}
