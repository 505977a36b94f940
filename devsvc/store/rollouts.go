package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// Rollouts.
//
// A rule has at most one rollout record, its last: starting a rollout
// replaces an ended one. While a rollout is live (scheduled, running or
// paused) the store keeps the rule's Pending = Version and Approved = From
// (see firmware.Rollout), so every rule transition looks at it first:
//
//	import    of another version: refused (ErrRolloutLive), unless the
//	          rollout is a scheduled approval (approve --at), which it
//	          cancels as before
//	approve   refused while a rollout is live (stop it first); cancels a
//	          scheduled approval; otherwise a one-wave rollout completed
//	          at once
//	approve --at  a scheduled one-wave rollout: the engine starts and
//	          completes it at its time, which approves the rule
//	reject    rolls the rollout back (its devices go back to From), then
//	          drops the pending version
//	restore   rolls the rollout back and leaves the rule as it is; with no
//	          rollout governing the rule, the rule's restore transition
//	withdraw  refused while a rollout is live
//	remove    deletes the rollout with the rule
//
// A rollout's transitions are in the history as "rollout-" and their kind,
// by whoever made them (firmware.SystemActor for the engine's steps), in
// the same transaction as the change; the approvals' one-wave rollouts
// record only the rule's own events (approve, schedule, schedule-cancel).
// A step that completes a rollout approves the rule in the same
// transaction; one that pauses it on failures raises its alarm there too.

// rolloutRecord is a rollout as stored.
type rolloutRecord struct {
	firmware.Rollout
	// Approval marks the one-wave rollout of an approve.
	Approval bool `json:"approval,omitempty"`
}

func decodeRollout(k, v []byte) (rolloutRecord, error) {
	var rec rolloutRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("rollout %q: %w", k, err)
	}
	if rec.Rule != string(k) {
		return rec, fmt.Errorf("rollout %q: the record is of rule %q", k, rec.Rule)
	}
	return rec, nil
}

// getRollout reads the rollout of a rule; ok is false when it has none.
func getRollout(tx *bolt.Tx, ruleID string) (rec rolloutRecord, ok bool, err error) {
	v := tx.Bucket(bucketRollouts).Get([]byte(ruleID))
	if v == nil {
		return rec, false, nil
	}
	rec, err = decodeRollout([]byte(ruleID), v)
	return rec, err == nil, err
}

func putRollout(tx *bolt.Tx, rec *rolloutRecord) error {
	return putJSON(tx.Bucket(bucketRollouts), []byte(rec.Rule), rec)
}

// scheduledApproval reports whether rec is a live scheduled approval
// (approve --at) that nothing has started yet.
func (rec *rolloutRecord) scheduledApproval() bool {
	return rec.Approval && rec.State == firmware.RolloutScheduled
}

// governs reports whether rec still decides the offers of rule's devices:
// live, or stopped without a roll-back, on the rule's pending version.
func (rec *rolloutRecord) governs(rule *firmware.Rule) bool {
	return rec.Version == rule.Pending && !rec.Version.IsZero() &&
		(rec.Live() || rec.State == firmware.RolloutStopped && !rec.RolledBack)
}

// describe names a rollout and where it stands, for messages.
func describe(ro *firmware.Rollout) string {
	switch ro.State {
	case firmware.RolloutScheduled:
		return fmt.Sprintf("the rollout of %s to %s is scheduled for %s", ro.Identity, ro.Version, ro.At.UTC().Format(time.RFC3339))
	case firmware.RolloutRunning, firmware.RolloutPaused:
		return fmt.Sprintf("the rollout of %s to %s is %s in wave %d of %d", ro.Identity, ro.Version, ro.State, ro.Wave+1, len(ro.Waves))
	}
	return fmt.Sprintf("the rollout of %s to %s is %s", ro.Identity, ro.Version, ro.State)
}

// liveError is ErrRolloutLive for what cannot be done during ro.
func liveError(ro *firmware.Rollout, what string) error {
	return fmt.Errorf("%w: %s; %s cannot be done during it: stop it first with devsvc rollout stop %s (the devices it reached keep %s), or roll it back with devsvc restore %s",
		ErrRolloutLive, describe(ro), what, ro.Identity, ro.Version, ro.Identity)
}

// rolloutEvents records a rollout's events in the history.
func (c *change) rolloutEvents(ro *firmware.Rollout, evs []firmware.RolloutEvent) error {
	for _, ev := range evs {
		if err := c.event(firmware.Event{Action: ActionRolloutPrefix + string(ev.Kind), Rule: ro.Rule, Subject: ro.Identity.Path(),
			Version: ro.Version, Detail: ev.Detail}); err != nil {
			return err
		}
	}
	return nil
}

