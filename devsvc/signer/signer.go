// Package signer is the primary's side of the signed update metadata
// (package updatemeta): it signs what the catalog offers with the online
// keys of the data directory's keys/, keeps the signed bytes in the store
// (so that a replica relays them unchanged), re-signs after every catalog
// change and before an expiry, and serves the metadata and the files'
// piece lists to devices:
//
//	GET /Metadata/root.json         the latest root
//	GET /Metadata/<N>.root.json     root version N (404 past the last)
//	GET /Metadata/timestamp.json
//	GET /Metadata/snapshot.json
//	GET /Metadata/targets.json
//
// The catalog's history number tells when to sign: a change of it (a
// rule's state, an import, a removal) signs targets anew with the next
// version. Keys rotated with devsvc keys rotate are picked up within a
// second (a new root version in keys/root) and everything is re-signed.
package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/pieces"
	"github.com/opendus/opendus/updatemeta"
)

// Config configures a Publisher.
type Config struct {
	// Keys is the keys directory (DIR/keys).
	Keys string
	// Expiries are the roles' validity (the metadata_*_expiry settings);
	// SetExpiries changes them.
	Expiries updatemeta.Expiries
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeysCheck, if positive, is how often (real time) requests look for
	// a rotation, a new root version in Keys; zero: at every request (a
	// stat), so that devices see a rotation at their next check-in.
	KeysCheck time.Duration
	Logger    *slog.Logger // nil discards
}

// Publisher signs and serves the metadata of one store.
type Publisher struct {
	st   *store.Store
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex // signing
	keys *updatemeta.Keyring
	sign *updatemeta.Signer
	set  *updatemeta.Set
	seq  atomic.Uint64 // the catalog history number set was signed for
	// rootVer is the keyring's root version, read without mu.
	rootVer atomic.Int64
	exp     atomic.Pointer[updatemeta.Expiries]
	// checked is when rotated last looked at keys/ (Unix nanoseconds of
	// the real clock): at most once a second.
	checked atomic.Int64
	// rotation says the last look found a new root version.
	rotation atomic.Bool
	// pieces are the piece lists of the offered files by SHA-256 (hex);
	// newPieces those not in the store yet.
	pieces, newPieces map[string][]byte
	cur               curSet
}

type curSet struct {
	sync.RWMutex
	set *updatemeta.Set
}

// New loads the keyring and the last signed set from the store. A data
// directory without keys is updatemeta.ErrNoKeys.
func New(st *store.Store, cfg Config) (*Publisher, error) {
	k, err := updatemeta.Load(cfg.Keys)
	if err != nil {
		return nil, err
	}
	p := &Publisher{st: st, cfg: cfg, log: cfg.Logger, now: cfg.Now, keys: k, sign: updatemeta.NewSigner(k), pieces: map[string][]byte{}, newPieces: map[string][]byte{}}
	p.rootVer.Store(int64(k.RootVersion()))
	p.SetExpiries(cfg.Expiries)
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	recs, err := st.Metadata(context.Background(), "")
	if err != nil {
		return nil, err
	}
	for k, v := range recs {
		if sha, ok := strings.CutPrefix(k, "pieces/"); ok {
			var s string
			if json.Unmarshal(v, &s) == nil {
				p.pieces[sha] = []byte(s)
			}
		}
	}
	if recs["timestamp"] != nil {
		prev, err := updatemeta.ParseSet(k.Roots, recs["timestamp"], recs["snapshot"], recs["targets"])
		if err != nil {
			p.log.Warn("the signed metadata in the store does not read: signing it anew", "err", err)
		} else {
			p.set = prev
			// Signed for the catalog as it is when the last change was
			// its signing: a restart signs nothing anew.
			if seq := st.Catalog().Seq(); seq > 0 {
				if es, err := st.History(context.Background(), seq-1, 1); err == nil && len(es) == 1 && es[0].Action == store.ActionMetadataSign {
					p.seq.Store(seq)
				}
			}
		}
	}
	if _, err := p.Current(context.Background()); err != nil {
		return nil, err
	}
	return p, nil
}

