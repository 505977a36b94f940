package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

var (
	v4300 = firmware.MustParseVersion("4.0.7577.4300")
	v4372 = firmware.MustParseVersion("4.0.7577.4372")
)

// offer records a check-in of device i that was offered v.
func (e *env) offer(i int, v firmware.Version) {
	e.t.Helper()
	d := e.devices[i]
	d.Offered, d.LastCheckIn = v, e.clock.Now()
	d.State, d.Target, d.Error = "", firmware.Version{}, ""
	e.retry(func() error { return e.st.RecordCheckIn(context.Background(), d) })
}

// report records device i's report about v.
func (e *env) report(i int, st firmware.State, v firmware.Version) {
	e.t.Helper()
	r := store.Report{Key: e.devices[i].Key, State: st, Target: v}
	e.retry(func() error { return e.st.Report(context.Background(), r) })
}

// field returns what a live page shows under a field's name, as
// console.js finds it: the text of the element with data-field="name", or
// for "ROW.COL" the cell of row data-row="ROW" in column COL of its
// table's data-cols (a progress bar's value).
func field(body, name string) string {
	if m := regexp.MustCompile(`data-field="` + regexp.QuoteMeta(name) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body); m != nil {
		return m[1]
	}
	dot := strings.LastIndex(name, ".")
	if dot < 0 {
		return "(none)"
	}
	row := strings.Index(body, `<tr data-row="`+name[:dot]+`"`)
	table := strings.LastIndex(body[:max(row, 0)], `data-cols="`)
	if row < 0 || table < 0 {
		return "(none)"
	}
	cols := strings.Fields(body[table+len(`data-cols="`):][:strings.Index(body[table+len(`data-cols="`):], `"`)])
	col := slices.Index(cols, name[dot+1:])
	end := strings.Index(body[row:], "</tr>")
	cells := regexp.MustCompile(`<t[dh][^>]*>(.*?)</t[dh]>`).FindAllStringSubmatch(body[row:row+end], -1)
	if col < 0 || col >= len(cells) {
		return "(none)"
	}
	if m := regexp.MustCompile(`<progress max="100" value="(\d+)">`).FindStringSubmatch(cells[col][1]); m != nil {
		return m[1]
	}
	return cells[col][1]
}

// lastEvent returns the history's newest event.
func (e *env) lastEvent() firmware.Event {
	e.t.Helper()
	es, err := e.svc.History(service.WithPrincipal(context.Background(), certAdmin), e.seq()-1, 1)
	if err != nil || len(es) != 1 {
		e.t.Fatalf("the last history event: %v, %v", es, err)
	}
	return es[0]
}