// approval returns the completed one-wave rollout an approve of rule (as
// it was before the approve) makes, by actor at now.
func approval(rule firmware.Rule, actor string, now time.Time) (rolloutRecord, error) {
	ro, _, err := firmware.StartRollout(&rule, firmware.ApprovePlan(time.Time{}), actor, now)
	if err != nil {
		return rolloutRecord{}, err
	}
	ro.Step(now, firmware.WaveStats{})
	return rolloutRecord{Rollout: ro, Approval: true}, nil
}

// rolloutChange runs fn on the rollout of the rule ref names, in a
// transaction of actor, and stores what it leaves; ErrNotFound when the
// rule has no rollout.
func (s *Store) rolloutChange(ctx context.Context, actor, ref string, fn func(c *change, rule *firmware.Rule, rec *rolloutRecord) error) (firmware.Rollout, error) {
	var out firmware.Rollout
	err := s.change(ctx, actor, func(c *change) error {
		rule, err := getRule(c.tx, ref)
		if err != nil {
			return err
		}
		rec, ok, err := getRollout(c.tx, rule.ID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("rule %s has no rollout %w: start one with devsvc rollout start %s", rule.Identity, ErrNotFound, rule.Identity)
		}
		if err := fn(c, &rule, &rec); err != nil {
			return err
		}
		if err := putRollout(c.tx, &rec); err != nil {
			return err
		}
		out = rec.Rollout
		return nil
	})
	return out, err
}

// StartRollout starts a rollout of the pending version of the rule ref
// names (a rule ID or an identity path) under plan, by actor: scheduled
// when plan.At is ahead, else running with wave 0 open (see
// firmware.StartRollout). It replaces the rule's ended rollout and clears
// that one's alarms. A rule with nothing pending is
// firmware.ErrNoPending, a plan that cannot run firmware.ErrPlan, a rule
// with a live rollout (or a scheduled approval) ErrRolloutLive.
func (s *Store) StartRollout(ctx context.Context, actor, ref string, plan firmware.Plan) (firmware.Rollout, error) {
	var out firmware.Rollout
	err := s.change(ctx, actor, func(c *change) error {
		rule, err := getRule(c.tx, ref)
		if err != nil {
			return err
		}
		old, ok, err := getRollout(c.tx, rule.ID)
		if err != nil {
			return err
		}
		if ok && old.Live() {
			if old.scheduledApproval() {
				return fmt.Errorf("%w: the approval of %s %s is scheduled for %s: cancel it first with devsvc approve %s --cancel",
					ErrRolloutLive, rule.Identity, old.Version, old.At.UTC().Format(time.RFC3339), rule.Identity)
			}
			return fmt.Errorf("%w: %s: pause, resume or stop it (devsvc rollout stop %s), then start another", ErrRolloutLive, describe(&old.Rollout), rule.Identity)
		}
		ro, evs, err := firmware.StartRollout(&rule, plan, actor, c.now)
		if err != nil {
			return err
		}
		if err := c.clearRuleAlarms(rule.ID, ""); err != nil {
			return err
		}
		rec := rolloutRecord{Rollout: ro}
		if err := putRollout(c.tx, &rec); err != nil {
			return err
		}
		out = ro
		return c.rolloutEvents(&ro, evs)
	})
	if err != nil {
		return firmware.Rollout{}, fmt.Errorf("store: start rollout: %w", err)
	}
	return out, nil
}

// PauseRollout pauses the running rollout of the rule ref names: no more
// devices are offered its version until ResumeRollout. reason may be
// empty. Not running is firmware.ErrRolloutNotRunning (ended:
// firmware.ErrRolloutEnded); no rollout ErrNotFound.
func (s *Store) PauseRollout(ctx context.Context, actor, ref, reason string) (firmware.Rollout, error) {
	ro, err := s.rolloutChange(ctx, actor, ref, rolloutFn(func(c *change, _ *firmware.Rule, ro *firmware.Rollout) error {
		ev, err := ro.Pause(reason, actor, c.now)
		if err != nil {
			return err
		}
		return c.rolloutEvents(ro, []firmware.RolloutEvent{ev})
	}).adapt())
	if err != nil {
		return ro, fmt.Errorf("store: pause rollout: %w", err)
	}
	return ro, nil
}

