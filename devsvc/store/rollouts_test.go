package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// pendingStore opens a store with the phone's v1 approved and v2 pending.
func pendingStore(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, nil)
	mustImport(t, s, update(phone, v1))
	if _, err := s.Approve(context.Background(), "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, update(phone, v2))
	return s
}

// fleetOf returns n device keys (MACs) of the phone identity, by wave of
// waves: keys[k] are those whose cohort falls in wave k.
func fleetOf(n int, waves firmware.Waves) [][]string {
	out := make([][]string, len(waves))
	for i := range n {
		key := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		k := waves.Wave(firmware.Cohort(key))
		out[k] = append(out[k], key)
	}
	return out
}

// checkInAt records a check-in of a phone running v, offered offered.
func checkInAt(t testing.TB, s *Store, key string, v, offered firmware.Version, site string, at time.Time) {
	t.Helper()
	if err := s.RecordCheckIn(context.Background(), firmware.Device{MAC: key, Identity: phone, Version: v, Offered: offered,
		Site: site, Location: firmware.Internal, LastCheckIn: at}); err != nil {
		t.Fatal(err)
	}
}

func reportAt(t testing.TB, s *Store, key string, st firmware.State, target firmware.Version, code string, at time.Time) {
	t.Helper()
	if err := s.Report(context.Background(), Report{Key: key, State: st, Target: target, Error: code, Time: at}); err != nil {
		t.Fatal(err)
	}
}

func actions(t testing.TB, s *Store, since uint64) []string {
	t.Helper()
	es, err := s.History(context.Background(), since, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Action+" by "+e.Actor)
	}
	return out
}

