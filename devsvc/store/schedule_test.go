package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

func TestSchedule(t *testing.T) {
	clk := newClock()
	s := openTest(t, &Options{Now: clk.Now})
	ctx := context.Background()
	if _, err := s.Schedule(ctx, "admin", phone.Path(), clk.Now().Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Schedule of no rule = %v, want ErrNotFound", err)
	}
	mustImport(t, s, update(phone, v1), update(phone2, v1))
	s.Approve(ctx, "admin", phone2.Path())
	if _, err := s.Schedule(ctx, "admin", phone2.Path(), clk.Now().Add(time.Hour)); !errors.Is(err, firmware.ErrNoPending) {
		t.Errorf("Schedule with nothing pending = %v, want ErrNoPending", err)
	}
	if _, err := s.Schedule(ctx, "admin", phone.Path(), clk.Now().Add(-time.Hour)); !errors.Is(err, firmware.ErrSchedule) {
		t.Errorf("Schedule in the past = %v, want ErrSchedule", err)
	}
	if _, ok := s.Catalog().NextApproval(); ok {
		t.Errorf("NextApproval with nothing scheduled is set")
	}
	at := clk.Now().Add(10 * time.Second)
	r, err := s.Schedule(ctx, "admin", phone.Path(), at)
	if err != nil || !r.ApproveAt.Equal(at) {
		t.Fatalf("Schedule = %+v, %v", r, err)
	}
	if got, ok := s.Next(phone); !ok || !got.Equal(at) {
		t.Errorf("Next(phone) = %v, %v; want %v", got, ok, at)
	}
	if got, ok := s.Catalog().NextApproval(); !ok || !got.Equal(at) {
		t.Errorf("NextApproval = %v, %v; want %v", got, ok, at)
	}
	if _, ok := s.Next(phone2); ok {
		t.Errorf("Next(phone2) is set")
	}
	// A scheduled one-wave rollout, which the engine's step starts and
	// completes at its time.
	if ro, ok := s.Catalog().Rollout(phone.RuleID()); !ok || ro.State != firmware.RolloutScheduled || !ro.At.Equal(at) || !s.Catalog().IsApproval(phone.RuleID()) {
		t.Errorf("Rollout(phone) = %+v, %v; want a scheduled approval at %v", ro, ok, at)
	}
	// Not due yet (the clock advances a second per reading).
	if _, evs, err := s.StepRollout(ctx, phone.RuleID(), clk.Now()); err != nil || len(evs) != 0 {
		t.Errorf("StepRollout before the time = %+v, %v", evs, err)
	}
	for range 10 {
		clk.Now()
	}
	ro, evs, err := s.StepRollout(ctx, phone.RuleID(), clk.Now())
	if err != nil || ro.State != firmware.RolloutCompleted || len(evs) == 0 {
		t.Fatalf("StepRollout at the time = %+v, %+v, %v; want it completed", ro, evs, err)
	}
	if r, _ := s.Catalog().Rule(phone); r.Approved != v1 || !r.Pending.IsZero() || !r.ApproveAt.IsZero() {
		t.Errorf("rule after the step: %+v", r)
	}
	if _, ok := s.Next(phone); ok {
		t.Errorf("Next(phone) still set after the approval")
	}
	es, _ := s.History(ctx, 0, 0)
	if last := es[len(es)-1]; last.Action != ActionApprove || last.Actor != firmware.SystemActor || last.Detail != "scheduled for "+at.UTC().Format(time.RFC3339) {
		t.Errorf("last event %+v", last)
	}
	checkConsistent(t, s)
}

// TestImportCancelsSchedule: an import that replaces a pending version
// whose approval is scheduled cancels the schedule, says so in its result
// and records why in the history; importing the same pending version
// again keeps it.
func TestImportCancelsSchedule(t *testing.T) {
	clk := newClock()
	s := openTest(t, &Options{Now: clk.Now})
	ctx := context.Background()
	mustImport(t, s, update(phone, v1))
	at := clk.Now().Add(8 * time.Hour).Truncate(time.Second)
	if _, err := s.Schedule(ctx, "admin", phone.Path(), at); err != nil {
		t.Fatal(err)
	}
	if res := mustImport(t, s, update(phone, v1)); !res[0].Unchanged || !res[0].CancelledApproval.IsZero() {
		t.Errorf("import of the same pending version = %+v, want unchanged and the schedule kept", res[0])
	}
	if got, ok := s.Next(phone); !ok || !got.Equal(at) {
		t.Fatalf("Next(phone) = %v, %v; want %v", got, ok, at)
	}
	seq := s.Catalog().Seq()
	res := mustImport(t, s, update(phone, v2))
	if got := res[0]; !got.CancelledApproval.Equal(at) || got.CancelledVersion != v1 || !got.Rule.ApproveAt.IsZero() {
		t.Errorf("import of a newer version = %+v; want the approval of %s at %v cancelled", got, v1, at)
	}
	if _, ok := s.Next(phone); ok {
		t.Errorf("Next(phone) still set after the import cancelled it")
	}
	es, err := s.History(ctx, seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	if len(es) != 2 || es[1].Action != ActionScheduleCancel || es[1].Version != v1 || es[1].Actor != "admin" ||
		es[1].Detail != "the approval scheduled for "+at.Format(time.RFC3339)+" is cancelled: the import of "+v2.String()+" replaced the pending version it was for" {
		t.Errorf("history after the import: %v\n%+v\nwant import, then schedule-cancel of %s with the reason", actions, es, v1)
	}
	checkConsistent(t, s)
}
