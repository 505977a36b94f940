package provisioning_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/provisioning"
)

func TestRecords(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name      string
		plan      provisioning.Plan
		wantZone  []string
		wantShell []string
	}{
		{
			name: "defaults",
			plan: provisioning.Plan{Domain: "Contoso.com", InternalName: "ucupdates-r2.contoso.com", ExternalName: "ucupdates.contoso.com",
				InternalAddrs: []netip.Addr{a("10.0.0.5"), a("2001:db8::5"), a("::ffff:10.0.0.5")}, ExternalAddrs: []netip.Addr{a("203.0.113.7")}},
			wantZone: []string{
				"ucupdates-r2.contoso.com.\t3600\tIN\tA\t10.0.0.5",
				"ucupdates-r2.contoso.com.\t3600\tIN\tAAAA\t2001:db8::5",
				"ucupdates.contoso.com.\t3600\tIN\tA\t203.0.113.7",
			},
			wantShell: []string{
				`Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv4Address "10.0.0.5" -TimeToLive 01:00:00`,
				`Add-DnsServerResourceRecordAAAA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv6Address "2001:db8::5" -TimeToLive 01:00:00`,
				`Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates" -IPv4Address "203.0.113.7" -TimeToLive 01:00:00`,
			},
		},
		{
			name: "own internal name, no external address, long TTL",
			plan: provisioning.Plan{Domain: "contoso.com", InternalName: "dus.corp.contoso.com.", ExternalName: "ucupdates.contoso.com",
				InternalAddrs: []netip.Addr{a("10.0.0.5")}, TTL: 50 * time.Hour},
			wantZone: []string{
				"ucupdates-r2.contoso.com.\t180000\tIN\tA\t10.0.0.5",
				"dus.corp.contoso.com.\t180000\tIN\tA\t10.0.0.5",
			},
			wantShell: []string{
				`Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv4Address "10.0.0.5" -TimeToLive 2.02:00:00`,
				`Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "dus.corp" -IPv4Address "10.0.0.5" -TimeToLive 2.02:00:00`,
			},
		},
		{
			name: "names in another zone",
			plan: provisioning.Plan{Domain: "contoso.com", InternalName: "dus.fabrikam.net", InternalAddrs: []netip.Addr{a("10.0.0.5")}, TTL: 90 * time.Second},
			wantZone: []string{
				"ucupdates-r2.contoso.com.\t90\tIN\tA\t10.0.0.5",
				"dus.fabrikam.net.\t90\tIN\tA\t10.0.0.5",
			},
			wantShell: []string{
				`Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv4Address "10.0.0.5" -TimeToLive 00:01:30`,
				`Add-DnsServerResourceRecordA -ZoneName "fabrikam.net" -Name "dus" -IPv4Address "10.0.0.5" -TimeToLive 00:01:30`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := provisioning.Records(tt.plan)
			if err != nil {
				t.Fatalf("Records = %v", err)
			}
			var zone, shell []string
			for _, r := range recs {
				zone = append(zone, r.ZoneLine())
				shell = append(shell, r.PowerShell())
			}
			if diff := cmp.Diff(tt.wantZone, zone); diff != "" {
				t.Errorf("zone lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantShell, shell); diff != "" {
				t.Errorf("PowerShell (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordsRefuses(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		plan provisioning.Plan
		want error
	}{
		{"no address", provisioning.Plan{Domain: "contoso.com"}, provisioning.ErrNoAddress},
		{"no domain", provisioning.Plan{InternalAddrs: []netip.Addr{a("10.0.0.5")}}, provisioning.ErrInvalidDomain},
		{"bad internal name", provisioning.Plan{Domain: "contoso.com", InternalName: "dus_1.contoso.com", InternalAddrs: []netip.Addr{a("10.0.0.5")}}, provisioning.ErrInvalidDomain},
		{"unspecified address", provisioning.Plan{Domain: "contoso.com", InternalAddrs: []netip.Addr{a("0.0.0.0")}}, nil},
		{"multicast address", provisioning.Plan{Domain: "contoso.com", InternalAddrs: []netip.Addr{a("10.0.0.5")}, ExternalName: "x.contoso.com", ExternalAddrs: []netip.Addr{a("ff02::1")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := provisioning.Records(tt.plan)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Records = %v, %v; want error %v", recs, err, tt.want)
			}
		})
	}
}
