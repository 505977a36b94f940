package firmware

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Errors of rollouts. Transitions wrap them with the rollout, so a message
// reads "rollout of UCPhone/Polycom/CX600/A/ENU to 4.0.7577.4372 is paused:
// only a running rollout can be paused".
var (
	// ErrPlan is returned by Plan.Validate and StartRollout for a plan
	// that cannot run (it wraps ErrShare for a malformed share too).
	ErrPlan = errors.New("invalid rollout plan")
	// ErrRolloutNotRunning is returned by Pause when the rollout is
	// scheduled or paused.
	ErrRolloutNotRunning = errors.New("only a running rollout can be paused")
	// ErrRolloutNotPaused is returned by Resume when the rollout is not
	// paused.
	ErrRolloutNotPaused = errors.New("only a paused rollout can be resumed")
	// ErrRolloutEnded is returned by Pause, Resume, Stop and Rollback when
	// the rollout has completed or stopped (Rollback: or rolled back).
	ErrRolloutEnded = errors.New("the rollout has ended")
)

// Cohorts is the number of cohorts: a device's cohort is a position in
// [0, Cohorts), in basis points of the fleet, as Waves are.
const Cohorts = int(Whole)

// Cohort places a device key (see DeviceKey) in [0, Cohorts): a stable,
// uniform hash, so a device keeps its cohort from one rollout to the next
// and from one release of the service to the next, and a new device joins
// the wave its key falls in. The hash is FNV-1a 64 of "cohort:" and the
// key, mixed by MurmurHash3's 64-bit finalizer, scaled to [0, Cohorts) by
// the high half of the product with Cohorts. The prefix keeps it apart
// from the check-in jitter, which hashes the bare key. It must never
// change: every stored rollout's waves would change members.
func Cohort(deviceKey string) int {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
		salt     = "cohort:"
	)
	h := uint64(offset64)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime64
	}
	for i := 0; i < len(deviceKey); i++ {
		h = (h ^ uint64(deviceKey[i])) * prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	hi, _ := bits.Mul64(h, uint64(Cohorts))
	return int(hi)
}

// Plan is what an admin chooses for a rollout: its waves, how each is
// judged, and when it may run.
type Plan struct {
	// Waves are the cumulative shares of the identity's devices that the
	// waves open to.
	Waves Waves `json:"waves"`
	// WaveWait is how long a wave runs at least before the next opens.
	WaveWait time.Duration `json:"waveWait"`
	// Success is the share of a wave's devices that must run the version
	// before the next wave opens, and the last wave's for the rollout to
	// complete; 0 needs none.
	Success Share `json:"success"`
	// MaxFailures pauses the rollout when the failed devices of the
	// current wave reach it.
	MaxFailures Threshold `json:"maxFailures"`
	// At is when the rollout starts; the zero time (or a time past) starts
	// it at once.
	At time.Time `json:"at,omitzero"`
	// Window is when devices may be offered the version, read in each
	// device's site's time zone, on top of its site's windows; the zero
	// Schedule is always.
	Window Schedule `json:"window,omitzero"`
	// MaxDownloads caps the devices taking the version at once (offered
	// and not yet installed or failed); 0 is no cap.
	MaxDownloads int `json:"maxDownloads,omitempty"`
}

// DefaultPlan returns the plan of a rollout with no options: waves of 1%,
// 10%, 50% and 100%, each run for a day and to 90% success before the
// next, pausing when 10% of a wave fails.
func DefaultPlan() Plan {
	return Plan{
		Waves:       Waves{100, 1000, 5000, Whole},
		WaveWait:    24 * time.Hour,
		Success:     9000,
		MaxFailures: FailureShare(1000),
	}
}

// ApprovePlan returns the plan of approve: one wave of every device,
// completing (and so approving the rule) at its first Step, at at or at
// once, as approve always did.
func ApprovePlan(at time.Time) Plan {
	return Plan{Waves: Waves{Whole}, MaxFailures: FailureShare(Whole), At: at}
}

// Validate checks the waves, the shares and that durations and counts are
// not negative. It lists every problem.
func (p Plan) Validate() error {
	var errs []error
	if err := p.Waves.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.WaveWait < 0 {
		errs = append(errs, fmt.Errorf("wave wait %s is negative", p.WaveWait))
	}
	if p.Success < 0 || p.Success > Whole {
		errs = append(errs, fmt.Errorf("%w: success %s: want 0%% to 100%%", ErrShare, p.Success))
	}
	if err := p.MaxFailures.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.MaxDownloads < 0 {
		errs = append(errs, fmt.Errorf("max downloads %d is negative: 0 is no cap", p.MaxDownloads))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrPlan, err)
	}
	return nil
}

