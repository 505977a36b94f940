package firmware

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Cohorts of the default waves (1%, 10%, 50%, 100%) used below.
const (
	inWave0 = 50
	inWave1 = 500
	inWave3 = 9000
)

// TestOfferRolloutWithoutRollout checks that without a rollout, and with
// one that is over, the decision is exactly Offer's, for every rule state,
// device version and kind of device; Decide too, with no site or attempts.
func TestOfferRolloutWithoutRollout(t *testing.T) {
	versions := []Version{{}, v1, v2, v3}
	over := rolloutAt(RolloutCompleted, 3, tStart) // its version is no longer pending below
	for _, p := range versions {
		for _, a := range versions {
			for _, r := range versions {
				rule := NewRule(cx600, tStart)
				rule.Pending, rule.Approved, rule.Restore = p, a, r
				for _, cur := range versions {
					for _, test := range []bool{false, true} {
						want, _ := Offer(&rule, cur, test)
						ros := []*Rollout{nil}
						if p != v3 {
							ros = append(ros, &over)
						}
						for _, ro := range ros {
							got := OfferRollout(&rule, ro, cur, test, inWave3, tStart)
							if got != (Decision{Version: want}) {
								t.Errorf("rule %+v, rollout %v, current %v, test %v: OfferRollout = %+v, Offer = %v", stateOf(rule), ro != nil, cur, test, got, want)
							}
							q := OfferRequest{Rule: &rule, Rollout: ro, Current: cur, Test: test, Cohort: inWave3, Now: tStart}
							if got := Decide(&q); got != (Decision{Version: want}) {
								t.Errorf("rule %+v, rollout %v, current %v, test %v: Decide = %+v, Offer = %v", stateOf(rule), ro != nil, cur, test, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestOfferRollout is the decision matrix with a rollout of v3 over v2
// (restore v1), waves 1%, 10%, 50%, 100% a day apart.
func TestOfferRollout(t *testing.T) {
	wait := DefaultPlan().WaveWait
	now := tStart.Add(hour)
	scheduled := func(at time.Time) func(*Rule, *Rollout) {
		return func(_ *Rule, ro *Rollout) {
			ro.State, ro.Wave, ro.WaveOpened, ro.At = RolloutScheduled, 0, time.Time{}, at
		}
	}
	state := func(s RolloutState, wave int) func(*Rule, *Rollout) {
		return func(_ *Rule, ro *Rollout) { ro.State, ro.Wave = s, wave }
	}
	rolledBack := func(_ *Rule, ro *Rollout) { ro.State, ro.RolledBack = RolloutStopped, true }
	tests := []struct {
		name     string
		setup    func(*Rule, *Rollout)
		cohort   int
		current  Version
		test     bool
		want     Version
		hold     Hold
		comeBack time.Time
	}{
		{"running: wave 0 device", nil, inWave0, v2, false, v3, HoldNone, time.Time{}},
		{"running: wave 0 device on it", nil, inWave0, v3, false, Version{}, HoldNone, time.Time{}},
		{"running: wave 0 device on an old version", nil, inWave0, v1, false, v3, HoldNone, time.Time{}},
		{"running: wave 0 device with no version", nil, inWave0, Version{}, false, v3, HoldNone, time.Time{}},
		{"running: wave 1 device waits", nil, inWave1, v2, false, Version{}, HoldWave, tStart.Add(wait)},
		{"running: wave 3 device waits longer", nil, inWave3, v2, false, Version{}, HoldWave, tStart.Add(3 * wait)},
		{"running: waiting device on an old version gets From", nil, inWave1, v1, false, v2, HoldWave, tStart.Add(wait)},
		{"running: waiting device on the version keeps it", nil, inWave1, v3, false, Version{}, HoldNone, time.Time{}},
		{"running: test device first", nil, inWave3, v2, true, v3, HoldNone, time.Time{}},
		{"running: test device on it", nil, inWave3, v3, true, Version{}, HoldNone, time.Time{}},
		{"running wave 2: wave 1 device", state(RolloutRunning, 2), inWave1, v2, false, v3, HoldNone, time.Time{}},
		{"scheduled: waits for At", scheduled(now.Add(2 * hour)), inWave0, v2, false, Version{}, HoldScheduled, now.Add(2 * hour)},
		{"scheduled: wave 1 after At", scheduled(now.Add(2 * hour)), inWave1, v2, false, Version{}, HoldScheduled, now.Add(2*hour + wait)},
		{"scheduled: test device first", scheduled(now.Add(2 * hour)), inWave0, v2, true, v3, HoldNone, time.Time{}},
		{"scheduled, At come: wave 0 runs", scheduled(now), inWave0, v2, false, v3, HoldNone, time.Time{}},
		{"scheduled, At come: wave 1 waits", scheduled(now.Add(-hour)), inWave1, v2, false, Version{}, HoldWave, now.Add(-hour + wait)},
		{"paused: wave 0 device held", state(RolloutPaused, 0), inWave0, v2, false, Version{}, HoldPaused, time.Time{}},
		{"paused: device on it keeps it", state(RolloutPaused, 0), inWave0, v3, false, Version{}, HoldNone, time.Time{}},
		{"paused: old version gets From", state(RolloutPaused, 0), inWave0, v1, false, v2, HoldPaused, time.Time{}},
		{"paused: test device", state(RolloutPaused, 0), inWave0, v2, true, v3, HoldNone, time.Time{}},
		{"stopped: held for good", state(RolloutStopped, 1), inWave0, v2, false, Version{}, HoldStopped, time.Time{}},
		{"stopped: reached device keeps it", state(RolloutStopped, 1), inWave0, v3, false, Version{}, HoldNone, time.Time{}},
		{"rolled back: reached device gets From", rolledBack, inWave0, v3, false, v2, HoldNone, time.Time{}},
		{"rolled back: waiting device stays", rolledBack, inWave3, v2, false, Version{}, HoldNone, time.Time{}},
		{"rolled back: test device keeps testing", rolledBack, inWave0, v2, true, v3, HoldNone, time.Time{}},
		{"completed: last device", state(RolloutCompleted, 3), inWave3, v2, false, v3, HoldNone, time.Time{}},
		{"completed and approved", func(r *Rule, ro *Rollout) {
			ro.State = RolloutCompleted
			r.Approve(now)
		}, inWave3, v2, false, v3, HoldNone, time.Time{}},
		{"rejected: reached devices go back", func(r *Rule, ro *Rollout) { r.Reject(now) }, inWave0, v3, false, v2, HoldNone, time.Time{}},
		{"replaced by a new import", func(r *Rule, ro *Rollout) { r.Import(MustParseVersion("4.1.0.1"), "", false, now) }, inWave0, v3, false, v2, HoldNone, time.Time{}},
		{"another rule's rollout", func(r *Rule, ro *Rollout) { ro.Rule = rt.RuleID() }, inWave1, v2, false, Version{}, HoldNone, time.Time{}},
		{"first version: waiting device gets nothing", func(r *Rule, ro *Rollout) { r.Approved, ro.From = Version{}, Version{} }, inWave1, Version{}, false, Version{}, HoldWave, tStart.Add(wait)},
		{"first version: wave 0 device", func(r *Rule, ro *Rollout) { r.Approved, ro.From = Version{}, Version{} }, inWave0, Version{}, false, v3, HoldNone, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := pendingRule()
			ro, _, err := StartRollout(&rule, DefaultPlan(), "alice", tStart)
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(&rule, &ro)
			}
			got := OfferRollout(&rule, &ro, tt.current, tt.test, tt.cohort, now)
			held := Version{}
			if tt.hold != HoldNone {
				held = v3
			}
			want := Decision{Version: tt.want, Hold: tt.hold, Held: held, ComeBack: tt.comeBack}
			if got != want {
				t.Errorf("OfferRollout(cohort %d, current %v, test %v) = %+v, want %+v", tt.cohort, tt.current, tt.test, got, want)
			}
		})
	}
}

// TestRestoreMidRollout runs a rollout into its second wave, then
// restores: the devices it reached are offered From again, the others
// stay, test devices keep the pending version, and it cannot be undone.
func TestRestoreMidRollout(t *testing.T) {
	rule := pendingRule()
	ro, _, err := StartRollout(&rule, DefaultPlan(), "alice", tStart)
	if err != nil {
		t.Fatal(err)
	}
	ro.Step(tStart.Add(day), WaveStats{Devices: 10, Installed: 10})
	if ro.Wave != 1 {
		t.Fatalf("wave %d, want 1", ro.Wave)
	}
	now := tStart.Add(day + hour)
	devices := []struct {
		name    string
		cohort  int
		current Version
		test    bool
		before  Version // offered before the restore
		after   Version // offered after
	}{
		{"wave 0, updated", inWave0, v3, false, Version{}, v2},
		{"wave 1, updated", inWave1, v3, false, Version{}, v2},
		{"wave 1, not yet", inWave1, v2, false, v3, Version{}},
		{"wave 3, waiting", inWave3, v2, false, Version{}, Version{}},
		{"test device", inWave3, v2, true, v3, v3},
	}
	for _, d := range devices {
		if got := OfferRollout(&rule, &ro, d.current, d.test, d.cohort, now).Version; got != d.before {
			t.Errorf("%s: offered %v before the restore, want %v", d.name, got, d.before)
		}
	}
	ev, err := ro.Rollback("bob", now)
	if err != nil || ev.Kind != EventRolledBack || ev.Detail != "rolled back by bob: devices it reached are offered 3.5.6907.35 again" {
		t.Fatalf("Rollback = %+v, %v", ev, err)
	}
	for _, d := range devices {
		if got := OfferRollout(&rule, &ro, d.current, d.test, d.cohort, now).Version; got != d.after {
			t.Errorf("%s: offered %v after the restore, want %v", d.name, got, d.after)
		}
	}
	if _, err := ro.Rollback("bob", now); err == nil {
		t.Error("a second Rollback succeeded")
	}
	if evs := ro.Step(now.Add(day), WaveStats{Devices: 10, Installed: 10}); len(evs) != 0 {
		t.Errorf("Step moved a rolled-back rollout: %v", evs)
	}
}

func TestDecide(t *testing.T) {
	berlin := loadZone(t, "Europe/Berlin")
	site := ZonedSite{Site: Site{Name: "berlin", Windows: MustParseSchedule("Mon-Fri 22:00-05:00")}, Location: berlin}
	// Monday 2026-11-02; Berlin is UTC+1.
	mon13 := time.Date(2026, 11, 2, 13, 0, 0, 0, berlin)
	mon22 := time.Date(2026, 11, 2, 22, 0, 0, 0, berlin)
	mon23 := time.Date(2026, 11, 2, 23, 0, 0, 0, berlin)
	tue01 := time.Date(2026, 11, 3, 1, 0, 0, 0, berlin)
	tue02 := time.Date(2026, 11, 3, 2, 0, 0, 0, berlin)
	tue04 := time.Date(2026, 11, 3, 4, 0, 0, 0, berlin)
	tue0430 := time.Date(2026, 11, 3, 4, 30, 0, 0, berlin)
	tue05 := time.Date(2026, 11, 3, 5, 0, 0, 0, berlin)
	tue22 := time.Date(2026, 11, 3, 22, 0, 0, 0, berlin)
	failed := func(n int, when time.Time) Attempt {
		return Attempt{Version: v3, Offered: when.Add(-hour), Failures: n, Failed: when, State: StateFailure, Reported: when}
	}
	tests := []struct {
		name   string
		ro     func(*Rule, *Rollout) *Rollout // nil: the running rollout
		q      OfferRequest
		want   Decision
		noSite bool
	}{
		{"offer in the window", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: mon23}, Decision{Version: v3, InstallBy: tue05}, false},
		{"outside the window", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: mon13}, Decision{Hold: HoldWindow, Held: v3, ComeBack: mon22}, false},
		{"no site: always open", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: mon13}, Decision{Version: v3}, true},
		{"too close to the end", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue0430, MinOpen: hour}, Decision{Hold: HoldWindow, Held: v3, ComeBack: tue22}, false},
		{"test device: site window too", nil, OfferRequest{Cohort: inWave3, Current: v2, Test: true, Now: mon13}, Decision{Hold: HoldWindow, Held: v3, ComeBack: mon22}, false},
		{"no rollout: site window", func(*Rule, *Rollout) *Rollout { return nil }, OfferRequest{Cohort: inWave0, Current: v1, Now: mon13}, Decision{Hold: HoldWindow, Held: v2, ComeBack: mon22}, false},
		{"wave hold: back when the wave opens, in the window", nil, OfferRequest{Cohort: inWave1, Current: v2, Now: mon13},
			Decision{Hold: HoldWave, Held: v3, ComeBack: tue22}, false}, // wave 1 expected Tue 10:00, window opens Tue 22:00
		{"rollout window: closed", withWindow("Mon-Sun 01:00-04:00"), OfferRequest{Cohort: inWave0, Current: v2, Now: mon23}, Decision{Hold: HoldWindow, Held: v3, ComeBack: tue01}, false},
		{"rollout window: open", withWindow("Mon-Sun 01:00-04:00"), OfferRequest{Cohort: inWave0, Current: v2, Now: tue02}, Decision{Version: v3, InstallBy: tue04}, false},
		{"rollout window: not for test devices", withWindow("Mon-Sun 01:00-04:00"), OfferRequest{Cohort: inWave0, Current: v2, Test: true, Now: mon23}, Decision{Version: v3, InstallBy: tue05}, false},
		{"rollout window: not for From", withWindow("Mon-Sun 01:00-04:00"), OfferRequest{Cohort: inWave1, Current: v1, Now: mon23},
			Decision{Version: v2, Hold: HoldWave, Held: v3, ComeBack: tue22.Add(3 * hour), InstallBy: tue05}, false}, // wave 1 due Tue 10:00: both windows open Wed 01:00
		{"rollout over: its window no longer", func(r *Rule, ro *Rollout) *Rollout {
			ro.Window, ro.State = MustParseSchedule("Mon-Sun 01:00-04:00"), RolloutCompleted
			r.Approve(tStart)
			return ro
		}, OfferRequest{Cohort: inWave0, Current: v2, Now: mon23}, Decision{Version: v3, InstallBy: tue05}, false},
		{"retry: back-off", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: mon23, Attempt: failed(1, mon22.Add(30*minute))},
			Decision{Hold: HoldRetry, Held: v3, ComeBack: mon23.Add(30 * minute)}, false},
		{"retry: back-off ends outside the window", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue04, Attempt: failed(2, tue0430.Add(-hour))},
			Decision{Hold: HoldRetry, Held: v3, ComeBack: tue22}, false},
		{"retry: back-off over", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue02, Attempt: failed(1, mon23)}, Decision{Version: v3, InstallBy: tue05}, false},
		{"retry: given up", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue02, Attempt: failed(4, mon13)}, Decision{Hold: HoldFailed, Held: v3}, false},
		{"retry: none allowed", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue02, Attempt: failed(1, mon13), Retry: RetryPolicy{Retries: -1}}, Decision{Hold: HoldFailed, Held: v3}, false},
		{"retry: another version's failures", nil, OfferRequest{Cohort: inWave0, Current: v2, Now: tue02, Attempt: Attempt{Version: v1, Failures: 9, State: StateFailure, Failed: tue01}},
			Decision{Version: v3, InstallBy: tue05}, false},
		{"max downloads reached", withCap(10), OfferRequest{Cohort: inWave0, Current: v2, Now: mon23, Downloading: 10},
			Decision{Hold: HoldDownloads, Held: v3, ComeBack: mon23.Add(DownloadsRecheck)}, false},
		{"max downloads: below", withCap(10), OfferRequest{Cohort: inWave0, Current: v2, Now: mon23, Downloading: 9}, Decision{Version: v3, InstallBy: tue05}, false},
		{"max downloads: a device taking it keeps its place", withCap(10), OfferRequest{Cohort: inWave0, Current: v2, Now: mon23, Downloading: 10,
			Attempt: Attempt{Version: v3, Offered: mon22, State: StateDownloading, Reported: mon22}}, Decision{Version: v3, InstallBy: tue05}, false},
		{"max downloads: not for test devices", withCap(10), OfferRequest{Cohort: inWave3, Current: v2, Test: true, Now: mon23, Downloading: 10}, Decision{Version: v3, InstallBy: tue05}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := pendingRule()
			ro, _, err := StartRollout(&rule, DefaultPlan(), "alice", mon13.Add(-3*hour))
			if err != nil {
				t.Fatal(err)
			}
			rp := &ro
			if tt.ro != nil {
				rp = tt.ro(&rule, &ro)
			}
			q := tt.q
			q.Rule, q.Rollout = &rule, rp
			if !tt.noSite {
				q.Site = site
			}
			got := Decide(&q)
			if !sameDecision(got, tt.want) {
				t.Errorf("Decide = %s\nwant     %s", showDecision(got, berlin), showDecision(tt.want, berlin))
			}
		})
	}
}

