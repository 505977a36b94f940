package updatemeta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/opendus/opendus/pieces"
)

// Reason is why a device refused metadata or an offer: what it reports
// (in a status report's ErrorCode, after "verify:") and counts.
type Reason string

// The reasons, in the order a device checks.
const (
	ReasonUnavailable Reason = "meta-unavailable" // metadata could not be fetched
	ReasonMalformed   Reason = "meta-malformed"   // metadata that does not parse
	ReasonSignature   Reason = "meta-signature"   // a signature that does not verify (a forgery, an unknown key)
	ReasonMetaHash    Reason = "meta-hash"        // snapshot or targets not the length or hash their parent names
	ReasonExpired     Reason = "meta-expired"     // metadata past its expiry: a freeze
	ReasonRollback    Reason = "meta-rollback"    // a version lower than one trusted before: a replay
	ReasonNoMetadata  Reason = "meta-none"        // an offer before any metadata was trusted
	ReasonNotSigned   Reason = "offer-unsigned"   // the offered version or file is not in targets
	ReasonAnswerHash  Reason = "offer-hash"       // the answer's length or SHA-256 differs from the signed one
	ReasonDowngrade   Reason = "offer-downgrade"  // an older version not signed as a restore
	ReasonPieces      Reason = "pieces"           // a piece list that is not the signed one
)

// Reasons lists every reason, for reports.
var Reasons = []Reason{ReasonUnavailable, ReasonMalformed, ReasonSignature, ReasonMetaHash, ReasonExpired, ReasonRollback,
	ReasonNoMetadata, ReasonNotSigned, ReasonAnswerHash, ReasonDowngrade, ReasonPieces}

// Error is a refusal, with its reason.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return "update metadata: " + string(e.Reason) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason of an error of this package, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// classify wraps an error of go-tuf in an Error with its reason.
func classify(what string, err error) error {
	r := ReasonMalformed
	var (
		exp    *metadata.ErrExpiredMetadata
		ver    *metadata.ErrBadVersionNumber
		hash   *metadata.ErrLengthOrHashMismatch
		unsign *metadata.ErrUnsignedMetadata
	)
	switch {
	case errors.As(err, &exp):
		r = ReasonExpired
	case errors.As(err, &ver):
		r = ReasonRollback
	case errors.As(err, &hash):
		r = ReasonMetaHash
	case errors.As(err, &unsign):
		r = ReasonSignature
	}
	return &Error{r, fmt.Errorf("%s: %w", what, err)}
}

// ErrNotFound is what a Fetch returns when the server has no such file
// (HTTP 404): the end of the root chain.
var ErrNotFound = errors.New("no such metadata")

// Fetch gets the metadata file name ("2.root.json", "timestamp.json",
// "snapshot.json", "targets.json") from the server the device checks in
// with, reading at most limit bytes; ErrNotFound when there is none.
type Fetch func(ctx context.Context, name string, limit int64) ([]byte, error)

// Limits on what a device reads.
const (
	maxRootSteps     = 64       // root versions followed in one refresh
	maxTimestampSize = 16 << 10 // a timestamp is about 500 bytes
	maxSnapshotSize  = 64 << 10
)

// Client is a device's trusted metadata: the root it was provisioned with
// (or followed to), the versions it trusted last, and the signed entries
// of its own identity. Not safe for concurrent use.
type Client struct {
	identity string
	root     []byte
	rootKey  [32]byte // SHA-256 of root: the cache's key of what verified under it
	rootVer  int64

	tsHash                     [32]byte // SHA-256 of the trusted timestamp's bytes
	snapHash                   [32]byte // and of the trusted snapshot's
	tsVer, snapVer, targetsVer int64
	tsExp, snapExp, targetsExp time.Time
	rootExp                    time.Time
	rule                       Rule
	trusted                    bool // targets were verified once
	cache                      *Cache
}

