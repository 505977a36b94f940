package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// loadFleet builds the fleet index from the devices bucket (at Open).
func (s *Store) loadFleet(tx *bolt.Tx) error {
	f := s.fleet
	f.mu.Lock()
	defer f.mu.Unlock()
	b := tx.Bucket(bucketDevices)
	n := b.Stats().KeyN
	f.devs = make([]devEntry, 0, n+n/8)
	f.byKey = make(map[string]int32, n+n/8)
	err := b.ForEach(func(k, v []byte) error {
		d, err := decodeDevice(v, decodeIndex)
		if err != nil {
			return fmt.Errorf("device %q: %w", k, err)
		}
		if d.Key != string(k) {
			d.Key = string(k)
		}
		f.load(&d)
		return nil
	})
	if err != nil {
		return err
	}
	// The bucket is in key order, and so are the entries.
	f.order = make([]int32, len(f.devs))
	for i := range f.order {
		f.order[i] = int32(i)
	}
	return nil
}

// setTaking sets how many devices take version v of identity id.
func (f *fleet) setTaking(id firmware.Identity, v firmware.Version, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.idOf[id]
	if !ok {
		return
	}
	if n > 0 {
		f.taking[takingKey{k, v}] = n
	} else {
		delete(f.taking, takingKey{k, v})
	}
}

// macAddr returns e's MAC address, "" for none.
func (e *devEntry) macAddr() string {
	if e.mac != "" {
		return e.mac
	}
	if strings.HasPrefix(e.key, "serial:") {
		return ""
	}
	return e.key
}

// isTest reports whether e is a test device in cat. Without test devices
// it reads nothing of e: the fleet's scans call it for every device, and
// e's key and serial are elsewhere in memory.
func (e *devEntry) isTest(cat *Catalog) bool {
	if len(cat.tests) == 0 {
		return false
	}
	return cat.IsTestDevice(e.macAddr(), e.serial)
}

// waveScan counts the devices of ro's identity in wave (test devices
// excluded) by outcome with ro's version, and the devices taking that
// version (test devices included). waiting, if not nil, gets the wave's
// devices that have neither installed nor failed the version, by site
// (their index in f.sites; waiting is grown to it).
func (f *fleet) waveScan(cat *Catalog, ro *firmware.Rollout, wave int, p firmware.RetryPolicy, now time.Time, waiting *[]int) (s firmware.WaveStats, taking int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.idOf[ro.Identity]
	if !ok {
		return s, 0
	}
	if waiting != nil {
		*waiting = slices.Grow((*waiting)[:0], len(f.sites))[:len(f.sites)]
		clear(*waiting)
	}
	lo, hi := ro.Waves.Bounds(wave)
	for i := range f.devs {
		e := &f.devs[i]
		if e.id != id {
			continue
		}
		if e.att.version == ro.Version {
			a := e.att.attempt()
			if a.Taking(e.version, p, now) {
				taking++
			}
		}
		if c := int(e.cohort); c < lo || c >= hi || e.isTest(cat) {
			continue
		}
		o := e.outcome(ro.Version, p, now)
		s.Add(o)
		if waiting != nil && o != firmware.OutcomeInstalled && o != firmware.OutcomeFailed {
			(*waiting)[e.site]++
		}
	}
	return s, taking
}

// siteName returns the name of the site of index i in f.sites.
func (f *fleet) siteName(i int) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.sites[i]
}

// setEarliest sets when the current wave of the rollout of version v of
// identity id can reach its success at the earliest (zero: unknown).
func (f *fleet) setEarliest(id firmware.Identity, v firmware.Version, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.idOf[id]
	if !ok {
		return
	}
	if t.IsZero() {
		delete(f.earliest, takingKey{k, v})
	} else {
		f.earliest[takingKey{k, v}] = t
	}
}

// WaveProgress is one wave of a rollout and its devices.
type WaveProgress struct {
	// Wave is the wave's index (0 is the first); From and To the shares of
	// the fleet it spans (its cohorts).
	Wave int            `json:"wave"`
	From firmware.Share `json:"from"`
	To   firmware.Share `json:"to"`
	// Open says the wave is open (its devices are offered the version).
	Open bool `json:"open"`
	// Opens is when it opened, or is expected to (zero: not while the
	// rollout is paused or stopped).
	Opens time.Time          `json:"opens,omitzero"`
	Stats firmware.WaveStats `json:"stats"`
	Sites []SiteStats        `json:"sites"`
	// Holds counts its waiting devices by why they wait.
	Holds []Count `json:"holds"`
}

