package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

// ruleAction is one change of a rule the updates page offers: when it
// applies, what it does (counted from the inventory, for the confirm
// page) and the service operation.
type ruleAction struct {
	Name, Verb string
	// Danger marks a change that stops or reverses what devices get.
	Danger  bool
	applies func(r firmware.Rule, live bool) bool
	effect  func(r firmware.Rule, e effectCounts) string
	done    string // what the next page says; %s is the identity
	op      func(c *Console, ctx context.Context, r *http.Request, ref string) (firmware.Rule, error)
}

// effectCounts are the numbers a confirm page states.
type effectCounts struct {
	Total int // devices of the rule's identity in the inventory
	On    func(v firmware.Version) int
	Tests int // test devices of the identity in the inventory
	// Rollout is the rule's live rollout (not a scheduled approval), if
	// any: reject and restore roll it back.
	Rollout *service.RolloutSummary
}

// rollback says what a change that rolls back the live rollout does.
func (e effectCounts) rollback() string {
	ro := e.Rollout
	if ro == nil {
		return ""
	}
	return fmt.Sprintf("This rolls back the %s rollout of %s: it stops, and the %s that installed it are offered %s again. ",
		ro.State, ro.Version, plural(ro.Total.Installed, "device"), orNothing(ro.From))
}

var ruleActions = []ruleAction{
	{
		Name: "approve", Verb: "Approve",
		applies: func(r firmware.Rule, live bool) bool { return !r.Pending.IsZero() && !live },
		effect: func(r firmware.Rule, e effectCounts) string {
			return fmt.Sprintf("Offer %s to every device of this model: %s of the %s in the inventory run another version and are offered it at their next check-in.",
				r.Pending, plural(e.Total-e.On(r.Pending), "device"), plural(e.Total, "device"))
		},
		done: "Approved %s: its devices are offered it at their next check-in.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Approve(ctx, ref)
		},
	},
	{
		Name: "schedule", Verb: "Schedule approval",
		applies: func(r firmware.Rule, live bool) bool { return !r.Pending.IsZero() && !live },
		effect: func(r firmware.Rule, e effectCounts) string {
			return fmt.Sprintf("At the time you choose, approve %s: %s of the %s in the inventory run another version and are offered it from then on. Devices due to check in later are told to check in then.",
				r.Pending, plural(e.Total-e.On(r.Pending), "device"), plural(e.Total, "device"))
		},
		done: "Scheduled the approval of %s.",
		op: func(c *Console, ctx context.Context, r *http.Request, ref string) (firmware.Rule, error) {
			at, err := parseLocalTime(r.PostForm.Get("at"), r.PostForm.Get("tz"), c.cfg.Now())
			if err != nil {
				return firmware.Rule{}, err
			}
			return c.svc.Schedule(ctx, ref, at)
		},
	},
	{
		Name: "unschedule", Verb: "Cancel scheduled approval",
		applies: func(r firmware.Rule, _ bool) bool { return !r.ApproveAt.IsZero() },
		effect: func(r firmware.Rule, e effectCounts) string {
			return fmt.Sprintf("Cancel the approval of %s scheduled for %s: it stays pending, offered to test devices only (%s of this model).",
				r.Pending, when(r.ApproveAt), plural(e.Tests, "test device"))
		},
		done: "Cancelled the scheduled approval of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Schedule(ctx, ref, time.Time{})
		},
	},
	{
		Name: "reject", Verb: "Reject", Danger: true,
		applies: func(r firmware.Rule, _ bool) bool { return !r.Pending.IsZero() },
		effect: func(r firmware.Rule, e effectCounts) string {
			s := e.rollback() + fmt.Sprintf("Refuse %s: the %s of this model are no longer offered it.", r.Pending, plural(e.Tests, "test device"))
			if !r.Approved.IsZero() {
				s += fmt.Sprintf(" %s stays approved; %s run it.", r.Approved, plural(e.On(r.Approved), "device"))
			}
			return s
		},
		done: "Rejected the pending version of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Reject(ctx, ref)
		},
	},
	{
		Name: "restore", Verb: "Restore", Danger: true,
		applies: func(r firmware.Rule, live bool) bool { return !r.Restore.IsZero() || live },
		effect: func(r firmware.Rule, e effectCounts) string {
			if e.Rollout != nil {
				return e.rollback() + fmt.Sprintf("The rule itself does not change: %s stays pending, %s approved.", r.Pending, orNothing(r.Approved))
			}
			return fmt.Sprintf("Go back to %s, the version approved before %s: %s of the %s in the inventory run another version and are offered %s at their next check-in (%s run %s now).",
				r.Restore, r.Approved, plural(e.Total-e.On(r.Restore), "device"), plural(e.Total, "device"), r.Restore, plural(e.On(r.Approved), "device"), r.Approved)
		},
		done: "Restored the version approved before on %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Restore(ctx, ref)
		},
	},
	{
		Name: "withdraw", Verb: "Withdraw", Danger: true,
		applies: func(r firmware.Rule, live bool) bool { return !r.Approved.IsZero() && !live },
		effect: func(r firmware.Rule, e effectCounts) string {
			return fmt.Sprintf("Stop offering %s: the %s of this model are offered nothing until a version is approved again; they keep the version they run (%s run %s).",
				r.Approved, plural(e.Total, "device"), plural(e.On(r.Approved), "device"), r.Approved)
		},
		done: "Withdrew the approved version of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Withdraw(ctx, ref)
		},
	},
	{
		Name: "remove", Verb: "Remove rule", Danger: true,
		applies: func(firmware.Rule, bool) bool { return true },
		effect: func(r firmware.Rule, e effectCounts) string {
			return fmt.Sprintf("Remove the rule: the %s of this model are offered nothing for it; they keep the version they run. Its files stay stored until purged (devsvc purge).",
				plural(e.Total, "device"))
		},
		done: "Removed the rule of %s.",
		op: func(c *Console, ctx context.Context, _ *http.Request, ref string) (firmware.Rule, error) {
			return c.svc.Remove(ctx, ref)
		},
	},
}

