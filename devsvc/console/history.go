package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opendus/opendus/firmware"
)

func (c *Console) historyRoutes() []route {
	return []route{{pattern: "GET /history", h: c.history}}
}

// Bounds of a history search: events read per call, and in all for one
// page (a filter that matches nothing stops there, saying so).
const (
	historyWindow  = 2000
	historyMaxScan = 200000
	historyPage    = 100
)

// searchHistory returns, newest first, at most limit events numbered
// below before (0: from the newest) for which match is true, reading the
// history backwards. more says whether older events are left to search,
// and next is the number to search below for them.
func (c *Console) searchHistory(rq *request, limit int, before uint64, match func(firmware.Event) bool) ([]firmware.Event, error) {
	es, _, err := c.searchHistoryMore(rq, limit, before, match)
	return es, err
}

func (c *Console) searchHistoryMore(rq *request, limit int, before uint64, match func(firmware.Event) bool) (out []firmware.Event, next uint64, err error) {
	top := before
	if top == 0 {
		last, err := c.svc.LastSeq(rq.ctx)
		if err != nil {
			return nil, 0, err
		}
		top = last + 1
	}
	scanned := 0
	for top > 1 && scanned < historyMaxScan {
		since := uint64(0)
		if top-1 > historyWindow {
			since = top - 1 - historyWindow
		}
		es, err := c.svc.History(rq.ctx, since, int(top-1-since))
		if err != nil {
			return nil, 0, err
		}
		scanned += len(es)
		for i := len(es) - 1; i >= 0; i-- {
			if match(es[i]) {
				out = append(out, es[i])
				if len(out) == limit {
					return out, es[i].Seq, nil
				}
			}
		}
		top = since + 1
	}
	if top > 1 {
		return out, top, nil
	}
	return out, 0, nil
}

type historyView struct {
	Who, What string
	Events    []firmware.Event
	Next      string // the link to older events, if any
	Actions   []string
}

// history lists the catalog history, newest first, filtered by who
// (a part of the actor's name) and what (an action).
func (c *Console) history(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	v := historyView{Who: strings.TrimSpace(q.Get("who")), What: q.Get("what"), Actions: historyActions}
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	who := strings.ToLower(v.Who)
	events, next, err := c.searchHistoryMore(rq, historyPage, before, func(e firmware.Event) bool {
		return (who == "" || strings.Contains(strings.ToLower(e.Actor), who)) && (v.What == "" || e.Action == v.What)
	})
	if err != nil {
		return err
	}
	v.Events = events
	if next > 1 {
		nq := r.URL.Query()
		nq.Set("before", strconv.FormatUint(next, 10))
		v.Next = "/history?" + nq.Encode()
	}
	c.render(w, rq, http.StatusOK, "history", "History", v)
	return nil
}

// historyActions are the actions the history filter offers.
var historyActions = []string{
	"import", "approve", "reject", "restore", "withdraw", "remove", "purge", "schedule", "schedule-cancel",
	"testdevice-add", "testdevice-remove",
	"account-create", "account-update", "account-disable", "account-enable", "account-remove",
	"rollout-scheduled", "rollout-started", "rollout-wave", "rollout-paused", "rollout-resumed", "rollout-completed", "rollout-stopped", "rollout-rolled-back",
	"alarm-raise", "alarm-clear", "site-add", "site-update", "site-remove",
	"cert-issue", "cert-revoke",
	"console-admin-add", "console-admin-update", "console-admin-disable", "console-admin-enable", "console-admin-remove",
}