// NewClient returns a client trusting root (what provisioning gave the
// device) for the device identity (firmware.Identity.Path()).
// cache, if not nil, is shared with the other devices of a simulator.
func NewClient(root []byte, identity string, cache *Cache) (*Client, error) {
	k := sha256.Sum256(root)
	if r, ok := cache.root(k); ok {
		return &Client{identity: identity, cache: cache, root: r.b, rootKey: k, rootVer: r.version, rootExp: r.expires}, nil
	}
	tm, err := trustedmetadata.New(root)
	if err != nil {
		return nil, classify("root", err)
	}
	return &Client{identity: identity, cache: cache, root: cache.intern(k, root, tm.Root.Signed.Version, tm.Root.Signed.Expires), rootKey: k,
		rootVer: tm.Root.Signed.Version, rootExp: tm.Root.Signed.Expires}, nil
}

// RootVersion returns the trusted root's version.
func (c *Client) RootVersion() int64 { return c.rootVer }

// TargetsVersion returns the trusted targets' version (0: none yet).
func (c *Client) TargetsVersion() int64 { return c.targetsVer }

// Rule returns the signed entries of the device's identity.
func (c *Client) Rule() Rule { return c.rule }

// Hint is what a check-in answer says of the metadata the service
// serves (deviceproto Answer.Metadata): the timestamp's version, the
// latest root's version, and the signed timestamp itself when the
// device's check-in named an older one (stapled). None of it is trusted:
// a stapled timestamp is verified as a fetched one is, and a relay that
// lies about the versions can only keep a device on what it trusts until
// that expires, as one that serves an old timestamp or withholds a new
// root can. The zero Hint says nothing.
type Hint struct {
	Timestamp int64
	Root      int64
	Stapled   []byte
}

// Current reports whether the client may skip a refresh at now because
// the service told it (deviceproto Answer.Metadata) that the timestamp it
// serves is advertised, the version the client trusts, and nothing the
// client trusts has expired. The hint is never trusted beyond that: a
// relay that lies about it keeps the device on what it trusts until that
// expires, no longer, as a relay serving an old timestamp would; and an
// offer the trusted targets do not sign still fails CheckOffer (refresh
// then, and check again).
func (c *Client) Current(advertised int64, now time.Time) bool {
	if !c.trusted || advertised <= 0 || advertised != c.tsVer {
		return false
	}
	for _, exp := range []time.Time{c.rootExp, c.tsExp, c.snapExp, c.targetsExp} {
		if !now.Before(exp) {
			return false
		}
	}
	return true
}

// TimestampVersion returns the trusted timestamp's version (0: none yet):
// what a device's check-in names, so that the answer staples a newer one.
func (c *Client) TimestampVersion() int64 { return c.tsVer }

// Refresh runs TUF's client workflow at now (the device's clock): the
// next root versions, the timestamp, and when the timestamp changed the
// snapshot and targets. On any failure the client keeps what it trusted
// before and returns an *Error.
func (c *Client) Refresh(ctx context.Context, fetch Fetch, now time.Time) error {
	return c.refresh(ctx, fetch, now, Hint{})
}

// RefreshHinted is Refresh with what the check-in's answer said (Hint):
// its stapled timestamp is taken in place of fetching timestamp.json, and
// no newer root is looked for when the answer names the trusted root's
// version as the latest. Everything is verified as Refresh verifies it; a
// device whose timestamp was re-signed only to stay fresh (every half of
// its validity) then makes no request at all. A refresh that fails with
// the hints (a stapled timestamp that does not verify or that a signing
// overtook, a root that is not the latest) is done once more as Refresh
// does it: the hints never refuse what fetching would take.
func (c *Client) RefreshHinted(ctx context.Context, fetch Fetch, now time.Time, h Hint) error {
	err := c.refresh(ctx, fetch, now, h)
	if err != nil && (len(h.Stapled) > 0 || h.Root > 0) && ReasonOf(err) != ReasonUnavailable {
		err = c.refresh(ctx, fetch, now, Hint{})
	}
	return err
}

