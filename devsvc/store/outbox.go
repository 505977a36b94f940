package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// bucketOutbox: on a replica's store, the check-ins, reports and
// refusals it recorded, queued for its primary: 8-byte big-endian number
// (the outbox's own sequence) -> EncodeForwarded.
var bucketOutbox = []byte("outbox")

// Forwarded is a check-in, a report or a refusal a replica recorded, as it
// forwards it to its primary: numbered in the replica's outbox (Seq), so
// that a batch sent again is not applied twice.
type Forwarded struct {
	Seq uint64
	// Key is the device's key; exactly one of CheckIn, Report and Refusal
	// is set.
	Key     string
	CheckIn *firmware.Device
	Report  *Report
	Refusal *Refusal
}

// Refusal is a request of a device a replica refused, as RecordRefusal
// notes it in the device's history.
type Refusal struct {
	Reason string
	Time   time.Time
}

// forwardedJSON is Forwarded's encoding.
type forwardedJSON struct {
	Key     string           `json:"key"`
	CheckIn *firmware.Device `json:"checkIn,omitempty"`
	Report  *reportJSON      `json:"report,omitempty"`
	Refusal *refusalJSON     `json:"refusal,omitempty"`
}

type refusalJSON struct {
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

type reportJSON struct {
	State  firmware.State   `json:"state"`
	Target firmware.Version `json:"target"`
	Error  string           `json:"error,omitempty"`
	Time   time.Time        `json:"time"`
}

// EncodeForwarded returns f's encoding, which DecodeForwarded reads (Seq
// is not part of it: the outbox key, or the message, carries it).
func EncodeForwarded(f Forwarded) ([]byte, error) {
	j := forwardedJSON{Key: f.Key, CheckIn: f.CheckIn}
	if r := f.Report; r != nil {
		j.Report = &reportJSON{State: r.State, Target: r.Target, Error: r.Error, Time: r.Time}
	}
	if r := f.Refusal; r != nil {
		j.Refusal = &refusalJSON{Reason: r.Reason, Time: r.Time}
	}
	return json.Marshal(j)
}

// Limits of a forwarded check-in, as deviceproto's.
const (
	maxForwardedBytes   = 64 << 10
	maxForwardedModules = 32
	maxForwardedText    = 256
)

var errForwarded = errors.New("malformed forwarded check-in or report")

// DecodeForwarded reads a forwarded check-in, report or refusal as a
// primary receives it from a replica, and checks every field as the device
// side checks a device's message: the key is the device's (its normalized
// MAC, else serial:SERIAL), identity names and module names valid,
// versions parsed, a known location, state and hold, a valid site name,
// printable text of bounded length, an address that parses. What the
// primary keeps itself is dropped: a check-in's report fields, attempt
// and history (the primary's own record and index keep them). Errors wrap
// an error saying what is wrong.
func DecodeForwarded(seq uint64, data []byte) (Forwarded, error) {
	if len(data) > maxForwardedBytes {
		return Forwarded{}, fmt.Errorf("%w %d: %d bytes", errForwarded, seq, len(data))
	}
	var j forwardedJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Forwarded{}, fmt.Errorf("%w %d: %v", errForwarded, seq, err)
	}
	if dec.More() {
		return Forwarded{}, fmt.Errorf("%w %d: data after the record", errForwarded, seq)
	}
	bad := func(format string, a ...any) (Forwarded, error) {
		return Forwarded{}, fmt.Errorf("%w %d: %s", errForwarded, seq, fmt.Sprintf(format, a...))
	}
	f := Forwarded{Seq: seq, Key: j.Key}
	set := 0
	for _, p := range []bool{j.CheckIn != nil, j.Report != nil, j.Refusal != nil} {
		if p {
			set++
		}
	}
	switch {
	case set != 1:
		return bad("want a check-in, a report or a refusal")
	case j.CheckIn != nil:
		d := j.CheckIn
		key, ok := firmware.DeviceKey(d.MAC, d.Serial)
		if !ok || key != j.Key || d.Key != key {
			return bad("key %q is not the device's (%q)", j.Key, key)
		}
		if d.MAC != "" {
			if m, err := firmware.NormalizeMAC(d.MAC); err != nil || m != d.MAC {
				return bad("MAC %q", d.MAC)
			}
		}
		if d.Serial != "" && firmware.ValidName(d.Serial) != nil {
			return bad("serial %q", d.Serial)
		}
		for _, n := range []string{d.Identity.DeviceType, d.Identity.Vendor, d.Identity.Model, d.Identity.Revision, d.Identity.Locale} {
			if err := firmware.ValidName(n); err != nil {
				return bad("identity: %v", err)
			}
		}
		if len(d.Modules) > maxForwardedModules {
			return bad("%d modules", len(d.Modules))
		}
		for _, m := range d.Modules {
			if err := firmware.ValidName(m.Name); err != nil || !printableText(m.Timestamp, 64) {
				return bad("module %q", m.Name)
			}
		}
		if d.Location != firmware.Internal && d.Location != firmware.External {
			return bad("location %q", d.Location)
		}
		if d.Address != "" {
			if _, err := netip.ParseAddr(d.Address); err != nil {
				return bad("address %q", d.Address)
			}
		}
		if !printableText(d.User, maxForwardedText) || d.LastCheckIn.IsZero() {
			return bad("user or time")
		}
		if d.Site != "" && firmware.ValidSiteName(d.Site) != nil {
			return bad("site %q", d.Site)
		}
		if !d.Hold.Known() || (d.Hold == firmware.HoldNone) != d.Held.IsZero() {
			return bad("hold %q of %s", d.Hold, d.Held)
		}
		// A check-in carries no report fields, attempt or history: those
		// stay the primary's.
		d.State, d.Target, d.Error, d.LastReport, d.LastUpdate = "", firmware.Version{}, "", time.Time{}, time.Time{}
		d.Attempt, d.History = firmware.Attempt{}, nil
		f.CheckIn = d
	case j.Refusal != nil:
		if !validForwardedKey(j.Key) {
			return bad("key %q", j.Key)
		}
		if !printableText(j.Refusal.Reason, maxForwardedText) || j.Refusal.Reason == "" || j.Refusal.Time.IsZero() {
			return bad("refusal reason or time")
		}
		f.Refusal = &Refusal{Reason: j.Refusal.Reason, Time: j.Refusal.Time}
	default:
		r := j.Report
		if !validForwardedKey(j.Key) {
			return bad("key %q", j.Key)
		}
		if _, err := firmware.ParseState(string(r.State)); err != nil {
			return bad("%v", err)
		}
		if r.Target.IsZero() || r.Time.IsZero() || !printableText(r.Error, 128) {
			return bad("target, time or error code")
		}
		f.Report = &Report{Key: j.Key, State: r.State, Target: r.Target, Error: r.Error, Time: r.Time}
	}
	return f, nil
}