// TestRolloutThroughItsWaves runs a rollout through its waves with the
// engine's steps: a wave opens once it has run WaveWait and reached
// Success; failures in a wave pause it with an alarm; a resume clears the
// alarm and goes on; the last wave completes it, which approves the rule;
// every transition is in the history by whoever made it.
func TestRolloutThroughItsWaves(t *testing.T) {
	s := pendingStore(t)
	ctx := context.Background()
	plan := firmware.Plan{Waves: firmware.Waves{1000, 5000, firmware.Whole}, WaveWait: time.Hour, Success: 5000, MaxFailures: firmware.FailureShare(2000)}
	waves := fleetOf(400, plan.Waves)
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC) // the store's clock: newClock
	for _, w := range waves {
		for _, k := range w {
			checkInAt(t, s, k, v1, firmware.Version{}, "hq", t0.Add(-time.Hour))
		}
	}
	seq := s.Catalog().Seq()
	ro, err := s.StartRollout(ctx, "cert:alice", phone.Path(), plan)
	if err != nil || ro.State != firmware.RolloutRunning || ro.Wave != 0 || ro.By != "cert:alice" {
		t.Fatalf("StartRollout = %+v, %v", ro, err)
	}
	if _, err := s.StartRollout(ctx, "cert:alice", phone.Path(), plan); !errors.Is(err, ErrRolloutLive) {
		t.Errorf("a second StartRollout = %v, want ErrRolloutLive", err)
	}
	if got, ok := s.Catalog().Rollout(phone.RuleID()); !ok || got.State != firmware.RolloutRunning {
		t.Errorf("Catalog().Rollout = %+v, %v", got, ok)
	}
	step := func(at time.Time) firmware.Rollout {
		t.Helper()
		ro, _, err := s.StepRollout(ctx, phone.RuleID(), at)
		if err != nil {
			t.Fatal(err)
		}
		return ro
	}
	// Wave 0: offered, then 60% install.
	w0 := waves[0]
	for _, k := range w0 {
		checkInAt(t, s, k, v1, v2, "hq", t0.Add(time.Minute))
	}
	if got := s.Downloading(&ro); got != len(w0) {
		t.Errorf("Downloading = %d, want the %d devices offered", got, len(w0))
	}
	for _, k := range w0[:len(w0)*6/10] {
		reportAt(t, s, k, firmware.StateSuccess, v2, "", t0.Add(2*time.Minute))
	}
	t0 = ro.WaveOpened
	if got := step(t0.Add(30 * time.Minute)); got.Wave != 0 {
		t.Errorf("wave %d opened before WaveWait", got.Wave+1)
	}
	if got := step(t0.Add(time.Hour)); got.Wave != 1 || got.State != firmware.RolloutRunning {
		t.Fatalf("after WaveWait with 60%% installed: %+v, want wave 2 open", got)
	}
	// Wave 1: a quarter fail, beyond 20%: paused, with an alarm.
	w1 := waves[1]
	for _, k := range w1 {
		checkInAt(t, s, k, v1, v2, "hq", t0.Add(61*time.Minute))
	}
	for _, k := range w1[:len(w1)/4] {
		reportAt(t, s, k, firmware.StateFailure, v2, "0x80070005", t0.Add(62*time.Minute))
	}
	if got := step(t0.Add(63 * time.Minute)); got.State != firmware.RolloutRunning {
		t.Errorf("retrying devices paused the rollout: %+v", got)
	}
	// Past every retry (the default policy: 3 retries).
	for i := range 3 {
		at := t0.Add(time.Duration(64+i) * time.Minute)
		for _, k := range w1[:len(w1)/4] {
			checkInAt(t, s, k, v1, v2, "hq", at)
			reportAt(t, s, k, firmware.StateFailure, v2, "0x80070005", at)
		}
	}
	paused := step(t0.Add(70 * time.Minute))
	if paused.State != firmware.RolloutPaused || paused.PausedBy != firmware.SystemActor || !strings.Contains(paused.Reason, "≥ 20%") {
		t.Fatalf("after the failures: %+v, want paused by the system", paused)
	}
	alarms, err := s.Alarms(ctx, false)
	if err != nil || len(alarms) != 1 || alarms[0].Kind != firmware.AlarmPaused || alarms[0].Rule != phone.RuleID() {
		t.Fatalf("Alarms = %+v, %v; want the pause alarm", alarms, err)
	}
	pr, err := s.RolloutProgress(ctx, phone.Path(), t0.Add(70*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := pr.Waves[1].Stats; got.Failed != len(w1)/4 || got.Devices != len(w1) {
		t.Errorf("wave 2 stats %+v, want %d failed of %d", got, len(w1)/4, len(w1))
	}
	if diff := cmp.Diff([]Count{{"0x80070005", len(w1) / 4}}, pr.Failures); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if lr := s.LiveRollouts(t0.Add(70 * time.Minute)); len(lr) != 1 || lr[0].Rollout.State != firmware.RolloutPaused ||
		lr[0].Devices != pr.Total || lr[0].Devices.Failed != len(w1)/4 || lr[0].Devices.Devices != 400 {
		t.Errorf("LiveRollouts = %+v, want the paused rollout with its total %+v", lr, pr.Total)
	}
	if len(pr.Sites) != 1 || pr.Sites[0].Site != "hq" || pr.Sites[0].Devices != 400 {
		t.Errorf("sites %+v, want hq with 400 devices", pr.Sites)
	}
	if got := step(t0.Add(80 * time.Minute)); got.State != firmware.RolloutPaused {
		t.Errorf("a paused rollout moved: %+v", got)
	}
	// The admin resumes, accepting those failures; the rest install.
	if _, err := s.ResumeRollout(ctx, "cert:bob", phone.Path()); err != nil {
		t.Fatal(err)
	}
	if alarms, _ := s.Alarms(ctx, false); len(alarms) != 0 {
		t.Errorf("open alarms after the resume: %+v", alarms)
	}
	for _, k := range w1[len(w1)/4:] {
		reportAt(t, s, k, firmware.StateSuccess, v2, "", t0.Add(90*time.Minute))
	}
	if got := step(t0.Add(2 * time.Hour)); got.Wave != 2 {
		t.Fatalf("after the resume and 75%% installed: %+v, want wave 3", got)
	}
	for _, k := range waves[2] {
		checkInAt(t, s, k, v1, v2, "hq", t0.Add(121*time.Minute))
		reportAt(t, s, k, firmware.StateSuccess, v2, "", t0.Add(122*time.Minute))
	}
	done := step(t0.Add(3 * time.Hour))
	if done.State != firmware.RolloutCompleted {
		t.Fatalf("after the last wave: %+v, want completed", done)
	}
	if lr := s.LiveRollouts(t0.Add(3 * time.Hour)); len(lr) != 0 {
		t.Errorf("LiveRollouts after completion = %+v, want none", lr)
	}
	if r, _ := s.Catalog().Rule(phone); r.Approved != v2 || !r.Pending.IsZero() || r.Restore != v1 {
		t.Errorf("rule after completion %+v, want %s approved, %s to restore", r, v2, v1)
	}
	want := []string{
		"rollout-started by cert:alice", "rollout-wave by cert:alice",
		"rollout-wave by system",
		"rollout-paused by system", "alarm-raise by system",
		"rollout-resumed by cert:bob", "alarm-clear by cert:bob",
		"rollout-wave by system",
		"rollout-completed by system", "approve by system",
	}
	if diff := cmp.Diff(want, actions(t, s, seq)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	checkConsistent(t, s)
}

// TestRolloutAndRuleTransitions: what each rule transition does to a
// rule's rollout in each state, and that refused ones change nothing.
func TestRolloutAndRuleTransitions(t *testing.T) {
	plan := firmware.Plan{Waves: firmware.Waves{5000, firmware.Whole}, WaveWait: time.Hour, MaxFailures: firmware.FailureCount(5)}
	type state int
	const (
		scheduled state = iota
		running
		paused
		stopped
		approvalAt // approve --at
	)
	names := map[state]string{scheduled: "scheduled", running: "running", paused: "paused", stopped: "stopped", approvalAt: "approve --at"}
	ops := []struct {
		name string
		op   func(s *Store) error
	}{
		{"import", func(s *Store) error {
			_, err := s.Import(context.Background(), "admin", []firmware.ImportUpdate{update(phone, firmware.MustParseVersion("4.0.7577.400"))}, ImportOptions{})
			return err
		}},
		{"approve", func(s *Store) error { _, err := s.Approve(context.Background(), "admin", phone.Path()); return err }},
		{"approve --at", func(s *Store) error {
			_, err := s.Schedule(context.Background(), "admin", phone.Path(), time.Now().Add(48*time.Hour))
			return err
		}},
		{"reject", func(s *Store) error { _, err := s.Reject(context.Background(), "admin", phone.Path()); return err }},
		{"restore", func(s *Store) error { _, err := s.Restore(context.Background(), "admin", phone.Path()); return err }},
		{"withdraw", func(s *Store) error { _, err := s.Withdraw(context.Background(), "admin", phone.Path()); return err }},
		{"remove", func(s *Store) error { _, err := s.Remove(context.Background(), "admin", phone.Path()); return err }},
		{"rollout start", func(s *Store) error {
			_, err := s.StartRollout(context.Background(), "admin", phone.Path(), plan)
			return err
		}},
	}
	// want: the error, and the rollout's state after ("" none; "rolled back").
	type result struct {
		err   error
		after string
	}
	want := map[string]map[state]result{
		"import":        {scheduled: {ErrRolloutLive, "scheduled"}, running: {ErrRolloutLive, "running"}, paused: {ErrRolloutLive, "paused"}, stopped: {nil, "stopped"}, approvalAt: {nil, "stopped"}},
		"approve":       {scheduled: {ErrRolloutLive, "scheduled"}, running: {ErrRolloutLive, "running"}, paused: {ErrRolloutLive, "paused"}, stopped: {nil, "completed"}, approvalAt: {nil, "completed"}},
		"approve --at":  {scheduled: {ErrRolloutLive, "scheduled"}, running: {ErrRolloutLive, "running"}, paused: {ErrRolloutLive, "paused"}, stopped: {nil, "scheduled"}, approvalAt: {nil, "scheduled"}},
		"reject":        {scheduled: {nil, "rolled back"}, running: {nil, "rolled back"}, paused: {nil, "rolled back"}, stopped: {nil, "rolled back"}, approvalAt: {nil, "stopped"}},
		"restore":       {scheduled: {nil, "rolled back"}, running: {nil, "rolled back"}, paused: {nil, "rolled back"}, stopped: {nil, "rolled back"}, approvalAt: {nil, "scheduled"}},
		"withdraw":      {scheduled: {ErrRolloutLive, "scheduled"}, running: {ErrRolloutLive, "running"}, paused: {ErrRolloutLive, "paused"}, stopped: {nil, "stopped"}, approvalAt: {nil, "scheduled"}},
		"remove":        {scheduled: {nil, ""}, running: {nil, ""}, paused: {nil, ""}, stopped: {nil, ""}, approvalAt: {nil, ""}},
		"rollout start": {scheduled: {ErrRolloutLive, "scheduled"}, running: {ErrRolloutLive, "running"}, paused: {ErrRolloutLive, "paused"}, stopped: {nil, "running"}, approvalAt: {ErrRolloutLive, "scheduled"}},
	}
	for _, op := range ops {
		for st := scheduled; st <= approvalAt; st++ {
			t.Run(op.name+"/"+names[st], func(t *testing.T) {
				s := openTest(t, &Options{Now: time.Now})
				ctx := context.Background()
				mustImport(t, s, update(phone, v1))
				s.Approve(ctx, "admin", phone.Path())
				mustImport(t, s, update(phone, v2))
				s.Approve(ctx, "admin", phone.Path()) // v1 to restore
				mustImport(t, s, update(phone, v3))
				var err error
				switch st {
				case scheduled:
					p := plan
					p.At = time.Now().Add(24 * time.Hour)
					_, err = s.StartRollout(ctx, "admin", phone.Path(), p)
				case approvalAt:
					_, err = s.Schedule(ctx, "admin", phone.Path(), time.Now().Add(24*time.Hour))
				default:
					_, err = s.StartRollout(ctx, "admin", phone.Path(), plan)
				}
				if err != nil {
					t.Fatal(err)
				}
				switch st {
				case paused:
					_, err = s.PauseRollout(ctx, "admin", phone.Path(), "")
				case stopped:
					_, err = s.StopRollout(ctx, "admin", phone.Path())
				}
				if err != nil {
					t.Fatal(err)
				}
				beforeRule, _ := s.Catalog().Rule(phone)
				seq := s.Catalog().Seq()
				w := want[op.name][st]
				err = op.op(s)
				if !isErr(err, w.err) {
					t.Fatalf("err = %v, want %v", err, w.err)
				}
				if err != nil {
					if !strings.Contains(err.Error(), "devsvc ") {
						t.Errorf("the refusal %q does not say what to do", err)
					}
					if r, _ := s.Catalog().Rule(phone); !cmp.Equal(r, beforeRule) || s.Catalog().Seq() != seq {
						t.Errorf("a refused %s changed the rule (%+v) or the history", op.name, r)
					}
				}
				ro, ok := s.Catalog().Rollout(phone.RuleID())
				got := ""
				if ok {
					got = string(ro.State)
					if ro.RolledBack {
						got = "rolled back"
					}
				}
				if got != w.after {
					t.Errorf("rollout after %s: %q (%+v), want %q", op.name, got, ro, w.after)
				}
				checkConsistent(t, s)
			})
		}
	}
}

// TestRestoreRollsTheRolloutBack: a restore during a rollout stops it and
// the devices it reached are offered the approved version again; the rule
// is unchanged, and a second restore restores the rule.
func TestRestoreRollsTheRolloutBack(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1))
	s.Approve(ctx, "admin", phone.Path())
	mustImport(t, s, update(phone, v2))
	if _, err := s.StartRollout(ctx, "cert:alice", phone.Path(), firmware.DefaultPlan()); err != nil {
		t.Fatal(err)
	}
	seq := s.Catalog().Seq()
	r, err := s.Restore(ctx, "cert:bob", phone.Path())
	if err != nil || r.Approved != v1 || r.Pending != v2 {
		t.Fatalf("Restore = %+v, %v; want the rule unchanged", r, err)
	}
	ro, _ := s.Catalog().Rollout(phone.RuleID())
	if ro.State != firmware.RolloutStopped || !ro.RolledBack {
		t.Errorf("rollout after restore %+v, want stopped and rolled back", ro)
	}
	// A device it reached is offered v1 again.
	d := firmware.Decide(&firmware.OfferRequest{Rule: &r, Rollout: &ro, Current: v2, Cohort: 0, Now: time.Now()})
	if d.Version != v1 {
		t.Errorf("a reached device is offered %v, want %v", d.Version, v1)
	}
	es, _ := s.History(ctx, seq, 0)
	if len(es) != 2 || es[0].Action != "rollout-rolled-back" || es[1].Action != ActionRestore || es[1].Actor != "cert:bob" ||
		!strings.Contains(es[1].Detail, "rolled back the rollout of "+v2.String()) {
		t.Errorf("history of the restore: %+v", es)
	}
	// Restoring again is the rule's restore: nothing to restore.
	if _, err := s.Restore(ctx, "cert:bob", phone.Path()); !errors.Is(err, firmware.ErrNothingToRestore) {
		t.Errorf("second Restore = %v, want ErrNothingToRestore", err)
	}
	checkConsistent(t, s)
}