func (c *Client) refresh(ctx context.Context, fetch Fetch, now time.Time, h Hint) error {
	var tm *trustedmetadata.TrustedMetadata
	trusted := func() error { // built only when something new needs verifying
		if tm != nil {
			return nil
		}
		var err error
		if tm, err = trustedmetadata.New(c.root); err != nil {
			return classify("root", err)
		}
		tm.RefTime = now.UTC()
		return nil
	}
	ts := h.Stapled
	if len(ts) == 0 || len(ts) > maxTimestampSize {
		var err error
		if ts, err = fetch(ctx, "timestamp.json", maxTimestampSize); err != nil {
			return &Error{ReasonUnavailable, fmt.Errorf("timestamp.json: %w", err)}
		}
	}
	tsHash := sha256.Sum256(ts)
	if c.trusted && tsHash == c.tsHash {
		// Nothing new, so nothing to trust anew (not even a new root: the
		// service signs a new timestamp with every root): what was
		// trusted must still be fresh.
		for _, e := range []struct {
			name string
			exp  time.Time
		}{{"root", c.rootExp}, {"timestamp", c.tsExp}, {"snapshot", c.snapExp}, {"targets", c.targetsExp}} {
			if !now.Before(e.exp) {
				return &Error{ReasonExpired, fmt.Errorf("%s.json expired at %s", e.name, e.exp.UTC().Format(time.RFC3339))}
			}
		}
		return nil
	}
	root, rootVer := c.root, c.rootVer
	steps := maxRootSteps
	if h.Root > 0 && h.Root == c.rootVer {
		steps = 0 // the answer names no newer root: none to look for
	}
	for range steps {
		name := strconv.FormatInt(rootVer+1, 10) + ".root.json"
		b, err := fetch(ctx, name, MaxMetadataSize)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return &Error{ReasonUnavailable, fmt.Errorf("%s: %w", name, err)}
		}
		if err := trusted(); err != nil {
			return err
		}
		if _, err := tm.UpdateRoot(b); err != nil {
			return classify(name, err)
		}
		root, rootVer = b, tm.Root.Signed.Version
	}
	rootExp := c.rootExp
	if tm != nil {
		rootExp = tm.Root.Signed.Expires
	}
	// The timestamp: verified under this root once per fleet (Cache).
	rk := c.rootKey
	if rootVer != c.rootVer {
		rk = sha256.Sum256(root)
	}
	tsv, ok := c.cache.timestamp(rk, tsHash)
	if !ok {
		if err := trusted(); err != nil {
			return err
		}
		nts, err := tm.UpdateTimestamp(ts)
		// A replayed timestamp is a rollback even when it has expired
		// too: go-tuf keeps a timestamp whose signature verified before
		// it checks the expiry.
		var exp *metadata.ErrExpiredMetadata
		if errors.As(err, &exp) && tm.Timestamp != nil && tm.Timestamp.Signed.Version < c.tsVer {
			return &Error{ReasonRollback, fmt.Errorf("timestamp.json version %d, lower than the trusted %d (and expired)", tm.Timestamp.Signed.Version, c.tsVer)}
		}
		if err != nil {
			return classify("timestamp.json", err)
		}
		tsv = timestampOf(nts)
		c.cache.putTimestamp(rk, tsHash, tsv)
	}
	if tsv.version < c.tsVer {
		return &Error{ReasonRollback, fmt.Errorf("timestamp.json version %d, lower than the trusted %d", tsv.version, c.tsVer)}
	}
	if !now.Before(tsv.expires) {
		return &Error{ReasonExpired, fmt.Errorf("timestamp.json expired at %s", tsv.expires.UTC().Format(time.RFC3339))}
	}
	if tsv.snapVer < c.snapVer {
		return &Error{ReasonRollback, fmt.Errorf("timestamp.json names a snapshot older than the trusted version %d", c.snapVer)}
	}
	commit := func() {
		c.root, c.rootKey, c.rootVer, c.rootExp = c.cache.intern(rk, root, rootVer, rootExp), rk, rootVer, rootExp
		c.tsHash, c.tsVer, c.tsExp = tsHash, tsv.version, tsv.expires
	}
	if c.trusted && rootVer == c.rootVer && tsv.snapVer == c.snapVer && tsv.snapHash != ([32]byte{}) && tsv.snapHash == c.snapHash {
		// The snapshot (so targets) is the one trusted: a timestamp
		// re-signed before it expired. They must still be fresh.
		for _, e := range []struct {
			name string
			exp  time.Time
		}{{"snapshot", c.snapExp}, {"targets", c.targetsExp}} {
			if !now.Before(e.exp) {
				return &Error{ReasonExpired, fmt.Errorf("%s.json expired at %s", e.name, e.exp.UTC().Format(time.RFC3339))}
			}
		}
		commit()
		return nil
	}
	snap, err := fetch(ctx, "snapshot.json", maxSnapshotSize)
	if err != nil {
		return &Error{ReasonUnavailable, fmt.Errorf("snapshot.json: %w", err)}
	}
	// go-tuf's state, built only when something must be verified that
	// no device of the fleet verified before (Cache): the root, the
	// timestamp and the snapshot, in order.
	chain := func() error {
		if err := trusted(); err != nil {
			return err
		}
		if tm.Timestamp == nil { // verified from the cache: go-tuf needs it
			if _, err := tm.UpdateTimestamp(ts); err != nil {
				return classify("timestamp.json", err)
			}
		}
		if tm.Snapshot == nil {
			if _, err := tm.UpdateSnapshot(snap, false); err != nil {
				return classify("snapshot.json", err)
			}
		}
		return nil
	}
	snapHash := sha256.Sum256(snap)
	nsn, ok := c.cache.snapshot(rk, snapHash)
	if ok {
		// Verified under this root before, by another device: it must be
		// the one this timestamp names, and fresh.
		if tsv.snapHash != ([32]byte{}) && tsv.snapHash != snapHash || nsn.Signed.Version != tsv.snapVer {
			return &Error{ReasonMetaHash, fmt.Errorf("snapshot.json is not the one timestamp.json names (version %d, want %d)", nsn.Signed.Version, tsv.snapVer)}
		}
		if !now.Before(nsn.Signed.Expires) {
			return &Error{ReasonExpired, fmt.Errorf("snapshot.json expired at %s", nsn.Signed.Expires.UTC().Format(time.RFC3339))}
		}
	} else {
		if err := chain(); err != nil {
			return err
		}
		nsn = tm.Snapshot
		c.cache.putSnapshot(rk, snapHash, nsn)
	}
	meta := nsn.Signed.Meta["targets.json"]
	if meta == nil || meta.Version < c.targetsVer {
		return &Error{ReasonRollback, fmt.Errorf("snapshot.json names a targets older than the trusted version %d", c.targetsVer)}
	}
	tg, err := fetch(ctx, "targets.json", MaxMetadataSize)
	if err != nil {
		return &Error{ReasonUnavailable, fmt.Errorf("targets.json: %w", err)}
	}
	tk := [2][32]byte{rk, sha256.Sum256(tg)}
	ntg, err := c.cache.targets(chain, func() *trustedmetadata.TrustedMetadata { return tm }, tk, meta, tg, now)
	if err != nil {
		return err
	}
	rule, err := c.cache.rule(ntg, tk, c.identity)
	if err != nil {
		return err
	}
	commit()
	c.snapVer, c.snapExp, c.snapHash = nsn.Signed.Version, nsn.Signed.Expires, snapHash
	c.targetsVer, c.targetsExp = ntg.Signed.Version, ntg.Signed.Expires
	c.rule, c.trusted = rule, true
	return nil
}

