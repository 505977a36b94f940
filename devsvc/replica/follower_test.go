package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var (
	phone  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	phone2 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
)

// errDown is what the fake primary answers while the WAN is down.
var errDown = errors.New("connection refused (the WAN is down)")

// fakePrimary serves a real primary store through this package's primary
// side, as the admin API does, with the WAN's faults.
type fakePrimary struct {
	st   *store.Store
	name string
	opts ServeOptions

	down      atomic.Bool  // every call fails
	breakNext atomic.Int64 // the next FetchFile breaks after this many bytes (0: does not)
	loseAck   atomic.Bool  // the next Upstream is applied, but its answer is lost

	mu     sync.Mutex
	served map[[32]byte]int64 // file bytes sent, by SHA-256
	calls  int
}

func (p *fakePrimary) Follow(ctx context.Context, since uint64, snapshot bool, fn func(Message) error) error {
	if p.down.Load() {
		return errDown
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The WAN going down breaks the stream.
	go func() {
		for ctx.Err() == nil && !p.down.Load() {
			synctestSleep(ctx, 100*time.Millisecond)
		}
		cancel()
	}()
	err := ServeFeed(ctx, p.st, since, snapshot, p.opts, fn)
	if p.down.Load() {
		return errDown
	}
	return err
}

func synctestSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// breakingWriter takes at most n bytes, then fails.
type breakingWriter struct {
	w io.Writer
	n int64
}

func (b *breakingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		p = p[:b.n]
		k, _ := b.w.Write(p)
		b.n -= int64(k)
		return k, errors.New("connection reset")
	}
	k, err := b.w.Write(p)
	b.n -= int64(k)
	return k, err
}

func (p *fakePrimary) FetchFile(ctx context.Context, sha [32]byte, offset int64, w io.Writer) (int64, error) {
	if p.down.Load() {
		return 0, errDown
	}
	var sink io.Writer = w
	if n := p.breakNext.Swap(0); n > 0 {
		sink = &breakingWriter{w: w, n: n}
	}
	n, err := ServeFile(p.st, sha, offset, sink)
	p.mu.Lock()
	p.served[sha] += n
	p.mu.Unlock()
	return n, err
}

func (p *fakePrimary) Upstream(ctx context.Context, u Upstream) (UpstreamReply, error) {
	if p.down.Load() {
		return UpstreamReply{}, errDown
	}
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	acked, err := p.st.ApplyForwarded(ctx, p.name, u.Epoch, u.Items)
	if err != nil {
		return UpstreamReply{}, err
	}
	if _, err := p.st.UpdateReplicaProgress(ctx, p.name, func(pr *firmware.ReplicaProgress) { pr.Position = u.Position }); err != nil {
		return UpstreamReply{}, err
	}
	if p.loseAck.Swap(false) {
		return UpstreamReply{}, errors.New("the answer was lost")
	}
	return UpstreamReply{Acked: acked, Head: p.st.Catalog().Seq()}, nil
}

// servedBytes returns the file bytes sent for sha.
func (p *fakePrimary) servedBytes(sha [32]byte) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[sha]
}

