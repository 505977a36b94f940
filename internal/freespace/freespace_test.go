package freespace

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// fakeFS is a file system whose free space the test sets.
type fakeFS struct {
	free int64
	err  error
}

func (fs *fakeFS) stat(string) (Usage, error) { return Usage{Free: fs.free, Total: 100 << 20}, fs.err }

func TestRoomAndAllow(t *testing.T) {
	tests := []struct {
		name      string
		min, free int64
		n         int64 // for Allow
		wantRoom  int64
		wantLow   bool // Allow(n) is ErrLow
	}{
		{"no floor", 0, 0, 1 << 40, math.MaxInt64, false},
		{"negative floor is none", -1, 0, 1, math.MaxInt64, false},
		{"plenty", 10 << 20, 50 << 20, 1 << 20, 40 << 20, false},
		{"fits exactly", 10 << 20, 11 << 20, 1 << 20, 1 << 20, false},
		{"one byte too many", 10 << 20, 11 << 20, 1<<20 + 1, 1 << 20, true},
		{"at the floor", 10 << 20, 10 << 20, 0, 0, false},
		{"at the floor, one byte", 10 << 20, 10 << 20, 1, 0, true},
		{"below the floor", 10 << 20, 4 << 20, 1, -6 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(Config{Dir: "/data", Min: tt.min})
			f.stat = (&fakeFS{free: tt.free}).stat
			room, err := f.Room()
			if err != nil || room != tt.wantRoom {
				t.Errorf("Room() = %d, %v; want %d, nil", room, err, tt.wantRoom)
			}
			err = f.Allow(tt.n)
			if got := errors.Is(err, ErrLow); got != tt.wantLow {
				t.Errorf("Allow(%d) = %v; want ErrLow: %v", tt.n, err, tt.wantLow)
			}
		})
	}
}

func TestMeasuringError(t *testing.T) {
	f := New(Config{Dir: "/data", Min: 1})
	f.stat = (&fakeFS{err: errors.New("I/O error")}).stat
	if _, err := f.Room(); err == nil || !strings.Contains(err.Error(), "I/O error") {
		t.Errorf("Room() error = %v, want the statfs error", err)
	}
	if err := f.Allow(1); err == nil || errors.Is(err, ErrLow) {
		t.Errorf("Allow(1) = %v, want the statfs error, not ErrLow", err)
	}
	// A system where free space cannot be measured has no floor, said once.
	var logged bytes.Buffer
	f = New(Config{Dir: "/data", Min: 1, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	f.stat = (&fakeFS{err: errors.ErrUnsupported}).stat
	for range 3 {
		if room, err := f.Room(); room != math.MaxInt64 || err != nil {
			t.Errorf("Room() unsupported = %d, %v; want unlimited", room, err)
		}
	}
	if n := strings.Count(logged.String(), "cannot be measured"); n != 1 {
		t.Errorf("logged %d times that free space cannot be measured, want once:\n%s", n, logged.String())
	}
}

// TestStateChangesLoggedOnce: crossing the floor is logged once each way,
// however often the floor is asked.
func TestStateChangesLoggedOnce(t *testing.T) {
	var logged bytes.Buffer
	f := New(Config{Dir: "/data", Min: 10, What: "uploads", Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	fs := &fakeFS{free: 100}
	f.stat = fs.stat
	for _, free := range []int64{100, 50, 9, 5, 1, 10, 11, 200, 3, 3} {
		fs.free = free
		f.Room()
	}
	got := logged.String()
	if n := strings.Count(got, "level=ERROR msg=\"freespace: free disk space is below the floor: uploads are refused"); n != 2 {
		t.Errorf("logged going below the floor %d times, want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "level=WARN msg=\"freespace: free disk space is above the floor again: uploads are accepted"); n != 1 {
		t.Errorf("logged going above the floor %d times, want 1:\n%s", n, got)
	}
}

// TestStatReal measures a real small file system as it fills.
func TestStatReal(t *testing.T) {
	const size = 4 << 20
	dir := testtool.TmpFS(t, size)
	before, err := Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before.Total != size || before.Free != size {
		t.Errorf("Stat of an empty %d-byte tmpfs = %+v, want all of it free", size, before)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := before.Free - after.Free; got != 1<<20 {
		t.Errorf("writing 1 MiB took %d bytes of free space, want %d", got, 1<<20)
	}
	f := New(Config{Dir: dir, Min: 2 << 20})
	if err := f.Allow(1 << 20); err != nil {
		t.Errorf("Allow(1 MiB) with 3 MiB free and a 2 MiB floor = %v, want nil", err)
	}
	if err := f.Allow(1<<20 + 1); !errors.Is(err, ErrLow) {
		t.Errorf("Allow(1 MiB + 1) = %v, want ErrLow", err)
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {812, "812 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"}, {256 << 20, "256 MiB"},
		{3 << 29, "1.5 GiB"}, {-6 << 20, "-6 MiB"}, {math.MaxInt64, "8 EiB"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestSetMin: a new floor applies to the next question.
func TestSetMin(t *testing.T) {
	f := New(Config{Dir: "/data", Min: 10 << 20})
	f.stat = (&fakeFS{free: 50 << 20}).stat
	if err := f.Allow(1 << 20); err != nil {
		t.Fatalf("Allow under the old floor = %v", err)
	}
	f.SetMin(60 << 20)
	if f.Min() != 60<<20 {
		t.Errorf("Min() = %d, want %d", f.Min(), 60<<20)
	}
	if err := f.Allow(1); !errors.Is(err, ErrLow) || !strings.Contains(err.Error(), "the floor is 60 MiB") {
		t.Errorf("Allow under the raised floor = %v, want ErrLow naming 60 MiB", err)
	}
	f.SetMin(0)
	if room, err := f.Room(); err != nil || room != math.MaxInt64 {
		t.Errorf("Room() without a floor = %d, %v; want unlimited", room, err)
	}
}
