package signin

import (
	"log/slog"
	"time"
)

// How refusals are logged: each address and account pair's first refusal
// in a period gets a line, at most maxLinesPerPeriod lines a period; the
// others are counted for the period's summary.
const (
	logPeriod         = time.Minute
	maxLinesPerPeriod = 100
	// maxSummaryAddrs bounds the addresses the summary tells apart; the
	// rest count in the total only.
	maxSummaryAddrs = 1 << 12
)

// refusalLog is the rate limit of refusal lines. The Limiter's mutex
// guards it.
type refusalLog struct {
	start      time.Time           // of the current period
	lines      int                 // lines logged in it
	seen       map[string]struct{} // address and account pairs logged in it
	suppressed int                 // refusals not logged in it
	byAddr     map[string]int      // of those, per address
}

func newRefusalLog(now time.Time) refusalLog {
	return refusalLog{start: now, seen: map[string]struct{}{}, byAddr: map[string]int{}}
}

// admit reports whether a refusal from remote for account (may be empty)
// at now gets a line of its own; if not, it is counted. A period that is
// over is summarised first.
func (r *refusalLog) admit(log *slog.Logger, now time.Time, remote, account string) bool {
	if !now.Before(r.start.Add(logPeriod)) || now.Before(r.start) {
		r.flush(log, now)
	}
	key := remote + "|" + account
	if _, ok := r.seen[key]; !ok && r.lines < maxLinesPerPeriod {
		r.seen[key] = struct{}{}
		r.lines++
		return true
	}
	r.suppressed++
	if _, ok := r.byAddr[remote]; ok || len(r.byAddr) < maxSummaryAddrs {
		r.byAddr[remote]++
	}
	return false
}

// flush logs the summary of the refusals not logged one by one, if any,
// and starts a new period at now.
func (r *refusalLog) flush(log *slog.Logger, now time.Time) {
	if r.suppressed > 0 {
		busiest, most := "", 0
		for a, n := range r.byAddr {
			if n > most || (n == most && a < busiest) {
				busiest, most = a, n
			}
		}
		log.Info("sign-in refusals", "refused", r.suppressed, "addresses", len(r.byAddr), "busiest", busiest, "busiest_refused", most,
			"since", r.start.UTC().Format(time.RFC3339), "reason", "not logged one by one: at most one line a minute per address and account")
	}
	*r = newRefusalLog(now)
}
