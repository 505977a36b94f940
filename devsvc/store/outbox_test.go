package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

// addReplica records a replica named name on the primary.
func addReplica(t testing.TB, s *Store, name, serial string) {
	t.Helper()
	if _, err := s.AddReplica(context.Background(), "admin", firmware.Replica{Name: name, Site: name},
		firmware.AdminCert{Serial: serial, Name: name, Role: "replica", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxForwardsOnce: what a replica records is queued in its outbox
// in the inventory's transaction; the primary applies a batch once, in
// order per device, however often it is sent; a new outbox epoch starts
// again.
func TestOutboxForwardsOnce(t *testing.T) {
	ctx := context.Background()
	primary := openTest(t, nil)
	addReplica(t, primary, "paris", "a1")
	replica := newReplica(t)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	dev := func(mac string, v firmware.Version, offered firmware.Version, at time.Time) firmware.Device {
		return firmware.Device{MAC: mac, Identity: phone, Version: v, Offered: offered, Location: firmware.Internal, Address: "10.1.0.7",
			LastCheckIn: at, Modules: []firmware.Module{{Name: "CX600.nbt", Version: v}}}
	}
	steps := []func() error{
		func() error { return replica.RecordCheckIn(ctx, dev("00-04-F2-00-00-01", v1, v2, at)) },
		func() error { return replica.RecordCheckIn(ctx, dev("00-04-F2-00-00-02", v1, firmware.Version{}, at)) },
		func() error {
			return replica.Report(ctx, Report{Key: "00-04-F2-00-00-01", State: firmware.StateDownloading, Target: v2, Time: at.Add(time.Minute)})
		},
		func() error {
			return replica.Report(ctx, Report{Key: "00-04-F2-00-00-01", State: firmware.StateSuccess, Target: v2, Time: at.Add(10 * time.Minute)})
		},
		func() error {
			return replica.RecordCheckIn(ctx, dev("00-04-F2-00-00-01", v2, firmware.Version{}, at.Add(11*time.Minute)))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if err := replica.Flush(ctx); err != nil { // each its own batch, as check-ins come
			t.Fatal(err)
		}
	}
	items, err := replica.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(steps) {
		t.Fatalf("outbox holds %d items, want %d", len(items), len(steps))
	}
	if n, err := replica.OutboxLen(ctx); n != len(steps) || err != nil {
		t.Errorf("OutboxLen = %d, %v; want %d", n, err, len(steps))
	}
	epoch, err := replica.OutboxEpoch(ctx)
	if err != nil || epoch == 0 {
		t.Fatalf("OutboxEpoch = %d, %v", epoch, err)
	}
	// Sent in two batches, the first one twice (its acknowledgement lost),
	// then everything again.
	for _, batch := range [][]Forwarded{items[:3], items[:3], items[2:], items} {
		acked, err := primary.ApplyForwarded(ctx, "paris", epoch, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := batch[len(batch)-1].Seq; acked != want {
			t.Errorf("ApplyForwarded acknowledged %d, want %d", acked, want)
		}
	}
	want, _ := replica.Devices(ctx)
	got, _ := primary.Devices(ctx)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the primary's inventory differs from the replica's (-replica +primary):\n%s", diff)
	}
	r, _ := primary.Replica(ctx, "paris")
	if r.Progress.Reports != int64(len(steps)) || r.Progress.Forwarded != items[len(items)-1].Seq || r.Progress.Epoch != epoch {
		t.Errorf("progress %+v: want %d reports applied, up to %d of epoch %d", r.Progress, len(steps), items[len(items)-1].Seq, epoch)
	}
	if err := replica.AckOutbox(ctx, items[2].Seq); err != nil {
		t.Fatal(err)
	}
	if n, err := replica.OutboxLen(ctx); n != 2 || err != nil {
		t.Errorf("OutboxLen after acknowledging three = %d, %v; want 2", n, err)
	}
	if rest, _ := replica.Outbox(ctx, 0, 0); len(rest) != 2 || rest[0].Seq != items[3].Seq {
		t.Errorf("after the acknowledgement of %d the outbox holds %+v", items[2].Seq, rest)
	}
	// A new epoch: the same numbers are new reports.
	if acked, err := primary.ApplyForwarded(ctx, "paris", epoch+1, items[:1]); err != nil || acked != items[0].Seq {
		t.Errorf("ApplyForwarded of a new epoch = %d, %v", acked, err)
	}
	if r, _ := primary.Replica(ctx, "paris"); r.Progress.Reports != int64(len(steps))+1 {
		t.Errorf("reports %d after a new epoch's first, want %d", r.Progress.Reports, len(steps)+1)
	}
	// A removed replica is refused.
	if _, err := primary.RemoveReplica(ctx, "admin", "paris", "closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.ApplyForwarded(ctx, "paris", epoch, items); !errors.Is(err, ErrRevoked) {
		t.Errorf("ApplyForwarded of a removed replica = %v, want ErrRevoked", err)
	}
	checkConsistent(t, primary)
}

// TestReplicas: a replica's record and certificate are added and removed
// together, in the history; the name is free again once removed.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	addReplica(t, s, "paris", "a1")
	if _, err := s.AddReplica(ctx, "admin", firmware.Replica{Name: "paris", Site: "paris"}, firmware.AdminCert{Serial: "a2", Name: "paris", Role: "replica"}); !errors.Is(err, ErrExists) {
		t.Errorf("AddReplica of a name in use = %v, want ErrExists", err)
	}
	if _, err := s.AddReplica(ctx, "admin", firmware.Replica{Name: "Paris!", Site: "paris"}, firmware.AdminCert{Serial: "a3", Name: "Paris!", Role: "replica"}); !errors.Is(err, firmware.ErrReplica) {
		t.Errorf("AddReplica of a bad name = %v, want firmware.ErrReplica", err)
	}
	c, err := s.AdminCert(ctx, "a1")
	if err != nil || c.Role != "replica" || c.Name != "paris" {
		t.Errorf("the replica's certificate record = %+v, %v", c, err)
	}
	if _, err := s.UpdateReplicaProgress(ctx, "paris", func(p *firmware.ReplicaProgress) { p.Position = 7 }); err != nil {
		t.Fatal(err)
	}
	seq := s.Catalog().Seq()
	if r, _ := s.Replica(ctx, "paris"); r.Progress.Position != 7 {
		t.Errorf("progress %+v, want position 7", r.Progress)
	}
	if s.Catalog().Seq() != seq {
		t.Error("progress made a history event")
	}
	r, err := s.RemoveReplica(ctx, "admin", "paris", "site closed")
	if err != nil || r.Active() {
		t.Fatalf("RemoveReplica = %+v, %v", r, err)
	}
	if c, _ := s.AdminCert(ctx, "a1"); c.Revoked.IsZero() {
		t.Error("the removed replica's certificate is not revoked")
	}
	if _, err := s.RemoveReplica(ctx, "admin", "paris", ""); !errors.Is(err, ErrRevoked) {
		t.Errorf("RemoveReplica again = %v, want ErrRevoked", err)
	}
	if _, err := s.UpdateReplicaProgress(ctx, "paris", func(*firmware.ReplicaProgress) {}); !errors.Is(err, ErrRevoked) {
		t.Errorf("progress of a removed replica = %v, want ErrRevoked", err)
	}
	addReplica(t, s, "paris", "b1")
	es, _ := s.History(ctx, 0, 0)
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action+" "+e.Subject)
	}
	want := []string{"replica-add paris", "cert-issue paris", "replica-remove paris", "cert-revoke paris", "replica-add paris", "cert-issue paris"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	checkConsistent(t, s)
}

// FuzzDecodeForwarded: what a replica forwards is checked as a device's
// message is; what passes encodes and decodes to itself.
func FuzzDecodeForwarded(f *testing.F) {
	d := firmware.Device{Key: "00-04-F2-00-00-01", MAC: "00-04-F2-00-00-01", Identity: phone, Version: v1, Location: firmware.Internal,
		Address: "10.0.0.1", LastCheckIn: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}}}
	ci, _ := EncodeForwarded(Forwarded{Key: d.Key, CheckIn: &d})
	rep, _ := EncodeForwarded(Forwarded{Key: "serial:ABC", Report: &Report{State: firmware.StateFailure, Target: v2, Error: "0x1", Time: d.LastCheckIn}})
	f.Add(ci)
	f.Add(rep)
	f.Add([]byte(`{"key":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeForwarded(1, data)
		if err != nil {
			return
		}
		if (got.CheckIn == nil) == (got.Report == nil) {
			t.Fatalf("decoded %+v: want one of a check-in and a report", got)
		}
		again, err := EncodeForwarded(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeForwarded(1, again)
		if err != nil || !cmp.Equal(back, got) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, got)
		}
	})
}
