package firmware

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCohortStable pins the cohort hash: a change moves devices between
// waves of every stored rollout, and must never happen.
func TestCohortStable(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"00-04-F2-00-00-01", 5658},
		{"00-04-F2-00-00-02", 8753},
		{"00-04-F2-AB-CD-EF", 3075},
		{"serial:SN42", 66},
		{"", 6177},
	}
	for _, tt := range tests {
		if got := Cohort(tt.key); got != tt.want {
			t.Errorf("Cohort(%q) = %d, want %d (the cohort hash must never change)", tt.key, got, tt.want)
		}
	}
}

// TestCohortDistribution hashes 100,000 consecutive MAC addresses (the
// hard case for a weak hash) and checks that every 1% of cohorts, and the
// default waves, hold their share within a tolerance of about five
// standard deviations; and that the cohort is independent of the check-in
// jitter's hash of the same key.
func TestCohortDistribution(t *testing.T) {
	const n = 100000
	var buckets [100]int
	waves := DefaultPlan().Waves
	perWave := make([]int, len(waves))
	var jitterQuarters [4]int // wave 0's devices by quarter of a day of jitter
	for i := range n {
		key := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&255, i>>8&255, i&255)
		c := Cohort(key)
		if c < 0 || c >= Cohorts {
			t.Fatalf("Cohort(%q) = %d, outside [0, %d)", key, c, Cohorts)
		}
		buckets[c/100]++
		k := waves.Wave(c)
		perWave[k]++
		if k == 0 {
			h := fnv.New64a()
			h.Write([]byte(key))
			jitterQuarters[h.Sum64()%uint64(24*time.Hour)/uint64(6*time.Hour)]++
		}
	}
	for i, got := range buckets {
		if got < 850 || got > 1150 {
			t.Errorf("cohorts [%d, %d) hold %d of %d keys, want 1000 ± 150", i*100, i*100+100, got, n)
		}
	}
	for k, got := range perWave {
		lo, hi := waves.Bounds(k)
		want := n * (hi - lo) / Cohorts
		tol := 5 * sqrt(float64(want))
		if d := float64(got - want); d < -tol || d > tol {
			t.Errorf("wave %d (%s) holds %d of %d keys, want %d ± %.0f", k, Share(hi-lo), got, n, want, tol)
		}
	}
	for q, got := range jitterQuarters {
		if got < 150 || got > 350 {
			t.Errorf("wave 0's devices: %d of %d in quarter %d of the jitter, want about 250: cohort and jitter are correlated", got, perWave[0], q)
		}
	}
}

func sqrt(x float64) float64 {
	r := x
	for range 50 {
		r = (r + x/r) / 2
	}
	return r
}

var (
	tStart = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	minute = time.Minute
	hour   = time.Hour
	day    = 24 * time.Hour
)

// pendingRule is a rule with v3 pending over v2 approved.
func pendingRule() Rule {
	r := NewRule(cx600, tStart.Add(-day))
	r.Approved, r.Restore, r.Pending = v2, v1, v3
	return r
}

