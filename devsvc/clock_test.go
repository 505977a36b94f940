package devsvc

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/simclock"
)

// TestServeSimulatedClock: on a simulated clock the device side answers
// and records check-ins at the clock's time, which moves only when the
// clock is set; the run file and devsvc status say so.
func TestServeSimulatedClock(t *testing.T) {
	start := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	var clock *simclock.Clock
	r := serveOpts(t, func(s *datadir.Settings) { s.CheckJitter = 0 }, "", nil, func(dir string, o *ServeOptions) {
		var err error
		if clock, err = simclock.Create(filepath.Join(dir, datadir.RunDir, datadir.ClockFile), start); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { clock.Close() })
		o.Clock = clock
	})
	if !r.ri.SimulatedClock {
		t.Errorf("run file %+v: want SimulatedClock", r.ri)
	}
	for _, at := range []time.Time{start, start.Add(36 * time.Hour)} {
		clock.Set(at)
		if a := r.checkIn(t); !a.NextCheckAt.Equal(at.Add(24 * time.Hour)) {
			t.Errorf("at %v: next check at %v, want %v: the simulated clock's time plus the interval", at, a.NextCheckAt, at.Add(24*time.Hour))
		}
	}
	adm := r.admin(t)
	st, err := adm.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "simulated clock") }) {
		t.Errorf("status warnings %q: want one about the simulated clock", st.Warnings)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(r.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Device(context.Background(), "00-04-F2-00-00-01")
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(36 * time.Hour); !d.LastCheckIn.Equal(want) || d.Identity != cx600 || d.Location != firmware.Internal {
		t.Errorf("the inventory: last check-in %v, want %v (simulated)", d.LastCheckIn, want)
	}
}

// TestServeSimulatedClockLoopbackOnly: a service that devices could reach
// (a listener on every address) refuses a simulated clock, and says what
// to do.
func TestServeSimulatedClockLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	clock, err := simclock.Create(filepath.Join(t.TempDir(), "clock"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	err = Serve(t.Context(), ServeOptions{Dir: dir, InternalAddr: ":0", ExternalAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", ConsoleAddr: "127.0.0.1:0", Clock: clock})
	if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "--internal-addr") {
		t.Errorf("Serve on every address with a simulated clock = %v, want a refusal naming loopback and --internal-addr", err)
	}
}

// TestServeConsoleOff: --console-addr off (ServeOptions.ConsoleAddr) turns
// the console off, as console_addr = off does.
func TestServeConsoleOff(t *testing.T) {
	r := serveOpts(t, nil, "", nil, func(_ string, o *ServeOptions) { o.ConsoleAddr = "off" })
	if r.ri.Console != "" {
		t.Errorf("run file: console on %q, want none", r.ri.Console)
	}
}
