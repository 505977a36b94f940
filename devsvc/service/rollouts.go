package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// SiteInfo is a site and how many devices last checked in from it.
type SiteInfo struct {
	firmware.Site
	Devices int `json:"devices"`
}

// Sites lists the sites, in name order, with their devices.
func (s *Service) Sites(ctx context.Context) ([]SiteInfo, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	counts := s.st.SiteCounts()
	sites := s.st.Catalog().SiteList()
	out := make([]SiteInfo, len(sites))
	for i, site := range sites {
		out[i] = SiteInfo{Site: site, Devices: counts[site.Name]}
	}
	return out, nil
}

// PutSite adds a site, or with replace changes the one of that name. Its
// devices are those whose check-ins come from its subnets (firmware.Site).
// Adding a site that is there already, the same (firmware.Site.Equal),
// returns it as it is, nothing changed or recorded (adds are idempotent);
// another of that name is store.ErrExists.
func (s *Service) PutSite(ctx context.Context, site firmware.Site, replace bool) (firmware.Site, error) {
	what := "add a site"
	if replace {
		what = "change a site"
	}
	p, err := s.change(ctx, what)
	if err != nil {
		return firmware.Site{}, err
	}
	if site.Name == "" {
		return firmware.Site{}, fmt.Errorf("%w: name the site, like berlin-hq", ErrInvalid)
	}
	put, err := s.st.PutSite(ctx, p.Name, site, replace)
	if !replace && errors.Is(err, store.ErrExists) {
		for _, old := range s.st.Catalog().SiteList() {
			if old.Equal(site) {
				return old, nil
			}
		}
	}
	return put, err
}

// RemoveSite removes a site; its devices belong to the site their next
// check-in's address falls in.
func (s *Service) RemoveSite(ctx context.Context, name string) error {
	p, err := s.change(ctx, "remove a site")
	if err != nil {
		return err
	}
	return s.st.RemoveSite(ctx, p.Name, name)
}

// StartRollout starts a rollout of the rule's pending version under plan
// (see firmware.Plan; firmware.DefaultPlan for the defaults).
func (s *Service) StartRollout(ctx context.Context, ref string, plan firmware.Plan) (firmware.Rollout, error) {
	p, err := s.change(ctx, "start a rollout")
	if err != nil {
		return firmware.Rollout{}, err
	}
	if err := needRule(ref); err != nil {
		return firmware.Rollout{}, err
	}
	return s.st.StartRollout(ctx, p.Name, ref, plan)
}

// PauseRollout pauses the rule's running rollout; reason may be empty.
func (s *Service) PauseRollout(ctx context.Context, ref, reason string) (firmware.Rollout, error) {
	return s.rolloutOp(ctx, "pause a rollout", ref, func(actor string) (firmware.Rollout, error) {
		return s.st.PauseRollout(ctx, actor, ref, reason)
	})
}

// ResumeRollout resumes the rule's paused rollout, accepting the failures
// that paused it.
func (s *Service) ResumeRollout(ctx context.Context, ref string) (firmware.Rollout, error) {
	return s.rolloutOp(ctx, "resume a rollout", ref, func(actor string) (firmware.Rollout, error) {
		return s.st.ResumeRollout(ctx, actor, ref)
	})
}

// StopRollout ends the rule's live rollout for good: the devices it
// reached keep its version.
func (s *Service) StopRollout(ctx context.Context, ref string) (firmware.Rollout, error) {
	return s.rolloutOp(ctx, "stop a rollout", ref, func(actor string) (firmware.Rollout, error) {
		return s.st.StopRollout(ctx, actor, ref)
	})
}

func (s *Service) rolloutOp(ctx context.Context, what, ref string, op func(actor string) (firmware.Rollout, error)) (firmware.Rollout, error) {
	p, err := s.change(ctx, what)
	if err != nil {
		return firmware.Rollout{}, err
	}
	if err := needRule(ref); err != nil {
		return firmware.Rollout{}, err
	}
	return op(p.Name)
}