// validForwardedKey reports whether key is a device's key: a normalized
// MAC, or "serial:" and a valid serial.
func validForwardedKey(key string) bool {
	if m, err := firmware.NormalizeMAC(key); err == nil {
		return m == key
	}
	return validSerialKey(key)
}

// validSerialKey reports whether key is "serial:" and a valid serial.
func validSerialKey(key string) bool {
	serial, ok := bytes.CutPrefix([]byte(key), []byte("serial:"))
	return ok && firmware.ValidName(string(serial)) == nil
}

// printableText reports whether s is at most max bytes of printable text
// (firmware.Printable).
func printableText(s string, max int) bool {
	return len(s) <= max && firmware.Printable(s)
}

// queueForward appends an inventory operation a replica recorded to its
// outbox, in the inventory's transaction.
func queueForward(b *bolt.Bucket, op *invOp) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	f := Forwarded{Key: op.key, CheckIn: op.checkIn, Report: op.report}
	if r := op.refusal; r != nil {
		f.Refusal = &Refusal{Reason: r.reason, Time: r.time}
	}
	data, err := EncodeForwarded(f)
	if err != nil {
		return err
	}
	return b.Put(seqKey(seq), data)
}

// Outbox returns up to limit of a replica's queued check-ins and reports
// numbered above after, in order (limit <= 0: 1000). A record that cannot
// be read is skipped and logged: it is the replica's own.
func (s *Store) Outbox(ctx context.Context, after uint64, limit int) ([]Forwarded, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Forwarded
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			f, err := DecodeForwarded(seq, v)
			if err != nil {
				s.log.Error("store: an outbox record cannot be read; it is not forwarded", "seq", seq, "err", err)
				continue
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// OutboxLen returns how many check-ins and reports a replica holds for
// its primary.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, func(tx *bolt.Tx) error {
		// The records are numbered without gaps and dropped from the
		// first (AckOutbox): no need to walk them.
		b := tx.Bucket(bucketOutbox)
		if k, _ := b.Cursor().First(); k != nil {
			n = int(b.Sequence() - binary.BigEndian.Uint64(k) + 1)
		}
		return nil
	})
	return n, err
}

