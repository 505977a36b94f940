package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

func TestInventoryMerge(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, &Options{FlushInterval: time.Hour}) // only Flush and Close commit
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	checkIn := func(v firmware.Version, m int) firmware.Device {
		return firmware.Device{MAC: "00:04:f2:00:00:01", Serial: "SN1", Identity: phone, Version: v, Location: firmware.Internal,
			Address: "10.0.0.7", LastCheckIn: at(m), Offered: v2}
	}
	// The history the steps leave: every check-in and report (check-ins
	// alike merge only when nothing came between).
	hist := []firmware.DeviceEvent{
		{Time: at(0), Kind: firmware.DeviceCheckIn, Version: v1, Offered: v2},
		{Time: at(1), Kind: firmware.DeviceReport, Version: v2, State: firmware.StateDownloading},
		{Time: at(2), Kind: firmware.DeviceCheckIn, Version: v1, Offered: v2},
		{Time: at(3), Kind: firmware.DeviceReport, Version: v2, State: firmware.StateFailure, Detail: "0x80070005"},
		{Time: at(4), Kind: firmware.DeviceReport, Version: v2, State: firmware.StateSuccess},
		{Time: at(5), Kind: firmware.DeviceCheckIn, Version: v2, Offered: v2},
	}
	steps := []struct {
		checkIn *firmware.Device
		report  *Report
		flush   bool
		want    firmware.Device
	}{
		{checkIn: ptr(checkIn(v1, 0)), flush: true, want: firmware.Device{Key: "00-04-F2-00-00-01", MAC: "00-04-F2-00-00-01", Serial: "SN1",
			Identity: phone, Version: v1, Location: firmware.Internal, Address: "10.0.0.7", LastCheckIn: at(0), Offered: v2,
			Attempt: firmware.Attempt{Version: v2, Offered: at(0)}, History: hist[:1]}},
		// Several operations merged in one batch, in order.
		{report: &Report{Key: "00-04-F2-00-00-01", State: firmware.StateDownloading, Target: v2, Time: at(1)}},
		{checkIn: ptr(checkIn(v1, 2))},
		{report: &Report{Key: "00-04-F2-00-00-01", State: firmware.StateFailure, Target: v2, Error: "0x80070005", Time: at(3)}, flush: true,
			want: firmware.Device{Key: "00-04-F2-00-00-01", MAC: "00-04-F2-00-00-01", Serial: "SN1", Identity: phone, Version: v1,
				Location: firmware.Internal, Address: "10.0.0.7", LastCheckIn: at(2), Offered: v2,
				State: firmware.StateFailure, Target: v2, Error: "0x80070005", LastReport: at(3),
				Attempt: firmware.Attempt{Version: v2, Offered: at(0), Failures: 1, Failed: at(3), State: firmware.StateFailure, Reported: at(3)},
				History: hist[:4]}},
		{report: &Report{Key: "00-04-F2-00-00-01", State: firmware.StateSuccess, Target: v2, Time: at(4)}},
		{checkIn: ptr(checkIn(v2, 5)), flush: true,
			want: firmware.Device{Key: "00-04-F2-00-00-01", MAC: "00-04-F2-00-00-01", Serial: "SN1", Identity: phone, Version: v2,
				Location: firmware.Internal, Address: "10.0.0.7", LastCheckIn: at(5), Offered: v2,
				State: firmware.StateSuccess, Target: v2, LastReport: at(4), LastUpdate: at(4),
				Attempt: firmware.Attempt{Version: v2, Offered: at(0), Failures: 1, Failed: at(3), State: firmware.StateSuccess, Reported: at(4)},
				History: hist}},
	}
	for i, st := range steps {
		var err error
		if st.checkIn != nil {
			err = s.RecordCheckIn(ctx, *st.checkIn)
		} else {
			err = s.Report(ctx, *st.report)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !st.flush {
			continue
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatalf("step %d: Flush = %v", i, err)
		}
		got, err := s.Device(ctx, "00:04:F2:00:00:01")
		if err != nil {
			t.Fatalf("step %d: Device = %v", i, err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("step %d: device (-want +got):\n%s", i, diff)
		}
	}

	// A report for a device that never checked in is refused and
	// creates nothing; a serial-only device checks in and reports before
	// its check-in is committed.
	if err := s.Report(ctx, Report{Key: "serial:SN9", State: firmware.StateSuccess, Target: v2}); !errors.Is(err, ErrNotCheckedIn) {
		t.Errorf("Report from a device that never checked in = %v, want ErrNotCheckedIn", err)
	}
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "SN8", Identity: table, Version: v1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Report(ctx, Report{Key: "serial:SN8", State: firmware.StateInstalling, Target: v1}); err != nil {
		t.Errorf("Report right after a queued check-in = %v", err)
	}
	// Not flushed: Close must commit them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "SN8"}); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordCheckIn after Close = %v, want ErrClosed", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Devices(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Devices after Close = %v, want ErrClosed", err)
	}

	s = openDir(t, dir, nil)
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range ds {
		keys = append(keys, d.Key)
	}
	if diff := cmp.Diff([]string{"00-04-F2-00-00-01", "serial:SN8"}, keys); diff != "" {
		t.Errorf("devices after reopen (-want +got):\n%s", diff)
	}
	if d, _ := s.Device(ctx, "serial:SN8"); d.Identity != table || d.LastCheckIn.IsZero() || d.State != firmware.StateInstalling || d.Target != v1 {
		t.Errorf("checked-in device = %+v, want %v installing %v", d, table, v1)
	}
	if _, err := s.Device(ctx, "serial:nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Device(unknown) = %v, want ErrNotFound", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestInventoryRefusals(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"check-in without key", s.RecordCheckIn(ctx, firmware.Device{MAC: "bad"})},
		{"report without key", s.Report(ctx, Report{State: firmware.StateSuccess})},
		{"report with unknown state", s.Report(ctx, Report{Key: "serial:1", State: "exploded"})},
	} {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// TestReportOnlyAfterCheckIn: a device reports only on the version it runs
// or was offered at its last check-in, queued or committed; every refusal
// says why and changes nothing.
func TestReportOnlyAfterCheckIn(t *testing.T) {
	s := openTest(t, &Options{FlushInterval: time.Hour})
	ctx := context.Background()
	mac := "00-04-F2-00-00-02"
	v3 := firmware.MustParseVersion("9.9.9.9")
	checkIn := func(v, offered firmware.Version) {
		t.Helper()
		if err := s.RecordCheckIn(ctx, firmware.Device{MAC: mac, Identity: phone, Version: v, Offered: offered}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(target firmware.Version) error {
		return s.Report(ctx, Report{Key: "00:04:f2:00:00:02", State: firmware.StateSuccess, Target: target})
	}
	flush := func() {
		t.Helper()
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		before func()
		target firmware.Version
		want   error
	}{
		{"never checked in", func() {}, v1, ErrNotCheckedIn},
		{"runs, check-in queued", func() { checkIn(v1, v2) }, v1, nil},
		{"offered, check-in queued", func() {}, v2, nil},
		{"other version, check-in queued", func() {}, v3, ErrNotOffered},
		{"offered, check-in committed", flush, v2, nil},
		{"other version, committed", flush, v3, ErrNotOffered},
		{"offered nothing now", func() { checkIn(v2, firmware.Version{}) }, v1, ErrNotOffered},
		{"runs now", func() {}, v2, nil},
	}
	for _, tt := range tests {
		tt.before()
		if err := report(tt.target); !errors.Is(err, tt.want) {
			t.Errorf("%s: Report(%v) = %v, want %v", tt.name, tt.target, err, tt.want)
		}
	}
	flush()
	d, err := s.Device(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != v2 || d.Target != v2 {
		t.Errorf("after the reports: version %v target %v, want %v %v", d.Version, d.Target, v2, v2)
	}
	if _, err := s.Device(ctx, "serial:nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused report created a record: %v", err)
	}
}

// TestInventoryBusy fills the queue while the writer is held up by another
// write transaction.
func TestInventoryBusy(t *testing.T) {
	s := openTest(t, &Options{QueueSize: 4, FlushInterval: time.Hour})
	ctx := context.Background()
	release := make(chan struct{})
	holding := make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error {
		close(holding)
		<-release
		return nil
	})
	<-holding
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "0"}); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error)
	go func() { flushed <- s.Flush(ctx) }() // the writer blocks in its commit
	var busy error
	for i := 1; i < 1_000_000 && busy == nil; i++ {
		busy = s.RecordCheckIn(ctx, firmware.Device{Serial: "x"})
	}
	if !errors.Is(busy, ErrBusy) {
		t.Fatalf("RecordCheckIn with the queue full = %v, want ErrBusy", busy)
	}
	close(release)
	if err := <-flushed; err != nil {
		t.Fatalf("Flush = %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "1"}); err != nil {
		t.Errorf("RecordCheckIn after the queue drained = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Flush(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush(cancelled) = %v", err)
	}
}

// TestObserveCommit: every inventory batch and catalog change is timed.
func TestObserveCommit(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	s := openTest(t, &Options{ObserveCommit: func(kind string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took <= 0 {
			t.Errorf("ObserveCommit(%s, %v): want a positive duration", kind, took)
		}
		got[kind]++
	}})
	ctx := context.Background()
	if err := s.RecordCheckIn(ctx, firmware.Device{Serial: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, "test", firmware.Account{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got[CommitInventory] != 1 || got[CommitCatalog] != 1 {
		t.Errorf("commits observed = %v, want one of each kind", got)
	}
}
