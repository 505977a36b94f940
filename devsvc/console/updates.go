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
	applies func(r firmware.Rule) bool
	effect  func(r firmware.Rule, e effectCounts) string
	done    string // what the next page says; %s is the identity
	op      func(c *Console, ctx context.Context, r *http.Request, ref string) (firmware.Rule, error)
}

// effectCounts are the numbers a confirm page states.
type effectCounts struct {
	Total int // devices of the rule's identity in the inventory
	On    func(v firmware.Version) int
	Tests int // test devices of the identity in the inventory
}

var ruleActions = []ruleAction{
	{
		Name: "approve", Verb: "Approve",
		applies: func(r firmware.Rule) bool { return !r.Pending.IsZero() },
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
		applies: func(r firmware.Rule) bool { return !r.Pending.IsZero() },
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
		applies: func(r firmware.Rule) bool { return !r.ApproveAt.IsZero() },
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
		applies: func(r firmware.Rule) bool { return !r.Pending.IsZero() },
		effect: func(r firmware.Rule, e effectCounts) string {
			s := fmt.Sprintf("Refuse %s: the %s of this model are no longer offered it.", r.Pending, plural(e.Tests, "test device"))
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
		applies: func(r firmware.Rule) bool { return !r.Restore.IsZero() },
		effect: func(r firmware.Rule, e effectCounts) string {
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
		applies: func(r firmware.Rule) bool { return !r.Approved.IsZero() },
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
		applies: func(firmware.Rule) bool { return true },
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
}

type updatesView struct {
	Rows  []ruleRow
	Taken time.Time
}

func (c *Console) updates(w http.ResponseWriter, r *http.Request, rq *request) error {
	rules, err := c.svc.Rules(rq.ctx)
	if err != nil {
		return err
	}
	f, err := c.fleet.get(rq.ctx)
	if err != nil {
		return err
	}
	v := updatesView{Taken: f.taken}
	for _, rl := range rules {
		row := ruleRow{Rule: rl}
		row.Devices, row.OnApp = f.count(rl.Identity, rl.Approved)
		_, row.OnPend = f.count(rl.Identity, rl.Pending)
		for _, a := range ruleActions {
			if a.applies(rl) {
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
	Taken  time.Time
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
	if !a.applies(rl) {
		return c.done(w, r, rq, "/updates", fmt.Sprintf("%s: nothing to %s now.", rl.Identity, a.Name))
	}
	e, taken, err := c.effectCounts(rq, rl)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	zone, _ := now.Zone()
	v := confirmView{Rule: rl, Action: a, Effect: a.effect(rl, e), Taken: taken, Min: now.Add(time.Minute).Format("2006-01-02T15:04"), Zone: zone}
	c.render(w, rq, http.StatusOK, "confirm", a.Verb+" "+rl.Identity.Path(), v)
	return nil
}

func (c *Console) effectCounts(rq *request, rl firmware.Rule) (effectCounts, time.Time, error) {
	f, err := c.fleet.get(rq.ctx)
	if err != nil {
		return effectCounts{}, time.Time{}, err
	}
	tds, err := c.svc.TestDevices(rq.ctx)
	if err != nil {
		return effectCounts{}, time.Time{}, err
	}
	set := firmware.TestDevices{}
	for _, td := range tds {
		set.Add(td)
	}
	e := effectCounts{On: func(v firmware.Version) int { _, n := f.count(rl.Identity, v); return n }}
	e.Total, _ = f.count(rl.Identity, firmware.Version{})
	if len(set) > 0 {
		for _, d := range f.devices {
			if d.Identity == rl.Identity && set.Contains(d.MAC, d.Serial) {
				e.Tests++
			}
		}
	}
	return e, f.taken, nil
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