// TestStartRollout walks an admin from the updates page to a started
// rollout: the plan's defaults, each wave's devices counted, a plan
// changed and reviewed, one refused with every reason, the start recorded
// as web:alice, and a second start refused while the first is live.
func TestStartRollout(t *testing.T) {
	e := newEnv(t, Config{}, 300) // 257 CX600s, 43 CX500s
	c := e.signedIn("alice", alicePW)
	if _, err := e.svc.AddTestDevice(service.WithPrincipal(t.Context(), certAdmin), firmware.TestDevice{MAC: e.devices[1].MAC}); err != nil {
		t.Fatal(err)
	}
	upd := c.get("/updates")
	start := "/rollouts/new?rule=" + cx600ID.RuleID()
	if !strings.Contains(upd.body, `href="`+start+`">Start rollout</a>`) {
		t.Fatalf("the updates page has no Start rollout link to %s:\n%s", start, upd.body)
	}
	// The waves' devices, counted here from the devices' keys.
	count := func(waves firmware.Waves) []int {
		n := make([]int, len(waves))
		for i, d := range e.devices {
			if d.Identity == cx600ID && i != 1 {
				n[waves.Wave(firmware.Cohort(d.Key))]++
			}
		}
		return n
	}
	page := c.get(start)
	for _, want := range []string{`name="waves" value="1%,10%,50%,100%"`, `name="wave_wait" value="24h"`, `name="success" value="90%"`,
		`name="max_failures" value="10%"`, `name="max_downloads" value="0"`, "Test devices (1) get it at once", "to the 256 devices of " + cx600} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the plan's page lacks %q", want)
		}
	}
	want := count(firmware.Waves{100, 1000, 5000, firmware.Whole})
	for k, n := range want {
		if !strings.Contains(page.body, fmt.Sprintf(`<th scope="row">%d</th><td>`, k+1)) ||
			!regexp.MustCompile(fmt.Sprintf(`<th scope="row">%d</th><td>[^<]*</td><td class="num">%d</td>`, k+1, n)).MatchString(page.body) {
			t.Errorf("wave %d: want %d devices on the plan's page\n%s", k+1, n, firstLines(page.body, "plan-waves"))
		}
	}
	// A plan that cannot run lists every reason, and offers no start.
	bad := c.get(start + "&waves=10%25,5%25,100%25&success=lots&window=Mon-Fry+22:00-05:00")
	for _, want := range []string{"waves: invalid share", "is not more than the one before", "success: ", "window: "} {
		if !strings.Contains(bad.body, want) {
			t.Errorf("a bad plan's page does not say %q:\n%s", want, firstLines(bad.body, "plan-errors"))
		}
	}
	if strings.Contains(bad.body, `action="/rollouts/start"`) || !strings.Contains(bad.body, `value="10%,5%,100%"`) {
		t.Error("a bad plan's page offers to start it, or lost what was entered")
	}
	// A plan changed: the start form carries it as reviewed.
	page = c.get(start + "&" + url.Values{"waves": {"50%,100%"}, "wave_wait": {"2h"}, "success": {"80%"}, "max_failures": {"3"},
		"window": {"Mon-Fri 22:00-05:00"}, "max_downloads": {"10"}, "at": {"2026-11-22T14:00"}, "tz": {"60"}}.Encode())
	w2 := count(firmware.Waves{5000, firmware.Whole})
	for _, want := range []string{fmt.Sprintf("Wave 1 opens to %d devices (50%%)", w2[0]), "after 2h at the earliest, once 80%",
		"When 3 of a wave", "inside Mon-Fri 22:00-05:00", "At most 10 devices", "from 2026-11-22"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the changed plan's page does not say %q:\n%s", want, firstLines(page.body, "effect"))
		}
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`).FindAllStringSubmatch(page.body[strings.Index(page.body, `action="/rollouts/start"`):], -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&#43;", "+"))
	}
	if form.Get("at") != "2026-11-22T13:00:00Z" || form.Get("waves") != "50%,100%" {
		t.Fatalf("the start form sends %v, want the plan with its time in UTC", form)
	}
	r := c.change("/rollouts/start", form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/rollouts/"+cx600ID.RuleID() {
		t.Fatalf("start: %s to %q\n%s", r.Status, r.Header.Get("Location"), r.body)
	}
	ro, ok := e.st.Catalog().Rollout(cx600ID.RuleID())
	wantPlan := firmware.Plan{Waves: firmware.Waves{5000, firmware.Whole}, WaveWait: 2 * time.Hour, Success: 8000, MaxFailures: firmware.FailureCount(3),
		Window: firmware.MustParseSchedule("Mon-Fri 22:00-05:00"), MaxDownloads: 10, At: time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)}
	if !ok || ro.State != firmware.RolloutScheduled || ro.Waves.String() != wantPlan.Waves.String() || ro.WaveWait != wantPlan.WaveWait ||
		ro.Success != wantPlan.Success || ro.MaxFailures != wantPlan.MaxFailures || !ro.Window.Equal(wantPlan.Window) || ro.MaxDownloads != 10 || !ro.At.Equal(wantPlan.At) {
		t.Errorf("the rollout started = %+v, want scheduled with %+v", ro, wantPlan)
	}
	if ev := e.lastEvent(); ev.Actor != "web:alice" || ev.Action != "rollout-scheduled" {
		t.Errorf("the last event is %s by %s, want rollout-scheduled by web:alice", ev.Action, ev.Actor)
	}
	if page := c.get("/rollouts/" + cx600ID.RuleID()); !strings.Contains(page.body, "Started the rollout of "+cx600+" to 4.0.7577.4372.") || !strings.Contains(page.body, "is scheduled for") {
		t.Errorf("the rollout's page after the start:\n%s", page.body)
	}
	// While it is live, the plan's page offers no start, and a start is
	// refused with what to do.
	page = c.get(start)
	if strings.Contains(page.body, `action="/rollouts/start"`) || !strings.Contains(page.body, "pause, resume or stop it") {
		t.Errorf("the plan's page while a rollout is live:\n%s", page.body)
	}
	if r := c.change("/rollouts/start", url.Values{"rule": {cx600ID.RuleID()}}); r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "stop it") {
		t.Errorf("a second start: %s\n%s", r.Status, r.body)
	}
	if upd := c.get("/updates"); strings.Contains(upd.body, "Start rollout</a>") || strings.Contains(upd.body, "action=approve") {
		t.Error("the updates page offers to start or approve while a rollout is live")
	}
}

// TestRolloutPage shows a rollout per wave and per site, counted as the
// store counts it, and pauses, resumes and stops it through confirm pages
// that say what each does to how many devices; each change is in the
// history under web:alice.
func TestRolloutPage(t *testing.T) {
	e := newEnv(t, Config{}, 120)
	e.startRollout(t, "50%,100%")
	ctx := service.WithPrincipal(t.Context(), certAdmin)
	// Devices of the first wave are offered the version: one downloads,
	// one installs.
	var inWave []int
	for i, d := range e.devices {
		if d.Identity == cx600ID && firmware.Cohort(d.Key) < 5000 && d.State == "" {
			inWave = append(inWave, i)
		}
	}
	for _, i := range inWave[:4] {
		e.offer(i, v4372)
	}
	e.report(inWave[0], firmware.StateDownloading, v4372)
	e.report(inWave[1], firmware.StateSuccess, v4372)
	pr, err := e.svc.RolloutProgress(ctx, cx600)
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn("alice", alicePW)
	p := "/rollouts/" + cx600ID.RuleID()
	page := c.get(p)
	check := func(body, name string, want int) {
		t.Helper()
		if got := field(body, name); got != fmt.Sprint(want) {
			t.Errorf("%s = %s on the page, want %d", name, got, want)
		}
	}
	w1 := pr.Waves[0].Stats
	if w1.Offered != 2 || w1.Downloading != 1 || w1.Installed != 1 {
		t.Fatalf("wave 1 = %+v: the test's devices did not count", w1)
	}
	for name, want := range map[string]int{"w1.devices": w1.Devices, "w1.offered": 2, "w1.downloading": 1, "w1.installed": 1,
		"w2.devices": pr.Waves[1].Stats.Devices, "w2.waiting": pr.Waves[1].Stats.Waiting, "all.devices": pr.Total.Devices,
		"all.failed": pr.Total.Failed, "all.retrying": pr.Total.Retrying, "test.devices": 0} {
		check(page.body, name, want)
	}
	for _, s := range pr.Sites {
		check(page.body, siteKey(s.Site)+".devices", s.Devices)
		check(page.body, siteKey(s.Site)+".installed", s.Installed)
	}
	for _, want := range []string{"is running: wave 1 of 2 is open", "Sites</h2>", `href="/sites/hq">hq</a>`, "0x80070005",
		`href="` + p + `/confirm?action=pause"`, `href="` + p + `/confirm?action=stop"`, `data-live="` + p + `/events?v=`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the rollout's page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "action=resume") {
		t.Error("a running rollout's page offers to resume it")
	}
	// The sites of one wave.
	page = c.get(p + "?wave=1")
	if !strings.Contains(page.body, "Sites in wave 1") {
		t.Errorf("?wave=1 does not show the first wave's sites")
	}
	for _, s := range pr.Waves[0].Sites {
		check(page.body, siteKey(s.Site)+".devices", s.Devices)
	}

	// Pause, resume, stop: each confirmed with its counts.
	open := w1.Waiting + w1.Retrying
	conf := c.get(p + "/confirm?action=pause")
	wantPause := fmt.Sprintf("the %s of the open waves that have not taken it yet (%d waiting, %d to retry) and the %s of the waves to come are not offered it; the 3 devices offered it or downloading it may still finish; the 1 device that installed it keep it",
		plural(open, "device"), w1.Waiting, w1.Retrying, plural(pr.Waves[1].Stats.Devices, "device"))
	if !strings.Contains(conf.body, htmlEscape(wantPause)) {
		t.Errorf("the pause confirm page does not say\n%s\n%s", wantPause, conf.body[strings.Index(conf.body, `id="effect"`):][:800])
	}
	if ro, _ := e.st.Catalog().Rollout(cx600ID.RuleID()); ro.State != firmware.RolloutRunning {
		t.Fatal("the confirm page paused")
	}
	steps := []struct {
		action, reason string
		state          firmware.RolloutState
		event          string
	}{
		{"pause", "tickets from berlin", firmware.RolloutPaused, "rollout-paused"},
		{"resume", "", firmware.RolloutRunning, "rollout-resumed"},
		{"stop", "", firmware.RolloutStopped, "rollout-stopped"},
	}
	for _, s := range steps {
		if s.action != "pause" {
			conf := c.get(p + "/confirm?action=" + s.action)
			if !strings.Contains(conf.body, `action="/rollouts/`+s.action+`"`) {
				t.Fatalf("the %s confirm page has no form:\n%s", s.action, conf.body)
			}
		}
		r := c.change("/rollouts/"+s.action, url.Values{"rule": {cx600ID.RuleID()}, "reason": {s.reason}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != p {
			t.Fatalf("%s: %s to %q\n%s", s.action, r.Status, r.Header.Get("Location"), r.body)
		}
		ro, _ := e.st.Catalog().Rollout(cx600ID.RuleID())
		ev := e.lastEvent()
		if ro.State != s.state || ev.Actor != "web:alice" || ev.Action != s.event || !strings.Contains(ev.Detail, s.reason) {
			t.Errorf("after %s: %s, the last event %s by %s (%s); want %s, %s by web:alice", s.action, ro.State, ev.Action, ev.Actor, ev.Detail, s.state, s.event)
		}
	}
	page = c.get(p)
	if !strings.Contains(page.body, "is stopped (stopped by web:alice)") || strings.Contains(page.body, "/confirm?action=") {
		t.Errorf("a stopped rollout's page:\n%s", firstLines(page.body, "sentence"))
	}
	// An action that no longer applies says so, and changes nothing.
	seq := e.seq()
	if r := c.get(p + "/confirm?action=pause"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("confirming the pause of a stopped rollout: %s, want a redirect saying there is nothing to pause", r.Status)
	}
	if r := c.change("/rollouts/resume", url.Values{"rule": {cx600ID.RuleID()}}); r.StatusCode != http.StatusConflict {
		t.Errorf("resuming a stopped rollout: %s, want 409", r.Status)
	}
	if e.seq() != seq {
		t.Error("refused changes moved the history")
	}
	// A scheduled approval is a scheduled one-wave rollout: the updates
	// page cancels it, its page offers nothing.
	if _, err := e.svc.Schedule(ctx, cx600, e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if page := c.get(p); !strings.Contains(page.body, "is scheduled for") || strings.Contains(page.body, "/confirm?action=") {
		t.Errorf("a scheduled approval's page:\n%s", firstLines(page.body, "sentence"))
	}
	if r := c.get(p + "/confirm?action=stop"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("confirming the stop of a scheduled approval: %s, want a redirect", r.Status)
	}
	if r := c.get("/rollouts/nosuchrule"); r.StatusCode != http.StatusNotFound {
		t.Errorf("the rollout of an unknown rule: %s, want 404", r.Status)
	}
}

// stream reads a console event stream.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func (c *client) stream(t *testing.T, ctx context.Context, p string) *stream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.e.srv.URL+p, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %s", p, resp.Status, resp.Header.Get("Content-Type"))
	}
	return &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name ("" for a message) and data.
func (s *stream) next() (string, map[string]any) {
	s.t.Helper()
	var name string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				s.t.Fatalf("event data %q: %v", line, err)
			}
			return name, m
		}
	}
}