func withWindow(w string) func(*Rule, *Rollout) *Rollout {
	return func(_ *Rule, ro *Rollout) *Rollout { ro.Window = MustParseSchedule(w); return ro }
}

func withCap(n int) func(*Rule, *Rollout) *Rollout {
	return func(_ *Rule, ro *Rollout) *Rollout { ro.MaxDownloads = n; return ro }
}

func sameDecision(a, b Decision) bool {
	return a.Version == b.Version && a.Hold == b.Hold && a.Held == b.Held && a.ComeBack.Equal(b.ComeBack) && a.InstallBy.Equal(b.InstallBy)
}

func showDecision(d Decision, loc *time.Location) string {
	return fmt.Sprintf("{Version %v, Hold %q, Held %v, ComeBack %s, InstallBy %s}", d.Version, d.Hold, d.Held, show(d.ComeBack, loc), show(d.InstallBy, loc))
}

func TestDecideAllocatesNothing(t *testing.T) {
	b := newCheckInBench(t)
	q := b.request(0, time.Date(2026, 11, 2, 21, 0, 0, 0, time.UTC))
	if n := testing.AllocsPerRun(200, func() { Decide(&q) }); n != 0 {
		t.Errorf("Decide allocates %v times, want 0", n)
	}
}

// checkInBench is a check-in's world: 200 sites in six zones with night
// windows, a rollout with a window, 10,000 test devices, and 1,024 devices
// spread over the sites.
type checkInBench struct {
	sites *SiteTable
	tests TestDevices
	rule  Rule
	ro    Rollout
	keys  []string
	addrs []netip.Addr
}

