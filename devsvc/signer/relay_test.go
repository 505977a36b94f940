package signer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/updatemeta"
)

// TestRelay: a relay of the store the publisher writes serves the same
// metadata byte for byte, staples the same timestamp and names the same
// root, holds an offer back until its signing is in the store, and a
// device verifies what it serves.
func TestRelay(t *testing.T) {
	ctx := context.Background()
	st, clock, keys := signedStore(t)
	p, psrv, _ := serve(t, st, keys, clock)
	r := NewRelay(st, nil)
	rsrv := httptest.NewServer(r)
	defer rsrv.Close()
	get := func(srv *httptest.Server, name string) (int, []byte) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + deviceproto.MetadataPrefix + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	same := func(what string) {
		t.Helper()
		for _, name := range []string{"timestamp.json", "snapshot.json", "targets.json", "root.json", "1.root.json", "2.root.json"} {
			pc, pb := get(psrv, name)
			rc, rb := get(rsrv, name)
			if pc != rc || !bytes.Equal(pb, rb) {
				t.Errorf("%s: %s: the relay answers %d with %d bytes, the publisher %d with %d", what, name, rc, len(rb), pc, len(pb))
			}
		}
		pts, proot, psigned := p.Staple()
		rts, rroot, rsigned := r.Staple()
		if pts == 0 || pts != rts || proot != rroot || !bytes.Equal(psigned, rsigned) {
			t.Errorf("%s: the relay staples timestamp %d (root %d, %d bytes), the publisher %d (root %d, %d bytes)", what, rts, rroot, len(rsigned), pts, proot, len(psigned))
		}
		if !bytes.Equal(r.Root(), p.Root()) {
			t.Errorf("%s: the relay's root differs from the publisher's", what)
		}
	}
	same("first")

	// A new version, imported: the relay holds its offer back until the
	// publisher's signing of it is in the store.
	importUpdate(t, st, v2)
	u, ok := st.Catalog().Update(cx600, v2)
	if !ok {
		t.Fatal("the import is not in the catalog")
	}
	if r.Allows(u) {
		t.Errorf("the relay allows %s before its signing", v2)
	}
	if _, err := p.Current(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Allows(u) {
		t.Errorf("the relay holds %s back after its signing", v2)
	}
	same("after the import")

	// Half a day on the timestamp is re-signed: the relay follows.
	clock.Advance(13 * time.Hour)
	if _, err := p.Current(ctx); err != nil {
		t.Fatal(err)
	}
	same("13 hours on")
	dev, err := updatemeta.NewClient(r.Root(), cx600.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Refresh(ctx, fetcher(rsrv.URL, rsrv.Client()), clock.Now()); err != nil {
		t.Fatalf("a device refreshing from the relay: %v", err)
	}
	if _, err := dev.CheckOffer("", v1.String(), []updatemeta.Offered{{Name: "CX600.nbt", Length: int64(len(image(v1))), SHA256: sha(image(v1))}}); err != nil {
		t.Errorf("the approved version, through the relay: %v", err)
	}
	if code, _ := get(rsrv, "nothing.json"); code != http.StatusNotFound {
		t.Errorf("an unknown name: %d, want 404", code)
	}
}
