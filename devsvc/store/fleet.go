package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/firmware"
)

// The fleet index.
//
// The store keeps, beside the devices bucket, an index of every device in
// memory: what the check-in decision, rollout progress, alarms and the
// device queries need (its identity, site, cohort, version, last report,
// attempt, last check-in), without the modules, addresses and history of
// the record. Open loads it from the devices bucket; RecordCheckIn and
// Report update it synchronously, under the index's lock and in the same
// critical section as they queue the write, so the index holds exactly
// the operations accepted (none that ErrBusy or ErrUnavailable refused),
// in the order the writer applies them. The attempt a write carries is the
// one the index computed, so the record the writer stores and the index
// agree however the writes are batched.
//
// Devices are never removed: entries are appended, found by key through a
// map, and kept in key order (for paged listings) by a sorted slice of
// their positions that new entries join at the next query.

// fleet is the in-memory index of the inventory.
type fleet struct {
	mu    sync.RWMutex
	byKey map[string]int32
	devs  []devEntry
	// order holds the positions of devs[:len(order)] sorted by key; the
	// entries after them join it at the next query (sortNew).
	order []int32

	ids    []firmware.Identity // interned identities; 0 is the zero identity
	idOf   map[firmware.Identity]uint32
	sites  []string // interned site names; 0 is ""
	siteOf map[string]uint16

	// taking counts, per identity and version, the devices taking that
	// version (see firmware.Attempt.Taking), kept as attempts change and
	// set exactly by setTaking; the check-in decision reads it for a
	// rollout's MaxDownloads.
	taking map[takingKey]int
	// earliest is, per identity and version, when the current wave of its
	// rollout can reach success at the earliest (set by the rollout
	// engine's steps, StepRollout; firmware.Rollout.Earliest).
	earliest map[takingKey]time.Time
}

type takingKey struct {
	id uint32
	v  firmware.Version
}

// devEntry is one device in the index.
type devEntry struct {
	key, serial, user string
	mac               string // "" when it is the key
	id                uint32
	site              uint16
	cohort            uint16
	loc               uint8 // 1 internal, 2 external
	state             firmware.State
	errCode           string
	hold              firmware.Hold
	version, offered  firmware.Version
	lastCheckIn       int64 // Unix nanoseconds; 0: never
	att               compactAttempt
}

