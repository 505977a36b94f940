package devsvc

import (
	"context"
	"log/slog"
	"time"

	"github.com/opendus/opendus/devsvc/store"
)

// schedulerActor is who the history names for scheduled approvals.
const schedulerActor = "scheduler"

// runScheduler approves scheduled rules when they come due, until ctx is
// done. It looks at the catalog snapshot every poll (cheap) and writes only
// when something is due; a failure is logged as an alarm and retried, so a
// release time that passed without the update being approved is visible.
func runScheduler(ctx context.Context, st *store.Store, now func() time.Time, poll time.Duration, log *slog.Logger) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if next, ok := st.Catalog().NextApproval(); ok && !now().Before(next) {
			rules, err := st.ApproveDue(ctx, schedulerActor)
			if err != nil {
				log.Error("scheduled approval failed: the release time has passed without the update being approved", "due", next, "err", err)
			}
			for _, r := range rules {
				log.Info("approved on schedule", "rule", r.ID, "identity", r.Identity.Path(), "version", r.Approved.String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
