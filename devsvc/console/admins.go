package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) adminRoutes() []route {
	return []route{
		{pattern: "GET /admins", h: c.admins},
		{pattern: "POST /admins/add", h: c.addAdmin},
		{pattern: "POST /admins/disable", h: c.setAdminDisabled(true)},
		{pattern: "POST /admins/enable", h: c.setAdminDisabled(false)},
		{pattern: "POST /admins/remove", h: c.removeAdmin},
	}
}

type adminsView struct {
	Admins      []firmware.ConsoleAdmin
	MinPassword int
}

func (c *Console) admins(w http.ResponseWriter, r *http.Request, rq *request) error {
	as, err := c.svc.ConsoleAdmins(rq.ctx)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "admins", "Console admins", adminsView{as, service.MinPasswordLength})
	return nil
}

// addAdmin adds a console admin, or with "replace" sets a new password
// for one.
func (c *Console) addAdmin(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	pw, err := passwords(r)
	if err != nil {
		return err
	}
	if r.PostForm.Get("replace") != "" {
		a, err := c.svc.SetConsoleAdminPassword(rq.ctx, name, pw)
		if err != nil {
			return err
		}
		return c.done(w, r, rq, "/admins", "Set a new password for console admin "+a.Name+".")
	}
	a, err := c.svc.AddConsoleAdmin(rq.ctx, name, service.Role(r.PostForm.Get("role")), pw)
	if err != nil {
		return err
	}
	return c.done(w, r, rq, "/admins", fmt.Sprintf("Added console admin %s (%s).", a.Name, roleLabel(service.Role(a.Role))))
}

func (c *Console) setAdminDisabled(disabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		a, err := c.svc.SetConsoleAdminDisabled(rq.ctx, r.PostForm.Get("name"), disabled)
		if err != nil {
			return err
		}
		what := "Enabled"
		if disabled {
			what = "Disabled"
		}
		return c.done(w, r, rq, "/admins", fmt.Sprintf("%s console admin %s.", what, a.Name))
	}
}

func (c *Console) removeAdmin(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PostForm.Get("name")
	if err := c.svc.RemoveConsoleAdmin(rq.ctx, name); err != nil {
		return err
	}
	return c.done(w, r, rq, "/admins", fmt.Sprintf("Removed console admin %s: its sessions have ended.", name))
}
