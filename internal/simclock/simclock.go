// Package simclock is a clock that one process sets and others read: the
// simulated time a fleet simulator (package simulator, device-sim) drives
// and the service it rehearses with (devsvc serve --simulated-clock) runs
// on, so that rollouts, waves, windows and alarms play out over simulated
// days in seconds, on the same time line as the simulated devices.
//
// The clock is a small file, mapped into the memory of every process that
// opens it: a magic number and the time in nanoseconds since the Unix
// epoch, 8 bytes, which Set stores and Now loads atomically. A read costs
// a few nanoseconds and no system call, so the service's hot path may ask
// it at every check-in; a write is seen by every reader at once.
//
// The time never goes back: Set ignores an earlier time, and Create keeps
// the file's time when it is later than the one asked for. It stands still
// between Sets: time passes only as the simulator moves it.
//
// It is for rehearsals only. Nothing in a production service opens one:
// devsvc serve takes it from a hidden flag, refuses it unless every
// listener is on loopback, and says so in its log and in devsvc status.
package simclock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// magic starts a clock file.
const magic = "ODUSCLK1"

// size is a clock file's size: the magic and the time, each 8 bytes, the
// time at an offset aligned for atomic access in the mapping.
const size = 16

// ErrNotClock is returned by Open for a file that is not a clock.
var ErrNotClock = errors.New("not a simulated clock file")

// Clock is an open clock file. Its methods are safe for concurrent use,
// in this process and with the other processes that opened the file.
type Clock struct {
	path string
	mem  []byte
	t    *int64 // in mem
}

// Create creates the clock file path, or opens it if it exists, and sets
// it to start, unless it already holds a later time.
func Create(path string, start time.Time) (*Clock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %w", err)
	}
	if st.Size() == 0 {
		var b [size]byte
		copy(b[:], magic)
		binary.NativeEndian.PutUint64(b[8:], uint64(start.UnixNano()))
		if _, err := f.WriteAt(b[:], 0); err != nil {
			return nil, fmt.Errorf("simulated clock: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("simulated clock: %w", err)
		}
	}
	c, err := mapClock(f, path)
	if err != nil {
		return nil, err
	}
	c.Set(start)
	return c, nil
}

// Open opens an existing clock file.
func Open(path string) (*Clock, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %w", err)
	}
	defer f.Close()
	return mapClock(f, path)
}

func mapClock(f *os.File, path string) (*Clock, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %w", err)
	}
	var head [len(magic)]byte
	if st.Size() != size {
		return nil, fmt.Errorf("simulated clock: %s: %w (%d bytes, want %d)", path, ErrNotClock, st.Size(), size)
	}
	if _, err := f.ReadAt(head[:], 0); err != nil || string(head[:]) != magic {
		return nil, fmt.Errorf("simulated clock: %s: %w", path, ErrNotClock)
	}
	mem, err := mmap(f, size)
	if err != nil {
		return nil, fmt.Errorf("simulated clock: %s: %w", path, err)
	}
	return &Clock{path: path, mem: mem, t: (*int64)(unsafe.Pointer(&mem[8]))}, nil
}

// Path returns the clock file's path.
func (c *Clock) Path() string { return c.path }

// Now returns the clock's time, in UTC.
func (c *Clock) Now() time.Time {
	return time.Unix(0, atomic.LoadInt64(c.t)).UTC()
}

// Set moves the clock to t; an earlier time than the clock's is ignored.
// It reports whether the clock moved.
func (c *Clock) Set(t time.Time) bool {
	n := t.UnixNano()
	for {
		old := atomic.LoadInt64(c.t)
		if n <= old {
			return false
		}
		if atomic.CompareAndSwapInt64(c.t, old, n) {
			return true
		}
	}
}

// Close unmaps the file; the clock must not be used afterwards. The file
// stays, with its time.
func (c *Clock) Close() error {
	if c.mem == nil {
		return nil
	}
	err := munmap(c.mem)
	c.mem, c.t = nil, nil
	return err
}
