package deviceapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var (
	t0     = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	cx600  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	cx500  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	a6725  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Aastra", Model: "6725ip", Revision: "A", Locale: "ENU"}
	hp4120 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "HP", Model: "4120", Revision: "A", Locale: "ENU"}
	cx3000 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX3000", Revision: "A", Locale: "ENU"}
	v1     = firmware.MustParseVersion("3.5.6907.35")
	v2     = firmware.MustParseVersion("4.0.7577.4372")
)

// fixedClock is the handlers' and the store's clock in tests.
func fixedClock() time.Time { return t0 }

// content returns deterministic file content of a given size.
func content(seed string, size int) []byte {
	b := make([]byte, size)
	s := sha256.Sum256([]byte(seed))
	for i := range b {
		b[i] = s[i%32] ^ byte(i/32) ^ byte(i>>13)
	}
	return b
}

// imageOf returns the content of an update's image, as importUpdate stores it.
func imageOf(id firmware.Identity, v firmware.Version) []byte {
	return content(id.Path()+v.String(), 100_000)
}

func catalogOf(id firmware.Identity, v firmware.Version) []byte {
	return content("cat"+id.Path()+v.String(), 300)
}

func storeFile(name string, data []byte) firmware.ImportFile {
	sum := sha256.Sum256(data)
	return firmware.ImportFile{Name: name, Size: int64(len(data)), SHA256: &sum,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// importUpdate imports id at v with an image (Model.nbt), its catalog
// (Model.cat) and a description.
func importUpdate(t testing.TB, st *store.Store, id firmware.Identity, v firmware.Version) {
	t.Helper()
	u := firmware.ImportUpdate{Identity: id, Version: v, UpdateType: "Firmware", Files: []firmware.ImportFile{
		storeFile(id.Model+".nbt", imageOf(id, v)),
		storeFile(id.Model+".cat", catalogOf(id, v)),
		storeFile(id.Model+".xml", []byte("<description/>")),
	}}
	if _, err := st.Import(context.Background(), "test", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
		t.Fatalf("Import %s %s: %v", id, v, err)
	}
}

func approve(t testing.TB, st *store.Store, id firmware.Identity) {
	t.Helper()
	if _, err := st.Approve(context.Background(), "test", id.Path()); err != nil {
		t.Fatalf("Approve %s: %v", id, err)
	}
}

// openStore opens a real store in a temporary directory.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), &store.Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// checkIn returns a check-in body of a device on cx600 at version v.
func checkInBody(id firmware.Identity, mac string, v firmware.Version) []byte {
	c := deviceproto.CheckIn{Identity: id, MAC: mac, User: "alice@contoso.com"}
	if !v.IsZero() {
		c.Modules = []firmware.Module{{Name: id.Model + ".nbt", Version: v, Timestamp: "2026-01-15T08:00:00Z"}}
	}
	return c.AppendXML(nil)
}

// do runs one request through h and returns the recorded response.
func do(h http.Handler, method, target string, body []byte, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "ucupdates-r2.contoso.com"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// answerOf parses a check-in response, failing the test if it is not 200.
func answerOf(t testing.TB, w *httptest.ResponseRecorder) deviceproto.Answer {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("check-in status = %d, want 200; body %q", w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		t.Errorf("Content-Type = %q, want application/xml", ct)
	}
	a, err := deviceproto.ParseAnswer(w.Body.Bytes())
	if err != nil {
		t.Fatalf("ParseAnswer: %v\n%s", err, w.Body.String())
	}
	return a
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, c := range s {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// doFrom is do from the remote address remote (ip:port).
func doFrom(h http.Handler, remote, method, target string, body []byte) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "ucupdates-r2.contoso.com"
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
