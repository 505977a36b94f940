package console

import (
	"net/http"
	"slices"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) overviewRoutes() []route {
	return []route{{pattern: "GET /{$}", h: c.overview}}
}

// nearExpiry is how soon a certificate's expiry is shown on the overview.
const nearExpiry = 30 * 24 * time.Hour

type overviewView struct {
	Devices  int
	Fleet    []store.ModelVersion
	Pending  []firmware.Rule
	Rules    int
	Rollouts []service.RolloutSummary // the live ones
	Alarms   []firmware.Alarm         // the open ones
	Expiring []service.CertInfo
	Warnings []string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, rq *request) error {
	fleet, err := c.svc.FleetSummary(rq.ctx)
	if err != nil {
		return err
	}
	rules, err := c.svc.Rules(rq.ctx)
	if err != nil {
		return err
	}
	st, err := c.svc.Status(rq.ctx)
	if err != nil {
		return err
	}
	rollouts, err := c.svc.Rollouts(rq.ctx)
	if err != nil {
		return err
	}
	alarms, err := c.svc.Alarms(rq.ctx, false)
	if err != nil {
		return err
	}
	v := overviewView{Fleet: fleet, Rules: len(rules), Warnings: st.Warnings, Alarms: alarms}
	slices.Reverse(v.Alarms) // the newest first
	for _, mv := range fleet {
		v.Devices += mv.Devices
	}
	for _, rl := range rules {
		if !rl.Pending.IsZero() {
			v.Pending = append(v.Pending, rl)
		}
	}
	for _, ro := range rollouts {
		if ro.Live() {
			v.Rollouts = append(v.Rollouts, ro)
		}
	}
	now := c.cfg.Now()
	for _, ci := range st.Certificates {
		if ci.NotAfter.Sub(now) < nearExpiry {
			v.Expiring = append(v.Expiring, ci)
		}
	}
	c.render(w, rq, http.StatusOK, "overview", "Overview", v)
	return nil
}
