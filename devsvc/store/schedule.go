package store

import (
	"context"
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
// A scheduled approval is a scheduled one-wave rollout (Catalog.Rollout):
// the rollout engine starts it at that time, which completes it and
// approves the rule, and devices due to check later are told to check
// then. A rule with nothing pending is firmware.ErrNoPending; a time not
// in the future firmware.ErrSchedule; a rule with a live rollout (other
// than a scheduled approval, which this replaces) ErrRolloutLive.
func (s *Store) Schedule(ctx context.Context, actor, ref string, at time.Time) (firmware.Rule, error) {
	return s.transition(ctx, actor, ref, func(c *change, r *firmware.Rule, ro *rolloutRecord) (firmware.Event, error) {
		approval := ro != nil && ro.scheduledApproval()
		if ro != nil && ro.Live() && !approval {
			return firmware.Event{}, liveError(&ro.Rollout, "approve --at")
		}
		was := r.ApproveAt
		before := *r
		if err := r.Schedule(at.UTC(), c.now); err != nil {
			return firmware.Event{}, err
		}
		if at.IsZero() {
			if approval {
				if err := c.stopApproval(ro); err != nil {
					return firmware.Event{}, err
				}
			}
			detail := "nothing was scheduled"
			if !was.IsZero() {
				detail = "the approval scheduled for " + was.Format(time.RFC3339) + " is cancelled"
			}
			return firmware.Event{Action: ActionScheduleCancel, Version: r.Pending, Detail: detail}, nil
		}
		rollout, _, err := firmware.StartRollout(&before, firmware.ApprovePlan(r.ApproveAt), c.actor, c.now)
		if err != nil {
			return firmware.Event{}, err
		}
		if err := c.clearRuleAlarms(r.ID, ""); err != nil {
			return firmware.Event{}, err
		}
		rec := rolloutRecord{Rollout: rollout, Approval: true}
		if err := putRollout(c.tx, &rec); err != nil {
			return firmware.Event{}, err
		}
		if ro != nil {
			*ro = rec
		}
		return firmware.Event{Action: ActionSchedule, Version: r.Pending, Detail: "approve at " + r.ApproveAt.Format(time.RFC3339)}, nil
	})
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
