package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/internal/testtool"
)

// fakeFloor is a floor whose room the test sets.
type fakeFloor struct {
	mu   sync.Mutex
	room int64
}

func (f *fakeFloor) set(room int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.room = room
}

func (f *fakeFloor) Room() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.room, nil
}

// syncLog is a log destination safe for concurrent use.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func entry(clock *clocktest.Clock, i int) *Entry {
	return &Entry{Time: clock.Now(), Remote: "10.0.0.5:5000", Listener: Internal, Method: "POST",
		Path: fmt.Sprintf("/line%03d", i), Status: 200}
}

// TestFloor: lines that do not fit above the floor are dropped whole (never
// a torn line), counted, and reported at once, then at most once a minute,
// and the rest at Close; writing again is reported once.
func TestFloor(t *testing.T) {
	var logged syncLog
	clock := &clocktest.Clock{T: day1}
	floor := &fakeFloor{room: 1 << 30}
	l := openLog(t, Config{Now: clock.Now, Floor: floor, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	lineLen := int64(len(AppendLine(nil, entry(&clocktest.Clock{T: day1}, 0))))
	next := 0
	steps := []struct {
		name      string
		room      int64
		lines     int
		advance   time.Duration
		wantFile  int    // lines in the day file after the flush
		wantLog   string // a message logged by this step, "" for none
		wantLines string // its lines= attribute
	}{
		{"room", 1 << 30, 3, 0, 3, "", ""},
		{"room for two of three", 2*lineLen + lineLen/2, 3, 0, 5, "audit: lines lost", "lines=1"},
		{"below the floor, within the minute", 0, 2, 30 * time.Second, 5, "", ""},
		{"below the floor, a minute later", -100, 1, 31 * time.Second, 5, "audit: lines lost", "lines=3"},
		{"room again", 1 << 30, 1, 0, 6, "audit: lines are written again", "lost=0"},
		{"below the floor again: said at once", 0, 1, time.Second, 6, "audit: lines lost", "lines=1"},
		{"still below", 0, 2, time.Second, 6, "", ""},
	}
	for _, s := range steps {
		before := len(logged.String())
		floor.set(s.room)
		clock.Advance(s.advance)
		for range s.lines {
			l.add(entry(clock, next))
			next++
		}
		if err := l.Flush(); err != nil {
			t.Errorf("%s: Flush = %v, want nil (lines dropped for the floor are reported, not errors)", s.name, err)
		}
		if got := len(readDay(t, l.cfg.Dir, FileName(day1))); got != s.wantFile {
			t.Errorf("%s: %d lines in the file, want %d", s.name, got, s.wantFile)
		}
		said := logged.String()[before:]
		switch {
		case s.wantLog == "" && said != "":
			t.Errorf("%s: logged %q, want nothing", s.name, said)
		case s.wantLog != "" && (!strings.Contains(said, s.wantLog) || !strings.Contains(said, s.wantLines)):
			t.Errorf("%s: logged %q, want %q with %s", s.name, said, s.wantLog, s.wantLines)
		}
	}
	before := len(logged.String())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if said := logged.String()[before:]; !strings.Contains(said, "level=ERROR") || !strings.Contains(said, "closing with lines that could not be written") ||
		!strings.Contains(said, "lines=2") || !strings.Contains(said, "lost_total=7") {
		t.Errorf("Close logged %q, want the 2 lines not reported yet, 7 in all", said)
	}
}

// TestDiskFullNoTornLine fills a real small file system: a write that
// fails part way is cut back to its last whole line, the lost lines are
// counted, and once space is freed lines are written again.
func TestDiskFullNoTornLine(t *testing.T) {
	dir := testtool.TmpFS(t, 256<<10)
	var logged syncLog
	clock := &clocktest.Clock{T: day1}
	l := openLog(t, Config{Dir: filepath.Join(dir, "audit"), Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	l.add(entry(clock, 0))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	// Fill the disk, then free one page and a half of a line's worth.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	fi, _ := f.Stat()
	if err := f.Truncate(fi.Size() - 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	const n = 200 // about 14 KiB of lines: more than a page
	for i := 1; i <= n; i++ {
		l.add(entry(clock, i))
	}
	err = l.Flush()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Flush on a full disk = %v, want ENOSPC", err)
	}
	written := len(readDay(t, l.cfg.Dir, FileName(day1))) // fails on a torn line
	if written <= 1 || written >= n+1 {
		t.Errorf("%d lines written on a disk with a page free, want some but not all of %d", written, n+1)
	}
	if l.dropped != int64(n+1-written) {
		t.Errorf("%d lines counted lost, want %d", l.dropped, n+1-written)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	l.add(entry(clock, n+1))
	if err := l.Close(); err != nil {
		t.Fatalf("Close after space was freed = %v", err)
	}
	// The root stays open after Close, for lines of requests still
	// running; close it so that the file system can be unmounted.
	l.root.Close()
	if got := len(readDay(t, l.cfg.Dir, FileName(day1))); got != written+1 {
		t.Errorf("%d lines after space was freed, want %d", got, written+1)
	}
	if !strings.Contains(logged.String(), "audit: lines are written again") {
		t.Errorf("no report of writing again:\n%s", logged.String())
	}
}
