package store

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// The signed update metadata (package updatemeta) is kept in the
// metadata bucket as the bytes devices are served, so that a replica
// following the store relays them unchanged: "root/N" (the root chain),
// "timestamp", "snapshot", "targets" (JSON, signed), and "pieces/<file
// SHA-256>" (a JSON string: the file's piece list, computed once). The
// keys that sign them never enter the store. Writing them is a catalog
// change of its own, with a history event (ActionMetadataSign), so that
// it enters the change feed at once: a replica serves a re-signed
// timestamp as soon as its primary does, never one that expired.

// PutMetadata writes the records recs (name to JSON bytes) in one catalog
// change, if the catalog is still at the history number base (the one
// the records were signed for); it returns the history number of the
// change, and false without writing anything when the catalog moved on
// meanwhile (sign again).
func (s *Store) PutMetadata(ctx context.Context, recs map[string][]byte, base uint64, detail string) (uint64, bool, error) {
	var seq uint64
	written := false
	err := s.change(ctx, firmware.SystemActor, func(c *change) error {
		h := c.tx.Bucket(bucketHistory)
		if h.Sequence() != base {
			return nil
		}
		b := c.tx.Bucket(bucketMetadata)
		for k, v := range recs {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if err := c.event(firmware.Event{Action: ActionMetadataSign, Detail: detail}); err != nil {
			return err
		}
		seq, written = h.Sequence(), true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: put metadata: %w", err)
	}
	return seq, written, nil
}

// Metadata returns the metadata records whose names start with prefix.
func (s *Store) Metadata(ctx context.Context, prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMetadata).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			out[string(k)] = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: metadata: %w", err)
	}
	return out, nil
}
