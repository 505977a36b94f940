package firmware

import "time"

// Hold says why a version was held back from a device at a check-in; the
// empty Hold is none.
type Hold string

// Holds, in the order the decision applies them.
const (
	HoldNone      Hold = ""
	HoldScheduled Hold = "scheduled" // the rollout has not started
	HoldWave      Hold = "wave"      // the device's wave is not open yet
	HoldPaused    Hold = "paused"    // the rollout is paused
	HoldStopped   Hold = "stopped"   // the rollout was stopped before the device's turn
	HoldFailed    Hold = "failed"    // the device failed the version more than Retries allow
	HoldRetry     Hold = "retry"     // the device waits out its back-off after a failure
	HoldDownloads Hold = "downloads" // the rollout's MaxDownloads devices are taking it
	HoldWindow    Hold = "window"    // outside the site's or the rollout's windows
)

// Known reports whether h is one of the holds above (a forwarded check-in
// naming another is refused).
func (h Hold) Known() bool {
	switch h {
	case HoldNone, HoldScheduled, HoldWave, HoldPaused, HoldStopped, HoldFailed, HoldRetry, HoldDownloads, HoldWindow:
		return true
	}
	return false
}

// DownloadsRecheck is when a device held back by MaxDownloads is told to
// ask again.
const DownloadsRecheck = 15 * time.Minute

// Decision is the offer decision at one check-in.
type Decision struct {
	// Version is the version to offer; the zero Version is nothing
	// (downloads="0").
	Version Version
	// Hold says why Held was held back from the device ("" when nothing
	// was). A device may be offered one version while another is held:
	// a device outside the open waves still gets From when it runs
	// something else.
	Hold Hold
	Held Version
	// ComeBack is when the answer may change for the device: its wave's
	// expected opening, the end of its back-off, its windows' next
	// opening. The handler tells the device to check again then (with its
	// usual jitter) when that is before its normal interval, never later.
	// The zero time: nothing is expected; the normal interval.
	ComeBack time.Time
	// InstallBy is, for an offer inside windows, when they close: the
	// device must not install after it (the zero time: no limit).
	InstallBy time.Time
}

// OfferRollout is Offer with the rule's rollout (nil: none, and then it is
// exactly Offer): what a device running current, a test device or not,
// with its cohort (see Cohort), is offered at now, and, when a rollout
// holds its version back, why and when to come back.
//
//   - Test devices get the rule's pending version, as with Offer, whatever
//     the rollout's state: they always go first.
//   - Running: devices whose cohort's wave is open get Version; the others
//     are held (HoldWave) until their wave's expected opening (see
//     WaveOpens). A scheduled rollout whose At has come runs wave 0.
//   - Scheduled: held (HoldScheduled) until their wave's opening after At.
//   - Paused, or stopped: held (HoldPaused, HoldStopped), no return time.
//   - Completed: every device gets Version.
//   - A device held back gets the rule's approved version (From) when it
//     runs another, as with Offer; but a device that already runs the
//     rollout's version keeps it and is offered nothing, while the rollout
//     is live or stopped.
//   - Rolled back (a restore during the rollout): Offer, so the devices it
//     reached get From again.
//   - A rollout of another rule, or whose Version is no longer the rule's
//     pending version (completed and approved, rejected, replaced), is
//     over: Offer.
func OfferRollout(r *Rule, ro *Rollout, current Version, test bool, cohort int, now time.Time) Decision {
	if test || !governs(r, ro) {
		v, _ := Offer(r, current, test)
		return Decision{Version: v}
	}
	var d Decision
	state, wave, _ := ro.effective(now)
	switch state {
	case RolloutCompleted:
		return offer(ro.Version, current)
	case RolloutRunning:
		k := ro.Waves.Wave(cohort)
		if k <= wave {
			return offer(ro.Version, current)
		}
		d.Hold, d.ComeBack = HoldWave, ro.WaveOpens(k, now)
	case RolloutScheduled:
		d.Hold, d.ComeBack = HoldScheduled, ro.WaveOpens(ro.Waves.Wave(cohort), now)
	case RolloutPaused:
		d.Hold = HoldPaused
	default:
		d.Hold = HoldStopped
	}
	if current == ro.Version {
		return Decision{} // it keeps the version it was given
	}
	d.Held = ro.Version
	if v := r.Approved; !v.IsZero() && v != current {
		d.Version = v
	}
	return d
}

