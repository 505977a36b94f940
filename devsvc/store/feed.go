package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The change feed: what a replica follows (see the package documentation,
// "Change feed").
var (
	// bucketFeed: 8-byte big-endian history number of the last event of
	// a catalog transaction -> the records that transaction put and
	// deleted in the replicated buckets (encodeRecords).
	bucketFeed = []byte("feed")
	// keyFeedFrom (in meta): the history number from which the feed is
	// complete: every catalog transaction after it has its entry.
	keyFeedFrom = []byte("feed-from")
	// keyFeedPending (in meta): the records of the replicated buckets
	// that transactions without history events changed since the last
	// feed entry (encodeRecords), which the next entry carries.
	keyFeedPending = []byte("feed-pending")
)

// localBuckets are the buckets a replica never receives: what is the
// service's own (its inventory, its registry of admin certificates, its
// console admins, its replicas, its outbox, the feed itself) and the meta
// bucket. The history is replicated, but travels as the events of each
// change rather than as records of the diff. Every other bucket is
// replicated: a bucket added later is replicated unless it is named here
// (TestReplicatedBuckets asks for the decision).
//
// Replicated besides the rules, updates, test devices and accounts: the
// sites (a replica finds its devices' sites and windows as the primary
// does), the rollouts (a replica's offers follow the primary's waves,
// pauses and stops: it steps none itself) and the alarms (a replica's
// admins see the primary's, in devsvc alarms, status and the console; a
// replica raises none of its own). The console admins stay local: a
// replica's console changes nothing, its admins are the site's own
// (admins add --offline) or the directory's, and the primary's console
// passwords' hashes have no reason to leave it, unlike the device
// accounts' NT hashes, which devices signing in at the replica need.
// The signed update metadata replicates too, byte for byte: a replica
// serves what its primary signed (it holds no keys), and its devices
// verify it as they would the primary's.
var localBuckets = map[string]bool{
	string(bucketMeta): true, string(bucketDevices): true, string(bucketHistory): true, string(bucketAdminCerts): true,
	string(bucketConsoleAdmins): true, string(bucketFeed): true, string(bucketReplicas): true, string(bucketOutbox): true,
}

// replicatedBuckets returns the names of the buckets a replica receives,
// in allBuckets' order.
func replicatedBuckets() [][]byte {
	var out [][]byte
	for _, b := range allBuckets {
		if !localBuckets[string(b)] {
			out = append(out, b)
		}
	}
	return out
}

// DefaultFeedKeep is Options.FeedKeep's default: the feed keeps the
// changes of the last 100,000 history numbers; a replica further behind
// starts again from a snapshot.
const DefaultFeedKeep = 100000

// Record is one key of a replicated bucket as a change leaves it: its new
// value, or Delete. History events travel as records of the bucket
// "history", keyed by their 8-byte number.
type Record struct {
	Bucket string
	Key    []byte
	Value  []byte
	Delete bool
}

// Change is one catalog transaction of the primary, as a replica applies
// it: the history events it appended and the records it put and deleted.
// Seq is the number of its last event; its events are those numbered
// after the previous change's Seq, up to Seq.
type Change struct {
	Seq     uint64
	Records []Record
}

// size is about how many bytes c takes on the wire.
func (c *Change) size() int {
	n := 16
	for _, r := range c.Records {
		n += len(r.Bucket) + len(r.Key) + len(r.Value) + 8
	}
	return n
}

// feedBefore is the replicated buckets as a change found them, to tell
// what it changed.
type feedBefore map[string]map[string][]byte

// snapshotReplicated copies the replicated buckets of tx (keys and
// values: bolt's memory is not the caller's after a write).
func snapshotReplicated(tx *bolt.Tx) feedBefore {
	before := feedBefore{}
	for _, name := range replicatedBuckets() {
		m := map[string][]byte{}
		if b := tx.Bucket(name); b != nil {
			b.ForEach(func(k, v []byte) error {
				m[string(k)] = bytes.Clone(v)
				return nil
			})
		}
		before[string(name)] = m
	}
	return before
}

// diff returns the records that turn before into what tx holds now.
func (before feedBefore) diff(tx *bolt.Tx) []Record {
	var out []Record
	for _, name := range replicatedBuckets() {
		old := before[string(name)]
		seen := make(map[string]bool, len(old))
		if b := tx.Bucket(name); b != nil {
			b.ForEach(func(k, v []byte) error {
				seen[string(k)] = true
				if ov, ok := old[string(k)]; !ok || !bytes.Equal(ov, v) {
					out = append(out, Record{Bucket: string(name), Key: bytes.Clone(k), Value: bytes.Clone(v)})
				}
				return nil
			})
		}
		var gone []string
		for k := range old {
			if !seen[k] {
				gone = append(gone, k)
			}
		}
		slices.Sort(gone)
		for _, k := range gone {
			out = append(out, Record{Bucket: string(name), Key: []byte(k), Delete: true})
		}
	}
	return out
}

// recordFeed writes the feed entry of the change tx is committing: the
// records changed since the last entry (carried, see carryFeed) and by
// this change, under the number of its last event. It keeps the feed to
// feedKeep numbers, moving feed-from forward as it drops old entries (a
// few per change, so that no change pays for many).
func (s *Store) recordFeed(tx *bolt.Tx, before feedBefore) error {
	seq := tx.Bucket(bucketHistory).Sequence()
	f := tx.Bucket(bucketFeed)
	recs, err := withPending(tx, before.diff(tx))
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketMeta).Delete(keyFeedPending); err != nil {
		return err
	}
	if err := f.Put(seqKey(seq), encodeRecords(recs)); err != nil {
		return err
	}
	if seq <= s.feedKeep {
		return nil
	}
	oldest := seq - s.feedKeep
	c := f.Cursor()
	var from uint64
	for range 16 {
		k, _ := c.First()
		if k == nil || binary.BigEndian.Uint64(k) > oldest {
			break
		}
		from = binary.BigEndian.Uint64(k)
		if err := c.Delete(); err != nil {
			return err
		}
	}
	if from == 0 {
		return nil
	}
	cur := feedFrom(tx)
	if from > cur {
		return tx.Bucket(bucketMeta).Put(keyFeedFrom, seqKey(from))
	}
	return nil
}