// SetExpiries sets the roles' validity from the next signing on (a
// reload of the settings); zero durations keep the defaults: a day, a
// week, 30 days.
func (p *Publisher) SetExpiries(e updatemeta.Expiries) {
	if e.Timestamp <= 0 {
		e.Timestamp = 24 * time.Hour
	}
	if e.Snapshot <= 0 {
		e.Snapshot = 7 * 24 * time.Hour
	}
	if e.Targets <= 0 {
		e.Targets = 30 * 24 * time.Hour
	}
	p.exp.Store(&e)
}

// RootExpires returns when the latest root expires (zero when unknown).
func (p *Publisher) RootExpires() time.Time {
	ri, err := updatemeta.ParseRoot(p.Root())
	if err != nil {
		return time.Time{}
	}
	return ri.Expires
}

// Root returns the latest root: what devices are provisioned with.
func (p *Publisher) Root() []byte {
	p.cur.RLock()
	defer p.cur.RUnlock()
	if p.cur.set == nil {
		return nil
	}
	return p.cur.set.Roots[len(p.cur.set.Roots)-1]
}

// Current returns the set to serve now, signing first when the catalog
// changed, the keys were rotated, or a role nears its expiry.
func (p *Publisher) Current(ctx context.Context) (*updatemeta.Set, error) {
	cat := p.st.Catalog()
	now := p.now()
	exp := *p.exp.Load()
	p.cur.RLock()
	set := p.cur.set
	p.cur.RUnlock()
	if set != nil && p.fresh(set, cat.Seq(), now, exp) && !p.rotated() {
		return set, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Another caller may have signed while this one waited (every
	// check-in after a catalog change comes here, Staple): look again,
	// at the catalog as it is now, so that the waiters do not sign in
	// turn, nor record an older catalog's number.
	cat = p.st.Catalog()
	if p.set != nil && p.fresh(p.set, cat.Seq(), now, exp) && !p.rotated() {
		return p.set, nil
	}
	if p.rotated() {
		k, err := updatemeta.Load(p.cfg.Keys)
		if err != nil {
			return nil, fmt.Errorf("signed metadata: the keys were changed and do not load: %w", err)
		}
		p.keys, p.sign = k, updatemeta.NewSigner(k)
		p.rootVer.Store(int64(k.RootVersion()))
		p.rotation.Store(false)
		p.log.Info("signing keys rotated", "root", k.RootVersion())
	}
	// Sign for the catalog as it is; when it changes before the signed
	// records are written (their write checks it), sign again.
	for try := 0; ; try++ {
		rules, err := p.rules(ctx, cat)
		if err != nil {
			return nil, err
		}
		var prevRules []updatemeta.Rule
		if p.set != nil {
			prevRules = p.set.Rules
		}
		next, changed, err := p.sign.Publish(p.set, updatemeta.WithDowngrades(prevRules, rules), now, exp)
		if err != nil {
			return nil, fmt.Errorf("signed metadata: %w", err)
		}
		seq := cat.Seq()
		if changed || p.set == nil || len(next.Roots) != len(p.set.Roots) || len(p.newPieces) > 0 {
			recs := map[string][]byte{"timestamp": next.Timestamp, "snapshot": next.Snapshot, "targets": next.Target}
			for i, r := range next.Roots {
				recs["root/"+strconv.Itoa(i+1)] = r
			}
			for sha, l := range p.newPieces {
				b, _ := json.Marshal(string(l))
				recs["pieces/"+sha] = b
			}
			detail := fmt.Sprintf("targets %d, snapshot %d, timestamp %d, root %d", next.TargetsVersion, next.SnapshotVersion, next.TimestampVersion, len(next.Roots))
			written, ok, err := p.st.PutMetadata(ctx, recs, seq, detail)
			if err != nil {
				return nil, err
			}
			if !ok {
				if try >= 10 {
					return nil, fmt.Errorf("signed metadata: the catalog changed while it was signed, %d times in a row", try+1)
				}
				cat = p.st.Catalog()
				continue
			}
			clear(p.newPieces)
			seq = written
			p.log.Debug("signed update metadata", "targets", next.TargetsVersion, "timestamp", next.TimestampVersion, "seq", seq)
		}
		p.set = &next
		p.seq.Store(seq)
		p.cur.Lock()
		p.cur.set = &next
		p.cur.Unlock()
		return &next, nil
	}
}

// fresh reports whether set still serves: signed for history number seq
// and no role past half of its validity.
func (p *Publisher) fresh(set *updatemeta.Set, seq uint64, now time.Time, exp updatemeta.Expiries) bool {
	signedFor := p.seq.Load()
	half := func(t time.Time, d time.Duration) bool { return now.Before(t.Add(-d / 2)) }
	return signedFor == seq && half(set.TimestampExpires, exp.Timestamp) && half(set.SnapshotExpires, exp.Snapshot) && half(set.TargetsExpires, exp.Targets)
}

// rotated reports whether keys/root holds a root version newer than the
// keyring's: devsvc keys rotate ran.
func (p *Publisher) rotated() bool {
	now := time.Now().UnixNano()
	last := p.checked.Load()
	if every := p.cfg.KeysCheck; every > 0 && (now-last < int64(every) || !p.checked.CompareAndSwap(last, now)) {
		return p.rotation.Load()
	}
	n := p.rootVer.Load() + 1
	_, err := os.Stat(filepath.Join(p.cfg.Keys, updatemeta.RootChainDir, strconv.FormatInt(n, 10)+".root.json"))
	p.rotation.Store(err == nil)
	return err == nil
}

// rules returns what targets says of the catalog: per rule, its approved
// and pending versions' files with their piece-list digests.
func (p *Publisher) rules(ctx context.Context, cat *store.Catalog) ([]updatemeta.Rule, error) {
	var out []updatemeta.Rule
	newPieces := map[string][]byte{}
	for _, r := range cat.Rules() {
		ur := updatemeta.Rule{Identity: r.Identity.Path()}
		if !r.Approved.IsZero() {
			ur.Approved = r.Approved.String()
		}
		if !r.Pending.IsZero() && r.Pending != r.Approved {
			ur.Pending = r.Pending.String()
		}
		// A rollout rolled back offers the devices it reached the approved
		// version again: a downgrade from the version it rolled out.
		if ro, ok := cat.Rollout(r.ID); ok && ro.RolledBack && ro.From == r.Approved && !ro.From.IsZero() && ro.From.Compare(ro.Version) < 0 {
			ur.DowngradeFrom = []string{ro.Version.String()}
		}
		for _, v := range []firmware.Version{r.Approved, r.Pending} {
			if v.IsZero() || (v == r.Pending && ur.Pending == "") {
				continue
			}
			u, ok := cat.Update(r.Identity, v)
			if !ok {
				continue
			}
			for _, im := range u.Files {
				sha := im.SHA256Hex()
				list, ok := p.pieces[sha]
				if !ok {
					var err error
					if list, err = p.computePieces(r.Identity, v, im.Name); err != nil {
						return nil, err
					}
					p.pieces[sha] = list
					newPieces[sha] = list
				}
				l, err := pieces.Parse(list)
				if err != nil {
					return nil, fmt.Errorf("piece list of %s/%s/%s: %w", r.Identity.Path(), v, im.Name, err)
				}
				ur.Files = append(ur.Files, updatemeta.File{Version: v.String(), Name: im.Name, Length: im.Size, SHA256: sha, Pieces: l.Digest()})
			}
		}
		if len(ur.Files) > 0 {
			out = append(out, ur)
		}
	}
	for sha, l := range newPieces { // written with the signed records
		p.newPieces[sha] = l
	}
	return out, nil
}

func (p *Publisher) computePieces(id firmware.Identity, v firmware.Version, name string) ([]byte, error) {
	f, _, err := p.st.OpenFile(id, v, name)
	if err != nil {
		return nil, fmt.Errorf("piece list of %s/%s/%s: %w", id.Path(), v, name, err)
	}
	defer f.Close()
	l, err := pieces.Compute(f)
	if err != nil {
		return nil, fmt.Errorf("piece list of %s/%s/%s: %w", id.Path(), v, name, err)
	}
	return l.Marshal(), nil
}

// Run re-signs in the background, once a second, what Current would sign
// on demand: a catalog change, a rotation, a role nearing its expiry.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := p.Current(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("signing the update metadata", "err", err)
			}
		}
	}
}