// rolloutFn adapts a function of the firmware rollout to rolloutChange.
type rolloutFn func(c *change, rule *firmware.Rule, ro *firmware.Rollout) error

func (f rolloutFn) adapt() func(*change, *firmware.Rule, *rolloutRecord) error {
	return func(c *change, rule *firmware.Rule, rec *rolloutRecord) error { return f(c, rule, &rec.Rollout) }
}

// ResumeRollout resumes the paused rollout of the rule ref names, in the
// wave it paused in, accepting the failures that paused it (see
// firmware.Rollout.Resume), and clears its pause alarm. Not paused is
// firmware.ErrRolloutNotPaused (ended: firmware.ErrRolloutEnded).
func (s *Store) ResumeRollout(ctx context.Context, actor, ref string) (firmware.Rollout, error) {
	ro, err := s.rolloutChange(ctx, actor, ref, rolloutFn(func(c *change, _ *firmware.Rule, ro *firmware.Rollout) error {
		ev, err := ro.Resume(actor, c.now)
		if err != nil {
			return err
		}
		if err := c.rolloutEvents(ro, []firmware.RolloutEvent{ev}); err != nil {
			return err
		}
		return c.clearRuleAlarms(ro.Rule, firmware.AlarmPaused)
	}).adapt())
	if err != nil {
		return ro, fmt.Errorf("store: resume rollout: %w", err)
	}
	return ro, nil
}

// StopRollout ends the live rollout of the rule ref names for good: the
// devices it reached keep its version, the others keep the approved one;
// the rule keeps its pending version (firmware.Rollout.Stop). Stopping a
// scheduled approval cancels it, as approve --cancel does. Its alarms are
// cleared. Ended is firmware.ErrRolloutEnded.
func (s *Store) StopRollout(ctx context.Context, actor, ref string) (firmware.Rollout, error) {
	ro, err := s.rolloutChange(ctx, actor, ref, func(c *change, rule *firmware.Rule, rec *rolloutRecord) error {
		approval := rec.scheduledApproval()
		ev, err := rec.Stop(actor, c.now)
		if err != nil {
			return err
		}
		if err := c.clearRuleAlarms(rule.ID, ""); err != nil {
			return err
		}
		if approval {
			was := rule.ApproveAt
			if err := rule.Schedule(time.Time{}, c.now); err != nil {
				return err
			}
			if err := putJSON(c.tx.Bucket(bucketRules), []byte(rule.Identity.Path()), rule); err != nil {
				return err
			}
			return c.event(firmware.Event{Action: ActionScheduleCancel, Rule: rule.ID, Subject: rule.Identity.Path(), Version: rule.Pending,
				Detail: "the approval scheduled for " + was.UTC().Format(time.RFC3339) + " is cancelled (rollout stop)"})
		}
		return c.rolloutEvents(&rec.Rollout, []firmware.RolloutEvent{ev})
	})
	if err != nil {
		return ro, fmt.Errorf("store: stop rollout: %w", err)
	}
	return ro, nil
}

// earliestSuccess is when the wave of stats can reach ro's success at the
// earliest (firmware.EarliestSuccess), from the next opening of the
// windows (the site's and the rollout's, in the site's zone) of each site
// whose devices it still waits for (waiting, by site index). Zero while
// ro is not running.
func (s *Store) earliestSuccess(cat *Catalog, ro *firmware.Rollout, stats firmware.WaveStats, waiting []int, now time.Time) time.Time {
	if ro.State != firmware.RolloutRunning {
		return time.Time{}
	}
	sites := cat.Sites()
	var ready []firmware.SiteReady
	for i, n := range waiting {
		if n == 0 {
			continue
		}
		name := s.fleet.siteName(i)
		site, _ := sites.ByName(name)
		if name == firmware.RemoteSite {
			site = sites.Remote()
		}
		// A lower bound: an offer needs the windows open MinOpen more,
		// which only delays it.
		at := now
		if w := firmware.CheckWindows(now, site.Location, 0, site.Windows, ro.Window); !w.Open {
			if w.Next.IsZero() {
				continue // never open
			}
			at = w.Next
		}
		ready = append(ready, firmware.SiteReady{At: at, Devices: n})
	}
	return firmware.EarliestSuccess(ro.Success, stats.Devices, stats.Installed, ready)
}