// until reads messages until the fields they carried so far (an event
// carries those that changed) satisfy ok; it returns them.
func (s *stream) until(ok func(fields map[string]any) bool) map[string]any {
	s.t.Helper()
	fields := map[string]any{}
	for {
		name, ev := s.next()
		if name == endEvent {
			s.t.Fatalf("the stream ended: %v", ev)
		}
		maps.Copy(fields, ev)
		if ok(fields) {
			return fields
		}
	}
}

// TestRolloutEvents follows a rollout page's event stream: its numbers
// as the store counts them, a change of them as devices report, a reload
// when the rollout pauses, and its end when the session idles out (the
// stream itself does not keep a session alive).
func TestRolloutEvents(t *testing.T) {
	e := newEnv(t, Config{LivePeriod: 5 * time.Millisecond}, 60)
	e.startRollout(t, "50%,100%")
	c := e.signedIn("alice", alicePW)
	p := "/rollouts/" + cx600ID.RuleID()
	live := regexpAll(`data-live="([^"]+)"`, c.get(p).body)
	if len(live) != 1 {
		t.Fatal("the rollout's page has no live part")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := c.stream(t, ctx, strings.ReplaceAll(live[0], "&amp;", "&"))
	_, first := s.next()
	if first["test.devices"] != 0.0 || first["w1.installed"] != 0.0 || first["all.devices"] == nil {
		t.Fatalf("first event: %v", first)
	}
	fields := first
	// A test device takes the pending version: the test row moves.
	if _, err := e.svc.AddTestDevice(service.WithPrincipal(t.Context(), certAdmin), firmware.TestDevice{MAC: e.devices[1].MAC}); err != nil {
		t.Fatal(err)
	}
	e.offer(1, v4372)
	e.report(1, firmware.StateDownloading, v4372)
	s.until(func(ev map[string]any) bool {
		maps.Copy(fields, ev)
		return fields["test.downloading"] == 1.0 && fields["test.devices"] == 1.0
	})
	e.report(1, firmware.StateSuccess, v4372)
	s.until(func(ev map[string]any) bool {
		maps.Copy(fields, ev)
		return fields["test.installed"] == 1.0 && fields["test.pct"] == 100.0 && fields["test.downloading"] == 0.0
	})
	// The rollout pauses (here by cert:admin): the page must show more
	// than numbers, so the stream says reload.
	if _, err := e.svc.PauseRollout(service.WithPrincipal(t.Context(), certAdmin), cx600, "test"); err != nil {
		t.Fatal(err)
	}
	s.until(func(ev map[string]any) bool { return ev[reloadField] == true })
	// Open for longer than the idle timeout, the stream does not keep the
	// session: it ends, saying so.
	s = c.stream(t, ctx, p+"/events")
	s.next()
	e.clock.Advance(DefaultIdleTimeout)
	for {
		name, ev := s.next()
		if name == endEvent {
			if msg, _ := ev["message"].(string); !strings.Contains(msg, "session ended") {
				t.Errorf("end event %v", ev)
			}
			break
		}
	}
	if r := c.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the session after idling with a stream open: %s, want ended", r.Status)
	}
}