// SiteStats counts a site's devices by outcome.
type SiteStats struct {
	Site string `json:"site"`
	firmware.WaveStats
}

// Count is a number of devices with something in common.
type Count struct {
	Name    string `json:"name"`
	Devices int    `json:"devices"`
}

// RolloutProgress is where a rollout stands, device by device counted:
// per wave and per site, the test devices, why devices failed and why
// waiting devices wait.
type RolloutProgress struct {
	Rollout firmware.Rollout `json:"rollout"`
	// Approval says it is the one-wave rollout of an approve.
	Approval bool           `json:"approval,omitempty"`
	Waves    []WaveProgress `json:"waves"`
	// Total counts the waves' devices together, Sites per site.
	Total firmware.WaveStats `json:"total"`
	Sites []SiteStats        `json:"sites"`
	// Test counts the identity's test devices, which take the version
	// whatever the rollout's state.
	Test firmware.WaveStats `json:"test"`
	// Failures counts the failed and retrying devices by the error code
	// they reported, most first ("silent" for those that never reported).
	Failures []Count `json:"failures"`
	// Holds counts the waiting devices by why their last check-in held the
	// version back (firmware.Hold; "not checked in" for those that have not
	// checked in since it could be offered).
	Holds []Count `json:"holds"`
}

// RolloutProgress returns the progress of the rollout of the rule ref
// names (a rule ID or an identity path) at now, from the fleet index:
// every device accepted so far, judged by Options.Retry. A rule without a
// rollout is ErrNotFound.
func (s *Store) RolloutProgress(ctx context.Context, ref string, now time.Time) (RolloutProgress, error) {
	if err := ctx.Err(); err != nil {
		return RolloutProgress{}, err
	}
	cat := s.Catalog()
	rule, err := cat.resolveRule(ref)
	if err != nil {
		return RolloutProgress{}, err
	}
	ro, ok := cat.Rollout(rule.ID)
	if !ok {
		return RolloutProgress{}, fmt.Errorf("store: rule %s has no rollout %w: start one with devsvc rollout start %s", rule.Identity, ErrNotFound, rule.Identity)
	}
	ro.Waves = slices.Clone(ro.Waves)
	ro.Earliest = s.WaveEarliest(&ro)
	pr := RolloutProgress{Rollout: ro, Approval: cat.IsApproval(rule.ID), Waves: make([]WaveProgress, len(ro.Waves))}
	open := openWaves(&ro, now)
	for k := range pr.Waves {
		lo, hi := ro.Waves.Bounds(k)
		pr.Waves[k] = WaveProgress{Wave: k, From: firmware.Share(lo), To: firmware.Share(hi), Open: k < open, Opens: ro.WaveOpens(k, now)}
	}
	type key struct {
		wave int
		site string
	}
	perSite := map[key]*firmware.WaveStats{}
	holds := map[key]map[string]int{}
	failures := map[string]int{}
	f := s.fleet
	f.mu.RLock()
	if id, ok := f.idOf[ro.Identity]; ok {
		for i := range f.devs {
			e := &f.devs[i]
			if e.id != id {
				continue
			}
			o := e.outcome(ro.Version, s.retry, now)
			if e.isTest(cat) {
				pr.Test.Add(o)
				continue
			}
			k := ro.Waves.Wave(int(e.cohort))
			site := f.sites[e.site]
			pr.Waves[k].Stats.Add(o)
			pr.Total.Add(o)
			for _, kk := range []key{{k, site}, {-1, site}} {
				st := perSite[kk]
				if st == nil {
					st = &firmware.WaveStats{}
					perSite[kk] = st
				}
				st.Add(o)
			}
			switch o {
			case firmware.OutcomeFailed, firmware.OutcomeRetrying:
				code := e.errCode
				if e.att.state != firmware.StateFailure {
					code = "silent"
				} else if code == "" {
					code = "no error code"
				}
				failures[code]++
			case firmware.OutcomeWaiting:
				why := string(e.hold)
				if e.lastCheckIn < nanos(ro.Started) || ro.Started.IsZero() || why == "" {
					why = "not checked in"
					if e.lastCheckIn >= nanos(ro.Started) && !ro.Started.IsZero() {
						why = "not offered"
					}
				}
				for _, kk := range []key{{k, ""}, {-1, ""}} {
					if holds[kk] == nil {
						holds[kk] = map[string]int{}
					}
					holds[kk][why]++
				}
			}
		}
	}
	f.mu.RUnlock()
	for k, st := range perSite {
		ss := SiteStats{Site: k.site, WaveStats: *st}
		if k.wave < 0 {
			pr.Sites = append(pr.Sites, ss)
		} else {
			pr.Waves[k.wave].Sites = append(pr.Waves[k.wave].Sites, ss)
		}
	}
	bySite := func(a, b SiteStats) int { return cmp.Compare(a.Site, b.Site) }
	slices.SortFunc(pr.Sites, bySite)
	for k := range pr.Waves {
		slices.SortFunc(pr.Waves[k].Sites, bySite)
		pr.Waves[k].Holds = counts(holds[key{k, ""}])
	}
	pr.Holds = counts(holds[key{-1, ""}])
	pr.Failures = counts(failures)
	return pr, nil
}

