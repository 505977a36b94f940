package simclock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

func TestClockNeverGoesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	c, err := Create(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		set   time.Time
		moved bool
		want  time.Time
	}{
		{t0.Add(time.Hour), true, t0.Add(time.Hour)},
		{t0, false, t0.Add(time.Hour)},
		{t0.Add(time.Hour), false, t0.Add(time.Hour)},
		{t0.Add(48*time.Hour + time.Nanosecond), true, t0.Add(48*time.Hour + time.Nanosecond)},
	}
	for _, s := range steps {
		if moved := c.Set(s.set); moved != s.moved || !c.Now().Equal(s.want) {
			t.Errorf("Set(%v) = %v, then Now = %v; want %v, %v", s.set, moved, c.Now(), s.moved, s.want)
		}
	}
	// Created again with an earlier start, it keeps its later time; with a
	// later one, it moves.
	again, err := Create(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, want := again.Now(), t0.Add(48*time.Hour+time.Nanosecond); !got.Equal(want) {
		t.Errorf("Create with an earlier start: Now = %v, want %v (the file's)", got, want)
	}
	later := t0.Add(100 * time.Hour)
	third, err := Create(path, later)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if !c.Now().Equal(later) || c.Now().Location() != time.UTC {
		t.Errorf("another mapping reads %v, want %v in UTC", c.Now(), later)
	}
}

// TestClockConcurrentSets: whatever order concurrent Sets land in, the
// clock ends at the latest.
func TestClockConcurrentSets(t *testing.T) {
	c, err := Create(filepath.Join(t.TempDir(), "clock"), t0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				c.Set(t0.Add(time.Duration(i*4+g) * time.Second))
				if c.Now().Before(t0) {
					t.Error("the clock went back")
				}
			}
		})
	}
	wg.Wait()
	if want := t0.Add(3999 * time.Second); !c.Now().Equal(want) {
		t.Errorf("after concurrent Sets: %v, want %v", c.Now(), want)
	}
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte("2026-11-23T06:00:00Z\n")},
		{"wrong magic", []byte("ODUSCLK2\x00\x00\x00\x00\x00\x00\x00\x00")},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); !errors.Is(err, ErrNotClock) {
			t.Errorf("Open(%s) = %v, want ErrNotClock", c.name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}

// TestClockAcrossProcesses: a clock set in this process is read at once in
// another (this test binary as TestChildReader).
func TestClockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	c, err := Create(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildReader$")
	cmd.Env = append(os.Environ(), "SIMCLOCK_CHILD="+path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	lines := bufio.NewScanner(out)
	read := func() string {
		t.Helper()
		for lines.Scan() {
			if s, ok := strings.CutPrefix(lines.Text(), "now "); ok {
				return s
			}
		}
		t.Fatalf("the child ended: %v", lines.Err())
		return ""
	}
	for _, at := range []time.Time{t0, t0.Add(36 * time.Hour), t0.Add(36*time.Hour + time.Millisecond)} {
		c.Set(at)
		fmt.Fprintln(in, "now?")
		if got, want := read(), at.Format(time.RFC3339Nano); got != want {
			t.Errorf("the other process reads %s, want %s", got, want)
		}
	}
}

// TestChildReader is not a test: it is the other process of
// TestClockAcrossProcesses, which answers each line on stdin with the
// clock's time.
func TestChildReader(t *testing.T) {
	path := os.Getenv("SIMCLOCK_CHILD")
	if path == "" {
		t.Skip("the reader process of TestClockAcrossProcesses")
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Printf("now %s\n", c.Now().Format(time.RFC3339Nano))
	}
}