func TestStartRollout(t *testing.T) {
	rule := pendingRule()
	r, evs, err := StartRollout(&rule, DefaultPlan(), "alice", tStart)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != RolloutRunning || r.Wave != 0 || !r.WaveOpened.Equal(tStart) || r.Version != v3 || r.From != v2 || r.Rule != rule.ID || r.By != "alice" {
		t.Errorf("started rollout = %+v", r)
	}
	if got := kinds(evs); got != "started wave" {
		t.Errorf("events = %s, want started wave", got)
	}
	if got, want := evs[1].Detail, "wave 1 of 4 opened: 1% of devices (1% more)"; got != want {
		t.Errorf("wave event = %q, want %q", got, want)
	}
	if rule.Pending != v3 || rule.Approved != v2 {
		t.Errorf("StartRollout changed the rule: %+v", stateOf(rule))
	}

	p := DefaultPlan()
	p.At = tStart.Add(2 * hour)
	r, evs, err = StartRollout(&rule, p, "alice", tStart)
	if err != nil || r.State != RolloutScheduled || kinds(evs) != "scheduled" || !strings.Contains(evs[0].Detail, "2026-11-02T11:00:00Z") {
		t.Errorf("scheduled rollout = %v %s %v, %v", r.State, kinds(evs), evs, err)
	}

	empty := NewRule(cx600, tStart)
	if _, _, err := StartRollout(&empty, DefaultPlan(), "alice", tStart); !errors.Is(err, ErrNoPending) {
		t.Errorf("StartRollout without a pending version: %v, want ErrNoPending", err)
	}
	bad := DefaultPlan()
	bad.Waves = Waves{100, 50}
	bad.MaxDownloads = -1
	_, _, err = StartRollout(&rule, bad, "alice", tStart)
	if !errors.Is(err, ErrPlan) || !errors.Is(err, ErrShare) || !strings.Contains(err.Error(), "max downloads") {
		t.Errorf("StartRollout with a bad plan: %v, want ErrPlan listing every problem", err)
	}
}

func kinds(evs []RolloutEvent) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, string(e.Kind))
	}
	return strings.Join(ks, " ")
}

// at returns a rollout in a state, for tables.
func rolloutAt(state RolloutState, wave int, opened time.Time) Rollout {
	rule := pendingRule()
	r, _, err := StartRollout(&rule, DefaultPlan(), "alice", tStart)
	if err != nil {
		panic(err)
	}
	r.State, r.Wave, r.WaveOpened = state, wave, opened
	return r
}