// LiveRollout is a live rollout and its devices counted by outcome.
type LiveRollout struct {
	Rollout firmware.Rollout
	// Devices counts its identity's devices (test devices excluded) by
	// where they stand with its version: RolloutProgress's Total.
	Devices firmware.WaveStats
}

// LiveRollouts returns every live rollout (scheduled, running or paused)
// with its devices counted at now as RolloutProgress counts its Total, in
// one pass over the fleet index for all of them and without the per-wave,
// per-site and per-reason counts: what a metrics scrape reads. They are in
// the order of Catalog.Rollouts (by identity path).
func (s *Store) LiveRollouts(now time.Time) []LiveRollout {
	cat := s.Catalog()
	var out []LiveRollout
	for _, ro := range cat.Rollouts() {
		if ro.Live() {
			out = append(out, LiveRollout{Rollout: ro})
		}
	}
	if len(out) == 0 {
		return nil
	}
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	// of[id] is 1 + the index in out of the rollout of interned identity
	// id, 0 for none.
	of := make([]int, len(f.ids))
	for i := range out {
		if id, ok := f.idOf[out[i].Rollout.Identity]; ok {
			of[id] = i + 1
		}
	}
	for i := range f.devs {
		e := &f.devs[i]
		k := of[e.id]
		if k == 0 || e.isTest(cat) {
			continue
		}
		lr := &out[k-1]
		lr.Devices.Add(e.outcome(lr.Rollout.Version, s.retry, now))
	}
	return out
}

// openWaves returns how many of ro's waves are open at now.
func openWaves(ro *firmware.Rollout, now time.Time) int {
	switch ro.State {
	case firmware.RolloutCompleted:
		return len(ro.Waves)
	case firmware.RolloutScheduled:
		if now.Before(ro.At) {
			return 0
		}
		return 1
	case firmware.RolloutStopped:
		if ro.RolledBack {
			return 0
		}
	}
	return ro.Wave + 1
}

// counts turns a map of counts into Counts, most first, then by name.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Devices, a.Devices), cmp.Compare(a.Name, b.Name)) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// ReleaseProgress counts, per site, the devices in the scope of rollout
// ro (its identity's devices of the waves open at now, test devices
// excluded) that have not moved since its At: not checked in since, not
// offered its version, not running it (see firmware.SiteProgress). The
// rollout engine hands it to firmware.CheckOverdue. Sites are in name
// order ("" for devices in none).
func (s *Store) ReleaseProgress(ro *firmware.Rollout, now time.Time) []firmware.SiteProgress {
	cat := s.Catalog()
	open := openWaves(ro, now)
	if open == 0 {
		return nil
	}
	_, hi := ro.Waves.Bounds(open - 1)
	at := nanos(ro.At)
	if ro.At.IsZero() {
		at = nanos(ro.Started)
	}
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.idOf[ro.Identity]
	if !ok {
		return nil
	}
	bySite := map[uint16]*firmware.SiteProgress{}
	for i := range f.devs {
		e := &f.devs[i]
		if e.id != id || int(e.cohort) >= hi || e.isTest(cat) {
			continue
		}
		p := bySite[e.site]
		if p == nil {
			p = &firmware.SiteProgress{Site: f.sites[e.site]}
			bySite[e.site] = p
		}
		p.Devices++
		switch {
		case e.lastCheckIn < at:
			p.NotCheckedIn++
		case e.offered != ro.Version:
			p.NotOffered++
		}
		if e.version != ro.Version {
			p.NotUpdated++
		}
	}
	out := make([]firmware.SiteProgress, 0, len(bySite))
	for _, p := range bySite {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b firmware.SiteProgress) int { return cmp.Compare(a.Site, b.Site) })
	return out
}

