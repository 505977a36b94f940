package firmware

import (
	"fmt"
	"strings"
	"time"
)

// AlarmKind names what an alarm is about.
type AlarmKind string

// Alarm kinds.
const (
	// AlarmOverdue: a scheduled release (approve --at, rollout --at) has
	// passed and devices of a site have not come (see CheckOverdue), the
	// patent's alarm.
	AlarmOverdue AlarmKind = "overdue"
	// AlarmPaused: a rollout paused itself on failures (see
	// Rollout.PauseAlarm).
	AlarmPaused AlarmKind = "paused"
)

// Alarm is a condition an admin must look at. It is open until Cleared is
// set. ID is stable for the same condition (the same release of the same
// rule, the same paused wave), so that checking again finds the same alarm
// rather than raising a new one.
type Alarm struct {
	ID       string    `json:"id"`
	Kind     AlarmKind `json:"kind"`
	Rule     string    `json:"rule"`
	Identity Identity  `json:"identity"`
	Version  Version   `json:"version"`
	// Replica names the replica of an AlarmReplicaBehind.
	Replica string `json:"replica,omitempty"`
	// Sites are, for AlarmOverdue, the sites behind, with their counts.
	Sites []SiteProgress `json:"sites"`
	// Detail says it for a person.
	Detail string `json:"detail"`
	// Raised is when the condition was found, Cleared when it ended (zero
	// while open).
	Raised  time.Time `json:"raised"`
	Cleared time.Time `json:"cleared,omitzero"`
}

// IsOpen reports whether the alarm has not been cleared.
func (a *Alarm) IsOpen() bool { return a.Cleared.IsZero() }

// Clear ends an open alarm at now; a cleared one keeps its time.
func (a *Alarm) Clear(now time.Time) {
	if a.Cleared.IsZero() {
		a.Cleared = now
	}
}

// SiteProgress counts, for one site, the devices in a release's scope
// that have not moved since the release (each count is of Devices).
type SiteProgress struct {
	// Site is the site's name; "" for devices in no site.
	Site string `json:"site"`
	// Devices are the site's devices in the release's scope: the rule's
	// identity's devices (for a rollout, those of its open waves).
	Devices int `json:"devices"`
	// NotCheckedIn have not checked in since the release.
	NotCheckedIn int `json:"notCheckedIn"`
	// NotOffered checked in since, but were not offered the version (held
	// by their windows or waves, or already running it).
	NotOffered int `json:"notOffered"`
	// NotUpdated do not run the version.
	NotUpdated int `json:"notUpdated"`
}

// Release is a scheduled release: a rule's version due at a time (an
// approve --at, or a rollout's At).
type Release struct {
	Rule     string
	Identity Identity
	Version  Version
	At       time.Time
}

// OverdueID is the ID of the release's overdue alarm (see CheckOverdue):
// what a caller clears when the check no longer finds sites behind.
func (rel Release) OverdueID() string {
	return fmt.Sprintf("%s-%s-%d", AlarmOverdue, rel.Rule, rel.At.Unix())
}

// CheckOverdue is the patent's check: once the release is Grace past, a
// site is behind when more than tolerance of its devices in scope have not
// checked in since the release (devices are told to check at the release
// time, so by then they should have; tolerance allows for devices that are
// switched off). It returns the alarm naming the rule and the sites
// behind, with their counts, or ok false: nothing to raise, or clear an
// open alarm of the same ID (Release.OverdueID). Devices that checked in but were not offered
// or did not update are counted and shown, not alarmed on: windows and
// waves hold them on purpose, and failures have their own alarm.
func CheckOverdue(rel Release, grace time.Duration, tolerance Share, sites []SiteProgress, now time.Time) (a Alarm, ok bool) {
	if rel.At.IsZero() || now.Before(rel.At.Add(grace)) {
		return Alarm{}, false
	}
	var behind []SiteProgress
	var names []string
	for _, s := range sites {
		// More than tolerance: NotCheckedIn/Devices > tolerance.
		if s.NotCheckedIn > 0 && int64(s.NotCheckedIn)*int64(Whole) > int64(tolerance)*int64(s.Devices) {
			behind = append(behind, s)
			name := s.Site
			if name == "" {
				name = "(no site)"
			}
			names = append(names, fmt.Sprintf("%s %d of %d", name, s.NotCheckedIn, s.Devices))
		}
	}
	if len(behind) == 0 {
		return Alarm{}, false
	}
	return Alarm{
		ID:   rel.OverdueID(),
		Kind: AlarmOverdue, Rule: rel.Rule, Identity: rel.Identity, Version: rel.Version, Sites: behind,
		Detail: fmt.Sprintf("release of %s to %s at %s is %s past; devices that have not checked in since: %s",
			rel.Identity, rel.Version, rel.At.UTC().Format(time.RFC3339), now.Sub(rel.At).Round(time.Minute), strings.Join(names, ", ")),
		Raised: now,
	}, true
}