// files returns an update's files: an image of size bytes and a catalog.
func files(id firmware.Identity, v firmware.Version, size int) []firmware.ImportFile {
	mk := func(name string, n int) firmware.ImportFile {
		data := bytes.Repeat([]byte(name+v.String()+id.Model), n/len(name+v.String()+id.Model)+1)[:n]
		sum := sha256.Sum256(data)
		return firmware.ImportFile{Name: name, Size: int64(n), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	}
	return []firmware.ImportFile{mk(id.Model+".nbt", size), mk(id.Model+".cat", 300)}
}

func importV(t testing.TB, st *store.Store, v string, size int, ids ...firmware.Identity) {
	t.Helper()
	var us []firmware.ImportUpdate
	for _, id := range ids {
		ver := firmware.MustParseVersion(v)
		us = append(us, firmware.ImportUpdate{Identity: id, Version: ver, Files: files(id, ver, size)})
	}
	if _, err := st.Import(context.Background(), "admin", us, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pair is a primary store, a replica store and a follower between them.
type pair struct {
	primary, replica *store.Store
	fake             *fakePrimary
	f                *Follower
	cancel           context.CancelFunc
	done             chan struct{}
}

// start opens both stores and runs a follower; it must run in a synctest
// bubble, and stop ends it.
func start(t *testing.T, opts ServeOptions) *pair {
	t.Helper()
	dir := t.TempDir()
	primary, err := store.Open(filepath.Join(dir, "primary"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := primary.AddReplica(context.Background(), "admin", firmware.Replica{Name: "paris", Site: "paris"},
		firmware.AdminCert{Serial: "a1", Name: "paris", Role: RoleReplica}); err != nil {
		t.Fatal(err)
	}
	replica, err := store.Open(filepath.Join(dir, "replica"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.MakeReplica(context.Background(), "primary:9443"); err != nil {
		t.Fatal(err)
	}
	fake := &fakePrimary{st: primary, name: "paris", opts: opts, served: map[[32]byte]int64{}}
	f := New(replica, fake, Config{Dir: filepath.Join(dir, "replica", "replica"), Primary: "primary:9443",
		DeviceURLs: func() (string, string) { return "https://paris.contoso.com/", "" }})
	ctx, cancel := context.WithCancel(context.Background())
	p := &pair{primary: primary, replica: replica, fake: fake, f: f, cancel: cancel, done: make(chan struct{})}
	go func() { f.Run(ctx); close(p.done) }()
	return p
}

func (p *pair) stop() {
	p.cancel()
	<-p.done
	p.replica.Close()
	p.primary.Close()
}

// waitFor advances the bubble's clock a second at a time until cond
// holds, for at most limit of (fake) time.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Second)
		synctest.Wait()
	}
}

// same checks that the replica holds the primary's rules, updates and
// history.
func (p *pair) same(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if diff := cmp.Diff(p.primary.Catalog().Rules(), p.replica.Catalog().Rules()); diff != "" {
		t.Errorf("rules differ (-primary +replica):\n%s", diff)
	}
	pu, _ := p.primary.Updates(ctx)
	ru, _ := p.replica.Updates(ctx)
	if diff := cmp.Diff(pu, ru); diff != "" {
		t.Errorf("updates differ (-primary +replica):\n%s", diff)
	}
	ph, _ := p.primary.History(ctx, 0, 0)
	rh, _ := p.replica.History(ctx, 0, 0)
	if diff := cmp.Diff(ph, rh); diff != "" {
		t.Errorf("history differs (-primary +replica):\n%s", diff)
	}
}

func caughtUp(p *pair) func() bool {
	return func() bool { return p.replica.Position() == p.primary.Catalog().Seq() }
}

// TestFollowerFollows: a new replica starts from a snapshot, then applies
// each change as the primary makes it, and its status says so; each file
// is fetched once.
func TestFollowerFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := start(t, ServeOptions{})
		defer p.stop()
		importV(t, p.primary, "1.0.0.1", 50_000, phone)
		waitFor(t, time.Minute, "the replica catches up", caughtUp(p))
		p.same(t)
		importV(t, p.primary, "1.0.0.2", 50_000, phone, phone2)
		if _, err := p.primary.Approve(context.Background(), "admin", phone.Path()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the replica applies the new changes", caughtUp(p))
		p.same(t)
		st := p.f.Status()
		if !st.Connected || st.Position != p.primary.Catalog().Seq() || st.Behind() != 0 || st.LastError != "" {
			t.Errorf("status %+v: want connected, caught up, no error", st)
		}
		for _, u := range mustUpdates(t, p.primary) {
			for _, f := range u.Files {
				if got := p.fake.servedBytes(f.SHA256); got != f.Size {
					t.Errorf("file %s of %s: %d bytes sent, want its %d once", f.Name, u.Dir(), got, f.Size)
				}
			}
		}
		// The position reaches the primary.
		waitFor(t, time.Minute, "the primary learns the position", func() bool {
			r, _ := p.primary.Replica(context.Background(), "paris")
			return r.Progress.Position == p.primary.Catalog().Seq()
		})
	})
}

func mustUpdates(t *testing.T, st *store.Store) []firmware.Update {
	t.Helper()
	us, err := st.Updates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// TestFollowerResumes: a download that breaks half-way resumes from where
// it stopped: the file crosses once in all.
func TestFollowerResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := start(t, ServeOptions{})
		defer p.stop()
		waitFor(t, time.Minute, "the replica starts", caughtUp(p))
		p.fake.breakNext.Store(123_456)
		importV(t, p.primary, "1.0.0.1", 400_000, phone)
		waitFor(t, 2*time.Minute, "the replica applies the import", caughtUp(p))
		p.same(t)
		for _, f := range mustUpdates(t, p.primary)[0].Files {
			if got := p.fake.servedBytes(f.SHA256); got != f.Size {
				t.Errorf("file %s: %d bytes sent, want %d (resumed, not fetched again)", f.Name, got, f.Size)
			}
		}
	})
}

// TestFollowerOutage: while the WAN is down the replica keeps what it
// has, says the primary cannot be reached, and keeps the check-ins and
// reports it answers; when the WAN comes back it catches up by itself
// and every report reaches the primary once, even when an answer is lost.
func TestFollowerOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := start(t, ServeOptions{})
		defer p.stop()
		importV(t, p.primary, "1.0.0.1", 10_000, phone)
		waitFor(t, time.Minute, "the replica catches up", caughtUp(p))
		waitFor(t, time.Minute, "the replica knows it is in step", func() bool { return !p.f.Status().InStep.IsZero() })
		p.fake.down.Store(true)
		waitFor(t, 2*time.Minute, "the replica notices the outage", func() bool { return !p.f.Status().Connected })
		st := p.f.Status()
		if st.LastError == "" || st.Since.IsZero() {
			t.Errorf("status %+v: want why and since when", st)
		}
		// In step last before the outage: a replica cut off cannot know
		// it still is.
		if inStep := st.InStep; inStep.IsZero() || inStep.After(st.Since) {
			t.Errorf("status %+v: want in step last before the outage began", st)
		}
		lostAt := st.InStep
		// The primary moves on; the replica's devices check in and report.
		importV(t, p.primary, "1.0.0.2", 10_000, phone)
		if _, err := p.primary.Approve(ctx, "admin", phone.Path()); err != nil {
			t.Fatal(err)
		}
		v1, v2 := firmware.MustParseVersion("1.0.0.1"), firmware.MustParseVersion("1.0.0.2")
		for i := range 30 {
			mac := fmt.Sprintf("00-04-F2-00-00-%02X", i)
			if err := p.replica.RecordCheckIn(ctx, firmware.Device{MAC: mac, Identity: phone, Version: v1, Offered: v1, Location: firmware.Internal}); err != nil {
				t.Fatal(err)
			}
			if err := p.replica.Report(ctx, store.Report{Key: mac, State: firmware.StateDownloading, Target: v1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.replica.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // a long outage
		synctest.Wait()
		if p.replica.Position() == p.primary.Catalog().Seq() {
			t.Fatal("the replica followed through the outage")
		}
		if st := p.f.Status(); st.Connected || st.Outbox != 60 || !st.InStep.Equal(lostAt) {
			t.Errorf("status during the outage %+v: want not connected, 60 reports queued, in step last at %v", st, lostAt)
		}
		p.fake.loseAck.Store(true)
		p.fake.down.Store(false)
		waitFor(t, 3*time.Minute, "the replica catches up after the outage", caughtUp(p))
		waitFor(t, 3*time.Minute, "the outbox empties", func() bool { return p.f.Status().Outbox == 0 })
		p.same(t)
		want, _ := p.replica.Devices(ctx)
		got, _ := p.primary.Devices(ctx)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the primary's inventory differs from the replica's (-replica +primary):\n%s", diff)
		}
		r, _ := p.primary.Replica(ctx, "paris")
		if r.Progress.Reports != 60 {
			t.Errorf("the primary applied %d forwarded check-ins and reports, want 60 (once each, though an answer was lost)", r.Progress.Reports)
		}
		if r := p.replica.Catalog().Rules()[0]; r.Approved != v2 {
			t.Errorf("the replica's rule %+v: want %s approved", r, v2)
		}
		if st := p.f.Status(); !st.Connected || !st.InStep.After(lostAt.Add(10*time.Minute)) {
			t.Errorf("status after the outage %+v: want connected, in step again (since %v)", st, lostAt.Add(10*time.Minute))
		}
	})
}

// TestFollowerResyncs: a change that needs a file the primary no longer
// holds (imported, then rejected and purged before the replica came back)
// makes the replica start again from a snapshot.
func TestFollowerResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := start(t, ServeOptions{MaxBytes: 1}) // one change per message
		defer p.stop()
		importV(t, p.primary, "1.0.0.1", 10_000, phone)
		waitFor(t, time.Minute, "the replica catches up", caughtUp(p))
		p.fake.down.Store(true)
		waitFor(t, 2*time.Minute, "the replica notices the outage", func() bool { return !p.f.Status().Connected })
		importV(t, p.primary, "1.0.0.2", 10_000, phone)
		if _, err := p.primary.Reject(ctx, "admin", phone.Path()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.primary.Purge(ctx, "admin"); err != nil {
			t.Fatal(err)
		}
		importV(t, p.primary, "1.0.0.3", 10_000, phone2)
		p.fake.down.Store(false)
		waitFor(t, 3*time.Minute, "the replica catches up after the purge", caughtUp(p))
		p.same(t)
	})
}
