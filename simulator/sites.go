package simulator

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// Sites and replicas: a group's devices may be placed at a site
// (Group.Site), their connections coming from an address of the site's
// subnet (Group.Subnet, in 127.0.0.0/8, so that the service tells the
// site by the address as it would on a real network); a site may have a
// replica (Scenario.Replicas), which its devices find as their site's
// update service: they sign in and check in there. The report counts,
// per site, the file bytes its devices fetched from the primary and from
// the replica: what crossed the WAN.

// checkSites checks the groups' sites and subnets and the replicas.
func (sc *Scenario) checkSites(bad func(format string, args ...any)) {
	sites := map[string]bool{}
	for i := range sc.Groups {
		g := &sc.Groups[i]
		where := fmt.Sprintf("group %d (%s)", i+1, g.Model)
		if g.Site != "" {
			if err := firmware.ValidSiteName(g.Site); err != nil {
				bad("%s: %v", where, err)
			}
			if g.Location == firmware.External {
				bad("%s: a site is where devices on the LAN are; remote devices come through the edge", where)
			}
			sites[g.Site] = true
		}
		if g.Subnet != "" {
			p, err := netip.ParsePrefix(g.Subnet)
			if err != nil || !p.Addr().IsLoopback() || p.Bits() > 31 && p.Addr().Is4() {
				bad("%s: subnet %q: want a CIDR prefix in 127.0.0.0/8 of at least two addresses, like 127.0.5.0/24 (the simulated devices' source addresses on loopback)", where, g.Subnet)
			}
			if g.Location == firmware.External {
				bad("%s: a subnet is for devices on the LAN", where)
			}
		}
	}
	for site, u := range sc.Replicas {
		if err := firmware.ValidSiteName(site); err != nil {
			bad("replica of site %q: %v", site, err)
		}
		if !sites[site] {
			bad("replica of site %q: no group is at that site", site)
		}
		if _, err := baseURL(u); err != nil {
			bad("replica of site %s: %v", site, err)
		}
	}
}

// siteList returns the scenario's sites in name order: the index of a
// site in it, plus one, is its number in the tallies (0: no site).
func (sc *Scenario) siteList() []string {
	var out []string
	for _, g := range sc.Groups {
		if g.Site != "" && !slices.Contains(out, g.Site) {
			out = append(out, g.Site)
		}
	}
	slices.Sort(out)
	return out
}

// sourceAddr is the address a group's connections come from: the first
// host of its subnet; invalid when it has none.
func sourceAddr(subnet string) netip.Addr {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return netip.Addr{}
	}
	return p.Masked().Addr().Next()
}

// siteClient returns the LAN client of devices whose connections come
// from src (invalid: the shared one), made once per address.
func (s *Sim) siteClient(src netip.Addr) *http.Client {
	if !src.IsValid() {
		return s.lan
	}
	if c, ok := s.bySource[src]; ok {
		return c
	}
	d := s.dial.withSource(src)
	t := newTransport(d, newTLSConfig(s.svc.RootCAs), s.cfg.Workers)
	c := &http.Client{Transport: t, Timeout: requestTimeout, CheckRedirect: noRedirect}
	s.bySource[src] = c
	s.sourceTs = append(s.sourceTs, t)
	return c
}

// withSource returns a dialer like d whose connections come from src.
func (d *dialer) withSource(src netip.Addr) *dialer {
	n := &dialer{resolver: d.resolver, cache: d.cache, mu: d.mu, net: d.net}
	n.net.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	return n
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

// fromReplica reports whether a file URL is on the replica of the
// device's site.
func (w *worker) fromReplica(d *device, fileURL string) bool {
	g := &w.s.groups[d.group]
	return g.replicaHost != "" && hostOf(fileURL) == g.replicaHost
}

// countSite adds n bytes fetched from fileURL to the site's tally.
func (w *worker) countSite(d *device, fileURL string, n int64) {
	g := &w.s.groups[d.group]
	if g.site == 0 || n == 0 {
		return
	}
	k := 0
	if w.fromReplica(d, fileURL) {
		k = 1
	}
	w.t.sites[g.site][k] += n
}

// SiteReport is what a site's devices fetched, and from where.
type SiteReport struct {
	Site    string `json:"site"`
	Devices int    `json:"devices"`
	// Replica is the site's replica's URL; empty when it has none.
	Replica string `json:"replica,omitempty"`
	// BytesPrimary and BytesReplica are the file bytes the site's
	// devices fetched from the primary (across the WAN) and from the
	// replica (at the site).
	BytesPrimary int64 `json:"bytesPrimary"`
	BytesReplica int64 `json:"bytesReplica"`
	// Fallbacks counts the files fetched from the alternative URL after
	// the first failed.
	Fallbacks int64 `json:"fallbacks,omitempty"`
}

// siteReports returns the per-site figures of the tally t.
func (s *Sim) siteReports(t *tally) []SiteReport {
	names := s.sc.siteList()
	devices := make([]int, len(names)+1)
	for i := range s.devs {
		devices[s.groups[s.devs[i].group].site]++
	}
	var out []SiteReport
	for i, name := range names {
		r := SiteReport{Site: name, Devices: devices[i+1], Replica: s.sc.Replicas[name]}
		if i+1 < len(t.sites) {
			r.BytesPrimary, r.BytesReplica, r.Fallbacks = t.sites[i+1][0], t.sites[i+1][1], t.fallbacks[i+1]
		}
		out = append(out, r)
	}
	return out
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
