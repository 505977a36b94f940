package firmware

import "time"

// Defaults of a RetryPolicy's zero fields.
const (
	DefaultRetries       = 3
	DefaultBackoff       = time.Hour
	DefaultMaxBackoff    = 24 * time.Hour
	DefaultReportTimeout = 2 * time.Hour
	DefaultStallTimeout  = 24 * time.Hour
)

// RetryPolicy says how a device's failed or silent attempts at a version
// are treated. Each zero field takes its default (DefaultRetries and so
// on), so the zero RetryPolicy is the default policy.
type RetryPolicy struct {
	// Retries is how many times a device that reported a failure is
	// offered the version again; after Retries+1 failures it counts as
	// failed and is not offered that version again (until its Attempt is
	// cleared). Negative: never again, the first failure counts.
	Retries int
	// Backoff is the wait before the first retry; each further retry waits
	// twice the one before, up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// ReportTimeout is how long a device offered a version may go without
	// a report (since the offer or its last report) before it counts as
	// stalled.
	ReportTimeout time.Duration
	// StallTimeout is how long a device stays stalled before it counts as
	// failed.
	StallTimeout time.Duration
}

func (p RetryPolicy) retries() int {
	switch {
	case p.Retries < 0:
		return 0
	case p.Retries == 0:
		return DefaultRetries
	}
	return p.Retries
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// RetryDelay returns how long a device waits after its failures-th failure
// before it is offered the version again: Backoff, doubled for each
// failure after the first, at most MaxBackoff; 0 for no failure.
func (p RetryPolicy) RetryDelay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d, limit := orDefault(p.Backoff, DefaultBackoff), orDefault(p.MaxBackoff, DefaultMaxBackoff)
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Outcome is where a device stands with a version it is (or would be)
// offered, as rollout progress counts it.
type Outcome string

// Outcomes.
const (
	// OutcomeWaiting: not offered the version yet.
	OutcomeWaiting Outcome = "waiting"
	// OutcomeOffered: offered, no report yet.
	OutcomeOffered Outcome = "offered"
	// OutcomeDownloading: reported downloading, downloaded, installing or
	// rebooting.
	OutcomeDownloading Outcome = "downloading"
	// OutcomeInstalled: runs the version, or reported success.
	OutcomeInstalled Outcome = "installed"
	// OutcomeRetrying: reported a failure and will be offered the version
	// again after its back-off.
	OutcomeRetrying Outcome = "retrying"
	// OutcomeStalled: offered, and no report for ReportTimeout.
	OutcomeStalled Outcome = "stalled"
	// OutcomeFailed: failed more than Retries times, or stalled for
	// StallTimeout. Only these count against MaxFailures.
	OutcomeFailed Outcome = "failed"
)

// Attempt is a device's progress towards one version it was offered: the
// record the store keeps per device and applies Offer and Report to. The
// zero Attempt is a device never offered anything.
type Attempt struct {
	// Version is the version offered; zero: none.
	Version Version `json:"version"`
	// Offered is when the current try began: the first offer of Version,
	// or the first offer after a failure. Offers repeated at later
	// check-ins do not move it, so a device that keeps checking in
	// without reporting stalls.
	Offered time.Time `json:"offered,omitzero"`
	// Failures counts the failures reported for Version; Failed is when
	// the last was.
	Failures int       `json:"failures,omitempty"`
	Failed   time.Time `json:"failed,omitzero"`
	// State is the last state reported for Version in the current try
	// (StateIdle: none), Reported when.
	State    State     `json:"state,omitempty"`
	Reported time.Time `json:"reported,omitzero"`
}

// Offer records that the device was offered v at now: a version other
// than the attempt's starts a new attempt; after a failure a new try
// begins; an offer repeated during a try changes nothing.
func (a *Attempt) Offer(v Version, now time.Time) {
	switch {
	case v.IsZero():
	case a.Version != v:
		*a = Attempt{Version: v, Offered: now}
	case a.Offered.IsZero() || a.State == StateFailure:
		a.Offered, a.State, a.Reported = now, StateIdle, time.Time{}
	}
}

// Report records a status report about version v at now; it reports
// whether the report was about the attempt's version (others are
// ignored). A failure counts once per try.
func (a *Attempt) Report(v Version, s State, now time.Time) bool {
	if v.IsZero() || v != a.Version {
		return false
	}
	if s == StateFailure && a.State != StateFailure {
		a.Failures++
		a.Failed = now
	}
	a.State, a.Reported = s, now
	return true
}

// GaveUp reports whether the device failed more than p's retries allow:
// it counts as failed and is not offered Version again.
func (a Attempt) GaveUp(p RetryPolicy) bool { return a.Failures > p.retries() }

// RetryAt returns when a device whose try failed may be offered Version
// again; the zero time when its last try did not fail.
func (a Attempt) RetryAt(p RetryPolicy) time.Time {
	if a.State != StateFailure {
		return time.Time{}
	}
	return a.Failed.Add(p.RetryDelay(a.Failures))
}

// Outcome returns where the device, running current, stands at now with
// the attempt's version.
func (a Attempt) Outcome(current Version, p RetryPolicy, now time.Time) Outcome {
	switch {
	case a.Version.IsZero():
		return OutcomeWaiting
	case current == a.Version || a.State == StateSuccess:
		return OutcomeInstalled
	case a.State == StateFailure:
		if a.GaveUp(p) {
			return OutcomeFailed
		}
		return OutcomeRetrying
	case a.Offered.IsZero():
		return OutcomeWaiting
	}
	last := a.Offered
	if a.Reported.After(last) {
		last = a.Reported
	}
	timeout := orDefault(p.ReportTimeout, DefaultReportTimeout)
	switch silent := now.Sub(last); {
	case silent >= timeout+orDefault(p.StallTimeout, DefaultStallTimeout):
		return OutcomeFailed
	case silent >= timeout:
		return OutcomeStalled
	}
	if a.State == StateIdle {
		return OutcomeOffered
	}
	return OutcomeDownloading
}

// OutcomeOf returns where the device, running current, stands at now with
// version v, as a rollout of v counts it: installed when it runs v; else
// waiting when its attempt is about another version (it was never offered
// v, or was offered something else since); else the attempt's Outcome.
func (a Attempt) OutcomeOf(v, current Version, p RetryPolicy, now time.Time) Outcome {
	switch {
	case current == v && !v.IsZero():
		return OutcomeInstalled
	case a.Version != v || v.IsZero():
		return OutcomeWaiting
	}
	return a.Outcome(current, p, now)
}

// Taking reports whether the device is taking the attempt's version at
// now: offered or downloading, neither finished nor stalled. A rollout's
// MaxDownloads counts these devices.
func (a Attempt) Taking(current Version, p RetryPolicy, now time.Time) bool {
	switch a.Outcome(current, p, now) {
	case OutcomeOffered, OutcomeDownloading:
		return true
	}
	return false
}
