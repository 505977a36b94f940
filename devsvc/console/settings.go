package console

import (
	"net/http"

	"github.com/opendus/opendus/devsvc/service"
)

func (c *Console) settingsRoutes() []route {
	return []route{{pattern: "GET /settings", h: c.settings}}
}

type settingsView struct {
	Settings []service.Setting
	Status   service.Status
}

// settings shows the settings the service runs with, read-only: they are
// changed in devsvc.conf, and apply at the next start.
func (c *Console) settings(w http.ResponseWriter, r *http.Request, rq *request) error {
	ss, err := c.svc.Settings(rq.ctx)
	if err != nil {
		return err
	}
	st, err := c.svc.Status(rq.ctx)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "settings", "Settings", settingsView{ss, st})
	return nil
}
