package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// TestConsoleRolloutInBrowser drives a rollout through the console of a
// real devsvc serve in a real Chromium while simulated devices run: an
// admin defines a site, starts a rollout from the updates page after
// reviewing its plan (each wave's devices counted), watches its progress
// change on the rollout's page through the page's event stream (no
// reload), and pauses it on its confirm page; the history records
// web:alice.
//
// The progress it waits for is the test devices' row: test devices are
// offered the pending version whatever the rollout, download it and
// report success, and the rollout's progress counts them from the store.
// The wave rows are checked by the subtest "wave devices", which waits
// for the device side of rollouts (see its Skip).
func TestConsoleRolloutInBrowser(t *testing.T) {
	s := startService(t, nil)
	if out, errOut, err := devsvctest.RunCLI(s.Bin, s.Dir, "correct horse battery staple\n", "admins", "add", "alice", "--password-stdin"); err != nil {
		t.Fatalf("devsvc admins add alice: %v\n%s%s", err, out, errOut)
	}
	// The simulated devices connect from loopback addresses: a site of
	// them, with a time zone and an always-open window.
	s.CLI(t, "sites", "add", "lab", "--subnet", "127.0.0.0/8", "--timezone", "Europe/Berlin")
	const devices, tests = 40, 3
	sc := simulator.Scenario{Seed: 12, Groups: []simulator.Group{
		{Model: cx600.Path(), Count: devices, Version: "4.0.7577.4300", TestDevices: tests},
	}}
	prepare(t, s, &sc)
	runUntil(t, newSim(t, s, sc), 2*time.Hour) // the fleet checks in
	importVersion(t, s, "4.0.7577.4400", 256<<10, cx600)

	ctx := browser(t, s)
	base := "https://" + s.Run.Console
	page(t, ctx, "sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#user"),
		chromedp.SendKeys("#user", "alice"),
		chromedp.SendKeys("#password", "correct horse battery staple"),
		chromedp.Submit("#password"),
		chromedp.WaitVisible("form.whoami"),
	)
	page(t, ctx, "sites", chromedp.Navigate(base+"/sites"), chromedp.WaitVisible("#sites"))
	if got := value(t, ctx, "sites", chromedp.Text("#sites")); !strings.Contains(got, "lab") || !strings.Contains(got, "127.0.0.0/8") || !strings.Contains(got, "Europe/Berlin") {
		t.Errorf("sites page: %q, want lab", got)
	}
	screenshot(t, ctx, "sites")

	// The plan: from the updates page, in two waves, reviewed.
	page(t, ctx, "the plan",
		chromedp.Navigate(base+"/updates"),
		chromedp.Click(`a.button[href^="/rollouts/new?"]`),
		chromedp.WaitVisible("#plan-waves"),
		chromedp.SetValue("#p-waves", "50%,100%"),
	)
	// The form's page shows the default plan's effect too: wait for the
	// reviewed plan's page to load, not for that one's #effect.
	reviewCtx, cancelReview := context.WithTimeout(ctx, 30*time.Second)
	if _, err := chromedp.RunResponse(reviewCtx, chromedp.Click("form.plan button[type=submit]")); err != nil {
		t.Fatalf("review the plan: %v", err)
	}
	cancelReview()
	page(t, ctx, "the reviewed plan", chromedp.WaitVisible("#effect"))
	effect := value(t, ctx, "effect", chromedp.Text("#effect"))
	if !strings.Contains(effect, fmt.Sprintf("to the %d devices of %s in 2 waves", devices-tests, cx600.Path())) || !strings.Contains(effect, fmt.Sprintf("Test devices (%d)", tests)) {
		t.Errorf("the plan says %q", effect)
	}
	// Each wave's devices, as the page counts them, against the cohorts
	// of the devices the simulator has.
	want := [2]int{}
	for _, d := range sc.Fleet() {
		if !d.Test {
			key, _ := firmware.DeviceKey(d.MAC, "")
			want[firmware.Waves{5000, firmware.Whole}.Wave(firmware.Cohort(key))]++
		}
	}
	for k, n := range want {
		got := value(t, ctx, "wave row", chromedp.Text(fmt.Sprintf("#plan-waves tbody tr:nth-child(%d) td.num", k+2)))
		if got != strconv.Itoa(n) {
			t.Errorf("the plan counts %s devices in wave %d, want %d", got, k+1, n)
		}
	}
	screenshot(t, ctx, "rollout-plan")
	page(t, ctx, "start", chromedp.Click(`form[action="/rollouts/start"] button[type=submit]`), chromedp.WaitVisible("#waves"))
	if got := value(t, ctx, "state", chromedp.Text("#state")); got != "running" {
		t.Fatalf("the rollout's state after starting: %q", got)
	}
	field := func(name string) string {
		t.Helper()
		return value(t, ctx, name, chromedp.Evaluate[string](liveField(name)))
	}
	if got := field("test.installed"); got != "0" {
		t.Fatalf("test devices installed before any ran: %s", got)
	}
	// Devices run while the page is open; a reload would lose the mark.
	page(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
		chromedp.Poll[chromedp.Void](`document.querySelector("[data-live-status]").textContent.startsWith("Live")`))
	runUntil(t, newSim(t, s, sc), 4*time.Hour) // they boot again and check in
	page(t, ctx, "live progress", chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`%s === "%d"`, liveField("test.installed"), tests), chromedp.WithPollingTimeout(30*time.Second)))
	if !value(t, ctx, "no reload", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page was loaded again: the progress was not followed live")
	}
	if got := field("test.pct"); got != "100" {
		t.Errorf("the test devices' progress bar is at %s, want 100", got)
	}
	t.Run("wave devices", func(t *testing.T) {
		offered := 0
		for _, f := range []string{"w1.offered", "w1.downloading", "w1.installed"} {
			n, _ := strconv.Atoi(field(f))
			offered += n
		}
		if offered == 0 || field("w1.installed") == "0" {
			t.Errorf("wave 1: %d devices offered, downloading or installed, %s installed; want its devices updated", offered, field("w1.installed"))
		}
		if got := field("w2.installed"); got != "0" {
			t.Errorf("wave 2 (not open): %s installed, want 0", got)
		}
		// Their site is the one their address falls in.
		if got := field("s/lab.devices"); got != strconv.Itoa(devices-tests) {
			t.Errorf("the site lab counts %s devices of the rollout, want %d", got, devices-tests)
		}
	})
	screenshot(t, ctx, "rollout")

	// Pause, confirmed with what it does.
	page(t, ctx, "pause",
		chromedp.Click(`#rollout-actions a[href$="action=pause"]`),
		chromedp.WaitVisible("#effect"),
	)
	if got := value(t, ctx, "pause effect", chromedp.Text("#effect")); !strings.Contains(got, "Stop offering 4.0.7577.4400 to more devices until you resume") ||
		!strings.Contains(got, fmt.Sprintf("Test devices (%d) still get it", tests)) {
		t.Errorf("the pause confirm page says %q", got)
	}
	screenshot(t, ctx, "rollout-pause")
	page(t, ctx, "paused",
		chromedp.SendKeys("#reason", "helpdesk tickets"),
		chromedp.Click("form.confirm button[type=submit]"),
		chromedp.WaitVisible(".flash"),
	)
	if got := value(t, ctx, "state", chromedp.Text("#state")); got != "paused" {
		t.Errorf("the rollout's page after pausing says %q", got)
	}
	var ros []struct {
		Identity firmware.Identity `json:"identity"`
		State    string            `json:"state"`
		PausedBy string            `json:"pausedBy"`
	}
	s.JSON(t, &ros, "rollouts")
	if len(ros) != 1 || ros[0].State != "paused" || ros[0].PausedBy != "web:alice" {
		t.Errorf("devsvc rollouts = %+v, want paused by web:alice", ros)
	}
	var es []firmware.Event
	s.JSON(t, &es, "history")
	if last := es[len(es)-1]; last.Actor != "web:alice" || last.Action != "rollout-paused" || !strings.Contains(last.Detail, "helpdesk tickets") {
		t.Errorf("last event %+v, want web:alice's rollout-paused", last)
	}
	page(t, ctx, "overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#h-ro2"))
	screenshot(t, ctx, "overview-rollout")
}

// liveField is a script that returns what a live page shows under a
// field's name, as console.js finds it: the text of the cell of row
// data-row="ROW" in the column COL of its table's data-cols ("ROW.COL"),
// or a progress bar's value in it.
func liveField(name string) string {
	return `(() => { const k = ` + jsString(name) + `; const dot = k.lastIndexOf(".");
		const row = document.querySelector('tr[data-row="' + k.slice(0, dot) + '"]');
		const cell = row.cells[row.closest("table").dataset.cols.split(" ").indexOf(k.slice(dot + 1))];
		const bar = cell.querySelector("progress");
		return bar ? String(bar.value) : cell.textContent; })()`
}
