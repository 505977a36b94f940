package console

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) rolloutRoutes() []route {
	rs := []route{
		{pattern: "GET /rollouts", h: c.rollouts},
		{pattern: "GET /rollouts/events", stream: true, h: c.rolloutsEvents},
		{pattern: "GET /rollouts/new", h: c.newRollout},
		{pattern: "POST /rollouts/start", h: c.startRollout},
		{pattern: "GET /rollouts/{rule}", h: c.rollout},
		{pattern: "GET /rollouts/{rule}/events", stream: true, h: c.rolloutEvents},
		{pattern: "GET /rollouts/{rule}/confirm", h: c.confirmRollout},
	}
	for _, a := range rolloutActions {
		rs = append(rs, route{pattern: "POST /rollouts/" + a.Name, h: c.rolloutChange(a)})
	}
	return rs
}

// rolloutPath is the page of a rule's rollout.
func rolloutPath(ruleID string) string { return "/rollouts/" + url.PathEscape(ruleID) }

// The rollouts list.

type rolloutsView struct {
	Rollouts []service.RolloutSummary
	// Live is the event stream's URL, while a rollout is live (the
	// numbers of ended ones hardly move).
	Live string
}

// rollouts lists every rule's last rollout, live ones first, with their
// progress; the list follows an event stream.
func (c *Console) rollouts(w http.ResponseWriter, r *http.Request, rq *request) error {
	ros, err := c.svc.Rollouts(rq.ctx)
	if err != nil {
		return err
	}
	v := rolloutsView{Rollouts: ros}
	for _, ro := range ros {
		if ro.Live() {
			v.Live = "/rollouts/events?v=" + listShape(ros)
		}
	}
	c.render(w, rq, http.StatusOK, "rollouts", "Rollouts", v)
	return nil
}

