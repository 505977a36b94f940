package rollout

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var (
	cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	v1    = firmware.MustParseVersion("4.0.7577.100")
	v2    = firmware.MustParseVersion("4.0.7577.200")
)

// newStore opens a store in the bubble with v1 approved and v2 pending.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), &store.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, v := range []firmware.Version{v1, v2} {
		if _, err := st.Import(ctx, "admin", []firmware.ImportUpdate{{Identity: cx600, Version: v, Files: []firmware.ImportFile{{
			Name: "CX600.nbt", Role: firmware.RoleImage, Size: -1,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("image " + v.String())), nil },
		}}}}, store.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		if v == v1 {
			if _, err := st.Approve(ctx, "admin", cx600.Path()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// fleet returns n device keys by the wave of waves their cohort is in.
func fleet(n int, waves firmware.Waves) [][]string {
	out := make([][]string, len(waves))
	for i := range n {
		key := fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff)
		k := waves.Wave(firmware.Cohort(key))
		out[k] = append(out[k], key)
	}
	return out
}

func checkIn(t *testing.T, st *store.Store, key, site string, v, offered firmware.Version) {
	t.Helper()
	if err := st.RecordCheckIn(context.Background(), firmware.Device{MAC: key, Identity: cx600, Version: v, Offered: offered, Site: site}); err != nil {
		t.Fatal(err)
	}
}

func report(t *testing.T, st *store.Store, key string, s firmware.State) {
	t.Helper()
	if err := st.Report(context.Background(), store.Report{Key: key, State: s, Target: v2, Error: map[bool]string{true: "0x80070005"}[s == firmware.StateFailure]}); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a log destination safe for the engine's goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run starts the engine in the bubble and stops it when the test ends.
func run(t *testing.T, st *store.Store, cfg Config) *logBuffer {
	var logs logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { New(st, cfg).Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &logs
}

// TestEngineRunsTheWaves: a wave opens once it has run WaveWait and
// reached Success, not before; the last wave's completion approves the
// rule; the steps are in the history by the system and in the log.
func TestEngineRunsTheWaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		plan := firmware.Plan{Waves: firmware.Waves{2000, firmware.Whole}, WaveWait: time.Hour, Success: 8000, MaxFailures: firmware.FailureShare(5000)}
		waves := fleet(200, plan.Waves)
		for _, w := range waves {
			for _, k := range w {
				checkIn(t, st, k, "hq", v1, firmware.Version{})
			}
		}
		if _, err := st.StartRollout(ctx, "cert:alice", cx600.Path(), plan); err != nil {
			t.Fatal(err)
		}
		logs := run(t, st, Config{})
		state := func() firmware.Rollout {
			synctest.Wait()
			ro, _ := st.Catalog().Rollout(cx600.RuleID())
			return ro
		}
		// Wave 1 installs within minutes, but waits its hour.
		for _, k := range waves[0] {
			checkIn(t, st, k, "hq", v1, v2)
			report(t, st, k, firmware.StateSuccess)
		}
		time.Sleep(59 * time.Minute)
		if ro := state(); ro.Wave != 0 {
			t.Fatalf("wave %d open before WaveWait", ro.Wave+1)
		}
		time.Sleep(2 * time.Minute)
		if ro := state(); ro.Wave != 1 || ro.State != firmware.RolloutRunning {
			t.Fatalf("after WaveWait: %+v, want wave 2 open", ro)
		}
		// Wave 2 reaches only 70% for a while: no completion.
		for i, k := range waves[1] {
			checkIn(t, st, k, "hq", v1, v2)
			if i < len(waves[1])*7/10 {
				report(t, st, k, firmware.StateSuccess)
			}
		}
		time.Sleep(2 * time.Hour)
		if ro := state(); ro.State != firmware.RolloutRunning {
			t.Fatalf("completed at 70%% of 80%%: %+v", ro)
		}
		for _, k := range waves[1][len(waves[1])*7/10:] {
			report(t, st, k, firmware.StateSuccess)
		}
		time.Sleep(10 * time.Second)
		if ro := state(); ro.State != firmware.RolloutCompleted {
			t.Fatalf("after all installed: %+v, want completed", ro)
		}
		if r, _ := st.Catalog().Rule(cx600); r.Approved != v2 || !r.Pending.IsZero() {
			t.Errorf("rule after completion: %+v, want %s approved", r, v2)
		}
		es, _ := st.History(ctx, 0, 0)
		last := es[len(es)-1]
		if last.Action != store.ActionApprove || last.Actor != firmware.SystemActor {
			t.Errorf("last event %+v, want the approve by the system", last)
		}
		for _, want := range []string{"rollout wave", "rollout completed"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
}

// TestEnginePausesOnFailures: failures of the current wave reaching
// MaxFailures pause the rollout with an alarm and a history event; no
// more waves open while paused.
func TestEnginePausesOnFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		plan := firmware.Plan{Waves: firmware.Waves{2000, firmware.Whole}, WaveWait: time.Hour, Success: firmware.Whole, MaxFailures: firmware.FailureCount(3)}
		waves := fleet(100, plan.Waves)
		for _, k := range waves[0] {
			checkIn(t, st, k, "hq", v1, firmware.Version{})
		}
		if _, err := st.StartRollout(ctx, "cert:alice", cx600.Path(), plan); err != nil {
			t.Fatal(err)
		}
		logs := run(t, st, Config{})
		// Three devices fail with no retries left (Retries 3: four tries).
		for _, k := range waves[0][:3] {
			for try := range 4 {
				if try > 0 {
					time.Sleep(firmware.DefaultMaxBackoff)
				}
				checkIn(t, st, k, "hq", v1, v2)
				report(t, st, k, firmware.StateFailure)
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		ro, _ := st.Catalog().Rollout(cx600.RuleID())
		if ro.State != firmware.RolloutPaused || ro.PausedBy != firmware.SystemActor || ro.Wave != 0 {
			t.Fatalf("after 3 failures: %+v, want paused by the system in wave 1", ro)
		}
		alarms, _ := st.Alarms(ctx, false)
		if len(alarms) != 1 || alarms[0].Kind != firmware.AlarmPaused || !strings.Contains(alarms[0].Detail, "paused in wave 1 of 2") {
			t.Fatalf("alarms = %+v, want the pause alarm", alarms)
		}
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if ro, _ := st.Catalog().Rollout(cx600.RuleID()); ro.State != firmware.RolloutPaused || ro.Wave != 0 {
			t.Errorf("a paused rollout moved on: %+v", ro)
		}
		if !strings.Contains(logs.String(), "level=WARN msg=\"rollout paused\"") {
			t.Errorf("the pause is not logged as a warning:\n%s", logs)
		}
	})
}

// TestEngineApprovesAtItsTime: approve --at is a scheduled one-wave
// rollout the engine completes at its time, not before: the scheduler's
// behaviour, kept.
func TestEngineApprovesAtItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		at := time.Now().Add(time.Hour)
		if _, err := st.Schedule(ctx, "cert:alice", cx600.Path(), at); err != nil {
			t.Fatal(err)
		}
		run(t, st, Config{})
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if r, _ := st.Catalog().Rule(cx600); r.Approved != v1 {
			t.Fatalf("approved %v before its time", r.Approved)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r, _ := st.Catalog().Rule(cx600)
		if r.Approved != v2 || !r.Pending.IsZero() || !r.ApproveAt.IsZero() {
			t.Errorf("after the scheduled time rule = %+v, want %v approved", r, v2)
		}
	})
}

