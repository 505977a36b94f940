package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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

// invOp is one queued inventory write: a check-in or a report.
type invOp struct {
	key     string
	checkIn *firmware.Device
	report  *Report
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

	// pmu guards pending: the newest queued check-in of each device, from
	// when it is queued until its batch is committed (or failed), so that
	// Report knows a device whose check-in is not committed yet. A
	// check-in is queued and entered under pmu, and Report looks under
	// pmu before it queues, so a report found here is queued after the
	// check-in it was checked against.
	pmu     sync.Mutex
	pending map[string]*firmware.Device
}

// maxBatch bounds the operations of one inventory transaction.
const maxBatch = 32768

func newInventory(size int, every time.Duration) *inventory {
	return &inventory{
		ops:     make(chan *invOp, size),
		flush:   make(chan chan error),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		every:   every,
		pending: make(map[string]*firmware.Device),
	}
}

// enqueue queues op without waiting: ErrBusy when the queue is full.
func (inv *inventory) enqueue(op *invOp) error {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return ErrClosed
	}
	select {
	case inv.ops <- op:
		return nil
	default:
		return fmt.Errorf("store: %w (%d writes waiting)", ErrBusy, cap(inv.ops))
	}
}

// stop makes further writes ErrClosed and waits until the writer committed
// what was queued.
func (inv *inventory) stop() {
	inv.mu.Lock()
	inv.closed = true
	inv.mu.Unlock()
	close(inv.quit)
	<-inv.done
}

// RecordCheckIn queues a device's check-in and returns at once; the record
// is durable within FlushInterval plus one commit (see Flush). The device's
// key is d.Key, else firmware.DeviceKey(d.MAC, d.Serial); a zero
// LastCheckIn means now. The stored State, Target, Error, LastReport and
// LastUpdate fields are kept; everything else is replaced. ErrBusy when the
// queue is full.
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
	inv := s.inv
	inv.pmu.Lock()
	defer inv.pmu.Unlock()
	if err := inv.enqueue(&invOp{key: d.Key, checkIn: &d}); err != nil {
		return err
	}
	inv.pending[d.Key] = &d
	return nil
}

// Report queues a device's report and returns at once, as RecordCheckIn.
// It sets the device's State, Target, Error and LastReport; success also
// sets Version to Target and LastUpdate to the report's time.
//
// Only a device that checked in may report, and only on the version it
// runs or was offered at its last check-in (queued or committed): a report
// for a device the inventory does not know is refused with
// ErrNotCheckedIn, one for another version with ErrNotOffered, and neither
// creates or changes a record. ErrBusy when the queue is full.
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
	inv := s.inv
	inv.pmu.Lock()
	d, queued := inv.pending[r.Key]
	var last firmware.Device
	if queued {
		last = *d
	}
	inv.pmu.Unlock()
	if !queued {
		// Not queued: committed, or never seen. A check-in committed
		// since the look is in the record: the writer commits before it
		// forgets the pending check-in.
		var err error
		last, err = s.Device(ctx, r.Key)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("store: report from %s: %w: check in before reporting", r.Key, ErrNotCheckedIn)
		}
		if err != nil {
			return err
		}
	}
	if r.Target != last.Version && r.Target != last.Offered {
		return fmt.Errorf("store: report from %s on %s: %w (runs %s, offered %s)", r.Key, r.Target, ErrNotOffered, versionOrNone(last.Version), versionOrNone(last.Offered))
	}
	return inv.enqueue(&invOp{key: r.Key, report: &r})
}

// versionOrNone writes a version, or "none" for the zero one.
func versionOrNone(v firmware.Version) string {
	if v.IsZero() {
		return "none"
	}
	return v.String()
}

