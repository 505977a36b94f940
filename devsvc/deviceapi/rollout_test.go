package deviceapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
)

// rolloutFixture is a store on a settable clock with cx600 approved at
// v1 and v2 pending, rolled out in two waves (50%, 100%; the next after
// 6h), two sites (berlin with a night window, lab always open) and a test
// device, and handlers on the same clock with a 10-minute jitter.
type rolloutFixture struct {
	st    *store.Store
	clock *clocktest.Clock
	srv   *deviceapi.Server
	// wave0 and wave1 are MACs whose cohorts fall in the first and the
	// second wave.
	wave0, wave1 []string
}

// Saturday 21 November 2026, 09:00 UTC: 10:00 in Berlin, outside its
// window.
var (
	berlin = firmware.Site{Name: "berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, TimeZone: "Europe/Berlin",
		Windows: firmware.MustParseSchedule("22:00-05:00")}
	lab = firmware.Site{Name: "lab", Subnets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}
)

const jitter = 10 * time.Minute

func newRolloutFixture(t *testing.T, plan firmware.Plan, cfg deviceapi.Config) *rolloutFixture {
	t.Helper()
	ctx := context.Background()
	clock := clocktest.New(t0)
	st, err := store.Open(t.TempDir(), &store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	importUpdate(t, st, cx600, v1)
	approve(t, st, cx600)
	importUpdate(t, st, cx600, v2)
	for _, site := range []firmware.Site{berlin, lab} {
		if _, err := st.PutSite(ctx, "test", site, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddTestDevice(ctx, "test", firmware.TestDevice{MAC: macTest}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartRollout(ctx, "test", cx600.Path(), plan); err != nil {
		t.Fatal(err)
	}
	cfg.Now, cfg.CheckJitter = clock.Now, jitter
	f := &rolloutFixture{st: st, clock: clock, srv: deviceapi.New(st, cfg)}
	for i := 0; len(f.wave0) < 4 || len(f.wave1) < 4; i++ {
		mac := fmt.Sprintf("00-04-F2-10-%02X-%02X", i>>8, i&0xff)
		if plan.Waves.Wave(firmware.Cohort(mac)) == 0 {
			f.wave0 = append(f.wave0, mac)
		} else {
			f.wave1 = append(f.wave1, mac)
		}
	}
	return f
}

// checkIn checks mac in from the address remote, on v1.
func (f *rolloutFixture) checkIn(t *testing.T, mac, remote string) deviceproto.Answer {
	t.Helper()
	return answerOf(t, f.post(deviceproto.CheckInPath, remote, checkInBody(cx600, mac, v1)))
}

func (f *rolloutFixture) post(path, remote string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Host = "ucupdates-r2.contoso.com"
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	f.srv.Internal().ServeHTTP(w, req)
	return w
}

func (f *rolloutFixture) device(t *testing.T, mac string) firmware.Device {
	t.Helper()
	if err := f.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := f.st.Device(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func twoWaves() firmware.Plan {
	return firmware.Plan{Waves: firmware.Waves{5000, firmware.Whole}, WaveWait: 6 * time.Hour, Success: 9000, MaxFailures: firmware.FailureShare(5000)}
}

// TestCheckInRollout: what a check-in is answered and recorded with a
// rollout, sites and windows: the open wave is offered the version (with
// InstallBy inside a window), the others are held, told why in the
// inventory and told to come back when their wave or window opens (with
// the jitter), never later than their usual interval.
func TestCheckInRollout(t *testing.T) {
	f := newRolloutFixture(t, twoWaves(), deviceapi.Config{})
	night := t0.Add(12*time.Hour + 30*time.Minute) // 21:30 UTC, 22:30 in Berlin
	closes := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		at        time.Time
		mac       string
		remote    string
		offered   firmware.Version
		installBy time.Time
		site      string
		hold      firmware.Hold
		come      time.Time // zero: the usual interval
	}{
		{"open wave, always-open site", t0, f.wave0[0], "10.2.0.1:5000", v2, time.Time{}, "lab", "", time.Time{}},
		{"closed wave: held until it opens", t0, f.wave1[0], "10.2.0.2:5000", firmware.Version{}, time.Time{}, "lab", firmware.HoldWave, t0.Add(6 * time.Hour)},
		{"open wave, outside the window: held until it opens", t0, f.wave0[1], "10.1.0.1:5000", firmware.Version{}, time.Time{}, "berlin", firmware.HoldWindow, t0.Add(12 * time.Hour)},
		{"open wave, inside the window: InstallBy its close", night, f.wave0[2], "10.1.0.2:5000", v2, closes, "berlin", "", time.Time{}},
		// The wave was due at 15:00 and has not opened: it is rechecked
		// after WaveWait, 03:30 UTC, when the window closes in 30 minutes,
		// so at the window's next opening.
		{"closed wave, due: the window's opening after the recheck", night, f.wave1[1], "10.1.0.3:5000", firmware.Version{}, time.Time{}, "berlin", firmware.HoldWave,
			time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC)},
		{"no site: always open", t0, f.wave0[3], "192.0.2.9:5000", v2, time.Time{}, "", "", time.Time{}},
		{"test device in the open site", t0, macTest, "10.2.0.9:5000", v2, time.Time{}, "lab", "", time.Time{}},
		{"test device outside its site's window", t0, macTest, "10.1.0.9:5000", firmware.Version{}, time.Time{}, "berlin", firmware.HoldWindow, t0.Add(12 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Set(tt.at)
			a := f.checkIn(t, tt.mac, tt.remote)
			if a.Version != tt.offered || (len(a.Files) > 0) != !tt.offered.IsZero() {
				t.Errorf("offered %v with %d files, want %v", a.Version, len(a.Files), tt.offered)
			}
			if !a.InstallBy.Equal(tt.installBy) {
				t.Errorf("InstallBy = %v, want %v", a.InstallBy, tt.installBy)
			}
			next := tt.at.Add(a.NextCheck)
			switch {
			case !tt.come.IsZero():
				// After the jitter, if any: the wave's or window's opening plus
				// [0, jitter).
				if next.Before(tt.come) || !next.Before(tt.come.Add(jitter+time.Second)) {
					t.Errorf("next check at %v (after %v), want in [%v, %v)", next, a.NextCheck, tt.come, tt.come.Add(jitter))
				}
			default:
				if a.NextCheck < 24*time.Hour-jitter/2 || a.NextCheck > 24*time.Hour+jitter/2 {
					t.Errorf("next check after %v, want the interval, 24h ± %v", a.NextCheck, jitter/2)
				}
			}
			d := f.device(t, tt.mac)
			wantHeld := firmware.Version{}
			if tt.hold != "" {
				wantHeld = v2
			}
			if d.Site != tt.site || d.Offered != tt.offered || d.Hold != tt.hold || d.Held != wantHeld {
				t.Errorf("inventory: site %q offered %v hold %q held %v; want %q, %v, %q, %v", d.Site, d.Offered, d.Hold, d.Held, tt.site, tt.offered, tt.hold, wantHeld)
			}
		})
	}
}

// TestCheckInComesBackNoLaterThanItsInterval: a wave expected after the
// usual interval does not push the next check out.
func TestCheckInComesBackNoLaterThanItsInterval(t *testing.T) {
	plan := twoWaves()
	plan.WaveWait = 72 * time.Hour
	f := newRolloutFixture(t, plan, deviceapi.Config{})
	a := f.checkIn(t, f.wave1[0], "10.2.0.1:5000")
	if a.NextCheck < 24*time.Hour-jitter/2 || a.NextCheck > 24*time.Hour+jitter/2 {
		t.Errorf("next check after %v, want the interval, 24h ± %v, not the wave's opening in 72h", a.NextCheck, jitter/2)
	}
}

// TestCheckInRetriesAfterFailure: a device that reported a failure is held
// until its back-off ends and told to come back then; a report on a
// version it was never offered is refused and noted in its history.
func TestCheckInRetriesAfterFailure(t *testing.T) {
	f := newRolloutFixture(t, twoWaves(), deviceapi.Config{})
	mac, remote := f.wave0[0], "10.2.0.1:5000"
	if a := f.checkIn(t, mac, remote); a.Version != v2 {
		t.Fatalf("offered %v, want %v", a.Version, v2)
	}
	if w := f.post(deviceproto.StatusPath, remote, statusBody(mac, firmware.StateFailure, v2, "0x80070005")); w.Code != 204 {
		t.Fatalf("failure report = %d %s", w.Code, w.Body.String())
	}
	f.clock.Advance(10 * time.Minute)
	a := f.checkIn(t, mac, remote)
	retryAt := t0.Add(firmware.DefaultBackoff)
	if next := t0.Add(10 * time.Minute).Add(a.NextCheck); a.Version != (firmware.Version{}) || next.Before(retryAt) || !next.Before(retryAt.Add(jitter+time.Second)) {
		t.Errorf("after a failure: offered %v, next check at %v; want nothing, in [%v, %v)", a.Version, next, retryAt, retryAt.Add(jitter))
	}
	if d := f.device(t, mac); d.Hold != firmware.HoldRetry || d.Attempt.Failures != 1 {
		t.Errorf("inventory: hold %q, %d failures; want retry, 1", d.Hold, d.Attempt.Failures)
	}
	f.clock.Set(retryAt)
	if a := f.checkIn(t, mac, remote); a.Version != v2 {
		t.Errorf("after the back-off: offered %v, want %v again", a.Version, v2)
	}
	v9 := firmware.MustParseVersion("9.9.9.9")
	if w := f.post(deviceproto.StatusPath, remote, statusBody(mac, firmware.StateSuccess, v9, "")); w.Code != http.StatusConflict {
		t.Fatalf("report on a version never offered = %d, want 409", w.Code)
	}
	d := f.device(t, mac)
	last := d.History[len(d.History)-1]
	if last.Kind != firmware.DeviceRefusal || last.Detail == "" {
		t.Errorf("the device's last event is %+v, want the refusal of its report", last)
	}
}

// TestCheckInDownloadsCap: past the rollout's MaxDownloads a device is
// held and asked back within DownloadsRecheck and the jitter's spread of
// it, not a whole jitter later; the one taking the version keeps it.
func TestCheckInDownloadsCap(t *testing.T) {
	plan := twoWaves()
	plan.MaxDownloads = 1
	f := newRolloutFixture(t, plan, deviceapi.Config{CheckJitter: 2 * time.Hour})
	f.srv = deviceapi.New(f.st, deviceapi.Config{Now: f.clock.Now, CheckJitter: 2 * time.Hour})
	if a := f.checkIn(t, f.wave0[0], "10.2.0.1:5000"); a.Version != v2 {
		t.Fatalf("first device offered %v, want %v", a.Version, v2)
	}
	a := f.checkIn(t, f.wave0[1], "10.2.0.2:5000")
	if a.Version != (firmware.Version{}) || a.NextCheck < firmware.DownloadsRecheck || a.NextCheck >= 2*firmware.DownloadsRecheck {
		t.Errorf("second device: offered %v, next check after %v; want nothing, in [%v, %v)", a.Version, a.NextCheck, firmware.DownloadsRecheck, 2*firmware.DownloadsRecheck)
	}
	if a := f.checkIn(t, f.wave0[0], "10.2.0.1:5000"); a.Version != v2 {
		t.Errorf("the device taking it, again: offered %v, want %v", a.Version, v2)
	}
}

// TestCheckInSiteBehindProxy: with ClientAddr (trusted proxies), the site
// is that of the client the proxy names, and the inventory records its
// address.
func TestCheckInSiteBehindProxy(t *testing.T) {
	client := netip.MustParseAddr("10.1.7.7")
	f := newRolloutFixture(t, twoWaves(), deviceapi.Config{})
	f.srv = deviceapi.New(f.st, deviceapi.Config{Now: f.clock.Now, CheckJitter: jitter,
		ClientAddr: func(r *http.Request) (netip.Addr, bool) {
			if r.Header.Get("X-Forwarded-For") == "" {
				return netip.MustParseAddrPort(r.RemoteAddr).Addr(), true
			}
			return client, true
		}})
	req := httptest.NewRequest("POST", deviceproto.CheckInPath, bytes.NewReader(checkInBody(cx600, f.wave0[0], v1)))
	req.RemoteAddr = "10.2.0.1:5000" // the proxy, in lab
	req.Header.Set("X-Forwarded-For", client.String())
	w := httptest.NewRecorder()
	f.srv.Internal().ServeHTTP(w, req)
	if a := answerOf(t, w); a.Version != (firmware.Version{}) {
		t.Errorf("offered %v at 10:00 in Berlin, want nothing (outside its window)", a.Version)
	}
	if d := f.device(t, f.wave0[0]); d.Site != "berlin" || d.Address != client.String() || d.Hold != firmware.HoldWindow {
		t.Errorf("inventory: site %q, address %q, hold %q; want berlin, %s, window", d.Site, d.Address, d.Hold, client)
	}
}

// TestCheckInShortWindow: a device held until a window that stays open for
// offers only half an hour (22:00-23:30, window_min_open 1h) comes back
// within that half hour, however large the jitter.
func TestCheckInShortWindow(t *testing.T) {
	f := newRolloutFixture(t, twoWaves(), deviceapi.Config{})
	short := firmware.Site{Name: "short", Subnets: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16")}, Windows: firmware.MustParseSchedule("22:00-23:30")}
	if _, err := f.st.PutSite(context.Background(), "test", short, false); err != nil {
		t.Fatal(err)
	}
	f.srv = deviceapi.New(f.st, deviceapi.Config{Now: f.clock.Now, CheckJitter: 2 * time.Hour})
	opens := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	for i, mac := range f.wave0 {
		a := f.checkIn(t, mac, fmt.Sprintf("10.3.0.%d:5000", i+1))
		if next := t0.Add(a.NextCheck); a.Version != (firmware.Version{}) || next.Before(opens) || !next.Before(opens.Add(30*time.Minute+time.Second)) {
			t.Errorf("%s: offered %v, next check at %v; want nothing, in [%v, %v)", mac, a.Version, next, opens, opens.Add(30*time.Minute))
		}
	}
}

// TestCheckInWaitsForTheEarliestOpening: a device of a later wave is told
// to come back when its wave can open at the earliest, as the engine's
// step found it from the windows of the sites the current wave waits for
// (store.Store.WaveEarliest), not after WaveWait, when it could not.
func TestCheckInWaitsForTheEarliestOpening(t *testing.T) {
	f := newRolloutFixture(t, twoWaves(), deviceapi.Config{})
	ctx := context.Background()
	// Wave 1: one device installs in the lab; two wait for Berlin's
	// window (22:00 there, 21:00 UTC).
	if a := f.checkIn(t, f.wave0[0], "10.2.0.1:5000"); a.Version != v2 {
		t.Fatalf("the lab's wave-1 device was offered %v, want %v", a.Version, v2)
	}
	if w := f.post(deviceproto.StatusPath, "10.2.0.1:5000", statusBody(f.wave0[0], firmware.StateSuccess, v2, "")); w.Code/100 != 2 {
		t.Fatalf("report: %d %s", w.Code, w.Body)
	}
	for i, mac := range f.wave0[1:3] {
		f.checkIn(t, mac, fmt.Sprintf("10.1.0.%d:5000", i+1))
	}
	if err := f.st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	window := time.Date(2026, 11, 21, 21, 0, 0, 0, time.UTC)
	check := func(what string, want time.Time) {
		t.Helper()
		a := f.checkIn(t, f.wave1[0], "10.2.0.2:5000")
		next := f.clock.Now().Add(a.NextCheck)
		if next.Before(want) || !next.Before(want.Add(jitter+time.Second)) {
			t.Errorf("%s: the wave-2 device comes back at %v, want in [%v, %v)", what, next, want, want.Add(jitter))
		}
	}
	check("before the engine's step", t0.Add(6*time.Hour)) // WaveWait
	if _, _, err := f.st.StepRollout(ctx, cx600.RuleID(), f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	check("after it", window)
}
