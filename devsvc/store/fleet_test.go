package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// TestDeviceQueries filters and pages the inventory through the fleet
// index, and reads what the check-in path reads of it.
func TestDeviceQueries(t *testing.T) {
	s := openTest(t, &Options{Now: time.Now})
	ctx := context.Background()
	mustImport(t, s, update(phone, v1), update(phone2, v1))
	s.Approve(ctx, "admin", phone.Path())
	mustImport(t, s, update(phone, v2))
	if _, err := s.StartRollout(ctx, "admin", phone.Path(), firmware.DefaultPlan()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	// 30 phones at hq and ny, 10 of the other model with a serial only.
	for i := range 30 {
		site := "hq"
		if i%3 == 0 {
			site = "ny"
		}
		v := v1
		if i%5 == 0 {
			v = v2
		}
		d := firmware.Device{MAC: fmt.Sprintf("00:04:f2:00:00:%02x", i), Serial: fmt.Sprintf("SN%03d", i), User: fmt.Sprintf("user%d@contoso.com", i),
			Identity: phone, Version: v, Site: site, Location: firmware.Internal, LastCheckIn: now}
		if i < 6 {
			d.Offered = v2
		}
		if err := s.RecordCheckIn(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := s.RecordCheckIn(ctx, firmware.Device{Serial: fmt.Sprintf("RT%02d", i), Identity: phone2, Version: v1, LastCheckIn: now}); err != nil {
			t.Fatal(err)
		}
	}
	// Failures: device 1 gave up (retries spent), device 2 is retrying.
	for i := range 4 {
		reportAt(t, s, "00-04-F2-00-00-01", firmware.StateFailure, v2, "0x8007000E", now.Add(-time.Duration(4-i)*time.Hour))
		if i < 3 {
			checkInAt(t, s, "00-04-F2-00-00-01", v1, v2, "hq", now.Add(-time.Duration(4-i)*time.Hour+time.Minute))
		}
	}
	reportAt(t, s, "00-04-F2-00-00-02", firmware.StateFailure, v2, "0x80070005", now)

	keys := func(p DevicePage) []string {
		var out []string
		for _, d := range p.Devices {
			out = append(out, d.Key)
		}
		return out
	}
	tests := []struct {
		name  string
		q     DeviceQuery
		want  []string
		total int
		err   string
	}{
		{"site and state", DeviceQuery{Site: "hq", State: firmware.OutcomeFailed}, []string{"00-04-F2-00-00-01"}, 1, ""},
		{"retrying", DeviceQuery{State: firmware.OutcomeRetrying}, []string{"00-04-F2-00-00-02"}, 1, ""},
		{"model", DeviceQuery{Model: "cx500", Limit: 3}, []string{"serial:RT00", "serial:RT01", "serial:RT02"}, 10, ""},
		{"model by path", DeviceQuery{Model: phone2.Path(), Limit: 1}, []string{"serial:RT00"}, 10, ""},
		{"version at a site", DeviceQuery{Version: v2, Site: "ny"}, []string{"00-04-F2-00-00-00", "00-04-F2-00-00-0F"}, 2, ""},
		{"text in a user", DeviceQuery{Text: "USER17@"}, []string{"00-04-F2-00-00-11"}, 1, ""},
		{"text in a MAC with colons", DeviceQuery{Text: "00:00:1d"}, []string{"00-04-F2-00-00-1D"}, 1, ""},
		{"text in a serial", DeviceQuery{Text: "rt09"}, []string{"serial:RT09"}, 1, ""},
		// States are judged against the rule's rollout, of v2: its
		// devices at hq running v2 have it installed.
		{"rule: state against its rollout", DeviceQuery{Rule: phone.RuleID(), State: firmware.OutcomeInstalled, Site: "hq"},
			[]string{"00-04-F2-00-00-05", "00-04-F2-00-00-0A", "00-04-F2-00-00-14", "00-04-F2-00-00-19"}, 4, ""},
		{"the other model, without a rollout: its own attempt", DeviceQuery{Model: "CX500", State: firmware.OutcomeWaiting, Limit: 1}, []string{"serial:RT00"}, 10, ""},
		{"an unknown site", DeviceQuery{Site: "mars"}, nil, 0, ""},
		{"an unknown rule", DeviceQuery{Rule: "CX600"}, nil, 0, "did you mean " + phone.Path()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.QueryDevices(ctx, tt.q)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, keys(p)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if p.Total != tt.total {
				t.Errorf("Total = %d, want %d", p.Total, tt.total)
			}
		})
	}
	// Paging through everything: every device once, in key order.
	var all []string
	q := DeviceQuery{Limit: 7}
	for pages := 0; ; pages++ {
		p, err := s.QueryDevices(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 && p.Total != 40 || pages > 0 && p.Total != -1 {
			t.Errorf("page %d: Total %d", pages, p.Total)
		}
		all = append(all, keys(p)...)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if len(all) != 40 || !sortedUnique(all) {
		t.Errorf("paged through %d devices (%v), want 40 in key order", len(all), all)
	}
	// A page of the records: the committed record, and the index's fields.
	s.Flush(ctx)
	p, _ := s.QueryDevices(ctx, DeviceQuery{Text: "00-04-F2-00-00-01"})
	if len(p.Devices) != 1 {
		t.Fatalf("device 1: %+v", p)
	}
	if d := p.Devices[0]; d.Outcome != firmware.OutcomeFailed || d.Cohort != firmware.Cohort(d.Key) || d.Site != "hq" || d.Error != "0x8007000E" || d.Attempt.Failures != 4 {
		t.Errorf("device 1 = %+v", d)
	}

	dd, err := s.DeviceDetail(ctx, "00:04:f2:00:00:01")
	if err != nil || dd.Outcome != firmware.OutcomeFailed || len(dd.History) != 8 || dd.Cohort != firmware.Cohort(dd.Key) {
		t.Errorf("DeviceDetail = %+v, %v; want failed, with its history", dd, err)
	}
	if st := s.DeviceState("00-04-F2-00-00-02"); !st.Known || st.Attempt.State != firmware.StateFailure || st.Site != "hq" || st.Cohort != firmware.Cohort("00-04-F2-00-00-02") {
		t.Errorf("DeviceState = %+v", st)
	}
	if st := s.DeviceState("00-04-F2-FF-FF-FF"); st.Known || st.Cohort != firmware.Cohort("00-04-F2-FF-FF-FF") {
		t.Errorf("DeviceState of a new device = %+v", st)
	}
	rc := s.RuleCounts()
	if got := rc[phone.RuleID()]; got != (RuleCount{Devices: 30, Approved: 24, Pending: 6}) {
		t.Errorf("RuleCounts[phone] = %+v", got)
	}
	if got := s.SiteCounts(); !cmp.Equal(got, map[string]int{"hq": 20, "ny": 10, "": 10}) {
		t.Errorf("SiteCounts = %v", got)
	}

	// A refusal is noted in a known device's history, never creates one.
	if err := s.RecordRefusal(ctx, "00:04:f2:00:00:03", "status report without a check-in"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRefusal(ctx, "serial:nobody", "status report without a check-in"); err != nil {
		t.Fatal(err)
	}
	s.Flush(ctx)
	d, err := s.Device(ctx, "00-04-F2-00-00-03")
	if err != nil || len(d.History) != 2 || d.History[1].Kind != firmware.DeviceRefusal || d.History[1].Detail != "status report without a check-in" {
		t.Errorf("device 3's history: %+v, %v", d.History, err)
	}
	if _, err := s.Device(ctx, "serial:nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refusal of an unknown device created it: %v", err)
	}
	checkConsistent(t, s)
}

func sortedUnique(keys []string) bool {
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			return false
		}
	}
	return true
}

// TestFleetReflectsOnlyWhatIsAccepted: a check-in or report the store
// refuses (the inventory cannot be written, the queue is full) leaves the
// index as it was; what it accepted is in the index at once, before it is
// written.
func TestFleetReflectsOnlyWhatIsAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		disk := &faultyDisk{}
		s := openTest(t, &Options{testHookWrite: disk.write, Now: time.Now})
		key := "00-04-F2-00-00-01"
		checkInAt(t, s, key, v1, v2, "hq", time.Now())
		if st := s.DeviceState(key); !st.Known || st.Attempt.Version != v2 {
			t.Errorf("DeviceState after an accepted check-in, not yet written = %+v", st)
		}
		disk.full.Store(true)
		if err := s.Flush(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Flush on a full disk = %v", err)
		}
		before := s.DeviceState(key)
		err := s.RecordCheckIn(ctx, firmware.Device{MAC: key, Identity: phone, Version: v1, Offered: v3, Site: "ny"})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("RecordCheckIn on a full disk = %v", err)
		}
		if err := s.Report(ctx, Report{Key: key, State: firmware.StateFailure, Target: v2}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Report on a full disk = %v", err)
		}
		if err := s.RecordCheckIn(ctx, firmware.Device{MAC: "00-04-F2-00-00-02", Identity: phone, Version: v1}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("RecordCheckIn on a full disk = %v", err)
		}
		if got := s.DeviceState(key); !cmp.Equal(got, before) {
			t.Errorf("refused operations changed the index: %+v, was %+v", got, before)
		}
		if st := s.DeviceState("00-04-F2-00-00-02"); st.Known {
			t.Errorf("a refused check-in of a new device is in the index")
		}
		disk.full.Store(false)
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		checkConsistent(t, s)
	})
}