// governs reports whether ro decides the offers of r's devices: it is r's,
// its version is still r's pending one, and it was not rolled back.
func governs(r *Rule, ro *Rollout) bool {
	return ro != nil && !ro.Version.IsZero() && ro.Version == r.Pending && ro.Rule == r.ID &&
		!(ro.State == RolloutStopped && ro.RolledBack)
}

func offer(v, current Version) Decision {
	if v == current {
		return Decision{}
	}
	return Decision{Version: v}
}

// OfferRequest is what the offer decision knows at a check-in. Only Rule
// is required; the zero value of every other field is "none".
type OfferRequest struct {
	// Rule is the device's identity's rule.
	Rule *Rule
	// Rollout is the rule's rollout, nil when it has none.
	Rollout *Rollout
	// Current is the version the device runs; Test says it is a test
	// device; Cohort is Cohort of its key.
	Current Version
	Test    bool
	Cohort  int
	// Attempt is the device's record of its attempts (the store's), and
	// Retry the policy they are judged by.
	Attempt Attempt
	Retry   RetryPolicy
	// Site is the device's site, from SiteTable.Lookup or Remote (the zero
	// ZonedSite: none, UTC, always open). Its windows apply to every offer;
	// the rollout's window, read in the site's zone, to offers of the
	// rollout's version to devices other than test devices.
	Site ZonedSite
	// MinOpen is how long the windows must stay open for an offer to be
	// made, so that the device can download and install in time.
	MinOpen time.Duration
	// Downloading is how many devices are taking the rollout's version now
	// (see Plan.MaxDownloads).
	Downloading int
	// Now is the time of the check-in.
	Now time.Time
}

// Decide is the check-in handler's decision: OfferRollout, then the
// device's attempts (a device that failed the version more than the
// policy's retries allow is not offered it again, HoldFailed; one waiting
// out its back-off is held until then, HoldRetry), the rollout's
// MaxDownloads (HoldDownloads, for DownloadsRecheck; a device already
// taking the version keeps its place), and the windows (HoldWindow until
// they next open for at least MinOpen; an offer inside them carries their
// close as InstallBy). A ComeBack time is moved to the windows' next
// opening from then. It allocates nothing.
func Decide(q *OfferRequest) Decision {
	d := OfferRollout(q.Rule, q.Rollout, q.Current, q.Test, q.Cohort, q.Now)
	ro := q.Rollout
	if !governs(q.Rule, ro) {
		ro = nil // over: its window and cap no longer apply
	}
	// The rollout's window applies to the rollout's version offered to
	// devices other than test devices.
	rolloutWindow := func(v Version) Schedule {
		if ro == nil || q.Test || v != ro.Version {
			return Schedule{}
		}
		return ro.Window
	}
	loc := q.Site.Location
	comeBack := func(at time.Time, v Version) time.Time {
		if at.IsZero() {
			return at
		}
		return CheckWindows(at, loc, q.MinOpen, q.Site.Windows, rolloutWindow(v)).Next
	}
	if d.Version.IsZero() {
		d.ComeBack = comeBack(d.ComeBack, d.Held)
		return d
	}
	v := d.Version
	held := func(h Hold, at time.Time) Decision {
		return Decision{Hold: h, Held: v, ComeBack: comeBack(at, v)}
	}
	if a := &q.Attempt; a.Version == v && a.State == StateFailure {
		if a.GaveUp(q.Retry) {
			return held(HoldFailed, time.Time{})
		}
		if at := a.RetryAt(q.Retry); q.Now.Before(at) {
			return held(HoldRetry, at)
		}
	}
	if ro != nil && !q.Test && v == ro.Version && ro.MaxDownloads > 0 && q.Downloading >= ro.MaxDownloads {
		a := &q.Attempt
		taking := a.Version == v && !a.Offered.IsZero() && a.State != StateFailure && a.State != StateSuccess
		if !taking {
			return held(HoldDownloads, q.Now.Add(DownloadsRecheck))
		}
	}
	w := CheckWindows(q.Now, loc, q.MinOpen, q.Site.Windows, rolloutWindow(v))
	if !w.Open {
		return Decision{Hold: HoldWindow, Held: v, ComeBack: w.Next}
	}
	d.InstallBy = w.Close
	if !d.ComeBack.IsZero() {
		d.ComeBack = comeBack(d.ComeBack, d.Held)
	}
	return d
}