// verifiedTimestamp is what a device needs of a timestamp whose
// signature verified.
type verifiedTimestamp struct {
	version  int64
	expires  time.Time
	snapVer  int64
	snapHash [32]byte // zero when the timestamp names none
}

func timestampOf(t *metadata.Metadata[metadata.TimestampType]) verifiedTimestamp {
	v := verifiedTimestamp{version: t.Signed.Version, expires: t.Signed.Expires}
	if m := t.Signed.Meta["snapshot.json"]; m != nil {
		v.snapVer = m.Version
		if h := m.Hashes["sha256"]; len(h) == sha256.Size {
			copy(v.snapHash[:], h)
		}
	}
	return v
}

// ruleOf returns the entries of identity in targets.
func ruleOf(t *metadata.Metadata[metadata.TargetsType], identity string) (Rule, error) {
	rule := Rule{Identity: identity}
	prefix := identity + "/"
	for path, tf := range t.Signed.Targets {
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		_, f, cu, err := entry(path, tf)
		if err != nil {
			return Rule{}, &Error{ReasonMalformed, err}
		}
		switch cu.State {
		case StateApproved:
			rule.Approved, rule.DowngradeFrom = f.Version, cu.DowngradeFrom
		case StatePending:
			rule.Pending = f.Version
		}
		rule.Files = append(rule.Files, f)
	}
	sortFiles(rule.Files)
	return rule, nil
}

