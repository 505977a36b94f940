package firmware

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ErrSite is returned when a site, its name or its subnets are malformed,
// and by NewSiteTable for sites that clash.
var ErrSite = errors.New("invalid site")

// RemoteSite is the name of the site of devices that check in through the
// edge (the external listener), whatever their address. It is reserved: a
// site of that name has no subnets, only a time zone and windows for those
// devices.
const RemoteSite = "remote"

// MaxSiteNameLen bounds a site's name, as for a DNS label.
const MaxSiteNameLen = 63

// Site is a place devices are at, known by the subnets their check-ins
// come from: it gives them a time zone and maintenance windows, and it is
// what rollout progress, alarms and (later) replicas are counted by.
//
// A device belongs to the site with the longest subnet containing the
// address the internal listener sees (see SiteTable); devices through the
// edge belong to RemoteSite. A site without subnets matches no address; it
// is found by name, as the remote site is.
type Site struct {
	// Name is 1 to MaxSiteNameLen lower-case letters, digits and hyphens,
	// starting with a letter or digit and not ending with a hyphen (see
	// ValidSiteName).
	Name string `json:"name"`
	// Subnets are the site's address ranges, IPv4 or IPv6, each in its
	// canonical form (no host bits set; IPv4 written as IPv4, never as
	// ::ffff:a.b.c.d). No two sites share a subnet; nested subnets may
	// belong to different sites (the longest match wins).
	Subnets []netip.Prefix `json:"subnets"`
	// TimeZone is the IANA name of the site's time zone, such as
	// Europe/Berlin; "" is UTC. Windows and rollout windows are read in it.
	TimeZone string `json:"timeZone,omitempty"`
	// Windows is when the site's devices may be offered updates; the zero
	// Schedule is always.
	Windows Schedule `json:"windows,omitzero"`
	// NoPeers turns subnet peers off for the site's devices: each
	// downloads its updates from the service (devsvc sites add --no-peers).
	NoPeers bool `json:"noPeers,omitempty"`
}

// Equal reports whether s and o are the same site: the same name, subnets
// in the same order, time zone, windows and peers. (go-cmp uses it.)
func (s Site) Equal(o Site) bool {
	return s.Name == o.Name && slices.Equal(s.Subnets, o.Subnets) && s.TimeZone == o.TimeZone && s.Windows.Equal(o.Windows) && s.NoPeers == o.NoPeers
}

// ValidSiteName checks a site name: 1 to MaxSiteNameLen lower-case ASCII
// letters, digits and hyphens, starting with a letter or digit and not
// ending with a hyphen, like a DNS label, so that it is safe in URLs, file
// names and host names.
func ValidSiteName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the site name is empty", ErrSite)
	case len(name) > MaxSiteNameLen:
		return fmt.Errorf("%w: site name %.16q... is longer than %d characters", ErrSite, name, MaxSiteNameLen)
	case name[0] == '-' || name[len(name)-1] == '-':
		return fmt.Errorf("%w: site name %q starts or ends with a hyphen", ErrSite, name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: site name %q has the character %q; use lower-case letters, digits and hyphens, like berlin-hq", ErrSite, name, c)
		}
	}
	return nil
}

// Validate checks the name, the subnets and the time zone's name (the
// zone itself is loaded by NewSiteTable), and that the remote site has no
// subnets. It lists every problem.
func (s Site) Validate() error {
	var errs []error
	if err := ValidSiteName(s.Name); err != nil {
		errs = append(errs, err)
	}
	if s.Name == RemoteSite && len(s.Subnets) > 0 {
		errs = append(errs, fmt.Errorf("%w: site %q is the devices that come through the edge and has no subnets; give it only a time zone and windows, and name sites of addresses otherwise", ErrSite, RemoteSite))
	}
	seen := make(map[netip.Prefix]bool, len(s.Subnets))
	for _, p := range s.Subnets {
		if err := validSubnet(p); err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", s.Name, err))
			continue
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("%w: site %s: subnet %s appears twice", ErrSite, s.Name, p))
		}
		seen[p] = true
	}
	if err := validZoneName(s.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("site %s: %w", s.Name, err))
	}
	return errors.Join(errs...)
}

func validSubnet(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w: subnet %s is not a valid CIDR prefix", ErrSite, p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%w: subnet %s is IPv4 written as IPv6; write it as IPv4, like 10.1.0.0/16", ErrSite, p)
	case p != p.Masked():
		return fmt.Errorf("%w: subnet %s has host bits set; did you mean %s?", ErrSite, p, p.Masked())
	}
	return nil
}

