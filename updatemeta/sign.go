package updatemeta

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/opendus/opendus/firmware"
)

// States of a version in targets.
const (
	StateApproved = "approved"
	StatePending  = "pending"
)

// Rule is what targets says of one device identity: its approved and
// pending versions and their files.
type Rule struct {
	Identity string // firmware.Identity.Path()
	Approved string // a version, or ""
	Pending  string
	// DowngradeFrom are the versions a device may go down from to the
	// approved one: set when an admin made an older version approved (a
	// restore), kept while that version stays approved.
	DowngradeFrom []string
	Files         []File // of the approved and the pending version
}

// File is one signed file.
type File struct {
	Version string
	Name    string
	Length  int64
	SHA256  string // lower-case hex
	Pieces  string // the digest of its piece list (pieces.List.Digest)
}

// Path returns the target path of f under the rule's identity.
func (f File) Path(identity string) string { return identity + "/" + f.Version + "/" + f.Name }

// custom is the custom object of a targets entry.
type custom struct {
	Pieces        string   `json:"pieces"`
	State         string   `json:"state"`
	DowngradeFrom []string `json:"downgradeFrom,omitempty"`
}

// Expiries are how long each role's metadata is valid; Publish re-signs
// a role once half of its validity has passed.
type Expiries struct {
	Timestamp, Snapshot, Targets time.Duration
}

// Set is a signed metadata set: what the primary serves and the store
// keeps.
type Set struct {
	Roots                       [][]byte // root versions 1..n
	Timestamp, Snapshot, Target []byte
	Rules                       []Rule // what Target says
	TargetsVersion              int64
	SnapshotVersion             int64
	TimestampVersion            int64
	TargetsExpires              time.Time
	SnapshotExpires             time.Time
	TimestampExpires            time.Time
	keyIDs                      string // the online keys that signed it
}

// Signer signs metadata sets with a keyring's online keys.
type Signer struct {
	roots                        [][]byte
	targets, snapshot, timestamp ed25519.PrivateKey
	keyIDs                       string
}

// NewSigner returns a signer with k's online keys and root chain.
func NewSigner(k *Keyring) *Signer {
	return &Signer{
		roots:   k.Roots,
		targets: k.Targets, snapshot: k.Snapshot, timestamp: k.Timestamp,
		keyIDs: KeyID(k.Targets) + KeyID(k.Snapshot) + KeyID(k.Timestamp),
	}
}

// WithDowngrades returns next with each rule's DowngradeFrom completed
// from prev: a rule whose approved version went down gets the versions it
// was approved or pending at (and those already allowed); one whose
// approved version stayed keeps them; a new approval above them drops
// them. Versions next already names (a rollout rolled back: the version
// it reached devices with) are kept.
func WithDowngrades(prev, next []Rule) []Rule {
	old := make(map[string]Rule, len(prev))
	for _, r := range prev {
		old[r.Identity] = r
	}
	out := make([]Rule, len(next))
	for i, r := range next {
		set := slices.Clone(r.DowngradeFrom)
		add := func(vs ...string) {
			for _, v := range vs {
				if v != "" && r.Approved != "" && less(r.Approved, v) && !slices.Contains(set, v) {
					set = append(set, v)
				}
			}
		}
		p, ok := old[r.Identity]
		switch {
		case !ok || r.Approved == "":
		case r.Approved == p.Approved:
			add(p.DowngradeFrom...)
		case p.Approved != "" && less(r.Approved, p.Approved):
			add(p.DowngradeFrom...)
			add(p.Approved, p.Pending)
		}
		if r.Approved == "" {
			set = nil
		}
		slices.SortFunc(set, compare)
		r.DowngradeFrom = set
		if len(set) == 0 {
			r.DowngradeFrom = nil
		}
		out[i] = r
	}
	return out
}

