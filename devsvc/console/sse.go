package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"
)

// eventStream writes server-sent events (the text/event-stream format of
// the HTML standard) to one client, flushing each. Pages that change as
// the service works (a rollout's progress) stream through it; the
// console's script (console.js, data-live) applies the events to the page.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startEvents answers r with an event stream: the headers, and how long
// the browser waits before it reconnects.
func startEvents(w http.ResponseWriter, retry time.Duration) (*eventStream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	w.WriteHeader(http.StatusOK)
	s := &eventStream{w: w, rc: http.NewResponseController(w)}
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", retry.Milliseconds()); err != nil {
		return nil, err
	}
	return s, s.rc.Flush()
}

// send writes one event named event (empty: "message") carrying data as
// JSON, and flushes it.
func (s *eventStream) send(event string, data any) error {
	if strings.ContainsAny(event, "\r\n") {
		return errors.New("sse: an event name has no line breaks")
	}
	b, err := json.Marshal(data) // one line: JSON escapes line breaks
	if err != nil {
		return err
	}
	var msg strings.Builder
	if event != "" {
		msg.WriteString("event: " + event + "\n")
	}
	msg.WriteString("data: ")
	msg.Write(b)
	msg.WriteString("\n\n")
	if _, err := s.w.Write([]byte(msg.String())); err != nil {
		return err
	}
	return s.rc.Flush()
}

// keepAlive writes a comment, which keeps proxies from closing an idle
// stream.
func (s *eventStream) keepAlive() error {
	if _, err := s.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}

// endEvent is the event that ends a stream, with a message that says
// why; console.js closes the stream on it and shows the message.
const endEvent = "end"

// serveEvents streams what next returns, every period, until the client
// goes away (ctx is done), next fails (an endEvent says why), or next
// says the stream is over. It sends an event only when its data changed
// (nil data: nothing to send), and a keep-alive comment at least every
// keepAlivePeriod.
func serveEvents(ctx context.Context, w http.ResponseWriter, period time.Duration, next func(context.Context) (event string, data any, more bool, err error)) error {
	s, err := startEvents(w, period)
	if err != nil {
		return err
	}
	t := time.NewTicker(period)
	defer t.Stop()
	var last []byte
	quiet := time.Duration(0)
	for {
		event, data, more, err := next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the client went, or the console stops
			}
			return s.send(endEvent, map[string]string{"message": err.Error()})
		}
		var b []byte
		if data != nil {
			b, _ = json.Marshal(data)
		}
		switch {
		case data != nil && string(b) != string(last):
			if err := s.send(event, data); err != nil {
				return err
			}
			last, quiet = b, 0
		case quiet >= keepAlivePeriod:
			if err := s.keepAlive(); err != nil {
				return err
			}
			quiet = 0
		}
		if !more {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			quiet += period
		}
	}
}

const keepAlivePeriod = 15 * time.Second

// errStreamEnded ends a stream whose session ended meanwhile.
var errStreamEnded = errors.New("your session ended: reload the page to sign in again")

// events serves a live page's event stream: what data returns, every
// LivePeriod, as long as the session lives and its principal may still
// act, for at most MaxStreamTime (then the browser opens another, which
// checks the session again), and until Run's context is done. The first
// data is computed before the stream starts, so that a page that cannot
// be served (a rollout that is not there) is an error page with its
// status, as the page's own request would be.
func (c *Console) events(w http.ResponseWriter, rq *request, data func(context.Context) (any, error)) error {
	first, err := data(rq.ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(rq.ctx, c.cfg.MaxStreamTime)
	defer cancel()
	go func() {
		select {
		case <-c.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	calls := 0
	var prev map[string]any
	return serveEvents(ctx, w, c.cfg.LivePeriod, func(ctx context.Context) (string, any, bool, error) {
		calls++
		if calls == 1 {
			prev, _ = first.(map[string]any)
			return "", first, true, nil
		}
		if !c.sessions.alive(rq.sid) {
			return "", nil, false, errStreamEnded
		}
		if _, err := c.svc.ConsolePrincipal(ctx, rq.p); err != nil {
			return "", nil, false, errStreamEnded
		}
		d, err := data(ctx)
		if err != nil {
			return "", nil, false, err
		}
		m, ok := d.(map[string]any)
		if !ok || prev == nil {
			return "", d, true, nil
		}
		return "", changedFields(prev, m), true, nil
	})
}

// changedFields returns the fields of next that differ from prev, or nil
// when none does, and makes next the fields a stream last sent: after a
// stream's first event, which carries every field, each sends only what
// changed. A reload is always sent.
func changedFields(prev, next map[string]any) map[string]any {
	if _, ok := next[reloadField]; ok {
		return next
	}
	out := map[string]any{}
	for k, v := range next {
		if pv, ok := prev[k]; !ok || pv != v {
			out[k] = v
		}
	}
	clear(prev)
	maps.Copy(prev, next)
	if len(out) == 0 {
		return nil
	}
	return out
}

// liveCache shares what the streams of live pages compute among them: a
// rollout's progress is a walk of the fleet index (tens of milliseconds
// per 100,000 devices), which every admin watching the page would
// otherwise ask for every LivePeriod. An entry serves for one
// LivePeriod, and is computed again at once when the catalog changed
// (a rollout paused, a wave opened: its history number moved). Every
// stream still asks the service at every tick, so its principal is
// checked as for any call.
type liveCache struct {
	period time.Duration
	mu     sync.Mutex
	m      map[string]liveEntry
}

type liveEntry struct {
	seq uint64
	at  time.Time
	v   any
}

// liveCacheMax bounds the entries kept (pages of rules: a few per rule).
const liveCacheMax = 1000

// get returns the value of key, computing it with compute when the cache
// has none for the catalog's history number seq, or one older than the
// period. The value is shared: callers must not change it.
func (lc *liveCache) get(key string, seq uint64, compute func() (any, error)) (any, error) {
	now := time.Now()
	lc.mu.Lock()
	e, ok := lc.m[key]
	lc.mu.Unlock()
	if ok && e.seq == seq && now.Sub(e.at) < lc.period {
		return e.v, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.m == nil || len(lc.m) >= liveCacheMax {
		lc.m = map[string]liveEntry{}
	}
	lc.m[key] = liveEntry{seq: seq, at: now, v: v}
	return v, nil
}
