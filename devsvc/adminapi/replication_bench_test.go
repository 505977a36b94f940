package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// BenchmarkCatchUp measures how long a replica takes to catch up with
// 10,000 changes it missed (the goal: at most 5 s), over real gRPC and
// mutual TLS on loopback: 9,980 changes of test devices and 20 imports of
// 64 KiB whose files it fetches, applied from the feed (not a snapshot):
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./devsvc/adminapi/
func BenchmarkCatchUp(b *testing.B) {
	const changes = 10000
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	importOne := func(st *store.Store, i int) {
		data := bytes.Repeat([]byte(fmt.Sprintf("image %d ", i)), 8<<10)[:64<<10]
		sum := sha256.Sum256(data)
		_, err := st.Import(context.Background(), "admin", []firmware.ImportUpdate{{Identity: id, Version: firmware.Version{1, 0, 0, uint32(i)},
			Files: []firmware.ImportFile{{Name: "CX600.nbt", Size: int64(len(data)), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}}}, store.ImportOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	var total time.Duration
	for range b.N {
		b.StopTimer()
		ctx := context.Background()
		h := primaryHarness(b)
		_, credsFile, err := h.client.AddReplica(ctx, service.AddReplicaRequest{Name: "paris", Site: "paris", Primary: []string{h.addr}})
		if err != nil {
			b.Fatal(err)
		}
		creds, err := replica.ParseCredentials(credsFile)
		if err != nil {
			b.Fatal(err)
		}
		rc, err := DialReplica(creds.Primary, tlsFrom(b, creds.Cert, creds.Key, creds.CA), 0)
		if err != nil {
			b.Fatal(err)
		}
		rst, err := store.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := rst.MakeReplica(ctx, creds.Primary[0]); err != nil {
			b.Fatal(err)
		}
		follow := func() (stop func()) {
			f := replica.New(rst, rc, replica.Config{Dir: b.TempDir(), DeviceURLs: func() (string, string) { return "https://paris.contoso.com/", "" }})
			fctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { f.Run(fctx); close(done) }()
			head := h.st.Catalog().Seq()
			for rst.Position() < head {
				wctx, wcancel := context.WithTimeout(ctx, time.Minute)
				err := rst.WaitChange(wctx, rst.Position())
				wcancel()
				if err != nil {
					b.Fatalf("the replica did not catch up: %v; status %+v", err, f.Status())
				}
			}
			return func() { cancel(); <-done }
		}
		importOne(h.st, 0)
		follow()() // the replica is at the first import, then stops
		for i := 1; i <= changes; i++ {
			var err error
			switch {
			case i%500 == 0:
				importOne(h.st, i)
			case i%2 == 1:
				err = h.st.AddTestDevice(ctx, "admin", firmware.TestDevice{Serial: fmt.Sprintf("S%d", i)})
			default:
				err = h.st.RemoveTestDevice(ctx, "admin", fmt.Sprintf("S%d", i-1))
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		missed := h.st.Catalog().Seq() - rst.Position()
		b.StartTimer()
		start := time.Now()
		stop := follow()
		took := time.Since(start)
		b.StopTimer()
		total += took
		stop()
		if missed < changes {
			b.Fatalf("the replica missed %d changes, want %d", missed, changes)
		}
		b.Logf("caught up with %d changes in %v", missed, took.Round(time.Millisecond))
		rc.Close()
		rst.Close()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/catch-up")
	b.ReportMetric(changes*float64(b.N)/total.Seconds(), "changes/s")
}