func TestStep(t *testing.T) {
	waveWait := DefaultPlan().WaveWait
	tests := []struct {
		name      string
		ro        func() Rollout
		now       time.Time
		stats     WaveStats
		state     RolloutState
		wave      int
		tolerated int
		events    string
		detail    string // a part of the last event's detail
	}{
		{"scheduled, before", func() Rollout {
			r := rolloutAt(RolloutScheduled, 0, time.Time{})
			r.At = tStart.Add(hour)
			return r
		}, tStart.Add(59 * minute), WaveStats{}, RolloutScheduled, 0, 0, "", ""},
		{"scheduled start reached", func() Rollout {
			r := rolloutAt(RolloutScheduled, 0, time.Time{})
			r.At = tStart.Add(hour)
			return r
		}, tStart.Add(hour + minute), WaveStats{Devices: 10, Waiting: 10}, RolloutRunning, 0, 0, "started wave", "opened"},
		{"quiet wave", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(hour), WaveStats{Devices: 50, Offered: 50}, RolloutRunning, 0, 0, "", ""},
		{"failures pause", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(hour), WaveStats{Devices: 50, Failed: 12, Installed: 38}, RolloutPaused, 0, 12, "paused", "wave 1: failures 12 of 50 (24%) ≥ 10%"},
		{"failures reaching the share pause", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(hour), WaveStats{Devices: 50, Failed: 5}, RolloutPaused, 0, 5, "paused", "failures 5 of 50 (10%) ≥ 10%"},
		{"failures below", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(hour), WaveStats{Devices: 50, Failed: 4}, RolloutRunning, 0, 0, "", ""},
		{"retrying and stalled do not count", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(hour), WaveStats{Devices: 50, Retrying: 20, Stalled: 20}, RolloutRunning, 0, 0, "", ""},
		{"failures by count", func() Rollout {
			r := rolloutAt(RolloutRunning, 1, tStart)
			r.MaxFailures = FailureCount(3)
			return r
		}, tStart.Add(hour), WaveStats{Devices: 500, Failed: 3}, RolloutPaused, 1, 3, "paused", "wave 2: failures 3 of 500 (0.6%) ≥ 3"},
		{"no failure tolerated", func() Rollout {
			r := rolloutAt(RolloutRunning, 0, tStart)
			r.MaxFailures = FailureCount(0)
			return r
		}, tStart.Add(hour), WaveStats{Devices: 500, Failed: 1}, RolloutPaused, 0, 1, "paused", "failures 1 of 500"},
		{"failures win over success", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 100, Installed: 90, Failed: 10}, RolloutPaused, 0, 10, "paused", ""},
		{"success before the wait", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(waveWait - minute), WaveStats{Devices: 50, Installed: 50}, RolloutRunning, 0, 0, "", ""},
		{"wait without success", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 50, Installed: 44, Offered: 6}, RolloutRunning, 0, 0, "", ""},
		{"next wave", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 50, Installed: 45, Offered: 5}, RolloutRunning, 1, 0, "wave", "wave 2 of 4 opened: 10% of devices (9% more) after wave 1 of 4: 45 of 50 devices installed (90% ≥ 90%)"},
		{"empty wave", func() Rollout { return rolloutAt(RolloutRunning, 0, tStart) }, tStart.Add(waveWait), WaveStats{}, RolloutRunning, 1, 0, "wave", "no devices"},
		{"a new wave forgets accepted failures", func() Rollout {
			r := rolloutAt(RolloutRunning, 1, tStart)
			r.Tolerated = 7
			return r
		}, tStart.Add(waveWait), WaveStats{Devices: 100, Installed: 90, Failed: 8}, RolloutRunning, 2, 0, "wave", ""},
		{"last wave completes", func() Rollout { return rolloutAt(RolloutRunning, 3, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 500, Installed: 460, Failed: 2}, RolloutCompleted, 3, 0, "completed", "completed: wave 4 of 4: 460 of 500 devices installed (92% ≥ 90%)"},
		{"accepted failures", func() Rollout {
			r := rolloutAt(RolloutRunning, 0, tStart)
			r.Tolerated = 12
			return r
		}, tStart.Add(hour), WaveStats{Devices: 50, Failed: 16}, RolloutRunning, 0, 12, "", ""},
		{"as many more pause again", func() Rollout {
			r := rolloutAt(RolloutRunning, 0, tStart)
			r.Tolerated = 12
			return r
		}, tStart.Add(hour), WaveStats{Devices: 50, Failed: 17}, RolloutPaused, 0, 17, "paused", "failures 5 of 50 (10%) ≥ 10%, beyond 12 accepted on resume"},
		{"paused stays", func() Rollout { return rolloutAt(RolloutPaused, 0, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 50, Installed: 50}, RolloutPaused, 0, 0, "", ""},
		{"completed stays", func() Rollout { return rolloutAt(RolloutCompleted, 3, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 50, Failed: 50}, RolloutCompleted, 3, 0, "", ""},
		{"stopped stays", func() Rollout { return rolloutAt(RolloutStopped, 1, tStart) }, tStart.Add(waveWait), WaveStats{Devices: 50, Installed: 50}, RolloutStopped, 1, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.ro()
			before := r
			evs := r.Step(tt.now, tt.stats)
			if r.State != tt.state || r.Wave != tt.wave || r.Tolerated != tt.tolerated {
				t.Errorf("after Step: state %s, wave %d, tolerated %d; want %s, %d, %d", r.State, r.Wave, r.Tolerated, tt.state, tt.wave, tt.tolerated)
			}
			if got := kinds(evs); got != tt.events {
				t.Errorf("events = %q, want %q", got, tt.events)
			}
			if len(evs) > 0 {
				last := evs[len(evs)-1]
				if !strings.Contains(last.Detail, tt.detail) {
					t.Errorf("event detail = %q, want it to say %q", last.Detail, tt.detail)
				}
				if last.By != SystemActor || !last.Time.Equal(tt.now) || !r.Updated.Equal(tt.now) {
					t.Errorf("event %+v, Updated %v: want by %s at %v", last, r.Updated, SystemActor, tt.now)
				}
			} else if diff := cmp.Diff(before, r); diff != "" {
				t.Errorf("Step without events changed the rollout (-before +after):\n%s", diff)
			}
			if tt.state == RolloutPaused && len(evs) > 0 {
				if r.PausedBy != SystemActor || !strings.Contains(r.Reason, "failures") {
					t.Errorf("paused by %q for %q, want by %s for failures", r.PausedBy, r.Reason, SystemActor)
				}
				a, ok := r.PauseAlarm()
				if !ok || a.Kind != AlarmPaused || a.Rule != r.Rule || !strings.Contains(a.Detail, r.Reason) || !a.IsOpen() {
					t.Errorf("PauseAlarm() = %+v, %v", a, ok)
				}
			}
		})
	}
}

