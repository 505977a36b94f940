package firmware

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		p        RetryPolicy
		failures int
		want     time.Duration
	}{
		{RetryPolicy{}, 0, 0},
		{RetryPolicy{}, 1, time.Hour},
		{RetryPolicy{}, 2, 2 * time.Hour},
		{RetryPolicy{}, 3, 4 * time.Hour},
		{RetryPolicy{}, 5, 16 * time.Hour},
		{RetryPolicy{}, 6, 24 * time.Hour}, // capped
		{RetryPolicy{}, 1000, 24 * time.Hour},
		{RetryPolicy{Backoff: 10 * time.Minute, MaxBackoff: time.Hour}, 3, 40 * time.Minute},
		{RetryPolicy{Backoff: 10 * time.Minute, MaxBackoff: time.Hour}, 4, time.Hour},
		{RetryPolicy{Backoff: 2 * time.Hour, MaxBackoff: time.Hour}, 1, time.Hour},
	}
	for _, tt := range tests {
		if got := tt.p.RetryDelay(tt.failures); got != tt.want {
			t.Errorf("%+v.RetryDelay(%d) = %v, want %v", tt.p, tt.failures, got, tt.want)
		}
	}
}

func TestAttemptOutcome(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	def := RetryPolicy{}
	tests := []struct {
		name    string
		a       Attempt
		current Version
		p       RetryPolicy
		now     time.Time
		want    Outcome
	}{
		{"never offered", Attempt{}, v2, def, t0, OutcomeWaiting},
		{"offered", Attempt{Version: v3, Offered: t0}, v2, def, t0.Add(time.Hour), OutcomeOffered},
		{"downloading", Attempt{Version: v3, Offered: t0, State: StateDownloading, Reported: t0.Add(time.Minute)}, v2, def, t0.Add(time.Hour), OutcomeDownloading},
		{"rebooting", Attempt{Version: v3, Offered: t0, State: StateRebooting, Reported: t0.Add(time.Minute)}, v2, def, t0.Add(time.Hour), OutcomeDownloading},
		{"success reported", Attempt{Version: v3, Offered: t0, State: StateSuccess, Reported: t0.Add(time.Minute)}, v2, def, t0.Add(time.Hour), OutcomeInstalled},
		{"runs it", Attempt{Version: v3, Offered: t0}, v3, def, t0.Add(100 * time.Hour), OutcomeInstalled},
		{"runs it, never offered", Attempt{}, v3, def, t0, OutcomeWaiting},
		{"failed once", Attempt{Version: v3, Offered: t0, Failures: 1, Failed: t0, State: StateFailure, Reported: t0}, v2, def, t0.Add(time.Hour), OutcomeRetrying},
		{"failed four times", Attempt{Version: v3, Offered: t0, Failures: 4, Failed: t0, State: StateFailure, Reported: t0}, v2, def, t0.Add(time.Hour), OutcomeFailed},
		{"failed once, no retries", Attempt{Version: v3, Offered: t0, Failures: 1, Failed: t0, State: StateFailure, Reported: t0}, v2, RetryPolicy{Retries: -1}, t0, OutcomeFailed},
		{"retried, offered again", Attempt{Version: v3, Offered: t0.Add(2 * time.Hour), Failures: 1, Failed: t0}, v2, def, t0.Add(3 * time.Hour), OutcomeOffered},
		{"silent: stalled", Attempt{Version: v3, Offered: t0}, v2, def, t0.Add(DefaultReportTimeout), OutcomeStalled},
		{"silent mid-download: stalled", Attempt{Version: v3, Offered: t0, State: StateDownloading, Reported: t0.Add(time.Hour)}, v2, def, t0.Add(time.Hour + DefaultReportTimeout), OutcomeStalled},
		{"stalled long: failed", Attempt{Version: v3, Offered: t0}, v2, def, t0.Add(DefaultReportTimeout + DefaultStallTimeout), OutcomeFailed},
		{"custom timeouts", Attempt{Version: v3, Offered: t0}, v2, RetryPolicy{ReportTimeout: 10 * time.Minute, StallTimeout: 20 * time.Minute}, t0.Add(30 * time.Minute), OutcomeFailed},
	}
	for _, tt := range tests {
		if got := tt.a.Outcome(tt.current, tt.p, tt.now); got != tt.want {
			t.Errorf("%s: Outcome = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestAttemptLifecycle follows a device through offers and reports: a
// failure, the back-off, a retry, repeated offers that do not restart the
// stall clock, and a new version that starts over.
func TestAttemptLifecycle(t *testing.T) {
	p := RetryPolicy{}
	var a Attempt
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	a.Offer(v3, t0)
	a.Offer(v3, t0.Add(time.Hour)) // asked again before reporting
	if !a.Offered.Equal(t0) {
		t.Errorf("a repeated offer moved Offered to %v", a.Offered)
	}
	if got := a.Outcome(v2, p, t0.Add(DefaultReportTimeout)); got != OutcomeStalled {
		t.Errorf("after ReportTimeout of silence: %s, want stalled", got)
	}
	if !a.Report(v3, StateDownloading, t0.Add(90*time.Minute)) || a.Outcome(v2, p, t0.Add(2*time.Hour)) != OutcomeDownloading {
		t.Errorf("downloading report: %+v", a)
	}
	if a.Report(v1, StateFailure, t0.Add(100*time.Minute)) {
		t.Error("a report about another version was taken")
	}
	a.Report(v3, StateFailure, t0.Add(2*time.Hour))
	a.Report(v3, StateFailure, t0.Add(2*time.Hour+time.Minute))      // the same failure, said twice
	if a.Failures != 1 || !a.RetryAt(p).Equal(t0.Add(3*time.Hour)) { // from the first report of it
		t.Errorf("after one failure: failures %d, retry at %v", a.Failures, a.RetryAt(p))
	}
	a.Offer(v3, t0.Add(4*time.Hour)) // the retry
	if a.State != StateIdle || !a.Offered.Equal(t0.Add(4*time.Hour)) || a.Failures != 1 || !a.RetryAt(p).IsZero() {
		t.Errorf("after the retry's offer: %+v", a)
	}
	for i := range 3 {
		a.Report(v3, StateFailure, t0.Add(time.Duration(5+i)*time.Hour))
		a.Offer(v3, t0.Add(time.Duration(5+i)*time.Hour+time.Minute))
	}
	a.Report(v3, StateFailure, t0.Add(9*time.Hour))
	if !a.GaveUp(p) || a.Outcome(v2, p, t0.Add(10*time.Hour)) != OutcomeFailed {
		t.Errorf("after %d failures: gave up %v, outcome %s", a.Failures, a.GaveUp(p), a.Outcome(v2, p, t0.Add(10*time.Hour)))
	}
	a.Offer(MustParseVersion("4.1.0.1"), t0.Add(11*time.Hour))
	if a.Failures != 0 || a.GaveUp(p) || a.Outcome(v2, p, t0.Add(11*time.Hour)) != OutcomeOffered {
		t.Errorf("a new version did not start over: %+v", a)
	}
}
