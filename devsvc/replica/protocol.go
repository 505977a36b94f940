package replica

import (
	"context"
	"io"
	"time"

	"github.com/opendus/opendus/devsvc/store"
)

// Message is what a primary sends a following replica: a piece of a
// snapshot, or changes, or nothing but its head (a heartbeat).
type Message struct {
	// Snapshot is a piece of a snapshot: the replica gathers the pieces
	// until the Last one and applies them at once.
	Snapshot *SnapshotPart
	// Changes are the next changes after what the replica has, in order.
	Changes []store.Change
	// Head is the primary's history number when it sent the message.
	Head uint64
	// Time is the primary's clock when it sent the message.
	Time time.Time
}

// SnapshotPart is a piece of a snapshot of the primary's catalog and
// history at Seq.
type SnapshotPart struct {
	Seq     uint64
	Records []store.Record
	Last    bool
}

// Upstream is what a replica tells its primary: how far it has applied
// the feed, where its devices reach it, and the check-ins and reports it
// recorded (its outbox's, numbered in its epoch).
type Upstream struct {
	Position    uint64
	InternalURL string
	ExternalURL string
	Version     string
	Epoch       uint64
	Items       []store.Forwarded
}

// UpstreamReply is the primary's answer to an Upstream: the number of the
// last forwarded item it applied (the replica drops those up to it from
// its outbox) and its head.
type UpstreamReply struct {
	Acked uint64
	Head  uint64
}

// Primary is what a follower needs of its primary: the admin API's
// Replication service (adminapi.ReplicaClient), or a fake in tests.
type Primary interface {
	// Follow streams the changes after since to fn, a snapshot first
	// when the primary's feed does not reach back to since or when
	// snapshot asks for one, and heartbeats while nothing changes, until
	// ctx is done or the stream breaks (or fn fails: its error).
	Follow(ctx context.Context, since uint64, snapshot bool, fn func(Message) error) error
	// FetchFile writes the content of the stored file with this SHA-256
	// from offset to w and returns how many bytes it wrote. A file the
	// primary does not hold (any more) is an error wrapping
	// store.ErrNotFound.
	FetchFile(ctx context.Context, sha [32]byte, offset int64, w io.Writer) (int64, error)
	// Upstream tells the primary u and returns its answer.
	Upstream(ctx context.Context, u Upstream) (UpstreamReply, error)
}