// ServeHTTP serves deviceproto.MetadataPrefix (GET and HEAD). The piece
// lists the metadata names are served by the device API (package
// deviceapi, deviceproto.PiecesPrefix), from the same stored files.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveFiles(w, r, p.log, func(ctx context.Context) (metadataFiles, error) {
		set, err := p.Current(ctx)
		if err != nil {
			return metadataFiles{}, err
		}
		return metadataFiles{
			roles: map[string][]byte{"timestamp": set.Timestamp, "snapshot": set.Snapshot, "targets": set.Target},
			root:  func(v int) []byte { return set.Roots[v-1] }, latest: len(set.Roots),
		}, nil
	})
}

// metadataFiles are the files a publisher or a relay serves: the roles'
// by name ("timestamp", "snapshot", "targets"), and the roots 1 to latest.
type metadataFiles struct {
	roles  map[string][]byte
	root   func(v int) []byte
	latest int
}

// file returns the file named name under deviceproto.MetadataPrefix, nil
// when there is none: "timestamp.json", "snapshot.json", "targets.json",
// "root.json" (the latest root) or "N.root.json".
func (f metadataFiles) file(name string) []byte {
	if role, ok := strings.CutSuffix(name, ".json"); ok && (role == "timestamp" || role == "snapshot" || role == "targets") {
		return f.roles[role]
	}
	if name == "root.json" {
		if f.latest == 0 {
			return nil
		}
		return f.root(f.latest)
	}
	n, ok := strings.CutSuffix(name, ".root.json")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v < 1 || v > f.latest || strconv.Itoa(v) != n {
		return nil
	}
	return f.root(v)
}

