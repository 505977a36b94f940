package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/updatemeta"
)

// benchService is a store of n approved rules (an image and a catalog
// each), the device API and the publisher behind one TLS listener, as a
// device listener serves them.
func benchService(b *testing.B, n int) (srv *httptest.Server, st *store.Store, p *Publisher, ids []firmware.Identity, clock *clocktest.Clock) {
	b.Helper()
	dir := b.TempDir()
	clock = clocktest.New(t0)
	st, err := store.Open(dir, &store.Options{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var us []firmware.ImportUpdate
	for i := range n {
		id := benchID(i)
		ids = append(ids, id)
		us = append(us, benchUpdate(id))
	}
	if _, err := st.Import(context.Background(), "bench", us, store.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		if _, err := st.Approve(context.Background(), "bench", id.Path()); err != nil {
			b.Fatal(err)
		}
	}
	keys := filepath.Join(dir, "keys")
	// A root valid for long: the re-signing benchmarks move the clock on
	// half a day per check-in.
	if _, err := updatemeta.Init(keys, t0, 100*365*24*time.Hour); err != nil {
		b.Fatal(err)
	}
	if p, err = New(st, Config{Keys: keys, Now: clock.Now}); err != nil {
		b.Fatal(err)
	}
	api := deviceapi.New(st, deviceapi.Config{InternalURL: "https://ucupdates-r2.contoso.com/", Now: clock.Now, Metadata: p.Staple})
	in := api.Internal()
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, deviceproto.MetadataPrefix) {
			p.ServeHTTP(w, r)
			return
		}
		in.ServeHTTP(w, r)
	}))
	b.Cleanup(func() { srv.Close(); api.Close() })
	return srv, st, p, ids, clock
}

func benchID(i int) firmware.Identity {
	return firmware.Identity{DeviceType: "UCPhone", Vendor: fmt.Sprintf("Vendor%02d", i/10), Model: fmt.Sprintf("M%02d", i), Revision: "A", Locale: "ENU"}
}