// RolloutSummary is a rollout and its devices counted together.
type RolloutSummary struct {
	firmware.Rollout
	// Approval says it is the one-wave rollout of an approve.
	Approval bool `json:"approval,omitempty"`
	// Total counts the devices of its identity (test devices excluded) by
	// where they stand with its version.
	Total firmware.WaveStats `json:"total"`
}

// Rollouts lists every rule's rollout (its last), live first, then by
// identity.
func (s *Service) Rollouts(ctx context.Context) ([]RolloutSummary, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var live, ended []RolloutSummary
	for _, ro := range s.st.Catalog().Rollouts() {
		pr, err := s.st.RolloutProgress(ctx, ro.Rule, now)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since
		}
		if err != nil {
			return nil, err
		}
		sum := RolloutSummary{Rollout: pr.Rollout, Approval: pr.Approval, Total: pr.Total}
		if ro.Live() {
			live = append(live, sum)
		} else {
			ended = append(ended, sum)
		}
	}
	return append(live, ended...), nil
}

// RolloutProgress returns the rule's rollout with its devices counted
// per wave and per site, the failures by error code and why waiting
// devices wait.
func (s *Service) RolloutProgress(ctx context.Context, ref string) (store.RolloutProgress, error) {
	if _, err := s.look(ctx); err != nil {
		return store.RolloutProgress{}, err
	}
	if err := needRule(ref); err != nil {
		return store.RolloutProgress{}, err
	}
	return s.st.RolloutProgress(ctx, ref, s.cfg.Now())
}

// Alarms lists the open alarms, or with all every alarm, oldest first.
func (s *Service) Alarms(ctx context.Context, all bool) ([]firmware.Alarm, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.Alarms(ctx, all)
}

// RuleCounts counts, per rule ID, the devices of each rule and those that
// run its approved and pending versions.
func (s *Service) RuleCounts(ctx context.Context) (map[string]store.RuleCount, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.RuleCounts(), nil
}

// QueryDevices returns a page of the devices q selects (see
// store.DeviceQuery): the first page (no cursor) counts every match and
// writes the queued check-ins first, so that the records are the latest.
// A State that is not a device state is ErrInvalid.
func (s *Service) QueryDevices(ctx context.Context, q store.DeviceQuery) (store.DevicePage, error) {
	if _, err := s.look(ctx); err != nil {
		return store.DevicePage{}, err
	}
	if q.State != "" {
		st, err := store.ParseOutcome(string(q.State))
		if err != nil {
			return store.DevicePage{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		q.State = st
	}
	if q.Site != "" {
		if err := firmware.ValidSiteName(q.Site); err != nil {
			return store.DevicePage{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if q.After == "" {
		if err := s.flush(ctx); err != nil {
			return store.DevicePage{}, err
		}
	}
	return s.st.QueryDevices(ctx, q)
}

// Device returns one device, by key, MAC (any notation) or serial number,
// with its recent history.
func (s *Service) Device(ctx context.Context, key string) (store.DeviceRow, error) {
	if _, err := s.look(ctx); err != nil {
		return store.DeviceRow{}, err
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return store.DeviceRow{}, fmt.Errorf("%w: name the device by its MAC address or serial number", ErrInvalid)
	}
	if err := s.flush(ctx); err != nil {
		return store.DeviceRow{}, err
	}
	if k, ok := s.st.FindDevice(key); ok {
		key = k
	}
	d, err := s.st.DeviceDetail(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("%w; devsvc devices --text %s finds devices by part of their MAC, serial or user", err, key)
	}
	return d, err
}

// flush writes the queued check-ins; while the inventory cannot be
// written it says what the answer would miss.
func (s *Service) flush(ctx context.Context) error {
	err := s.st.Flush(ctx)
	if errors.Is(err, store.ErrUnavailable) {
		h := s.st.InventoryHealth()
		return fmt.Errorf("%w; %d check-ins and reports wait to be written, so the list would miss them: free space on the data directory's disk (devsvc status says more)", err, h.Held)
	}
	return err
}