// serveFiles serves deviceproto.MetadataPrefix (GET and HEAD) from the
// files load returns, 503 when they are not available.
func serveFiles(w http.ResponseWriter, r *http.Request, log *slog.Logger, load func(context.Context) (metadataFiles, error)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	files, err := load(r.Context())
	if err != nil {
		log.Error("the update metadata", "err", err)
		http.Error(w, "the update metadata is not available", http.StatusServiceUnavailable)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, deviceproto.MetadataPrefix)
	var b []byte
	if ok {
		b = files.file(name)
	}
	if b == nil {
		http.NotFound(w, r)
		return
	}
	serveMetadata(w, b)
}

// serveMetadata writes a metadata file: JSON that a cache must check
// again before it reuses it (a timestamp changes in place).
func serveMetadata(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// Staple returns what every check-in answer says of the metadata (the
// signed timestamp's version, the latest root's) and the signed timestamp
// the answer staples for a device that trusts an older one. It signs
// first when the catalog changed since the last signing (an answer must
// not staple a timestamp older than the snapshot the device then
// fetches), but does not look at the keys or at the roles' expiries on
// the check-in path (Run and the metadata requests do): a set a moment
// old only makes a device fetch the timestamp, which signs if due.
func (p *Publisher) Staple() (timestamp, root int64, signed []byte) {
	if p.seq.Load() != p.st.Catalog().Seq() {
		if _, err := p.Current(context.Background()); err != nil {
			p.log.Error("signing the update metadata", "err", err)
		}
	}
	p.cur.RLock()
	defer p.cur.RUnlock()
	if p.cur.set == nil {
		return 0, 0, nil
	}
	return p.cur.set.TimestampVersion, int64(len(p.cur.set.Roots)), p.cur.set.Timestamp
}
