package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// Report is a device's report of its progress in an update.
type Report struct {
	// Key is the device's key (firmware.DeviceKey); a MAC in another
	// notation is normalized.
	Key string
	// State is where the device stands; success sets the device's version
	// to Target.
	State  firmware.State
	Target firmware.Version
	// Error is the device's error code of a failure.
	Error string
	// Time is when the device reported; zero means now.
	Time time.Time
}

// invOp is one queued inventory write: a check-in, a report or a refusal.
type invOp struct {
	key     string
	checkIn *firmware.Device
	report  *Report
	refusal *refusal
	// attempt is the device's attempt after a report, as the index
	// computed it (a check-in's is its Device's Attempt).
	attempt firmware.Attempt
	// fwd, on a primary, is a batch a replica forwarded (ApplyForwarded):
	// its operations join the writer's batch together, so that they
	// commit in one transaction with the replica's progress.
	fwd *fwdBatch
}

// refusal is a request of a device the service refused.
type refusal struct {
	reason string
	time   time.Time
}

// InventoryHealth is the state of the inventory's writes (see Store.
// InventoryHealth and the package documentation).
type InventoryHealth struct {
	// Writable is false while the last inventory write failed (the disk is
	// full, say): RecordCheckIn and Report then return ErrUnavailable.
	Writable bool
	// Since is when the writes began to fail; zero while Writable.
	Since time.Time
	// Err is the last write's error; nil while Writable.
	Err error
	// Held counts the check-ins and reports accepted but not yet written:
	// those accepted before the writes failed are kept and retried until
	// they are written.
	Held int
}

// inventory is the queue of inventory writes and the writer's controls.
type inventory struct {
	mu     sync.RWMutex // held shared to enqueue, exclusively to close
	closed bool
	ops    chan *invOp
	flush  chan chan error
	quit   chan struct{}
	done   chan struct{}
	every  time.Duration

	// failing is set while the writes fail: enqueue refuses.
	failing atomic.Bool
	// batched is the number of operations the writer has taken from the
	// queue and not yet committed.
	batched atomic.Int64
	// hmu guards health, which the writer keeps (Held is not kept:
	// snapshot counts it).
	hmu    sync.Mutex
	health InventoryHealth
	// lost is the error of the operations the writer could not write
	// when it stopped; read after done is closed.
	lost error
}

// maxBatch bounds the operations of one inventory transaction.
const maxBatch = 32768

// Back-off of the retries of a failed inventory write: from retryMin,
// doubling, up to retryMax.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

func newInventory(size int, every time.Duration) *inventory {
	return &inventory{
		ops:    make(chan *invOp, size),
		flush:  make(chan chan error),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		every:  every,
		health: InventoryHealth{Writable: true},
	}
}

// enqueue queues op without waiting: ErrUnavailable while the writes
// fail, ErrBusy when the queue is full.
func (inv *inventory) enqueue(op *invOp) error {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return ErrClosed
	}
	if inv.failing.Load() {
		h := inv.snapshot()
		return fmt.Errorf("store: %w since %s: %v", ErrUnavailable, h.Since.Format(time.RFC3339), h.Err)
	}
	select {
	case inv.ops <- op:
		return nil
	default:
		return fmt.Errorf("store: %w (%d writes waiting)", ErrBusy, cap(inv.ops))
	}
}

// snapshot returns the health, with Held counting the batch and the
// queue.
func (inv *inventory) snapshot() InventoryHealth {
	inv.hmu.Lock()
	h := inv.health
	inv.hmu.Unlock()
	h.Held = int(inv.batched.Load()) + len(inv.ops)
	return h
}

// stop makes further writes ErrClosed, waits until the writer has written
// what was queued, or tried to, and returns the error of what it could
// not write.
func (inv *inventory) stop() error {
	inv.mu.Lock()
	inv.closed = true
	inv.mu.Unlock()
	close(inv.quit)
	<-inv.done
	return inv.lost
}