func validZoneName(tz string) error {
	if tz == "" {
		return nil
	}
	if tz == "Local" || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") || len(tz) > 64 {
		return fmt.Errorf("%w: time zone %q: want an IANA name like Europe/Berlin or America/New_York, or UTC", ErrSite, tz)
	}
	for _, c := range []byte(tz) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+') {
			return fmt.Errorf("%w: time zone %q has the character %q: want an IANA name like Europe/Berlin", ErrSite, tz, c)
		}
	}
	return nil
}

// ParseSubnets parses a comma-separated list of subnets in CIDR notation,
// IPv4 or IPv6 (10.1.0.0/16,2001:db8:1::/48). A bare address is a subnet of
// that one address (/32 or /128). Each must be canonical: no host bits set.
func ParseSubnets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%w: subnets %q: an empty item; want CIDR prefixes like 10.1.0.0/16,10.2.0.0/16", ErrSite, s)
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			if p, err = netip.ParsePrefix(item); err != nil {
				return nil, fmt.Errorf("%w: subnet %q: want a CIDR prefix like 10.1.0.0/16 or 2001:db8::/48", ErrSite, item)
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%w: subnet %q: want a CIDR prefix like 10.1.0.0/16 or 2001:db8::/48", ErrSite, item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err := validSubnet(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// FormatSubnets writes subnets as ParseSubnets reads them, comma-separated.
func FormatSubnets(ps []netip.Prefix) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ZonedSite is a site with its time zone loaded, as a SiteTable hands it
// out.
type ZonedSite struct {
	Site
	// Location is the site's TimeZone, loaded; never nil in a ZonedSite
	// from a SiteTable (UTC when TimeZone is "").
	Location *time.Location
}

// SiteTable finds the site of a device's address. It is built once from
// every site (NewSiteTable) and read concurrently without locks; a change
// of sites builds a new table. The zero SiteTable has no sites.
type SiteTable struct {
	sites  []ZonedSite // by name
	byName map[string]int
	v4, v6 []span // address ranges by start: the site they belong to
	remote ZonedSite
}

// span is a range of addresses from start to the next span's start, as a
// 128-bit number (IPv4 in the low 32 bits of the v4 table).
type span struct {
	hi, lo uint64
	site   int32 // index in sites; -1 none
}

// NewSiteTable checks and indexes sites: each must be valid (Site.Validate),
// names unique, no subnet in two sites, and every time zone known to load,
// which is called once per zone name (nil: time.LoadLocation, which reads
// the system's zone database; a server should import time/tzdata as a
// fallback). It lists every problem. The table keeps copies: later changes
// to sites do not reach it.
func NewSiteTable(sites []Site, load func(name string) (*time.Location, error)) (*SiteTable, error) {
	if load == nil {
		load = time.LoadLocation
	}
	t := &SiteTable{byName: make(map[string]int, len(sites)), remote: ZonedSite{Site: Site{Name: RemoteSite}, Location: time.UTC}}
	var errs []error
	zones := map[string]*time.Location{"": time.UTC, "UTC": time.UTC}
	owner := map[netip.Prefix]string{}
	for _, s := range sites {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := t.byName[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%w: two sites are named %s", ErrSite, s.Name))
			continue
		}
		for _, p := range s.Subnets {
			if o, ok := owner[p]; ok {
				errs = append(errs, fmt.Errorf("%w: subnet %s is in both site %s and site %s", ErrSite, p, o, s.Name))
			}
			owner[p] = s.Name
		}
		loc, ok := zones[s.TimeZone]
		if !ok {
			var err error
			if loc, err = load(s.TimeZone); err != nil || loc == nil {
				errs = append(errs, fmt.Errorf("%w: site %s: unknown time zone %q: want an IANA name like Europe/Berlin (%v)", ErrSite, s.Name, s.TimeZone, err))
				continue
			}
			zones[s.TimeZone] = loc
		}
		s.Subnets = slices.Clone(s.Subnets)
		t.byName[s.Name] = len(t.sites)
		t.sites = append(t.sites, ZonedSite{Site: s, Location: loc})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(t.sites, func(a, b ZonedSite) int { return cmp.Compare(a.Name, b.Name) })
	var p4, p6 []prefixRange
	for i, s := range t.sites {
		t.byName[s.Name] = i
		if s.Name == RemoteSite {
			t.remote = s
		}
		for _, p := range s.Subnets {
			r := rangeOf(p, int32(i))
			if p.Addr().Is4() {
				p4 = append(p4, r)
			} else {
				p6 = append(p6, r)
			}
		}
	}
	t.v4, t.v6 = spans(p4), spans(p6)
	return t, nil
}

// Lookup returns the site whose subnet is the longest one containing addr
// (an IPv4 address written as IPv6, ::ffff:a.b.c.d, is its IPv4 address; a
// zone is ignored). With ok false the result is the zero site in UTC,
// always open, with no name. It allocates nothing and takes a binary
// search.
func (t *SiteTable) Lookup(addr netip.Addr) (site ZonedSite, ok bool) {
	none := ZonedSite{Location: time.UTC}
	if t == nil || !addr.IsValid() {
		return none, false
	}
	addr = addr.Unmap()
	var key span
	tab := t.v6
	if addr.Is4() {
		a := addr.As4()
		key.lo, tab = uint64(binary.BigEndian.Uint32(a[:])), t.v4
	} else {
		a := addr.As16()
		key.hi, key.lo = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	}
	// The last span starting at or before key.
	i, j := 0, len(tab)
	for i < j {
		h := int(uint(i+j) >> 1)
		if s := tab[h]; s.hi < key.hi || s.hi == key.hi && s.lo <= key.lo {
			i = h + 1
		} else {
			j = h
		}
	}
	if i == 0 || tab[i-1].site < 0 {
		return none, false
	}
	return t.sites[tab[i-1].site], true
}

// Remote returns the site of devices that come through the edge: the site
// named RemoteSite if there is one, else a site of that name in UTC,
// always open.
func (t *SiteTable) Remote() ZonedSite {
	if t == nil {
		return ZonedSite{Site: Site{Name: RemoteSite}, Location: time.UTC}
	}
	return t.remote
}

// ByName returns the named site.
func (t *SiteTable) ByName(name string) (ZonedSite, bool) {
	if t == nil {
		return ZonedSite{Location: time.UTC}, false
	}
	i, ok := t.byName[name]
	if !ok {
		return ZonedSite{Location: time.UTC}, false
	}
	return t.sites[i], true
}

// Sites returns the sites in name order. The Subnets slices are the
// table's: do not modify them.
func (t *SiteTable) Sites() []ZonedSite {
	if t == nil {
		return nil
	}
	return slices.Clone(t.sites)
}

// Len returns the number of sites.
func (t *SiteTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.sites)
}

// prefixRange is a subnet as the first and last address, 128-bit.
type prefixRange struct {
	first, last u128
	bits        int
	site        int32
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func rangeOf(p netip.Prefix, site int32) prefixRange {
	var first, last u128
	if p.Addr().Is4() {
		a := p.Addr().As4()
		v := uint64(binary.BigEndian.Uint32(a[:]))
		first = u128{0, v}
		last = u128{0, v | (1<<(32-p.Bits()) - 1)}
	} else {
		a := p.Addr().As16()
		first = u128{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
		last = first
		switch host := 128 - p.Bits(); {
		case host >= 64:
			last.lo = ^uint64(0)
			if host == 128 {
				last.hi = ^uint64(0)
			} else {
				last.hi |= 1<<(host-64) - 1
			}
		case host > 0:
			last.lo |= 1<<host - 1
		}
	}
	return prefixRange{first, last, p.Bits(), site}
}

// spans flattens nested subnets into disjoint ranges, each belonging to
// its longest subnet: subnets are sorted by first address, shorter first,
// and a stack holds those that contain the current address.
func spans(ps []prefixRange) []span {
	if len(ps) == 0 {
		return nil
	}
	slices.SortFunc(ps, func(a, b prefixRange) int {
		if a.first != b.first {
			if a.first.less(b.first) {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.bits, b.bits)
	})
	out := []span{{site: -1}}
	emit := func(at u128, site int32) {
		if l := &out[len(out)-1]; l.hi == at.hi && l.lo == at.lo {
			l.site = site
			return
		}
		out = append(out, span{at.hi, at.lo, site})
	}
	var stack []prefixRange
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.last.hi == ^uint64(0) && top.last.lo == ^uint64(0) {
			return // runs to the end of the address space
		}
		next := top.last
		if next.lo++; next.lo == 0 {
			next.hi++
		}
		site := int32(-1)
		if len(stack) > 0 {
			site = stack[len(stack)-1].site
		}
		emit(next, site)
	}
	for _, p := range ps {
		for len(stack) > 0 && stack[len(stack)-1].last.less(p.first) {
			pop()
		}
		emit(p.first, p.site)
		stack = append(stack, p)
	}
	for len(stack) > 0 {
		pop()
	}
	// Merge neighbours of the same site.
	merged := out[:1]
	for _, s := range out[1:] {
		if s.site != merged[len(merged)-1].site {
			merged = append(merged, s)
		}
	}
	return slices.Clip(merged)
}