func actionNamed(name string) (ruleAction, bool) {
	for _, a := range ruleActions {
		if a.Name == name {
			return a, true
		}
	}
	return ruleAction{}, false
}

func (c *Console) updatesRoutes() []route {
	rs := []route{
		{pattern: "GET /updates", h: c.updates},
		{pattern: "GET /updates/confirm", h: c.confirmRule},
	}
	for _, a := range ruleActions {
		rs = append(rs, route{pattern: "POST /updates/" + a.Name, h: c.ruleChange(a)})
	}
	return rs
}

type ruleRow struct {
	Rule    firmware.Rule
	Devices int
	OnApp   int // on the approved version
	OnPend  int // on the pending version
	Actions []ruleAction
	// Rollout is the rule's last rollout, if any; Live says it is live
	// (a scheduled approval aside), and then it is what the rule's
	// devices get.
	Rollout *service.RolloutSummary
	Live    bool
	// CanRoll says a rollout of the pending version may start.
	CanRoll bool
}

type updatesView struct {
	Rows []ruleRow
}

// ruleRollouts returns every rule's last rollout, by rule ID.
func (c *Console) ruleRollouts(rq *request) (map[string]*service.RolloutSummary, error) {
	ros, err := c.svc.Rollouts(rq.ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*service.RolloutSummary, len(ros))
	for i := range ros {
		m[ros[i].Rule] = &ros[i]
	}
	return m, nil
}

// liveRollout reports whether ro is a live rollout that governs what its
// rule's devices get: not a scheduled approval (which the rule's
// schedule shows and cancels).
func liveRollout(ro *service.RolloutSummary) bool {
	return ro != nil && ro.Live() && !(ro.Approval && ro.State == firmware.RolloutScheduled)
}

// rollbackable reports whether a restore or reject of rl rolls ro back:
// ro is live, or stopped without a roll-back, on rl's pending version.
func rollbackable(rl firmware.Rule, ro *service.RolloutSummary) bool {
	return ro != nil && !ro.RolledBack && ro.Version == rl.Pending && !rl.Pending.IsZero() &&
		(liveRollout(ro) || ro.State == firmware.RolloutStopped)
}