// Cache shares the costly part of verification, targets (its signature
// and its parse), between the clients of many devices in one process: a
// simulator's fleet. Entries are keyed by the SHA-256 of the root and of
// the targets bytes, so a hit is a verification that would have given
// the same result. Every client still checks lengths, hashes, versions
// and expiries itself. A nil *Cache caches nothing. Safe for concurrent
// use.
type Cache struct {
	mu    sync.Mutex
	m     map[[2][32]byte]*metadata.Metadata[metadata.TargetsType]
	snaps map[[2][32]byte]*metadata.Metadata[metadata.SnapshotType]
	rules map[[2][32]byte]map[string]Rule // by targets, then identity
	roots map[[32]byte]cachedRoot         // one copy of each root that verified
	ts    map[[2][32]byte]verifiedTimestamp
}

type cachedRoot struct {
	b       []byte
	version int64
	expires time.Time
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{m: map[[2][32]byte]*metadata.Metadata[metadata.TargetsType]{}, rules: map[[2][32]byte]map[string]Rule{}, roots: map[[32]byte]cachedRoot{},
		ts: map[[2][32]byte]verifiedTimestamp{}, snaps: map[[2][32]byte]*metadata.Metadata[metadata.SnapshotType]{}}
}

// intern returns b, a root that verified (version, expiry) whose SHA-256
// is k, or the copy
// of it the cache holds already, so that a fleet keeps one copy of each
// root and verifies it once. Without a cache, a copy of b.
func (c *Cache) intern(k [32]byte, b []byte, version int64, expires time.Time) []byte {
	if c == nil {
		return bytes.Clone(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.roots[k]; ok {
		return r.b
	}
	if len(c.roots) >= maxCached {
		clear(c.roots)
	}
	r := cachedRoot{bytes.Clone(b), version, expires}
	c.roots[k] = r
	return r.b
}

// timestamp returns what a timestamp of this hash said when it verified
// under root.
func (c *Cache) timestamp(rk [32]byte, tsHash [32]byte) (verifiedTimestamp, bool) {
	if c == nil {
		return verifiedTimestamp{}, false
	}
	k := [2][32]byte{rk, tsHash}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.ts[k]
	return v, ok
}

func (c *Cache) putTimestamp(rk [32]byte, tsHash [32]byte, v verifiedTimestamp) {
	if c == nil {
		return
	}
	k := [2][32]byte{rk, tsHash}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ts) >= maxCached {
		clear(c.ts)
	}
	c.ts[k] = v
}

// snapshot returns the snapshot of this hash that verified under root
// (read only), shared between the devices of a fleet.
func (c *Cache) snapshot(rk [32]byte, h [32]byte) (*metadata.Metadata[metadata.SnapshotType], bool) {
	if c == nil {
		return nil, false
	}
	k := [2][32]byte{rk, h}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snaps[k]
	return s, ok
}

func (c *Cache) putSnapshot(rk [32]byte, h [32]byte, s *metadata.Metadata[metadata.SnapshotType]) {
	if c == nil {
		return
	}
	k := [2][32]byte{rk, h}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.snaps) >= maxCached {
		clear(c.snaps)
	}
	c.snaps[k] = s
}

