package devlogs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opendus/opendus/devsvc/audit"
	"github.com/opendus/opendus/internal/testtool"

	"github.com/opendus/opendus/internal/clocktest"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// env is a handler on a real HTTP server, storing under base/Logs/Client.
type env struct {
	base, dir string
	h         *Handler
	srv       *httptest.Server
	clock     *clocktest.Clock
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{base: t.TempDir(), clock: &clocktest.Clock{T: t0}}
	e.dir = filepath.Join(e.base, "Logs", "Client")
	cfg.Dir = e.dir
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// post uploads body with the given query and returns status and body.
func (e *env) post(t *testing.T, query string, body io.Reader, contentType string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+Path+"?"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// files returns every file under base, relative to base, checking that
// no temporary file is left.
func (e *env) files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(e.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(e.base, p)
		data, _ := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	return out
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const stamp = "20261121T120000.000Z"

func TestUpload(t *testing.T) {
	const max = 1000
	long := strings.Repeat("x", 296) + ".txt"
	tests := []struct {
		name       string
		query      string
		body       string
		chunked    bool
		ctype      string
		wantStatus int
		wantStored string // "" when nothing is stored
		wantMsg    string // substring of the answer
	}{
		{"CE log with MAC", q("type", "CELog", "name", "phone.clg", "mac", "00-04-F2-12-34-56"), "log", false, "application/octet-stream",
			201, "CELog/0004f2123456-" + stamp + "-phone.clg", ""},
		{"crash dump without MAC", q("type", "Watson", "name", "crash.dmp"), "MDMP", false, "",
			201, "Watson/127.0.0.1-" + stamp + "-crash.dmp", ""},
		{"type and extension ignore case", q("type", "config", "name", "PHONE.XML", "mac", "0004f2123456"), "<x/>", false, "",
			201, "Config/0004f2123456-" + stamp + "-PHONE.XML", ""},
		{"exactly MaxSize", q("type", "CELog", "name", "big.bin"), strings.Repeat("b", max), false, "",
			201, "CELog/127.0.0.1-" + stamp + "-big.bin", ""},
		{"exactly MaxSize chunked", q("type", "CELog", "name", "big2.bin"), strings.Repeat("b", max), true, "",
			201, "CELog/127.0.0.1-" + stamp + "-big2.bin", ""},
		{"bad type", q("type", "Kernel", "name", "a.txt"), "x", false, "", 400, "", "unknown or missing log type"},
		{"missing type", q("name", "a.txt"), "x", false, "", 400, "", "unknown or missing log type"},
		{"type with path", q("type", "../CELog", "name", "a.txt"), "x", false, "", 400, "", "log type"},
		{"bad extension", q("type", "CELog", "name", "evil.exe"), "MZ", false, "", 400, "", "extension not accepted"},
		{"no extension", q("type", "CELog", "name", "README"), "x", false, "", 400, "", "extension not accepted"},
		{"missing name", q("type", "CELog"), "x", false, "", 400, "", "name is missing"},
		{"too large", q("type", "CELog", "name", "a.txt"), strings.Repeat("b", max+1), false, "", 413, "", "larger than"},
		{"too large chunked", q("type", "CELog", "name", "a.txt"), strings.Repeat("b", max+1), true, "", 413, "", "larger than"},
		{"empty", q("type", "CELog", "name", "a.txt"), "", false, "", 400, "", "empty upload"},
		{"multipart", q("type", "CELog", "name", "a.txt"), "--x\r\n", false, "multipart/form-data; boundary=x", 415, "", "multipart"},
		{"bad MAC", q("type", "CELog", "name", "a.txt", "mac", "00:11:22:33:44"), "x", false, "", 400, "", "not a MAC"},
		{"MAC with path", q("type", "CELog", "name", "a.txt", "mac", "../../etc/passwd"), "x", false, "", 400, "", "not a MAC"},
		{"repeated parameter", "type=CELog&name=a.txt&name=b.txt", "x", false, "", 400, "", "given 2 times"},
		{"bad query", "type=CELog&name=a%zz.txt", "x", false, "", 400, "", "malformed query"},

		// Hostile names: only the last element is kept, sanitised.
		{"dot-dot slash", q("type", "CELog", "name", "../../etc/passwd"), "x", false, "", 400, "", "extension"},
		{"dot-dot slash with extension", q("type", "CELog", "name", "../../etc/passwd.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-passwd.txt", ""},
		{"dot-dot backslash", q("type", "CELog", "name", `..\..\x`), "x", false, "", 400, "", "extension"},
		{"dot-dot backslash with extension", q("type", "CELog", "name", `..\..\x.clg`), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-x.clg", ""},
		{"Windows CE path", q("type", "CELog", "name", `\Windows\Logs\ce.clg2`), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-ce.clg2", ""},
		{"absolute", q("type", "CELog", "name", "/abs"), "x", false, "", 400, "", "extension"},
		{"absolute with extension", q("type", "CELog", "name", "/abs.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-abs.txt", ""},
		{"trailing slash", q("type", "CELog", "name", "a.txt/"), "x", false, "", 400, "", "nothing usable"},
		{"NUL", q("type", "CELog", "name", "a\x00b.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-a_b.txt", ""},
		{"newline and tab", q("type", "CELog", "name", "a\nb\tc.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-a_b_c.txt", ""},
		{"hidden", q("type", "CELog", "name", ".hidden.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-hidden.txt", ""},
		{"dots only", q("type", "CELog", "name", ".."), "x", false, "", 400, "", "nothing usable"},
		{"dot extension only", q("type", "CELog", "name", "..txt"), "x", false, "", 400, "", "extension"},
		{"300 characters", q("type", "CELog", "name", long), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-" + strings.Repeat("x", MaxNameBytes-4) + ".txt", ""},
		{"Unicode", q("type", "CELog", "name", "журнал-ö.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-журнал-ö.txt", ""},
		{"bidi override and spaces", q("type", "CELog", "name", "log \u202etxt.exe"), "x", false, "", 400, "", "extension"},
		{"bidi override", q("type", "CELog", "name", "a\u202eb.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-a_b.txt", ""},
		{"invalid UTF-8", q("type", "CELog", "name", "a\xff.txt"), "x", false, "",
			201, "CELog/127.0.0.1-" + stamp + "-a_.txt", ""},
		{"trailing newline hides the extension", q("type", "CELog", "name", "x.txt\n"), "x", false, "", 400, "", "extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{MaxSize: max})
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			status, msg := e.post(t, tt.query, body, tt.ctype)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%q), want %d", status, msg, tt.wantStatus)
			}
			files := e.files(t)
			if tt.wantStored == "" {
				if !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("answer %q, want it to contain %q", msg, tt.wantMsg)
				}
				if len(files) != 0 {
					t.Errorf("refused upload left files: %q", files)
				}
				return
			}
			if msg != tt.wantStored+"\n" {
				t.Errorf("answer %q, want %q", msg, tt.wantStored+"\n")
			}
			want := map[string]string{"Logs/Client/" + tt.wantStored: tt.body}
			if len(files) != 1 || files["Logs/Client/"+tt.wantStored] != tt.body {
				t.Errorf("files = %q, want %q", files, want)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, Config{})
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		req, _ := http.NewRequestWithContext(t.Context(), m, e.srv.URL+Path+"?"+q("type", "CELog", "name", "a.txt"), strings.NewReader("x"))
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: status %d, Allow %q; want 405 and POST", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

// TestTooLargeByContentLength checks that a declared oversized body is
// refused before it is read.
func TestTooLargeByContentLength(t *testing.T) {
	e := newEnv(t, Config{MaxSize: 10})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", Path+"?"+q("type", "CELog", "name", "a.txt"), errReader{})
	r.ContentLength = 11
	e.h.ServeHTTP(rec, r)
	if rec.Code != 413 {
		t.Errorf("status %d, want 413 without reading the body", rec.Code)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("body was read") }

func TestInterrupted(t *testing.T) {
	e := newEnv(t, Config{})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", Path+"?"+q("type", "CELog", "name", "a.txt"), io.MultiReader(strings.NewReader("part"), errReader{}))
	e.h.ServeHTTP(rec, r)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "interrupted") {
		t.Errorf("status %d %q, want 400 upload interrupted", rec.Code, rec.Body.String())
	}
	if files := e.files(t); len(files) != 0 {
		t.Errorf("interrupted upload left %q", files)
	}
}

// TestNeverOverwrite uploads the same name at the same instant, in turn
// and concurrently: every upload gets its own file.
func TestNeverOverwrite(t *testing.T) {
	e := newEnv(t, Config{})
	query := q("type", "CELog", "name", "phone.clg", "mac", "0004f2123456")
	for i := range 3 {
		status, msg := e.post(t, query, strings.NewReader(fmt.Sprint(i)), "")
		want := "CELog/0004f2123456-" + stamp + "-phone.clg\n"
		if i > 0 {
			want = fmt.Sprintf("CELog/0004f2123456-%s-%d-phone.clg\n", stamp, i+1)
		}
		if status != 201 || msg != want {
			t.Errorf("upload %d: %d %q, want 201 %q", i, status, msg, want)
		}
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, httptest.NewRequest("POST", Path+"?"+query, strings.NewReader(fmt.Sprintf("c%d", i))))
			if rec.Code != 201 {
				t.Errorf("concurrent upload %d: %d %q", i, rec.Code, rec.Body.String())
			}
		})
	}
	wg.Wait()
	files := e.files(t)
	if len(files) != 3+n {
		t.Fatalf("%d files, want %d", len(files), 3+n)
	}
	seen := map[string]bool{}
	for _, c := range files {
		if seen[c] {
			t.Errorf("content %q stored twice: an upload was overwritten", c)
		}
		seen[c] = true
	}
}

func TestClean(t *testing.T) {
	e := newEnv(t, Config{Retention: 10 * 24 * time.Hour})
	e.post(t, q("type", "CELog", "name", "old.clg"), strings.NewReader("old"), "")
	e.clock.Set(t0.Add(24 * time.Hour))
	e.post(t, q("type", "Watson", "name", "new.dmp"), strings.NewReader("new"), "")
	// An interrupted upload's temporary file, and files that are not uploads.
	tmp := filepath.Join(e.dir, "CELog", ".tmp-"+stamp+"-0123456789abcdef")
	os.WriteFile(tmp, []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(e.dir, "CELog", "README.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(e.dir, "notes-"+stamp+"-x.txt"), nil, 0o644)
	oldName := "Logs/Client/CELog/127.0.0.1-" + stamp + "-old.clg"
	newName := "Logs/Client/Watson/127.0.0.1-20261122T120000.000Z-new.dmp"
	tests := []struct {
		now  time.Time
		want []string
	}{
		{t0.Add(30 * time.Minute), []string{oldName, newName, "Logs/Client/CELog/.tmp-" + stamp + "-0123456789abcdef"}},
		{t0.Add(2 * time.Hour), []string{oldName, newName}},
		{t0.Add(10 * 24 * time.Hour), []string{oldName, newName}},
		{t0.Add(10*24*time.Hour + time.Millisecond), []string{newName}},
		{t0.Add(11*24*time.Hour + time.Millisecond), nil},
	}
	for _, tt := range tests {
		if err := e.h.Clean(tt.now); err != nil {
			t.Fatalf("Clean(%v): %v", tt.now, err)
		}
		files := e.files(t)
		for _, keep := range []string{"Logs/Client/CELog/README.txt", "Logs/Client/notes-" + stamp + "-x.txt"} {
			if _, ok := files[keep]; !ok {
				t.Errorf("Clean(%v) removed %s", tt.now, keep)
			}
			delete(files, keep)
		}
		if len(files) != len(tt.want) {
			t.Errorf("Clean(%v) left %q, want %q", tt.now, files, tt.want)
		}
		for _, w := range tt.want {
			if _, ok := files[w]; !ok {
				t.Errorf("Clean(%v) removed %s", tt.now, w)
			}
		}
	}
}

// TestCleanWithAuditRun runs audit.Log.Run, in a synctest bubble, with the
// handler as one of its Cleaners, as the service does: Run's hourly cleanup
// removes the uploads older than the handler's Retention, keeps the fresh
// ones and gives their bytes back to MaxTotal.
func TestCleanWithAuditRun(t *testing.T) {
	base := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		// In the bubble time.Now is the fake clock that time.Sleep moves
		// on, so both the handler and the audit log use it (Now: nil).
		const retention = 2 * 24 * time.Hour
		dir := filepath.Join(base, "Client")
		h, err := NewHandler(Config{Dir: dir, Retention: retention, MaxTotal: 20})
		if err != nil {
			t.Fatalf("NewHandler: %v", err)
		}
		defer h.Close()
		upload := func(name, body string) (int, string) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", Path+"?"+q("type", "CELog", "name", name, "mac", "0004f2123456"), strings.NewReader(body)))
			return rec.Code, strings.TrimSuffix(rec.Body.String(), "\n")
		}
		start := time.Now()
		code, old := upload("old.clg", "old log") // 7 bytes, expires at start+48h
		if code != http.StatusCreated {
			t.Fatalf("upload of old.clg: status %d (%q), want 201", code, old)
		}
		time.Sleep(24 * time.Hour)
		code, fresh := upload("new.clg", "new log") // 7 bytes, expires at start+72h
		if code != http.StatusCreated {
			t.Fatalf("upload of new.clg: status %d (%q), want 201", code, fresh)
		}
		// 14 of 20 bytes are used: 10 more do not fit until a log expires.
		if code, msg := upload("big.clg", "0123456789"); code != http.StatusInsufficientStorage {
			t.Fatalf("upload of 10 bytes with 14 of 20 used: status %d (%q), want 507", code, msg)
		}

		l, err := audit.Open(audit.Config{Dir: filepath.Join(base, "Audit"), FlushInterval: time.Minute,
			Retention: retention, Cleaners: []audit.Cleaner{h}})
		if err != nil {
			t.Fatalf("audit.Open: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()

		// Run cleans at start (start+24h) and then every hour on the hour.
		tests := []struct {
			at   time.Duration // since the first upload
			want []string
			used int64
		}{
			{24 * time.Hour, []string{old, fresh}, 14},
			{48*time.Hour + 30*time.Minute, []string{old, fresh}, 14}, // old is exactly Retention old at the 48h cleanup
			{49*time.Hour + 30*time.Minute, []string{fresh}, 7},
			{73*time.Hour + 30*time.Minute, nil, 0},
		}
		for _, tt := range tests {
			time.Sleep(time.Until(start.Add(tt.at)))
			synctest.Wait()
			if got := storedLogs(t, dir); !slices.Equal(got, tt.want) {
				t.Errorf("after %v: stored %q, want %q", tt.at, got, tt.want)
			}
			if got := h.Used(); got != tt.used {
				t.Errorf("after %v: Used() = %d, want %d", tt.at, got, tt.used)
			}
		}
		if code, msg := upload("big.clg", "0123456789"); code != http.StatusCreated {
			t.Errorf("upload of 10 bytes after the cleanup: status %d (%q), want 201", code, msg)
		}

		cancel()
		<-done
		if err := l.Close(); err != nil {
			t.Errorf("audit Close: %v", err)
		}
	})
}

// storedLogs returns the files under dir, as "<type>/<name>", sorted.
func storedLogs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}

// TestAuditDevice checks that the MAC of an upload reaches the audit line.
func TestAuditDevice(t *testing.T) {
	base := t.TempDir()
	h, err := NewHandler(Config{Dir: filepath.Join(base, "Client"), Now: (&clocktest.Clock{T: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := audit.Open(audit.Config{Dir: filepath.Join(base, "Audit"), Now: (&clocktest.Clock{T: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Middleware(audit.Internal, h))
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+Path+"?"+q("type", "CELog", "name", "a.clg", "mac", "00:04:F2:AA:BB:CC"), "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(base, "Audit", audit.FileName(t0)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	got, err := audit.ParseLine(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	if got.Device != "0004f2aabbcc" || got.Status != 201 || got.Path != Path {
		t.Errorf("audit line %+v, want device 0004f2aabbcc, 201, %s", got, Path)
	}
}

func TestNewHandlerConfig(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{},
		{Dir: dir, Types: []string{"../x"}},
		{Dir: dir, Types: []string{".hidden"}},
		{Dir: dir, Types: []string{"a/b"}},
		{Dir: dir, Extensions: []string{"."}},
		{Dir: dir, Extensions: []string{"../txt"}},
	} {
		if h, err := NewHandler(cfg); err == nil {
			h.Close()
			t.Errorf("NewHandler(%+v) succeeded, want an error", cfg)
		}
	}
	h, err := NewHandler(Config{Dir: dir, Types: []string{"Crash"}, Extensions: []string{"LOG"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if fi, err := os.Stat(filepath.Join(dir, "Crash")); err != nil || !fi.IsDir() {
		t.Errorf("type folder not created: %v", err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", Path+"?type=crash&name=a.log", strings.NewReader("x")))
	if rec.Code != 201 {
		t.Errorf("extension without dot: %d %q, want 201", rec.Code, rec.Body.String())
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0004F2123456", "0004f2123456"},
		{"00:04:f2:12:34:56", "0004f2123456"},
		{"00-04-F2-12-34-56", "0004f2123456"},
		{"0004.f212.3456", "0004f2123456"},
		{"00:04-f2:12:34:56", ""},
		{"00::04:f2:12:34:56", ""},
		{":0004f2123456", ""},
		{"0004f212345", ""},
		{"0004f21234567", ""},
		{"0004f212345g", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := parseMAC(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("parseMAC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestCurl uploads with curl, as an operator or a test script would.
func TestCurl(t *testing.T) {
	curl := testtool.Need(t, "curl")
	e := newEnv(t, Config{})
	src := filepath.Join(t.TempDir(), "phone.clg")
	content := bytes.Repeat([]byte("CE log line\r\n"), 1000)
	os.WriteFile(src, content, 0o644)
	out, err := exec.CommandContext(t.Context(), curl, "-sS", "-w", " %{http_code}", "--data-binary", "@"+src,
		"-H", "Content-Type: application/octet-stream",
		e.srv.URL+Path+"?type=CELog&name=phone.clg&mac=0004f2123456").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	want := "CELog/0004f2123456-" + stamp + "-phone.clg\n 201"
	if string(out) != want {
		t.Fatalf("curl printed %q, want %q", out, want)
	}
	got, err := os.ReadFile(filepath.Join(e.dir, "CELog", "0004f2123456-"+stamp+"-phone.clg"))
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("stored file differs (err %v)", err)
	}
}

// TestMultipartRefused uses a real multipart body.
func TestMultipartRefused(t *testing.T) {
	e := newEnv(t, Config{})
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	fw.Write([]byte("x"))
	mw.Close()
	if status, _ := e.post(t, q("type", "CELog", "name", "a.txt"), &b, mw.FormDataContentType()); status != 415 {
		t.Errorf("multipart: status %d, want 415", status)
	}
}

// TestQuota fills MaxTotal: an upload that does not fit is refused with
// 507 and stores nothing, a chunked upload reserves MaxSize, refusals and
// failures give their reservation back, Clean frees space, and a new
// handler measures what is stored.
func TestQuota(t *testing.T) {
	e := newEnv(t, Config{MaxSize: 100, MaxTotal: 250})
	upload := func(n int, chunked bool) int {
		var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), n))
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		code, msg := e.post(t, q("type", "CELog", "name", "a.clg"), body, "")
		// A full storage says so, not "try again later": the device
		// should not retry at once.
		if want := ErrFull.Error() + "\n"; code == http.StatusInsufficientStorage && msg != want {
			t.Errorf("507 answer %q, want %q", msg, want)
		}
		return code
	}
	steps := []struct {
		n       int
		chunked bool
		want    int
		used    int64
	}{
		{100, false, http.StatusCreated, 100},
		{100, false, http.StatusCreated, 200},
		{60, false, http.StatusInsufficientStorage, 200},
		{1, true, http.StatusInsufficientStorage, 200}, // reserves MaxSize
		{50, false, http.StatusCreated, 250},
		{1, false, http.StatusInsufficientStorage, 250},
	}
	for i, s := range steps {
		if got := upload(s.n, s.chunked); got != s.want {
			t.Errorf("step %d: upload of %d bytes: status %d, want %d", i, s.n, got, s.want)
		}
		if got := e.h.Used(); got != s.used {
			t.Errorf("step %d: Used() = %d, want %d", i, got, s.used)
		}
	}
	if n := len(e.files(t)); n != 3 {
		t.Errorf("%d files stored, want 3", n)
	}
	// A new handler over the same folder counts the stored logs.
	h2, err := NewHandler(Config{Dir: e.dir, MaxTotal: 250})
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.Used(); got != 250 {
		t.Errorf("a new handler measures %d bytes, want 250", got)
	}
	h2.Close()
	// Clean after the retention frees the space.
	if err := e.h.Clean(t0.Add(DefaultRetention + time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := e.h.Used(); got != 0 {
		t.Errorf("Used() after Clean = %d, want 0", got)
	}
	if got := upload(100, true); got != http.StatusCreated {
		t.Errorf("chunked upload after Clean: status %d, want 201", got)
	}
	if got := e.h.Used(); got != 100 {
		t.Errorf("Used() after a chunked upload of 100 bytes = %d, want 100", got)
	}
	// A refused upload (too large) gives its reservation back.
	if got := upload(101, true); got != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked upload of 101 bytes: status %d, want 413", got)
	}
	if got := e.h.Used(); got != 100 {
		t.Errorf("Used() after a refused upload = %d, want 100", got)
	}
}

// fakeFloor is a floor whose room the test sets.
type fakeFloor struct {
	mu   sync.Mutex
	room int64
	err  error
}

func (f *fakeFloor) set(room int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.room, f.err = room, err
}

func (f *fakeFloor) Room() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.room, f.err
}

// TestFloor: an upload that would leave less free space than the floor,
// counting what the uploads in progress may still write, is refused with
// 507 and stores nothing.
func TestFloor(t *testing.T) {
	floor := &fakeFloor{}
	e := newEnv(t, Config{MaxSize: 1000, Floor: floor})
	upload := func(n int, chunked bool) (int, string) {
		var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), n))
		if chunked {
			body = io.MultiReader(body) // no length: reserves MaxSize
		}
		return e.post(t, q("type", "CELog", "name", "a.clg"), body, "")
	}
	steps := []struct {
		name    string
		room    int64
		err     error
		writing int64 // reserved by uploads in progress
		n       int
		chunked bool
		want    int
	}{
		{"room", 1000, nil, 0, 500, false, http.StatusCreated},
		{"exactly the room", 500, nil, 0, 500, false, http.StatusCreated},
		{"one byte over", 499, nil, 0, 500, false, http.StatusInsufficientStorage},
		{"below the floor", -100, nil, 0, 1, false, http.StatusInsufficientStorage},
		{"chunked reserves MaxSize", 999, nil, 0, 10, true, http.StatusInsufficientStorage},
		{"chunked with room for MaxSize", 1000, nil, 0, 10, true, http.StatusCreated},
		{"uploads in progress count", 1500, nil, 1000, 600, false, http.StatusInsufficientStorage},
		{"beside uploads in progress", 1500, nil, 1000, 500, false, http.StatusCreated},
		{"free space cannot be measured", 1 << 30, errors.New("statfs: I/O error"), 0, 1, false, http.StatusInternalServerError},
	}
	stored := 0
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			floor.set(s.room, s.err)
			if s.writing > 0 {
				if err := e.h.roomFor(s.writing); err != nil {
					t.Fatal(err)
				}
				defer e.h.writing.Add(-s.writing)
			}
			used := e.h.Used()
			code, msg := upload(s.n, s.chunked)
			if code != s.want {
				t.Fatalf("upload of %d bytes with %d bytes of room, %d being written: %d %q, want %d", s.n, s.room, s.writing, code, msg, s.want)
			}
			if code == http.StatusCreated {
				stored++
				return
			}
			if code == http.StatusInsufficientStorage && msg != ErrLowSpace.Error()+"\n" {
				t.Errorf("507 says %q, want %q (no figures for an anonymous client)", msg, ErrLowSpace.Error())
			}
			if got := e.h.Used(); got != used {
				t.Errorf("Used() after a refused upload = %d, want %d", got, used)
			}
		})
	}
	if got := e.h.writing.Load(); got != 0 {
		t.Errorf("%d bytes still reserved after every upload ended, want 0", got)
	}
	if n := len(e.files(t)); n != stored {
		t.Errorf("%d files stored, want %d", n, stored)
	}
}

// TestDiskFullUpload: an upload that meets a full disk is answered 507,
// not 500, and gives its space back.
func TestDiskFullUpload(t *testing.T) {
	base := testtool.TmpFS(t, 1<<20)
	h, err := NewHandler(Config{Dir: filepath.Join(base, "Logs", "Client"), MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(n int) (int, string) {
		resp, err := srv.Client().Post(srv.URL+Path+"?"+q("type", "CELog", "name", "a.clg"), "", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, msg := post(2 << 20); code != http.StatusInsufficientStorage || !strings.Contains(msg, "nearly full") {
		t.Errorf("upload larger than the disk = %d %q, want 507 saying the disk is full", code, msg)
	}
	if code, msg := post(512 << 10); code != http.StatusCreated {
		t.Errorf("upload after the refused one = %d %q, want 201: the refused one's space is given back", code, msg)
	}
}

// TestReconfigure: new limits apply to the next upload, a new type gets
// its folder, a dropped type's logs are still cleaned, what is stored
// stays counted, and a bad configuration changes nothing.
func TestReconfigure(t *testing.T) {
	e := newEnv(t, Config{MaxSize: 100, MaxTotal: 1000, Retention: 24 * time.Hour})
	upload := func(typ, name string, size int) int {
		code, _ := e.post(t, q("type", typ, "name", name), strings.NewReader(strings.Repeat("x", size)), "")
		return code
	}
	if code := upload("CELog", "a.clg", 100); code != http.StatusCreated {
		t.Fatalf("upload = %d, want 201", code)
	}
	if err := e.h.Reconfigure(Config{Types: []string{"Crash"}, Extensions: []string{"LOG"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.Reconfigure(Config{Types: []string{"../x"}}); err == nil {
		t.Error("Reconfigure with a type that cannot name a folder succeeded")
	}
	if code, body := e.post(t, q("type", "Crash", "name", "b.log"), strings.NewReader("crash"), ""); code != http.StatusCreated {
		t.Errorf("upload of the new type = %d %q, want 201", code, body)
	}
	if code := upload("CELog", "c.clg", 10); code != http.StatusBadRequest {
		t.Errorf("upload of a dropped type = %d, want 400", code)
	}
	if code := upload("Crash", "big.log", 101); code != http.StatusCreated {
		t.Errorf("upload over the old max_log_file_size = %d, want 201 (default MaxSize)", code)
	}
	if err := e.h.Reconfigure(Config{Types: []string{"Crash"}, Extensions: []string{".log"}, MaxTotal: 150, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if code := upload("Crash", "d.log", 1); code != http.StatusInsufficientStorage {
		t.Errorf("upload with MaxTotal below what is stored = %d, want 507", code)
	}
	// The dropped type's log is cleaned under the new retention.
	if err := e.h.Clean(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if files := e.files(t); len(files) != 0 {
		t.Errorf("Clean after an hour's retention left %q, want nothing", files)
	}
	if code := upload("Crash", "e.log", 1); code != http.StatusCreated {
		t.Errorf("upload after Clean made room = %d, want 201", code)
	}
}

// TestStats counts stored uploads and refusals by reason.
func TestStats(t *testing.T) {
	e := newEnv(t, Config{MaxSize: 10})
	e.post(t, q("type", "CELog", "name", "a.clg"), strings.NewReader("12345"), "")
	e.post(t, q("type", "CELog", "name", "b.clg"), strings.NewReader("12345678901"), "")
	e.post(t, q("type", "Nope", "name", "c.clg"), strings.NewReader("1"), "")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	got := e.h.Stats()
	if got.Stored != 1 || got.StoredBytes != 5 {
		t.Errorf("Stats: stored %d (%d bytes), want 1 (5 bytes)", got.Stored, got.StoredBytes)
	}
	want := map[string]uint64{"too_large": 1, "invalid": 1, "method": 1}
	for _, r := range Refusals {
		if got.Refused[r] != want[r] {
			t.Errorf("Stats: refused %s = %d, want %d", r, got.Refused[r], want[r])
		}
	}
}
