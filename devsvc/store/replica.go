package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// Meta keys of a replica's store.
var (
	// keyReplicaOf: the primary a replica's store follows (its admin
	// address, as init was given it).
	keyReplicaOf = []byte("replica-of")
	// keyOutboxEpoch: 8 random bytes naming this store's outbox, so that
	// the primary tells a new outbox (the replica's data directory made
	// again) from the old one's numbers.
	keyOutboxEpoch = []byte("outbox-epoch")
)

func replicaOf(tx *bolt.Tx) string { return string(tx.Bucket(bucketMeta).Get(keyReplicaOf)) }

// MakeReplica makes an empty store the store of a replica of primary (its
// admin address): from then on its catalog changes only by ApplyChanges
// and ApplySnapshot, its history is the primary's, and the check-ins and
// reports it records are also queued for the primary (Outbox). It refuses
// a store that holds a catalog or a history already, and does nothing to
// one that is a replica of the same primary.
func (s *Store) MakeReplica(ctx context.Context, primary string) error {
	if primary == "" {
		return errors.New("store: make replica: no primary")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if was := replicaOf(tx); was != "" {
			if was == primary {
				return nil
			}
			return fmt.Errorf("it follows %s already", was)
		}
		if n := tx.Bucket(bucketHistory).Sequence(); n > 0 {
			return fmt.Errorf("it has a history of %d changes of its own: a replica starts from an empty data directory", n)
		}
		for _, b := range replicatedBuckets() {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				return fmt.Errorf("it holds %s of its own: a replica starts from an empty data directory", b)
			}
		}
		var epoch [8]byte
		rand.Read(epoch[:])
		epoch[0] |= 1 // never zero
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyOutboxEpoch, epoch[:]); err != nil {
			return err
		}
		return meta.Put(keyReplicaOf, []byte(primary))
	})
	if err != nil {
		return fmt.Errorf("store: make replica of %s: %w", primary, closedErr(err))
	}
	s.replicaOf = primary
	return nil
}

// restartOutbox gives a replica's restored store a new outbox epoch and
// empties its outbox. The primary has applied the restored outbox's
// numbers, and more, under the old epoch: new items numbered again from
// the backup's sequence would be skipped as applied. What the backup's
// outbox held was, most likely, forwarded after the backup was taken:
// sent again under a new epoch it would be applied twice.
func (s *Store) restartOutbox(ctx context.Context) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketOutbox); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketOutbox); err != nil {
			return err
		}
		var epoch [8]byte
		rand.Read(epoch[:])
		epoch[0] |= 1 // never zero
		return tx.Bucket(bucketMeta).Put(keyOutboxEpoch, epoch[:])
	})
}

// ReplicaOf returns the primary a replica's store follows, or "" for a
// primary's.
func (s *Store) ReplicaOf() string { return s.replicaOf }

// Position returns the history number of the last change a replica's
// store applied (the catalog's number).
func (s *Store) Position() uint64 { return s.Catalog().Seq() }

// FileSource opens the content of a file by its SHA-256, for ApplyChanges
// and ApplySnapshot: the follower's verified downloads. The store checks
// the size and digest again as it copies.
type FileSource func(sha [32]byte) (io.ReadCloser, error)

// NeededFiles returns the files of the updates that changes put and this
// store holds neither under that update nor under another (same SHA-256)
// that the changes leave in place: those to fetch before ApplyChanges.
// Each SHA-256 appears once.
func (s *Store) NeededFiles(changes []Change) ([]firmware.Image, error) {
	var recs []Record
	for _, c := range changes {
		recs = append(recs, c.Records...)
	}
	return s.neededFiles(recs)
}

// NeededSnapshotFiles is NeededFiles for a snapshot's records.
func (s *Store) NeededSnapshotFiles(records []Record) ([]firmware.Image, error) {
	return s.neededFiles(records)
}

