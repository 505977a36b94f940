package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) certificateRoutes() []route {
	return []route{
		{pattern: "GET /certificates", h: c.certificates},
		{pattern: "POST /certificates/revoke", h: c.revokeCertificate},
	}
}

type certificatesView struct {
	Service  []service.CertInfo
	Admin    []firmware.AdminCert
	Warnings []string
	Now      time.Time
}

func (c *Console) certificates(w http.ResponseWriter, r *http.Request, rq *request) error {
	st, err := c.svc.Status(rq.ctx)
	if err != nil {
		return err
	}
	ac, err := c.svc.AdminCerts(rq.ctx)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "certificates", "Certificates", certificatesView{Service: st.Certificates, Admin: ac, Warnings: st.Warnings, Now: c.cfg.Now()})
	return nil
}

func (c *Console) revokeCertificate(w http.ResponseWriter, r *http.Request, rq *request) error {
	cert, err := c.svc.RevokeAdminCert(rq.ctx, r.PostForm.Get("serial"), strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	return c.done(w, r, rq, "/certificates", fmt.Sprintf("Revoked the admin certificate %s (serial %s): the admin API refuses it from now on.", cert.Name, cert.Serial))
}
