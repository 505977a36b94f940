package updatemeta

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/pieces"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

var exp = Expiries{Timestamp: 24 * time.Hour, Snapshot: 7 * 24 * time.Hour, Targets: 30 * 24 * time.Hour}

const id = "UCPhone/Polycom/CX600/A/ENU"

func sum(s string) string { return hex.EncodeToString(sha256Of([]byte(s))) }

// rule returns a rule of id with an image per version.
func rule(identity, approved, pending string) Rule {
	r := Rule{Identity: identity, Approved: approved, Pending: pending}
	for _, v := range []string{approved, pending} {
		if v != "" {
			r.Files = append(r.Files, File{Version: v, Name: "image.nbt", Length: int64(len("img" + v)), SHA256: sum("img" + v), Pieces: pieces.List{}.Digest()})
		}
	}
	return r
}

// server is a keyring, a signer and the set it serves.
type server struct {
	t    *testing.T
	k    *Keyring
	s    *Signer
	set  *Set
	now  time.Time
	prev []Rule
}

func newServer(t *testing.T) *server {
	t.Helper()
	k, err := Init(filepath.Join(t.TempDir(), "keys"), t0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &server{t: t, k: k, s: NewSigner(k), now: t0}
}

func (s *server) publish(rules ...Rule) {
	s.t.Helper()
	rules = WithDowngrades(s.prev, rules)
	set, _, err := s.s.Publish(s.set, rules, s.now, exp)
	if err != nil {
		s.t.Fatal(err)
	}
	s.set, s.prev = &set, rules
}

// fetch serves a set.
func fetchFrom(set *Set) Fetch {
	return func(_ context.Context, name string, limit int64) ([]byte, error) {
		var b []byte
		switch name {
		case "timestamp.json":
			b = set.Timestamp
		case "snapshot.json":
			b = set.Snapshot
		case "targets.json":
			b = set.Target
		default:
			var v int
			if _, err := fmt.Sscanf(name, "%d.root.json", &v); err != nil || v < 1 || v > len(set.Roots) {
				return nil, ErrNotFound
			}
			b = set.Roots[v-1]
		}
		if int64(len(b)) > limit {
			return nil, errors.New("too large")
		}
		return b, nil
	}
}

func offer(v string) []Offered {
	return []Offered{{Name: "image.nbt", Length: int64(len("img" + v)), SHA256: sum("img" + v)}}
}

func TestKeyringInitLoadRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := Init(dir, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, t0, time.Hour); !errors.Is(err, ErrExist) {
		t.Errorf("Init again: %v, want ErrExist", err)
	}
	for _, f := range []string{RootKeyFile, TargetsKeyFile, SnapshotKeyFile, TimestampKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, m)
		}
	}
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(l.Targets) != KeyID(k.Targets) || KeyID(l.Root) != KeyID(k.Root) || l.RootVersion() != 1 {
		t.Errorf("Load: keys or root version differ from Init's")
	}
	// The root key goes offline; rotating the online keys needs it back.
	rootKey := l.Root
	if err := os.Remove(filepath.Join(dir, RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(dir); err != nil || l.Root != nil {
		t.Fatalf("Load without the root key: %v, root %v", err, l.Root != nil)
	}
	if err := l.Rotate(t0, RotateOptions{Online: true, RootExpiry: time.Hour}); !errors.Is(err, ErrNoRootKey) {
		t.Errorf("Rotate without the root key: %v, want ErrNoRootKey", err)
	}
	oldTargets := KeyID(l.Targets)
	if err := l.Rotate(t0, RotateOptions{Online: true, RootKey: rootKey, RootExpiry: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an online rotation wrote the offline root key back: %v", err)
	}
	l2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l2.RootVersion() != 2 || KeyID(l2.Targets) == oldTargets {
		t.Errorf("after Rotate: root version %d, targets key changed %v; want 2, true", l2.RootVersion(), KeyID(l2.Targets) != oldTargets)
	}
	if err := l2.Rotate(t0, RotateOptions{Root: true, RootKey: rootKey, RootExpiry: time.Hour}); err != nil {
		t.Fatal(err)
	}
	l3, err := Load(dir)
	if err != nil || l3.RootVersion() != 3 || l3.Root == nil || KeyID(l3.Root) == KeyID(rootKey) {
		t.Fatalf("after a root rotation: %v, version %d; want 3 and a new root key in the directory", err, l3.RootVersion())
	}
}

func TestClientFollowsAndRefuses(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""), rule("UCPhone/Polycom/CX500/A/ENU", "1.0.0.1", ""))
	c, err := NewClient(s.k.LatestRoot(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckOffer("0.9.0.0", "1.0.0.1", offer("1.0.0.1")); err != nil {
		t.Errorf("a signed offer: %v", err)
	}
	old := *s.set
	s.now = s.now.Add(time.Hour)
	s.publish(rule(id, "2.0.0.1", ""))
	newer := *s.set

	tests := []struct {
		name          string
		first         *Set // refreshed from before, if set
		set           func() *Set
		now           time.Time
		current, v    string
		files         []Offered
		refresh, want Reason
	}{
		{name: "new approval", set: func() *Set { return &newer }, current: "1.0.0.1", v: "2.0.0.1", files: offer("2.0.0.1")},
		{name: "replayed metadata", first: &newer, set: func() *Set { return &old }, current: "1.0.0.1", v: "1.0.0.1", refresh: ReasonRollback},
		{name: "expired metadata", set: func() *Set { return &newer }, now: s.now.Add(25 * time.Hour), refresh: ReasonExpired},
		{name: "changed hash in answer", set: func() *Set { return &newer }, current: "1.0.0.1", v: "2.0.0.1", files: offer("2.0.0.2"), want: ReasonAnswerHash},
		{name: "unsigned version", set: func() *Set { return &newer }, current: "1.0.0.1", v: "3.0.0.1", files: offer("3.0.0.1"), want: ReasonNotSigned},
		{name: "tampered targets", set: func() *Set {
			x := newer
			x.Target = []byte(strings.Replace(string(x.Target), sum("img2.0.0.1"), sum("evil"), 1))
			return &x
		}, refresh: ReasonMetaHash},
		{name: "forged timestamp", set: func() *Set {
			x := newer
			x.Timestamp = []byte(strings.Replace(string(x.Timestamp), `"_type":"timestamp"`, `"_type":"timestamp","x":1`, 1))
			return &x
		}, refresh: ReasonSignature},
		{name: "garbage", set: func() *Set { x := newer; x.Timestamp = []byte("{"); return &x }, refresh: ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c2 := new(Client)
			*c2 = *c // each case from the client that trusts the first set
			now := tc.now
			if now.IsZero() {
				now = s.now
			}
			if tc.first != nil {
				if err := c2.Refresh(ctx, fetchFrom(tc.first), now); err != nil {
					t.Fatal(err)
				}
			}
			err := c2.Refresh(ctx, fetchFrom(tc.set()), now)
			if got := ReasonOf(err); got != tc.refresh {
				t.Fatalf("Refresh: %v (reason %q), want reason %q", err, got, tc.refresh)
			}
			if err != nil {
				return
			}
			_, err = c2.CheckOffer(tc.current, tc.v, tc.files)
			if got := ReasonOf(err); got != tc.want {
				t.Errorf("CheckOffer: %v (reason %q), want reason %q", err, got, tc.want)
			}
		})
	}
}

func TestRestoreIsSignedDowngrade(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", "2.0.0.1"))
	s.publish(rule(id, "2.0.0.1", "")) // approve
	c, err := NewClient(s.k.LatestRoot(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	// Before the restore, 1.0.0.1 is not even signed any more.
	if _, err := c.CheckOffer("2.0.0.1", "1.0.0.1", offer("1.0.0.1")); ReasonOf(err) != ReasonNotSigned {
		t.Errorf("an older version before the restore: %v, want %s", err, ReasonNotSigned)
	}
	s.publish(rule(id, "1.0.0.1", "")) // restore
	if err := c.Refresh(ctx, fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckOffer("2.0.0.1", "1.0.0.1", offer("1.0.0.1")); err != nil {
		t.Errorf("the restore: %v", err)
	}
	if _, err := c.CheckOffer("3.0.0.1", "1.0.0.1", offer("1.0.0.1")); ReasonOf(err) != ReasonDowngrade {
		t.Errorf("a downgrade from a version the restore does not name: %v, want %s", err, ReasonDowngrade)
	}
	// The restore stays signed while 1.0.0.1 stays approved, and goes
	// when a newer version is approved.
	s.publish(rule(id, "1.0.0.1", "3.0.0.1"))
	if got := s.prev[0].DowngradeFrom; len(got) != 1 || got[0] != "2.0.0.1" {
		t.Errorf("DowngradeFrom after an import = %v, want [2.0.0.1]", got)
	}
	s.publish(rule(id, "3.0.0.1", ""))
	if got := s.prev[0].DowngradeFrom; got != nil {
		t.Errorf("DowngradeFrom after a new approval = %v, want none", got)
	}
}

func TestRotationWithoutReprovisioning(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""))
	c, err := NewClient(s.k.LatestRoot(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	signedByOld := *s.set
	if err := s.k.Rotate(s.now, RotateOptions{Online: true, RootExpiry: time.Hour * 24 * 365}); err != nil {
		t.Fatal(err)
	}
	if err := s.k.Rotate(s.now, RotateOptions{Root: true, RootExpiry: time.Hour * 24 * 365}); err != nil {
		t.Fatal(err)
	}
	s.s = NewSigner(s.k)
	s.publish(rule(id, "2.0.0.1", ""))
	if err := c.Refresh(ctx, fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	if c.RootVersion() != 3 {
		t.Errorf("root version %d, want 3", c.RootVersion())
	}
	if _, err := c.CheckOffer("1.0.0.1", "2.0.0.1", offer("2.0.0.1")); err != nil {
		t.Error(err)
	}
	// A relay serving metadata signed with the old online keys (and
	// hiding the new roots) is refused: the client trusts root 3 now.
	signedByOld.TimestampVersion = 99
	if err := c.Refresh(ctx, fetchFrom(&signedByOld), s.now); ReasonOf(err) != ReasonSignature {
		t.Errorf("metadata signed by rotated-out keys: %v, want %s", err, ReasonSignature)
	}
}

func TestPublishResignsBeforeExpiry(t *testing.T) {
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""))
	first := *s.set
	set, changed, err := s.s.Publish(&first, s.prev, s.now.Add(time.Hour), exp)
	if err != nil || changed {
		t.Fatalf("Publish an hour later: changed %v, %v; want unchanged", changed, err)
	}
	set, changed, err = s.s.Publish(&first, s.prev, s.now.Add(13*time.Hour), exp)
	if err != nil || !changed || set.TimestampVersion <= first.TimestampVersion || set.TargetsVersion != first.TargetsVersion {
		t.Fatalf("Publish past half the timestamp's validity: changed %v, %v, timestamp %d, targets %d; want a new timestamp only", changed, err, set.TimestampVersion, set.TargetsVersion)
	}
	p, err := ParseSet(set.Roots, set.Timestamp, set.Snapshot, set.Target)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, _ := s.s.Publish(p, s.prev, s.now.Add(13*time.Hour), exp); changed {
		t.Errorf("a set read back with ParseSet is re-signed for nothing")
	}
}

func TestCheckPieces(t *testing.T) {
	data := []byte(strings.Repeat("x", pieces.PieceSize+10))
	l, err := pieces.Compute(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	f := File{Name: "image.nbt", Length: int64(len(data)), Pieces: l.Digest()}
	if _, err := CheckPieces(l.Marshal(), f); err != nil {
		t.Errorf("the signed list: %v", err)
	}
	other, _ := pieces.Compute(strings.NewReader(string(data[1:])))
	if _, err := CheckPieces(other.Marshal(), f); ReasonOf(err) != ReasonPieces {
		t.Errorf("another list: %v, want %s", err, ReasonPieces)
	}
}

// TestSharedCache: clients sharing a Cache (a simulator's fleet) verify
// the same way as alone: a hit never skips a device's own checks.
func TestSharedCache(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""))
	first := *s.set
	s.now = s.now.Add(time.Hour)
	s.publish(rule(id, "2.0.0.1", ""))
	second := *s.set
	cache := NewCache()
	a, err := NewClient(s.k.LatestRoot(), id, cache)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewClient(s.k.LatestRoot(), id, cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b} {
		if err := c.Refresh(ctx, fetchFrom(&second), s.now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.CheckOffer("1.0.0.1", "2.0.0.1", offer("2.0.0.1")); err != nil {
		t.Errorf("the second client, from the cache: %v", err)
	}
	// A client that trusted the second set refuses the first, cached or not.
	if err := a.Refresh(ctx, fetchFrom(&first), s.now); ReasonOf(err) != ReasonRollback {
		t.Errorf("a replay to a client of the shared cache: %v, want %s", err, ReasonRollback)
	}
	// Targets changed in transit are refused though the genuine ones are cached.
	bad := second
	bad.Target = []byte(strings.Replace(string(bad.Target), sum("img2.0.0.1"), sum("evil"), 1))
	c, err := NewClient(s.k.LatestRoot(), id, cache)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, fetchFrom(&bad), s.now); ReasonOf(err) != ReasonMetaHash {
		t.Errorf("tampered targets with the genuine ones cached: %v, want %s", err, ReasonMetaHash)
	}
	// Expired metadata is refused by a client of the shared cache.
	if err := b.Refresh(ctx, fetchFrom(&second), s.now.Add(25*time.Hour)); ReasonOf(err) != ReasonExpired {
		t.Errorf("expired, from the cache: %v, want %s", err, ReasonExpired)
	}
}

// countingClient publishes 1.0.0.1 on a new server and returns a client
// that trusts it, and the fetches of a set that append the names they
// fetch to *fetched.
func countingClient(t *testing.T) (*server, *Client, *[]string, func(*Set) Fetch) {
	t.Helper()
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""))
	c, err := NewClient(s.k.LatestRoot(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fetched []string
	counting := func(set *Set) Fetch {
		f := fetchFrom(set)
		return func(ctx context.Context, name string, limit int64) ([]byte, error) {
			fetched = append(fetched, name)
			return f(ctx, name, limit)
		}
	}
	if err := c.Refresh(context.Background(), counting(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	return s, c, &fetched, counting
}

// TestRefreshFetches counts what a device fetches: an unchanged timestamp
// is the whole refresh; a timestamp re-signed before it expires adds the
// next root's 404; a catalog change adds the snapshot and targets.
func TestRefreshFetches(t *testing.T) {
	ctx := context.Background()
	s, c, fetched, counting := countingClient(t)
	for _, tc := range []struct {
		name  string
		step  func()
		fetch string
	}{
		{"unchanged", func() {}, "timestamp.json"},
		{"timestamp re-signed", func() { s.now = s.now.Add(13 * time.Hour); s.publish(s.prev...) }, "timestamp.json 2.root.json"},
		{"catalog change", func() { s.publish(rule(id, "2.0.0.1", "")) }, "timestamp.json 2.root.json snapshot.json targets.json"},
	} {
		tc.step()
		*fetched = nil
		if err := c.Refresh(ctx, counting(s.set), s.now); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if g := strings.Join(*fetched, " "); g != tc.fetch {
			t.Errorf("%s: fetched %q, want %q", tc.name, g, tc.fetch)
		}
	}
}

// TestClientCurrent: the answer's hint spares a refresh only for the
// timestamp version the client trusts, before anything it trusts
// expires; a client that trusts nothing yet always refreshes.
func TestClientCurrent(t *testing.T) {
	s := newServer(t)
	s.publish(rule(id, "1.0.0.1", ""))
	c, err := NewClient(s.k.LatestRoot(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := s.set.TimestampVersion
	if c.Current(v, s.now) {
		t.Errorf("a client that trusts no timestamp yet skips the refresh")
	}
	if err := c.Refresh(context.Background(), fetchFrom(s.set), s.now); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		advertised int64
		at         time.Time
		want       bool
	}{
		{"the trusted version", v, s.now.Add(time.Minute), true},
		{"a newer version", v + 1, s.now.Add(time.Minute), false},
		{"an older version", v - 1, s.now.Add(time.Minute), false},
		{"not told", 0, s.now.Add(time.Minute), false},
		{"the trusted version, expired", v, s.set.TimestampExpires, false},
	} {
		if got := c.Current(tt.advertised, tt.at); got != tt.want {
			t.Errorf("%s: Current(%d) = %v, want %v", tt.name, tt.advertised, got, tt.want)
		}
	}
}

// TestRefreshHinted: a timestamp stapled to the answer replaces the
// request for it, and an answer that names the trusted root as the latest
// spares the look for the next; both are verified as fetched metadata is,
// and a lie about either costs no more than withholding would.
func TestRefreshHinted(t *testing.T) {
	ctx := context.Background()
	s, c, fetched, counting := countingClient(t)
	staple := func() Hint {
		return Hint{Timestamp: s.set.TimestampVersion, Root: int64(len(s.set.Roots)), Stapled: s.set.Timestamp}
	}
	old := *s.set
	var serve *Set // what the server serves, if not s.set
	for _, tc := range []struct {
		name   string
		step   func()
		hint   func() Hint
		fetch  string
		reason Reason
	}{
		{"re-signed, stapled", func() { s.now = s.now.Add(13 * time.Hour); s.publish(s.prev...) }, staple, "", ""},
		{"re-signed, stapled, root not named", func() { s.now = s.now.Add(13 * time.Hour); s.publish(s.prev...) },
			func() Hint { h := staple(); h.Root = 0; return h }, "2.root.json", ""},
		{"re-signed, not stapled", func() { s.now = s.now.Add(13 * time.Hour); s.publish(s.prev...) },
			func() Hint { h := staple(); h.Stapled = nil; return h }, "timestamp.json", ""},
		{"catalog change, stapled", func() { s.publish(rule(id, "2.0.0.1", "")) }, staple, "snapshot.json targets.json", ""},
		{"the trusted timestamp stapled", func() {}, staple, "", ""},
		{"an old timestamp stapled: fetched", func() {}, func() Hint { h := staple(); h.Stapled = old.Timestamp; return h }, "timestamp.json", ""},
		{"garbage stapled: fetched", func() {}, func() Hint { h := staple(); h.Stapled = []byte("{not a timestamp"); return h }, "timestamp.json", ""},
		{"an old timestamp stapled and served", func() { serve = &old }, func() Hint { h := staple(); h.Stapled = old.Timestamp; return h }, "timestamp.json 2.root.json", ReasonRollback},
		{"too big to be a timestamp: fetched", func() {}, func() Hint { h := staple(); h.Stapled = make([]byte, 17<<10); return h }, "timestamp.json", ""},
	} {
		serve = nil
		tc.step()
		*fetched = nil
		before := c.TimestampVersion()
		from := s.set
		if serve != nil {
			from = serve
		}
		err := c.RefreshHinted(ctx, counting(from), s.now, tc.hint())
		if ReasonOf(err) != tc.reason || (tc.reason == "" && err != nil) {
			t.Errorf("%s: %v, want reason %q", tc.name, err, tc.reason)
		}
		if g := strings.Join(*fetched, " "); g != tc.fetch {
			t.Errorf("%s: fetched %q, want %q", tc.name, g, tc.fetch)
		}
		if tc.reason != "" && c.TimestampVersion() != before {
			t.Errorf("%s: the trusted timestamp moved from %d to %d on a refusal", tc.name, before, c.TimestampVersion())
		}
		if tc.reason == "" && c.TimestampVersion() != s.set.TimestampVersion {
			t.Errorf("%s: trusts timestamp %d, want %d", tc.name, c.TimestampVersion(), s.set.TimestampVersion)
		}
	}
	if _, err := c.CheckOffer("1.0.0.1", "2.0.0.1", offer("2.0.0.1")); err != nil {
		t.Errorf("the offer signed after a stapled refresh: %v", err)
	}

	// Keys rotated: an answer that hides the new root (naming the trusted
	// one) costs a second refresh that fetches the chain; one naming it
	// makes the client follow it at once.
	if err := s.k.Rotate(s.now, RotateOptions{Online: true, RootExpiry: time.Hour * 24 * 365}); err != nil {
		t.Fatal(err)
	}
	s.s = NewSigner(s.k)
	s.publish(rule(id, "3.0.0.1", ""))
	lying := staple()
	lying.Root = c.RootVersion()
	*fetched = nil
	if err := c.RefreshHinted(ctx, counting(s.set), s.now, lying); err != nil {
		t.Fatalf("a new root hidden by the hint: %v", err)
	}
	if c.RootVersion() != 2 || strings.Join(*fetched, " ") != "timestamp.json 2.root.json 3.root.json snapshot.json targets.json" {
		t.Errorf("a new root hidden by the hint: root %d, fetched %q; want root 2 after a refresh without hints", c.RootVersion(), strings.Join(*fetched, " "))
	}
	if err := s.k.Rotate(s.now, RotateOptions{Online: true, RootExpiry: time.Hour * 24 * 365}); err != nil {
		t.Fatal(err)
	}
	s.s = NewSigner(s.k)
	s.publish(rule(id, "4.0.0.1", ""))
	*fetched = nil
	if err := c.RefreshHinted(ctx, counting(s.set), s.now, staple()); err != nil {
		t.Fatal(err)
	}
	if c.RootVersion() != 3 || strings.Join(*fetched, " ") != "3.root.json 4.root.json snapshot.json targets.json" {
		t.Errorf("a new root named by the hint: root %d, fetched %q; want root 3, the chain, snapshot and targets", c.RootVersion(), strings.Join(*fetched, " "))
	}
}