func TestStepScheduledStartOpensAtAt(t *testing.T) {
	r := rolloutAt(RolloutScheduled, 0, time.Time{})
	r.At = tStart.Add(hour)
	r.Step(tStart.Add(3*hour), WaveStats{Devices: 1})
	if !r.WaveOpened.Equal(r.At) || !r.Started.Equal(r.At) {
		t.Errorf("a late Step opened wave 0 at %v, started %v; want both at At %v", r.WaveOpened, r.Started, r.At)
	}
}

func TestRolloutTransitions(t *testing.T) {
	type op func(r *Rollout) (RolloutEvent, error)
	pause := func(r *Rollout) (RolloutEvent, error) { return r.Pause("", "bob", tStart.Add(hour)) }
	resume := func(r *Rollout) (RolloutEvent, error) { return r.Resume("bob", tStart.Add(hour)) }
	stop := func(r *Rollout) (RolloutEvent, error) { return r.Stop("bob", tStart.Add(hour)) }
	rollback := func(r *Rollout) (RolloutEvent, error) { return r.Rollback("bob", tStart.Add(hour)) }
	rolledBack := func() Rollout {
		r := rolloutAt(RolloutStopped, 1, tStart)
		r.RolledBack = true
		return r
	}
	tests := []struct {
		name     string
		ro       Rollout
		op       op
		state    RolloutState
		rolled   bool
		kind     RolloutEventKind
		wantErr  error
		errWords string
	}{
		{"pause running", rolloutAt(RolloutRunning, 1, tStart), pause, RolloutPaused, false, EventPaused, nil, ""},
		{"pause scheduled", rolloutAt(RolloutScheduled, 0, time.Time{}), pause, RolloutScheduled, false, "", ErrRolloutNotRunning, "is scheduled: only a running rollout can be paused"},
		{"pause paused", rolloutAt(RolloutPaused, 1, tStart), pause, RolloutPaused, false, "", ErrRolloutNotRunning, ""},
		{"pause completed", rolloutAt(RolloutCompleted, 3, tStart), pause, RolloutCompleted, false, "", ErrRolloutEnded, "is completed: the rollout has ended"},
		{"pause stopped", rolloutAt(RolloutStopped, 1, tStart), pause, RolloutStopped, false, "", ErrRolloutEnded, ""},
		{"resume paused", rolloutAt(RolloutPaused, 1, tStart), resume, RolloutRunning, false, EventResumed, nil, ""},
		{"resume running", rolloutAt(RolloutRunning, 1, tStart), resume, RolloutRunning, false, "", ErrRolloutNotPaused, "is running: only a paused rollout can be resumed"},
		{"resume scheduled", rolloutAt(RolloutScheduled, 0, time.Time{}), resume, RolloutScheduled, false, "", ErrRolloutNotPaused, ""},
		{"resume stopped", rolloutAt(RolloutStopped, 1, tStart), resume, RolloutStopped, false, "", ErrRolloutEnded, ""},
		{"stop scheduled", rolloutAt(RolloutScheduled, 0, time.Time{}), stop, RolloutStopped, false, EventStopped, nil, ""},
		{"stop running", rolloutAt(RolloutRunning, 1, tStart), stop, RolloutStopped, false, EventStopped, nil, ""},
		{"stop paused", rolloutAt(RolloutPaused, 1, tStart), stop, RolloutStopped, false, EventStopped, nil, ""},
		{"stop stopped", rolloutAt(RolloutStopped, 1, tStart), stop, RolloutStopped, false, "", ErrRolloutEnded, ""},
		{"stop completed", rolloutAt(RolloutCompleted, 3, tStart), stop, RolloutCompleted, false, "", ErrRolloutEnded, ""},
		{"roll back running", rolloutAt(RolloutRunning, 1, tStart), rollback, RolloutStopped, true, EventRolledBack, nil, ""},
		{"roll back paused", rolloutAt(RolloutPaused, 1, tStart), rollback, RolloutStopped, true, EventRolledBack, nil, ""},
		{"roll back scheduled", rolloutAt(RolloutScheduled, 0, time.Time{}), rollback, RolloutStopped, true, EventRolledBack, nil, ""},
		{"roll back stopped", rolloutAt(RolloutStopped, 1, tStart), rollback, RolloutStopped, true, EventRolledBack, nil, ""},
		{"roll back rolled back", rolledBack(), rollback, RolloutStopped, true, "", ErrRolloutEnded, "is rolled back"},
		{"roll back completed", rolloutAt(RolloutCompleted, 3, tStart), rollback, RolloutCompleted, false, "", ErrRolloutEnded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.ro
			before := r
			ev, err := tt.op(&r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.errWords) || !strings.Contains(err.Error(), "rollout of UCPhone/Polycom/CX600/A/ENU to 4.0.7577.4372") {
					t.Errorf("error = %q, want it to name the rollout and say %q", err, tt.errWords)
				}
				if diff := cmp.Diff(before, r); diff != "" {
					t.Errorf("a refused transition changed the rollout (-before +after):\n%s", diff)
				}
				return
			}
			if r.State != tt.state || r.RolledBack != tt.rolled || ev.Kind != tt.kind || ev.By != "bob" || !r.Updated.Equal(tStart.Add(hour)) {
				t.Errorf("after: state %s rolled back %v, event %+v; want %s %v %s by bob", r.State, r.RolledBack, ev, tt.state, tt.rolled, tt.kind)
			}
			if !r.Live() && r.Ended.IsZero() {
				t.Errorf("ended rollout has no Ended time")
			}
		})
	}
}

