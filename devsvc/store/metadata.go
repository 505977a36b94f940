package store

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The signed update metadata (package updatemeta) is kept in the
// metadata bucket as the bytes devices are served, so that a replica
// following the store relays them unchanged: "root/N" (the root chain),
// "timestamp", "snapshot", "targets" (JSON, signed), and "pieces/<file
// SHA-256>" (a JSON string: the file's piece list, computed once). The
// keys that sign them never enter the store. Writing them is no catalog
// change: no history event, no new catalog snapshot.

// PutMetadata writes the records recs (name to JSON bytes) in one
// transaction.
func (s *Store) PutMetadata(ctx context.Context, recs map[string][]byte) error {
	err := s.change(ctx, "devsvc", func(c *change) error {
		b := c.tx.Bucket(bucketMetadata)
		for k, v := range recs {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put metadata: %w", err)
	}
	return nil
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