// RuleCount counts a rule's devices by what they run.
type RuleCount struct {
	// Devices are the identity's devices; Approved and Pending those that
	// run the rule's approved and pending version.
	Devices  int `json:"devices"`
	Approved int `json:"approved"`
	Pending  int `json:"pending"`
}

// RuleCounts counts, for every rule of the current catalog, its devices
// and those that run its approved and pending versions, by rule ID, from
// the fleet index.
func (s *Store) RuleCounts() map[string]RuleCount {
	cat := s.Catalog()
	out := make(map[string]RuleCount, len(cat.rules))
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	rules := make([]*firmware.Rule, len(f.ids))
	for i, id := range f.ids {
		if r, ok := cat.rules[id]; ok {
			rules[i] = &r
		}
	}
	for i := range f.devs {
		e := &f.devs[i]
		r := rules[e.id]
		if r == nil {
			continue
		}
		c := out[r.ID]
		c.Devices++
		if e.version == r.Approved && !r.Approved.IsZero() {
			c.Approved++
		}
		if e.version == r.Pending && !r.Pending.IsZero() {
			c.Pending++
		}
		out[r.ID] = c
	}
	for _, r := range cat.sorted {
		if _, ok := out[r.ID]; !ok {
			out[r.ID] = RuleCount{}
		}
	}
	return out
}

// SiteCounts counts the devices whose last check-in came from each site,
// by site name ("" for none).
func (s *Store) SiteCounts() map[string]int {
	f := s.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := make([]int, len(f.sites))
	for i := range f.devs {
		n[f.devs[i].site]++
	}
	out := make(map[string]int, len(n))
	for i, c := range n {
		if c > 0 {
			out[f.sites[i]] = c
		}
	}
	return out
}

// DeviceQuery filters and pages the device inventory (QueryDevices). The
// zero value lists every device, in pages of DefaultPageSize.
type DeviceQuery struct {
	// Model is a model name, like CX600 (any case), or a whole identity
	// path.
	Model string
	// Rule is a rule ID or identity path: the devices of its identity.
	Rule string
	// Version is the version devices run; zero: any.
	Version firmware.Version
	// State is where devices stand (firmware.Outcome) with the version of
	// their rule's rollout (the last one, live or ended; an approve is
	// one), or, for a device whose rule has none, with the version it was
	// last offered (a device never offered anything is waiting). "" any.
	State firmware.Outcome
	// Site is the site of their last check-in; "" any.
	Site string
	// Text is found, in any case, in the key, MAC address, serial number
	// or user; a MAC written with colons matches.
	Text string
	// After is the cursor: only keys after it, as DevicePage.Next gives.
	After string
	// Limit bounds the devices of the page; 0 is DefaultPageSize, at most
	// MaxPageSize.
	Limit int
}

// Page sizes of QueryDevices.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10000
)

// DeviceRow is one device of a query: its record (without its history)
// and what the index says of it.
type DeviceRow struct {
	firmware.Device
	// Outcome is where it stands (see DeviceQuery.State).
	Outcome firmware.Outcome `json:"outcome"`
	// Cohort is firmware.Cohort of its key; Test says it is a test device.
	Cohort int  `json:"cohort"`
	Test   bool `json:"test,omitempty"`
}

// DevicePage is a page of a device query.
type DevicePage struct {
	Devices []DeviceRow
	// Next is the cursor of the next page (DeviceQuery.After); "" when
	// this is the last.
	Next string
	// Total counts the matching devices of every page; only the first
	// page (no After) counts them, the others say -1.
	Total int
}