// listShape is a token of what the rollouts list shows beyond its
// numbers: which rollouts, in which state and wave. The page's stream
// says reload when it changes (a rollout started, paused, a wave opened),
// and sends only the numbers otherwise.
func listShape(ros []service.RolloutSummary) string {
	h := fnv.New64a()
	for _, ro := range ros {
		fmt.Fprintf(h, "%s %s %s %d %d\n", ro.Rule, ro.Version, ro.State, ro.Wave, ro.Updated.UnixNano())
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// reloadField is the field of an event that tells console.js to reload
// the page: what it shows has changed beyond its numbers.
const reloadField = "_reload"

func (c *Console) rolloutsEvents(w http.ResponseWriter, r *http.Request, rq *request) error {
	shape := r.URL.Query().Get("v")
	return c.events(w, rq, func(ctx context.Context) (any, error) {
		seq, err := c.svc.LastSeq(ctx)
		if err != nil {
			return nil, err
		}
		v, err := c.live.get("rollouts", seq, func() (any, error) { return c.svc.Rollouts(ctx) })
		if err != nil {
			return nil, err
		}
		ros := v.([]service.RolloutSummary)
		if listShape(ros) != shape {
			return map[string]any{reloadField: true}, nil
		}
		m := map[string]any{}
		for _, ro := range ros {
			p := "r/" + ro.Rule
			m[p+".installed"] = ro.Total.Installed
			m[p+".devices"] = ro.Total.Devices
			m[p+".failed"] = ro.Total.Failed
			m[p+".pct"] = pct(ro.Total.Installed, ro.Total.Devices)
		}
		return m, nil
	})
}

// One rollout's page.

type rolloutView struct {
	P        store.RolloutProgress
	Rule     firmware.Rule
	Sentence string
	Actions  []rolloutAction
	// Wave is the wave whose sites are shown (0 is the first), or -1 for
	// the sites counted over every wave.
	Wave     int
	Sites    []store.SiteStats
	Holds    []store.Count
	Alarms   []firmware.Alarm // the rule's open alarms
	Live     string           // the event stream's URL
	WaveLink func(k int) string
}

// waveOf reads the page's wave query: the wave whose sites are shown.
func waveOf(q url.Values, pr *store.RolloutProgress) int {
	k, err := strconv.Atoi(q.Get("wave"))
	if err != nil || k < 1 || k > len(pr.Waves) {
		return -1
	}
	return k - 1
}

// rolloutShape is a token of what a rollout's page shows beyond its
// numbers: its state and wave, when it last changed, and the sites
// listed.
func rolloutShape(pr *store.RolloutProgress, sites []store.SiteStats) string {
	h := fnv.New64a()
	ro := &pr.Rollout
	fmt.Fprintf(h, "%s %s %d %d %v\n", ro.Version, ro.State, ro.Wave, ro.Updated.UnixNano(), ro.RolledBack)
	for _, s := range sites {
		fmt.Fprintln(h, s.Site)
	}
	for _, wv := range pr.Waves {
		fmt.Fprintln(h, wv.Open)
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// sitesOf returns the sites of wave k (every wave for -1), and the holds
// of its waiting devices.
func sitesOf(pr *store.RolloutProgress, k int) ([]store.SiteStats, []store.Count) {
	if k < 0 {
		return pr.Sites, pr.Holds
	}
	return pr.Waves[k].Sites, pr.Waves[k].Holds
}

// rollout shows one rule's rollout per wave and per site; the page
// follows an event stream of its numbers.
func (c *Console) rollout(w http.ResponseWriter, r *http.Request, rq *request) error {
	ref := r.PathValue("rule")
	pr, err := c.svc.RolloutProgress(rq.ctx, ref)
	if err != nil {
		return err
	}
	rl, err := c.svc.Rule(rq.ctx, ref)
	if err != nil {
		return err
	}
	alarms, err := c.svc.Alarms(rq.ctx, false)
	if err != nil {
		return err
	}
	v := rolloutView{P: pr, Rule: rl, Sentence: rolloutSentence(&pr.Rollout), Wave: waveOf(r.URL.Query(), &pr)}
	for _, a := range rolloutActions {
		if actionApplies(a, &pr) {
			v.Actions = append(v.Actions, a)
		}
	}
	for _, a := range alarms {
		if a.Rule == rl.ID {
			v.Alarms = append(v.Alarms, a)
		}
	}
	v.Sites, v.Holds = sitesOf(&pr, v.Wave)
	base := rolloutPath(rl.ID)
	v.WaveLink = func(k int) string {
		if k < 0 {
			return base + "#sites"
		}
		return base + "?wave=" + strconv.Itoa(k+1) + "#sites"
	}
	q := url.Values{"v": {rolloutShape(&pr, v.Sites)}}
	if v.Wave >= 0 {
		q.Set("wave", strconv.Itoa(v.Wave+1))
	}
	v.Live = base + "/events?" + q.Encode()
	title := "Rollout of " + rl.Identity.Path()
	c.render(w, rq, http.StatusOK, "rollout", title, v)
	return nil
}

func (c *Console) rolloutEvents(w http.ResponseWriter, r *http.Request, rq *request) error {
	ref := r.PathValue("rule")
	q := r.URL.Query()
	shape := q.Get("v")
	return c.events(w, rq, func(ctx context.Context) (any, error) {
		seq, err := c.svc.LastSeq(ctx)
		if err != nil {
			return nil, err
		}
		v, err := c.live.get("rollout "+ref, seq, func() (any, error) {
			pr, err := c.svc.RolloutProgress(ctx, ref)
			return &pr, err
		})
		if err != nil {
			return nil, err
		}
		pr := v.(*store.RolloutProgress)
		wave := waveOf(q, pr)
		sites, holds := sitesOf(pr, wave)
		if rolloutShape(pr, sites) != shape {
			return map[string]any{reloadField: true}, nil
		}
		return rolloutFields(pr, sites, holds), nil
	})
}

// rolloutFields are the numbers of a rollout's page, by the data-field
// names its template gives them: per wave ("w1.installed"), all waves
// ("all."), the test devices ("test."), per site ("s/berlin-hq.") and
// the failures and holds.
func rolloutFields(pr *store.RolloutProgress, sites []store.SiteStats, holds []store.Count) map[string]any {
	m := map[string]any{}
	for _, wv := range pr.Waves {
		p := "w" + strconv.Itoa(wv.Wave+1)
		statFields(m, p, wv.Stats)
		m[p+".open"] = waveOpenText(wv)
	}
	statFields(m, "all", pr.Total)
	statFields(m, "test", pr.Test)
	for _, s := range sites {
		statFields(m, siteKey(s.Site), s.WaveStats)
	}
	m["failures"] = countText(pr.Failures, "none")
	m["holds"] = countText(holds, "none")
	return m
}

func statFields(m map[string]any, p string, s firmware.WaveStats) {
	m[p+".devices"] = s.Devices
	m[p+".waiting"] = s.Waiting
	m[p+".offered"] = s.Offered
	m[p+".downloading"] = s.Downloading
	m[p+".installed"] = s.Installed
	m[p+".retrying"] = s.Retrying
	m[p+".stalled"] = s.Stalled
	m[p+".failed"] = s.Failed
	m[p+".pct"] = pct(s.Installed, s.Devices)
}

// waveOpenText says whether a wave is open, or when it is expected to.
func waveOpenText(wv store.WaveProgress) string {
	switch {
	case wv.Open:
		return "open"
	case wv.Opens.IsZero():
		return "not open"
	}
	return "expected " + when(wv.Opens)
}

// siteKey is the prefix of a site's fields.
func siteKey(site string) string { return "s/" + site }

// pct is part of whole in whole percent (0 of nothing).
func pct(part, whole int) int {
	if whole <= 0 {
		return 0
	}
	return part * 100 / whole
}

// countText lists counts as "0x80070005 2, silent 1".
func countText(cs []store.Count, none string) string {
	if len(cs) == 0 {
		return none
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.Name, c.Devices)
	}
	return strings.Join(parts, ", ")
}

// rolloutSentence says where a rollout stands.
func rolloutSentence(ro *firmware.Rollout) string {
	what := fmt.Sprintf("The rollout of %s to %s", ro.Identity, ro.Version)
	lo, hi := ro.Waves.Bounds(ro.Wave)
	switch ro.State {
	case firmware.RolloutScheduled:
		return fmt.Sprintf("%s is scheduled for %s: only test devices get it until then.", what, when(ro.At))
	case firmware.RolloutRunning:
		return fmt.Sprintf("%s is running: wave %d of %d is open (%s of the devices, %s more) since %s; the next opens after %s once %s of it installed; it pauses itself when %s of a wave fail.",
			what, ro.Wave+1, len(ro.Waves), firmware.Share(hi), firmware.Share(hi-lo), when(ro.WaveOpened), durationText(ro.WaveWait), ro.Success, ro.MaxFailures)
	case firmware.RolloutPaused:
		return fmt.Sprintf("%s is paused in wave %d of %d by %s: %s.", what, ro.Wave+1, len(ro.Waves), ro.PausedBy, ro.Reason)
	case firmware.RolloutCompleted:
		return fmt.Sprintf("%s completed at %s: %s is approved.", what, when(ro.Ended), ro.Version)
	}
	if ro.RolledBack {
		return fmt.Sprintf("%s was rolled back (%s): the devices it reached are offered %s again.", what, ro.Reason, orNothing(ro.From))
	}
	return fmt.Sprintf("%s is stopped (%s): the devices that installed it keep it, the others %s.", what, ro.Reason, orNothing(ro.From))
}

// durationText writes a duration as an admin would: 24h, 2d, 1h30m.
func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "no wait"
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Pause, resume and stop.

// rolloutAction is one change of a live rollout: when it applies, what it
// does to how many devices (for its confirm page), and the service
// operation.
type rolloutAction struct {
	Name, Verb string
	Danger     bool
	applies    func(ro *firmware.Rollout) bool
	effect     func(pr *store.RolloutProgress) string
	done       string // the next page's message; %s is the identity
	op         func(c *Console, ctx context.Context, r *http.Request, ref string) (firmware.Rollout, error)
}

// openCounts adds up the open waves' devices, and counts the others.
func openCounts(pr *store.RolloutProgress) (open firmware.WaveStats, closed int) {
	for _, wv := range pr.Waves {
		if !wv.Open {
			closed += wv.Stats.Devices
			continue
		}
		s := wv.Stats
		open.Devices += s.Devices
		open.Waiting += s.Waiting
		open.Offered += s.Offered
		open.Downloading += s.Downloading
		open.Installed += s.Installed
		open.Retrying += s.Retrying
		open.Stalled += s.Stalled
		open.Failed += s.Failed
	}
	return open, closed
}

var rolloutActions = []rolloutAction{
	{
		Name: "pause", Verb: "Pause",
		applies: func(ro *firmware.Rollout) bool { return ro.State == firmware.RolloutRunning },
		effect: func(pr *store.RolloutProgress) string {
			ro := &pr.Rollout
			open, closed := openCounts(pr)
			return fmt.Sprintf("Stop offering %s to more devices until you resume, in wave %d of %d: "+
				"the %s of the open waves that have not taken it yet (%d waiting, %d to retry) and the %s of the waves to come are not offered it; "+
				"the %s offered it or downloading it may still finish; the %s that installed it keep it. "+
				"Test devices (%d) still get it.",
				ro.Version, ro.Wave+1, len(ro.Waves), plural(open.Waiting+open.Retrying, "device"), open.Waiting, open.Retrying,
				plural(closed, "device"), plural(open.Offered+open.Downloading+open.Stalled, "device"), plural(pr.Total.Installed, "device"), pr.Test.Devices)
		},
		done: "Paused the rollout of %s.",
		op: func(c *Console, ctx context.Context, r *http.Request, ref string) (firmware.Rollout, error) {
			return c.svc.PauseRollout(ctx, ref, strings.TrimSpace(r.PostForm.Get("reason")))
		},
	},
	{
		Name: "resume", Verb: "Resume",
		applies: func(ro *firmware.Rollout) bool { return ro.State == firmware.RolloutPaused },
		effect: func(pr *store.RolloutProgress) string {
			ro := &pr.Rollout
			open, closed := openCounts(pr)
			s := fmt.Sprintf("Go on with wave %d of %d: the %s of the open waves that have not taken %s yet (%d waiting, %d to retry) are offered it at their next check-in, inside their windows; "+
				"the %s of the waves to come follow as each wave succeeds.",
				ro.Wave+1, len(ro.Waves), plural(open.Waiting+open.Retrying, "device"), ro.Version, open.Waiting, open.Retrying, plural(closed, "device"))
			if ro.Tolerated > 0 {
				s += fmt.Sprintf(" The %s that failed in this wave are accepted: it pauses itself again when failures beyond them reach %s.", plural(ro.Tolerated, "device"), ro.MaxFailures)
			}
			return s
		},
		done: "Resumed the rollout of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rollout, error) {
			return c.svc.ResumeRollout(ctx, ref)
		},
	},
	{
		Name: "stop", Verb: "Stop", Danger: true,
		applies: func(ro *firmware.Rollout) bool { return ro.Live() },
		effect: func(pr *store.RolloutProgress) string {
			ro := &pr.Rollout
			t := pr.Total
			return fmt.Sprintf("End the rollout for good: the %s that installed %s keep it; the other %s (%d waiting, %d offered or downloading, %d retrying, %d stalled, %d failed) keep %s and are not offered %s any more, though one that has it already may still install it. "+
				"The rule keeps %s pending: you may start another rollout, approve or reject it. To send the devices it reached back to %s, restore the rule instead.",
				plural(t.Installed, "device"), ro.Version, plural(t.Devices-t.Installed, "device"), t.Waiting, t.Offered+t.Downloading, t.Retrying, t.Stalled, t.Failed,
				orNothing(ro.From), ro.Version, ro.Version, orNothing(ro.From))
		},
		done: "Stopped the rollout of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rollout, error) {
			return c.svc.StopRollout(ctx, ref)
		},
	},
}

// actionApplies reports whether a applies to the rollout of pr. A
// scheduled approval (approve --at) has none: the updates page cancels
// it.
func actionApplies(a rolloutAction, pr *store.RolloutProgress) bool {
	if pr.Approval && pr.Rollout.State == firmware.RolloutScheduled {
		return false
	}
	return a.applies(&pr.Rollout)
}

func rolloutActionNamed(name string) (rolloutAction, bool) {
	for _, a := range rolloutActions {
		if a.Name == name {
			return a, true
		}
	}
	return rolloutAction{}, false
}

// rolloutConfirmURL is the confirm page of an action on a rule's
// rollout.
func rolloutConfirmURL(action, ruleID string) string {
	return rolloutPath(ruleID) + "/confirm?" + url.Values{"action": {action}}.Encode()
}

type rolloutConfirmView struct {
	P      store.RolloutProgress
	Action rolloutAction
	Effect string
}

// confirmRollout says what pausing, resuming or stopping a rollout does,
// to how many devices, before it is done.
func (c *Console) confirmRollout(w http.ResponseWriter, r *http.Request, rq *request) error {
	a, ok := rolloutActionNamed(r.URL.Query().Get("action"))
	if !ok {
		return fmt.Errorf("%w: no action %q on a rollout", errNoPage, r.URL.Query().Get("action"))
	}
	pr, err := c.svc.RolloutProgress(rq.ctx, r.PathValue("rule"))
	if err != nil {
		return err
	}
	if !actionApplies(a, &pr) {
		return c.done(w, r, rq, rolloutPath(pr.Rollout.Rule), fmt.Sprintf("The rollout is %s: nothing to %s.", pr.Rollout.State, a.Name))
	}
	v := rolloutConfirmView{P: pr, Action: a, Effect: a.effect(&pr)}
	c.render(w, rq, http.StatusOK, "rolloutconfirm", a.Verb+" the rollout of "+pr.Rollout.Identity.Path(), v)
	return nil
}

// rolloutChange makes a confirmed change of a rollout.
func (c *Console) rolloutChange(a rolloutAction) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		ro, err := a.op(c, rq.ctx, r, r.PostForm.Get("rule"))
		if err != nil {
			return err
		}
		return c.done(w, r, rq, rolloutPath(ro.Rule), fmt.Sprintf(a.done, ro.Identity))
	}
}

