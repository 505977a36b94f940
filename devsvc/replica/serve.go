package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opendus/opendus/devsvc/store"
)

// ServeOptions are how a primary serves one replica's feed.
type ServeOptions struct {
	// NoAccounts leaves the device accounts (their NT hashes) out.
	NoAccounts bool
	// HeartbeatEvery is how often an idle stream gets a heartbeat;
	// default HeartbeatEvery.
	HeartbeatEvery time.Duration
	// MaxBytes bounds a message of changes or of a snapshot's records
	// (one record or change may be larger: it goes alone); default 1 MiB.
	MaxBytes int
}

// maxSnapshotPartRecords bounds the records of one snapshot message.
const maxSnapshotPartRecords = 10000

// ServeFeed is the primary's side of a replica's Follow stream: it sends
// the changes of st after since, in order, as they commit, until ctx is
// done or send fails. It starts with a snapshot when asked to, when since
// is 0 (a new replica), or when the feed does not reach back to since
// (dropped, or the replica is ahead of a primary restored from a backup),
// and when the feed falls behind while it sends; else with a heartbeat.
// An idle stream gets a heartbeat every HeartbeatEvery, so that the
// replica knows the primary is there and how far it is.
func ServeFeed(ctx context.Context, st *store.Store, since uint64, snapshot bool, o ServeOptions, send func(Message) error) error {
	if o.HeartbeatEvery <= 0 {
		o.HeartbeatEvery = HeartbeatEvery
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if snapshot || since == 0 {
		var err error
		if since, err = sendSnapshot(ctx, st, o, send); err != nil {
			return err
		}
	} else if err := send(Message{Head: st.Catalog().Seq(), Time: time.Now()}); err != nil {
		// A heartbeat first: the replica knows at once that it follows.
		return err
	}
	for {
		changes, head, ok, err := st.Feed(ctx, since, o.MaxBytes)
		if err != nil {
			return err
		}
		if !ok {
			if since, err = sendSnapshot(ctx, st, o, send); err != nil {
				return err
			}
			continue
		}
		if len(changes) > 0 {
			if o.NoAccounts {
				for i := range changes {
					changes[i].Records = withoutAccounts(changes[i].Records)
				}
			}
			if err := send(Message{Changes: changes, Head: head, Time: time.Now()}); err != nil {
				return err
			}
			since = changes[len(changes)-1].Seq
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, o.HeartbeatEvery)
		err = st.WaitChange(wctx, since)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := send(Message{Head: st.Catalog().Seq(), Time: time.Now()}); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
}

// sendSnapshot sends a snapshot in pieces and returns its number.
func sendSnapshot(ctx context.Context, st *store.Store, o ServeOptions, send func(Message) error) (uint64, error) {
	seq, recs, err := st.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	if o.NoAccounts {
		recs = withoutAccounts(recs)
	}
	for {
		n, size := 0, 0
		for n < len(recs) && n < maxSnapshotPartRecords && (n == 0 || size+len(recs[n].Key)+len(recs[n].Value) <= o.MaxBytes) {
			size += len(recs[n].Key) + len(recs[n].Value)
			n++
		}
		last := n == len(recs)
		if err := send(Message{Snapshot: &SnapshotPart{Seq: seq, Records: recs[:n], Last: last}, Head: seq, Time: time.Now()}); err != nil {
			return 0, err
		}
		recs = recs[n:]
		if last {
			return seq, nil
		}
	}
}

// withoutAccounts drops the records of the device accounts.
func withoutAccounts(recs []store.Record) []store.Record {
	out := recs[:0:0]
	for _, r := range recs {
		if !r.IsAccount() {
			out = append(out, r)
		}
	}
	return out
}

// ServeFile writes the content of st's stored file with this SHA-256
// from offset to w: the primary's side of FetchFile. A file st does not
// hold is store.ErrNotFound; an offset outside it an error.
func ServeFile(st *store.Store, sha [32]byte, offset int64, w io.Writer) (int64, error) {
	f, im, err := st.OpenBySHA256(sha)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if offset < 0 || offset > im.Size {
		return 0, fmt.Errorf("offset %d outside the file's %d bytes", offset, im.Size)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, io.LimitReader(f, im.Size-offset))
}