// Flush waits until everything queued before the call is committed and
// fsynced, and returns the commit's error.
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
func (s *Store) writeInventory() {
	inv := s.inv
	defer close(inv.done)
	batch := make(map[string][]*invOp)
	n := 0
	var (
		timer   *time.Timer
		timerC  <-chan time.Time
		waiters []chan error
	)
	add := func(op *invOp) {
		batch[op.key] = append(batch[op.key], op)
		n++
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
	commit := func() {
		var err error
		if n > 0 {
			err = s.writeBatch(batch)
			if err != nil {
				s.log.Error("store: inventory write failed; these check-ins and reports are lost", "ops", n, "devices", len(batch), "err", err)
			}
		}
		// Committed (or lost): Report now finds these check-ins in the
		// records, or not at all.
		inv.pmu.Lock()
		for k, ops := range batch {
			for _, op := range slices.Backward(ops) {
				if op.checkIn != nil {
					if inv.pending[k] == op.checkIn {
						delete(inv.pending, k)
					}
					break
				}
			}
		}
		inv.pmu.Unlock()
		for _, w := range waiters {
			w <- err
		}
		waiters = waiters[:0]
		clear(batch)
		n = 0
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
	}
	for {
		select {
		case op := <-inv.ops:
			add(op)
			if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(inv.every)
				} else {
					timer.Reset(inv.every)
				}
				timerC = timer.C
			}
			if n >= maxBatch {
				commit()
			}
		case <-timerC:
			timerC = nil
			commit()
		case w := <-inv.flush:
			waiters = append(waiters, w)
			// Everything queued before the Flush call is among the first
			// len(ops) queued now.
			drain(len(inv.ops))
			commit()
		case <-inv.quit:
			// Enqueuing is closed: drain the rest.
			drain(len(inv.ops))
			commit()
			return
		}
	}
}

// writeBatch applies a batch of inventory writes, in the order queued per
// device, in one transaction.
func (s *Store) writeBatch(batch map[string][]*invOp) error {
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.Sort(keys) // sequential puts are cheaper for the B+tree
	// bolt keeps references to put values until the commit: records are
	// appended to slabs that are never overwritten.
	var slab []byte
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		for _, k := range keys {
			ops := batch[k]
			var (
				d     firmware.Device
				found bool
			)
			if old := b.Get([]byte(k)); old != nil {
				// A check-in replaces all but the report fields, which
				// come first in the record.
				var err error
				if d, err = decodeDevice(old, ops[0].checkIn != nil); err != nil {
					return fmt.Errorf("device %q: %w", k, err)
				}
				found = true
			}
			for _, op := range ops {
				if op.checkIn == nil && !found {
					// Report checks that a check-in came first; should the
					// record have gone since, the report creates none.
					continue
				}
				d, found = applyOp(d, found, op), true
			}
			if !found {
				continue
			}
			if cap(slab)-len(slab) < 512 {
				slab = make([]byte, 0, 64<<10)
			}
			start := len(slab)
			slab = appendDevice(slab, &d)
			if err := b.Put([]byte(k), slab[start:len(slab):len(slab)]); err != nil {
				return err
			}
		}
		return nil
	})
}

// applyOp applies one check-in or report to a device's record.
func applyOp(d firmware.Device, found bool, op *invOp) firmware.Device {
	if op.checkIn != nil {
		n := *op.checkIn
		if found {
			n.State, n.Target, n.Error, n.LastReport, n.LastUpdate = d.State, d.Target, d.Error, d.LastReport, d.LastUpdate
		}
		return n
	}
	r := op.report
	d.State, d.Target, d.Error, d.LastReport = r.State, r.Target, r.Error, r.Time
	if r.State == firmware.StateSuccess {
		if !r.Target.IsZero() {
			d.Version = r.Target
		}
		d.LastUpdate = r.Time
	}
	return d
}

// Devices lists the inventory as committed, sorted by key; call Flush first
// to include what is queued.
func (s *Store) Devices(ctx context.Context) ([]firmware.Device, error) {
	var ds []firmware.Device
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(v, false)
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
		if d, err = decodeDevice(v, false); err != nil {
			return fmt.Errorf("device %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return firmware.Device{}, fmt.Errorf("store: %w", err)
	}
	return d, nil
}