// root returns the cached copy of a root that verified before, by its
// SHA-256.
func (c *Cache) root(k [32]byte) (cachedRoot, bool) {
	if c == nil {
		return cachedRoot{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.roots[k]
	return r, ok
}

// rule returns the entries of identity in verified targets t (key: the
// SHA-256 of the root and of t's bytes), shared between the devices of that identity: read only.
func (c *Cache) rule(t *metadata.Metadata[metadata.TargetsType], key [2][32]byte, identity string) (Rule, error) {
	if c == nil {
		return ruleOf(t, identity)
	}
	c.mu.Lock()
	r, ok := c.rules[key][identity]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := ruleOf(t, identity)
	if err != nil {
		return Rule{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rules[key] == nil {
		if len(c.rules) >= maxCached {
			clear(c.rules)
		}
		c.rules[key] = map[string]Rule{}
	}
	c.rules[key][identity] = r
	return r, nil
}

const maxCached = 8

// targets verifies targets bytes b against the snapshot's meta and the
// root, through the cache (key: the SHA-256 of the root and of b).
func (c *Cache) targets(chain func() error, state func() *trustedmetadata.TrustedMetadata, key [2][32]byte, meta *metadata.MetaFiles, b []byte, now time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	update := func() (*metadata.Metadata[metadata.TargetsType], error) {
		if err := chain(); err != nil {
			return nil, err
		}
		return state().UpdateTargets(b)
	}
	if c == nil {
		t, err := update()
		if err != nil {
			return nil, classify("targets.json", err)
		}
		return t, nil
	}
	if err := meta.VerifyLengthHashes(b); err != nil {
		return nil, classify("targets.json", err)
	}
	c.mu.Lock()
	t := c.m[key]
	c.mu.Unlock()
	if t == nil {
		var err error
		if t, err = update(); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, err
			}
			return nil, classify("targets.json", err)
		}
		c.mu.Lock()
		if len(c.m) >= maxCached {
			clear(c.m)
		}
		c.m[key] = t
		c.mu.Unlock()
		return t, nil
	}
	if t.Signed.Version != meta.Version {
		return nil, &Error{ReasonRollback, fmt.Errorf("targets.json version %d, snapshot.json names %d", t.Signed.Version, meta.Version)}
	}
	if t.Signed.IsExpired(now.UTC()) {
		return nil, &Error{ReasonExpired, errors.New("targets.json is expired")}
	}
	return t, nil
}

// Offered is a file of an offer, as the check-in answer describes it.
type Offered struct {
	Name   string
	Length int64
	SHA256 string
}

// CheckOffer checks an offer of version offered to a device running
// current (either "" when unknown) against the trusted targets: every
// file must be signed with the same length and SHA-256, and a version
// lower than current must be signed as a restore from current. It returns
// the signed files, in the order given.
func (c *Client) CheckOffer(current, offered string, files []Offered) ([]File, error) {
	if !c.trusted {
		return nil, &Error{ReasonNoMetadata, errors.New("no trusted targets yet")}
	}
	out := make([]File, 0, len(files))
	for _, o := range files {
		var sf *File
		for i := range c.rule.Files {
			if f := &c.rule.Files[i]; f.Version == offered && f.Name == o.Name {
				sf = f
				break
			}
		}
		if sf == nil {
			return nil, &Error{ReasonNotSigned, fmt.Errorf("%s/%s/%s is not in targets version %d", c.identity, offered, o.Name, c.targetsVer)}
		}
		if sf.Length != o.Length || !strings.EqualFold(sf.SHA256, o.SHA256) {
			return nil, &Error{ReasonAnswerHash, fmt.Errorf("%s: the answer says %d bytes, SHA-256 %s; targets version %d says %d bytes, %s", o.Name, o.Length, o.SHA256, c.targetsVer, sf.Length, sf.SHA256)}
		}
		out = append(out, *sf)
	}
	if current != "" && less(offered, current) {
		ok := offered == c.rule.Approved
		if ok {
			ok = false
			for _, v := range c.rule.DowngradeFrom {
				ok = ok || v == current
			}
		}
		if !ok {
			return nil, &Error{ReasonDowngrade, fmt.Errorf("%s is older than the running %s and targets version %d does not sign it as a restore from it", offered, current, c.targetsVer)}
		}
	}
	return out, nil
}

// CheckPieces parses a piece list fetched from any relay and checks it
// against the signed file: its digest must be the one targets names.
func CheckPieces(list []byte, f File) (pieces.List, error) {
	l, err := pieces.Parse(list)
	if err != nil {
		return pieces.List{}, &Error{ReasonPieces, fmt.Errorf("%s: %w", f.Name, err)}
	}
	if d := l.Digest(); d != f.Pieces || l.FileSize != f.Length {
		return pieces.List{}, &Error{ReasonPieces, fmt.Errorf("%s: piece list %s of %d bytes, targets names %s of %d", f.Name, d, l.FileSize, f.Pieces, f.Length)}
	}
	return l, nil
}
