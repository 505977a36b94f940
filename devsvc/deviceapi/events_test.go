package deviceapi

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/clocktest"
)

// TestEventLogRateLimited: a flood of events is counted in full and
// logged at most once per interval, each record counting the events
// since the one before.
func TestEventLogRateLimited(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	e := newEventLog(log, slog.LevelWarn, "shed", time.Minute, clock.Now)
	steps := []struct {
		advance time.Duration
		events  int
		want    string // the record logged by this step, "" for none
	}{
		{0, 1, "count=1 total=1"}, // the first is logged at once
		{time.Second, 500, ""},    // a flood within the interval
		{59 * time.Second, 1, "count=501 total=502"},
		{30 * time.Second, 10, ""},
		{10 * time.Minute, 1, "count=11 total=513"}, // after a quiet spell
	}
	ctx := context.Background()
	for i, st := range steps {
		clock.Advance(st.advance)
		buf.Reset()
		for range st.events {
			e.Add(ctx, "remote", "10.0.0.1:1234")
		}
		lines := strings.Count(buf.String(), "\n")
		switch {
		case st.want == "" && lines != 0:
			t.Errorf("step %d logged %q, want nothing", i, buf.String())
		case st.want != "" && (lines != 1 || !strings.Contains(buf.String(), st.want)):
			t.Errorf("step %d logged %q, want one record with %q", i, buf.String(), st.want)
		}
	}
	if got := e.Total(); got != 513 {
		t.Errorf("Total = %d, want 513", got)
	}
}