// StepRollout moves the live rollout of the rule with this ID on at now:
// it counts the devices of its current wave (WaveStats, from the index,
// judged by Options.Retry) and applies firmware.Rollout.Step: the
// scheduled start, a pause on failures (with its alarm), the next wave,
// completion (which approves the rule). It writes only when the step
// changes something, and returns the rollout and the events (none: no
// change). It also recounts the devices taking the rollout's version
// (Downloading), leaving out the stalled ones. A rule without a live
// rollout is no change. The rollout engine calls it every few seconds for
// every live rollout.
func (s *Store) StepRollout(ctx context.Context, ruleID string, now time.Time) (firmware.Rollout, []firmware.RolloutEvent, error) {
	cat := s.Catalog()
	ro, ok := cat.Rollout(ruleID)
	if !ok || !ro.Live() {
		return ro, nil, nil
	}
	approval := cat.IsApproval(ruleID)
	var stats firmware.WaveStats
	if !approval {
		// An approval completes at its first step whatever its devices
		// did, as approve always has.
		wave := ro.Wave
		if ro.State == firmware.RolloutScheduled {
			wave = 0
		}
		var taking int
		var waiting []int
		stats, taking = s.fleet.waveScan(cat, &ro, wave, s.retry, now, &waiting)
		s.fleet.setTaking(ro.Identity, ro.Version, taking)
		s.fleet.setEarliest(ro.Identity, ro.Version, s.earliestSuccess(cat, &ro, stats, waiting, now))
	}
	trial := ro
	if len(trial.Step(now, stats)) == 0 {
		return ro, nil, nil
	}
	var (
		out firmware.Rollout
		evs []firmware.RolloutEvent
	)
	err := s.change(ctx, firmware.SystemActor, func(c *change) error {
		evs = nil
		rec, ok, err := getRollout(c.tx, ruleID)
		if err != nil || !ok || !rec.Updated.Equal(ro.Updated) || rec.State != ro.State {
			return err // changed since the snapshot: the next step sees it
		}
		evs = rec.Step(now, stats)
		if len(evs) == 0 {
			return nil
		}
		if err := putRollout(c.tx, &rec); err != nil {
			return err
		}
		out = rec.Rollout
		if !rec.Approval {
			if err := c.rolloutEvents(&rec.Rollout, evs); err != nil {
				return err
			}
		}
		if a, ok := rec.PauseAlarm(); ok {
			if _, err := c.raiseAlarm(a); err != nil {
				return err
			}
		}
		if rec.State != firmware.RolloutCompleted {
			return nil
		}
		rule, err := getRule(c.tx, ruleID)
		if err != nil {
			return err
		}
		if rule.Pending != rec.Version {
			return fmt.Errorf("rollout of %s completed, but the rule's pending version is %s, not %s", rule.Identity, rule.Pending, rec.Version)
		}
		at := rule.ApproveAt
		if err := rule.Approve(c.now); err != nil {
			return err
		}
		if err := putJSON(c.tx.Bucket(bucketRules), []byte(rule.Identity.Path()), rule); err != nil {
			return err
		}
		detail := "the rollout completed: " + evs[len(evs)-1].Detail
		if rec.Approval {
			detail = "scheduled for " + at.UTC().Format(time.RFC3339)
		}
		return c.event(firmware.Event{Action: ActionApprove, Rule: rule.ID, Subject: rule.Identity.Path(), Version: rule.Approved, Detail: detail})
	})
	if err != nil {
		return ro, nil, fmt.Errorf("store: step rollout of %s: %w", ro.Identity, err)
	}
	if len(evs) == 0 {
		return ro, nil, nil
	}
	return out, evs, nil
}

// Alarms.
//
// An alarm (firmware.Alarm) is stored by its ID, which is stable for the
// same condition: raising it again while it is open changes nothing but
// its counts; raising it once cleared opens it again. Raising and clearing
// are in the history (alarm-raise, alarm-clear) with the alarm's detail.
// A rollout's pause alarm is raised by the step that paused it and
// cleared by its resume, stop or roll-back; starting a rule's rollout or
// removing the rule clears every alarm of the rule.

// raiseAlarm stores a, opening it; it reports whether it was not open.
func (c *change) raiseAlarm(a firmware.Alarm) (bool, error) {
	b := c.tx.Bucket(bucketAlarms)
	var old firmware.Alarm
	found, err := getJSON(b, []byte(a.ID), &old)
	if err != nil {
		return false, err
	}
	if found && old.IsOpen() {
		if old.Detail == a.Detail && equalProgress(old.Sites, a.Sites) {
			return false, nil
		}
		old.Detail, old.Sites = a.Detail, a.Sites
		return false, putJSON(b, []byte(a.ID), old)
	}
	a.Cleared = time.Time{}
	if a.Raised.IsZero() {
		a.Raised = c.now
	}
	if err := putJSON(b, []byte(a.ID), a); err != nil {
		return false, err
	}
	return true, c.event(firmware.Event{Action: ActionAlarmRaise, Rule: a.Rule, Subject: a.Identity.Path(), Version: a.Version, Detail: string(a.Kind) + ": " + a.Detail})
}