// InventoryHealth says whether the inventory can be written, since when
// it cannot, why, and how many accepted check-ins and reports wait to be
// written. It does no I/O.
func (s *Store) InventoryHealth() InventoryHealth { return s.inv.snapshot() }

// RecordCheckIn queues a device's check-in and returns at once; the record
// is durable within FlushInterval plus one commit (see Flush). The device's
// key is d.Key, else firmware.DeviceKey(d.MAC, d.Serial); a zero
// LastCheckIn means now.
//
// d carries what the check-in said and what it was answered: the
// device's fields, its Site (the site its address fell in, "" for none),
// Offered (the Decision's Version; zero when nothing was offered), and
// Hold and Held (what the Decision held back, and why). The store keeps
// the rest: the stored State, Target, Error, LastReport and LastUpdate
// are kept; the device's Attempt is advanced by the offer
// (firmware.Attempt.Offer of Offered at LastCheckIn; what d.Attempt says
// is ignored); the check-in is added to its History (d.History is
// ignored); everything else is replaced.
//
// The fleet index (DeviceState, Downloading, QueryDevices, rollout
// progress) reflects the check-in when RecordCheckIn returns nil, and
// never when it returns an error. ErrBusy when the queue is full;
// ErrUnavailable while the inventory cannot be written. Once it returned
// nil the check-in is kept until it is written, however long the writes
// fail, unless the store is closed before (see the package documentation).
func (s *Store) RecordCheckIn(ctx context.Context, d firmware.Device) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m, err := firmware.NormalizeMAC(d.MAC); err == nil {
		d.MAC = m
	}
	if d.Key == "" {
		key, ok := firmware.DeviceKey(d.MAC, d.Serial)
		if !ok {
			return errors.New("store: check-in: the device has neither a MAC address nor a serial number")
		}
		d.Key = key
	}
	if d.LastCheckIn.IsZero() {
		d.LastCheckIn = s.now().UTC()
	}
	d.Modules = slices.Clone(d.Modules) // queued: not the caller's to change
	d.Attempt, d.History = firmware.Attempt{}, nil
	return s.fleet.checkIn(&invOp{key: d.Key, checkIn: &d}, s.inv)
}

// Report queues a device's report and returns at once, as RecordCheckIn.
// It sets the device's State, Target, Error and LastReport; success also
// sets Version to Target and LastUpdate to the report's time. It advances
// the device's Attempt (firmware.Attempt.Report: a report about the
// version it was offered; others leave it) and adds the report to its
// History.
//
// Only a device that checked in may report, and only on the version it
// runs or was last offered (its check-in queued or committed: the fleet
// index reflects every accepted check-in): a report for a device the
// inventory does not know is refused with ErrNotCheckedIn, one for
// another version with ErrNotOffered, and neither creates or changes a
// record. The fleet index reflects the report when Report returns nil.
// ErrBusy when the queue is full; ErrUnavailable while the inventory
// cannot be written.
func (s *Store) Report(ctx context.Context, r Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Key == "" {
		return errors.New("store: report: no device key")
	}
	if m, err := firmware.NormalizeMAC(r.Key); err == nil {
		r.Key = m
	}
	if r.State != firmware.StateIdle {
		if _, err := firmware.ParseState(string(r.State)); err != nil {
			return fmt.Errorf("store: report from %s: %w", r.Key, err)
		}
	}
	if r.Time.IsZero() {
		r.Time = s.now().UTC()
	}
	return s.fleet.report(&invOp{key: r.Key, report: &r}, s.inv)
}

// RecordRefusal queues a note in the history of the device with this key
// (a MAC in another notation is normalized) that the service refused one
// of its requests, and why (say "status report without a check-in", or
// "the inventory cannot be written"). It changes nothing else, and
// nothing for a device the inventory does not hold: it never creates a
// record. It returns at once, as RecordCheckIn, with the same errors.
func (s *Store) RecordRefusal(ctx context.Context, key, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("store: refusal: no device key")
	}
	if m, err := firmware.NormalizeMAC(key); err == nil {
		key = m
	}
	return s.inv.enqueue(&invOp{key: key, refusal: &refusal{reason: reason, time: s.now().UTC()}})
}