func (s *Store) neededFiles(recs []Record) ([]firmware.Image, error) {
	cat := s.Catalog()
	final, err := finalUpdates(recs)
	if err != nil {
		return nil, err
	}
	// The updates whose files may be gone when the new ones are copied:
	// deleted by the changes, or held with other content than they put.
	gone := map[string]bool{}
	for _, r := range recs {
		if r.Bucket == string(bucketUpdates) && r.Delete {
			gone[string(r.Key)] = true
		}
	}
	for k, u := range final {
		if u == nil {
			continue
		}
		if was, ok := cat.Update(u.Identity, u.Version); ok && !sameFiles(was, *u) {
			gone[k] = true
		}
	}
	seen := map[[32]byte]bool{}
	var out []firmware.Image
	for _, k := range slices.Sorted(maps.Keys(final)) {
		u := final[k]
		if u == nil {
			continue
		}
		for _, f := range u.Files {
			if seen[f.SHA256] {
				continue
			}
			seen[f.SHA256] = true
			if cat.holds(f.SHA256, gone) {
				continue
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// finalUpdates returns what records leave of each update they name: its
// last content, or nil when the last of them deletes it.
func finalUpdates(recs []Record) (map[string]*firmware.Update, error) {
	final := map[string]*firmware.Update{}
	for _, r := range recs {
		if r.Bucket != string(bucketUpdates) {
			continue
		}
		if r.Delete {
			final[string(r.Key)] = nil
			continue
		}
		u, err := decodeUpdate(r.Key, r.Value)
		if err != nil {
			return nil, err
		}
		final[string(r.Key)] = &u
	}
	return final, nil
}

// ApplyChanges applies changes a replica received from its primary, in
// order, and returns the position it reached. Changes at or below the
// store's position are skipped (a change is never applied twice); the
// first new one must follow the position without a gap, and each must
// carry its history events, numbered after the one before. Every record is
// checked (a bucket this version knows, a value its bucket can hold)
// before anything is written.
//
// As Import does, the files of every update a change puts are written
// (from files, or from a file of the same SHA-256 the store holds), each
// checked against its size and SHA-256 and fsynced, before the one
// transaction that records the changes and the new position: a device is
// never offered a file the replica cannot serve, and a crash leaves the
// store at the old position or the new one. Changes are applied in as few
// transactions as can be: one ends before a change that puts an update the
// store holds with other content (a version removed and imported again),
// whose old files are removed first.
func (s *Store) ApplyChanges(ctx context.Context, changes []Change, files FileSource) (uint64, error) {
	if s.replicaOf == "" {
		return 0, errors.New("store: apply changes: this store is not a replica's (devsvc init --replica-of)")
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	pos := s.Catalog().Seq()
	i := 0
	for i < len(changes) && changes[i].Seq <= pos {
		i++
	}
	changes = changes[i:]
	prev := pos
	for _, c := range changes {
		if err := checkChange(c, prev); err != nil {
			return pos, fmt.Errorf("store: apply changes: %w", err)
		}
		prev = c.Seq
	}
	for len(changes) > 0 {
		n, err := s.chunk(changes)
		if err != nil {
			return pos, fmt.Errorf("store: apply changes: %w", err)
		}
		var recs []Record
		for _, c := range changes[:n] {
			recs = append(recs, c.Records...)
		}
		if err := s.applyRecords(ctx, recs, changes[n-1].Seq, files, false); err != nil {
			return pos, fmt.Errorf("store: apply changes %d to %d: %w", pos+1, changes[n-1].Seq, err)
		}
		pos = changes[n-1].Seq
		changes = changes[n:]
	}
	return pos, nil
}

// checkChange checks a change that follows prev: its history events are
// numbered prev+1 to its Seq, each record names a bucket this version
// replicates, and every value is one its bucket can hold.
func checkChange(c Change, prev uint64) error {
	if c.Seq <= prev {
		return fmt.Errorf("change %d follows change %d: out of order", c.Seq, prev)
	}
	next := prev + 1
	for _, r := range c.Records {
		if err := checkRecord(r); err != nil {
			return fmt.Errorf("change %d: %w", c.Seq, err)
		}
		if r.Bucket != string(bucketHistory) {
			continue
		}
		seq := binary.BigEndian.Uint64(r.Key)
		if seq != next || seq > c.Seq {
			return fmt.Errorf("change %d: history event %d where %d was due: a gap in the feed", c.Seq, seq, next)
		}
		next++
	}
	if next != c.Seq+1 {
		return fmt.Errorf("change %d: history events up to %d only: a gap in the feed", c.Seq, next-1)
	}
	return nil
}

// checkRecord checks one record a replica receives: a bucket this version
// knows and replicates (or the history), a key, and a value that bucket
// can hold, read as the store reads it.
func checkRecord(r Record) error {
	known := r.Bucket == string(bucketHistory)
	for _, b := range replicatedBuckets() {
		known = known || r.Bucket == string(b)
	}
	if !known {
		return fmt.Errorf("a record of %q, which this version does not replicate: run the same version of opendus on the replica as on the primary", r.Bucket)
	}
	if len(r.Key) == 0 || len(r.Key) > bolt.MaxKeySize {
		return fmt.Errorf("a record of %s with a key of %d bytes", r.Bucket, len(r.Key))
	}
	if r.Delete {
		if r.Bucket == string(bucketHistory) {
			return errors.New("a history event deleted")
		}
		return nil
	}
	if len(r.Value) > maxRecordBytes {
		return fmt.Errorf("record %s/%q: %d bytes", r.Bucket, r.Key, len(r.Value))
	}
	bad := func(err error) error { return fmt.Errorf("record %s/%q: %w", r.Bucket, r.Key, err) }
	switch r.Bucket {
	case string(bucketHistory):
		if len(r.Key) != 8 {
			return bad(errors.New("not an 8-byte history number"))
		}
		var e firmware.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return bad(err)
		}
		if e.Seq != binary.BigEndian.Uint64(r.Key) {
			return bad(fmt.Errorf("event numbered %d", e.Seq))
		}
	case string(bucketRules):
		var rule firmware.Rule
		if err := json.Unmarshal(r.Value, &rule); err != nil {
			return bad(err)
		}
		if err := rule.Identity.Validate(); err != nil || rule.Identity.Path() != string(r.Key) {
			return bad(fmt.Errorf("rule of %s (%v)", rule.Identity, err))
		}
	case string(bucketUpdates):
		if _, err := decodeUpdate(r.Key, r.Value); err != nil {
			return bad(err)
		}
	case string(bucketTestDevices):
		var d firmware.TestDevice
		if err := json.Unmarshal(r.Value, &d); err != nil {
			return bad(err)
		}
	case string(bucketAccounts):
		var a accountRecord
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return bad(err)
		}
		if _, err := a.account(); err != nil || string(accountKey(a.Name)) != string(r.Key) {
			return bad(fmt.Errorf("account %q (%v)", a.Name, err))
		}
	case string(bucketSites):
		var site firmware.Site
		if err := json.Unmarshal(r.Value, &site); err != nil {
			return bad(err)
		}
		if err := site.Validate(); err != nil || site.Name != string(r.Key) {
			return bad(fmt.Errorf("site %q (%v)", site.Name, err))
		}
	case string(bucketRollouts):
		if _, err := decodeRollout(r.Key, r.Value); err != nil {
			return bad(err)
		}
	case string(bucketAlarms):
		var a firmware.Alarm
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return bad(err)
		}
		if a.ID != string(r.Key) {
			return bad(fmt.Errorf("the alarm is %q", a.ID))
		}
	default:
		if !json.Valid(r.Value) {
			return bad(errors.New("not JSON"))
		}
	}
	return nil
}

// chunk returns how many of changes (at least one) can be applied in one
// transaction: up to the first that puts an update with other content
// than the store holds, or than an earlier change of the chunk put (a
// version removed and imported again): its files must go first.
func (s *Store) chunk(changes []Change) (int, error) {
	cat := s.Catalog()
	seen := map[string]firmware.Update{} // update key -> content held or put in the chunk
	for i, c := range changes {
		for _, r := range c.Records {
			if r.Bucket != string(bucketUpdates) || r.Delete {
				continue
			}
			u, err := decodeUpdate(r.Key, r.Value)
			if err != nil {
				return 0, err
			}
			k := string(r.Key)
			old, ok := seen[k]
			if !ok {
				old, ok = cat.Update(u.Identity, u.Version)
			}
			if ok && !sameFiles(old, u) {
				if i == 0 {
					return 0, fmt.Errorf("change %d puts update %s with other files than it has: %w", c.Seq, k, ErrConflict)
				}
				return i, nil
			}
			seen[k] = u
		}
	}
	return len(changes), nil
}

// sameFiles reports whether two updates have the same files.
func sameFiles(a, b firmware.Update) bool {
	return slices.EqualFunc(a.Files, b.Files, func(x, y firmware.Image) bool { return x == y })
}

// applyRecords writes the files of the updates recs put that the store
// does not hold, then, in one transaction, the records and the position
// seq (snapshot: every replicated bucket and the history replaced by
// recs), and removes the files of the updates it deleted once that
// committed.
func (s *Store) applyRecords(ctx context.Context, recs []Record, seq uint64, files FileSource, snapshot bool) error {
	cat := s.Catalog()
	final, err := finalUpdates(recs)
	if err != nil {
		return err
	}
	// The updates the records leave, whose files are written first unless
	// the store holds them already.
	var news []firmware.Update
	for _, k := range slices.Sorted(maps.Keys(final)) {
		u := final[k]
		if u == nil {
			continue
		}
		if was, ok := cat.Update(u.Identity, u.Version); ok && sameFiles(was, *u) {
			continue
		}
		news = append(news, *u)
	}
	var stagedUpdates []*staged
	committed := false
	defer func() {
		if !committed {
			for i := len(stagedUpdates) - 1; i >= 0; i-- {
				s.unstage(stagedUpdates[i])
			}
		}
	}()
	for _, u := range news {
		st := &staged{dir: u.Dir()}
		stagedUpdates = append(stagedUpdates, st)
		imp := firmware.ImportUpdate{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType}
		for _, f := range u.Files {
			sum := f.SHA256
			imp.Files = append(imp.Files, firmware.ImportFile{Name: f.Name, Role: f.Role, Size: f.Size, SHA256: &sum,
				Open: func() (io.ReadCloser, error) { return s.openSource(cat, sum, files) }})
		}
		if _, err := s.stage(ctx, st, imp, &progress{}); err != nil {
			return fmt.Errorf("update %s: %w", st.dir, err)
		}
	}
	var removed []firmware.Update
	var newCat *Catalog
	err = s.db.Update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		ups := tx.Bucket(bucketUpdates)
		gone := func(k []byte) error {
			if v := ups.Get(k); v != nil && final[string(k)] == nil {
				u, err := decodeUpdate(k, v)
				if err != nil {
					return err
				}
				removed = append(removed, u)
			}
			return nil
		}
		if snapshot {
			keep := map[string]map[string]bool{}
			for _, r := range recs {
				if keep[r.Bucket] == nil {
					keep[r.Bucket] = map[string]bool{}
				}
				keep[r.Bucket][string(r.Key)] = true
			}
			for _, name := range append(replicatedBuckets(), bucketHistory) {
				b := tx.Bucket(name)
				var drop [][]byte
				b.ForEach(func(k, _ []byte) error {
					if !keep[string(name)][string(k)] {
						drop = append(drop, bytes.Clone(k))
					}
					return nil
				})
				for _, k := range drop {
					if string(name) == string(bucketUpdates) {
						if err := gone(k); err != nil {
							return err
						}
					}
					if err := b.Delete(k); err != nil {
						return err
					}
				}
			}
		}
		for _, r := range recs {
			b := tx.Bucket([]byte(r.Bucket))
			if r.Delete {
				if r.Bucket == string(bucketUpdates) {
					if err := gone(r.Key); err != nil {
						return err
					}
				}
				if err := b.Delete(r.Key); err != nil {
					return err
				}
				continue
			}
			if err := b.Put(r.Key, r.Value); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketHistory).SetSequence(seq); err != nil {
			return err
		}
		var err error
		newCat, err = loadCatalog(tx, s.storedZone)
		return err
	})
	if err != nil {
		return closedErr(err)
	}
	committed = true
	s.publishApplied(newCat)
	for _, u := range removed {
		s.removeUpdateFiles(u)
	}
	return nil
}

