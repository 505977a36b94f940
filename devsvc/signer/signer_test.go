package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/pieces"
	"github.com/opendus/opendus/updatemeta"
)

var (
	t0    = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cx600 = firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	v1    = firmware.MustParseVersion("1.0.0.1")
	v2    = firmware.MustParseVersion("2.0.0.1")
)

func image(v firmware.Version) []byte {
	return bytes.Repeat([]byte(v.String()), 100_000) // a few pieces
}

func importUpdate(t *testing.T, st *store.Store, v firmware.Version) {
	t.Helper()
	data := image(v)
	sum := sha256.Sum256(data)
	u := firmware.ImportUpdate{Identity: cx600, Version: v, UpdateType: "Firmware", Files: []firmware.ImportFile{{
		Name: "CX600.nbt", Size: int64(len(data)), SHA256: &sum,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}}}
	if _, err := st.Import(context.Background(), "test", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
}

// signedStore opens a store on a clock at t0, with signing keys beside
// it and cx600 1.0.0.1 approved; it returns them and the keys' directory.
func signedStore(t *testing.T) (*store.Store, *clocktest.Clock, string) {
	t.Helper()
	dir := t.TempDir()
	clock := clocktest.New(t0)
	st, err := store.Open(dir, &store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys := filepath.Join(dir, "keys")
	if _, err := updatemeta.Init(keys, t0, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	importUpdate(t, st, v1)
	if _, err := st.Approve(context.Background(), "test", cx600.Path()); err != nil {
		t.Fatal(err)
	}
	return st, clock, keys
}

// serve starts a publisher of st and serves it over HTTP; it returns them
// and a device that trusts the publisher's root.
func serve(t *testing.T, st *store.Store, keys string, clock *clocktest.Clock) (*Publisher, *httptest.Server, *updatemeta.Client) {
	t.Helper()
	p, err := New(st, Config{Keys: keys, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	dev, err := updatemeta.NewClient(p.Root(), cx600.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, srv, dev
}

// fetcher fetches metadata from a server as a device does.
func fetcher(url string, c *http.Client) updatemeta.Fetch {
	return func(ctx context.Context, name string, limit int64) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+deviceproto.MetadataPrefix+name, nil)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // keep the connection
			return nil, updatemeta.ErrNotFound
		}
		if resp.StatusCode != http.StatusOK {
			return nil, errors.New(resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, limit))
	}
}

// TestPublisher runs a store, the publisher and a device client over
// HTTP: approvals and a restore are signed as they happen, the piece list
// is served and matches the signed digest, and a restarted publisher goes
// on from the versions in the store.
func TestPublisher(t *testing.T) {
	ctx := context.Background()
	st, clock, keys := signedStore(t)
	_, srv, dev := serve(t, st, keys, clock)
	fetch := fetcher(srv.URL, srv.Client())
	refresh := func(what string) {
		t.Helper()
		if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
			t.Fatalf("%s: Refresh: %v", what, err)
		}
	}
	offer := func(v firmware.Version) []updatemeta.Offered {
		sum := sha256.Sum256(image(v))
		return []updatemeta.Offered{{Name: "CX600.nbt", Length: int64(len(image(v))), SHA256: hex.EncodeToString(sum[:])}}
	}
	refresh("first")
	files, err := dev.CheckOffer("", v1.String(), offer(v1))
	if err != nil {
		t.Fatal(err)
	}
	// The signed piece-list digest is the file's (the device API serves
	// the list at deviceproto.PiecesPrefix; TestSignedMetadataTamper
	// checks a changed one is refused).
	if want, _ := pieces.Compute(bytes.NewReader(image(v1))); files[0].Pieces != want.Digest() {
		t.Errorf("signed piece list digest %s, want %s", files[0].Pieces, want.Digest())
	}
	targets1 := dev.TargetsVersion()

	importUpdate(t, st, v2)
	if _, err := st.Approve(ctx, "test", cx600.Path()); err != nil {
		t.Fatal(err)
	}
	refresh("after the approval")
	if dev.TargetsVersion() <= targets1 {
		t.Errorf("targets version %d after an approval, want more than %d", dev.TargetsVersion(), targets1)
	}
	if _, err := dev.CheckOffer(v1.String(), v2.String(), offer(v2)); err != nil {
		t.Errorf("the approved version: %v", err)
	}
	if _, err := dev.CheckOffer(v2.String(), v1.String(), offer(v1)); updatemeta.ReasonOf(err) == "" {
		t.Errorf("the old version before a restore: accepted, want a refusal")
	}
	if _, err := st.Restore(ctx, "test", cx600.Path()); err != nil {
		t.Fatal(err)
	}
	refresh("after the restore")
	if _, err := dev.CheckOffer(v2.String(), v1.String(), offer(v1)); err != nil {
		t.Errorf("the restore: %v", err)
	}

	// Half a day on: the timestamp is re-signed, nothing else.
	before := dev.TargetsVersion()
	clock.Advance(13 * time.Hour)
	refresh("13 hours on")
	if dev.TargetsVersion() != before {
		t.Errorf("targets version %d after a re-signed timestamp, want %d", dev.TargetsVersion(), before)
	}

	// A restarted service goes on from the store's versions: the device
	// accepts what it signs.
	p2, err := New(st, Config{Keys: keys, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(p2)
	defer srv2.Close()
	if err := dev.Refresh(ctx, fetcher(srv2.URL, srv2.Client()), clock.Now()); err != nil {
		t.Errorf("after a restart: %v", err)
	}

	// A rotation is picked up: the device follows root 2.
	k, err := updatemeta.Load(keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Rotate(clock.Now(), updatemeta.RotateOptions{Online: true, Root: true, RootExpiry: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Refresh(ctx, fetcher(srv2.URL, srv2.Client()), clock.Now()); err != nil {
		t.Fatalf("after a rotation: %v", err)
	}
	if dev.RootVersion() != 2 {
		t.Errorf("root version %d after a rotation, want 2", dev.RootVersion())
	}
}

// TestRolloutRollBackIsSigned: a rollout rolled back offers the devices
// it reached the approved version again; targets signs that downgrade.
func TestRolloutRollBackIsSigned(t *testing.T) {
	ctx := context.Background()
	st, clock, keys := signedStore(t)
	importUpdate(t, st, v2)
	waves, err := firmware.ParseWaves("10%,100%")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartRollout(ctx, "test", cx600.Path(), firmware.Plan{Waves: waves, WaveWait: time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, srv, dev := serve(t, st, keys, clock)
	fetch := fetcher(srv.URL, srv.Client())
	sum := sha256.Sum256(image(v1))
	offerV1 := []updatemeta.Offered{{Name: "CX600.nbt", Length: int64(len(image(v1))), SHA256: hex.EncodeToString(sum[:])}}
	if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.CheckOffer(v2.String(), v1.String(), offerV1); updatemeta.ReasonOf(err) != updatemeta.ReasonDowngrade {
		t.Errorf("a downgrade to the approved version during the rollout: %v, want %s", err, updatemeta.ReasonDowngrade)
	}
	if _, err := st.Restore(ctx, "test", cx600.Path()); err != nil { // rolls the rollout back
		t.Fatal(err)
	}
	if err := dev.Refresh(ctx, fetch, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.CheckOffer(v2.String(), v1.String(), offerV1); err != nil {
		t.Errorf("the roll-back's offer to a device it reached: %v", err)
	}
}

// TestStaple: what answers staple is the set the metadata requests
// serve, signed first when the catalog changed (an approval between two
// Run ticks): a device refreshing with it fetches only the snapshot and
// targets of the change, and nothing after a timestamp re-signed for
// freshness.
func TestStaple(t *testing.T) {
	ctx := context.Background()
	st, clock, keys := signedStore(t)
	p, srv, dev := serve(t, st, keys, clock)
	var fetched []string
	fetch := fetcher(srv.URL, srv.Client())
	counting := func(ctx context.Context, name string, limit int64) ([]byte, error) {
		fetched = append(fetched, name)
		return fetch(ctx, name, limit)
	}
	refresh := func(what, want string) {
		t.Helper()
		ts, root, signed := p.Staple()
		fetched = nil
		if err := dev.RefreshHinted(ctx, counting, clock.Now(), updatemeta.Hint{Timestamp: ts, Root: root, Stapled: signed}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := fmt.Sprint(fetched); got != want {
			t.Errorf("%s: fetched %s, want %s", what, got, want)
		}
		if dev.TimestampVersion() != ts {
			t.Errorf("%s: the device trusts timestamp %d, the answer stapled %d", what, dev.TimestampVersion(), ts)
		}
	}
	refresh("first", "[snapshot.json targets.json]")
	importUpdate(t, st, v2)
	if _, err := st.Approve(ctx, "test", cx600.Path()); err != nil {
		t.Fatal(err)
	}
	refresh("an approval, before any Run tick", "[snapshot.json targets.json]")
	if _, err := dev.CheckOffer(v1.String(), v2.String(), []updatemeta.Offered{{Name: "CX600.nbt", Length: int64(len(image(v2))), SHA256: sha(image(v2))}}); err != nil {
		t.Errorf("the approval: %v", err)
	}
	clock.Advance(13 * time.Hour)
	if _, err := p.Current(ctx); err != nil { // Run's tick
		t.Fatal(err)
	}
	refresh("13 hours on", "[]")
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