func compare(a, b string) int {
	va, errA := firmware.ParseVersion(a)
	vb, errB := firmware.ParseVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

func less(a, b string) bool { return compare(a, b) < 0 }

// Publish returns the set to serve at now for rules, given the previous
// one (nil at first): targets and snapshot are re-signed, with the next
// version, when the rules or the keys changed or half of their validity
// has passed, the timestamp when anything was re-signed or half of its
// validity has passed. Versions grow by one, and are at least now in Unix
// seconds. changed is false when prev still serves, unchanged.
// Rules should come through WithDowngrades.
func (s *Signer) Publish(prev *Set, rules []Rule, now time.Time, exp Expiries) (set Set, changed bool, err error) {
	now = now.UTC().Truncate(time.Second)
	rules = Normalize(rules)
	stale := func(expires time.Time, d time.Duration) bool { return !now.Before(expires.Add(-d / 2)) }
	if prev == nil {
		prev = &Set{}
	}
	set = *prev
	set.Roots = s.roots
	rekeyed := prev.keyIDs != s.keyIDs
	// A new root version is announced by a new timestamp: a device that
	// sees its timestamp unchanged looks for no new root.
	newRoot := len(prev.Roots) != len(s.roots)
	// A version is at least the signing time in Unix seconds: it still
	// grows after the store was restored from a backup that holds older
	// versions than devices trust.
	next := func(v int64) int64 { return max(v+1, now.Unix()) }
	if prev.Target == nil || rekeyed || !rulesEqual(prev.Rules, rules) || stale(prev.TargetsExpires, exp.Targets) {
		set.TargetsVersion = next(set.TargetsVersion)
		set.TargetsExpires = now.Add(exp.Targets)
		if set.Target, err = s.signTargets(rules, set.TargetsVersion, set.TargetsExpires); err != nil {
			return Set{}, false, err
		}
		set.Rules = cloneRules(rules)
		changed = true
	}
	if changed || prev.Snapshot == nil || rekeyed || stale(prev.SnapshotExpires, exp.Snapshot) {
		snap := metadata.Snapshot(now.Add(exp.Snapshot))
		set.SnapshotVersion = next(set.SnapshotVersion)
		set.SnapshotExpires = now.Add(exp.Snapshot)
		snap.Signed.Version = set.SnapshotVersion
		snap.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metaFile(set.Target, set.TargetsVersion)}
		if err := sign(snap, s.snapshot); err != nil {
			return Set{}, false, err
		}
		if set.Snapshot, err = snap.ToBytes(false); err != nil {
			return Set{}, false, err
		}
		changed = true
	}
	if changed || prev.Timestamp == nil || rekeyed || newRoot || stale(prev.TimestampExpires, exp.Timestamp) {
		ts := metadata.Timestamp(now.Add(exp.Timestamp))
		set.TimestampVersion = next(set.TimestampVersion)
		set.TimestampExpires = now.Add(exp.Timestamp)
		ts.Signed.Version = set.TimestampVersion
		ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(set.Snapshot, set.SnapshotVersion)}
		if err := sign(ts, s.timestamp); err != nil {
			return Set{}, false, err
		}
		if set.Timestamp, err = ts.ToBytes(false); err != nil {
			return Set{}, false, err
		}
		changed = true
	}
	set.keyIDs = s.keyIDs
	return set, changed, nil
}

func metaFile(b []byte, version int64) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	m.Length = int64(len(b))
	m.Hashes = metadata.Hashes{"sha256": sha256Of(b)}
	return m
}

func (s *Signer) signTargets(rules []Rule, version int64, expires time.Time) ([]byte, error) {
	t := metadata.Targets(expires)
	t.Signed.Version = version
	for _, r := range rules {
		for _, f := range r.Files {
			sum, err := hex.DecodeString(f.SHA256)
			if err != nil || len(sum) != 32 {
				return nil, fmt.Errorf("targets: %s: bad SHA-256 %q", f.Path(r.Identity), f.SHA256)
			}
			c := custom{Pieces: f.Pieces, State: StatePending}
			if f.Version == r.Approved {
				c.State, c.DowngradeFrom = StateApproved, r.DowngradeFrom
			}
			raw, err := json.Marshal(c)
			if err != nil {
				return nil, err
			}
			rm := json.RawMessage(raw)
			t.Signed.Targets[f.Path(r.Identity)] = &metadata.TargetFiles{
				Length: f.Length, Hashes: metadata.Hashes{"sha256": sum}, Custom: &rm, Path: f.Path(r.Identity),
			}
		}
	}
	if err := sign(t, s.targets); err != nil {
		return nil, err
	}
	return t.ToBytes(false)
}

func rulesEqual(a, b []Rule) bool {
	return slices.EqualFunc(a, b, func(x, y Rule) bool {
		return x.Identity == y.Identity && x.Approved == y.Approved && x.Pending == y.Pending &&
			slices.Equal(x.DowngradeFrom, y.DowngradeFrom) && slices.Equal(x.Files, y.Files)
	})
}