// RolloutState is where a rollout stands.
type RolloutState string

// Rollout states. A rollout is live while scheduled, running or paused;
// completed and stopped are final.
const (
	// RolloutScheduled waits for its At: only test devices get the version.
	RolloutScheduled RolloutState = "scheduled"
	// RolloutRunning offers the version to the open waves.
	RolloutRunning RolloutState = "running"
	// RolloutPaused offers the version to no more devices; Resume goes on.
	RolloutPaused RolloutState = "paused"
	// RolloutCompleted reached Success in its last wave; the store then
	// approves the rule, and every device gets the version.
	RolloutCompleted RolloutState = "completed"
	// RolloutStopped offers the version to no more devices, for good;
	// with RolledBack, the devices it reached are offered From again.
	RolloutStopped RolloutState = "stopped"
)

// SystemActor is the actor of what a rollout does by itself: Step's
// starts, waves, automatic pauses and completion.
const SystemActor = "system"

// Rollout approves a rule's pending version in waves (see the package
// documentation for the whole story).
//
// While a rollout is live the rule keeps Pending = Version and Approved =
// From: the store keeps that so (refusing, or stopping the rollout before,
// an import, reject, approve or restore of the rule), and applies
// Rule.Approve when Step completes the rollout. A rollout whose Version is
// no longer the rule's pending version is over and is ignored by the offer
// decision. The zero Rollout is not a valid rollout; StartRollout makes
// one.
type Rollout struct {
	// Rule is the rule's ID, Identity its identity.
	Rule     string   `json:"rule"`
	Identity Identity `json:"identity"`
	// Version is the version being rolled out: the rule's pending version
	// when the rollout started.
	Version Version `json:"version"`
	// From is the rule's approved version when the rollout started (zero:
	// none), what the devices outside the open waves keep being offered.
	From Version `json:"from"`
	Plan
	State RolloutState `json:"state"`
	// Wave is the index in Waves of the last open wave while running,
	// paused or completed; 0 while scheduled.
	Wave int `json:"wave"`
	// WaveOpened is when Wave opened; zero while scheduled.
	WaveOpened time.Time `json:"waveOpened,omitzero"`
	// Tolerated is the failures of the current wave that a resume accepts:
	// Step sets it to the wave's failures when it pauses the rollout for
	// them, and MaxFailures counts only failures beyond it; a new wave
	// starts at 0.
	Tolerated int `json:"tolerated,omitempty"`
	// Reason says why the rollout is paused or stopped, such as "failures
	// 12 of 50 (24%) ≥ 10%".
	Reason string `json:"reason,omitempty"`
	// PausedBy is who paused it: an admin, or SystemActor for a pause on
	// failures.
	PausedBy string `json:"pausedBy,omitempty"`
	// RolledBack says the stopped rollout was rolled back (a restore
	// during it): the devices it reached are offered From again.
	RolledBack bool `json:"rolledBack,omitempty"`
	// By is who started it.
	By string `json:"by"`
	// Created is when it was started (or scheduled), Started when it began
	// running (At for a scheduled one), Ended when it completed or
	// stopped, Updated its last change.
	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	Updated time.Time `json:"updated"`
	// Earliest, when set, is the earliest the current wave can reach
	// Success (EarliestSuccess): the rollout engine's estimate from the
	// windows of the sites whose devices the wave still waits for. It is
	// not stored: the store sets it on the copies the offer decision and
	// the progress read (store.Store.WaveEarliest), and WaveOpens expects
	// no later wave before it.
	Earliest time.Time `json:"-"`
}

// SiteReady is what a wave waits for at one site: Devices that have not
// installed its version (and have not failed it), which can be offered it
// from At on (the next opening of the site's and the rollout's windows;
// the present when they are open).
type SiteReady struct {
	At      time.Time
	Devices int
}

// EarliestSuccess returns the earliest a wave of devices devices, of
// which installed run its version, can reach success: when the sites
// whose windows have opened by then hold enough devices still to install
// (sites is sorted by At in place). It is a bound, not a forecast:
// devices take time to install, and may not come at all. The zero time
// means success is reached, or cannot be without more devices than the
// sites hold.
func EarliestSuccess(success Share, devices, installed int, sites []SiteReady) time.Time {
	need := int((int64(success)*int64(devices)+int64(Whole)-1)/int64(Whole)) - installed
	if need <= 0 {
		return time.Time{}
	}
	slices.SortFunc(sites, func(a, b SiteReady) int { return a.At.Compare(b.At) })
	for _, s := range sites {
		if need -= s.Devices; need <= 0 {
			return s.At
		}
	}
	return time.Time{}
}

