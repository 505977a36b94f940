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
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// bucketOutbox: on a replica's store, the check-ins and reports it
// recorded, queued for its primary: 8-byte big-endian number (the
// outbox's own sequence) -> EncodeForwarded.
var bucketOutbox = []byte("outbox")

// Forwarded is a check-in or a report a replica recorded, as it forwards
// it to its primary: numbered in the replica's outbox (Seq), so that a
// batch sent again is not applied twice.
type Forwarded struct {
	Seq uint64
	// Key is the device's key; exactly one of CheckIn and Report is set.
	Key     string
	CheckIn *firmware.Device
	Report  *Report
}

// forwardedJSON is Forwarded's encoding.
type forwardedJSON struct {
	Key     string           `json:"key"`
	CheckIn *firmware.Device `json:"checkIn,omitempty"`
	Report  *reportJSON      `json:"report,omitempty"`
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
	return json.Marshal(j)
}

// Limits of a forwarded check-in, as deviceproto's.
const (
	maxForwardedBytes   = 64 << 10
	maxForwardedModules = 32
	maxForwardedText    = 256
)

var errForwarded = errors.New("malformed forwarded check-in or report")

// DecodeForwarded reads a forwarded check-in or report as a primary
// receives it from a replica, and checks every field as the device side
// checks a device's message: the key is the device's (its normalized MAC,
// else serial:SERIAL), identity names and module names valid, versions
// parsed, a known location and state, printable text of bounded length,
// an address that parses. Errors wrap an error saying what is wrong.
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
	switch {
	case (j.CheckIn == nil) == (j.Report == nil):
		return bad("want a check-in or a report")
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
		// A check-in carries no report fields: those stay the primary's.
		d.State, d.Target, d.Error, d.LastReport, d.LastUpdate = "", firmware.Version{}, "", time.Time{}, time.Time{}
		f.CheckIn = d
	default:
		r := j.Report
		if _, ok := firmware.DeviceKey(j.Key, ""); !ok && !validSerialKey(j.Key) {
			return bad("key %q", j.Key)
		}
		if m, err := firmware.NormalizeMAC(j.Key); err == nil && m != j.Key {
			return bad("key %q is not normalized", j.Key)
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

// validSerialKey reports whether key is "serial:" and a valid serial.
func validSerialKey(key string) bool {
	serial, ok := bytes.CutPrefix([]byte(key), []byte("serial:"))
	return ok && firmware.ValidName(string(serial)) == nil
}

// printableText reports whether s is at most max bytes of UTF-8 without
// control characters.
func printableText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// queueForward appends an inventory operation a replica recorded to its
// outbox, in the inventory's transaction.
func queueForward(b *bolt.Bucket, op *invOp) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	data, err := EncodeForwarded(Forwarded{Key: op.key, CheckIn: op.checkIn, Report: op.report})
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
		n = tx.Bucket(bucketOutbox).Stats().KeyN
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

// ApplyForwarded applies, on a primary, a batch of check-ins and reports
// the replica named name forwarded from its outbox epoch, in their order,
// in one transaction with the number of the last one, which it returns
// (the acknowledgement). Those at or below the number already applied for
// that epoch are skipped, so a batch sent again is not applied twice; a
// new epoch (the replica's data directory made again) starts from zero.
// They are applied as the device side's are (a report only to a device
// that checked in), without its checks of the offer: the replica made
// them. A removed replica is ErrRevoked.
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
	last := r.Progress.Forwarded
	if r.Progress.Epoch != epoch {
		last = 0
	}
	batch := map[string][]*invOp{}
	n := 0
	for _, it := range items {
		if it.Seq <= last {
			continue
		}
		last = it.Seq
		op := &invOp{key: it.Key, checkIn: it.CheckIn, report: it.Report}
		batch[it.Key] = append(batch[it.Key], op)
		n++
	}
	if n == 0 && r.Progress.Epoch == epoch {
		return last, nil
	}
	err = s.writeBatchWith(batch, func(tx *bolt.Tx) error {
		rr, err := activeReplica(tx, name)
		if err != nil {
			return err
		}
		rr.Progress.Epoch, rr.Progress.Forwarded = epoch, last
		rr.Progress.Reports += int64(n)
		return putJSON(tx.Bucket(bucketReplicas), []byte(name), rr)
	})
	if err != nil {
		return 0, fmt.Errorf("store: forwarded from replica %s: %w", name, closedErr(err))
	}
	return last, nil
}