func cloneRules(rs []Rule) []Rule {
	out := slices.Clone(rs)
	for i := range out {
		out[i].DowngradeFrom = slices.Clone(out[i].DowngradeFrom)
		out[i].Files = slices.Clone(out[i].Files)
	}
	return out
}

// ParseSet reads back a set the server signed and stored (roots 1..n,
// timestamp, snapshot, targets), to continue from it. It checks each role
// against the latest root.
func ParseSet(roots [][]byte, timestamp, snapshot, targets []byte) (*Set, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("metadata set: %w", ErrNoKeys)
	}
	root, err := metadata.Root().FromBytes(roots[len(roots)-1])
	if err != nil {
		return nil, err
	}
	ts, err := metadata.Timestamp().FromBytes(timestamp)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	sn, err := metadata.Snapshot().FromBytes(snapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	tg, err := metadata.Targets().FromBytes(targets)
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	var ids []string
	for _, v := range []struct {
		role string
		m    any
		sigs []metadata.Signature
	}{{metadata.TARGETS, tg, tg.Signatures}, {metadata.SNAPSHOT, sn, sn.Signatures}, {metadata.TIMESTAMP, ts, ts.Signatures}} {
		if err := root.VerifyDelegate(v.role, v.m); err != nil {
			// Signed by keys the root no longer names: re-sign it all.
			ids = nil
			break
		}
		ids = append(ids, v.sigs[0].KeyID)
	}
	rules, err := rulesOf(tg)
	if err != nil {
		return nil, err
	}
	return &Set{
		Roots: roots, Timestamp: timestamp, Snapshot: snapshot, Target: targets, Rules: rules,
		TargetsVersion: tg.Signed.Version, SnapshotVersion: sn.Signed.Version, TimestampVersion: ts.Signed.Version,
		TargetsExpires: tg.Signed.Expires, SnapshotExpires: sn.Signed.Expires, TimestampExpires: ts.Signed.Expires,
		keyIDs: strings.Join(ids, ""),
	}, nil
}

// Normalize returns a copy of rules sorted by identity, each rule's files
// by version and name: the order targets is read back in.
func Normalize(rules []Rule) []Rule {
	out := cloneRules(rules)
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.Identity, b.Identity) })
	for i := range out {
		sortFiles(out[i].Files)
	}
	return out
}

func sortFiles(fs []File) {
	slices.SortFunc(fs, func(a, b File) int {
		if c := compare(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// rulesOf returns the rules targets names, sorted by identity.
func rulesOf(t *metadata.Metadata[metadata.TargetsType]) ([]Rule, error) {
	by := map[string]*Rule{}
	var ids []string
	for path, tf := range t.Signed.Targets {
		id, f, c, err := entry(path, tf)
		if err != nil {
			return nil, err
		}
		r := by[id]
		if r == nil {
			r = &Rule{Identity: id}
			by[id] = r
			ids = append(ids, id)
		}
		switch c.State {
		case StateApproved:
			r.Approved, r.DowngradeFrom = f.Version, c.DowngradeFrom
		case StatePending:
			r.Pending = f.Version
		}
		r.Files = append(r.Files, f)
	}
	slices.Sort(ids)
	out := make([]Rule, 0, len(ids))
	for _, id := range ids {
		r := by[id]
		sortFiles(r.Files)
		out = append(out, *r)
	}
	return out, nil
}

// entry splits a targets entry into its identity and file.
func entry(path string, tf *metadata.TargetFiles) (identity string, f File, c custom, err error) {
	parts := strings.Split(path, "/")
	if len(parts) != 7 {
		return "", File{}, c, fmt.Errorf("targets: %q is not DeviceType/Vendor/Model/Revision/Locale/Version/File", path)
	}
	sum := tf.Hashes["sha256"]
	if len(sum) != 32 {
		return "", File{}, c, fmt.Errorf("targets: %s has no SHA-256", path)
	}
	if tf.Custom == nil {
		return "", File{}, c, fmt.Errorf("targets: %s has no custom object", path)
	}
	if err := json.Unmarshal(*tf.Custom, &c); err != nil {
		return "", File{}, c, fmt.Errorf("targets: %s: custom: %w", path, err)
	}
	if c.State != StateApproved && c.State != StatePending {
		return "", File{}, c, fmt.Errorf("targets: %s: state %q", path, c.State)
	}
	return strings.Join(parts[:5], "/"), File{Version: parts[5], Name: parts[6], Length: tf.Length, SHA256: hex.EncodeToString(sum), Pieces: c.Pieces}, c, nil
}