// RolloutEventKind names what happened to a rollout.
type RolloutEventKind string

// What happens to a rollout, for its history.
const (
	EventScheduled  RolloutEventKind = "scheduled"   // started with an At in the future
	EventStarted    RolloutEventKind = "started"     // began running, at once or at its At
	EventWaveOpened RolloutEventKind = "wave"        // a wave opened (wave 0 with the start)
	EventPaused     RolloutEventKind = "paused"      // paused by an admin or on failures
	EventResumed    RolloutEventKind = "resumed"     // resumed by an admin
	EventCompleted  RolloutEventKind = "completed"   // the last wave reached Success: approve the rule
	EventStopped    RolloutEventKind = "stopped"     // stopped by an admin
	EventRolledBack RolloutEventKind = "rolled-back" // stopped by a restore: reached devices get From
)

// RolloutEvent is one change of a rollout, for the history: what, when, by
// whom, about which wave, said for a person.
type RolloutEvent struct {
	Time   time.Time        `json:"time"`
	Kind   RolloutEventKind `json:"kind"`
	Wave   int              `json:"wave"`
	By     string           `json:"by"`
	Detail string           `json:"detail"`
}

// StartRollout starts a rollout of rule's pending version under plan p,
// for by at now: scheduled when p.At is after now, else running with wave
// 0 open. The rule is not changed. It returns ErrNoPending when the rule
// has nothing pending, ErrPlan for a plan that cannot run.
func StartRollout(rule *Rule, p Plan, by string, now time.Time) (Rollout, []RolloutEvent, error) {
	if rule.Pending.IsZero() {
		return Rollout{}, nil, fmt.Errorf("rule %s has %w to roll out", rule.Identity, ErrNoPending)
	}
	if err := p.Validate(); err != nil {
		return Rollout{}, nil, fmt.Errorf("rollout of %s: %w", rule.Identity, err)
	}
	p.Waves = append(Waves(nil), p.Waves...)
	r := Rollout{
		Rule: rule.ID, Identity: rule.Identity, Version: rule.Pending, From: rule.Approved,
		Plan: p, State: RolloutScheduled, By: by, Created: now, Updated: now,
	}
	if p.At.After(now) {
		return r, []RolloutEvent{r.event(now, EventScheduled, by, "scheduled to start at "+p.At.UTC().Format(time.RFC3339))}, nil
	}
	r.Plan.At = time.Time{}
	return r, r.start(now, now, by), nil
}

func (r *Rollout) event(now time.Time, k RolloutEventKind, by, detail string) RolloutEvent {
	return RolloutEvent{Time: now, Kind: k, Wave: r.Wave, By: by, Detail: detail}
}

// start makes a scheduled rollout run, wave 0 open since at.
func (r *Rollout) start(at, now time.Time, by string) []RolloutEvent {
	r.State, r.Wave, r.WaveOpened, r.Started, r.Updated = RolloutRunning, 0, at, at, now
	detail := "started"
	if by == SystemActor {
		detail = "scheduled start reached"
	}
	return []RolloutEvent{r.event(now, EventStarted, by, detail), r.waveEvent(now, by)}
}

func (r *Rollout) waveEvent(now time.Time, by string) RolloutEvent {
	lo, hi := r.Waves.Bounds(r.Wave)
	return r.event(now, EventWaveOpened, by, fmt.Sprintf("wave %d of %d opened: %s of devices (%s more)",
		r.Wave+1, len(r.Waves), Share(hi), Share(hi-lo)))
}

// Live reports whether the rollout is scheduled, running or paused.
func (r *Rollout) Live() bool {
	return r.State == RolloutScheduled || r.State == RolloutRunning || r.State == RolloutPaused
}

func (r *Rollout) errorf(err error) error {
	state := string(r.State)
	if r.RolledBack {
		state = "rolled back"
	}
	return fmt.Errorf("rollout of %s to %s is %s: %w", r.Identity, r.Version, state, err)
}

// Pause pauses a running rollout: no more devices are offered its version
// until Resume. reason defaults to "paused by BY".
func (r *Rollout) Pause(reason, by string, now time.Time) (RolloutEvent, error) {
	switch r.State {
	case RolloutRunning:
	case RolloutCompleted, RolloutStopped:
		return RolloutEvent{}, r.errorf(ErrRolloutEnded)
	default:
		return RolloutEvent{}, r.errorf(ErrRolloutNotRunning)
	}
	if reason == "" {
		reason = "paused by " + by
	}
	r.State, r.Reason, r.PausedBy, r.Updated = RolloutPaused, reason, by, now
	return r.event(now, EventPaused, by, reason), nil
}

