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
	// Not due yet (the clock advances a second per reading).
	if rs, err := s.ApproveDue(ctx, "scheduler"); err != nil || len(rs) != 0 {
		t.Errorf("ApproveDue before the time = %+v, %v", rs, err)
	}
	for range 10 {
		clk.Now()
	}
	rs, err := s.ApproveDue(ctx, "scheduler")
	if err != nil || len(rs) != 1 || rs[0].Approved != v1 || !rs[0].ApproveAt.IsZero() {
		t.Fatalf("ApproveDue = %+v, %v; want phone approved", rs, err)
	}
	if r, _ := s.Catalog().Rule(phone); r.Approved != v1 || !r.Pending.IsZero() {
		t.Errorf("rule after ApproveDue: %+v", r)
	}
	if _, ok := s.Next(phone); ok {
		t.Errorf("Next(phone) still set after the approval")
	}
	es, _ := s.History(ctx, 0, 0)
	if last := es[len(es)-1]; last.Action != ActionApprove || last.Actor != "scheduler" {
		t.Errorf("last event %+v", last)
	}
	checkConsistent(t, s)
}