// benchUpdate is version 2 of id: an image and a catalog.
func benchUpdate(id firmware.Identity) firmware.ImportUpdate {
	var files []firmware.ImportFile
	for _, f := range []struct{ name, content string }{{id.Model + ".nbt", "image " + id.Path()}, {id.Model + ".cat", "catalog " + id.Path()}} {
		data := []byte(strings.Repeat(f.content, 1000))
		sum := sha256.Sum256(data)
		files = append(files, firmware.ImportFile{Name: f.name, Size: int64(len(data)), SHA256: &sum,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
	}
	return firmware.ImportUpdate{Identity: id, Version: v2, UpdateType: "Firmware", Files: files}
}

// toggle changes id's rule: it withdraws its approved version, or imports
// and approves it again. Either is a catalog change that signs targets
// anew.
func toggle(b *testing.B, st *store.Store, id firmware.Identity) {
	ctx := context.Background()
	r, err := st.Rule(ctx, id.Path())
	if err != nil {
		b.Fatal(err)
	}
	if !r.Approved.IsZero() {
		if _, err := st.Withdraw(ctx, "bench", id.Path()); err != nil {
			b.Fatal(err)
		}
		return
	}
	if _, err := st.Import(ctx, "bench", []firmware.ImportUpdate{benchUpdate(id)}, store.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Approve(ctx, "bench", id.Path()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCheckIn is a device's check-in over HTTPS against a service
// of 50 rules, whose answer offers it an update: "plain" believes the
// answer (the reference, as before signed metadata); "verified" also
// runs the TUF workflow on an unchanged timestamp (two more requests:
// the next root, 404, and timestamp.json) and checks the offer against
// targets; "verified-changed" after every catalog change (timestamp,
// snapshot and targets fetched and verified), the worst case;
// "verified-resigned" after the timestamp was re-signed to stay fresh
// (timestamp.json and the next root's 404 fetched), and "verified-stapled"
// the same with the device saying what it trusts, so that the answer
// staples the new timestamp and names the root: nothing fetched.
func BenchmarkCheckIn(b *testing.B) {
	srv, st, p, ids, clock := benchService(b, 50)
	c := srv.Client()
	id := ids[7]
	ci := deviceproto.CheckIn{Identity: id, MAC: "00-04-F2-00-00-07", Modules: []firmware.Module{{Name: id.Model + ".nbt", Version: v1}}}
	body := ci.AppendXML(nil)
	ctx := context.Background()
	var checkInWith func(b *testing.B, body []byte) deviceproto.Answer
	checkIn := func(b *testing.B) deviceproto.Answer {
		return checkInWith(b, body)
	}
	checkInWith = func(b *testing.B, body []byte) deviceproto.Answer {
		resp, err := c.Post(srv.URL+deviceproto.CheckInPath, "application/xml; charset=utf-8", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("check-in: %s, %v", resp.Status, err)
		}
		a, err := deviceproto.ParseAnswer(data)
		if err != nil || len(a.Files) == 0 {
			b.Fatalf("answer: %v, %d files", err, len(a.Files))
		}
		return a
	}
	offered := func(a deviceproto.Answer) []updatemeta.Offered {
		var o []updatemeta.Offered
		for _, f := range a.Files {
			o = append(o, updatemeta.Offered{Name: f.FileName, Length: f.Size, SHA256: f.SHA256})
			if f.SignatureFileName != "" {
				o = append(o, updatemeta.Offered{Name: f.SignatureFileName, Length: f.SignatureSize, SHA256: f.SignatureSHA256})
			}
		}
		return o
	}
	fetch := fetcher(srv.URL, c)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			checkIn(b)
		}
	})
	b.Run("verified", func(b *testing.B) {
		dev, err := updatemeta.NewClient(p.Root(), id.Path(), nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			a := checkIn(b)
			if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
				b.Fatal(err)
			}
			if _, err := dev.CheckOffer(v1.String(), a.Version.String(), offered(a)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A timestamp re-signed before each check-in, half its validity on.
	resign := func(b *testing.B) {
		b.StopTimer()
		clock.Advance(13 * time.Hour)
		if _, err := p.Current(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("verified-resigned", func(b *testing.B) {
		dev, err := updatemeta.NewClient(p.Root(), id.Path(), nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			resign(b)
			a := checkIn(b)
			if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
				b.Fatal(err)
			}
			if _, err := dev.CheckOffer(v1.String(), a.Version.String(), offered(a)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verified-stapled", func(b *testing.B) {
		dev, err := updatemeta.NewClient(p.Root(), id.Path(), nil)
		if err != nil {
			b.Fatal(err)
		}
		var requests int
		counting := func(ctx context.Context, name string, limit int64) ([]byte, error) {
			requests++
			return fetch(ctx, name, limit)
		}
		if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			resign(b)
			trusting := ci
			trusting.Metadata = deviceproto.MetadataTrust{Root: dev.RootVersion(), Timestamp: dev.TimestampVersion()}
			a := checkInWith(b, trusting.AppendXML(nil))
			if err := dev.RefreshHinted(ctx, counting, clock.Now(), updatemeta.Hint{Timestamp: a.Metadata, Root: a.MetadataRoot, Stapled: a.Stapled}); err != nil {
				b.Fatal(err)
			}
			if _, err := dev.CheckOffer(v1.String(), a.Version.String(), offered(a)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	})
	b.Run("verified-changed", func(b *testing.B) {
		dev, err := updatemeta.NewClient(p.Root(), id.Path(), nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			b.StopTimer()
			toggle(b, st, ids[0]) // a catalog change of another rule
			if _, err := p.Current(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			a := checkIn(b)
			if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
				b.Fatal(err)
			}
			if _, err := dev.CheckOffer(v1.String(), a.Version.String(), offered(a)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSign is the primary's signing cost per catalog change with 50
// rules: the catalog read, targets, snapshot and timestamp signed and
// written to the store.
func BenchmarkSign(b *testing.B) {
	_, st, p, ids, clock := benchService(b, 50)
	ctx := context.Background()
	before, _ := p.Current(ctx)
	for b.Loop() {
		b.StopTimer()
		clock.Advance(time.Second)
		toggle(b, st, ids[0])
		b.StartTimer()
		if _, err := p.Current(ctx); err != nil {
			b.Fatal(err)
		}
	}
	after, _ := p.Current(ctx)
	if after.TargetsVersion <= before.TargetsVersion {
		b.Fatalf("targets version %d, want more than %d", after.TargetsVersion, before.TargetsVersion)
	}
	b.ReportMetric(float64(len(after.Target)), "targets-bytes")
}