// AckOutbox drops the outbox's records numbered up to through: the
// primary has applied them.
func (s *Store) AckOutbox(ctx context.Context, through uint64) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= through; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ApplyForwarded applies, on a primary, a batch of check-ins, reports and
// refusals the replica named name forwarded from its outbox epoch, in
// their order, and returns the number of the last one once it is durable
// (the acknowledgement). They commit in one inventory transaction with
// that number, so those at or below the number already applied for that
// epoch are skipped: a batch sent again is not applied twice; a new epoch
// (the replica's data directory made again) starts from zero.
//
// They are applied as the device side's are (RecordCheckIn, Report,
// RecordRefusal), in order, to the fleet index at once and to the records
// by the inventory writer, so rollout progress and thresholds count them
// as soon as ApplyForwarded returns: a check-in is offered what the
// replica offered (its Attempt follows), and a report is accepted only
// from a device that checked in, on the version it runs or was offered,
// as the primary's index knows it after the items before it (a check-in
// and its reports in the same batch are accepted in that order). A report
// refused so is skipped and noted in the device's history as a refusal
// (the replica's acknowledgement covers it: sending it again would not
// change the answer). ErrBusy and ErrUnavailable as RecordCheckIn's; a
// removed replica is ErrRevoked.
func (s *Store) ApplyForwarded(ctx context.Context, name string, epoch uint64, items []Forwarded) (uint64, error) {
	s.fwdMu.Lock()
	defer s.fwdMu.Unlock()
	r, err := s.Replica(ctx, name)
	if err != nil {
		return 0, err
	}
	if !r.Active() {
		return 0, fmt.Errorf("store: replica %s was removed: %w", name, ErrRevoked)
	}
	// What was applied: committed (the record), or queued and not yet
	// committed (a batch whose commit failed or was not waited for).
	last, durable := r.Progress.Forwarded, true
	if r.Progress.Epoch != epoch {
		last = 0
	}
	if q, ok := s.fwdQueued[name]; ok && q.epoch == epoch && q.last > last {
		last, durable = q.last, false
	}
	fb := &fwdBatch{name: name, epoch: epoch}
	for _, it := range items {
		if it.Seq <= last {
			continue
		}
		last = it.Seq
		op := &invOp{key: it.Key, checkIn: it.CheckIn, report: it.Report}
		if rf := it.Refusal; rf != nil {
			op.refusal = &refusal{reason: rf.Reason, time: rf.Time}
		}
		fb.ops = append(fb.ops, op)
	}
	fb.last = last
	if len(fb.ops) == 0 && r.Progress.Epoch == epoch {
		if !durable {
			if err := s.Flush(ctx); err != nil {
				return 0, fmt.Errorf("store: forwarded from replica %s: %w", name, err)
			}
		}
		return last, nil
	}
	refused, err := s.fleet.forwarded(fb, s.inv)
	if err != nil {
		return 0, fmt.Errorf("store: forwarded from replica %s: %w", name, err)
	}
	if s.fwdQueued == nil {
		s.fwdQueued = map[string]fwdMark{}
	}
	s.fwdQueued[name] = fwdMark{epoch: epoch, last: last}
	if refused > 0 {
		s.log.Warn("store: reports forwarded by a replica were refused: the primary knows no check-in of the device, or of the version it reported on; noted in the devices' history",
			"replica", name, "refused", refused)
	}
	if err := s.Flush(ctx); err != nil {
		return 0, fmt.Errorf("store: forwarded from replica %s: %w", name, err)
	}
	return last, nil
}

// fwdBatch is a batch a replica forwarded, as the inventory writer
// applies it: its operations (the index's attempts set), and the
// replica's progress to record in the same transaction.
type fwdBatch struct {
	name        string
	epoch, last uint64
	ops         []*invOp
}

// fwdMark is how far a replica's forwarded items were queued (see
// ApplyForwarded).
type fwdMark struct{ epoch, last uint64 }

// recordForwarded records, in the inventory transaction tx, the progress
// of the forwarded batches it applies. A replica removed meanwhile keeps
// its record as it is (what it forwarded is applied all the same).
func (s *Store) recordForwarded(tx *bolt.Tx, fwds []*fwdBatch) error {
	for _, fb := range fwds {
		r, err := activeReplica(tx, fb.name)
		if err != nil {
			s.log.Warn("store: the progress of a replica's forwarded batch is not recorded", "replica", fb.name, "err", err)
			continue
		}
		if r.Progress.Epoch != fb.epoch || fb.last > r.Progress.Forwarded {
			r.Progress.Epoch, r.Progress.Forwarded = fb.epoch, fb.last
		}
		r.Progress.Reports += int64(len(fb.ops))
		if err := putJSON(tx.Bucket(bucketReplicas), []byte(fb.name), r); err != nil {
			return err
		}
	}
	return nil
}