// versionOrNone writes a version, or "none" for the zero one.
func versionOrNone(v firmware.Version) string {
	if v.IsZero() {
		return "none"
	}
	return v.String()
}

// Flush waits until everything queued before the call is committed and
// fsynced, and returns the commit's error. While the inventory cannot be
// written it tries once more at once, and returns an error wrapping
// ErrUnavailable if that fails too.
func (s *Store) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	s.inv.mu.RLock()
	if s.inv.closed {
		s.inv.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.inv.flush <- reply:
	case <-ctx.Done():
		s.inv.mu.RUnlock()
		return ctx.Err()
	}
	s.inv.mu.RUnlock()
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeInventory is the writer goroutine: it gathers queued writes, merging
// them per device, and commits them in one fsynced transaction when the
// oldest has waited FlushInterval, when a Flush asks, when the batch is
// full, and at Close.
//
// A batch whose commit fails is kept, never dropped: the writer stops
// taking from the queue, enqueue refuses (ErrUnavailable), and the batch
// is retried with back-off (and at once when Flush asks) until a commit
// succeeds; then the queue is taken again. At Close the batch and the
// queue get one last attempt.
func (s *Store) writeInventory() {
	inv := s.inv
	defer close(inv.done)
	batch := make(map[string][]*invOp)
	n := 0
	var (
		flushT, retryT *time.Timer
		flushC, retryC <-chan time.Time
		failed         error // the held batch's last commit error
		backoff        time.Duration
	)
	var fwds []*fwdBatch // forwarded batches in batch, whose progress it records
	add := func(op *invOp) {
		if op.fwd != nil {
			for _, o := range op.fwd.ops {
				batch[o.key] = append(batch[o.key], o)
			}
			fwds = append(fwds, op.fwd)
			n += len(op.fwd.ops)
		} else {
			batch[op.key] = append(batch[op.key], op)
			n++
		}
		inv.batched.Store(int64(n))
	}
	drain := func(max int) {
		for range max {
			select {
			case op := <-inv.ops:
				add(op)
			default:
				return
			}
		}
	}
	// commit writes the batch; on failure the batch is held and retried.
	commit := func() error {
		if flushT != nil {
			flushT.Stop()
			flushC = nil
		}
		if n == 0 {
			return nil
		}
		err := s.writeBatch(batch, fwds)
		if err != nil {
			failed = err
			s.inventoryFailed(err, n, len(batch))
			backoff = min(max(2*backoff, retryMin), retryMax)
			if retryT == nil {
				retryT = time.NewTimer(backoff)
			} else {
				retryT.Reset(backoff)
			}
			retryC = retryT.C
			return fmt.Errorf("store: %w: %w", ErrUnavailable, err)
		}
		if failed != nil {
			s.inventoryRecovered(n, len(batch))
			failed, backoff = nil, 0
			if retryT != nil {
				retryT.Stop()
				retryC = nil
			}
		}
		clear(batch)
		fwds = fwds[:0]
		n = 0
		inv.batched.Store(0)
		return nil
	}
	for {
		var opsC <-chan *invOp
		if failed == nil {
			opsC = inv.ops // a failed batch is retried before more is taken
		}
		select {
		case op := <-opsC:
			add(op)
			if flushC == nil {
				if flushT == nil {
					flushT = time.NewTimer(inv.every)
				} else {
					flushT.Reset(inv.every)
				}
				flushC = flushT.C
			}
			if n >= maxBatch {
				commit()
			}
		case <-flushC:
			flushC = nil
			commit()
		case <-retryC:
			retryC = nil
			commit()
		case w := <-inv.flush:
			if failed != nil {
				if err := commit(); err != nil { // the held batch, at once
					w <- err
					continue
				}
			}
			// Everything queued before the Flush call is among the first
			// len(ops) queued now.
			drain(len(inv.ops))
			w <- commit()
		case <-inv.quit:
			// Enqueuing is closed: drain the rest, and one last attempt.
			drain(len(inv.ops))
			if commit() != nil {
				inv.lost = s.inventoryLost(failed, batch, n)
			}
			return
		}
	}
}

