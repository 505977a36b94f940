package simulator

import (
	"net"
	"net/url"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// Replicas: a site may have a replica (Scenario.Replicas), which its
// devices find as their site's update service: they sign in and check in
// there, fetch the files the answer names first and, when that fails, from
// the alternative URL (url/urlalt: the primary's). The report counts, per
// site, the file bytes its devices fetched from the primary, which crossed
// the WAN, and from the replica.

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

// countSite adds n bytes d fetched from fileURL to what it fetched from
// its site's replica or from the primary.
func (w *worker) countSite(d *device, fileURL string, n int64) {
	g := &w.s.groups[d.group]
	if g.replicaHost != "" && hostOf(fileURL) == g.replicaHost {
		d.fromReplica += n
	} else {
		d.fromPrimary += n
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
