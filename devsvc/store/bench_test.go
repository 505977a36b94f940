package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

// BenchmarkCheckInBatched records b.N check-ins of 10,000 distinct devices
// from several goroutines, ending with Flush, and reports the sustained
// rate of durable check-ins. A producer that finds the queue full (ErrBusy)
// waits for a Flush, as a device would retry later.
func BenchmarkCheckInBatched(b *testing.B) {
	const devices = 10000
	const producers = 8
	s := openTest(b, &Options{Now: time.Now})
	ctx := context.Background()
	recs := make([]firmware.Device, devices)
	for i := range recs {
		recs[i] = firmware.Device{
			MAC:      fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff),
			Serial:   fmt.Sprintf("SN%08d", i),
			Identity: phone, Version: v1, Offered: v2, User: "user" + fmt.Sprint(i),
			Location: firmware.Internal, Address: "10.1.2.3",
			Modules: []firmware.Module{{Name: "CX600.nbt", Version: v1}},
		}
	}
	var next atomic.Int64
	var busy atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				d := recs[i%devices]
				for {
					err := s.RecordCheckIn(ctx, d)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrBusy) {
						b.Error(err)
						return
					}
					busy.Add(1)
					if err := s.Flush(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checkins/s")
	b.ReportMetric(float64(busy.Load()), "busy")
}

// BenchmarkCatalogRule looks rules up in the catalog snapshot, as every
// check-in does.
func BenchmarkCatalogRule(b *testing.B) {
	s := openTest(b, nil)
	var ids []firmware.Identity
	for i := range 200 {
		id := phone
		id.Model = fmt.Sprintf("CX%d", i)
		ids = append(ids, id)
	}
	var bundle []firmware.ImportUpdate
	for _, id := range ids {
		bundle = append(bundle, firmware.ImportUpdate{Identity: id, Version: v1, Files: []firmware.ImportFile{file("a.nbt", []byte("x"))}})
	}
	mustImport(b, s, bundle...)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := s.Catalog()
			r, ok := c.Rule(ids[i%len(ids)])
			if !ok || r.Pending != v1 || c.IsTestDevice("00-04-F2-00-00-01", "SN1") {
				b.Fatal("lookup failed")
			}
			i++
		}
	})
}

// BenchmarkImport imports a 3-file update of 8 MiB (digests given, so each
// file is hashed once while written, then fsynced and renamed) and reports
// the throughput. Each imported rule is removed outside the timer.
func BenchmarkImport(b *testing.B) {
	s := openTest(b, nil)
	ctx := context.Background()
	image := content("image", v1, 8<<20)
	b.SetBytes(int64(len(image) + 300))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := firmware.ImportUpdate{Identity: phone, Version: firmware.Version{4, 0, 0, uint32(i + 1)}, Files: []firmware.ImportFile{
			file("CX600.nbt", image), file("CX600.cat", image[:200]), file("CX600.xml", image[:100]),
		}}
		if _, err := s.Import(ctx, "bench", []firmware.ImportUpdate{u}, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := s.Remove(ctx, "bench", phone.Path()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
