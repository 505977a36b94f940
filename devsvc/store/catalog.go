package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// Catalog is an immutable in-memory view of the catalog (rules, committed
// updates, test devices) as of one history number. The store replaces it
// atomically after every catalog commit, so the check-in hot path reads it
// without locks or I/O. What it returns are copies.
type Catalog struct {
	seq     uint64
	rules   map[firmware.Identity]firmware.Rule
	sorted  []firmware.Rule
	byID    map[string]firmware.Identity
	updates map[updateKey]firmware.Update
	tests   firmware.TestDevices
	sites   *firmware.SiteTable
	// rollouts are the rules' rollouts by rule ID, the last of each rule
	// (live or ended); approvals marks those an approve made.
	rollouts  map[string]firmware.Rollout
	approvals map[string]bool
}

type updateKey struct {
	id firmware.Identity
	v  firmware.Version
}

// Catalog returns the current snapshot.
func (s *Store) Catalog() *Catalog { return s.cat.Load() }

// Rule returns the rule for id.
func (c *Catalog) Rule(id firmware.Identity) (firmware.Rule, bool) {
	r, ok := c.rules[id]
	return r, ok
}

// Rules returns every rule, sorted by identity path.
func (c *Catalog) Rules() []firmware.Rule { return slices.Clone(c.sorted) }

// Update returns the committed update of id at version v.
func (c *Catalog) Update(id firmware.Identity, v firmware.Version) (firmware.Update, bool) {
	u, ok := c.updates[updateKey{id, v}]
	if ok {
		u.Files = slices.Clone(u.Files)
	}
	return u, ok
}

// IsTestDevice reports whether the device with this MAC or serial number
// is a test device. mac is normalized if it is not already.
func (c *Catalog) IsTestDevice(mac, serial string) bool {
	if c.tests.Contains(mac, serial) {
		return true
	}
	if mac == "" || len(c.tests) == 0 {
		return false
	}
	m, err := firmware.NormalizeMAC(mac)
	return err == nil && m != mac && c.tests.Contains(m, "")
}

// Seq returns the history number the snapshot reflects.
func (c *Catalog) Seq() uint64 { return c.seq }

// Sites returns the site table: every site, and the lookup of a device's
// site by its address (SiteTable.Lookup; SiteTable.Remote for devices
// through the edge). The table is shared and immutable; a change of sites
// publishes a new snapshot with a new table. Never nil.
func (c *Catalog) Sites() *firmware.SiteTable { return c.sites }

// Rollout returns the rollout of the rule with this ID: the last one
// started, live or ended (a rule has at most one). The check-in decision
// takes it as the OfferRequest's Rollout whatever its state (Decide
// ignores one that no longer governs the rule). Its Waves are shared with
// the snapshot: do not modify them. It allocates nothing.
func (c *Catalog) Rollout(ruleID string) (firmware.Rollout, bool) {
	r, ok := c.rollouts[ruleID]
	return r, ok
}

// Rollouts returns every rule's rollout, sorted by identity path.
func (c *Catalog) Rollouts() []firmware.Rollout {
	out := make([]firmware.Rollout, 0, len(c.rollouts))
	for _, r := range c.sorted {
		if ro, ok := c.rollouts[r.ID]; ok {
			ro.Waves = slices.Clone(ro.Waves)
			out = append(out, ro)
		}
	}
	return out
}

// IsApproval reports whether the rule's rollout is the one-wave rollout
// of an approve (now or --at) rather than of rollout start.
func (c *Catalog) IsApproval(ruleID string) bool { return c.approvals[ruleID] }

