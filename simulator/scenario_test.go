package simulator

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
)

func TestNormalizeDefaults(t *testing.T) {
	sc := Scenario{Groups: []Group{{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 1, Version: "1.0.0.1"}}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Start", sc.Start, DefaultStart},
		{"Duration", time.Duration(sc.Duration), DefaultDuration},
		{"Accounts", sc.Accounts, DefaultAccounts},
		{"Location", sc.Groups[0].Location, firmware.Internal},
		{"IdleTime", time.Duration(sc.Behaviour.IdleTime), 5 * time.Minute},
		{"RebootTime", time.Duration(sc.Behaviour.RebootTime), DefaultRebootTime},
		{"Phones", sc.Behaviour.Phones, DefaultPhoneUsage},
		{"RoundTables", sc.Behaviour.RoundTables, DefaultRoundTableUsage},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	ok := Group{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 3, Version: "1.0.0.1"}
	tests := []struct {
		name   string
		change func(*Scenario)
		want   string
	}{
		{"no groups", func(sc *Scenario) { sc.Groups = nil }, "no device groups"},
		{"bad model", func(sc *Scenario) { sc.Groups[0].Model = "Phone/X" }, "invalid device identity"},
		{"bad version", func(sc *Scenario) { sc.Groups[0].Version = "1.0" }, "invalid version"},
		{"bad location", func(sc *Scenario) { sc.Groups[0].Location = "moon" }, `location "moon"`},
		{"negative count", func(sc *Scenario) { sc.Groups[0].Count = -1 }, "count -1"},
		{"too many test devices", func(sc *Scenario) { sc.Groups[0].TestDevices = 4 }, "test devices 4"},
		{"sign-in share", func(sc *Scenario) { sc.Groups[0].SignIn = 1.5 }, "sign-in share 1.5"},
		{"fault", func(sc *Scenario) { sc.Faults.PowerLoss = -0.1 }, "outside [0, 1]"},
		{"group fault", func(sc *Scenario) { sc.Groups[0].Faults = &Faults{CorruptImage: 2} }, "outside [0, 1]"},
		{"negative speed", func(sc *Scenario) { sc.Speed = -1 }, "negative"},
		{"install fails version", func(sc *Scenario) { sc.Faults.InstallFails = map[string]float64{"4.0": 1} }, "invalid version"},
		{"install fails probability", func(sc *Scenario) { sc.Faults.InstallFails = map[string]float64{"4.0.0.1": 2} }, "install fails 4.0.0.1: probability 2"},
		{"waves", func(sc *Scenario) { sc.Waves = "50%,10%" }, "waves"},
		{"site name", func(sc *Scenario) { sc.Groups[0].Site = "Berlin HQ" }, "site"},
		{"remote site inside", func(sc *Scenario) { sc.Groups[0].Site = "remote" }, "only they, are at the site remote"},
		{"other site outside", func(sc *Scenario) { sc.Groups[0].Site, sc.Groups[0].Location = "hq", firmware.External }, "only they"},
		{"subnet outside loopback", func(sc *Scenario) { sc.Groups[0].Subnet = "10.1.0.0/16" }, "not inside 127.0.0.0/8"},
		{"subnet with host bits", func(sc *Scenario) { sc.Groups[0].Subnet = "127.1.0.1/16" }, "want 127.1.0.0/16"},
		{"subnet too small", func(sc *Scenario) { sc.Groups[0].Subnet = "127.1.0.0/31" }, "too small"},
		{"subnet not CIDR", func(sc *Scenario) { sc.Groups[0].Subnet = "127.1.0.0" }, "CIDR"},
		{"subnet outside", func(sc *Scenario) { sc.Groups[0].Subnet, sc.Groups[0].Location = "127.1.0.0/16", firmware.External }, "through the edge"},
		{"subnet of two sites", func(sc *Scenario) {
			sc.Groups[0].Site, sc.Groups[0].Subnet = "a", "127.1.0.0/16"
			sc.Groups = append(sc.Groups, Group{Model: ok.Model, Count: 1, Version: ok.Version, Site: "b", Subnet: "127.1.0.0/16"})
		}, `another site's ("a")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Scenario{Groups: []Group{ok}}
			tt.change(&sc)
			err := sc.Normalize()
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Normalize() = %v, want ErrScenario with %q", err, tt.want)
			}
		})
	}
}

func TestReadScenario(t *testing.T) {
	in := `{"seed": 3, "duration": "2d", "speed": 3600,
	  "groups": [{"model": "RoundTable/Microsoft/RoundTable/A/ENU", "count": 2, "version": "1.0.0.1", "location": "external", "signIn": 0.5}],
	  "faults": {"corruptImage": 0.1}, "behaviour": {"rebootTime": "90s"}}`
	sc, err := ReadScenario(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 3 || time.Duration(sc.Duration) != 48*time.Hour || sc.Speed != 3600 || sc.Faults.CorruptImage != 0.1 ||
		time.Duration(sc.Behaviour.RebootTime) != 90*time.Second || sc.Groups[0].Location != firmware.External {
		t.Errorf("ReadScenario = %+v", sc)
	}
	if _, err := ReadScenario(strings.NewReader(`{"groups": [], "colour": "red"}`)); !errors.Is(err, ErrScenario) {
		t.Errorf("unknown field: error %v, want ErrScenario", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"2d", 48 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"0d", 0, false},
		{"-1d", 0, true},
		{"d", 0, true},
		{"two days", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFleet(t *testing.T) {
	sc := Scenario{Seed: 1, Accounts: 3, Groups: []Group{
		{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 10, Version: "1.0.0.1", SignIn: 0.3, TestDevices: 2},
		{Model: "UCPhone/Polycom/CX500/A/ENU", Count: 5, Version: "1.0.0.2", SignIn: 1, Location: firmware.External},
		{Model: "UCPhone/Snom/D735/A/DEU", Count: 4, Version: "1.0.0.3"},
	}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	fleet := sc.Fleet()
	if len(fleet) != 19 {
		t.Fatalf("fleet has %d devices, want 19", len(fleet))
	}
	macs, serials := map[string]bool{}, map[string]bool{}
	signedIn := map[string]int{}
	tests := 0
	for i, d := range fleet {
		if _, err := firmware.NormalizeMAC(d.MAC); err != nil || macs[d.MAC] {
			t.Errorf("device %d: MAC %q invalid or repeated", i, d.MAC)
		}
		if serials[d.Serial] {
			t.Errorf("device %d: serial %q repeated", i, d.Serial)
		}
		macs[d.MAC], serials[d.Serial] = true, true
		if d.User != "" {
			signedIn[d.Identity.Model]++
		}
		if d.Test {
			tests++
			if i >= 2 {
				t.Errorf("device %d is a test device; want the group's first two", i)
			}
		}
	}
	if want := map[string]int{"CX600": 3, "CX500": 5}; signedIn["CX600"] != 3 || signedIn["CX500"] != 5 || signedIn["D735"] != 0 {
		t.Errorf("signed-in devices by model %v, want %v", signedIn, want)
	}
	if tests != 2 {
		t.Errorf("%d test devices, want 2", tests)
	}
	if !strings.HasPrefix(fleet[0].MAC, "00-04-F2-") {
		t.Errorf("Polycom MAC %s, want the Polycom prefix 00-04-F2", fleet[0].MAC)
	}
	if again := sc.Fleet(); again[7] != fleet[7] {
		t.Errorf("Fleet is not stable: %+v then %+v", fleet[7], again[7])
	}
	if fleet[3].User != "user01" || fleet[6].User != "user02" || fleet[18].Serial != "SNO00000019" {
		t.Errorf("device 3 user %q, device 18 serial %q", fleet[3].User, fleet[18].Serial)
	}
}

func TestSites(t *testing.T) {
	g := func(site, subnet string, loc firmware.Location) Group {
		return Group{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 1, Version: "1.0.0.1", Site: site, Subnet: subnet, Location: loc}
	}
	sc := Scenario{Groups: []Group{
		g("hq", "127.1.0.0/16", ""), g("lab", "127.2.0.0/24", ""), g("hq", "127.3.0.0/16", ""), g("hq", "127.1.0.0/16", ""),
		g("", "", firmware.External), g("", "127.9.0.0/16", ""),
	}}
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	got := sc.Sites()
	want := []SiteInfo{
		{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16"), netip.MustParsePrefix("127.3.0.0/16")}},
		{Name: "lab", Subnets: []netip.Prefix{netip.MustParsePrefix("127.2.0.0/24")}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sites() = %v, want %v", got, want)
	}
	if fleet := sc.Fleet(); fleet[0].Site != "hq" || fleet[4].Site != "" || fleet[5].Site != "" {
		t.Errorf("fleet sites %q, %q, %q; want hq, none, none", fleet[0].Site, fleet[4].Site, fleet[5].Site)
	}
}
