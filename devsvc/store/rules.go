package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opendus/opendus/firmware"
)

// transition applies a rule transition to the rule named by ref and records
// it. The transition's own error (firmware.ErrNoPending,
// firmware.ErrNothingToRestore, firmware.ErrNotApproved) is returned as it is, so that it reads
// "rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve".
// fn is given the change and the rule's rollout record (nil when it has
// none), which it may change: it is stored if so.
func (s *Store) transition(ctx context.Context, actor, ref string, fn func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error)) (firmware.Rule, error) {
	var r firmware.Rule
	err := s.change(ctx, actor, func(c *change) error {
		var err error
		if r, err = getRule(c.tx, ref); err != nil {
			return err
		}
		rec, ok, err := getRollout(c.tx, r.ID)
		if err != nil {
			return err
		}
		var ro *rolloutRecord
		if ok {
			ro = &rec
		}
		before := rec
		e, err := fn(c, &r, ro)
		if err != nil {
			return err
		}
		if err := putJSON(c.tx.Bucket(bucketRules), []byte(r.Identity.Path()), r); err != nil {
			return err
		}
		if ro != nil && !sameRecord(before, *ro) {
			if err := putRollout(c.tx, ro); err != nil {
				return err
			}
		}
		e.Rule, e.Subject = r.ID, r.Identity.Path()
		return c.event(e)
	})
	if err != nil {
		return firmware.Rule{}, err
	}
	return r, nil
}

func sameRecord(a, b rolloutRecord) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Approve approves the pending version of the rule named by ref (a rule ID
// or an identity path): it is offered to every device, and the approved
// version it replaces becomes the restore version. It is a one-wave
// rollout, completed at once (Catalog.Rollout shows it). A scheduled
// approval is made now. A rule with nothing pending is
// firmware.ErrNoPending; a rule with a live rollout ErrRolloutLive (stop
// it first, or let it complete).
func (s *Store) Approve(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error) {
		if ro != nil && ro.Live() && !ro.scheduledApproval() {
			return firmware.Event{}, liveError(&ro.Rollout, "approve")
		}
		was := r.ApproveAt
		before := *r
		if err := r.Approve(c.now); err != nil {
			return firmware.Event{}, err
		}
		rec, err := approval(before, c.actor, c.now)
		if err != nil {
			return firmware.Event{}, err
		}
		if err := c.clearRuleAlarms(r.ID, ""); err != nil {
			return firmware.Event{}, err
		}
		if err := putRollout(c.tx, &rec); err != nil {
			return firmware.Event{}, err
		}
		if ro != nil {
			*ro = rec
		}
		e := firmware.Event{Action: ActionApprove, Version: r.Approved}
		if !was.IsZero() {
			e.Detail = "before its scheduled time, " + was.Format(time.RFC3339)
		}
		return e, nil
	})
}

// Reject drops the pending version of the rule named by ref; its files stay
// until Purge. A rollout of that version is rolled back first: the devices
// it reached are offered the approved version again, as test devices are.
// A rule with nothing pending is firmware.ErrNoPending.
func (s *Store) Reject(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error) {
		was := r.ApproveAt
		if ro != nil && ro.governs(r) {
			if err := c.rollBack(ro, "the reject of "+ro.Version.String()); err != nil {
				return firmware.Event{}, err
			}
		}
		v, err := r.Reject(c.now)
		if err != nil {
			return firmware.Event{}, err
		}
		e := firmware.Event{Action: ActionReject, Version: v}
		if !was.IsZero() {
			e.Detail = "its approval scheduled for " + was.Format(time.RFC3339) + " is cancelled"
		}
		return e, nil
	})
}

// rollBack rolls ro back (a reject or restore, by c's actor) and records
// it; a scheduled approval is just stopped (the rule's event says it).
func (c *change) rollBack(ro *rolloutRecord, why string) error {
	if ro.scheduledApproval() {
		return c.stopApproval(ro)
	}
	ev, err := ro.Rollback(c.actor, c.now)
	if err != nil {
		return err
	}
	ev.Detail += " (" + why + ")"
	if err := c.clearRuleAlarms(ro.Rule, ""); err != nil {
		return err
	}
	if ro.Approval {
		return nil
	}
	return c.rolloutEvents(&ro.Rollout, []firmware.RolloutEvent{ev})
}

// stopApproval stops a scheduled approval (an import or reject cancelled
// it) and clears its alarms; the rule's event says why.
func (c *change) stopApproval(ro *rolloutRecord) error {
	if _, err := ro.Stop(c.actor, c.now); err != nil {
		return err
	}
	return c.clearRuleAlarms(ro.Rule, "")
}

// Restore rolls the rule named by ref back. While a rollout governs the
// rule (live, or stopped without a roll-back, on its pending version) it
// is rolled back instead: it stops, and the devices it reached are offered
// the approved version again; the rule does not change. Otherwise the
// rule's restore version becomes the approved one again. A rule with no
// restore version is firmware.ErrNothingToRestore, and nothing changes:
// withdrawing the approved version is Withdraw, never a side effect of a
// restore.
func (s *Store) Restore(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error) {
		if ro != nil && ro.governs(r) && !ro.scheduledApproval() {
			if err := c.rollBack(ro, "restore"); err != nil {
				return firmware.Event{}, err
			}
			r.Updated = c.now
			detail := fmt.Sprintf("rolled back the rollout of %s: the devices it reached are offered %s again", ro.Version, ro.From)
			if ro.From.IsZero() {
				detail = fmt.Sprintf("rolled back the rollout of %s: no version was approved before it, devices are offered nothing", ro.Version)
			}
			return firmware.Event{Action: ActionRestore, Version: ro.From, Detail: detail}, nil
		}
		was := r.Approved
		if err := r.Rollback(c.now); err != nil {
			return firmware.Event{}, err
		}
		if ro != nil && ro.scheduledApproval() {
			ro.From = r.Approved
		}
		return firmware.Event{Action: ActionRestore, Version: r.Approved, Detail: "replaces " + was.String()}, nil
	})
}