// loadCatalog reads the catalog snapshot from tx; zones loads the sites'
// time zones.
func loadCatalog(tx *bolt.Tx, zones func(string) (*time.Location, error)) (*Catalog, error) {
	c := &Catalog{
		seq:       tx.Bucket(bucketHistory).Sequence(),
		rules:     make(map[firmware.Identity]firmware.Rule),
		byID:      make(map[string]firmware.Identity),
		updates:   make(map[updateKey]firmware.Update),
		tests:     make(firmware.TestDevices),
		rollouts:  make(map[string]firmware.Rollout),
		approvals: make(map[string]bool),
	}
	err := tx.Bucket(bucketRules).ForEach(func(k, v []byte) error {
		var r firmware.Rule
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("rule %q: %w", k, err)
		}
		c.rules[r.Identity] = r
		c.byID[r.ID] = r.Identity
		c.sorted = append(c.sorted, r) // keys are identity paths: sorted
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
		u, err := decodeUpdate(k, v)
		if err != nil {
			return err
		}
		c.updates[updateKey{u.Identity, u.Version}] = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketTestDevices).ForEach(func(k, v []byte) error {
		var t firmware.TestDevice
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("test device %q: %w", k, err)
		}
		c.tests.Add(t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sites, err := readSites(tx)
	if err != nil {
		return nil, err
	}
	if c.sites, err = firmware.NewSiteTable(sites, zones); err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	err = tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
		rec, err := decodeRollout(k, v)
		if err != nil {
			return err
		}
		c.rollouts[rec.Rule] = rec.Rollout
		if rec.Approval {
			c.approvals[rec.Rule] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// updateRecord is an update as stored: firmware.Image keeps its digest out
// of JSON, the record keeps it in hex.
type updateRecord struct {
	Identity   firmware.Identity `json:"identity"`
	Version    firmware.Version  `json:"version"`
	UpdateType string            `json:"updateType,omitempty"`
	Files      []fileRecord      `json:"files"`
	Imported   time.Time         `json:"imported"`
	Seq        uint64            `json:"seq,omitempty"`
}

type fileRecord struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	SHA256 string        `json:"sha256"`
	Role   firmware.Role `json:"role"`
}

func recordOf(u firmware.Update) updateRecord {
	r := updateRecord{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType, Imported: u.Imported, Seq: u.Seq}
	for _, f := range u.Files {
		r.Files = append(r.Files, fileRecord{Name: f.Name, Size: f.Size, SHA256: f.SHA256Hex(), Role: f.Role})
	}
	return r
}

func decodeUpdate(k, v []byte) (firmware.Update, error) {
	var r updateRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return firmware.Update{}, fmt.Errorf("update %q: %w", k, err)
	}
	u := firmware.Update{Identity: r.Identity, Version: r.Version, UpdateType: r.UpdateType, Imported: r.Imported, Seq: r.Seq}
	for _, f := range r.Files {
		im := firmware.Image{Name: f.Name, Size: f.Size, Role: f.Role}
		if decodeHex(im.SHA256[:], f.SHA256) != nil {
			return firmware.Update{}, fmt.Errorf("update %q: file %q: bad SHA-256 %q", k, f.Name, f.SHA256)
		}
		u.Files = append(u.Files, im)
	}
	if err := u.Validate(); err != nil {
		return firmware.Update{}, fmt.Errorf("update %q: %w", k, err)
	}
	if string(k) != updateKeyOf(u.Identity, u.Version) {
		return firmware.Update{}, fmt.Errorf("update %q: record says %s", k, u.Dir())
	}
	return u, nil
}

// decodeHex decodes s into dst, which it must fill exactly.
func decodeHex(dst []byte, s string) error {
	if len(s) != hex.EncodedLen(len(dst)) {
		return fmt.Errorf("%d hex digits, want %d", len(s), hex.EncodedLen(len(dst)))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// updateKeyOf is an update's key in the updates bucket, also its directory
// under DeviceUpdateFiles.
func updateKeyOf(id firmware.Identity, v firmware.Version) string {
	return id.Path() + "/" + v.String()
}

// maxSuggestions bounds the rules a "not found" error suggests.
const maxSuggestions = 5

// notFoundRule is the error for a rule reference that names nothing. It
// quotes ref as it was typed and suggests the identity paths of the rules
// it may have meant: the same path in another case, or the rules whose
// model (or consecutive names) it names, like CX600.
func notFoundRule(b *bolt.Bucket, ref string, cause error) error {
	var sugg []string
	trimmed := strings.Trim(strings.TrimSpace(ref), "/")
	want := strings.Split(strings.ToLower(trimmed), "/")
	b.ForEach(func(k, _ []byte) error {
		if trimmed != "" && len(sugg) < maxSuggestions && namesParts(strings.Split(strings.ToLower(string(k)), "/"), want) {
			sugg = append(sugg, string(k))
		}
		return nil
	})
	msg := fmt.Sprintf("store: rule %q %v", ref, ErrNotFound)
	switch len(sugg) {
	case 0:
		msg += ": name a rule by its ID or its identity path DeviceType/Vendor/Model/Revision/Locale (like UCPhone/Polycom/CX600/A/ENU), as the rule list shows them"
		if cause != nil {
			msg += " (" + cause.Error() + ")"
		}
	case 1:
		msg += ": did you mean " + sugg[0] + "? Name a rule by its ID or its whole identity path"
	default:
		msg += ": did you mean one of " + strings.Join(sugg, ", ") + "? Name a rule by its ID or its whole identity path"
	}
	return &notFoundError{msg: msg, cause: cause}
}

// namesParts reports whether want is a run of consecutive parts of path.
func namesParts(path, want []string) bool {
	for i := 0; i+len(want) <= len(path); i++ {
		if slices.Equal(path[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// notFoundError is ErrNotFound (and its cause, if any) with a message
// that names the reference and suggests rules.
type notFoundError struct {
	msg   string
	cause error
}

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrNotFound}
	}
	return []error{ErrNotFound, e.cause}
}

// getRule finds the rule named by ref, a rule ID (in any case) or an
// identity path (exactly as the rule list shows it).
func getRule(tx *bolt.Tx, ref string) (firmware.Rule, error) {
	b := tx.Bucket(bucketRules)
	var r firmware.Rule
	if strings.Contains(ref, "/") {
		id, err := firmware.ParseIdentity(strings.TrimSpace(ref))
		if err != nil {
			return r, notFoundRule(b, ref, err)
		}
		ok, err := getJSON(b, []byte(id.Path()), &r)
		if err != nil {
			return r, err
		}
		if !ok {
			return r, notFoundRule(b, ref, nil)
		}
		return r, nil
	}
	want := strings.ToLower(strings.TrimSpace(ref))
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := json.Unmarshal(v, &r); err != nil {
			return r, fmt.Errorf("rule %q: %w", k, err)
		}
		if r.ID == want {
			return r, nil
		}
	}
	return firmware.Rule{}, notFoundRule(b, ref, nil)
}

// Rule returns the rule named by ref, a rule ID or an identity path, as
// committed. A reference that names no rule is ErrNotFound with a message
// that says how to name one.
func (s *Store) Rule(ctx context.Context, ref string) (firmware.Rule, error) {
	var r firmware.Rule
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getRule(tx, ref)
		return err
	})
	return r, err
}

// Updates returns every stored update, sorted by identity path and then
// version, oldest first.
func (s *Store) Updates(ctx context.Context) ([]firmware.Update, error) {
	var us []firmware.Update
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
			u, err := decodeUpdate(k, v)
			if err != nil {
				return err
			}
			us = append(us, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: updates: %w", err)
	}
	sortUpdates(us)
	return us, nil
}

func sortUpdates(us []firmware.Update) {
	slices.SortFunc(us, func(a, b firmware.Update) int {
		if c := strings.Compare(a.Identity.Path(), b.Identity.Path()); c != 0 {
			return c
		}
		return a.Version.Compare(b.Version)
	})
}