func equalProgress(a, b []firmware.SiteProgress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// clearAlarm clears the open alarm id; it reports whether one was open.
func (c *change) clearAlarm(id string) (bool, error) {
	b := c.tx.Bucket(bucketAlarms)
	var a firmware.Alarm
	found, err := getJSON(b, []byte(id), &a)
	if err != nil || !found || !a.IsOpen() {
		return false, err
	}
	a.Clear(c.now)
	if err := putJSON(b, []byte(id), a); err != nil {
		return false, err
	}
	return true, c.event(firmware.Event{Action: ActionAlarmClear, Rule: a.Rule, Subject: a.Identity.Path(), Version: a.Version, Detail: string(a.Kind) + ": " + a.Detail})
}

// clearRuleAlarms clears the open alarms of a rule, of one kind or all.
func (c *change) clearRuleAlarms(ruleID string, kind firmware.AlarmKind) error {
	var ids []string
	err := c.tx.Bucket(bucketAlarms).ForEach(func(k, v []byte) error {
		var a firmware.Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("alarm %q: %w", k, err)
		}
		if a.Rule == ruleID && a.IsOpen() && (kind == "" || a.Kind == kind) {
			ids = append(ids, a.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := c.clearAlarm(id); err != nil {
			return err
		}
	}
	return nil
}

// RaiseAlarm opens alarm a (by its ID, see firmware.Alarm), as
// firmware.SystemActor; it reports whether it was not open already. An
// open alarm of that ID keeps its Raised time and takes a's counts and
// detail.
func (s *Store) RaiseAlarm(ctx context.Context, a firmware.Alarm) (bool, error) {
	var raised bool
	err := s.change(ctx, firmware.SystemActor, func(c *change) error {
		var err error
		raised, err = c.raiseAlarm(a)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: raise alarm %s: %w", a.ID, err)
	}
	return raised, nil
}

// ClearAlarm clears the open alarm id, as firmware.SystemActor; it
// reports whether one was open.
func (s *Store) ClearAlarm(ctx context.Context, id string) (bool, error) {
	var cleared bool
	err := s.change(ctx, firmware.SystemActor, func(c *change) error {
		var err error
		cleared, err = c.clearAlarm(id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: clear alarm %s: %w", id, err)
	}
	return cleared, nil
}

// Alarms returns the open alarms, or with all every alarm, oldest first.
func (s *Store) Alarms(ctx context.Context, all bool) ([]firmware.Alarm, error) {
	var out []firmware.Alarm
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlarms).ForEach(func(k, v []byte) error {
			var a firmware.Alarm
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alarm %q: %w", k, err)
			}
			if all || a.IsOpen() {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: alarms: %w", err)
	}
	sortAlarms(out)
	return out, nil
}

// OpenAlarms counts the open alarms.
func (s *Store) OpenAlarms(ctx context.Context) (int, error) {
	as, err := s.Alarms(ctx, false)
	return len(as), err
}

// migrateScheduledApprovals makes every rule's scheduled approval a
// scheduled one-wave rollout (schema 3).
func migrateScheduledApprovals(tx *bolt.Tx) error {
	return tx.Bucket(bucketRules).ForEach(func(k, v []byte) error {
		var r firmware.Rule
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("rule %q: %w", k, err)
		}
		if r.ApproveAt.IsZero() || r.Pending.IsZero() {
			return nil
		}
		// Created before the scheduled time, so StartRollout schedules it
		// even when that time has passed.
		ro, _, err := firmware.StartRollout(&r, firmware.ApprovePlan(r.ApproveAt), "migration", r.ApproveAt.Add(-time.Second))
		if err != nil {
			return err
		}
		ro.Created, ro.Updated = r.Updated, r.Updated
		return putRollout(tx, &rolloutRecord{Rollout: ro, Approval: true})
	})
}

// sortAlarms orders alarms by the time they were raised, then ID.
func sortAlarms(as []firmware.Alarm) {
	slices.SortFunc(as, func(a, b firmware.Alarm) int {
		if c := a.Raised.Compare(b.Raised); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
