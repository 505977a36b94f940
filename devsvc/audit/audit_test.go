package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/internal/clocktest"
)

var day1 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// openLog opens a Log in a temporary directory and closes it at the end.
func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "Logs", "Server", "Audit", "imageUpdates")
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readDay returns the lines of a day file, checking its header and that
// every line parses.
func readDay(t *testing.T, dir, name string) []Entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	rest, ok := strings.CutPrefix(string(data), header)
	if !ok {
		t.Fatalf("%s does not start with the header: %q", name, data)
	}
	if rest != "" && !strings.HasSuffix(rest, "\n") {
		t.Fatalf("%s ends in a partial line: %q", name, rest)
	}
	var out []Entry
	sc := bufio.NewScanner(strings.NewReader(rest))
	for sc.Scan() {
		e, err := ParseLine(sc.Text())
		if err != nil {
			t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestLineFormat(t *testing.T) {
	base := Entry{Time: time.Date(2026, 11, 21, 22, 25, 50, 123456789, time.UTC), Remote: "10.0.0.5:51234",
		Listener: Internal, Method: "POST", Path: "/RequestHandler/ucdevice.upx", Status: 200, Bytes: 1234,
		Duration: 532*time.Microsecond + 999*time.Nanosecond}
	with := func(f func(*Entry)) Entry { e := base; f(&e); return e }
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"anonymous check-in", base,
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /RequestHandler/ucdevice.upx 200 1234 532 -\n"},
		{"user and device", with(func(e *Entry) { e.Listener, e.User, e.Device = External, `CONTOSO\alice`, "00:04:F2:12:34:56" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 external CONTOSO\\alice POST /RequestHandler/ucdevice.upx 200 1234 532 00:04:F2:12:34:56\n"},
		{"other time zone is written in UTC", with(func(e *Entry) { e.Time = time.Date(2026, 11, 22, 1, 0, 0, 0, time.FixedZone("X", 3*3600)) }),
			"2026-11-21T22:00:00.000Z 10.0.0.5:51234 internal - POST /RequestHandler/ucdevice.upx 200 1234 532 -\n"},
		{"forged line in the path", with(func(e *Entry) {
			e.Path = "/x 200 0 0 -\n2026-11-21T00:00:00.000Z 1.2.3.4:1 internal admin GET /y"
		}), "2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /x%20200%200%200%20-%0A2026-11-21T00:00:00.000Z%201.2.3.4:1%20internal%20admin%20GET%20/y 200 1234 532 -\n"},
		{"control characters, tab, CR, NUL, DEL", with(func(e *Entry) { e.User = "a\tb\rc\x00d\x7fe\x1b[31m" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal a%09b%0Dc%00d%7Fe%1B[31m POST /RequestHandler/ucdevice.upx 200 1234 532 -\n"},
		{"percent is escaped", with(func(e *Entry) { e.Path = "/a%20b" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /a%2520b 200 1234 532 -\n"},
		{"non-ASCII and bidi override", with(func(e *Entry) { e.User = "Jöns\u202e" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal J%C3%B6ns%E2%80%AE POST /RequestHandler/ucdevice.upx 200 1234 532 -\n"},
		{"invalid UTF-8", with(func(e *Entry) { e.Device = "\xff\xfe" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /RequestHandler/ucdevice.upx 200 1234 532 %FF%FE\n"},
		{"a lone dash is not empty", with(func(e *Entry) { e.User = "-" }),
			"2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal %2D POST /RequestHandler/ucdevice.upx 200 1234 532 -\n"},
		{"empty fields", Entry{Time: base.Time, Status: 400},
			"2026-11-21T22:25:50.123Z - - - - - 400 0 0 -\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendLine(nil, &tt.e))
			if got != tt.want {
				t.Fatalf("AppendLine = %q\nwant %q", got, tt.want)
			}
			if n := strings.Count(got, "\n"); n != 1 {
				t.Errorf("line has %d newlines, want 1", n)
			}
			for i := 0; i < len(got)-1; i++ {
				if c := got[i]; c < 0x20 || c > 0x7e {
					t.Errorf("line has byte %#x at %d", c, i)
				}
			}
			back, err := ParseLine(got)
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", got, err)
			}
			want := tt.e
			want.Time = want.Time.UTC().Truncate(time.Millisecond)
			want.Duration = want.Duration.Truncate(time.Microsecond)
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("ParseLine(AppendLine(e)) differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLineRejects(t *testing.T) {
	good := "2026-11-21T22:25:50.123Z 10.0.0.5:51234 internal - POST /p 200 1234 532 -"
	if _, err := ParseLine(good); err != nil {
		t.Fatalf("ParseLine(%q): %v", good, err)
	}
	for _, line := range []string{
		"",
		"#Fields: time remote listener user method path status bytes duration_us device",
		strings.Replace(good, " - POST", "  POST", 1),
		strings.Replace(good, "/p", "/p x", 1),
		strings.Replace(good, "/p", "/%zz", 1),
		strings.Replace(good, "/p", "/%2", 1),
		strings.Replace(good, "/p", "/%41", 1),      // needless escape
		strings.Replace(good, "/p", "/\xc3\xb6", 1), // raw non-ASCII
		strings.Replace(good, "200", "-1", 1),
		strings.Replace(good, "200", "0200", 1),
		strings.Replace(good, "200", "1000", 1),
		strings.Replace(good, " 1234 ", " +1234 ", 1),
		strings.Replace(good, "2026-11-21T22:25:50.123Z", "2026-11-21T22:25:50Z", 1),
	} {
		if e, err := ParseLine(line); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseLine(%q) = %+v, %v; want ErrSyntax", line, e, err)
		}
	}
}

func TestMiddleware(t *testing.T) {
	clock := &clocktest.Clock{T: day1, Step: 250 * time.Microsecond}
	l := openLog(t, Config{Now: clock.Now})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /RequestHandler/ucdevice.upx", func(w http.ResponseWriter, r *http.Request) {
		SetDevice(r.Context(), "00:04:f2:12:34:56")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "<downloads>0</downloads>")
	})
	mux.HandleFunc("GET /DeviceUpdateFiles_Int/a.nbt", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "a.nbt", day1, strings.NewReader(strings.Repeat("x", 100000)))
	})
	mux.HandleFunc("GET /silent", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part")
		w.(http.Flusher).Flush()
	})
	srv := httptest.NewServer(l.Middleware(Internal, mux))
	defer srv.Close()

	tests := []struct {
		method, path string
		wantStatus   int
		wantBytes    int64
		wantDevice   string
		wantPath     string
	}{
		{"POST", "/RequestHandler/ucdevice.upx", 201, 24, "00:04:f2:12:34:56", ""},
		{"GET", "/DeviceUpdateFiles_Int/a.nbt", 200, 100000, "", ""},
		{"HEAD", "/DeviceUpdateFiles_Int/a.nbt", 200, 0, "", ""},
		{"GET", "/silent", 200, 0, "", ""},
		{"GET", "/flush", 200, 4, "", ""},
		{"GET", "/missing%20file%0A2026", 404, 19, "", "/missing file\n2026"},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := readDay(t, l.cfg.Dir, "imageUpdates-2026-11-21.log")
	if len(got) != len(tests) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(tests), got)
	}
	for i, tt := range tests {
		e := got[i]
		wantPath := tt.wantPath
		if wantPath == "" {
			wantPath = tt.path
		}
		if e.Method != tt.method || e.Path != wantPath || e.Status != tt.wantStatus || e.Bytes != tt.wantBytes ||
			e.Device != tt.wantDevice || e.Listener != Internal || e.User != "" || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
			t.Errorf("line %d = %+v, want %s %q %d %d bytes device %q from 127.0.0.1", i, e, tt.method, wantPath, tt.wantStatus, tt.wantBytes, tt.wantDevice)
		}
		if e.Duration != 250*time.Microsecond {
			t.Errorf("line %d: duration %v, want 250µs (one clock step)", i, e.Duration)
		}
	}
}

func TestMiddlewarePanic(t *testing.T) {
	l := openLog(t, Config{Now: (&clocktest.Clock{T: day1}).Now})
	h := l.Middleware(External, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's panic to continue", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}()
	l.Close()
	got := readDay(t, l.cfg.Dir, "imageUpdates-2026-11-21.log")
	if len(got) != 1 || got[0].Status != 500 || got[0].Listener != External {
		t.Errorf("lines = %+v, want one 500 on external", got)
	}
}

func TestSetDeviceOutsideMiddleware(t *testing.T) {
	SetDevice(context.Background(), "00:11:22:33:44:55") // must not panic
	rec := httptest.NewRecorder()
	CaptureUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })).
		ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 204 {
		t.Errorf("CaptureUser without Middleware: status %d, want 204", rec.Code)
	}
}

func TestBuffered(t *testing.T) {
	l := openLog(t, Config{Now: (&clocktest.Clock{T: day1}).Now, MaxCache: 1000})
	h := l.Middleware(Internal, http.NotFoundHandler())
	name := filepath.Join(l.cfg.Dir, FileName(day1))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/a", nil))
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after one line the file exists (err %v): lines must be buffered", err)
	}
	n := 0
	for ; n < 100; n++ {
		if _, err := os.Stat(name); err == nil {
			break
		}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/a", nil))
	}
	// Each line is about 80 bytes, so the file appears after about 1000 bytes.
	if n < 5 || n > 20 {
		t.Errorf("file appeared after %d more lines, want it when 1000 bytes are pending", n)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readDay(t, l.cfg.Dir, FileName(day1)); len(got) != n+1 {
		t.Errorf("%d lines after Flush, want %d", len(got), n+1)
	}
}

func TestRotationAtMidnight(t *testing.T) {
	clock := &clocktest.Clock{}
	l := openLog(t, Config{Now: clock.Now})
	h := l.Middleware(Internal, http.NotFoundHandler())
	times := []time.Time{
		time.Date(2026, 11, 21, 23, 59, 59, 900e6, time.UTC),
		time.Date(2026, 11, 22, 0, 0, 0, 100e6, time.UTC),
		time.Date(2026, 11, 22, 23, 59, 59, 999e6, time.UTC),
		time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		clock.Set(tm)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/%d", i), nil))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"imageUpdates-2026-11-21.log": {"/0"},
		"imageUpdates-2026-11-22.log": {"/1", "/2"},
		"imageUpdates-2026-11-23.log": {"/3"},
	}
	ents, _ := os.ReadDir(l.cfg.Dir)
	if len(ents) != len(want) {
		t.Errorf("%d files, want %d", len(ents), len(want))
	}
	for name, paths := range want {
		var got []string
		for _, e := range readDay(t, l.cfg.Dir, name) {
			if FileName(e.Time) != name {
				t.Errorf("%s holds a line of %v", name, e.Time)
			}
			got = append(got, e.Path)
		}
		if !slices.Equal(got, paths) {
			t.Errorf("%s: paths %q, want %q", name, got, paths)
		}
	}
}

func TestAppendToExistingFile(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		l := openLog(t, Config{Dir: dir, Now: (&clocktest.Clock{T: day1}).Now})
		l.Middleware(Internal, http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := readDay(t, dir, FileName(day1)); len(got) != 2 {
		t.Errorf("%d lines after two runs, want 2 (one header)", len(got))
	}
}

func TestCloseTwiceAndLateLines(t *testing.T) {
	l := openLog(t, Config{Now: (&clocktest.Clock{T: day1}).Now})
	h := l.Middleware(Internal, http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/before", nil))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/after", nil))
	got := readDay(t, l.cfg.Dir, FileName(day1))
	if len(got) != 2 || got[1].Path != "/after" {
		t.Errorf("lines = %+v, want /before and /after (written at once after Close)", got)
	}
}

// cleanerFunc adapts a function to Cleaner.
type cleanerFunc func(time.Time) error

func (f cleanerFunc) Clean(now time.Time) error { return f(now) }

func TestClean(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		"imageUpdates-2026-11-01.log",
		"imageUpdates-2026-11-10.log",
		"imageUpdates-2026-11-11.log",
		"imageUpdates-2026-11-12.log",
		"imageUpdates-2026-11-21.log",
		"imageUpdates-garbage.log",
		"notes.txt",
		"imageUpdates-2026-11-01.log.bak",
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(header), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := openLog(t, Config{Dir: dir, Retention: 10 * 24 * time.Hour})
	// The 11th ended at 2026-11-12T00:00Z; ten days later is the 22nd.
	tests := []struct {
		now  time.Time
		gone []string
	}{
		{time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), []string{"imageUpdates-2026-11-01.log", "imageUpdates-2026-11-10.log"}},
		{time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC), nil},
		{time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), []string{"imageUpdates-2026-11-11.log"}},
		{time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), nil},
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), []string{"imageUpdates-2026-11-12.log"}},
	}
	present := func() map[string]bool {
		m := map[string]bool{}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			m[e.Name()] = true
		}
		return m
	}
	for _, tt := range tests {
		before := present()
		if err := l.Clean(tt.now); err != nil {
			t.Fatalf("Clean(%v): %v", tt.now, err)
		}
		after := present()
		var gone []string
		for _, f := range files {
			if before[f] && !after[f] {
				gone = append(gone, f)
			}
		}
		if !slices.Equal(gone, tt.gone) {
			t.Errorf("Clean(%v) removed %q, want %q", tt.now, gone, tt.gone)
		}
	}
	for _, f := range files[4:] {
		if !present()[f] {
			t.Errorf("%s was removed", f)
		}
	}
}

func TestCleanKeepsOpenFile(t *testing.T) {
	clock := &clocktest.Clock{T: day1}
	l := openLog(t, Config{Now: clock.Now, Retention: 24 * time.Hour})
	l.Middleware(Internal, http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	l.Flush()
	// A clock jumping far ahead must not delete the file being written.
	if err := l.Clean(day1.Add(100 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.cfg.Dir, FileName(day1))); err != nil {
		t.Errorf("open day file removed: %v", err)
	}
}

// TestRun runs Run in a synctest bubble over twelve fake days: lines reach
// the file within FlushInterval, day files rotate, and expired files and
// the cleaners' are removed.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		old := filepath.Join(dir, "imageUpdates-1999-12-01.log")
		os.WriteFile(old, []byte(header), 0o644)
		var mu sync.Mutex
		var cleaned []time.Time
		l, err := Open(Config{Dir: dir, FlushInterval: time.Minute, Retention: 10 * 24 * time.Hour,
			Cleaners: []Cleaner{cleanerFunc(func(now time.Time) error {
				mu.Lock()
				cleaned = append(cleaned, now)
				mu.Unlock()
				return nil
			})}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		synctest.Wait()
		if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("expired file still there at start: %v", err)
		}

		h := l.Middleware(Internal, http.NotFoundHandler())
		start := time.Now()
		first := FileName(start)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/first", nil))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := readDay(t, dir, first); len(got) != 1 || got[0].Path != "/first" {
			t.Fatalf("after one flush interval: %+v, want the line on disk", got)
		}

		// One request a day for twelve days.
		for range 12 {
			time.Sleep(24 * time.Hour)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/daily", nil))
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if _, err := os.Stat(filepath.Join(dir, first)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("first day's file kept after 12 days: %v", err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) < 10 || len(ents) > 12 {
			t.Errorf("%d day files after 12 days with 10 days retention, want 10 to 12", len(ents))
		}
		mu.Lock()
		n := len(cleaned)
		mu.Unlock()
		if want := 12*24 + 2; n < want-1 || n > want+1 {
			t.Errorf("cleaners ran %d times in about %d hours, want once an hour", n, want)
		}
		cancel()
		<-done
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentWriters hammers one Log from many goroutines across
// midnight with a small cache, so that flushes, rotation and appends race.
func TestConcurrentWriters(t *testing.T) {
	const writers, each = 8, 500
	clock := &clocktest.Clock{T: time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC), Step: 500 * time.Microsecond}
	l := openLog(t, Config{Now: clock.Now, MaxCache: 4096})
	h := l.Middleware(Internal, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetDevice(r.Context(), r.URL.Query().Get("mac"))
		io.WriteString(w, "ok")
	}))
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/w%d/%d?mac=%02x", g, i, g), nil))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			l.Flush()
		}
	})
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range []string{"imageUpdates-2026-11-21.log", "imageUpdates-2026-11-22.log"} {
		for _, e := range readDay(t, l.cfg.Dir, name) {
			if seen[e.Path] {
				t.Errorf("%s logged twice", e.Path)
			}
			seen[e.Path] = true
			var g, i int
			fmt.Sscanf(e.Path, "/w%d/%d", &g, &i)
			if want := fmt.Sprintf("%02x", g); e.Device != want {
				t.Errorf("%s: device %q, want %q", e.Path, e.Device, want)
			}
		}
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct lines, want %d", len(seen), writers*each)
	}
}

