package simulator

import (
	"fmt"
	"github.com/opendus/opendus/datadir"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/opendus/opendus/certs"
)

// LoadService describes the service running from the data directory dir,
// as devices see it: the domain and names from its settings, the ports from
// its run file (DIR/run/serve.json, so `devsvc serve` must be running), and
// its CA (DIR/certs/ca.pem) as the only one trusted. The simulator's DNS
// server maps the internal and external names and ucupdates-r2.<domain> to
// the listeners' addresses (loopback when they listen on every address).
// A service on a simulated clock (devsvc serve --simulated-clock) has its
// clock in ClockFile: the simulation drives it.
func LoadService(dir string) (Service, error) {
	st, err := datadir.LoadSettings(dir)
	if err != nil {
		return Service{}, fmt.Errorf("%s: %w", dir, err)
	}
	ri, err := datadir.ReadRunInfo(dir)
	if err != nil {
		return Service{}, fmt.Errorf("%s: is devsvc serve running? %w", dir, err)
	}
	pool, err := LoadCA(filepath.Join(dir, datadir.CertsDir, certs.CACertFile))
	if err != nil {
		return Service{}, err
	}
	svc := Service{Domain: st.Domain, RootCAs: pool, Hosts: map[string]netip.Addr{}}
	// The first root version: what devices came provisioned with; they
	// follow the chain to the latest.
	if root, err := os.ReadFile(filepath.Join(dir, datadir.KeysDir, "root", "1.root.json")); err == nil {
		svc.Root = root
	}
	if ri.SimulatedClock {
		svc.ClockFile = filepath.Join(dir, datadir.RunDir, datadir.ClockFile)
	}
	for _, l := range []struct {
		url  *string
		name string
		addr string
	}{
		{&svc.InternalURL, st.InternalName, ri.Internal},
		{&svc.ExternalURL, st.ExternalName, ri.External},
	} {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			return Service{}, fmt.Errorf("%s: run file: listener address %q: %w", dir, l.addr, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.IsUnspecified() {
			ip = netip.MustParseAddr("127.0.0.1")
		}
		name := strings.ToLower(l.name)
		*l.url = "https://" + net.JoinHostPort(name, port) + "/"
		svc.Hosts[name] = ip
		if l.url == &svc.InternalURL {
			svc.Hosts["ucupdates-r2."+strings.ToLower(st.Domain)] = ip
		}
	}
	return svc, nil
}