// inventoryFailed records a failed commit of a batch of n operations of
// devices devices; the first of a run of failures is logged, loudly.
func (s *Store) inventoryFailed(err error, n, devices int) {
	inv := s.inv
	inv.hmu.Lock()
	first := inv.health.Writable
	if first {
		inv.health = InventoryHealth{Since: s.now().UTC()}
	}
	inv.health.Err = err
	inv.hmu.Unlock()
	inv.failing.Store(true)
	if first {
		s.log.Error("store: the inventory cannot be written: check-ins and reports are refused (503) until it can; the ones accepted before are kept and retried",
			"held", n+len(inv.ops), "devices", devices, "err", err)
	}
}

// inventoryRecovered records that the held batch was written.
func (s *Store) inventoryRecovered(n, devices int) {
	inv := s.inv
	inv.hmu.Lock()
	since := inv.health.Since
	inv.health = InventoryHealth{Writable: true}
	inv.hmu.Unlock()
	inv.failing.Store(false)
	s.log.Warn("store: the inventory is written again: the held batch is written, the queue follows, and new check-ins and reports are accepted",
		"written", n, "devices", devices, "queued", len(inv.ops), "unwritable_for", s.now().Sub(since).Round(time.Millisecond).String())
}

// inventoryLost reports the operations that could not be written when the
// store closed, loudly, and returns the error Close returns.
func (s *Store) inventoryLost(err error, batch map[string][]*invOp, n int) error {
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	const shown = 20
	more := ""
	if len(keys) > shown {
		more = fmt.Sprintf(" and %d more", len(keys)-shown)
		keys = keys[:shown]
	}
	s.log.Error("store: closing with check-ins and reports that could not be written: they are lost; the devices send them again at their next check",
		"lost", n, "devices", len(batch), "keys", strings.Join(keys, " ")+more, "err", err)
	return fmt.Errorf("store: %w: %d check-ins and reports of %d devices could not be written and are lost: %w", ErrUnavailable, n, len(batch), err)
}

// writeBatch applies a batch of inventory writes, in the order queued per
// device, in one transaction. A device whose stored record cannot be read
// is left as it is (its operations are logged and dropped) so that one bad
// record cannot stop the inventory.
// On a replica's store, every operation applied is also queued for the
// primary (its outbox), in the same transaction; on a primary's, the
// progress of the replicas' forwarded batches in it (fwds) is recorded
// there too.
func (s *Store) writeBatch(batch map[string][]*invOp, fwds []*fwdBatch) error {
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.Sort(keys) // sequential puts are cheaper for the B+tree
	// bolt keeps references to put values until the commit: records are
	// appended to slabs that are never overwritten.
	var (
		slab []byte
		bad  []error
	)
	defer s.observe(CommitInventory, time.Now())
	err := s.db.Update(func(tx *bolt.Tx) error {
		bad = bad[:0]
		if s.testHookWrite != nil {
			if err := s.testHookWrite(); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketDevices)
		var outbox *bolt.Bucket
		if s.replicaOf != "" {
			outbox = tx.Bucket(bucketOutbox)
		}
		for _, k := range keys {
			ops := batch[k]
			var (
				d     firmware.Device
				h     rawHistory
				found bool
			)
			if old := b.Get([]byte(k)); old != nil {
				// A check-in replaces all but the kept fields, which
				// come first in the record; the history is added to as
				// it is stored.
				part := decodeAll
				if ops[0].checkIn != nil {
					part = decodeKept
				}
				var err error
				if d, h, err = decodeRecord(old, part); err != nil {
					bad = append(bad, fmt.Errorf("device %q: %w", k, err))
					continue
				}
				found = true
			}
			for _, op := range ops {
				if op.report != nil && !found {
					// Report checks that a check-in came first; should the
					// record have gone since, the report creates none.
					continue
				}
				var e firmware.DeviceEvent
				d, e, found = applyOp(d, found, op)
				if e.Kind != "" {
					h = h.add(e)
				}
				if outbox != nil && e.Kind != "" {
					if err := queueForward(outbox, op); err != nil {
						return err
					}
				}
			}
			if !found {
				continue // refusals of a device never recorded
			}
			if cap(slab)-len(slab) < 1024 {
				slab = make([]byte, 0, 64<<10)
			}
			start := len(slab)
			slab = appendRecord(slab, &d, h)
			if err := b.Put([]byte(k), slab[start:len(slab):len(slab)]); err != nil {
				return err
			}
		}
		return s.recordForwarded(tx, fwds)
	})
	if err == nil && len(bad) > 0 {
		s.log.Error("store: device records that cannot be read were left as they are; these devices' check-ins and reports are not recorded",
			"devices", len(bad), "err", errors.Join(bad...))
	}
	return err
}

