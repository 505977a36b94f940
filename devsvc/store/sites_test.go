package store

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

func site(name, subnets, tz, windows string) firmware.Site {
	s := firmware.Site{Name: name, TimeZone: tz, Windows: firmware.MustParseSchedule(windows)}
	if subnets != "" {
		ps, err := firmware.ParseSubnets(subnets)
		if err != nil {
			panic(err)
		}
		s.Subnets = ps
	}
	return s
}

func TestSites(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	hq := site("hq", "10.1.0.0/16", "Europe/Berlin", "Mon-Fri 22:00-05:00")
	lab := site("hq-lab", "10.1.9.0/24", "Europe/Berlin", "")
	ny := site("ny", "10.2.0.0/16,2001:db8::/48", "America/New_York", "Sat,Sun 00:00-24:00")
	steps := []struct {
		name    string
		op      func() error
		wantErr error
		wantIn  string // in the error
	}{
		{"add", func() error { _, err := s.PutSite(ctx, "admin", hq, false); return err }, nil, ""},
		{"add nested", func() error { _, err := s.PutSite(ctx, "admin", lab, false); return err }, nil, ""},
		{"add again", func() error { _, err := s.PutSite(ctx, "admin", hq, false); return err }, ErrExists, "sites update"},
		{"same subnet", func() error {
			_, err := s.PutSite(ctx, "admin", site("other", "10.1.0.0/16", "", ""), false)
			return err
		}, firmware.ErrSite, "subnet 10.1.0.0/16 is in both site hq and site other"},
		{"unknown zone", func() error {
			_, err := s.PutSite(ctx, "admin", site("mars", "10.9.0.0/16", "Mars/Olympus", ""), false)
			return err
		}, firmware.ErrSite, `unknown time zone "Mars/Olympus"`},
		{"bad name", func() error { _, err := s.PutSite(ctx, "admin", site("Berlin HQ", "", "", ""), false); return err }, firmware.ErrSite, "lower-case"},
		{"remote with subnets", func() error {
			_, err := s.PutSite(ctx, "admin", site(firmware.RemoteSite, "10.8.0.0/16", "", ""), false)
			return err
		}, firmware.ErrSite, "edge"},
		{"update a missing one", func() error { _, err := s.PutSite(ctx, "admin", ny, true); return err }, ErrNotFound, "sites add"},
		{"add another", func() error { _, err := s.PutSite(ctx, "admin", ny, false); return err }, nil, ""},
		{"update", func() error {
			ny.Windows = firmware.MustParseSchedule("Sun 01:00-05:00")
			_, err := s.PutSite(ctx, "admin", ny, true)
			return err
		}, nil, ""},
		{"remove a missing one", func() error { return s.RemoveSite(ctx, "admin", "nowhere") }, ErrNotFound, "nowhere"},
		{"remove", func() error { return s.RemoveSite(ctx, "admin", "hq-lab") }, nil, ""},
	}
	for _, st := range steps {
		seq := s.Catalog().Seq()
		err := st.op()
		if !isErr(err, st.wantErr) || (err != nil && !strings.Contains(err.Error(), st.wantIn)) {
			t.Errorf("%s: err = %v, want %v containing %q", st.name, err, st.wantErr, st.wantIn)
		}
		if got := s.Catalog().Seq(); (err == nil) != (got == seq+1) {
			t.Errorf("%s: history %d -> %d (err %v): one event per change, none for a refusal", st.name, seq, got, err)
		}
	}
	tab := s.Catalog().Sites()
	if diff := cmp.Diff([]firmware.Site{hq, ny}, s.Catalog().SiteList()); diff != "" {
		t.Errorf("sites (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ addr, want string }{{"10.1.9.7", "hq"}, {"10.1.2.3", "hq"}, {"2001:db8::1", "ny"}, {"192.0.2.1", ""}} {
		got, _ := tab.Lookup(netip.MustParseAddr(tt.addr))
		if got.Name != tt.want {
			t.Errorf("Lookup(%s) = %q, want %q", tt.addr, got.Name, tt.want)
		}
	}
	if z, _ := tab.ByName("ny"); z.Location.String() != "America/New_York" || z.Windows.String() != "Sun 01:00-05:00" {
		t.Errorf("ny = %+v, want New York's zone and the updated windows", z)
	}
	es, _ := s.History(ctx, 0, 0)
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action+" "+e.Subject)
	}
	want := []string{"site-add hq", "site-add hq-lab", "site-add ny", "site-update ny", "site-remove hq-lab"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if d := es[0].Detail; d != "subnets 10.1.0.0/16; time zone Europe/Berlin; windows Mon-Fri 22:00-05:00" || es[0].Actor != "admin" {
		t.Errorf("site-add event %+v", es[0])
	}
	checkConsistent(t, s)

	// The sites survive a reopen, and a zone that no longer loads is read
	// in UTC (and logged) rather than failing Open.
	dir := s.Dir()
	s.Close()
	s2 := openDir(t, dir, &Options{LoadZone: func(name string) (*time.Location, error) {
		if name == "America/New_York" {
			return nil, errors.New("no zone database")
		}
		return time.LoadLocation(name)
	}})
	if z, _ := s2.Catalog().Sites().ByName("ny"); z.Location != time.UTC {
		t.Errorf("ny without its zone = %v, want UTC", z.Location)
	}
	if z, _ := s2.Catalog().Sites().ByName("hq"); z.Location.String() != "Europe/Berlin" {
		t.Errorf("hq = %v", z.Location)
	}
	checkConsistent(t, s2)
}