// ParseOutcome returns the outcome named s: waiting, offered, downloading,
// installed, retrying, stalled or failed; the report states success and
// failure stand for installed and failed.
func ParseOutcome(s string) (firmware.Outcome, error) {
	switch o := firmware.Outcome(strings.ToLower(strings.TrimSpace(s))); o {
	case firmware.OutcomeWaiting, firmware.OutcomeOffered, firmware.OutcomeDownloading, firmware.OutcomeInstalled,
		firmware.OutcomeRetrying, firmware.OutcomeStalled, firmware.OutcomeFailed:
		return o, nil
	case "success":
		return firmware.OutcomeInstalled, nil
	case "failure":
		return firmware.OutcomeFailed, nil
	}
	return "", fmt.Errorf("unknown device state %q: want waiting, offered, downloading, installed, retrying, stalled or failed", s)
}

// resolveRule finds the rule ref names (a rule ID in any case, or an
// identity path) in the snapshot.
func (c *Catalog) resolveRule(ref string) (firmware.Rule, error) {
	ref = strings.TrimSpace(ref)
	if strings.Contains(ref, "/") {
		if id, err := firmware.ParseIdentity(ref); err == nil {
			if r, ok := c.rules[id]; ok {
				return r, nil
			}
		}
	} else if id, ok := c.byID[strings.ToLower(ref)]; ok {
		return c.rules[id], nil
	}
	var sugg []string
	want := strings.Split(strings.ToLower(strings.Trim(ref, "/")), "/")
	for _, r := range c.sorted {
		if ref != "" && len(sugg) < maxSuggestions && namesParts(strings.Split(strings.ToLower(r.Identity.Path()), "/"), want) {
			sugg = append(sugg, r.Identity.Path())
		}
	}
	msg := fmt.Sprintf("store: rule %q %v: name a rule by its ID or its identity path DeviceType/Vendor/Model/Revision/Locale, as devsvc rules shows them", ref, ErrNotFound)
	if len(sugg) > 0 {
		msg = fmt.Sprintf("store: rule %q %v: did you mean %s? Name a rule by its ID or its whole identity path", ref, ErrNotFound, strings.Join(sugg, ", "))
	}
	return firmware.Rule{}, &notFoundError{msg: msg}
}

