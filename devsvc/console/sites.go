package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) siteRoutes() []route {
	return []route{
		{pattern: "GET /sites", h: c.sites},
		{pattern: "GET /sites/{name}", h: c.site},
		{pattern: "POST /sites/add", h: c.putSite(false)},
		{pattern: "POST /sites/update", h: c.putSite(true)},
		{pattern: "POST /sites/remove", h: c.removeSite},
	}
}

// siteForm is a site as its form holds it: text, as entered.
type siteForm struct {
	Name, Subnets, TimeZone, Windows string
	// NoPeers: subnet peers off for the site (the form's peers=off; a
	// form without the field leaves them on).
	NoPeers bool
}

func siteFormOf(s firmware.Site) siteForm {
	f := siteForm{Name: s.Name, Subnets: firmware.FormatSubnets(s.Subnets), TimeZone: s.TimeZone, NoPeers: s.NoPeers}
	if !s.Windows.IsZero() {
		f.Windows = s.Windows.String()
	}
	return f
}

func siteFormFrom(v url.Values) siteForm {
	return siteForm{Name: strings.TrimSpace(v.Get("name")), Subnets: strings.TrimSpace(v.Get("subnets")),
		TimeZone: strings.TrimSpace(v.Get("timezone")), Windows: strings.TrimSpace(v.Get("windows")), NoPeers: v.Get("peers") == "off"}
}

// site reads the form into a site, with every problem of its subnets and
// windows; the service checks the rest (the name, the zone, subnets of
// other sites).
func (f siteForm) site() (firmware.Site, error) {
	s := firmware.Site{Name: f.Name, TimeZone: f.TimeZone, NoPeers: f.NoPeers}
	var errs []error
	// Subnets may be separated by commas, spaces or lines.
	if items := strings.FieldsFunc(f.Subnets, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }); len(items) > 0 {
		ps, err := firmware.ParseSubnets(strings.Join(items, ","))
		if err != nil {
			errs = append(errs, err)
		}
		s.Subnets = ps
	}
	if f.Windows != "" {
		w, err := firmware.ParseSchedule(f.Windows)
		if err != nil {
			errs = append(errs, err)
		}
		s.Windows = w
	}
	if len(errs) > 0 {
		// The name and zone too, as the service would check them, so
		// that the form lists every problem at once.
		if err := (firmware.Site{Name: s.Name, TimeZone: s.TimeZone}).Validate(); err != nil {
			errs = append(errs, err)
		}
		return s, fmt.Errorf("%w: %w", service.ErrInvalid, errors.Join(errs...))
	}
	return s, nil
}

type sitesView struct {
	Sites []service.SiteInfo
	// Form is the add form, as entered when it was refused (Error says
	// why).
	Form  siteForm
	Error string
}

func (c *Console) sites(w http.ResponseWriter, r *http.Request, rq *request) error {
	return c.renderSites(w, rq, http.StatusOK, sitesView{})
}

func (c *Console) renderSites(w http.ResponseWriter, rq *request, status int, v sitesView) error {
	sites, err := c.svc.Sites(rq.ctx)
	if err != nil {
		return err
	}
	v.Sites = sites
	c.render(w, rq, status, "sites", "Sites", v)
	return nil
}

type siteView struct {
	Site  service.SiteInfo
	Form  siteForm
	Error string
}

// site is one site's page: its devices, and the form that changes it.
func (c *Console) site(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PathValue("name")
	sites, err := c.svc.Sites(rq.ctx)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if s.Name == name {
			c.render(w, rq, http.StatusOK, "site", "Site "+name, siteView{Site: s, Form: siteFormOf(s.Site)})
			return nil
		}
	}
	return fmt.Errorf("%w: no site %q: the sites page lists them", errNoPage, name)
}

// putSite adds a site, or with replace changes one. A site the service
// refuses (a bad name, subnet, zone or window, a subnet of another site)
// is shown again in its form with every reason, as entered.
func (c *Console) putSite(replace bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		f := siteFormFrom(r.PostForm)
		site, err := f.site()
		if err == nil {
			site, err = c.svc.PutSite(rq.ctx, site, replace)
		}
		if err != nil {
			status := statusOf(err)
			if status != http.StatusBadRequest && status != http.StatusConflict && status != http.StatusNotFound {
				return err
			}
			if !replace {
				return c.renderSites(w, rq, status, sitesView{Form: f, Error: err.Error()})
			}
			v := siteView{Site: service.SiteInfo{Site: firmware.Site{Name: f.Name}}, Form: f, Error: err.Error()}
			if sites, err := c.svc.Sites(rq.ctx); err == nil {
				for _, s := range sites {
					if s.Name == f.Name {
						v.Site = s
					}
				}
			}
			c.render(w, rq, status, "site", "Site "+f.Name, v)
			return nil
		}
		verb := "Added"
		if replace {
			verb = "Updated"
		}
		return c.done(w, r, rq, "/sites", fmt.Sprintf("%s site %s: %s. Devices belong to it from their next check-in from its subnets.", verb, site.Name, siteText(site)))
	}
}

func (c *Console) removeSite(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if err := c.svc.RemoveSite(rq.ctx, name); err != nil {
		return err
	}
	return c.done(w, r, rq, "/sites", fmt.Sprintf("Removed site %s. Its devices belong to the site their next check-in comes from.", name))
}

// siteText describes a site in a sentence's words.
func siteText(s firmware.Site) string {
	subnets := firmware.FormatSubnets(s.Subnets)
	if subnets == "" {
		subnets = "no subnets"
		if s.Name == firmware.RemoteSite {
			subnets = "the devices through the edge"
		}
	}
	return fmt.Sprintf("%s, time zone %s, windows %s", subnets, zoneText(s.TimeZone), s.Windows)
}

func zoneText(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}
