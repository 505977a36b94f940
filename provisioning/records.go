package provisioning

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Scopes of a DNS record: which DNS serves it.
const (
	ScopeInternal = "internal" // the DNS servers of the network inside the firewall
	ScopeExternal = "external" // the public DNS, for devices outside
)

// DefaultTTL is the TTL of the records of a zero Plan.TTL.
const DefaultTTL = time.Hour

// ErrNoAddress is returned by Records when the plan has no internal
// address for ucupdates-r2.<domain>.
var ErrNoAddress = errors.New("provisioning: no address for the update service")

// Plan is what Records needs to know about a deployment.
type Plan struct {
	// Domain is the SIP/DNS domain: devices look up ucupdates-r2.<Domain>.
	Domain string
	// InternalName and ExternalName are the names devices are given in
	// the provisioned URLs; InternalName may be ucupdates-r2.<Domain>
	// itself, ExternalName is served by the public DNS. Empty: no record.
	InternalName, ExternalName string
	// InternalAddrs are the addresses of the internal listener (required);
	// ExternalAddrs those of the edge that forwards to the external
	// listener (none: the external name gets no record).
	InternalAddrs, ExternalAddrs []netip.Addr
	// TTL of every record; default DefaultTTL.
	TTL time.Duration
}

// Record is one DNS resource record to create.
type Record struct {
	Scope string `json:"scope"` // ScopeInternal or ScopeExternal
	Zone  string `json:"zone"`  // the zone it belongs in, e.g. contoso.com
	Name  string `json:"name"`  // fully qualified owner name, without the final dot
	Type  string `json:"type"`  // A or AAAA
	Value string `json:"value"` // the address
	TTL   int64  `json:"ttl"`   // in seconds
}

// Records returns the records an administrator must create: an A or AAAA
// record of ucupdates-r2.<Domain> per internal address (the DNS fallback of
// devices nobody signed in to), the same for InternalName when it is another
// name, and one per external address for ExternalName. Names are validated
// and lower-cased; duplicates are left out.
func Records(p Plan) ([]Record, error) {
	domain, err := CanonicalDomain(p.Domain)
	if err != nil {
		return nil, err
	}
	if len(p.InternalAddrs) == 0 {
		return nil, fmt.Errorf("%w: ucupdates-r2.%s needs the internal listener's address", ErrNoAddress, domain)
	}
	ttl := p.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	var out []Record
	add := func(scope, name string, addrs []netip.Addr) error {
		name, err := canonicalName(name, 0)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			a = a.Unmap().WithZone("")
			if !usable(a) {
				return fmt.Errorf("provisioning: %s: address %s cannot be a host's", name, a)
			}
			r := Record{Scope: scope, Zone: zoneOf(name, domain), Name: name, Type: "A", Value: a.String(), TTL: seconds(ttl)}
			if a.Is6() {
				r.Type = "AAAA"
			}
			dup := false
			for _, o := range out {
				dup = dup || o == r
			}
			if !dup {
				out = append(out, r)
			}
		}
		return nil
	}
	if err := add(ScopeInternal, FallbackLabel+"."+domain, p.InternalAddrs); err != nil {
		return nil, err
	}
	if p.InternalName != "" {
		if err := add(ScopeInternal, p.InternalName, p.InternalAddrs); err != nil {
			return nil, err
		}
	}
	if p.ExternalName != "" {
		if err := add(ScopeExternal, p.ExternalName, p.ExternalAddrs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// zoneOf returns the zone a name belongs in: domain when the name is in
// it, else the name's parent.
func zoneOf(name, domain string) string {
	if name == domain || strings.HasSuffix(name, "."+domain) {
		return domain
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		return parent
	}
	return name
}

// relative returns the record's name relative to its zone, "@" for the
// zone's apex.
func (r Record) relative() string {
	if r.Name == r.Zone {
		return "@"
	}
	return strings.TrimSuffix(r.Name, "."+r.Zone)
}

// ZoneLine returns the record as a zone file line (RFC 1035 master file
// format), fully qualified: "ucupdates-r2.contoso.com. 3600 IN A 10.0.0.5".
func (r Record) ZoneLine() string {
	return fmt.Sprintf("%s.\t%d\tIN\t%s\t%s", r.Name, r.TTL, r.Type, r.Value)
}

// PowerShell returns the Windows DNS Server command that creates the
// record: Add-DnsServerResourceRecordA or ...AAAA.
func (r Record) PowerShell() string {
	param := "-IPv4Address"
	if r.Type == "AAAA" {
		param = "-IPv6Address"
	}
	return fmt.Sprintf("Add-DnsServerResourceRecord%s -ZoneName %q -Name %q %s %q -TimeToLive %s",
		r.Type, r.Zone, r.relative(), param, r.Value, timeSpan(r.TTL))
}

// timeSpan formats seconds as a .NET TimeSpan: [d.]hh:mm:ss.
func timeSpan(secs int64) string {
	d, rest := secs/86400, secs%86400
	s := fmt.Sprintf("%02d:%02d:%02d", rest/3600, rest%3600/60, rest%60)
	if d > 0 {
		s = strconv.FormatInt(d, 10) + "." + s
	}
	return s
}

// usable reports whether a is an address a device may connect to.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}
