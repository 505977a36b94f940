package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) accountRoutes() []route {
	return []route{
		{pattern: "GET /accounts", h: c.accounts},
		{pattern: "POST /accounts/add", h: c.putAccount},
		{pattern: "POST /accounts/disable", h: c.setAccountDisabled(true)},
		{pattern: "POST /accounts/enable", h: c.setAccountDisabled(false)},
		{pattern: "POST /accounts/remove", h: c.removeAccount},
	}
}

type accountsView struct {
	Accounts []firmware.Account
}

func (c *Console) accounts(w http.ResponseWriter, r *http.Request, rq *request) error {
	as, err := c.svc.Accounts(rq.ctx)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "accounts", "Device accounts", accountsView{as})
	return nil
}

// passwords returns the form's password, which its confirmation must
// repeat.
func passwords(r *http.Request) (string, error) {
	pw := r.PostForm.Get("password")
	if pw == "" {
		return "", fmt.Errorf("%w: type the password", service.ErrInvalid)
	}
	if pw != r.PostForm.Get("confirm") {
		return "", fmt.Errorf("%w: the two passwords differ; nothing changed", service.ErrInvalid)
	}
	return pw, nil
}

// putAccount adds a device account, or with "replace" sets a new password
// for one. Only the NT hash NTLM needs is kept.
func (c *Console) putAccount(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	pw, err := passwords(r)
	if err != nil {
		return err
	}
	replace := r.PostForm.Get("replace") != ""
	a, err := c.svc.PutAccount(rq.ctx, name, service.NewAccountPassword(pw), replace)
	if err != nil {
		return err
	}
	msg := "Added device account " + a.Name + "."
	if replace {
		msg = "Set a new password for device account " + a.Name + "."
	}
	return c.done(w, r, rq, "/accounts", msg)
}

func (c *Console) setAccountDisabled(disabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		a, err := c.svc.SetAccountDisabled(rq.ctx, r.PostForm.Get("name"), disabled)
		if err != nil {
			return err
		}
		what := "Enabled"
		if disabled {
			what = "Disabled"
		}
		return c.done(w, r, rq, "/accounts", fmt.Sprintf("%s device account %s.", what, a.Name))
	}
}

func (c *Console) removeAccount(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PostForm.Get("name")
	if err := c.svc.RemoveAccount(rq.ctx, name); err != nil {
		return err
	}
	return c.done(w, r, rq, "/accounts", fmt.Sprintf("Removed device account %s.", name))
}