// compactAttempt is a firmware.Attempt with times as Unix nanoseconds.
type compactAttempt struct {
	version                   firmware.Version
	offered, failed, reported int64
	failures                  int32
	state                     firmware.State
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func compact(a firmware.Attempt) compactAttempt {
	return compactAttempt{version: a.Version, offered: nanos(a.Offered), failed: nanos(a.Failed), reported: nanos(a.Reported),
		failures: int32(min(max(a.Failures, 0), 1<<30)), state: a.State}
}

func (c *compactAttempt) attempt() firmware.Attempt {
	return firmware.Attempt{Version: c.version, Offered: fromNanos(c.offered), Failures: int(c.failures), Failed: fromNanos(c.failed),
		State: c.state, Reported: fromNanos(c.reported)}
}

// busy reports whether the attempt counts in taking: its version offered,
// neither finished nor failed. (Taking also excludes stalled devices,
// which only the engine's recount, knowing the time, sees.)
func (c *compactAttempt) busy() bool {
	return !c.version.IsZero() && c.offered != 0 && c.state != firmware.StateFailure && c.state != firmware.StateSuccess
}

func newFleet() *fleet {
	return &fleet{
		byKey:    make(map[string]int32),
		ids:      []firmware.Identity{{}},
		idOf:     map[firmware.Identity]uint32{{}: 0},
		sites:    []string{""},
		siteOf:   map[string]uint16{"": 0},
		taking:   make(map[takingKey]int),
		earliest: make(map[takingKey]time.Time),
	}
}

// internID returns the interned number of id; call with mu held.
func (f *fleet) internID(id firmware.Identity) uint32 {
	if n, ok := f.idOf[id]; ok {
		return n
	}
	n := uint32(len(f.ids))
	f.ids = append(f.ids, id)
	f.idOf[id] = n
	return n
}

// internSite returns the interned number of a site name; call with mu
// held. Past 65535 names every further one is lost to the last number
// (sites are far fewer).
func (f *fleet) internSite(name string) uint16 {
	if n, ok := f.siteOf[name]; ok {
		return n
	}
	if len(f.sites) > 1<<16-1 {
		return uint16(len(f.sites) - 1)
	}
	n := uint16(len(f.sites))
	f.sites = append(f.sites, name)
	f.siteOf[name] = n
	return n
}

func location(l firmware.Location) uint8 {
	switch l {
	case firmware.Internal:
		return 1
	case firmware.External:
		return 2
	}
	return 0
}

// entry returns the entry of key, creating it; call with mu held.
func (f *fleet) entry(key string) *devEntry {
	if i, ok := f.byKey[key]; ok {
		return &f.devs[i]
	}
	f.devs = append(f.devs, devEntry{key: key, cohort: uint16(firmware.Cohort(key))})
	f.byKey[key] = int32(len(f.devs) - 1)
	return &f.devs[len(f.devs)-1]
}

// setAttempt replaces e's attempt, keeping taking; call with mu held.
func (f *fleet) setAttempt(e *devEntry, a compactAttempt) {
	if e.att.version == a.version && e.att.busy() == a.busy() {
		e.att = a // counted the same
		return
	}
	if e.att.busy() {
		k := takingKey{e.id, e.att.version}
		if f.taking[k]--; f.taking[k] <= 0 {
			delete(f.taking, k)
		}
	}
	e.att = a
	if a.busy() {
		f.taking[takingKey{e.id, a.version}]++
	}
}

// setID moves e to identity id, keeping taking; call with mu held.
func (f *fleet) setID(e *devEntry, id uint32) {
	if e.id == id {
		return
	}
	a := e.att
	f.setAttempt(e, compactAttempt{})
	e.id = id
	f.setAttempt(e, a)
}

// load adds a stored record to the index (at Open).
func (f *fleet) load(d *firmware.Device) {
	e := f.entry(d.Key)
	f.fill(e, d)
	f.setAttempt(e, compact(d.Attempt))
	e.state, e.errCode = d.State, d.Error
}

// fill sets e's fields from a check-in's record; call with mu held.
func (f *fleet) fill(e *devEntry, d *firmware.Device) {
	if e.id == 0 || f.ids[e.id] != d.Identity {
		f.setID(e, f.internID(d.Identity))
	}
	e.serial, e.user = d.Serial, d.User
	e.mac = ""
	if d.MAC != e.key {
		e.mac = d.MAC
	}
	if f.sites[e.site] != d.Site {
		e.site = f.internSite(d.Site)
	}
	e.loc = location(d.Location)
	e.hold = d.Hold
	e.version, e.offered = d.Version, d.Offered
	e.lastCheckIn = nanos(d.LastCheckIn)
}

// checkIn applies op's check-in to the index if inv accepts op, whose
// Device's Attempt it sets to the device's new attempt: the device was
// offered Offered (see firmware.Attempt.Offer).
func (f *fleet) checkIn(op *invOp, inv *inventory) error {
	d := op.checkIn
	f.mu.Lock()
	defer f.mu.Unlock()
	var a firmware.Attempt
	i, known := f.byKey[d.Key]
	if known {
		a = f.devs[i].att.attempt()
	}
	a.Offer(d.Offered, d.LastCheckIn)
	d.Attempt = a
	if err := inv.enqueue(op); err != nil {
		return err
	}
	var e *devEntry
	if known {
		e = &f.devs[i]
	} else {
		e = f.entry(d.Key)
	}
	f.fill(e, d)
	f.setAttempt(e, compact(a))
	return nil
}

// report applies op's report to the index if inv accepts op, which it
// sets to carry the device's new attempt.
func (f *fleet) report(op *invOp, inv *inventory) error {
	r := op.report
	f.mu.Lock()
	defer f.mu.Unlock()
	i, known := f.byKey[r.Key]
	if !known {
		return fmt.Errorf("store: report from %s: %w: check in before reporting", r.Key, ErrNotCheckedIn)
	}
	a := f.devs[i].att.attempt()
	if v := f.devs[i].version; r.Target != v && r.Target != a.Version {
		return fmt.Errorf("store: report from %s on %s: %w (runs %s, offered %s)", r.Key, r.Target, ErrNotOffered, versionOrNone(v), versionOrNone(a.Version))
	}
	a.Report(r.Target, r.State, r.Time)
	op.attempt = a
	if err := inv.enqueue(op); err != nil {
		return err
	}
	e := f.entry(r.Key)
	e.state, e.errCode = r.State, r.Error
	if r.State == firmware.StateSuccess && !r.Target.IsZero() {
		e.version = r.Target
	}
	f.setAttempt(e, compact(a))
	return nil
}

// forwarded applies a replica's forwarded batch to the index if inv
// accepts it (as one operation: see fwdBatch), each operation in order as
// checkIn and report would: check-ins get their attempts, reports are
// checked against the index as the items before them leave it, and those
// refused become refusals in the device's history. It returns how many
// reports it refused.
func (f *fleet) forwarded(fb *fwdBatch, inv *inventory) (refused int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// What the index would hold after each item, for the ones after it:
	// the batch is accepted or refused whole.
	type dev struct {
		known   bool
		version firmware.Version
		att     firmware.Attempt
	}
	seen := map[string]*dev{}
	get := func(key string) *dev {
		if d, ok := seen[key]; ok {
			return d
		}
		d := &dev{}
		if i, ok := f.byKey[key]; ok {
			d.known, d.version, d.att = true, f.devs[i].version, f.devs[i].att.attempt()
		}
		seen[key] = d
		return d
	}
	for _, op := range fb.ops {
		d := get(op.key)
		switch {
		case op.checkIn != nil:
			c := op.checkIn
			d.att.Offer(c.Offered, c.LastCheckIn)
			c.Attempt, c.History = d.att, nil
			d.known, d.version = true, c.Version
		case op.report != nil:
			r := op.report
			var why string
			switch {
			case !d.known:
				why = "no check-in"
			case r.Target != d.version && r.Target != d.att.Version:
				why = fmt.Sprintf("runs %s, offered %s", versionOrNone(d.version), versionOrNone(d.att.Version))
			}
			if why != "" {
				refused++
				op.refusal = &refusal{time: r.Time, reason: fmt.Sprintf("report of %s on %s forwarded by replica %s refused: the primary knows %s", r.State, r.Target, fb.name, why)}
				op.report = nil
				continue
			}
			d.att.Report(r.Target, r.State, r.Time)
			op.attempt = d.att
			if r.State == firmware.StateSuccess && !r.Target.IsZero() {
				d.version = r.Target
			}
		}
	}
	if err := inv.enqueue(&invOp{fwd: fb}); err != nil {
		return 0, err
	}
	for _, op := range fb.ops {
		switch {
		case op.checkIn != nil:
			e := f.entry(op.key)
			f.fill(e, op.checkIn)
			f.setAttempt(e, compact(op.checkIn.Attempt))
		case op.report != nil:
			r := op.report
			e := f.entry(op.key)
			e.state, e.errCode = r.State, r.Error
			if r.State == firmware.StateSuccess && !r.Target.IsZero() {
				e.version = r.Target
			}
			f.setAttempt(e, compact(op.attempt))
		}
	}
	return refused, nil
}

// DeviceState is what the inventory knows of a device when it checks in:
// what the check-in decision (firmware.Decide) needs besides the catalog.
type DeviceState struct {
	// Known is false for a device the inventory has never seen; the other
	// fields are then zero but Cohort.
	Known bool
	// Cohort is firmware.Cohort of its key.
	Cohort int
	// Attempt is its progress with the version it was last offered: the
	// OfferRequest's Attempt.
	Attempt firmware.Attempt
	// Version is the version it last said it runs (or reported installing
	// successfully); Site the site of its last check-in.
	Version firmware.Version
	Site    string
	// LastCheckIn is when it last checked in.
	LastCheckIn time.Time
}

// DeviceState returns what the inventory knows of the device with this
// key (firmware.DeviceKey; a MAC in another notation is not normalized
// here: the check-in path has the normalized key). It reflects every
// check-in and report accepted so far, written or not. It allocates
// nothing and takes the index's read lock briefly.
func (s *Store) DeviceState(key string) DeviceState {
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	i, ok := f.byKey[key]
	if !ok {
		return DeviceState{Cohort: firmware.Cohort(key)}
	}
	e := &f.devs[i]
	return DeviceState{Known: true, Cohort: int(e.cohort), Attempt: e.att.attempt(), Version: e.version,
		Site: f.sites[e.site], LastCheckIn: fromNanos(e.lastCheckIn)}
}

// FindDevice returns the key of the device ref names: its key, its MAC
// address in any notation, or its serial number; ok is false when the
// inventory has none. A serial number of a device known by its MAC is
// found by a walk of the index.
func (s *Store) FindDevice(ref string) (key string, ok bool) {
	ref = strings.TrimSpace(ref)
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	if _, ok := f.byKey[ref]; ok {
		return ref, true
	}
	if m, err := firmware.NormalizeMAC(ref); err == nil {
		if _, ok := f.byKey[m]; ok {
			return m, true
		}
	}
	if _, ok := f.byKey["serial:"+ref]; ok {
		return "serial:" + ref, true
	}
	for i := range f.devs {
		if ref != "" && f.devs[i].serial == ref {
			return f.devs[i].key, true
		}
	}
	return "", false
}

// WaveEarliest returns the earliest the current wave of rollout ro can
// reach its success, as the rollout engine's last step found it from the
// windows of the sites whose devices the wave waits for
// (firmware.EarliestSuccess); zero when unknown (a replica, whose engine
// does not run, or before the first step). The offer decision sets it as
// ro.Earliest, so that devices of later waves are not told to come back
// before their wave can open. It allocates nothing.
func (s *Store) WaveEarliest(ro *firmware.Rollout) time.Time {
	if ro == nil {
		return time.Time{}
	}
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.idOf[ro.Identity]
	if !ok {
		return time.Time{}
	}
	return f.earliest[takingKey{id, ro.Version}]
}

// Downloading returns how many devices of the rollout's identity are
// taking its version now: offered or downloading it, neither finished nor
// stalled. It is the OfferRequest's Downloading, which a rollout's
// MaxDownloads caps. The count follows every accepted offer and report;
// stalled devices leave it when the rollout engine recounts (every few
// seconds, StepRollout). It allocates nothing.
func (s *Store) Downloading(ro *firmware.Rollout) int {
	if ro == nil {
		return 0
	}
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.idOf[ro.Identity]
	if !ok {
		return 0
	}
	return f.taking[takingKey{id, ro.Version}]
}

// sortNew merges the entries added since the last query into order.
func (f *fleet) sortNew() {
	f.mu.RLock()
	dirty := len(f.order) < len(f.devs)
	f.mu.RUnlock()
	if !dirty {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.order)
	if n == len(f.devs) {
		return
	}
	byKey := func(a, b int32) int { return strings.Compare(f.devs[a].key, f.devs[b].key) }
	added := make([]int32, 0, len(f.devs)-n)
	for i := n; i < len(f.devs); i++ {
		added = append(added, int32(i))
	}
	slices.SortFunc(added, byKey)
	merged := make([]int32, 0, len(f.devs))
	i, j := 0, 0
	for i < n && j < len(added) {
		if byKey(f.order[i], added[j]) <= 0 {
			merged = append(merged, f.order[i])
			i++
		} else {
			merged = append(merged, added[j])
			j++
		}
	}
	merged = append(append(merged, f.order[i:]...), added[j:]...)
	f.order = merged
}

// outcome is where e stands with version v (its own attempt's version
// when v is zero) at now under p.
func (e *devEntry) outcome(v firmware.Version, p firmware.RetryPolicy, now time.Time) firmware.Outcome {
	a := e.att.attempt()
	if v.IsZero() {
		return a.Outcome(e.version, p, now)
	}
	return a.OutcomeOf(v, e.version, p, now)
}

// containsFold reports whether s contains the lower-case ASCII substr,
// ignoring the case of ASCII letters in s; it allocates nothing.
func containsFold(s, substr string) bool {
	n := len(substr)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != substr[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
