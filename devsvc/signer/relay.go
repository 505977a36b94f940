package signer

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/updatemeta"
)

// Relay serves, on a replica, the signed metadata its primary signed, as
// the store holds it (the primary's metadata records arrive with the
// change feed): the same bytes, unchanged, never signed here (a replica
// has no keys). Devices verify them as they verify the primary's; a relay
// can delay them, never forge them.
type Relay struct {
	st  *store.Store
	log *slog.Logger

	mu   sync.Mutex
	seq  uint64 // the catalog history number recs were read at
	read bool
	recs map[string][]byte
	// signed are the files the targets of recs sign, by target path
	// (identity/version/name) to SHA-256; nil when they do not read.
	signed map[string]string
	tsVer  int64 // the timestamp's version (0: none that reads)
	root   int   // the latest root's version in recs (0: none)
}

// NewRelay returns the relay of st's metadata.
func NewRelay(st *store.Store, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{st: st, log: log}
}

// records returns the metadata records and the latest root's version
// among them, read again after every change the replica applied.
func (r *Relay) records(ctx context.Context) (map[string][]byte, int, error) {
	seq := r.st.Catalog().Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read && r.seq == seq {
		return r.recs, r.root, nil
	}
	recs, err := r.st.Metadata(ctx, "")
	if err != nil {
		return nil, 0, err
	}
	r.recs, r.seq, r.read, r.signed, r.tsVer, r.root = recs, seq, true, nil, 0, latestRoot(recs)
	var roots [][]byte
	for i := 1; i <= r.root; i++ {
		roots = append(roots, recs["root/"+strconv.Itoa(i)])
	}
	if set, err := updatemeta.ParseSet(roots, recs["timestamp"], recs["snapshot"], recs["targets"]); err == nil {
		r.signed, r.tsVer = map[string]string{}, set.TimestampVersion
		for _, rule := range set.Rules {
			for _, f := range rule.Files {
				r.signed[f.Path(rule.Identity)] = f.SHA256
			}
		}
	} else if recs["targets"] != nil {
		r.log.Warn("the update metadata the primary sent does not read; offers wait for the next", "err", err)
	}
	return recs, r.root, nil
}

// Allows reports whether the signed targets this relay serves name every
// file of u as the catalog holds it: a replica applies a catalog change
// a moment before the signing of it arrives, and a device offered u in
// between would refuse it (offer-unsigned) and leave the replica.
func (r *Relay) Allows(u firmware.Update) bool {
	if _, _, err := r.records(context.Background()); err != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.signed == nil {
		return false
	}
	id := u.Identity.Path()
	for _, f := range u.Files {
		if r.signed[id+"/"+u.Version.String()+"/"+f.Name] != f.SHA256Hex() {
			return false
		}
	}
	return true
}

// Root returns the latest root the primary signed (nil before the replica
// received any): what devices are provisioned with.
func (r *Relay) Root() []byte {
	recs, root, err := r.records(context.Background())
	if err != nil {
		return nil
	}
	return recs["root/"+strconv.Itoa(root)]
}

// RootExpires returns when the latest root expires (zero when unknown).
func (r *Relay) RootExpires() time.Time {
	ri, err := updatemeta.ParseRoot(r.Root())
	if err != nil {
		return time.Time{}
	}
	return ri.Expires
}

// SetExpiries does nothing: the primary signs.
func (r *Relay) SetExpiries(updatemeta.Expiries) {}

// Run waits for ctx: a relay signs nothing in the background.
func (r *Relay) Run(ctx context.Context) { <-ctx.Done() }

// ServeHTTP serves deviceproto.MetadataPrefix (GET and HEAD) from the
// store's records.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	serveFiles(w, req, r.log, func(ctx context.Context) (metadataFiles, error) {
		recs, latest, err := r.records(ctx)
		if err != nil {
			return metadataFiles{}, err
		}
		return metadataFiles{
			roles: recs, // "timestamp", "snapshot", "targets"
			root:  func(v int) []byte { return recs["root/"+strconv.Itoa(v)] }, latest: latest,
		}, nil
	})
}

// latestRoot is the highest root version among recs (0: none).
func latestRoot(recs map[string][]byte) int {
	n := 0
	for k := range recs {
		if v, ok := strings.CutPrefix(k, "root/"); ok {
			if i, err := strconv.Atoi(v); err == nil && i > n {
				n = i
			}
		}
	}
	return n
}

// Staple returns what check-in answers say of the metadata the relay
// serves (Publisher.Staple): the timestamp's version (0: none yet), the
// latest root's, and the signed timestamp.
func (r *Relay) Staple() (timestamp, root int64, signed []byte) {
	recs, latest, err := r.records(context.Background())
	if err != nil {
		return 0, 0, nil
	}
	r.mu.Lock()
	ts := r.tsVer
	r.mu.Unlock()
	if ts == 0 {
		return 0, 0, nil
	}
	return ts, int64(latest), recs["timestamp"]
}
