package firmware

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the rule transitions. They are wrapped with the rule's
// identity, so a message reads "rule UCPhone/Polycom/CX600/A/ENU has no
// pending version to approve".
var (
	// ErrNoPending is returned by Approve and Reject when the rule has no
	// pending version.
	ErrNoPending = errors.New("no pending version")
	// ErrNothingToRestore is returned by Rollback when the rule has no
	// restore version: no version was approved before the current one.
	ErrNothingToRestore = errors.New("nothing to restore")
	// ErrNotApproved is returned by Withdraw when the rule has no approved
	// version.
	ErrNotApproved = errors.New("no approved version")
	// ErrAlreadyApproved is returned by Import when the version is already
	// the approved one and nothing is pending.
	ErrAlreadyApproved = errors.New("version already approved")
	// ErrSchedule is returned by Schedule for a time that is not in the
	// future.
	ErrSchedule = errors.New("invalid schedule")
)

// Rule is the update rule for one device identity.
type Rule struct {
	ID       string   `json:"id"` // Identity.RuleID()
	Identity Identity `json:"identity"`
	// UpdateType is what the bundle's description says the update is, for
	// example "Firmware".
	UpdateType string  `json:"updateType,omitempty"`
	Pending    Version `json:"pending"`
	Approved   Version `json:"approved"`
	Restore    Version `json:"restore"`
	// ApproveAt, when set, is when the pending version is to be approved
	// (see Schedule); devices due to check later are told to check then.
	ApproveAt time.Time `json:"approveAt,omitzero"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// NewRule returns the empty rule for id, created at now.
func NewRule(id Identity, now time.Time) Rule {
	return Rule{ID: id.RuleID(), Identity: id, Created: now, Updated: now}
}

// Import makes v the pending version (refreshing any pending one). With
// deploy (see DeploysOnImport) v is approved at once. Importing the version
// that is already approved, with nothing pending, returns
// ErrAlreadyApproved and leaves the rule as it was.
func (r *Rule) Import(v Version, updateType string, deploy bool, now time.Time) error {
	if v.IsZero() {
		return fmt.Errorf("rule %s: import: %w: no version", r.Identity, ErrVersion)
	}
	if v == r.Approved && r.Pending.IsZero() {
		return fmt.Errorf("rule %s: import %s: %w", r.Identity, v, ErrAlreadyApproved)
	}
	if r.Pending != v {
		r.ApproveAt = time.Time{} // a schedule was for the version it replaces
	}
	r.Pending = v
	if updateType != "" {
		r.UpdateType = updateType
	}
	r.Updated = now
	if deploy {
		return r.Approve(now)
	}
	return nil
}

// Approve makes the pending version the approved one; the previously
// approved version becomes the restore version.
func (r *Rule) Approve(now time.Time) error {
	if r.Pending.IsZero() {
		return fmt.Errorf("rule %s has %w to approve", r.Identity, ErrNoPending)
	}
	if r.Pending != r.Approved {
		if !r.Approved.IsZero() {
			r.Restore = r.Approved
		}
		r.Approved = r.Pending
	}
	r.Pending = Version{}
	r.ApproveAt = time.Time{}
	r.Updated = now
	return nil
}

// Schedule sets when the pending version is to be approved; the zero time
// cancels a schedule. The service approves it at that time (see Due), and
// tells devices to check then.
func (r *Rule) Schedule(at, now time.Time) error {
	if r.Pending.IsZero() {
		return fmt.Errorf("rule %s has %w to schedule", r.Identity, ErrNoPending)
	}
	if !at.IsZero() && !at.After(now) {
		return fmt.Errorf("rule %s: %w: %s is not in the future", r.Identity, ErrSchedule, at.Format(time.RFC3339))
	}
	r.ApproveAt = at
	r.Updated = now
	return nil
}

// Due reports whether a scheduled approval is due at now.
func (r *Rule) Due(now time.Time) bool {
	return !r.ApproveAt.IsZero() && !r.Pending.IsZero() && !now.Before(r.ApproveAt)
}

// Reject drops the pending version; test devices go back to the approved
// one. The images stay in the store until purged.
func (r *Rule) Reject(now time.Time) (rejected Version, err error) {
	if r.Pending.IsZero() {
		return Version{}, fmt.Errorf("rule %s has %w to reject", r.Identity, ErrNoPending)
	}
	rejected = r.Pending
	r.Pending = Version{}
	r.ApproveAt = time.Time{}
	r.Updated = now
	return rejected, nil
}

// Rollback is the restore transition: the restore version (the one
// approved before the current one) becomes the approved one again, and
// devices downgrade to it. With no restore version it returns
// ErrNothingToRestore and changes nothing: rolling back never withdraws
// the approved version (see Withdraw), so a restore run twice by accident
// is refused the second time instead of leaving devices offered nothing.
func (r *Rule) Rollback(now time.Time) error {
	if r.Restore.IsZero() {
		if r.Approved.IsZero() {
			return fmt.Errorf("rule %s has %w: no version is approved", r.Identity, ErrNothingToRestore)
		}
		return fmt.Errorf("rule %s has %w: no version was approved before %s", r.Identity, ErrNothingToRestore, r.Approved)
	}
	r.Approved, r.Restore = r.Restore, Version{}
	r.Updated = now
	return nil
}

// Withdraw stops offering the approved version: devices of the identity
// are offered nothing (test devices still get a pending version). The
// restore and pending versions stay. It returns the withdrawn version; a
// rule with no approved version is ErrNotApproved.
func (r *Rule) Withdraw(now time.Time) (withdrawn Version, err error) {
	if r.Approved.IsZero() {
		return Version{}, fmt.Errorf("rule %s has %w to withdraw", r.Identity, ErrNotApproved)
	}
	withdrawn, r.Approved = r.Approved, Version{}
	r.Updated = now
	return withdrawn, nil
}

// Versions returns the versions the rule refers to (pending, approved,
// restore), without "no version"; the store keeps their images.
func (r *Rule) Versions() []Version {
	var vs []Version
	for _, v := range [...]Version{r.Pending, r.Approved, r.Restore} {
		if !v.IsZero() {
			vs = append(vs, v)
		}
	}
	return vs
}

// Offer decides what a device running current is offered under rule r. A
// test device gets the pending version if there is one, else the approved
// one; every other device gets the approved version. A version is offered
// only when it differs from current, so a rollback (restore) is a downgrade
// that devices take. ok is false when there is nothing to download.
func Offer(r *Rule, current Version, testDevice bool) (v Version, ok bool) {
	v = r.Approved
	if testDevice && !r.Pending.IsZero() {
		v = r.Pending
	}
	if v.IsZero() || v == current {
		return Version{}, false
	}
	return v, true
}
