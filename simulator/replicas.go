package simulator

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// Replicas: a site may have a replica (Scenario.Replicas), which its
// devices find as their site's update service: they sign in and check in
// there, fetch the files the answer names first and, when that fails, from
// the alternative URL (url/urlalt: the primary's). The report counts, per
// site and per peer subnet, the file bytes its devices fetched from the
// primary, which crossed the WAN, and from a replica: an offer's URLs are
// told apart once, by host:port (sourceOf), when the device takes it.

// checkReplicas checks the scenario's replicas: each of a site some group
// on the LAN is at, with an https base URL.
func (sc *Scenario) checkReplicas(bad func(format string, args ...any)) {
	sites := map[string]bool{}
	for _, g := range sc.Groups {
		if g.Site != "" && g.Location != firmware.External {
			sites[g.Site] = true
		}
	}
	for site, u := range sc.Replicas {
		if err := firmware.ValidSiteName(site); err != nil {
			bad("replica of site %q: %v", site, err)
			continue
		}
		if !sites[site] {
			bad("replica of site %q: no group on the LAN is at that site", site)
		}
		if _, err := baseURL(u); err != nil {
			bad("replica of site %s: %v", site, err)
		}
	}
}

// hostOf returns the host:port of a URL, "" when it has none.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	return strings.ToLower(host)
}

// source is a base URL an offer's files come from, classified once, when
// the device takes the offer: from the primary service (its bytes cross
// the WAN) or from a replica (any other host: the site's replica, or a
// relay between the devices and the service).
type source struct {
	url     string
	replica bool
}

// sourceOf classifies the file base URL u by its host:port: the
// primary's are those of Service.InternalURL and ExternalURL, and
// ucupdates-r2.<Domain> on the internal port.
func (s *Sim) sourceOf(u string) source {
	if u == "" {
		return source{}
	}
	return source{url: u, replica: !slices.Contains(s.primaryHosts, hostOf(u))}
}

// primaryHosts returns the host:ports of the primary service.
func (s *Service) primaryHosts() []string {
	hosts := []string{hostOf(s.InternalURL)}
	if s.ExternalURL != "" {
		hosts = append(hosts, hostOf(s.ExternalURL))
	}
	if s.Domain != "" {
		hosts = append(hosts, strings.ToLower(net.JoinHostPort("ucupdates-r2."+s.Domain, s.internalPort())))
	}
	return hosts
}

// count adds n file bytes d fetched from src to what the worker's devices
// downloaded, to what d fetched from the primary or a replica (the site
// report) and to what its peer subnet did (the subnet report).
func (w *worker) count(d *device, src source, n int64) {
	w.t.bytes += n
	bc := w.s.subnets[w.s.groups[d.group].peerNet]
	if src.replica {
		d.fromReplica += n
		if bc != nil {
			bc.replica.Add(n)
		}
		return
	}
	d.fromPrimary += n
	if bc != nil {
		bc.wan.Add(n)
	}
}

// signInBase is where a device signs in: its site's replica, if it has
// one (the site's update service), else the service's listener of its
// location.
func (w *worker) signInBase(d *device) string {
	g := &w.s.groups[d.group]
	if g.replica != "" {
		return g.replica
	}
	if g.loc == firmware.External {
		return w.s.svc.ExternalURL
	}
	return w.s.svc.InternalURL
}