// TestOpenMigratesSchema2 opens a schema 2 database: its device records
// (devRecV1) are rewritten with the new fields empty, and a rule's
// scheduled approval becomes a scheduled one-wave rollout.
func TestOpenMigratesSchema2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	mustImport(t, s, update(phone, v1))
	at := time.Date(2027, 1, 1, 2, 0, 0, 0, time.UTC)
	if _, err := s.Schedule(ctx, "admin", phone.Path(), at); err != nil {
		t.Fatal(err)
	}
	s.Close()
	d := fullDevice()
	db, err := bolt.Open(filepath.Join(dir, dbName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte("2")); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketRollouts); err != nil { // schema 2 had none
			return err
		}
		return tx.Bucket(bucketDevices).Put([]byte(d.Key), appendDeviceV1(nil, &d))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	if st, _ := s.Stats(ctx); st.SchemaVersion != SchemaVersion {
		t.Errorf("schema after migration = %d, want %d", st.SchemaVersion, SchemaVersion)
	}
	got, err := s.Device(ctx, d.Key)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.Site, want.Hold, want.Held, want.Attempt, want.History = "", "", firmware.Version{}, firmware.Attempt{}, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("device after migration (-want +got):\n%s", diff)
	}
	ro, ok := s.Catalog().Rollout(phone.RuleID())
	if !ok || ro.State != firmware.RolloutScheduled || !ro.At.Equal(at) || ro.Version != v1 || !s.Catalog().IsApproval(phone.RuleID()) {
		t.Errorf("the scheduled approval after migration: %+v, %v; want a scheduled approval rollout at %v", ro, ok, at)
	}
	if st := s.DeviceState(d.Key); !st.Known || st.Version != d.Version {
		t.Errorf("DeviceState after migration = %+v", st)
	}
	checkConsistent(t, s)
}
