// Package rollout is the rollout engine: the loop that moves every live
// rollout on by itself and raises the alarms an admin must see. It
// replaces the scheduler of scheduled approvals, which are one-wave
// rollouts (see package store).
//
// Every Interval (a few seconds) Tick
//
//   - steps every live rollout (store.StepRollout) with its current
//     wave's devices counted from the store's fleet index: a scheduled
//     rollout starts at its time (a scheduled approval completes then,
//     approving the rule), a wave whose failed devices reach MaxFailures
//     pauses the rollout with an alarm, a wave that has run WaveWait and
//     reached Success opens the next, the last completes the rollout and
//     approves the rule. The store records each step in the history, by
//     firmware.SystemActor, in the transaction of the change.
//   - checks every scheduled release (a rollout or approval with an At)
//     once it is Grace past: the sites where more than Tolerance of the
//     devices in its scope have not checked in since its time raise the
//     patent's overdue alarm (firmware.CheckOverdue), which clears by
//     itself when they have come.
//
// What a device is offered at a check-in does not wait for the engine: a
// scheduled rollout whose time has come is served as running by the
// check-in decision at once (firmware.OfferRollout). The engine's clock is
// injected (Config.Now), and Tick can be called directly, so tests drive
// it with testing/synctest or a fake clock.
package rollout

import (
	"context"
	"log/slog"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// Defaults of Config.
const (
	DefaultInterval  = 5 * time.Second
	DefaultGrace     = 4 * time.Hour
	DefaultTolerance = firmware.Share(500) // 5%
	// horizon is how long after its time a release is checked when no
	// alarm of it is open: devices that came by then stay counted.
	horizon = 14 * 24 * time.Hour
)

// Config configures an Engine. The zero value works.
type Config struct {
	// Interval is how often Run ticks; default 5s.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Grace is how long after a scheduled release its devices have to
	// check in before a site is overdue; default 4h (devices are told to
	// come at the release time plus their jitter).
	Grace time.Duration
	// Tolerance is the share of a site's devices in scope that may stay
	// away (switched off) without an alarm; 0 means DefaultTolerance (5%),
	// a negative value none.
	Tolerance firmware.Share
	// Logger receives the rollouts' steps and the alarms; nil discards.
	Logger *slog.Logger
}

// Engine moves rollouts on and raises alarms; see the package
// documentation.
type Engine struct {
	st  *store.Store
	cfg Config
	log *slog.Logger
}

// New returns the engine of st.
func New(st *store.Store, cfg Config) *Engine {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	switch {
	case cfg.Tolerance == 0:
		cfg.Tolerance = DefaultTolerance
	case cfg.Tolerance < 0:
		cfg.Tolerance = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{st: st, cfg: cfg, log: log}
}

// Run ticks at once and then every Interval until ctx is done. A tick
// that fails is logged and the next one tries again.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("rollout engine: the step failed; it is tried again at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick steps every live rollout once and checks every scheduled release
// for overdue sites, at Now. It returns the first error and goes on with
// the other rollouts.
func (e *Engine) Tick(ctx context.Context) error {
	now := e.cfg.Now()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	open := map[string]bool{}
	alarms, err := e.st.Alarms(ctx, false)
	keep(err)
	for _, a := range alarms {
		open[a.ID] = true
	}
	for _, ro := range e.st.Catalog().Rollouts() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ro.Live() {
			stepped, evs, err := e.st.StepRollout(ctx, ro.Rule, now)
			keep(err)
			if err == nil {
				ro = stepped
			}
			e.logSteps(&ro, evs)
		}
		keep(e.checkOverdue(ctx, &ro, now, open))
	}
	return first
}

func (e *Engine) logSteps(ro *firmware.Rollout, evs []firmware.RolloutEvent) {
	for _, ev := range evs {
		level := slog.LevelInfo
		if ev.Kind == firmware.EventPaused {
			level = slog.LevelWarn
		}
		e.log.Log(context.Background(), level, "rollout "+string(ev.Kind), "rule", ro.Rule, "identity", ro.Identity.Path(),
			"version", ro.Version.String(), "wave", ev.Wave+1, "detail", ev.Detail)
	}
}

// checkOverdue raises or clears the overdue alarm of ro's release.
func (e *Engine) checkOverdue(ctx context.Context, ro *firmware.Rollout, now time.Time, open map[string]bool) error {
	if ro.At.IsZero() || ro.State == firmware.RolloutStopped || now.Before(ro.At.Add(e.cfg.Grace)) {
		return nil
	}
	rel := firmware.Release{Rule: ro.Rule, Identity: ro.Identity, Version: ro.Version, At: ro.At}
	id := rel.OverdueID()
	if !open[id] && now.After(ro.At.Add(horizon)) {
		return nil
	}
	a, behind := firmware.CheckOverdue(rel, e.cfg.Grace, e.cfg.Tolerance, e.st.ReleaseProgress(ro, now), now)
	if behind {
		raised, err := e.st.RaiseAlarm(ctx, a)
		if raised {
			e.log.Warn("alarm: a scheduled release is overdue", "rule", ro.Rule, "identity", ro.Identity.Path(), "version", ro.Version.String(),
				"alarm", a.ID, "detail", a.Detail)
		}
		return err
	}
	if !open[id] {
		return nil
	}
	cleared, err := e.st.ClearAlarm(ctx, id)
	if cleared {
		e.log.Info("alarm cleared: the devices of a scheduled release have come", "rule", ro.Rule, "identity", ro.Identity.Path(), "alarm", id)
	}
	return err
}
