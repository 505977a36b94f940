package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// History returns the catalog events numbered above since, ascending, at
// most limit of them (limit <= 0: all).
func (s *Store) History(ctx context.Context, since uint64, limit int) ([]firmware.Event, error) {
	var es []firmware.Event
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Seek(seqKey(since + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(es) == limit {
				break
			}
			var e firmware.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			es = append(es, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	return es, nil
}

// ctxWriter stops a long write when its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (cw ctxWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	return cw.w.Write(p)
}

// Stats counts what the store holds.
type Stats struct {
	Rules, Updates, Devices, TestDevices, Accounts int
	// Seq is the last history number.
	Seq uint64
	// SchemaVersion is the database's schema version.
	SchemaVersion int
	// DBBytes is the size of the database file.
	DBBytes int64
}

// Stats returns counts of what the store holds, from one read transaction.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		st.Rules = tx.Bucket(bucketRules).Stats().KeyN
		st.Updates = tx.Bucket(bucketUpdates).Stats().KeyN
		st.Devices = tx.Bucket(bucketDevices).Stats().KeyN
		st.TestDevices = tx.Bucket(bucketTestDevices).Stats().KeyN
		st.Accounts = tx.Bucket(bucketAccounts).Stats().KeyN
		st.Seq = tx.Bucket(bucketHistory).Sequence()
		v, err := strconv.Atoi(string(tx.Bucket(bucketMeta).Get(keySchema)))
		if err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		st.SchemaVersion = v
		st.DBBytes = tx.Size()
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}
