package firmware

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidSiteName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"berlin-hq", true},
		{"b", true},
		{"site7", true},
		{"7th-floor", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Berlin", false},
		{"berlin_hq", false},
		{"berlin.hq", false},
		{"-berlin", false},
		{"berlin-", false},
		{"bér", false},
		{"a b", false},
	}
	for _, tt := range tests {
		err := ValidSiteName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidSiteName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrSite) {
			t.Errorf("ValidSiteName(%q) error %v does not wrap ErrSite", tt.name, err)
		}
	}
}

func TestSiteValidate(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		site Site
		want string // a part of the error; "" valid
	}{
		{"valid", Site{Name: "hq", Subnets: []netip.Prefix{p("10.1.0.0/16"), p("2001:db8::/32")}, TimeZone: "Europe/Berlin"}, ""},
		{"no subnets", Site{Name: "edge-west"}, ""},
		{"remote with a zone", Site{Name: RemoteSite, TimeZone: "America/New_York"}, ""},
		{"remote with subnets", Site{Name: RemoteSite, Subnets: []netip.Prefix{p("10.0.0.0/8")}}, "has no subnets"},
		{"host bits", Site{Name: "hq", Subnets: []netip.Prefix{p("10.1.2.3/16")}}, "did you mean 10.1.0.0/16?"},
		{"4 in 6", Site{Name: "hq", Subnets: []netip.Prefix{p("::ffff:10.0.0.0/104")}}, "write it as IPv4"},
		{"twice", Site{Name: "hq", Subnets: []netip.Prefix{p("10.0.0.0/8"), p("10.0.0.0/8")}}, "appears twice"},
		{"invalid prefix", Site{Name: "hq", Subnets: []netip.Prefix{{}}}, "not a valid CIDR"},
		{"Local", Site{Name: "hq", TimeZone: "Local"}, "IANA name"},
		{"path", Site{Name: "hq", TimeZone: "../../etc/passwd"}, "IANA name"},
		{"space", Site{Name: "hq", TimeZone: "Europe/New York"}, "IANA name"},
		{"every problem", Site{Name: "HQ", Subnets: []netip.Prefix{p("10.1.2.3/16")}, TimeZone: "Local"}, "character 'H'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.site.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrSite) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an ErrSite saying %q", err, tt.want)
			}
		})
	}
	err := Site{Name: "HQ", Subnets: []netip.Prefix{p("10.1.2.3/16")}, TimeZone: "Local"}.Validate()
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("Validate() listed %d problems, want 3:\n%v", n, err)
	}
}

func TestParseSubnets(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"10.1.0.0/16", "10.1.0.0/16", ""},
		{"10.1.0.0/16, 10.2.0.0/16,2001:db8:1::/48", "10.1.0.0/16,10.2.0.0/16,2001:db8:1::/48", ""},
		{"192.0.2.7", "192.0.2.7/32", ""},
		{"2001:db8::7", "2001:db8::7/128", ""},
		{"0.0.0.0/0,::/0", "0.0.0.0/0,::/0", ""},
		{"10.1.2.3/16", "", "did you mean 10.1.0.0/16?"},
		{"10.1.0.0/33", "", "want a CIDR prefix"},
		{"10.1.0/16", "", "want a CIDR prefix"},
		{"fe80::1%eth0", "", "want a CIDR prefix"},
		{"10.1.0.0/16,", "", "an empty item"},
		{"", "", "an empty item"},
		{"::ffff:10.0.0.0/104", "", "write it as IPv4"},
	}
	for _, tt := range tests {
		ps, err := ParseSubnets(tt.in)
		if tt.err != "" {
			if err == nil || !errors.Is(err, ErrSite) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSubnets(%q) = %v, %v, want an ErrSite saying %q", tt.in, ps, err, tt.err)
			}
			continue
		}
		if err != nil || FormatSubnets(ps) != tt.want {
			t.Errorf("ParseSubnets(%q) = %q, %v, want %q", tt.in, FormatSubnets(ps), err, tt.want)
		}
	}
}