// TestWriteFailure makes the day file unopenable: the lines are dropped,
// counted and reported, and later days are written again.
func TestWriteFailure(t *testing.T) {
	var logged strings.Builder
	clock := &clocktest.Clock{T: day1}
	l := openLog(t, Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err := os.Mkdir(filepath.Join(l.cfg.Dir, FileName(day1)), 0o755); err != nil {
		t.Fatal(err)
	}
	h := l.Middleware(Internal, http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/lost", nil))
	if err := l.Flush(); err == nil {
		t.Error("Flush succeeded with a directory in the way of the day file")
	}
	if !strings.Contains(logged.String(), "lines lost") || !strings.Contains(logged.String(), "lines=1") {
		t.Errorf("log = %q, want a report of 1 line lost", logged.String())
	}
	clock.Set(day1.Add(24 * time.Hour))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/kept", nil))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readDay(t, l.cfg.Dir, FileName(day1.Add(24*time.Hour))); len(got) != 1 || got[0].Path != "/kept" {
		t.Errorf("next day: %+v, want /kept", got)
	}
}

// TestReconfigure runs Run in a synctest bubble and changes the flush
// interval and the retention under it: lines reach the file on the new
// interval, and a shorter retention removes the older files at once.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l, err := Open(Config{Dir: dir, FlushInterval: time.Hour, Retention: 10 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		old := filepath.Join(dir, FileName(time.Now().Add(-3*24*time.Hour)))
		os.WriteFile(old, []byte(header), 0o644)
		synctest.Wait()

		l.Reconfigure(24*time.Hour, time.Minute)
		synctest.Wait()
		if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a file 3 days old kept after the retention became 1 day: %v", err)
		}
		h := l.Middleware(Internal, http.NotFoundHandler())
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/line", nil))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := readDay(t, dir, FileName(time.Now())); len(got) != 1 {
			t.Errorf("a minute after the flush interval became 1m: %d lines on disk, want 1", len(got))
		}
		cancel()
		<-done
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