// TestRolloutsListAndOverview: the rollouts list and the overview show a
// live rollout with its progress, and the overview the open alarms,
// linking to their rollout.
func TestRolloutsListAndOverview(t *testing.T) {
	e := newEnv(t, Config{LivePeriod: 5 * time.Millisecond}, 60)
	ro := e.startRollout(t, "100%")
	for i, d := range e.devices {
		if d.Identity == cx600ID && d.State == "" {
			e.offer(i, v4372)
			e.report(i, firmware.StateSuccess, v4372)
			break
		}
	}
	if _, err := e.st.RaiseAlarm(t.Context(), firmware.Alarm{ID: "test-alarm", Kind: firmware.AlarmOverdue, Rule: ro.Rule, Identity: cx600ID,
		Version: ro.Version, Detail: "release of it is 4h1m past; devices that have not checked in since: ny 20 of 20", Raised: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	c := e.signedIn("helpdesk", helpPW)
	p := "/rollouts/" + cx600ID.RuleID()
	list := c.get("/rollouts")
	if !strings.Contains(list.body, `href="`+p+`"`) || field(list.body, "r/"+ro.Rule+".installed") != "1" || !strings.Contains(list.body, "running") {
		t.Errorf("the rollouts list:\n%s", firstLines(list.body, "rollouts"))
	}
	live := regexpAll(`data-live="([^"]+)"`, list.body)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := c.stream(t, ctx, strings.ReplaceAll(live[0], "&amp;", "&"))
	if _, ev := s.next(); ev["r/"+ro.Rule+".installed"] != 1.0 {
		t.Errorf("the list's first event: %v", ev)
	}
	over := c.get("/")
	for _, want := range []string{"Rollouts under way", `<a href="` + p + `">` + cx600 + `</a>`, "ny 20 of 20", `<a href="` + p + `">its rollout</a>`} {
		if !strings.Contains(over.body, want) {
			t.Errorf("the overview lacks %q:\n%s", want, over.body)
		}
	}
	if page := c.get(p); !strings.Contains(page.body, "overdue alarm") {
		t.Error("the rollout's page does not show its alarm")
	}
}

// TestSitesPage adds, changes and removes sites through their pages; a
// site the form or the service refuses is shown again with every reason
// and what was entered.
func TestSitesPage(t *testing.T) {
	e := newEnv(t, Config{}, 30) // 10 at ny, 20 at hq
	c := e.signedIn("alice", alicePW)
	page := c.get("/sites")
	for _, want := range []string{`href="/sites/hq">hq</a>`, "<code>10.1.0.0/16</code>", "Europe/Berlin", "Mon-Fri 22:00-05:00",
		`<a href="/devices?site=ny">10</a>`, `data-confirm="Remove the site ny? Its 10 devices`} {
		if !strings.Contains(page.body, htmlEscape(want)) && !strings.Contains(page.body, want) {
			t.Errorf("the sites page lacks %q", want)
		}
	}
	// Every reason at once, and the form as entered.
	seq := e.seq()
	bad := url.Values{"name": {"Berlin Lab"}, "subnets": {"10.9.0.1/16, nonsense"}, "timezone": {"Mars/Olympus"}, "windows": {"Mon-Fry 22:00-05:00"}}
	r := c.change("/sites/add", bad)
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad site: %s, want 400", r.Status)
	}
	for _, want := range []string{"has host bits set; did you mean 10.9.0.0/16?", `site name "Berlin Lab" has the character`, "Mon-Fry",
		`value="Berlin Lab"`, `value="10.9.0.1/16, nonsense"`, `value="Mars/Olympus"`} {
		if !strings.Contains(r.body, htmlEscape(want)) && !strings.Contains(r.body, want) {
			t.Errorf("the refused site's page does not say %q:\n%s", want, firstLines(r.body, "site-error"))
		}
	}
	// The service's refusals: an unknown zone, a subnet of another site.
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"name": {"lab"}, "subnets": {"10.9.0.0/24"}, "timezone": {"Mars/Olympus"}}, `unknown time zone "Mars/Olympus"`},
		{url.Values{"name": {"lab"}, "subnets": {"10.1.0.0/16"}}, "subnet 10.1.0.0/16 is in both site hq and site lab"},
		{url.Values{"name": {"hq"}}, "site hq already exists"},
	} {
		r := c.change("/sites/add", tc.form)
		if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusConflict || !strings.Contains(r.body, htmlEscape(tc.want)) {
			t.Errorf("adding %v: %s, want it refused saying %q\n%s", tc.form, r.Status, tc.want, firstLines(r.body, "site-error"))
		}
	}
	if e.seq() != seq {
		t.Fatal("refused sites moved the history")
	}
	r = c.change("/sites/add", url.Values{"name": {"lab"}, "subnets": {"10.1.9.0/24\n2001:db8:9::/48"}, "timezone": {"Europe/Berlin"}, "windows": {"22:00-06:00"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding lab: %s\n%s", r.Status, r.body)
	}
	if ev := e.lastEvent(); ev.Actor != "web:alice" || ev.Action != store.ActionSiteAdd || ev.Subject != "lab" {
		t.Errorf("the last event %+v, want web:alice's site-add of lab", ev)
	}
	edit := c.get("/sites/lab")
	if !strings.Contains(edit.body, `value="10.1.9.0/24,2001:db8:9::/48"`) || !strings.Contains(edit.body, `action="/sites/update"`) {
		t.Errorf("the site's page:\n%s", edit.body)
	}
	if r := c.change("/sites/update", url.Values{"name": {"lab"}, "subnets": {"10.1.9.0/24"}, "timezone": {"Europe/Berlin"}, "windows": {"bad"}}); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, `action="/sites/update"`) {
		t.Errorf("a bad update: %s, want 400 with the form again", r.Status)
	}
	if r := c.change("/sites/update", url.Values{"name": {"lab"}, "subnets": {"10.1.9.0/24"}, "timezone": {"Europe/Berlin"}, "windows": {"Sat,Sun 00:00-24:00"}, "peers": {"off"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("updating lab: %s\n%s", r.Status, r.body)
	}
	sites, _ := e.svc.Sites(service.WithPrincipal(t.Context(), certAdmin))
	var lab firmware.Site
	for _, s := range sites {
		if s.Name == "lab" {
			lab = s.Site
		}
	}
	if firmware.FormatSubnets(lab.Subnets) != "10.1.9.0/24" || lab.Windows.String() != "Sat,Sun 00:00-24:00" || !lab.NoPeers {
		t.Errorf("lab after its update: %+v, want peers off", lab)
	}
	if page := c.get("/sites/lab"); !strings.Contains(page.body, `<option value="off" selected>off</option>`) || !strings.Contains(page.body, "<dt>Subnet peers</dt><dd>off") {
		t.Errorf("the site's page does not show peers off:\n%s", page.body)
	}
	if r := c.change("/sites/remove", url.Values{"name": {"lab"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("removing lab: %s", r.Status)
	}
	if ev := e.lastEvent(); ev.Actor != "web:alice" || ev.Action != store.ActionSiteRemove {
		t.Errorf("the last event %+v, want web:alice's site-remove", ev)
	}
	if r := c.get("/sites/lab"); r.StatusCode != http.StatusNotFound {
		t.Errorf("a removed site's page: %s, want 404", r.Status)
	}
}