// Withdraw stops offering the approved version of the rule named by ref:
// its devices are offered nothing (test devices still get a pending
// version); the restore version stays, so Restore can bring an earlier one
// back. A rule with no approved version is firmware.ErrNotApproved; one
// with a live rollout ErrRolloutLive.
func (s *Store) Withdraw(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error) {
		if ro != nil && ro.Live() && !ro.scheduledApproval() {
			return firmware.Event{}, liveError(&ro.Rollout, "withdraw")
		}
		v, err := r.Withdraw(c.now)
		if err != nil {
			return firmware.Event{}, err
		}
		if ro != nil && ro.scheduledApproval() {
			ro.From = r.Approved
		}
		detail := "nothing is offered"
		if !r.Restore.IsZero() {
			detail += "; restore would approve " + r.Restore.String()
		}
		return firmware.Event{Action: ActionWithdraw, Version: v, Detail: detail}, nil
	})
}

// Remove deletes the rule named by ref and every stored update of its
// identity: the records in one transaction, the files after it committed.
func (s *Store) Remove(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	var (
		r       firmware.Rule
		removed []firmware.Update
	)
	err := s.change(ctx, actor, func(c *change) error {
		var err error
		if r, err = getRule(c.tx, ref); err != nil {
			return err
		}
		if err := c.tx.Bucket(bucketRules).Delete([]byte(r.Identity.Path())); err != nil {
			return err
		}
		if err := c.tx.Bucket(bucketRollouts).Delete([]byte(r.ID)); err != nil {
			return err
		}
		if err := c.clearRuleAlarms(r.ID, ""); err != nil {
			return err
		}
		ups := c.tx.Bucket(bucketUpdates)
		prefix := []byte(r.Identity.Path() + "/")
		cur := ups.Cursor()
		for k, v := cur.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = cur.Seek(prefix) {
			u, err := decodeUpdate(k, v)
			if err != nil {
				return err
			}
			removed = append(removed, u)
			if err := ups.Delete(k); err != nil {
				return err
			}
		}
		return c.event(firmware.Event{Action: ActionRemove, Rule: r.ID, Subject: r.Identity.Path(), Version: r.Approved,
			Detail: fmt.Sprintf("with %d stored update(s)", len(removed))})
	})
	if err != nil {
		return firmware.Rule{}, err
	}
	for _, u := range removed {
		s.removeUpdateFiles(u)
	}
	return r, nil
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// Purge deletes the updates no rule version refers to (rejected versions
// and versions a restore or approve left behind): the records in one
// transaction, the files after it committed.
func (s *Store) Purge(ctx context.Context, actor string) (removed []firmware.Update, err error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	err = s.change(ctx, actor, func(c *change) error {
		removed = nil
		rules := c.tx.Bucket(bucketRules)
		ups := c.tx.Bucket(bucketUpdates)
		var keys [][]byte
		err := ups.ForEach(func(k, v []byte) error {
			u, err := decodeUpdate(k, v)
			if err != nil {
				return err
			}
			var r firmware.Rule
			found, err := getJSON(rules, []byte(u.Identity.Path()), &r)
			if err != nil {
				return err
			}
			if found && (r.Pending == u.Version || r.Approved == u.Version || r.Restore == u.Version) {
				return nil
			}
			removed = append(removed, u)
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := ups.Delete(k); err != nil {
				return err
			}
			u := removed[i]
			if err := c.event(firmware.Event{Action: ActionPurge, Rule: u.Identity.RuleID(), Subject: u.Identity.Path(), Version: u.Version}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: purge: %w", err)
	}
	for _, u := range removed {
		s.removeUpdateFiles(u)
	}
	return removed, nil
}

// OpenFile opens a stored file read-only, through the file store's os.Root
// (never outside it). Only files of committed updates open: an update being
// imported is not in the catalog snapshot yet. A file open when its update
// is removed stays readable until closed.
func (s *Store) OpenFile(id firmware.Identity, v firmware.Version, name string) (*os.File, firmware.Image, error) {
	if s.closed.Load() {
		return nil, firmware.Image{}, ErrClosed
	}
	u, ok := s.Catalog().Update(id, v)
	if !ok {
		return nil, firmware.Image{}, fmt.Errorf("store: update %s %s %w", id, v, ErrNotFound)
	}
	for _, im := range u.Files {
		if im.Name != name {
			continue
		}
		f, err := s.root.Open(u.Dir() + "/" + name)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				err = ErrClosed
			}
			return nil, firmware.Image{}, fmt.Errorf("store: open %s/%s: %w", u.Dir(), name, err)
		}
		return f, im, nil
	}
	return nil, firmware.Image{}, fmt.Errorf("store: file %q of update %s %s %w", name, id, v, ErrNotFound)
}
