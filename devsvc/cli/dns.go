package cli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/provisioning"
)

var dnsCmd = &command{
	name: "dns", args: "[--address IP]... [--external-address IP]... [--ttl D]",
	summary: "print the DNS records to create for the service (zone file and Windows DNS)",
	help: `Devices that nobody ever signed in to find the service as
ucupdates-r2.<domain>: that name needs an A (IPv4) or AAAA (IPv6) record in
the internal DNS for each address of the internal listener. The internal name
of the settings (internal_name) needs the same records when it is another
name; the external name (external_name) needs records in the public DNS that
point at the edge (reverse proxy) forwarding to the external listener.

The records are printed as zone file lines and as the equivalent
Add-DnsServerResourceRecordA/AAAA commands for Windows DNS Server; --json
prints them for scripts. Nothing is changed: create them on your DNS servers.

The internal addresses are the --address flags, else the internal listener's
address (internal_addr) when it is bound to one IP. The external ones are the
--external-address flags, else the external listener's when it is bound to one
public IP. The server certificate must cover every name (devsvc certs list).

Examples:
  devsvc dns --address 10.0.0.5
  devsvc dns --address 10.0.0.5 --address 2001:db8::5 --external-address 203.0.113.7
  devsvc dns --address 10.0.0.5 --ttl 5m --json`,
	setup: func(fs *flag.FlagSet) runFunc {
		var internal, external stringList
		var ttl time.Duration
		fs.Var(&internal, "address", "`IP` of the internal listener that devices reach (repeatable)")
		fs.Var(&external, "external-address", "public `IP` of the edge for the external name (repeatable)")
		fs.DurationVar(&ttl, "ttl", provisioning.DefaultTTL, "TTL of the records, `D` (a duration: 1h, 5m)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			if ttl < time.Second {
				return usagef("--ttl %v: want at least 1s", ttl)
			}
			s, err := datadir.LoadSettings(e.data)
			if err != nil {
				return err
			}
			plan := provisioning.Plan{Domain: s.Domain, InternalName: s.InternalName, ExternalName: s.ExternalName, TTL: ttl}
			var notes []string
			if plan.InternalAddrs, err = parseAddrs("--address", internal); err != nil {
				return err
			}
			if len(plan.InternalAddrs) == 0 {
				a, ok := listenerIP(s.InternalAddr)
				if !ok || a.IsLoopback() {
					return usagef("the internal listener (internal_addr %q) is not bound to one address devices can reach: pass --address IP", s.InternalAddr)
				}
				plan.InternalAddrs = []netip.Addr{a}
			}
			if plan.ExternalAddrs, err = parseAddrs("--external-address", external); err != nil {
				return err
			}
			if len(plan.ExternalAddrs) == 0 {
				if a, ok := listenerIP(s.ExternalAddr); ok && a.IsGlobalUnicast() && !a.IsPrivate() {
					plan.ExternalAddrs = []netip.Addr{a}
				} else if s.ExternalName != "" {
					notes = append(notes, fmt.Sprintf("%s (external_name) gets no record: pass --external-address with the public IP of the edge that forwards to the external listener (%s)", s.ExternalName, s.ExternalAddr))
				}
			}
			if _, port, err := net.SplitHostPort(s.InternalAddr); err == nil && port != "443" && port != "https" {
				notes = append(notes, fmt.Sprintf("devices that find the service through DNS connect to https://%s.%s/ on port 443, but internal_addr is %s: forward 443 to it", provisioning.FallbackLabel, s.Domain, s.InternalAddr))
			}
			recs, err := provisioning.Records(plan)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(e.data, datadir.ConfigFile), err)
			}
			if e.json {
				if notes == nil {
					notes = []string{}
				}
				return printJSON(e.stdout, map[string]any{"domain": s.Domain, "records": recs, "notes": notes})
			}
			printRecords(e, recs)
			for _, n := range notes {
				fmt.Fprintf(e.stderr, "note: %s\n", n)
			}
			return nil
		}
	},
}

// printRecords writes the records as zone file lines, then as PowerShell,
// each grouped by scope.
func printRecords(e *env, recs []provisioning.Record) {
	scopes := []struct{ scope, what string }{
		{provisioning.ScopeInternal, "internal DNS: devices inside the network"},
		{provisioning.ScopeExternal, "public DNS: devices outside, through the edge"},
	}
	fmt.Fprintln(e.stdout, "; Zone file lines")
	for _, sc := range scopes {
		first := true
		for _, r := range recs {
			if r.Scope != sc.scope {
				continue
			}
			if first {
				fmt.Fprintf(e.stdout, "; %s (zone %s)\n", sc.what, r.Zone)
				first = false
			}
			fmt.Fprintln(e.stdout, r.ZoneLine())
		}
	}
	fmt.Fprintln(e.stdout)
	fmt.Fprintln(e.stdout, "# Windows DNS Server (PowerShell, on the DNS server)")
	for _, sc := range scopes {
		first := true
		for _, r := range recs {
			if r.Scope != sc.scope {
				continue
			}
			if first {
				fmt.Fprintf(e.stdout, "# %s\n", sc.what)
				first = false
			}
			fmt.Fprintln(e.stdout, r.PowerShell())
		}
	}
}

// parseAddrs parses the IPs of a repeatable flag.
func parseAddrs(flagName string, values []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range values {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return nil, usagef("%s %q: want an IPv4 or IPv6 address", flagName, v)
		}
		out = append(out, a)
	}
	return out, nil
}

// listenerIP returns the IP a listen address ("10.0.0.5:443") is bound
// to, and false when it listens on every address (":443", "[::]:443") or
// names a host.
func listenerIP(addr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