// TestPauseResume runs a wave into its failure threshold, resumes it, and
// checks it runs on until as many more fail.
func TestPauseResume(t *testing.T) {
	r := rolloutAt(RolloutRunning, 0, tStart)
	r.Step(tStart.Add(hour), WaveStats{Devices: 50, Failed: 6, Installed: 20})
	if r.State != RolloutPaused {
		t.Fatalf("state %s, want paused", r.State)
	}
	if _, ok := r.PauseAlarm(); !ok {
		t.Error("no alarm for a pause on failures")
	}
	ev, err := r.Resume("carol", tStart.Add(2*hour))
	if err != nil || ev.Detail != "resumed, accepting 6 failed devices of wave 1" {
		t.Fatalf("Resume = %+v, %v", ev, err)
	}
	if _, ok := r.PauseAlarm(); ok {
		t.Error("alarm after resume")
	}
	if evs := r.Step(tStart.Add(3*hour), WaveStats{Devices: 50, Failed: 10, Installed: 30}); len(evs) != 0 || r.State != RolloutRunning {
		t.Errorf("4 more failures paused again: %s %v", r.State, evs)
	}
	r.Step(tStart.Add(4*hour), WaveStats{Devices: 50, Failed: 11, Installed: 30})
	if r.State != RolloutPaused || r.Tolerated != 11 {
		t.Errorf("5 more failures: state %s tolerated %d, want paused, 11", r.State, r.Tolerated)
	}
	if _, err := r.Pause("", "carol", tStart.Add(5*hour)); !errors.Is(err, ErrRolloutNotRunning) {
		t.Errorf("Pause of a paused rollout: %v", err)
	}
	r.Resume("carol", tStart.Add(5*hour))
	if _, err := r.Pause("maintenance", "carol", tStart.Add(6*hour)); err != nil || r.Reason != "maintenance" || r.PausedBy != "carol" {
		t.Errorf("manual pause: %v, reason %q by %q", err, r.Reason, r.PausedBy)
	}
	if _, ok := r.PauseAlarm(); ok {
		t.Error("alarm for a manual pause")
	}
}

