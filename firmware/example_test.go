package firmware_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/opendus/opendus/firmware"
)

func ExampleParseSchedule() {
	s, err := firmware.ParseSchedule("sat, sun 0:00-24:00; Mon-Fri 22:00-05:00")
	if err != nil {
		panic(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	friday := time.Date(2026, 6, 5, 13, 0, 0, 0, berlin)
	next := s.NextOpen(friday, berlin)
	fmt.Println(s)
	fmt.Println("opens", next.Format("Mon 15:04"), "closes", s.CloseAt(next, berlin).Format("Mon 15:04"))
	_, err = firmware.ParseSchedule("Mon-Fri 22:00-05:00, Sat 01:00-02:00")
	fmt.Println(err)
	// Output:
	// Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00
	// opens Fri 22:00 closes Mon 00:00
	// invalid maintenance window "Mon-Fri 22:00-05:00, Sat 01:00-02:00": ",Sat01:00-02:00" after the times; separate windows with ';'; write windows like "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00"
}

func ExampleSiteTable_Lookup() {
	sites, err := firmware.NewSiteTable([]firmware.Site{
		{Name: "berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin"},
		{Name: "berlin-lab", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.9.0/24")}, TimeZone: "Europe/Berlin"},
	}, nil)
	if err != nil {
		panic(err)
	}
	for _, a := range []string{"10.1.2.3", "::ffff:10.1.9.9", "192.0.2.1"} {
		s, ok := sites.Lookup(netip.MustParseAddr(a))
		fmt.Println(a, s.Name, ok, s.Location)
	}
	// Output:
	// 10.1.2.3 berlin true Europe/Berlin
	// ::ffff:10.1.9.9 berlin-lab true Europe/Berlin
	// 192.0.2.1  false UTC
}

// A check-in during a rollout: the handler looks up the site, hashes the
// cohort, and decides.
func ExampleDecide() {
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	rule := firmware.NewRule(id, start)
	rule.Approved = firmware.MustParseVersion("3.5.6907.35")
	rule.Pending = firmware.MustParseVersion("4.0.7577.4372")

	plan := firmware.DefaultPlan() // 1%, 10%, 50%, 100%, a day apart
	ro, events, err := firmware.StartRollout(&rule, plan, "alice", start)
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		fmt.Println(e.Kind, e.Detail)
	}

	sites, _ := firmware.NewSiteTable([]firmware.Site{{
		Name: "berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		TimeZone: "Europe/Berlin", Windows: firmware.MustParseSchedule("Mon-Fri 22:00-05:00"),
	}}, nil)
	site, _ := sites.Lookup(netip.MustParseAddr("10.1.2.3"))
	for _, key := range []string{"serial:SN42", "00-04-F2-00-00-01"} {
		q := firmware.OfferRequest{
			Rule: &rule, Rollout: &ro, Current: rule.Approved, Cohort: firmware.Cohort(key),
			Site: site, MinOpen: 30 * time.Minute, Now: start.Add(13 * time.Hour), // Monday 23:00 in Berlin
		}
		d := firmware.Decide(&q)
		fmt.Printf("%s (cohort %d): offer %q, hold %q, come back %s, install by %s\n", key, q.Cohort, d.Version,
			d.Hold, when(d.ComeBack, site.Location), when(d.InstallBy, site.Location))
	}
	// Output:
	// started started
	// wave wave 1 of 4 opened: 1% of devices (1% more)
	// serial:SN42 (cohort 66): offer "4.0.7577.4372", hold "", come back -, install by Tue 05:00
	// 00-04-F2-00-00-01 (cohort 5658): offer "", hold "wave", come back Thu 22:00, install by -
}

func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("Mon 15:04")
}
