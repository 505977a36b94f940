package store

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

// fleetBench is a store holding n devices of the phone identity in 200
// sites, all offered v2, one in 47 failed past its retries.
func fleetBench(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	s := openDir(b, dir, &Options{Now: time.Now, QueueSize: 1 << 20})
	ctx := context.Background()
	now := time.Now()
	for i := range n {
		key := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		d := firmware.Device{MAC: key, Serial: fmt.Sprintf("SN%08d", i), User: fmt.Sprintf("user%d@contoso.com", i), Identity: phone,
			Version: v1, Offered: v2, Site: fmt.Sprintf("site-%03d", i%200), Location: firmware.Internal, LastCheckIn: now,
			Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}}}
		if err := s.RecordCheckIn(ctx, d); err != nil {
			b.Fatal(err)
		}
		if i%47 == 0 {
			// Four tries, each offered again after its failure.
			for try := range 4 {
				if try > 0 {
					if err := s.RecordCheckIn(ctx, d); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Report(ctx, Report{Key: key, State: firmware.StateFailure, Target: v2, Error: "0x80070005", Time: now}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkFleet measures the fleet index with 100,000 devices in 200
// sites: loading it at Open, a check-in's update of it (with the queued
// write), and the query devices --site S --state failed, which must
// answer in well under 100 ms.
func BenchmarkFleet(b *testing.B) {
	const n = 100000
	dir := fleetBench(b, n)
	b.Run("Open", func(b *testing.B) {
		// The index's memory: the heap an open store holds beyond a
		// closed one's.
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		s, err := Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		s.Close()
		perDevice := float64(m1.HeapAlloc-m0.HeapAlloc) / n
		for b.Loop() {
			s, err := Open(dir, nil)
			if err != nil {
				b.Fatal(err)
			}
			if st := s.DeviceState("00-04-F2-00-00-00"); !st.Known {
				b.Fatal("not loaded")
			}
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(n), "devices")
		b.ReportMetric(perDevice, "heap-B/device")
	})
	b.Run("CheckIn", func(b *testing.B) {
		s := openDir(b, dir, &Options{Now: time.Now, QueueSize: 1 << 20})
		ctx := context.Background()
		ds := make([]firmware.Device, 1000)
		for i := range ds {
			j := i * 97
			ds[i] = firmware.Device{Key: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", j>>16&0xff, j>>8&0xff, j&0xff), Identity: phone,
				Version: v1, Offered: v2, Site: fmt.Sprintf("site-%03d", j%200), Location: firmware.Internal, LastCheckIn: time.Now()}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := s.RecordCheckIn(ctx, ds[i%len(ds)]); err != nil {
				b.StopTimer()
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			i++
		}
	})
	b.Run("QuerySiteFailed", func(b *testing.B) {
		s := openDir(b, dir, &Options{Now: time.Now})
		ctx := context.Background()
		var got int
		for b.Loop() {
			p, err := s.QueryDevices(ctx, DeviceQuery{Site: "site-050", State: firmware.OutcomeFailed})
			if err != nil {
				b.Fatal(err)
			}
			got = len(p.Devices)
		}
		want := 0
		for i := 50; i < n; i += 200 {
			if i%47 == 0 {
				want++
			}
		}
		if got != want {
			b.Fatalf("found %d failed devices at site-050, want %d", got, want)
		}
		b.ReportMetric(float64(got), "found")
	})
	b.Run("RolloutProgress", func(b *testing.B) {
		s := openDir(b, dir, &Options{Now: time.Now})
		ctx := context.Background()
		benchRollout(b, s)
		for b.Loop() {
			if _, err := s.RolloutProgress(ctx, phone.Path(), time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The rollout engine's step: a scan
	// of the open wave's devices, which the engine runs at every tick
	// (every 5 s; every 100 ms of real time on a simulated clock).
	b.Run("StepRollout", func(b *testing.B) {
		s := openDir(b, dir, &Options{Now: time.Now})
		ctx := context.Background()
		ro := benchRollout(b, s)
		for b.Loop() {
			if _, _, err := s.StepRollout(ctx, ro.Rule, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchRollout starts a rollout of v2 to the phones of s, unless an
// earlier benchmark on the same directory did, and returns it.
func benchRollout(b *testing.B, s *Store) firmware.Rollout {
	b.Helper()
	ctx := context.Background()
	if ro, ok := s.Catalog().Rollout(phone.RuleID()); ok {
		return ro
	}
	if _, err := s.Import(ctx, "bench", []firmware.ImportUpdate{update(phone, v1)}, ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	s.Approve(ctx, "bench", phone.Path())
	s.Import(ctx, "bench", []firmware.ImportUpdate{update(phone, v2)}, ImportOptions{})
	ro, err := s.StartRollout(ctx, "bench", phone.Path(), firmware.DefaultPlan())
	if err != nil {
		b.Fatal(err)
	}
	return ro
}