// applyOp applies one check-in, report or refusal to a device's record;
// found says whether it has one, before and after. It returns the event
// the operation adds to the device's history (none: Kind "").
func applyOp(d firmware.Device, found bool, op *invOp) (firmware.Device, firmware.DeviceEvent, bool) {
	switch {
	case op.checkIn != nil:
		n := *op.checkIn
		if found {
			n.State, n.Target, n.Error, n.LastReport, n.LastUpdate = d.State, d.Target, d.Error, d.LastReport, d.LastUpdate
		}
		n.History = nil // the check-in carries its Attempt, from the index
		return n, firmware.DeviceEvent{Time: n.LastCheckIn, Kind: firmware.DeviceCheckIn, Version: n.Version,
			Offered: n.Offered, Hold: n.Hold, Held: n.Held, Site: n.Site}, true
	case op.refusal != nil:
		if !found {
			return d, firmware.DeviceEvent{}, false
		}
		return d, firmware.DeviceEvent{Time: op.refusal.time, Kind: firmware.DeviceRefusal, Detail: op.refusal.reason}, true
	}
	r := op.report
	d.State, d.Target, d.Error, d.LastReport = r.State, r.Target, r.Error, r.Time
	if r.State == firmware.StateSuccess {
		if !r.Target.IsZero() {
			d.Version = r.Target
		}
		d.LastUpdate = r.Time
	}
	d.Attempt = op.attempt
	return d, firmware.DeviceEvent{Time: r.Time, Kind: firmware.DeviceReport, Version: r.Target, State: r.State, Detail: r.Error}, true
}

// Devices lists the inventory as committed, sorted by key; call Flush first
// to include what is queued.
func (s *Store) Devices(ctx context.Context) ([]firmware.Device, error) {
	var ds []firmware.Device
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(v, decodeAll)
			if err != nil {
				return fmt.Errorf("device %q: %w", k, err)
			}
			ds = append(ds, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	return ds, nil
}

// Device returns the committed record of the device with this key (a MAC
// in any notation is normalized); ErrNotFound if there is none.
func (s *Store) Device(ctx context.Context, key string) (firmware.Device, error) {
	var d firmware.Device
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		k := key
		v := b.Get([]byte(k))
		if v == nil {
			if m, err := firmware.NormalizeMAC(key); err == nil && m != key {
				k = m
				v = b.Get([]byte(k))
			}
		}
		if v == nil {
			return fmt.Errorf("device %q %w", key, ErrNotFound)
		}
		var err error
		if d, err = decodeDevice(v, decodeAll); err != nil {
			return fmt.Errorf("device %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return firmware.Device{}, fmt.Errorf("store: %w", err)
	}
	return d, nil
}