func (c *Console) updates(w http.ResponseWriter, r *http.Request, rq *request) error {
	rules, err := c.svc.Rules(rq.ctx)
	if err != nil {
		return err
	}
	counts, err := c.svc.RuleCounts(rq.ctx)
	if err != nil {
		return err
	}
	ros, err := c.ruleRollouts(rq)
	if err != nil {
		return err
	}
	var v updatesView
	for _, rl := range rules {
		n := counts[rl.ID]
		row := ruleRow{Rule: rl, Devices: n.Devices, OnApp: n.Approved, OnPend: n.Pending, Rollout: ros[rl.ID]}
		row.Live = liveRollout(row.Rollout)
		row.CanRoll = !rl.Pending.IsZero() && (row.Rollout == nil || !row.Rollout.Live())
		for _, a := range ruleActions {
			if a.applies(rl, row.Live) {
				row.Actions = append(row.Actions, a)
			}
		}
		v.Rows = append(v.Rows, row)
	}
	c.render(w, rq, http.StatusOK, "updates", "Updates", v)
	return nil
}

type confirmView struct {
	Rule   firmware.Rule
	Action ruleAction
	Effect string
	// Schedule: the earliest time to offer, and the server's zone.
	Min, Zone string
}

// confirmRule says what a change will do, and to how many devices,
// before it is made.
func (c *Console) confirmRule(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	a, ok := actionNamed(q.Get("action"))
	if !ok {
		return fmt.Errorf("%w: no action %q on a rule", errNoPage, q.Get("action"))
	}
	rl, err := c.svc.Rule(rq.ctx, q.Get("rule"))
	if err != nil {
		return err
	}
	ros, err := c.ruleRollouts(rq)
	if err != nil {
		return err
	}
	ro := ros[rl.ID]
	if !a.applies(rl, liveRollout(ro)) {
		msg := fmt.Sprintf("%s: nothing to %s now.", rl.Identity, a.Name)
		if liveRollout(ro) {
			msg = fmt.Sprintf("%s: a rollout of %s is %s: pause, resume or stop it on its page first.", rl.Identity, ro.Version, ro.State)
		}
		return c.done(w, r, rq, "/updates", msg)
	}
	e, err := c.effectCounts(rq, rl)
	if err != nil {
		return err
	}
	if rollbackable(rl, ro) {
		e.Rollout = ro
	}
	now := c.cfg.Now()
	zone, _ := now.Zone()
	v := confirmView{Rule: rl, Action: a, Effect: a.effect(rl, e), Min: now.Add(time.Minute).Format("2006-01-02T15:04"), Zone: zone}
	c.render(w, rq, http.StatusOK, "confirm", a.Verb+" "+rl.Identity.Path(), v)
	return nil
}

// effectCounts counts the devices of rl's identity, from the store's
// index of the inventory.
func (c *Console) effectCounts(rq *request, rl firmware.Rule) (effectCounts, error) {
	n, err := c.svc.RuleDevices(rq.ctx, rl.ID, nil)
	if err != nil {
		return effectCounts{}, err
	}
	return effectCounts{Total: n.Devices, Tests: n.Tests, On: func(v firmware.Version) int { return n.ByVersion[v] }}, nil
}

// ruleChange makes a confirmed change.
func (c *Console) ruleChange(a ruleAction) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		rl, err := a.op(c, rq.ctx, r, r.PostForm.Get("rule"))
		if err != nil {
			return err
		}
		return c.done(w, r, rq, "/updates", fmt.Sprintf(a.done, rl.Identity))
	}
}

// parseLocalTime reads a datetime-local input's value in the browser's
// zone: tz is the browser's offset from UTC in minutes east (the page's
// script fills it in), else the server's zone applies.
func parseLocalTime(v, tz string, now time.Time) (time.Time, error) {
	loc := now.Location()
	if tz != "" {
		min, err := strconv.Atoi(tz)
		if err != nil || min < -14*60 || min > 14*60 {
			return time.Time{}, fmt.Errorf("%w: time zone offset %q", service.ErrInvalid, tz)
		}
		loc = time.FixedZone("browser", min*60)
	}
	t, err := time.ParseInLocation("2006-01-02T15:04", v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: the time %q: want a date and time like 2026-11-21T22:00", service.ErrInvalid, v)
	}
	return t, nil
}

// confirmURL is the confirm page of action on a rule.
func confirmURL(action string, r firmware.Rule) string {
	return "/updates/confirm?" + url.Values{"action": {action}, "rule": {r.ID}}.Encode()
}

// orNothing names a version, or says there is none.
func orNothing(v firmware.Version) string {
	if v.IsZero() {
		return "nothing"
	}
	return v.String()
}
