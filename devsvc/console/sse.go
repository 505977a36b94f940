package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
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

// serveEvents streams what next returns, every period, until the client
// goes away (ctx is done), next fails, or next says the stream is over.
// It sends an event only when its data changed, and a keep-alive comment
// at least every keepAlivePeriod.
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
			return s.send("error", map[string]string{"message": err.Error()})
		}
		b, _ := json.Marshal(data)
		switch {
		case string(b) != string(last):
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