func TestNewSiteTableRefuses(t *testing.T) {
	p := netip.MustParsePrefix
	_, err := NewSiteTable([]Site{
		{Name: "a", Subnets: []netip.Prefix{p("10.0.0.0/8")}},
		{Name: "b", Subnets: []netip.Prefix{p("10.0.0.0/8"), p("10.1.0.0/16")}}, // identical prefix
		{Name: "a"}, // duplicate name
		{Name: "c", TimeZone: "Mars/Olympus_Mons"}, // unknown zone
		{Name: "D"}, // invalid
		{Name: "e", Subnets: []netip.Prefix{p("10.1.0.0/24")}}, // nested: fine
	}, nil)
	for _, want := range []string{"subnet 10.0.0.0/8 is in both site a and site b", "two sites are named a", `unknown time zone "Mars/Olympus_Mons"`, `site name "D"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewSiteTable error = %v, want it to say %q", err, want)
		}
	}
	if !errors.Is(err, ErrSite) {
		t.Errorf("NewSiteTable error %v does not wrap ErrSite", err)
	}
}

func TestSiteTableLookup(t *testing.T) {
	p := netip.MustParsePrefix
	tab, err := NewSiteTable([]Site{
		{Name: "corp", Subnets: []netip.Prefix{p("10.0.0.0/8")}, TimeZone: "America/New_York"},
		{Name: "berlin", Subnets: []netip.Prefix{p("10.1.0.0/16"), p("2001:db8:1::/48")}, TimeZone: "Europe/Berlin", Windows: MustParseSchedule("Mon-Fri 22:00-05:00")},
		{Name: "berlin-lab", Subnets: []netip.Prefix{p("10.1.2.0/24")}, TimeZone: "Europe/Berlin"},
		{Name: "berlin-lab-b", Subnets: []netip.Prefix{p("10.1.2.128/25")}},
		{Name: "v6", Subnets: []netip.Prefix{p("2001:db8::/32")}},
		{Name: "link", Subnets: []netip.Prefix{p("fe80::/10")}},
		{Name: "top", Subnets: []netip.Prefix{p("255.255.255.0/24"), p("ffff::/16")}},
		{Name: "host", Subnets: []netip.Prefix{p("192.0.2.7/32")}},
		{Name: RemoteSite, TimeZone: "Asia/Tokyo"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr, want string // want "" for no site
	}{
		{"10.9.9.9", "corp"},
		{"10.0.0.0", "corp"},
		{"10.255.255.255", "corp"},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"10.1.0.0", "berlin"},
		{"10.1.255.255", "berlin"},
		{"10.2.0.0", "corp"},
		{"10.1.2.0", "berlin-lab"},
		{"10.1.2.127", "berlin-lab"},
		{"10.1.2.128", "berlin-lab-b"},
		{"10.1.2.255", "berlin-lab-b"},
		{"10.1.3.0", "berlin"},
		{"::ffff:10.1.2.200", "berlin-lab-b"}, // 4-in-6 is its IPv4 address
		{"2001:db8:1::5", "berlin"},
		{"2001:db8:1:ffff:ffff:ffff:ffff:ffff", "berlin"},
		{"2001:db8:2::1", "v6"},
		{"2001:db9::1", ""},
		{"fe80::1%eth0", "link"},
		{"255.255.255.255", "top"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "top"},
		{"192.0.2.7", "host"},
		{"192.0.2.8", ""},
		{"::a01:203", ""}, // ::10.1.2.3 is IPv6, not 10.1.2.3
		{"0.0.0.0", ""},
		{"::", ""},
	}
	for _, tt := range tests {
		s, ok := tab.Lookup(netip.MustParseAddr(tt.addr))
		if s.Name != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%s) = %q, %v, want %q", tt.addr, s.Name, ok, tt.want)
		}
		if s.Location == nil {
			t.Errorf("Lookup(%s) has no Location", tt.addr)
		}
	}
	if s, ok := tab.Lookup(netip.Addr{}); ok || s.Location != time.UTC {
		t.Errorf("Lookup(invalid) = %+v, %v, want no site in UTC", s, ok)
	}
	b, _ := tab.Lookup(netip.MustParseAddr("10.1.7.7"))
	if b.Location.String() != "Europe/Berlin" || !b.Windows.Equal(MustParseSchedule("Mon-Fri 22:00-05:00")) {
		t.Errorf("berlin = %v %v, want Europe/Berlin and its windows", b.Location, b.Windows)
	}
	if r := tab.Remote(); r.Name != RemoteSite || r.Location.String() != "Asia/Tokyo" {
		t.Errorf("Remote() = %q in %v, want the configured remote site in Asia/Tokyo", r.Name, r.Location)
	}
	if s, ok := tab.ByName("berlin-lab"); !ok || s.Name != "berlin-lab" {
		t.Errorf("ByName(berlin-lab) = %q, %v", s.Name, ok)
	}
	if got := tab.Len(); got != 9 {
		t.Errorf("Len() = %d, want 9", got)
	}
	if got := tab.Sites(); got[0].Name != "berlin" || got[len(got)-1].Name != "v6" {
		t.Errorf("Sites() are not in name order: %q ... %q", got[0].Name, got[len(got)-1].Name)
	}
	var none *SiteTable
	if r := none.Remote(); r.Name != RemoteSite || r.Location != time.UTC {
		t.Errorf("nil table Remote() = %q in %v, want remote in UTC", r.Name, r.Location)
	}
	if _, ok := none.Lookup(netip.MustParseAddr("10.1.1.1")); ok {
		t.Error("a nil table found a site")
	}
	if n := testing.AllocsPerRun(100, func() { tab.Lookup(netip.MustParseAddr("2001:db8:1::5")) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

func TestSiteTableCatchAll(t *testing.T) {
	p := netip.MustParsePrefix
	tab, err := NewSiteTable([]Site{
		{Name: "all4", Subnets: []netip.Prefix{p("0.0.0.0/0")}},
		{Name: "all6", Subnets: []netip.Prefix{p("::/0")}},
		{Name: "lab", Subnets: []netip.Prefix{p("127.0.0.0/8")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"1.2.3.4": "all4", "127.0.0.1": "lab", "::ffff:1.2.3.4": "all4", "2001:db8::1": "all6", "::1": "all6"} {
		if s, _ := tab.Lookup(netip.MustParseAddr(addr)); s.Name != want {
			t.Errorf("Lookup(%s) = %q, want %q", addr, s.Name, want)
		}
	}
}

// TestSiteTableAgainstLinearScan compares Lookup with the longest match
// found by trying every subnet, for random nested subnets and addresses
// at and around their edges.
func TestSiteTableAgainstLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2026))
	for round := range 20 {
		var sites []Site
		seen := map[netip.Prefix]bool{}
		var all []netip.Prefix
		owner := map[netip.Prefix]string{}
		for i := range 60 {
			s := Site{Name: fmt.Sprintf("s%d", i)}
			for range 1 + rng.IntN(3) {
				var pf netip.Prefix
				if rng.IntN(2) == 0 {
					// IPv4 under 10.0.0.0/8 mostly, so that they nest.
					a := [4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}
					pf = netip.PrefixFrom(netip.AddrFrom4(a), 8+rng.IntN(25)).Masked()
				} else {
					a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4))}
					for j := 5; j < 16; j++ {
						a[j] = byte(rng.IntN(256))
					}
					pf = netip.PrefixFrom(netip.AddrFrom16(a), 32+rng.IntN(97)).Masked()
				}
				if seen[pf] {
					continue
				}
				seen[pf] = true
				s.Subnets = append(s.Subnets, pf)
				all = append(all, pf)
				owner[pf] = s.Name
			}
			sites = append(sites, s)
		}
		tab, err := NewSiteTable(sites, nil)
		if err != nil {
			t.Fatal(err)
		}
		linear := func(a netip.Addr) string {
			best, bits := "", -1
			for _, pf := range all {
				if pf.Contains(a) && pf.Bits() > bits {
					best, bits = owner[pf], pf.Bits()
				}
			}
			return best
		}
		var addrs []netip.Addr
		for _, pf := range all {
			first := pf.Addr()
			last := lastAddr(pf)
			addrs = append(addrs, first, last, first.Prev(), last.Next())
		}
		for range 2000 {
			a := [4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			addrs = append(addrs, netip.AddrFrom4(a))
		}
		for _, a := range addrs {
			if !a.IsValid() {
				continue
			}
			got, _ := tab.Lookup(a)
			if want := linear(a); got.Name != want {
				t.Fatalf("round %d: Lookup(%s) = %q, want %q", round, a, got.Name, want)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestSiteJSON(t *testing.T) {
	in := Site{Name: "berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin", Windows: MustParseSchedule("Mon-Fri 22:00-05:00")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"name":"berlin","subnets":["10.1.0.0/16"],"timeZone":"Europe/Berlin","windows":"Mon-Fri 22:00-05:00"}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	var out Site
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	out.Subnets[0] = netip.MustParsePrefix("10.2.0.0/16")
	if cmp.Equal(in, out) {
		t.Error("sites with different subnets compare equal")
	}
}
