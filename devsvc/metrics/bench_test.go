package metrics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// benchStore is a store holding n phones in 200 sites, with a live
// rollout of v2 to them: a tenth installed it, one in 47 failed past its
// retries, the rest were offered it; an open alarm; and 20 replicas.
func benchStore(b *testing.B, n int) *store.Store {
	b.Helper()
	st, err := store.Open(b.TempDir(), &store.Options{Now: time.Now, QueueSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	v1, v2 := firmware.MustParseVersion("4.0.7577.4300"), firmware.MustParseVersion("4.0.7577.4372")
	for _, v := range []firmware.Version{v1, v2} {
		image := bytes.Repeat([]byte(v.String()), 100)
		sum := sha256.Sum256(image)
		if _, err := st.Import(ctx, "bench", []firmware.ImportUpdate{{Identity: cx600, Version: v, Files: []firmware.ImportFile{{Name: "CX600.nbt",
			Size: int64(len(image)), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}}}}, store.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		if v == v1 {
			if _, err := st.Approve(ctx, "bench", cx600.Path()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := st.StartRollout(ctx, "bench", cx600.Path(), firmware.Plan{Waves: firmware.Waves{1000, firmware.Whole}, WaveWait: time.Hour, Success: 9000}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		key := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		d := firmware.Device{MAC: key, Identity: cx600, Version: v1, Offered: v2, Site: fmt.Sprintf("site-%03d", i%200), Location: firmware.Internal, LastCheckIn: now}
		if err := st.RecordCheckIn(ctx, d); err != nil {
			b.Fatal(err)
		}
		var r store.Report
		switch {
		case i%47 == 0:
			r = store.Report{Key: key, State: firmware.StateFailure, Target: v2, Error: "0x80070005", Time: now}
		case i%10 == 0:
			r = store.Report{Key: key, State: firmware.StateSuccess, Target: v2, Time: now}
		default:
			continue
		}
		if err := st.Report(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := st.RaiseAlarm(ctx, firmware.Alarm{ID: "bench", Kind: firmware.AlarmOverdue, Rule: cx600.RuleID(), Identity: cx600, Version: v2, Detail: "bench"}); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		name := fmt.Sprintf("site-%03d", i)
		if _, err := st.AddReplica(ctx, "bench", firmware.Replica{Name: name, Site: name},
			firmware.AdminCert{Serial: fmt.Sprintf("%x", 1000+i), Name: name, Role: "replica", Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkScrape is a whole scrape of /metrics with 100,000 devices in
// 200 sites and a live rollout, with the rollouts', alarms' and replicas'
// metrics (Full) and without them (Reference: the same store and the rest
// of the metrics), in the same run; LiveRollouts is the fleet index's
// pass alone, RolloutProgress what devsvc rollout show reads instead.
func BenchmarkScrape(b *testing.B) {
	const n = 100_000
	st := benchStore(b, n)
	base := Config{Inventory: st.InventoryHealth}
	full := base
	full.Rollouts = func() []store.LiveRollout { return st.LiveRollouts(time.Now()) }
	full.Alarms = func() ([]firmware.Alarm, error) { return st.Alarms(context.Background(), false) }
	full.Replicas = func() (uint64, []firmware.Replica, error) {
		rs, err := st.Replicas(context.Background())
		return st.Catalog().Seq(), rs, err
	}
	lr := st.LiveRollouts(time.Now())
	if len(lr) != 1 || lr[0].Devices.Devices != n {
		b.Fatalf("LiveRollouts = %+v, want one rollout of %d devices", lr, n)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"Reference", base}, {"Full", full}} {
		b.Run(c.name, func(b *testing.B) {
			h := New(c.cfg).Handler()
			var size int
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
				if w.Code != 200 {
					b.Fatalf("GET /metrics = %d", w.Code)
				}
				size = w.Body.Len()
				if c.name == "Full" && !strings.Contains(w.Body.String(), `state="installed"} `) {
					b.Fatal("the scrape lacks the rollout's devices")
				}
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
	b.Run("LiveRollouts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st.LiveRollouts(time.Now())
		}
	})
	// What devsvc rollout show reads, per rollout: the per-wave, per-site
	// and per-reason counts the metrics leave out.
	b.Run("RolloutProgress", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.RolloutProgress(context.Background(), cx600.Path(), time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