// TestEngineOverdueAlarm: once a scheduled release is its grace past, a
// site whose devices have not checked in since raises the overdue alarm,
// naming the site and its counts; a site whose devices came does not;
// the alarm clears when the devices come.
func TestEngineOverdueAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		for i := range 20 {
			site := "hq"
			if i >= 15 {
				site = "branch-7"
			}
			checkIn(t, st, fmt.Sprintf("00-04-F2-00-00-%02X", i), site, v1, firmware.Version{})
		}
		at := time.Now().Add(time.Hour)
		if _, err := st.Schedule(ctx, "cert:alice", cx600.Path(), at); err != nil {
			t.Fatal(err)
		}
		logs := run(t, st, Config{Grace: 2 * time.Hour, Tolerance: -1})
		time.Sleep(time.Hour + time.Minute)
		// hq's devices come at the release time; branch-7's never.
		for i := range 15 {
			checkIn(t, st, fmt.Sprintf("00-04-F2-00-00-%02X", i), "hq", v1, v2)
		}
		time.Sleep(110 * time.Minute)
		synctest.Wait()
		if alarms, _ := st.Alarms(ctx, false); len(alarms) != 0 {
			t.Fatalf("alarm within the grace period: %+v", alarms)
		}
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		alarms, _ := st.Alarms(ctx, false)
		if len(alarms) != 1 || alarms[0].Kind != firmware.AlarmOverdue || len(alarms[0].Sites) != 1 ||
			alarms[0].Sites[0] != (firmware.SiteProgress{Site: "branch-7", Devices: 5, NotCheckedIn: 5, NotUpdated: 5}) {
			t.Fatalf("alarms = %+v, want branch-7 overdue with 5 of 5", alarms)
		}
		if !strings.Contains(alarms[0].Detail, "branch-7 5 of 5") || !strings.Contains(logs.String(), "a scheduled release is overdue") {
			t.Errorf("alarm detail %q, log:\n%s", alarms[0].Detail, logs)
		}
		// Raised once: later ticks find it open.
		time.Sleep(time.Minute)
		synctest.Wait()
		es, _ := st.History(ctx, 0, 0)
		raised := 0
		for _, e := range es {
			if e.Action == store.ActionAlarmRaise {
				raised++
			}
		}
		if raised != 1 {
			t.Errorf("the alarm was raised %d times, want once", raised)
		}
		// branch-7's devices come at last: the alarm clears.
		for i := 15; i < 20; i++ {
			checkIn(t, st, fmt.Sprintf("00-04-F2-00-00-%02X", i), "branch-7", v1, v2)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if alarms, _ := st.Alarms(ctx, false); len(alarms) != 0 {
			t.Errorf("open alarms after the devices came: %+v", alarms)
		}
		all, _ := st.Alarms(ctx, true)
		if len(all) != 1 || all[0].IsOpen() {
			t.Errorf("all alarms = %+v, want the one, cleared", all)
		}
	})
}

