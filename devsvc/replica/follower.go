package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// Defaults of Config.
const (
	DefaultHeartbeatTimeout = 45 * time.Second
	DefaultMinBackoff       = time.Second
	DefaultMaxBackoff       = time.Minute
	DefaultForwardEvery     = time.Second
	DefaultReportEvery      = 10 * time.Second
	DefaultBatchSize        = 1000
	// HeartbeatEvery is how often a primary sends a heartbeat on an idle
	// Follow stream.
	HeartbeatEvery = 15 * time.Second
)

// upstreamTimeout bounds one Upstream call (a batch is at most about a
// MiB): a primary that takes no more is tried again.
const upstreamTimeout = time.Minute

// maxSnapshotRecords bounds a snapshot a follower gathers in memory.
const maxSnapshotRecords = 10_000_000

// Config configures a Follower. The zero value works but for Dir.
type Config struct {
	// Dir is where files are kept while they are fetched and until the
	// change that needs them is applied: DIR/replica of the data
	// directory (made if missing). A broken download resumes from what
	// it holds, also after a restart.
	Dir string
	// Primary names the primary (its admin address), for Status and logs.
	Primary string
	// DeviceURLs returns the replica's base URLs for devices (they follow
	// a reload of the settings), Version its program version: it tells
	// the primary. nil DeviceURLs: none.
	DeviceURLs func() (internal, external string)
	Version    string
	// HeartbeatTimeout: a Follow stream that brings nothing for this long
	// (the primary sends a heartbeat every HeartbeatEvery) is closed and
	// opened again. Default 45 s.
	HeartbeatTimeout time.Duration
	// MinBackoff and MaxBackoff bound the waits between attempts after a
	// failure: from MinBackoff, doubling, up to MaxBackoff (defaults 1 s
	// and 1 minute); a success starts again from MinBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ForwardEvery is how often the outbox is looked at (default 1 s);
	// ReportEvery how often, at least, the replica tells the primary its
	// position when it has nothing to forward (default 10 s).
	ForwardEvery, ReportEvery time.Duration
	// BatchSize bounds the check-ins and reports of one Upstream call
	// (default 1000).
	BatchSize int
	// Logger receives the follower's state changes; nil discards.
	Logger *slog.Logger
	// Now is the clock of Status's times; nil means time.Now.
	Now func() time.Time
}