// carryFeed keeps what a transaction without history events (an open
// alarm's counts, say) changed in the replicated buckets for the next
// feed entry: it has no history number of its own, and the next change's
// diff would not see it.
func carryFeed(tx *bolt.Tx, before feedBefore) error {
	d := before.diff(tx)
	if len(d) == 0 {
		return nil
	}
	recs, err := withPending(tx, d)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFeedPending, encodeRecords(recs))
}

// withPending returns the records carried for the next feed entry
// followed by recs, leaving out the carried ones recs changes again.
func withPending(tx *bolt.Tx, recs []Record) ([]Record, error) {
	v := tx.Bucket(bucketMeta).Get(keyFeedPending)
	if v == nil {
		return recs, nil
	}
	pending, err := decodeRecords(v)
	if err != nil {
		return nil, fmt.Errorf("the records carried for the next feed entry: %w", err)
	}
	again := make(map[[2]string]bool, len(recs))
	for _, r := range recs {
		again[[2]string{r.Bucket, string(r.Key)}] = true
	}
	out := make([]Record, 0, len(pending)+len(recs))
	for _, r := range pending {
		if !again[[2]string{r.Bucket, string(r.Key)}] {
			out = append(out, r)
		}
	}
	return append(out, recs...), nil
}

// feedFrom returns the number from which tx's feed is complete.
func feedFrom(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyFeedFrom); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// initFeed starts the feed of a database that has none: it is complete
// from the history's current number on (a replica of an older history
// starts from a snapshot).
func initFeed(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyFeedFrom) != nil {
		return nil
	}
	return meta.Put(keyFeedFrom, seqKey(tx.Bucket(bucketHistory).Sequence()))
}

// Limits of the feed a replica receives.
const (
	// maxChangeBytes bounds the changes Feed returns at once (one may be
	// larger: it is returned alone).
	maxChangeBytes = 1 << 20
	// maxRecordBytes bounds one record a replica accepts (a rule, an
	// update, an account are a few KiB).
	maxRecordBytes = 1 << 20
)