// TestEnginePausesOnForwardedFailures: failures a replica recorded count
// against the primary's rollout once the replica forwards them
// (ApplyForwarded), as if the devices had reported to the primary: the
// rollout pauses at MaxFailures.
func TestEnginePausesOnForwardedFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		if _, err := st.AddReplica(ctx, "admin", firmware.Replica{Name: "paris", Site: "paris"},
			firmware.AdminCert{Serial: "a1", Name: "paris", Role: "replica", Expires: time.Now().Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		replica, err := store.Open(t.TempDir(), &store.Options{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replica.Close() })
		if err := replica.MakeReplica(ctx, "primary.contoso.com:9443"); err != nil {
			t.Fatal(err)
		}
		plan := firmware.Plan{Waves: firmware.Waves{2000, firmware.Whole}, WaveWait: time.Hour, Success: firmware.Whole, MaxFailures: firmware.FailureCount(3)}
		waves := fleet(100, plan.Waves)
		for _, k := range waves[0] {
			checkIn(t, st, k, "paris", v1, firmware.Version{})
		}
		if _, err := st.StartRollout(ctx, "cert:alice", cx600.Path(), plan); err != nil {
			t.Fatal(err)
		}
		run(t, st, Config{})
		epoch, err := replica.OutboxEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var sent uint64
		forward := func() {
			t.Helper()
			if err := replica.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			items, err := replica.Outbox(ctx, sent, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) == 0 {
				return
			}
			if sent, err = st.ApplyForwarded(ctx, "paris", epoch, items); err != nil {
				t.Fatal(err)
			}

		}
		// Three devices of the site fail at the replica with no retries
		// left (Retries 3: four tries), forwarded after each try.
		for _, k := range waves[0][:3] {
			for try := range 4 {
				if try > 0 {
					time.Sleep(firmware.DefaultMaxBackoff)
				}
				// As the device side records a check-in: with where it
				// came from and what it runs.
				if err := replica.RecordCheckIn(ctx, firmware.Device{MAC: k, Identity: cx600, Version: v1, Offered: v2, Site: "paris",
					Location: firmware.Internal, Address: "10.1.0.7", Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}}}); err != nil {
					t.Fatal(err)
				}
				report(t, replica, k, firmware.StateFailure)
				forward()
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		ro, _ := st.Catalog().Rollout(cx600.RuleID())
		if ro.State != firmware.RolloutPaused || ro.PausedBy != firmware.SystemActor {
			t.Fatalf("after 3 failures forwarded by the replica: %+v, want paused by the system", ro)
		}
	})
}
