package deviceapi

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// eventLog counts an event that may come in floods (a shed request, a
// stalled body) and logs it at most once per interval: the first event
// after a quiet interval is logged at once, with the attributes of that
// event and the number of events since the previous record. Events after
// the last record of a flood are counted in Total but logged only with
// the next record. It is safe for concurrent use and takes no lock.
type eventLog struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration
	now   func() time.Time

	total   atomic.Uint64
	pending atomic.Uint64 // events since the last record
	next    atomic.Int64  // UnixNano before which nothing is logged
}

func newEventLog(log *slog.Logger, level slog.Level, msg string, every time.Duration, now func() time.Time) *eventLog {
	return &eventLog{log: log, level: level, msg: msg, every: every, now: now}
}

// Add counts one event and logs it when the interval since the last
// record has passed; args are the event's attributes, as for slog.
func (e *eventLog) Add(ctx context.Context, args ...any) {
	e.total.Add(1)
	e.pending.Add(1)
	now := e.now()
	next := e.next.Load()
	if now.UnixNano() < next || !e.next.CompareAndSwap(next, now.Add(e.every).UnixNano()) {
		return
	}
	n := e.pending.Swap(0)
	e.log.Log(ctx, e.level, e.msg, append(args, "count", n, "total", e.total.Load(), "log_every", e.every.String())...)
}

// Total is the number of events counted.
func (e *eventLog) Total() uint64 { return e.total.Load() }