// publishApplied installs a replica's new catalog, even one with a lower
// number (a snapshot of a primary restored from a backup).
func (s *Store) publishApplied(cat *Catalog) {
	s.cat.Store(cat)
	s.changed.wake()
}

// openSource opens the content of sha: a file the store holds with that
// digest, else from files.
func (s *Store) openSource(cat *Catalog, sha [32]byte, files FileSource) (io.ReadCloser, error) {
	if u, im, ok := cat.FileBySHA256(sha); ok {
		if f, err := s.root.Open(u.Dir() + "/" + im.Name); err == nil {
			return f, nil
		}
	}
	if files == nil {
		return nil, fmt.Errorf("no source for the file with SHA-256 %x", sha)
	}
	return files(sha)
}

// ApplySnapshot replaces a replica's catalog and history with a snapshot
// of its primary's at history number seq (Store.Snapshot), as one
// transaction, after writing the files of every update it holds that the
// store does not; the files of the updates it no longer holds are removed
// after. Records are checked as by ApplyChanges. An update the store holds
// with other content than the snapshot's (a version removed and imported
// again on the primary) is removed first, in a transaction of its own.
func (s *Store) ApplySnapshot(ctx context.Context, seq uint64, records []Record, files FileSource) error {
	if s.replicaOf == "" {
		return errors.New("store: apply snapshot: this store is not a replica's (devsvc init --replica-of)")
	}
	next := uint64(1)
	for _, r := range records {
		if err := checkRecord(r); err != nil {
			return fmt.Errorf("store: apply snapshot %d: %w", seq, err)
		}
		if r.Delete {
			return fmt.Errorf("store: apply snapshot %d: a snapshot deletes nothing", seq)
		}
		if r.Bucket == string(bucketHistory) {
			if n := binary.BigEndian.Uint64(r.Key); n != next || n > seq {
				return fmt.Errorf("store: apply snapshot %d: history event %d where %d was due", seq, n, next)
			}
			next++
		}
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	cat := s.Catalog()
	var conflicts []Record
	for _, r := range records {
		if r.Bucket != string(bucketUpdates) {
			continue
		}
		u, err := decodeUpdate(r.Key, r.Value)
		if err != nil {
			return fmt.Errorf("store: apply snapshot %d: %w", seq, err)
		}
		if was, ok := cat.Update(u.Identity, u.Version); ok && !sameFiles(was, u) {
			conflicts = append(conflicts, Record{Bucket: r.Bucket, Key: r.Key, Delete: true})
		}
	}
	if len(conflicts) > 0 {
		if err := s.applyRecords(ctx, conflicts, cat.Seq(), nil, false); err != nil {
			return fmt.Errorf("store: apply snapshot %d: removing updates it holds with other files: %w", seq, err)
		}
	}
	if err := s.applyRecords(ctx, records, seq, files, true); err != nil {
		return fmt.Errorf("store: apply snapshot %d: %w", seq, err)
	}
	return nil
}

// OpenBySHA256 opens a stored file of a committed update by its SHA-256:
// what a replica fetches. Any update's file with that digest will do.
func (s *Store) OpenBySHA256(sha [32]byte) (io.ReadSeekCloser, firmware.Image, error) {
	if s.closed.Load() {
		return nil, firmware.Image{}, ErrClosed
	}
	u, im, ok := s.Catalog().FileBySHA256(sha)
	if !ok {
		return nil, firmware.Image{}, fmt.Errorf("store: no stored file has SHA-256 %x: %w", sha, ErrNotFound)
	}
	f, err := s.root.Open(u.Dir() + "/" + im.Name)
	if err != nil {
		return nil, firmware.Image{}, fmt.Errorf("store: open %s/%s: %w", u.Dir(), im.Name, err)
	}
	return f, im, nil
}

// OutboxEpoch returns the number naming a replica's outbox (see
// firmware.ReplicaProgress.Epoch); 0 on a primary's store.
func (s *Store) OutboxEpoch(ctx context.Context) (uint64, error) {
	var epoch uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyOutboxEpoch); len(v) == 8 {
			epoch = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return epoch, err
}

// holds reports whether an update of c other than those named in skip
// holds a file with this SHA-256.
func (c *Catalog) holds(sha [32]byte, skip map[string]bool) bool {
	for k, u := range c.updates {
		if skip[updateKeyOf(k.id, k.v)] {
			continue
		}
		for _, im := range u.Files {
			if im.SHA256 == sha {
				return true
			}
		}
	}
	return false
}

// FileBySHA256 returns a committed update holding a file with this
// SHA-256, and the file.
func (c *Catalog) FileBySHA256(sha [32]byte) (firmware.Update, firmware.Image, bool) {
	for _, u := range c.updates {
		for _, im := range u.Files {
			if im.SHA256 == sha {
				return u, im, true
			}
		}
	}
	return firmware.Update{}, firmware.Image{}, false
}
