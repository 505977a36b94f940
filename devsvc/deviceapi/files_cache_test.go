package deviceapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// TestOpenFilesCache: downloads share one open file per stored file; when
// its update leaves the catalog, the file is served no more and closed,
// at once or when the last download reading it ends.
func TestOpenFilesCache(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	v := firmware.MustParseVersion("3.5.6907.35")
	data := bytes.Repeat([]byte("image "), 10_000)
	sum := sha256.Sum256(data)
	u := firmware.ImportUpdate{Identity: id, Version: v, Files: []firmware.ImportFile{{Name: "CX500.nbt", Size: int64(len(data)), SHA256: &sum,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}}
	if _, err := st.Import(ctx, "test", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	s := New(st, Config{})
	defer s.Close()
	path := deviceproto.FilesPrefix + id.Path() + "/" + v.String() + "/CX500.nbt"
	get := func() (int, []byte) {
		w := httptest.NewRecorder()
		s.Internal().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code, w.Body.Bytes()
	}
	for range 3 {
		if code, body := get(); code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("download = %d, %d bytes; want 200 with the file", code, len(body))
		}
	}
	k := fileKey{id, v, "CX500.nbt"}
	kept := s.files.m[k]
	if len(s.files.m) != 1 || kept == nil || kept.refs != 0 {
		t.Fatalf("after three downloads, %d files kept (%+v), want this one, unused", len(s.files.m), kept)
	}
	// A download under way when the update is removed keeps its file
	// until it ends.
	reading, err := s.files.open(st, st.Catalog(), k)
	if err != nil || reading != kept {
		t.Fatalf("open = %v, %v; want the kept file", reading, err)
	}
	if _, err := st.Remove(ctx, "test", id.Path()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != http.StatusNotFound {
		t.Errorf("download after the removal = %d, want 404", code)
	}
	if len(s.files.m) != 0 || !reading.stale {
		t.Errorf("after the removal: %d files kept, the one being read stale %v; want none, stale", len(s.files.m), reading.stale)
	}
	if _, err := reading.f.Stat(); err != nil {
		t.Errorf("the file was closed under its download: %v", err)
	}
	s.files.release(reading)
	if _, err := reading.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after its last download: Stat = %v, want it closed", err)
	}
}