// Status is what a follower is doing, for devsvc status.
type Status struct {
	// Primary is the primary's address.
	Primary string `json:"primary"`
	// Connected is true while the Follow stream brings heartbeats or
	// changes; Since is when it last became so, or stopped being so.
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	// LastContact is when the primary last answered anything; LastError
	// why the last attempt failed ("" after a success).
	LastContact time.Time `json:"lastContact,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// Position is the history number of the last change applied; Head
	// the primary's, as last heard.
	Position uint64 `json:"position"`
	Head     uint64 `json:"head"`
	// InStep is when the replica was last in step with its primary: its
	// position at the primary's head, as the primary last told it (on a
	// heartbeat, after applying changes, in an answer to what it
	// forwarded). Zero until then. A replica whose primary cannot be
	// reached is not in step, however little changed meanwhile: it cannot
	// know.
	InStep time.Time `json:"inStep,omitzero"`
	// Outbox counts the check-ins and reports not yet forwarded.
	Outbox int `json:"outbox"`
	// FilesFetched and BytesFetched count the files fetched since the
	// start; Applied the changes applied.
	FilesFetched int64 `json:"filesFetched"`
	BytesFetched int64 `json:"bytesFetched"`
	Applied      int64 `json:"applied"`
}

// Behind returns how many changes the replica is behind the primary's
// head, as last heard.
func (s Status) Behind() uint64 {
	if s.Head <= s.Position {
		return 0
	}
	return s.Head - s.Position
}

// Follower keeps a replica's store in step with its primary and forwards
// the check-ins and reports the replica recorded (see the package
// documentation). Run runs it; Status says how it goes.
type Follower struct {
	st  *store.Store
	p   Primary
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	status Status
	wake   chan struct{} // the forwarder: the position moved
	// reconnected tells the forwarder the Follow stream is back: it
	// tries again at once, from the first back-off.
	reconnected chan struct{}
}

// New returns a follower of p for the replica's store st.
func New(st *store.Store, p Primary, cfg Config) *Follower {
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.ForwardEvery <= 0 {
		cfg.ForwardEvery = DefaultForwardEvery
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = DefaultReportEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Follower{st: st, p: p, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), reconnected: make(chan struct{}, 1)}
	f.status = Status{Primary: cfg.Primary, Position: st.Position(), Since: f.cfg.Now(), LastError: "not connected yet"}
	return f
}

// Status returns what the follower is doing.
func (f *Follower) Status() Status {
	s := f.Progress()
	if n, err := f.st.OutboxLen(context.Background()); err == nil {
		s.Outbox = n
	}
	return s
}

// Progress returns Status but for Outbox (0), which takes a read of the
// store: cheap enough for a check asked at every request (/readyz).
func (f *Follower) Progress() Status {
	f.mu.Lock()
	s := f.status
	f.mu.Unlock()
	s.Position = f.st.Position()
	return s
}

// Run follows the primary and forwards the outbox until ctx is done,
// retrying every failure with back-off: while the primary cannot be
// reached the replica keeps serving from what it has.
func (f *Follower) Run(ctx context.Context) {
	if err := os.MkdirAll(f.cfg.Dir, 0o750); err != nil {
		f.log.Error("replica: cannot make the directory for the files being fetched; following anyway", "dir", f.cfg.Dir, "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { f.follow(ctx) })
	wg.Go(func() { f.forward(ctx) })
	wg.Wait()
}

// errResync asks the next Follow for a snapshot: a change needs a file
// the primary no longer holds (it was removed since).
var errResync = errors.New("a file of a change is no longer on the primary: starting again from a snapshot")

// errSilent is a Follow stream that brought nothing for HeartbeatTimeout.
var errSilent = errors.New("no heartbeat from the primary")

// follow runs Follow streams one after the other until ctx is done.
func (f *Follower) follow(ctx context.Context) {
	backoff := time.Duration(0)
	snapshot := false
	for ctx.Err() == nil {
		progressed, err := f.followOnce(ctx, snapshot)
		if ctx.Err() != nil {
			return
		}
		snapshot = errors.Is(err, errResync)
		if progressed || snapshot {
			backoff = 0
		}
		f.lost(err)
		backoff = min(max(2*backoff, f.cfg.MinBackoff), f.cfg.MaxBackoff)
		if snapshot {
			backoff = 0
		}
		if !sleep(ctx, backoff) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// followOnce runs one Follow stream from the store's position until it
// ends, and reports whether it brought anything.
func (f *Follower) followOnce(ctx context.Context, snapshot bool) (progressed bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(f.cfg.HeartbeatTimeout, func() {
		cancel(fmt.Errorf("%w in %v", errSilent, f.cfg.HeartbeatTimeout))
	})
	defer watchdog.Stop()
	var snap []store.Record
	err = f.p.Follow(sctx, f.st.Position(), snapshot, func(m Message) error {
		watchdog.Stop()
		defer watchdog.Reset(f.cfg.HeartbeatTimeout)
		progressed = true
		f.contact(m.Head, true)
		switch {
		case m.Snapshot != nil:
			if len(snap)+len(m.Snapshot.Records) > maxSnapshotRecords {
				return fmt.Errorf("the primary's snapshot has more than %d records", maxSnapshotRecords)
			}
			snap = append(snap, m.Snapshot.Records...)
			if !m.Snapshot.Last {
				return nil
			}
			err := f.applySnapshot(sctx, m.Snapshot.Seq, snap)
			snap = nil
			return err
		case len(m.Changes) > 0:
			return f.applyChanges(sctx, m.Changes, m.Head)
		}
		return nil
	})
	if cause := context.Cause(sctx); errors.Is(cause, errSilent) && ctx.Err() == nil {
		err = cause
	}
	return progressed, err
}

// applyChanges fetches the files changes need and applies them.
func (f *Follower) applyChanges(ctx context.Context, changes []store.Change, head uint64) error {
	needed, err := f.st.NeededFiles(changes)
	if err != nil {
		return err
	}
	if err := f.fetchAll(ctx, needed); err != nil {
		return err
	}
	before := f.st.Position()
	pos, err := f.st.ApplyChanges(ctx, changes, f.source)
	if errors.Is(err, store.ErrIntegrity) {
		f.removeObjects(needed) // fetched wrong: fetch them again
	}
	if err != nil {
		return err
	}
	f.applied(int64(len(changes)), before, pos)
	f.removeObjects(needed)
	if pos >= head {
		f.clearObjects()
	}
	return nil
}

// applySnapshot fetches the files a snapshot needs and applies it.
func (f *Follower) applySnapshot(ctx context.Context, seq uint64, recs []store.Record) error {
	needed, err := f.st.NeededSnapshotFiles(recs)
	if err != nil {
		return err
	}
	if err := f.fetchAll(ctx, needed); err != nil {
		if errors.Is(err, errResync) {
			err = fmt.Errorf("a file of the snapshot is no longer on the primary: %w", err)
		}
		return err
	}
	before := f.st.Position()
	err = f.st.ApplySnapshot(ctx, seq, recs, f.source)
	if errors.Is(err, store.ErrIntegrity) {
		f.removeObjects(needed)
	}
	if err != nil {
		return err
	}
	f.log.Info("replica: applied a snapshot of the primary", "position", seq, "was", before, "records", len(recs), "files", len(needed))
	f.applied(0, before, seq)
	f.removeObjects(needed)
	f.clearObjects()
	return nil
}

// applied notes a new position and wakes the forwarder to report it.
func (f *Follower) applied(n int64, before, pos uint64) {
	f.mu.Lock()
	f.status.Applied += n
	if f.status.Head > 0 && pos >= f.status.Head {
		f.status.InStep = f.cfg.Now()
	}
	f.mu.Unlock()
	if pos != before {
		f.log.Debug("replica: applied changes", "from", before, "to", pos)
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// contact notes that the primary answered; following says whether it
// was on the Follow stream.
func (f *Follower) contact(head uint64, following bool) {
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.LastContact = now
	if head > 0 {
		f.status.Head = head
		if f.st.Position() >= head {
			f.status.InStep = now
		}
	}
	if following && !f.status.Connected {
		was := f.status.Since
		f.status.Connected, f.status.Since, f.status.LastError = true, now, ""
		// The primary is back: what waits to be forwarded goes now.
		select {
		case f.reconnected <- struct{}{}:
		default:
		}
		f.log.Info("replica: following the primary", "primary", f.cfg.Primary, "position", f.st.Position(), "head", head, "was_disconnected_for", now.Sub(was).Round(time.Second).String())
	}
}

// lost notes that the Follow stream ended with err.
func (f *Follower) lost(err error) {
	if err == nil {
		err = errors.New("the primary ended the stream")
	}
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.status.Connected
	f.status.LastError = err.Error()
	if was {
		f.status.Connected, f.status.Since = false, now
		f.log.Warn("replica: lost the primary: serving the site from what this replica has, and trying again", "primary", f.cfg.Primary, "position", f.st.Position(), "err", err)
		return
	}
	f.log.Debug("replica: the primary cannot be reached", "primary", f.cfg.Primary, "err", err)
}

// objectPath is where the file with this SHA-256 is kept once fetched.
func (f *Follower) objectPath(sha [32]byte) string {
	return filepath.Join(f.cfg.Dir, hex.EncodeToString(sha[:]))
}

// source opens a fetched file for the store.
func (f *Follower) source(sha [32]byte) (io.ReadCloser, error) {
	return os.Open(f.objectPath(sha))
}

// fetchAll fetches every file of needed that is not fetched already.
func (f *Follower) fetchAll(ctx context.Context, needed []firmware.Image) error {
	for _, im := range needed {
		if err := f.fetch(ctx, im); err != nil {
			return fmt.Errorf("fetching %s (SHA-256 %s): %w", im.Name, im.SHA256Hex(), err)
		}
	}
	return nil
}

// fetch fetches one file into Dir: appended to its .part file from where
// the last attempt stopped (a resumed download), checked against its size
// and SHA-256, fsynced and renamed. A file the primary no longer holds is
// errResync.
func (f *Follower) fetch(ctx context.Context, im firmware.Image) error {
	final := f.objectPath(im.SHA256)
	if fi, err := os.Stat(final); err == nil && fi.Size() == im.Size {
		return nil
	}
	part := final + ".part"
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer out.Close()
	offset, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if offset > im.Size {
		if err := out.Truncate(0); err != nil {
			return err
		}
		if offset, err = out.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	if offset < im.Size {
		n, err := f.p.FetchFile(ctx, im.SHA256, offset, out)
		f.mu.Lock()
		f.status.BytesFetched += n
		f.mu.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			os.Remove(part)
			return errResync
		}
		if err != nil {
			// What came is kept: the next attempt resumes after it.
			out.Sync()
			return err
		}
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	size, err := io.Copy(h, out)
	if err != nil {
		return err
	}
	if size != im.Size || [32]byte(h.Sum(nil)) != im.SHA256 {
		os.Remove(part)
		return fmt.Errorf("%w: fetched %d bytes with SHA-256 %x, want %d bytes with %x; fetching it again", store.ErrIntegrity, size, h.Sum(nil), im.Size, im.SHA256)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, final); err != nil {
		return err
	}
	f.mu.Lock()
	f.status.FilesFetched++
	f.mu.Unlock()
	return nil
}

// removeObjects removes fetched files the store has copied.
func (f *Follower) removeObjects(ims []firmware.Image) {
	for _, im := range ims {
		os.Remove(f.objectPath(im.SHA256))
	}
}

// clearObjects removes every file Dir holds: the replica has caught up,
// so what is there is of changes it no longer needs.
func (f *Follower) clearObjects() {
	entries, err := os.ReadDir(f.cfg.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if len(strings.TrimSuffix(name, ".part")) == 64 {
			os.Remove(filepath.Join(f.cfg.Dir, name))
		}
	}
}

// forward sends the outbox and the position to the primary until ctx is
// done: every ForwardEvery when there is something to send, at least every
// ReportEvery, and at once when the position moves; after a failure with
// back-off.
func (f *Follower) forward(ctx context.Context) {
	epoch, err := f.st.OutboxEpoch(ctx)
	if err != nil {
		f.log.Error("replica: reading the outbox", "err", err)
	}
	tick := time.NewTicker(f.cfg.ForwardEvery)
	defer tick.Stop()
	var (
		lastReport  time.Time
		reported    uint64
		backoff     time.Duration
		notBefore   time.Time
		failing     bool
		immediately bool
	)
	for {
		if !immediately {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-f.wake:
			case <-f.reconnected:
				backoff, notBefore = 0, time.Time{}
			}
		}
		immediately = false
		now := time.Now()
		if now.Before(notBefore) {
			continue
		}
		items, err := f.st.Outbox(ctx, 0, f.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Error("replica: reading the outbox", "err", err)
			continue
		}
		pos := f.st.Position()
		if len(items) == 0 && pos == reported && now.Sub(lastReport) < f.cfg.ReportEvery {
			continue
		}
		uctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
		var in, ext string
		if f.cfg.DeviceURLs != nil {
			in, ext = f.cfg.DeviceURLs()
		}
		reply, err := f.p.Upstream(uctx, Upstream{Position: pos, InternalURL: in, ExternalURL: ext,
			Version: f.cfg.Version, Epoch: epoch, Items: items})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, f.cfg.MinBackoff), f.cfg.MaxBackoff)
			notBefore = time.Now().Add(backoff)
			if !failing {
				f.log.Warn("replica: cannot forward check-ins and reports to the primary: they are kept and sent once it answers", "primary", f.cfg.Primary, "queued", len(items), "err", err)
			}
			failing = true
			continue
		}
		if failing {
			f.log.Info("replica: forwarding check-ins and reports to the primary again", "primary", f.cfg.Primary)
		}
		failing, backoff, notBefore = false, 0, time.Time{}
		lastReport, reported = time.Now(), pos
		f.contact(reply.Head, false)
		if len(items) > 0 && reply.Acked > 0 {
			if err := f.st.AckOutbox(ctx, reply.Acked); err != nil && ctx.Err() == nil {
				f.log.Error("replica: dropping forwarded check-ins and reports from the outbox", "err", err)
			}
		}
		immediately = len(items) == f.cfg.BatchSize
	}
}