func newCheckInBench(tb testing.TB) *checkInBench {
	zones := []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC", "America/Los_Angeles"}
	var sites []Site
	for i := range 200 {
		sites = append(sites, Site{
			Name: fmt.Sprintf("site-%03d", i),
			Subnets: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 50), byte(i % 50 * 4), 0}), 22),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48),
			},
			TimeZone: zones[i%len(zones)],
			Windows:  MustParseSchedule("Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00"),
		})
	}
	sites = append(sites, Site{Name: "corp", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, TimeZone: "Europe/Berlin"})
	tab, err := NewSiteTable(sites, nil)
	if err != nil {
		tb.Fatal(err)
	}
	b := &checkInBench{sites: tab, tests: TestDevices{}, rule: pendingRule()}
	for i := range 10000 {
		b.tests.Add(TestDevice{Serial: fmt.Sprintf("SN%05d", i)})
	}
	p := DefaultPlan()
	p.Window = MustParseSchedule("Mon-Sun 20:00-06:00")
	p.MaxDownloads = 1000
	if b.ro, _, err = StartRollout(&b.rule, p, "alice", tStart.Add(-30*day)); err != nil {
		tb.Fatal(err)
	}
	b.ro.Wave = 1
	for i := range 1024 {
		b.keys = append(b.keys, fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&255))
		s := i * 7 % 200
		if i%4 == 3 {
			b.addrs = append(b.addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(s >> 8), byte(s), 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i)}))
		} else {
			b.addrs = append(b.addrs, netip.AddrFrom4([4]byte{10, byte(s / 50), byte(s%50*4 + i%4), byte(i)}))
		}
	}
	return b
}

