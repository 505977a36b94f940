package firmware

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckOverdue(t *testing.T) {
	rel := Release{Rule: cx600.RuleID(), Identity: cx600, Version: v3, At: tStart}
	grace := 2 * time.Hour
	hq := SiteProgress{Site: "hq", Devices: 100, NotCheckedIn: 2, NotOffered: 10, NotUpdated: 30}
	dark := SiteProgress{Site: "branch-7", Devices: 40, NotCheckedIn: 40, NotOffered: 0, NotUpdated: 40}
	lone := SiteProgress{Site: "", Devices: 3, NotCheckedIn: 1, NotUpdated: 1}
	tests := []struct {
		name      string
		rel       Release
		tolerance Share
		sites     []SiteProgress
		now       time.Time
		want      []string // the sites behind; nil: no alarm
	}{
		{"within the grace period", rel, 500, []SiteProgress{hq, dark}, tStart.Add(grace - time.Second), nil},
		{"a site that never came", rel, 500, []SiteProgress{hq, dark}, tStart.Add(grace), []string{"branch-7"}},
		{"a few switched off: tolerated", rel, 500, []SiteProgress{hq}, tStart.Add(grace), nil},
		{"exactly the tolerance: tolerated", rel, 200, []SiteProgress{hq}, tStart.Add(grace), nil},
		{"no tolerance", rel, 0, []SiteProgress{hq, dark, lone}, tStart.Add(grace), []string{"hq", "branch-7", ""}},
		{"not updated is not overdue", rel, 0, []SiteProgress{{Site: "hq", Devices: 10, NotOffered: 10, NotUpdated: 10}}, tStart.Add(grace), nil},
		{"no release time", Release{Rule: rel.Rule}, 0, []SiteProgress{dark}, tStart.Add(grace), nil},
		{"no devices", rel, 0, []SiteProgress{{Site: "empty"}}, tStart.Add(grace), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := CheckOverdue(tt.rel, grace, tt.tolerance, tt.sites, tt.now)
			if ok != (tt.want != nil) {
				t.Fatalf("CheckOverdue = %+v, %v, want an alarm %v", a, ok, tt.want != nil)
			}
			if !ok {
				return
			}
			var got []string
			for _, s := range a.Sites {
				got = append(got, s.Site)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sites behind (-want +got):\n%s", diff)
			}
			if a.Kind != AlarmOverdue || a.Rule != rel.Rule || a.Version != v3 || !a.Raised.Equal(tt.now) || !a.IsOpen() {
				t.Errorf("alarm = %+v", a)
			}
		})
	}
	a, _ := CheckOverdue(rel, grace, 500, []SiteProgress{hq, dark}, tStart.Add(3*time.Hour))
	if want := "release of UCPhone/Polycom/CX600/A/ENU to 4.0.7577.4372 at 2026-11-02T09:00:00Z is 3h0m0s past; devices that have not checked in since: branch-7 40 of 40"; a.Detail != want {
		t.Errorf("Detail = %q\nwant     %q", a.Detail, want)
	}
	b, _ := CheckOverdue(rel, grace, 500, []SiteProgress{dark}, tStart.Add(5*time.Hour))
	if a.ID != b.ID || a.ID != "overdue-"+rel.Rule+"-1793610000" || rel.OverdueID() != a.ID {
		t.Errorf("IDs %q and %q: want the same stable ID for the same release", a.ID, b.ID)
	}
	b.Clear(tStart.Add(6 * time.Hour))
	b.Clear(tStart.Add(7 * time.Hour))
	if b.IsOpen() || !b.Cleared.Equal(tStart.Add(6*time.Hour)) {
		t.Errorf("cleared alarm: open %v, cleared %v", b.IsOpen(), b.Cleared)
	}
}
