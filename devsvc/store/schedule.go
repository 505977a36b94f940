package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opendus/opendus/firmware"
)

// History actions of scheduled approvals: Schedule records
// ActionSchedule, or ActionScheduleCancel when it cancels; an import that
// replaces a pending version with a scheduled approval records
// ActionScheduleCancel with the reason.
const (
	ActionSchedule       = "schedule"
	ActionScheduleCancel = "schedule-cancel"
)

// Schedule sets when the pending version of the rule named by ref is to be
// approved (see firmware.Rule.Schedule); the zero time cancels a schedule.
// ApproveDue approves it when the time comes. A rule with nothing pending
// is firmware.ErrNoPending; a time not in the future firmware.ErrSchedule.
func (s *Store) Schedule(ctx context.Context, actor, ref string, at time.Time) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(r *firmware.Rule, now time.Time) (firmware.Event, error) {
		was := r.ApproveAt
		if err := r.Schedule(at.UTC(), now); err != nil {
			return firmware.Event{}, err
		}
		if at.IsZero() {
			detail := "nothing was scheduled"
			if !was.IsZero() {
				detail = "the approval scheduled for " + was.Format(time.RFC3339) + " is cancelled"
			}
			return firmware.Event{Action: ActionScheduleCancel, Version: r.Pending, Detail: detail}, nil
		}
		return firmware.Event{Action: ActionSchedule, Version: r.Pending, Detail: "approve at " + r.ApproveAt.Format(time.RFC3339)}, nil
	})
}

// ApproveDue approves, in one transaction, the pending version of every rule
// whose scheduled approval is due (firmware.Rule.Due) and returns those
// rules. The service calls it when Catalog().NextApproval() comes, and at
// start.
func (s *Store) ApproveDue(ctx context.Context, actor string) ([]firmware.Rule, error) {
	var approved []firmware.Rule
	err := s.change(ctx, actor, func(c *change) error {
		approved = nil
		b := c.tx.Bucket(bucketRules)
		var due []firmware.Rule
		err := b.ForEach(func(k, v []byte) error {
			var r firmware.Rule
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rule %q: %w", k, err)
			}
			if r.Due(c.now) {
				due = append(due, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range due {
			at := r.ApproveAt
			if err := r.Approve(c.now); err != nil {
				return err
			}
			if err := putJSON(b, []byte(r.Identity.Path()), r); err != nil {
				return err
			}
			if err := c.event(firmware.Event{Action: ActionApprove, Rule: r.ID, Subject: r.Identity.Path(), Version: r.Approved,
				Detail: "scheduled for " + at.Format(time.RFC3339)}); err != nil {
				return err
			}
			approved = append(approved, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: approve due: %w", err)
	}
	return approved, nil
}

// ScheduledApproval returns when the pending version of id's rule is to be
// approved, or false when nothing is scheduled.
func (c *Catalog) ScheduledApproval(id firmware.Identity) (time.Time, bool) {
	r, ok := c.rules[id]
	if !ok || r.ApproveAt.IsZero() || r.Pending.IsZero() {
		return time.Time{}, false
	}
	return r.ApproveAt, true
}

// NextApproval returns the earliest scheduled approval of any rule, or
// false when none is scheduled.
func (c *Catalog) NextApproval() (time.Time, bool) {
	var next time.Time
	for _, r := range c.sorted {
		if !r.ApproveAt.IsZero() && !r.Pending.IsZero() && (next.IsZero() || r.ApproveAt.Before(next)) {
			next = r.ApproveAt
		}
	}
	return next, !next.IsZero()
}

// Next is ScheduledApproval on the current snapshot; it makes *Store a
// deviceapi.Schedule.
func (s *Store) Next(id firmware.Identity) (time.Time, bool) {
	return s.Catalog().ScheduledApproval(id)
}