func TestWaveOpens(t *testing.T) {
	wait := DefaultPlan().WaveWait
	scheduled := rolloutAt(RolloutScheduled, 0, tStart.Add(2*hour))
	scheduled.At = tStart.Add(2 * hour)
	// The current wave can reach Success 15 hours in at the earliest.
	late := rolloutAt(RolloutRunning, 0, tStart)
	late.WaveWait, late.Earliest = 4*hour, tStart.Add(15*hour)
	soon := late
	soon.Earliest = tStart.Add(5 * hour)
	lateScheduled := scheduled
	lateScheduled.Earliest = tStart.Add(15 * hour)
	tests := []struct {
		name string
		ro   Rollout
		k    int
		now  time.Time
		want time.Time
	}{
		{"open wave", rolloutAt(RolloutRunning, 2, tStart), 1, tStart.Add(hour), tStart},
		{"next wave", rolloutAt(RolloutRunning, 0, tStart), 1, tStart.Add(hour), tStart.Add(wait)},
		{"two waves ahead", rolloutAt(RolloutRunning, 0, tStart), 2, tStart.Add(hour), tStart.Add(2 * wait)},
		{"due, not open", rolloutAt(RolloutRunning, 0, tStart), 1, tStart.Add(wait + hour), tStart.Add(2*wait + hour)},
		{"scheduled wave 0", scheduled, 0, tStart, tStart.Add(2 * hour)},
		{"scheduled wave 2", scheduled, 2, tStart, tStart.Add(2*hour + 2*wait)},
		{"scheduled, At passed", scheduled, 1, tStart.Add(3 * hour), tStart.Add(2*hour + wait)},
		{"next wave, success later", late, 1, tStart.Add(hour), tStart.Add(15 * hour)},
		{"two waves ahead, success later", late, 2, tStart.Add(hour), tStart.Add(19 * hour)},
		{"next wave, success before the wait", soon, 1, tStart.Add(hour), tStart.Add(5 * hour)},
		{"two waves ahead, success before the waits", soon, 2, tStart.Add(hour), tStart.Add(9 * hour)},
		{"three waves ahead, the waits longer", soon, 3, tStart.Add(hour), tStart.Add(13 * hour)},
		{"open wave, success later", late, 0, tStart.Add(hour), tStart},
		{"due, success passed", late, 1, tStart.Add(16 * hour), tStart.Add(20 * hour)},
		{"scheduled: no success to wait for", lateScheduled, 1, tStart, tStart.Add(2*hour + wait)},
		{"paused", rolloutAt(RolloutPaused, 0, tStart), 1, tStart.Add(hour), time.Time{}},
		{"stopped", rolloutAt(RolloutStopped, 0, tStart), 1, tStart.Add(hour), time.Time{}},
	}
	for _, tt := range tests {
		if got := tt.ro.WaveOpens(tt.k, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: WaveOpens(%d, %v) = %v, want %v", tt.name, tt.k, tt.now, got, tt.want)
		}
	}
	short := rolloutAt(RolloutRunning, 0, tStart)
	short.WaveWait = 10 * minute
	if got, want := short.WaveOpens(1, tStart.Add(hour)), tStart.Add(2*hour); !got.Equal(want) {
		t.Errorf("due wave with a short wait: WaveOpens = %v, want now + WaveRecheck %v", got, want)
	}
}

