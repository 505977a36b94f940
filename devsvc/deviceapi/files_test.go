package deviceapi_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
)

// testServer is a real HTTPS server with the certs package's TLS
// configuration and a client that trusts only its CA.
type testServer struct {
	URL    string
	client *http.Client
}

func (s testServer) Client() *http.Client { return s.client }

func newTLSServer(t testing.TB, h http.Handler) testServer {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	ts := certstest.NewServer(t, cs.ServerTLSConfig(), h)
	tr := &http.Transport{TLSClientConfig: cs.DeviceTLSConfig(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return testServer{URL: ts.URL, client: &http.Client{Transport: tr}}
}

func TestDownload(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{})
	path := deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt"
	data := imageOf(cx500, v1)
	etag := `"` + hexSum(data) + `"`
	size := len(data)
	tests := []struct {
		name      string
		method    string
		header    []string
		code      int
		body      []byte // nil: not checked
		emptyBody bool
		headers   map[string]string
	}{
		{name: "whole file", method: "GET", code: 200, body: data, headers: map[string]string{
			"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "application/octet-stream",
			"Content-Length": fmt.Sprint(size), "Accept-Ranges": "bytes", "Last-Modified": "Sat, 21 Nov 2026 09:00:00 GMT",
		}},
		{name: "HEAD", method: "HEAD", code: 200, emptyBody: true, headers: map[string]string{
			"ETag": etag, "Content-Length": fmt.Sprint(size), "Content-Type": "application/octet-stream",
		}},
		{name: "resume from an offset", method: "GET", header: []string{"Range", "bytes=60000-"}, code: 206, body: data[60000:], headers: map[string]string{
			"Content-Range": fmt.Sprintf("bytes 60000-%d/%d", size-1, size), "Content-Length": fmt.Sprint(size - 60000), "ETag": etag,
		}},
		{name: "one range", method: "GET", header: []string{"Range", "bytes=10-19"}, code: 206, body: data[10:20], headers: map[string]string{
			"Content-Range": fmt.Sprintf("bytes 10-19/%d", size),
		}},
		{name: "suffix range", method: "GET", header: []string{"Range", "bytes=-100"}, code: 206, body: data[size-100:]},
		{name: "unsatisfiable range", method: "GET", header: []string{"Range", fmt.Sprintf("bytes=%d-", size)}, code: 416, headers: map[string]string{
			"Content-Range": fmt.Sprintf("bytes */%d", size),
		}},
		{name: "If-None-Match with the ETag", method: "GET", header: []string{"If-None-Match", etag}, code: 304, emptyBody: true, headers: map[string]string{"ETag": etag}},
		{name: "If-None-Match with another ETag", method: "GET", header: []string{"If-None-Match", `"0000"`}, code: 200, body: data},
		{name: "If-Range with the ETag resumes", method: "GET", header: []string{"Range", "bytes=5-9", "If-Range", etag}, code: 206, body: data[5:10]},
		{name: "If-Range with a stale ETag restarts", method: "GET", header: []string{"Range", "bytes=5-9", "If-Range", `"stale"`}, code: 200, body: data},
		{name: "POST", method: "POST", code: 405, headers: map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), tt.method, path, nil, tt.header...)
			if w.Code != tt.code {
				t.Fatalf("%s %s %v = %d, want %d", tt.method, path, tt.header, w.Code, tt.code)
			}
			if tt.body != nil && !bytes.Equal(w.Body.Bytes(), tt.body) {
				t.Errorf("body has %d bytes, want the %d expected bytes", w.Body.Len(), len(tt.body))
			}
			if tt.emptyBody && w.Body.Len() != 0 {
				t.Errorf("body has %d bytes, want none", w.Body.Len())
			}
			for k, want := range tt.headers {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestDownloadMultipleRanges(t *testing.T) {
	srv := deviceapi.New(offerStore(t), deviceapi.Config{})
	data := imageOf(cx500, v1)
	w := do(srv.Internal(), "GET", deviceproto.FilesPrefix+"UCPhone/Polycom/CX500/A/ENU/"+v1.String()+"/CX500.nbt", nil, "Range", "bytes=0-9,1000-1099")
	if w.Code != 206 {
		t.Fatalf("status = %d, want 206", w.Code)
	}
	mt, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type = %q, want multipart/byteranges", w.Header().Get("Content-Type"))
	}
	mr := multipart.NewReader(w.Body, params["boundary"])
	for _, want := range []struct {
		rng  string
		data []byte
	}{{"bytes 0-9/100000", data[:10]}, {"bytes 1000-1099/100000", data[1000:1100]}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if p.Header.Get("Content-Range") != want.rng || !bytes.Equal(got, want.data) {
			t.Errorf("part %q with %d bytes, want %q with the expected bytes", p.Header.Get("Content-Range"), len(got), want.rng)
		}
		if p.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("part Content-Type = %q", p.Header.Get("Content-Type"))
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after two parts: %v, want EOF", err)
	}
}

func TestDownloadRefusals(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{})
	good := "UCPhone/Polycom/CX500/A/ENU/" + v1.String()
	tests := []struct {
		name string
		path string // raw, after the files prefix
		code int
	}{
		{"dot dot", "../../../../opendus.db", 400},
		{"dot dot inside", "UCPhone/Polycom/CX500/A/ENU/../../../../../../opendus.db", 400},
		{"encoded dot dot", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/opendus.db", 400},
		{"encoded slash", good + "/..%2f..%2fopendus.db", 400},
		{"encoded dot dot in the version", "UCPhone/Polycom/CX500/A/ENU/%2e%2e/CX500.nbt", 400},
		{"backslash", good + `/..\..\opendus.db`, 400},
		{"encoded backslash", good + "/..%5c..%5copendus.db", 400},
		{"double encoded", good + "/%252e%252e", 400},
		{"NUL", good + "/CX500.nbt%00", 400},
		{"absolute", "/etc/passwd", 400},
		{"too short", "UCPhone/Polycom/CX500/CX500.nbt", 400},
		{"too long", good + "/CX500.nbt/x", 400},
		{"non-canonical version", "UCPhone/Polycom/CX500/A/ENU/3.5.6907.035/CX500.nbt", 400},
		{"unknown device type", "Toaster/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt", 400},
		{"unknown file", good + "/other.nbt", 404},
		{"unknown version", "UCPhone/Polycom/CX500/A/ENU/9.9.9.9/CX500.nbt", 404},
		{"unknown identity", "UCPhone/Polycom/CX999/A/ENU/" + v1.String() + "/CX500.nbt", 404},
		{"dot file", good + "/.tmp-CX500.nbt", 400},
	}
	data := imageOf(cx500, v1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.Internal(), "GET", deviceproto.FilesPrefix+tt.path, nil)
			if w.Code != tt.code {
				t.Errorf("GET %s = %d %q, want %d", tt.path, w.Code, w.Body.String(), tt.code)
			}
			if w.Body.Len() > 512 || bytes.Contains(w.Body.Bytes(), data[:64]) {
				t.Errorf("GET %s returned %d bytes of body, want only a short reason", tt.path, w.Body.Len())
			}
		})
	}
	// Over a real connection too: the client sends the path as given.
	ts := newTLSServer(t, srv.Internal())
	for _, p := range []string{"%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/opendus.db", good + "/..%5c..%5copendus.db"} {
		req, err := http.NewRequest("GET", ts.URL+deviceproto.FilesPrefix+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || strings.Contains(string(body), "bbolt") {
			t.Errorf("GET %s over TLS = %d %q, want 400", p, resp.StatusCode, body)
		}
	}
}

// TestDownloadResumeOverTLS downloads half, drops the connection, and
// resumes with Range and If-Range, as a device does.
func TestDownloadResumeOverTLS(t *testing.T) {
	srv := deviceapi.New(offerStore(t), deviceapi.Config{})
	ts := newTLSServer(t, srv.Internal())
	url := ts.URL + deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt"
	resp, err := ts.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 40_000)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	resp.Body.Close() // interrupted
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=40000-")
	req.Header.Set("If-Range", etag)
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 206 {
		t.Fatalf("resume status = %d, want 206", resp.StatusCode)
	}
	if got, want := hexSum(append(first, rest...)), hexSum(imageOf(cx500, v1)); got != want || `"`+got+`"` != etag {
		t.Errorf("SHA-256 of the resumed download = %s, want %s (ETag %s)", got, want, etag)
	}
}
