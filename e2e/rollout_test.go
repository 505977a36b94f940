package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// rehearsalStart is when the rehearsals' simulated clock starts: a
// Monday, 06:00 UTC.
var rehearsalStart = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

// startRehearsal initialises a data directory, lets configure change its
// settings, and starts devsvc serve on a simulated clock at start, which
// the simulations the test runs drive.
func startRehearsal(t testing.TB, start time.Time, configure func(dir string)) *devsvctest.Service {
	t.Helper()
	bin, dir := devsvctest.Init(t, domain)
	if configure != nil {
		configure(dir)
	}
	return devsvctest.Start(t, bin, dir, "--simulated-clock", start.Format(time.RFC3339))
}

// deviceSim runs the device-sim command against s with args, bounded in
// time, and returns its report (--json) and its devices (--devices-out).
func deviceSim(t testing.TB, s *devsvctest.Service, args ...string) (simulator.Report, []simulator.DeviceInfo) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "devices.json")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, deviceSimBinary(t), append([]string{"--data", s.Dir, "--json", "--devices-out", out, "--progress", "never"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("device-sim %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("device-sim %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	var rep simulator.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("device-sim --json: %v\n%s", err, stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var devs []simulator.DeviceInfo
	if err := json.Unmarshal(data, &devs); err != nil {
		t.Fatalf("device-sim --devices-out: %v", err)
	}
	return rep, devs
}

// listedRollout is a rollout as devsvc rollouts --json prints it: its wave
// wait a duration string (docs/cli-json.md).
type listedRollout struct {
	adminapi.RolloutInfo
	WaveWait string `json:"waveWait"`
}

// rolloutOf returns the rollout of id that devsvc rollouts --json lists.
func rolloutOf(t testing.TB, s *devsvctest.Service, id firmware.Identity) listedRollout {
	t.Helper()
	var rs []listedRollout
	s.JSON(t, &rs, "rollouts")
	for _, r := range rs {
		if r.Identity == id {
			return r
		}
	}
	t.Fatalf("devsvc rollouts lists no rollout of %s: %+v", id, rs)
	return listedRollout{}
}

// TestRolloutPausesThenCompletes is the acceptance of staged
// rollouts, with real processes on a simulated clock: 1,000 devices at two
// sites, one with a night window in New York.
//
//  1. A version that fails on every install, rolled out in waves of 5%,
//     25% and 100% with at most 10% failures: the rollout pauses itself in
//     its first wave, no device outside the first wave (but the test
//     devices) ever tries the version (by the devices' own record and by
//     the service's inventory), devsvc rollouts --json says paused, and an
//     alarm is open.
//  2. After it is stopped, a good version rolled out the same way reaches
//     at least 99% of the devices within two simulated days and the
//     rollout completes; the night site's devices install only inside
//     their window, in New York time (device-sim --devices-out).
func TestRolloutPausesThenCompletes(t *testing.T) {
	s := startRehearsal(t, rehearsalStart, nil)
	importVersion(t, s, "1.0.0.1", 16<<10, cx600)
	s.CLI(t, "approve", cx600.Path())
	importVersion(t, s, "2.0.0.1", 16<<10, cx600)
	groups := []string{
		"--group", cx600.Path() + ",800,1.0.0.1,test=5,site=hq,subnet=127.1.0.0/16",
		"--group", cx600.Path() + ",200,1.0.0.1,site=night,subnet=127.2.0.0/16",
	}
	// device-sim runs the same fleet (the seed gives the MACs) in both
	// phases: the devices that tried the bad version are those offered the
	// good one.
	sc := simulator.Scenario{Seed: 1, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 800, Version: "1.0.0.1", TestDevices: 5, Site: "hq", Subnet: "127.1.0.0/16"},
		{Model: cx600.Path(), Count: 200, Version: "1.0.0.1", Site: "night", Subnet: "127.2.0.0/16"},
	}}
	prepare(t, s, &sc)
	s.CLI(t, "sites", "add", "hq", "--subnet", "127.1.0.0/16")
	s.CLI(t, "sites", "add", "night", "--subnet", "127.2.0.0/16", "--timezone", "America/New_York", "--window", "22:00-05:00")
	waves := firmware.Waves{500, 2500, firmware.Whole}
	test := map[string]bool{}
	for _, d := range sc.Fleet() {
		test[d.MAC] = d.Test
	}

	// 1. The bad version pauses in its first wave.
	s.CLI(t, "rollout", "start", cx600.Path(), "--waves", "5%,25%,100%", "--max-failures", "10%", "--wave-wait", "2h")
	rep, devs := deviceSim(t, s, append(groups, "--seed", "1", "--duration", "1d", "--waves", "5%,25%,100%", "--install-fails", "2.0.0.1=1")...)
	// The engine steps every 100 ms of real time: its pause may come
	// after the run.
	if !s.WaitForLog(`"msg":"rollout paused"`, 30*time.Second) {
		t.Fatalf("the rollout did not pause:\n%s", s.CLI(t, "rollout", "show", cx600.Path()))
	}
	ro := rolloutOf(t, s, cx600)
	if ro.State != firmware.RolloutPaused || ro.Wave != 0 || ro.PausedBy != firmware.SystemActor {
		t.Errorf("devsvc rollouts --json: %s in wave %d, paused by %q; want paused in wave 1 by %s", ro.State, ro.Wave+1, ro.PausedBy, firmware.SystemActor)
	}
	var alarms []firmware.Alarm
	s.JSON(t, &alarms, "alarms")
	if len(alarms) != 1 || alarms[0].Kind != firmware.AlarmPaused {
		t.Errorf("devsvc alarms: %+v, want the pause's", alarms)
	}
	tried := 0
	for _, d := range devs {
		if len(d.Installs) == 0 {
			continue
		}
		tried++
		if w := waves.Wave(firmware.Cohort(d.MAC)); w != 0 && !test[d.MAC] {
			t.Errorf("device %s of wave %d tried 2.0.0.1: %+v", d.MAC, w+1, d.Installs)
		}
	}
	if tried == 0 {
		t.Error("no device tried 2.0.0.1")
	}
	for _, d := range inventory(t, s) {
		if d.Attempt.Version.String() == "2.0.0.1" && waves.Wave(firmware.Cohort(d.Key)) != 0 && !test[d.MAC] {
			t.Errorf("the service offered 2.0.0.1 to %s, of wave %d", d.Key, waves.Wave(firmware.Cohort(d.Key))+1)
		}
	}
	if len(rep.Offers) != 1 || rep.Offers[0].Installed != 0 || rep.Offers[0].Waves[1].Offered+rep.Offers[0].Waves[2].Offered != 0 {
		t.Errorf("device-sim's report: offers %+v, want 2.0.0.1 offered in wave 1 only, never installed", rep.Offers)
	}

	// 2. The good version, the same way, after the bad one is stopped.
	s.CLI(t, "rollout", "stop", cx600.Path())
	importVersion(t, s, "3.0.0.1", 16<<10, cx600)
	s.CLI(t, "rollout", "start", cx600.Path(), "--waves", "5%,25%,100%", "--max-failures", "10%", "--wave-wait", "2h")
	rep, devs = deviceSim(t, s, append(groups, "--seed", "1", "--duration", "2d", "--waves", "5%,25%,100%")...)
	if !s.WaitForLog(`"msg":"rollout completed"`, 30*time.Second) {
		t.Errorf("the rollout did not complete:\n%s", s.CLI(t, "rollout", "show", cx600.Path()))
	}
	if ro := rolloutOf(t, s, cx600); ro.State != firmware.RolloutCompleted {
		t.Errorf("devsvc rollouts --json: the good version's rollout is %s in wave %d (%+v), want completed", ro.State, ro.Wave+1, ro.Total)
	}
	updated := 0
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	night := firmware.MustParseSchedule("22:00-05:00")
	for _, d := range devs {
		if d.Version.String() == "3.0.0.1" {
			updated++
		}
		if d.Site != "night" {
			continue
		}
		for _, in := range d.Installs {
			if !night.Open(in.Began, ny) || night.CloseAt(in.Began, ny).Before(in.Ended) {
				t.Errorf("device %s of the night site installed %s from %s to %s New York time, outside 22:00-05:00",
					d.MAC, in.Version, in.Began.In(ny).Format(time.DateTime), in.Ended.In(ny).Format(time.DateTime))
			}
		}
	}
	if updated < 990 {
		t.Errorf("%d of 1000 devices run 3.0.0.1 after two simulated days, want at least 99%%", updated)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Logf("the good version's rehearsal:\n%s", text.String())
}

// TestOverdueAlarm: a scheduled release (approve --at) tells every device
// to come at its time; the devices of one site never come (switched off
// after their first check-in), and overdue_grace after the release an
// alarm names that site and its count, while the site whose devices came
// is not named; devsvc status counts it.
func TestOverdueAlarm(t *testing.T) {
	s := startRehearsal(t, rehearsalStart, nil)
	importVersion(t, s, "1.0.0.1", 8<<10, cx600)
	s.CLI(t, "approve", cx600.Path())
	importVersion(t, s, "2.0.0.1", 8<<10, cx600)
	both := simulator.Scenario{Seed: 3, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: 40, Version: "1.0.0.1", Site: "hq", Subnet: "127.1.0.0/16"},
		{Model: cx600.Path(), Count: 20, Version: "1.0.0.1", Site: "branch", Subnet: "127.4.0.0/16"},
	}}
	prepare(t, s, &both)
	for _, si := range both.Sites() {
		s.CLI(t, "sites", "add", si.Name, "--subnet", firmware.FormatSubnets(si.Subnets))
	}
	// Every device checks in once.
	runUntil(t, newSim(t, s, both), time.Hour)
	release := rehearsalStart.Add(2 * time.Hour)
	s.CLI(t, "approve", cx600.Path(), "--at", release.Format(time.RFC3339))
	// Then only hq's devices: the branch's are switched off.
	hqOnly := both
	hqOnly.Groups = both.Groups[:1]
	hqOnly.Start = time.Time{} // the service's clock
	sim := newSim(t, s, hqOnly)
	runUntil(t, sim, 12*time.Hour) // past the release and overdue_grace (4h)
	// The engine checks every 100 ms of real time (hours of this run's
	// simulated time): its check at the run's end may come after it.
	if !s.WaitForLog("a scheduled release is overdue", 30*time.Second) {
		t.Fatalf("no overdue alarm logged:\n%s", s.Logs())
	}
	var alarms []firmware.Alarm
	s.JSON(t, &alarms, "alarms")
	var overdue []firmware.Alarm
	for _, a := range alarms {
		if a.Kind == firmware.AlarmOverdue {
			overdue = append(overdue, a)
		}
	}
	if len(overdue) != 1 {
		t.Fatalf("devsvc alarms: %+v, want one overdue alarm", alarms)
	}
	a := overdue[0]
	if len(a.Sites) != 1 || a.Sites[0].Site != "branch" || a.Sites[0].NotCheckedIn != 20 || !strings.Contains(a.Detail, "branch 20 of 20") {
		t.Errorf("overdue alarm %+v: want the branch, 20 of its 20 devices not checked in", a)
	}
	if a.Raised.Before(release.Add(4*time.Hour)) || a.Raised.After(sim.Now()) {
		t.Errorf("alarm raised at %v, want after the release (%v) and the grace (4h), by %v", a.Raised, release, sim.Now())
	}
	if status := s.CLI(t, "status"); !strings.Contains(status, "Alarms: 1 open") {
		t.Errorf("devsvc status does not count the alarm:\n%s", status)
	}
	if got := versions(sim.Devices()); got != fmt.Sprint(map[string]int{"2.0.0.1": 40}) {
		t.Errorf("hq's devices run %s, want 2.0.0.1 all", got)
	}
}

// versions lists devices by version, for a message.
func versions(devs []simulator.DeviceInfo) string {
	m := map[string]int{}
	for _, d := range devs {
		m[d.Version.String()]++
	}
	return fmt.Sprint(m)
}
