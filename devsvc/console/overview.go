package console

import (
	"net/http"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) overviewRoutes() []route {
	return []route{{pattern: "GET /{$}", h: c.overview}}
}

// nearExpiry is how soon a certificate's expiry is shown on the overview.
const nearExpiry = 30 * 24 * time.Hour

type overviewView struct {
	Devices  int
	Taken    time.Time
	Fleet    []modelVersion
	Pending  []firmware.Rule
	Rules    int
	Alarms   []string // open alarms; they come with rollouts
	Expiring []service.CertInfo
	Warnings []string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := c.fleet.get(rq.ctx)
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
	v := overviewView{Devices: len(f.devices), Taken: f.taken, Fleet: f.byModel(), Rules: len(rules), Warnings: st.Warnings}
	for _, rl := range rules {
		if !rl.Pending.IsZero() {
			v.Pending = append(v.Pending, rl)
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