// Feed returns the changes after since, in order, at most about maxBytes
// of them (at least one when there is one; maxBytes <= 0: 1 MiB), and the
// history number the store has reached (head). ok is false when the feed
// no longer holds every change after since (they were dropped, or the
// store kept none before feed-from): the caller starts from a Snapshot.
// Changes are only ever whole catalog transactions.
func (s *Store) Feed(ctx context.Context, since uint64, maxBytes int) (changes []Change, head uint64, ok bool, err error) {
	if maxBytes <= 0 {
		maxBytes = maxChangeBytes
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		head = tx.Bucket(bucketHistory).Sequence()
		if since < feedFrom(tx) || since > head {
			return nil
		}
		ok = true
		hist := tx.Bucket(bucketHistory)
		c := tx.Bucket(bucketFeed).Cursor()
		prev, size := since, 0
		for k, v := c.Seek(seqKey(since + 1)); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			recs, err := decodeRecords(v)
			if err != nil {
				return fmt.Errorf("feed entry %d: %w", seq, err)
			}
			ch := Change{Seq: seq}
			hc := hist.Cursor()
			for hk, hv := hc.Seek(seqKey(prev + 1)); hk != nil && binary.BigEndian.Uint64(hk) <= seq; hk, hv = hc.Next() {
				ch.Records = append(ch.Records, Record{Bucket: string(bucketHistory), Key: bytes.Clone(hk), Value: bytes.Clone(hv)})
			}
			ch.Records = append(ch.Records, recs...)
			if len(changes) > 0 && size+ch.size() > maxBytes {
				break
			}
			size += ch.size()
			changes = append(changes, ch)
			prev = seq
		}
		return nil
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: feed: %w", err)
	}
	return changes, head, ok, nil
}

// Snapshot returns every record of the replicated buckets and of the
// history as of one history number, seq: what a replica starts from. It
// is read in one transaction and held in memory, so that a slow reader
// does not hold the database.
func (s *Store) Snapshot(ctx context.Context) (seq uint64, records []Record, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		seq = tx.Bucket(bucketHistory).Sequence()
		records = records[:0]
		for _, name := range append(replicatedBuckets(), bucketHistory) {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				records = append(records, Record{Bucket: string(name), Key: bytes.Clone(k), Value: bytes.Clone(v)})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return seq, records, nil
}

// FeedFrom returns the history number from which the feed is complete.
func (s *Store) FeedFrom(ctx context.Context) (uint64, error) {
	var from uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		from = feedFrom(tx)
		return nil
	})
	return from, err
}

// notifier wakes those waiting for the catalog to move past a number.
type notifier struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced at every publication
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// WaitChange waits until the catalog's history number is above seq, or
// ctx is done (its error), or the store is closed (ErrClosed).
func (s *Store) WaitChange(ctx context.Context, seq uint64) error {
	for {
		ch := s.changed.wait()
		if s.Catalog().Seq() > seq {
			return nil
		}
		if s.closed.Load() {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// Record kinds in encodeRecords' form.
const (
	recPut    = 0
	recDelete = 1
)

// encodeRecords writes records in the feed's binary form: their count,
// then each as its kind (put or delete), bucket, key and, for a put,
// value, every length a uvarint.
func encodeRecords(rs []Record) []byte {
	b := binary.AppendUvarint(nil, uint64(len(rs)))
	for _, r := range rs {
		kind := byte(recPut)
		if r.Delete {
			kind = recDelete
		}
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(len(r.Bucket)))
		b = append(b, r.Bucket...)
		b = binary.AppendUvarint(b, uint64(len(r.Key)))
		b = append(b, r.Key...)
		if !r.Delete {
			b = binary.AppendUvarint(b, uint64(len(r.Value)))
			b = append(b, r.Value...)
		}
	}
	return b
}

var errRecords = errors.New("malformed feed records")

// decodeRecords reads encodeRecords' form. Values and keys are copies.
func decodeRecords(b []byte) ([]Record, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad count", errRecords)
	}
	b = b[k:]
	field := func(what string, max int) ([]byte, error) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || l > uint64(max) {
			return nil, fmt.Errorf("%w: bad %s length", errRecords, what)
		}
		v := bytes.Clone(b[k : k+int(l)])
		b = b[k+int(l):]
		return v, nil
	}
	out := make([]Record, 0, n)
	for range n {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: %d of %d records", errRecords, len(out), n)
		}
		kind := b[0]
		b = b[1:]
		if kind != recPut && kind != recDelete {
			return nil, fmt.Errorf("%w: record kind %d", errRecords, kind)
		}
		bucket, err := field("bucket", 64)
		if err != nil {
			return nil, err
		}
		key, err := field("key", bolt.MaxKeySize)
		if err != nil {
			return nil, err
		}
		r := Record{Bucket: string(bucket), Key: key, Delete: kind == recDelete}
		if !r.Delete {
			if r.Value, err = field("value", maxRecordBytes); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the records", errRecords, len(b))
	}
	return out, nil
}

// IsAccount reports whether r is a device account's (its NT hash): what a
// primary leaves out of the feed of a replica that does not take them.
func (r Record) IsAccount() bool { return r.Bucket == string(bucketAccounts) }