// QueryDevices returns a page of the devices q selects, in key order,
// from the fleet index (every check-in and report accepted so far) and
// their records as committed (Flush first for the latest; a device not
// written yet has the fields the index holds). Only the first page
// counts every match (Total), so each page costs a walk of the index from
// the cursor: a few milliseconds per 100,000 devices. A Rule that names
// no rule is ErrNotFound; a bad State is invalid (ParseOutcome).
func (s *Store) QueryDevices(ctx context.Context, q DeviceQuery) (DevicePage, error) {
	if err := ctx.Err(); err != nil {
		return DevicePage{}, err
	}
	cat := s.Catalog()
	now := s.now()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	var ruleID *firmware.Identity
	if q.Rule != "" {
		r, err := cat.resolveRule(q.Rule)
		if err != nil {
			return DevicePage{}, err
		}
		ruleID = &r.Identity
	}
	model := strings.ToLower(strings.TrimSpace(q.Model))
	text := strings.ToLower(strings.TrimSpace(q.Text))
	macText := strings.ReplaceAll(text, ":", "-")
	f := s.fleet
	f.sortNew()
	f.mu.RLock()
	// Which interned identities match the model and rule, and the
	// version each one's states are judged by.
	idOK := make([]bool, len(f.ids))
	against := f.rolloutVersions(cat)
	for i, id := range f.ids {
		ok := ruleID == nil || id == *ruleID
		if ok && model != "" {
			ok = strings.EqualFold(id.Model, model) || strings.EqualFold(id.Path(), model)
		}
		idOK[i] = ok
	}
	site, siteOK := uint16(0), true
	if q.Site != "" {
		site, siteOK = f.siteOf[q.Site]
	}
	match := func(e *devEntry) bool {
		if !idOK[e.id] || q.Site != "" && e.site != site || !q.Version.IsZero() && e.version != q.Version {
			return false
		}
		if text != "" && !containsFold(e.key, text) && !containsFold(e.key, macText) && !containsFold(e.mac, macText) &&
			!containsFold(e.serial, text) && !containsFold(e.user, text) {
			return false
		}
		return q.State == "" || e.outcome(against[e.id], s.retry, now) == q.State
	}
	type hit struct {
		i       int32
		outcome firmware.Outcome
	}
	var hits []hit
	page := DevicePage{Total: -1}
	if siteOK {
		start, _ := slices.BinarySearchFunc(f.order, q.After, func(i int32, k string) int { return strings.Compare(f.devs[i].key, k) })
		if q.After != "" && start < len(f.order) && f.devs[f.order[start]].key == q.After {
			start++
		}
		total := 0
		for _, i := range f.order[start:] {
			e := &f.devs[i]
			if !match(e) {
				continue
			}
			total++
			if len(hits) < limit {
				hits = append(hits, hit{i, e.outcome(against[e.id], s.retry, now)})
				continue
			}
			if page.Next == "" {
				page.Next = f.devs[hits[len(hits)-1].i].key
			}
			if q.After != "" {
				break // only the first page counts them all
			}
		}
		if q.After == "" {
			page.Total = total
		}
	} else if q.After == "" {
		page.Total = 0
	}
	rows := make([]DeviceRow, len(hits))
	for j, h := range hits {
		e := &f.devs[h.i]
		rows[j] = DeviceRow{Outcome: h.outcome, Cohort: int(e.cohort), Test: e.isTest(cat), Device: firmware.Device{
			Key: e.key, MAC: e.macAddr(), Serial: e.serial, Identity: f.ids[e.id], Version: e.version, User: e.user,
			LastCheckIn: fromNanos(e.lastCheckIn), Offered: e.offered, State: e.state, Error: e.errCode,
			Site: f.sites[e.site], Hold: e.hold, Attempt: e.att.attempt(),
		}}
	}
	f.mu.RUnlock()
	// The records, as committed.
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		for j := range rows {
			v := b.Get([]byte(rows[j].Key))
			if v == nil {
				continue // accepted, not written yet: the index's fields
			}
			d, err := decodeDevice(v, decodeAll)
			if err != nil {
				continue // left as the index has it; writeBatch logs bad records
			}
			d.History = nil
			rows[j].Device = d
		}
		return nil
	})
	if err != nil {
		return DevicePage{}, fmt.Errorf("store: devices: %w", err)
	}
	page.Devices = rows
	return page, nil
}

// rolloutVersions returns, per interned identity, the version of its
// rule's rollout (zero: none); call with mu held.
func (f *fleet) rolloutVersions(cat *Catalog) []firmware.Version {
	out := make([]firmware.Version, len(f.ids))
	for i, id := range f.ids {
		if r, ok := cat.rules[id]; ok {
			if ro, ok := cat.rollouts[r.ID]; ok {
				out[i] = ro.Version
			}
		}
	}
	return out
}

// DeviceDetail is one device: its record with its history, and what the
// index says of it (see DeviceRow).
func (s *Store) DeviceDetail(ctx context.Context, key string) (DeviceRow, error) {
	d, err := s.Device(ctx, key)
	if err != nil {
		return DeviceRow{}, err
	}
	cat := s.Catalog()
	row := DeviceRow{Device: d, Cohort: firmware.Cohort(d.Key), Test: cat.IsTestDevice(d.MAC, d.Serial)}
	var against firmware.Version
	if r, ok := cat.rules[d.Identity]; ok {
		if ro, ok := cat.rollouts[r.ID]; ok {
			against = ro.Version
		}
	}
	st := s.DeviceState(d.Key)
	if !st.Known {
		st.Attempt, st.Version = d.Attempt, d.Version
	}
	row.Attempt = st.Attempt
	if against.IsZero() {
		row.Outcome = st.Attempt.Outcome(st.Version, s.retry, s.now())
	} else {
		row.Outcome = st.Attempt.OutcomeOf(against, st.Version, s.retry, s.now())
	}
	return row, nil
}

// RetryPolicy returns the policy device attempts are judged by
// (Options.Retry): the check-in decision's OfferRequest.Retry.
func (s *Store) RetryPolicy() firmware.RetryPolicy { return s.retry }