// request is the decision's input for device i at now: its site looked up,
// its cohort hashed, whether it is a test device.
func (b *checkInBench) request(i int, now time.Time) OfferRequest {
	key := b.keys[i&1023]
	site, _ := b.sites.Lookup(b.addrs[i&1023])
	return OfferRequest{
		Rule: &b.rule, Rollout: &b.ro, Current: v2, Test: b.tests.Contains(key, ""), Cohort: Cohort(key),
		Attempt: Attempt{Version: v3, Offered: now.Add(-day), State: StateFailure, Failures: 1, Failed: now.Add(-2 * hour)},
		Site:    site, MinOpen: 30 * minute, Downloading: 10, Now: now,
	}
}

// BenchmarkCheckInDecision measures what a check-in pays to decide with a
// rollout, a site and windows: the test-device lookup (10,000), the site
// lookup (200 sites), the cohort hash, and Decide with the rollout's
// window, the site's windows and a past failure to judge. The devices
// cycle through the sites (six zones), so some are offered, some held by
// their wave or their windows and told when to come back. BenchmarkOffer
// Decision is the decision without any of that, for reference.
func BenchmarkCheckInDecision(b *testing.B) {
	w := newCheckInBench(b)
	for _, c := range []struct{ name, at string }{
		{"monday-night", "2026-11-02T21:30:00Z"},
		{"tuesday-noon", "2026-11-03T11:00:00Z"},
		{"dst-change", "2026-10-25T00:30:00Z"}, // Berlin falls back in 30 minutes: the slow path
	} {
		now := utc(c.at)
		b.Run(c.name, func(b *testing.B) {
			offered := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := w.request(i, now)
				if d := Decide(&q); !d.Version.IsZero() {
					offered++
				}
				i++
			}
			b.ReportMetric(float64(offered)/float64(i), "offered/op")
		})
	}
}

func TestHoldKnown(t *testing.T) {
	for _, h := range []Hold{HoldNone, HoldScheduled, HoldWave, HoldPaused, HoldStopped, HoldFailed, HoldRetry, HoldDownloads, HoldWindow} {
		if !h.Known() {
			t.Errorf("Hold %q is not known", h)
		}
	}
	if Hold("later").Known() {
		t.Error(`Hold "later" is known`)
	}
}