// Starting a rollout.

// planForm is a rollout plan as the form holds it: text, as entered.
type planForm struct {
	Waves, WaveWait, Success, MaxFailures, Window, MaxDownloads, At, TZ string
}

// defaultPlanForm is the form of firmware.DefaultPlan.
func defaultPlanForm() planForm {
	p := firmware.DefaultPlan()
	return planForm{Waves: p.Waves.String(), WaveWait: durationText(p.WaveWait), Success: p.Success.String(),
		MaxFailures: p.MaxFailures.String(), MaxDownloads: "0"}
}

// planFormOf reads a plan's fields; an empty or missing field is the
// default's.
func planFormOf(q url.Values) planForm {
	f := defaultPlanForm()
	for _, fld := range []struct {
		name string
		to   *string
	}{
		{"waves", &f.Waves}, {"wave_wait", &f.WaveWait}, {"success", &f.Success}, {"max_failures", &f.MaxFailures},
		{"window", &f.Window}, {"max_downloads", &f.MaxDownloads}, {"at", &f.At}, {"tz", &f.TZ},
	} {
		if v := strings.TrimSpace(q.Get(fld.name)); v != "" {
			*fld.to = v
		}
	}
	return f
}

// plan parses the form into a plan, with every problem found.
func (f planForm) plan(now time.Time) (firmware.Plan, []error) {
	var p firmware.Plan
	var errs []error
	var err error
	if p.Waves, err = firmware.ParseWaves(f.Waves); err != nil {
		errs = append(errs, fmt.Errorf("waves: %w", err))
	}
	if p.WaveWait, err = parseWait(f.WaveWait); err != nil {
		errs = append(errs, fmt.Errorf("wave wait: %w", err))
	}
	if p.Success, err = firmware.ParseShare(f.Success); err != nil {
		errs = append(errs, fmt.Errorf("success: %w", err))
	}
	if p.MaxFailures, err = firmware.ParseThreshold(f.MaxFailures); err != nil {
		errs = append(errs, fmt.Errorf("max failures: %w", err))
	}
	if f.Window != "" {
		if p.Window, err = firmware.ParseSchedule(f.Window); err != nil {
			errs = append(errs, fmt.Errorf("window: %w", err))
		}
	}
	if p.MaxDownloads, err = strconv.Atoi(f.MaxDownloads); err != nil || p.MaxDownloads < 0 {
		errs = append(errs, fmt.Errorf("max downloads %q: want 0 (no cap) or a number of devices", f.MaxDownloads))
	}
	if f.At != "" {
		if t, err := time.Parse(time.RFC3339, f.At); err == nil {
			p.At = t
		} else if p.At, err = parseLocalTime(f.At, f.TZ, now); err != nil {
			errs = append(errs, fmt.Errorf("start at: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return p, errs
}

// parseWait reads a duration, also in days: "24h", "90m", "2d".
func parseWait(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 365 {
			return 0, fmt.Errorf("%q: want a duration like 24h, 90m or 2d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration like 24h, 90m or 2d", s)
	}
	return d, nil
}

// waveRow is one wave of a plan, with the devices it covers.
type waveRow struct {
	Wave     int // 1-based
	From, To firmware.Share
	Devices  int
	Opens    time.Time // the earliest
}

type newRolloutView struct {
	Rule   firmware.Rule
	Form   planForm
	Errors []string
	// Valid: Plan, its waves with their devices, what starting it does,
	// and the plan's fields as the start form sends them.
	Valid  bool
	Plan   firmware.Plan
	Waves  []waveRow
	Counts store.IdentityCounts
	Effect string
	Send   planForm
	// Live is the rule's live rollout, which keeps another from starting.
	Live       *service.RolloutSummary
	Zone, Min  string
	StartsLate bool
}

// newRollout is the plan of a rollout of a rule's pending version: the
// plan's fields (firmware.DefaultPlan's at first), each wave with how
// many devices it covers, what starting it does, and the button that
// starts it. Changing a field and reviewing again counts anew.
func (c *Console) newRollout(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	rl, err := c.svc.Rule(rq.ctx, q.Get("rule"))
	if err != nil {
		return err
	}
	if rl.Pending.IsZero() {
		return c.done(w, r, rq, "/updates", fmt.Sprintf("%s has no pending version to roll out: import one first.", rl.Identity))
	}
	now := c.cfg.Now()
	zone, _ := now.Zone()
	v := newRolloutView{Rule: rl, Form: planFormOf(q), Zone: zone, Min: now.Add(time.Minute).Format("2006-01-02T15:04")}
	ros, err := c.ruleRollouts(rq)
	if err != nil {
		return err
	}
	if ro := ros[rl.ID]; ro != nil && ro.Live() {
		v.Live = ro
	}
	plan, errs := v.Form.plan(now)
	for _, e := range errs {
		v.Errors = append(v.Errors, e.Error())
	}
	if len(errs) == 0 {
		n, err := c.svc.RuleDevices(rq.ctx, rl.ID, plan.Waves)
		if err != nil {
			return err
		}
		v.Valid, v.Plan, v.Counts = true, plan, n
		start := now
		if plan.At.After(now) {
			start, v.StartsLate = plan.At, true
		}
		for k, devices := range n.Waves {
			lo, hi := plan.Waves.Bounds(k)
			v.Waves = append(v.Waves, waveRow{Wave: k + 1, From: firmware.Share(lo), To: firmware.Share(hi), Devices: devices,
				Opens: start.Add(time.Duration(k) * plan.WaveWait)})
		}
		v.Effect = planEffect(rl, plan, n, now)
		v.Send = v.Form
		v.Send.TZ = ""
		if !plan.At.IsZero() {
			v.Send.At = plan.At.UTC().Format(time.RFC3339)
		}
		v.Send.Window = plan.Window.String()
		if plan.Window.IsZero() {
			v.Send.Window = ""
		}
	}
	c.render(w, rq, http.StatusOK, "newrollout", "Roll out "+rl.Identity.Path(), v)
	return nil
}

// planEffect says what starting a rollout under plan does, to how many
// devices.
func planEffect(rl firmware.Rule, plan firmware.Plan, n store.IdentityCounts, now time.Time) string {
	others := n.Devices - n.Tests
	var b strings.Builder
	fmt.Fprintf(&b, "Roll %s out to the %s of %s in %d waves", rl.Pending, plural(others, "device"), rl.Identity, len(plan.Waves))
	if plan.At.After(now) {
		fmt.Fprintf(&b, ", from %s (only test devices get it until then, and devices are told to check in then)", when(plan.At))
	}
	fmt.Fprintf(&b, ". Test devices (%d) get it at once, as they get any pending version. ", n.Tests)
	if len(n.Waves) > 0 {
		fmt.Fprintf(&b, "Wave 1 opens to %s (%s). ", plural(n.Waves[0], "device"), plan.Waves[0])
	}
	if len(plan.Waves) > 1 {
		fmt.Fprintf(&b, "Each next wave opens after %s at the earliest, once %s of the wave before installed it. ", durationText(plan.WaveWait), plan.Success)
	}
	fmt.Fprintf(&b, "When %s of a wave's devices fail, the rollout pauses itself and raises an alarm. ", plan.MaxFailures)
	if !plan.Window.IsZero() {
		fmt.Fprintf(&b, "Devices are offered it only inside %s in their site's time zone, and inside their site's windows. ", plan.Window)
	}
	if plan.MaxDownloads > 0 {
		fmt.Fprintf(&b, "At most %s take it at once. ", plural(plan.MaxDownloads, "device"))
	}
	if rl.Approved.IsZero() {
		b.WriteString("Devices outside the open waves are offered nothing until their wave opens. ")
	} else {
		fmt.Fprintf(&b, "Devices outside the open waves keep being offered %s. ", rl.Approved)
	}
	fmt.Fprintf(&b, "After the last wave it completes, and %s is approved.", rl.Pending)
	return b.String()
}

// startRollout starts a rollout of the rule's pending version under the
// plan the form sends (the defaults for fields it does not).
func (c *Console) startRollout(w http.ResponseWriter, r *http.Request, rq *request) error {
	plan, errs := planFormOf(r.PostForm).plan(c.cfg.Now())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", service.ErrInvalid, err)
	}
	ro, err := c.svc.StartRollout(rq.ctx, r.PostForm.Get("rule"), plan)
	if err != nil {
		return err
	}
	return c.done(w, r, rq, rolloutPath(ro.Rule), fmt.Sprintf("Started the rollout of %s to %s.", ro.Identity, ro.Version))
}