// Resume goes on with a paused rollout, in the wave it was paused in. The
// failures that paused it are accepted (see Tolerated): it pauses again
// when as many more fail.
func (r *Rollout) Resume(by string, now time.Time) (RolloutEvent, error) {
	switch r.State {
	case RolloutPaused:
	case RolloutCompleted, RolloutStopped:
		return RolloutEvent{}, r.errorf(ErrRolloutEnded)
	default:
		return RolloutEvent{}, r.errorf(ErrRolloutNotPaused)
	}
	r.State, r.Reason, r.PausedBy, r.Updated = RolloutRunning, "", "", now
	detail := "resumed"
	if r.Tolerated > 0 {
		detail = fmt.Sprintf("resumed, accepting %d failed devices of wave %d", r.Tolerated, r.Wave+1)
	}
	return r.event(now, EventResumed, by, detail), nil
}

// Stop ends a live rollout for good. The devices it reached keep the
// version, the others keep From; the rule keeps its pending version, which
// may be rolled out again, approved or rejected.
func (r *Rollout) Stop(by string, now time.Time) (RolloutEvent, error) {
	if !r.Live() {
		return RolloutEvent{}, r.errorf(ErrRolloutEnded)
	}
	r.State, r.Reason, r.Ended, r.Updated = RolloutStopped, "stopped by "+by, now, now
	return r.event(now, EventStopped, by, r.Reason), nil
}

// Rollback is a restore during a rollout: it stops the rollout (live, or
// stopped without a roll-back) and the devices it reached are offered From
// again. The rule is not changed: its approved version is still From.
func (r *Rollout) Rollback(by string, now time.Time) (RolloutEvent, error) {
	if !r.Live() && (r.State != RolloutStopped || r.RolledBack) {
		return RolloutEvent{}, r.errorf(ErrRolloutEnded)
	}
	r.State, r.RolledBack, r.Reason, r.Updated = RolloutStopped, true, "rolled back by "+by, now
	if r.Ended.IsZero() {
		r.Ended = now
	}
	detail := "rolled back by " + by + ": devices it reached are offered " + r.From.String() + " again"
	if r.From.IsZero() {
		detail = "rolled back by " + by + ": no version was approved before, devices are offered nothing"
	}
	return r.event(now, EventRolledBack, by, detail), nil
}

// WaveStats counts the devices of one wave by Outcome; Step judges the
// current wave by them. Devices are the identity's devices whose cohort is
// in the wave (Waves.Bounds), test devices excluded; the other fields
// count them by outcome and add up to Devices.
type WaveStats struct {
	Devices     int `json:"devices"`
	Waiting     int `json:"waiting"`
	Offered     int `json:"offered"`
	Downloading int `json:"downloading"`
	Installed   int `json:"installed"`
	Retrying    int `json:"retrying"`
	Stalled     int `json:"stalled"`
	Failed      int `json:"failed"`
}

// Add counts one device with outcome o.
func (s *WaveStats) Add(o Outcome) {
	s.Devices++
	switch o {
	case OutcomeOffered:
		s.Offered++
	case OutcomeDownloading:
		s.Downloading++
	case OutcomeInstalled:
		s.Installed++
	case OutcomeRetrying:
		s.Retrying++
	case OutcomeStalled:
		s.Stalled++
	case OutcomeFailed:
		s.Failed++
	default:
		s.Waiting++
	}
}