// TestApproveIsAOneWaveRollout: approve records a completed one-wave
// rollout and only the approve event; approve --at a scheduled one that
// the step completes at its time.
func TestApproveIsAOneWaveRollout(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1))
	seq := s.Catalog().Seq()
	if _, err := s.Approve(ctx, "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	ro, ok := s.Catalog().Rollout(phone.RuleID())
	if !ok || ro.State != firmware.RolloutCompleted || len(ro.Waves) != 1 || ro.Version != v1 || !s.Catalog().IsApproval(phone.RuleID()) {
		t.Errorf("rollout after approve: %+v", ro)
	}
	if diff := cmp.Diff([]string{"approve by admin"}, actions(t, s, seq)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	checkConsistent(t, s)
}

// TestLiveRollouts: the live rollouts with their devices counted as
// RolloutProgress's Total (test devices left out), none once it ends.
func TestLiveRollouts(t *testing.T) {
	s := pendingStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC) // newClock's
	keys := fleetOf(10, firmware.Waves{firmware.Whole})[0]
	if err := s.AddTestDevice(ctx, "admin", firmware.TestDevice{MAC: keys[0]}); err != nil {
		t.Fatal(err)
	}
	if got := s.LiveRollouts(t0); len(got) != 0 {
		t.Errorf("LiveRollouts without a rollout = %+v, want none", got)
	}
	if _, err := s.StartRollout(ctx, "admin", phone.Path(), firmware.Plan{Waves: firmware.Waves{firmware.Whole}, WaveWait: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		checkInAt(t, s, k, v1, v2, "hq", t0.Add(time.Minute))
	}
	for _, k := range keys[:3] { // the test device among them
		reportAt(t, s, k, firmware.StateSuccess, v2, "", t0.Add(2*time.Minute))
	}
	reportAt(t, s, keys[3], firmware.StateDownloading, v2, "", t0.Add(2*time.Minute))
	got := s.LiveRollouts(t0.Add(3 * time.Minute))
	want := firmware.WaveStats{Devices: 9, Installed: 2, Downloading: 1, Offered: 6}
	if len(got) != 1 || got[0].Rollout.Rule != phone.RuleID() || got[0].Rollout.State != firmware.RolloutRunning || got[0].Devices != want {
		t.Errorf("LiveRollouts = %+v, want the running rollout of %s with %+v", got, phone, want)
	}
	if _, err := s.StopRollout(ctx, "admin", phone.Path()); err != nil {
		t.Fatal(err)
	}
	if got := s.LiveRollouts(t0.Add(4 * time.Minute)); len(got) != 0 {
		t.Errorf("LiveRollouts after the stop = %+v, want none", got)
	}
	checkConsistent(t, s)
}

// TestWaveEarliest: a step finds when its wave can reach success at the
// earliest from the windows of the sites whose devices it waits for;
// the offer decision and the progress expect the next wave no earlier;
// none once success is reached.
func TestWaveEarliest(t *testing.T) {
	s := pendingStore(t)
	ctx := context.Background()
	for _, site := range []firmware.Site{
		{Name: "day", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		{Name: "night", Subnets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}, Windows: firmware.MustParseSchedule("22:00-06:00")},
	} {
		if _, err := s.PutSite(ctx, "admin", site, false); err != nil {
			t.Fatal(err)
		}
	}
	plan := firmware.Plan{Waves: firmware.Waves{5000, firmware.Whole}, WaveWait: time.Hour, Success: 9000, MaxFailures: firmware.FailureShare(5000)}
	w0 := fleetOf(200, plan.Waves)[0]
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC) // the store's clock
	day, night := w0[:len(w0)*6/10], w0[len(w0)*6/10:]
	for _, k := range day {
		checkInAt(t, s, k, v1, firmware.Version{}, "day", t0)
	}
	for _, k := range night {
		checkInAt(t, s, k, v1, firmware.Version{}, "night", t0)
	}
	ro, err := s.StartRollout(ctx, "admin", phone.Path(), plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range day {
		checkInAt(t, s, k, v1, v2, "day", t0.Add(30*time.Second))
		reportAt(t, s, k, firmware.StateSuccess, v2, "", t0.Add(time.Minute))
	}
	step := func(at time.Time) {
		t.Helper()
		if _, _, err := s.StepRollout(ctx, phone.RuleID(), at); err != nil {
			t.Fatal(err)
		}
	}
	step(t0.Add(2 * time.Minute))
	tonight := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	if got := s.WaveEarliest(&ro); !got.Equal(tonight) {
		t.Errorf("60%% installed, the rest in a site closed until 22:00: WaveEarliest = %v, want %v", got, tonight)
	}
	pr, err := s.RolloutProgress(ctx, phone.Path(), t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := pr.Waves[1].Opens; !got.Equal(tonight) {
		t.Errorf("wave 2 expected to open at %v, want %v (not WaveWait after the start)", got, tonight)
	}
	ro.Earliest = s.WaveEarliest(&ro)
	if got := ro.WaveOpens(1, t0.Add(3*time.Minute)); !got.Equal(tonight) {
		t.Errorf("WaveOpens(1) = %v, want %v", got, tonight)
	}
	// The night site's devices install: success, nothing more to wait for.
	for _, k := range night {
		checkInAt(t, s, k, v1, v2, "night", tonight.Add(30*time.Second))
		reportAt(t, s, k, firmware.StateSuccess, v2, "", tonight.Add(time.Minute))
	}
	step(tonight.Add(2 * time.Minute))
	if got := s.WaveEarliest(&ro); !got.IsZero() {
		t.Errorf("success reached: WaveEarliest = %v, want none", got)
	}
}