// TestEarliestSuccess: the sites' devices are counted in the order their
// windows open until the wave can reach Success; none is needed once it
// is reached; it cannot be when the sites hold too few.
func TestEarliestSuccess(t *testing.T) {
	at := func(h int) time.Time { return tStart.Add(time.Duration(h) * hour) }
	sites := func() []SiteReady {
		return []SiteReady{{at(15), 50}, {at(0), 20}, {at(7), 25}, {at(16), 50}}
	}
	for _, tt := range []struct {
		name               string
		success            Share
		devices, installed int
		sites              []SiteReady
		want               time.Time
	}{
		{"open sites are enough", 9000, 1000, 880, sites(), at(0)},
		{"the next window", 9000, 1000, 860, sites(), at(7)},
		{"two windows on", 9000, 1000, 850, sites(), at(15)},
		{"exactly the last", 9000, 1000, 755, sites(), at(16)},
		{"reached", 9000, 1000, 900, sites(), time.Time{}},
		{"cannot be reached", 9000, 1000, 700, sites(), time.Time{}},
		{"no sites", 9000, 1000, 0, nil, time.Time{}},
		{"rounded up", 9050, 10, 9, []SiteReady{{at(3), 1}}, at(3)},
		{"100% of none", Whole, 0, 0, nil, time.Time{}},
	} {
		if got := EarliestSuccess(tt.success, tt.devices, tt.installed, tt.sites); !got.Equal(tt.want) {
			t.Errorf("%s: EarliestSuccess = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRolloutJSON(t *testing.T) {
	r := rolloutAt(RolloutPaused, 2, tStart.Add(day))
	r.Window = MustParseSchedule("Mon-Fri 22:00-05:00")
	r.MaxFailures = FailureCount(3)
	r.Reason, r.PausedBy, r.Tolerated = "failures 3 of 40 (7.5%) ≥ 3", SystemActor, 3
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out Rollout
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s\n%s", diff, b)
	}
}

func TestApprovePlan(t *testing.T) {
	rule := pendingRule()
	at := tStart.Add(hour)
	r, evs, err := StartRollout(&rule, ApprovePlan(at), "alice", tStart)
	if err != nil || r.State != RolloutScheduled || kinds(evs) != "scheduled" {
		t.Fatalf("approve --at: %s %s, %v", r.State, kinds(evs), err)
	}
	evs = r.Step(at, WaveStats{Devices: 100, Waiting: 100})
	if r.State != RolloutCompleted || kinds(evs) != "started wave completed" {
		t.Errorf("approve at its time: %s %s, want completed at once", r.State, kinds(evs))
	}
}

func TestWaveStatsAdd(t *testing.T) {
	var stats WaveStats
	for _, o := range []Outcome{OutcomeWaiting, OutcomeOffered, OutcomeDownloading, OutcomeInstalled, OutcomeInstalled, OutcomeRetrying, OutcomeStalled, OutcomeFailed} {
		stats.Add(o)
	}
	if want := (WaveStats{Devices: 8, Waiting: 1, Offered: 1, Downloading: 1, Installed: 2, Retrying: 1, Stalled: 1, Failed: 1}); stats != want {
		t.Errorf("WaveStats = %+v, want %+v", stats, want)
	}
}

func TestPlanJSON(t *testing.T) {
	p := DefaultPlan()
	p.Window = MustParseSchedule("Mon-Fri 22:00-05:00")
	p.MaxDownloads = 50
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"waves":"1%,10%,50%,100%","waveWait":86400000000000,"success":"90%","maxFailures":"10%","window":"Mon-Fri 22:00-05:00","maxDownloads":50}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var out Plan
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Waves.String() != p.Waves.String() || out.Success != p.Success || out.MaxFailures != p.MaxFailures || !out.Window.Equal(p.Window) || out.MaxDownloads != 50 {
		t.Errorf("round trip = %+v, want %+v", out, p)
	}
}
