// Package freespace keeps a floor of free space on the file system of the
// data directory.
//
// The service's own records (the database: the catalog and the device
// inventory) must always find room to be written; what anyone on the
// network can make it write (anonymous device log uploads, the audit lines
// of their requests) must not take that room. A Floor says how many bytes
// may still be written before the free space would fall below a minimum
// (Room); the writers it guards refuse or drop what does not fit. The
// floor is headroom for the writers it does not guard: the store is never
// refused by it.
//
// Free space is what statfs(2) says an unprivileged writer may use
// (f_bavail), read afresh at every question: one system call, no cache, so
// space an admin frees counts at once, and so does space another program
// takes. A Floor logs once when the free space falls below it (at Error)
// and once when it is back above (at Warn), never per question.
package freespace

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
)

// ErrLow is returned (wrapped, with the figures) when what is to be
// written does not fit above the floor.
var ErrLow = errors.New("free disk space is below the floor")

// Usage is a file system's size and the bytes free to an unprivileged
// writer.
type Usage struct {
	Free, Total int64
}

// Config configures a Floor.
type Config struct {
	// Dir is a directory on the file system to watch. Required.
	Dir string
	// Min is the floor in bytes; zero or less means none, and Room is
	// then unlimited.
	Min int64
	// What names what the floor refuses, for the log: "device log uploads
	// and audit lines".
	What string
	// Logger receives the state changes; nil discards.
	Logger *slog.Logger
}

// Floor is a minimum of free space on the file system of a directory. It
// is safe for concurrent use.
type Floor struct {
	cfg  Config
	log  *slog.Logger
	stat func(dir string) (Usage, error)
	low  atomic.Bool // below the floor at the last question

	unsupported atomic.Bool  // Stat is not implemented here: logged once
	min         atomic.Int64 // Config.Min, changed by SetMin
}

// New returns the floor of cfg.
func New(cfg Config) *Floor {
	f := &Floor{cfg: cfg, log: cfg.Logger, stat: Stat}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.cfg.What == "" {
		f.cfg.What = "writes"
	}
	f.min.Store(cfg.Min)
	return f
}

// Min returns the floor in bytes; zero or less means none.
func (f *Floor) Min() int64 { return f.min.Load() }

// SetMin changes the floor (Config.Min) for the questions asked from now
// on; the state logged (below or above) is kept, so crossing the new
// floor is logged like crossing the old one.
func (f *Floor) SetMin(n int64) { f.min.Store(n) }

// Usage returns the usage of the watched file system.
func (f *Floor) Usage() (Usage, error) {
	u, err := f.stat(f.cfg.Dir)
	if err != nil {
		return Usage{}, fmt.Errorf("freespace: %s: %w", f.cfg.Dir, err)
	}
	return u, nil
}

// Room returns how many bytes may be written before the free space falls
// below the floor: zero or less when it is below already. Without a floor
// it is math.MaxInt64 and the file system is not asked. An error means
// the free space could not be measured.
func (f *Floor) Room() (int64, error) {
	floor := f.Min()
	if floor <= 0 {
		return math.MaxInt64, nil
	}
	u, err := f.Usage()
	if errors.Is(err, errors.ErrUnsupported) {
		if f.unsupported.CompareAndSwap(false, true) {
			f.log.Warn("freespace: free disk space cannot be measured on this system: no floor", "dir", f.cfg.Dir, "floor", floor)
		}
		return math.MaxInt64, nil
	}
	if err != nil {
		return 0, err
	}
	room := u.Free - floor
	f.note(room <= 0, u, floor)
	return room, nil
}

// Allow returns nil when n more bytes fit above the floor, else an error
// wrapping ErrLow that gives the figures (or the measuring error).
func (f *Floor) Allow(n int64) error {
	floor := f.Min()
	room, err := f.Room()
	if err != nil {
		return err
	}
	if n > room {
		return fmt.Errorf("%w: %s free, the floor is %s (min_free_space)", ErrLow, Bytes(room+floor), Bytes(floor))
	}
	return nil
}

// note logs a change of state.
func (f *Floor) note(low bool, u Usage, floor int64) {
	if f.low.Load() == low || !f.low.CompareAndSwap(!low, low) {
		return
	}
	if low {
		f.log.Error("freespace: free disk space is below the floor: "+f.cfg.What+" are refused until space is freed",
			"dir", f.cfg.Dir, "free", u.Free, "total", u.Total, "floor", floor)
	} else {
		f.log.Warn("freespace: free disk space is above the floor again: "+f.cfg.What+" are accepted",
			"dir", f.cfg.Dir, "free", u.Free, "total", u.Total, "floor", floor)
	}
}

// Bytes formats a byte count for people: "256 MiB", "1.5 GiB", "812 B".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for math.Abs(v) >= unit && i < 5 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + string("KMGTPE"[i]) + "iB"
}