// Step moves the rollout on at now, given the stats of its current wave
// (wave 0 for a scheduled rollout), and returns what happened, by
// SystemActor:
//
//   - a scheduled rollout whose At has come starts, wave 0 open since At;
//   - a running rollout whose current wave's failures (beyond Tolerated)
//     reach MaxFailures pauses, with a reason such as "failures 12 of 50
//     (24%) ≥ 10%" (see PauseAlarm);
//   - else, when the current wave has run for WaveWait and its installed
//     devices reach Success, the next wave opens, or after the last the
//     rollout completes (EventCompleted: the store approves the rule).
//
// One wave opens per Step: the next is judged by its own stats. Paused and
// ended rollouts do not move.
func (r *Rollout) Step(now time.Time, s WaveStats) []RolloutEvent {
	var evs []RolloutEvent
	if r.State == RolloutScheduled {
		if now.Before(r.At) {
			return nil
		}
		at := r.At
		if at.IsZero() {
			at = now
		}
		evs = r.start(at, now, SystemActor)
	}
	if r.State != RolloutRunning {
		return evs
	}
	if failed := s.Failed - r.Tolerated; r.MaxFailures.Reached(failed, s.Devices) {
		reason := fmt.Sprintf("failures %d of %d (%s) ≥ %s", failed, s.Devices, ShareOf(failed, s.Devices), r.MaxFailures)
		if r.Tolerated > 0 {
			reason += fmt.Sprintf(", beyond %d accepted on resume", r.Tolerated)
		}
		r.State, r.Reason, r.PausedBy, r.Tolerated, r.Updated = RolloutPaused, reason, SystemActor, s.Failed, now
		return append(evs, r.event(now, EventPaused, SystemActor, fmt.Sprintf("wave %d: %s", r.Wave+1, reason)))
	}
	if now.Sub(r.WaveOpened) < r.WaveWait || !r.Success.Reached(s.Installed, s.Devices) {
		return evs
	}
	done := fmt.Sprintf("wave %d of %d: %d of %d devices installed (%s ≥ %s)", r.Wave+1, len(r.Waves),
		s.Installed, s.Devices, ShareOf(s.Installed, s.Devices), r.Success)
	if s.Devices == 0 {
		done = fmt.Sprintf("wave %d of %d: no devices", r.Wave+1, len(r.Waves))
	}
	if r.Wave >= len(r.Waves)-1 {
		r.State, r.Ended, r.Updated = RolloutCompleted, now, now
		return append(evs, r.event(now, EventCompleted, SystemActor, "completed: "+done))
	}
	r.Wave, r.WaveOpened, r.Tolerated, r.Updated = r.Wave+1, now, 0, now
	ev := r.waveEvent(now, SystemActor)
	ev.Detail += " after " + done
	return append(evs, ev)
}

// WaveRecheck is the least a device waiting for a wave that is due but
// not open (its predecessor has not reached Success) is told to wait
// before it asks again; more when WaveWait is longer.
const WaveRecheck = time.Hour

// effective returns the state, wave and opening the offer decision acts
// on at now: a scheduled rollout whose At has come runs wave 0 since At,
// even before Step has seen it, so devices told to come at At are served.
func (r *Rollout) effective(now time.Time) (RolloutState, int, time.Time) {
	if r.State == RolloutScheduled && !now.Before(r.At) {
		return RolloutRunning, 0, r.At
	}
	return r.State, r.Wave, r.WaveOpened
}

// WaveOpens returns when wave k is expected to open, as seen at now: its
// opening time if it is open, else the current wave's opening (At while
// scheduled) plus WaveWait for each wave between, and no earlier than
// Earliest (when the current wave can reach Success) plus WaveWait for
// each wave between that and k. A wave that is due but not open is
// expected at now plus the longer of WaveWait and WaveRecheck. The zero
// time means the rollout is paused or ended and no wave opens.
func (r *Rollout) WaveOpens(k int, now time.Time) time.Time {
	state, wave, opened := r.effective(now)
	switch state {
	case RolloutScheduled:
		wave, opened = 0, r.At
		if k == 0 {
			return r.At
		}
	case RolloutRunning:
		if k <= wave {
			return opened
		}
	case RolloutCompleted:
		return opened
	default:
		return time.Time{}
	}
	at := opened.Add(time.Duration(k-wave) * r.WaveWait)
	if state == RolloutRunning && r.Earliest.After(now) {
		if e := r.Earliest.Add(time.Duration(k-wave-1) * r.WaveWait); e.After(at) {
			at = e
		}
	}
	if !at.After(now) {
		at = now.Add(max(r.WaveWait, WaveRecheck))
	}
	return at
}

// PauseAlarm returns the alarm of a rollout that paused itself on
// failures; ok is false otherwise.
func (r *Rollout) PauseAlarm() (a Alarm, ok bool) {
	if r.State != RolloutPaused || r.PausedBy != SystemActor {
		return Alarm{}, false
	}
	return Alarm{
		ID:   fmt.Sprintf("%s-%s-%d-w%d", AlarmPaused, r.Rule, r.Created.Unix(), r.Wave+1),
		Kind: AlarmPaused, Rule: r.Rule, Identity: r.Identity, Version: r.Version,
		Detail: fmt.Sprintf("rollout of %s to %s paused in wave %d of %d: %s", r.Identity, r.Version, r.Wave+1, len(r.Waves), r.Reason),
		Raised: r.Updated,
	}, true
}
