package service

import (
	"context"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// FleetSummary counts the inventory's devices by identity and version
// (every check-in accepted so far), by identity path, newest version
// first.
func (s *Service) FleetSummary(ctx context.Context) ([]store.ModelVersion, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.FleetSummary(), nil
}

// RuleDevices counts the devices of the rule ref names: by version, its
// test devices, and the others in each wave of waves by their cohort (see
// store.IdentityCounts), so that a transport can say what a change, or a
// rollout with these waves, will do to how many devices.
func (s *Service) RuleDevices(ctx context.Context, ref string, waves firmware.Waves) (store.IdentityCounts, error) {
	if _, err := s.look(ctx); err != nil {
		return store.IdentityCounts{}, err
	}
	if err := needRule(ref); err != nil {
		return store.IdentityCounts{}, err
	}
	r, err := s.st.Rule(ctx, ref)
	if err != nil {
		return store.IdentityCounts{}, err
	}
	return s.st.IdentityCounts(r.Identity, waves), nil
}
