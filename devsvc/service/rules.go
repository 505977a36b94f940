package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendus/opendus/firmware"
)

// Rules returns every rule of the current catalog.
func (s *Service) Rules(ctx context.Context) ([]firmware.Rule, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.Catalog().Rules(), nil
}

// Rule returns the rule ref names (its ID or identity path).
func (s *Service) Rule(ctx context.Context, ref string) (firmware.Rule, error) {
	if _, err := s.look(ctx); err != nil {
		return firmware.Rule{}, err
	}
	if err := needRule(ref); err != nil {
		return firmware.Rule{}, err
	}
	return s.st.Rule(ctx, ref)
}

func needRule(ref string) error {
	if ref == "" {
		return fmt.Errorf("%w: name the rule by its ID or identity path, like UCPhone/Polycom/CX600/A/ENU", ErrInvalid)
	}
	return nil
}

// transition runs one of the store's rule transitions as the principal.
func (s *Service) transition(ctx context.Context, verb, ref string, op func(context.Context, string, string) (firmware.Rule, error)) (firmware.Rule, error) {
	p, err := s.change(ctx, verb+" a rule")
	if err != nil {
		return firmware.Rule{}, err
	}
	if err := needRule(ref); err != nil {
		return firmware.Rule{}, err
	}
	return op(ctx, p.Name, ref)
}

// Approve offers the rule's pending version to every device of its
// identity.
func (s *Service) Approve(ctx context.Context, ref string) (firmware.Rule, error) {
	return s.transition(ctx, "approve", ref, s.st.Approve)
}

// Reject refuses the rule's pending version.
func (s *Service) Reject(ctx context.Context, ref string) (firmware.Rule, error) {
	return s.transition(ctx, "reject", ref, s.st.Reject)
}

// Restore rolls the rule back to the version approved before the current
// one. A rule with none is firmware.ErrNothingToRestore, with a message
// that says what restore does and how to withdraw the approved version
// instead, if that is what the admin wants.
func (s *Service) Restore(ctx context.Context, ref string) (firmware.Rule, error) {
	r, err := s.transition(ctx, "restore", ref, s.st.Restore)
	if errors.Is(err, firmware.ErrNothingToRestore) {
		err = fmt.Errorf("%w; restore goes back to the version approved before the current one and changes nothing without one. To stop offering the approved version to devices, withdraw it: restore --withdraw", err)
	}
	return r, err
}

// Withdraw stops offering the rule's approved version: devices are offered
// nothing for its identity until a version is approved again (or a
// restore brings the previous one back).
func (s *Service) Withdraw(ctx context.Context, ref string) (firmware.Rule, error) {
	return s.transition(ctx, "withdraw", ref, s.st.Withdraw)
}

// Remove removes the rule.
func (s *Service) Remove(ctx context.Context, ref string) (firmware.Rule, error) {
	return s.transition(ctx, "remove", ref, s.st.Remove)
}

// Schedule approves the rule's pending version at a given time.
func (s *Service) Schedule(ctx context.Context, ref string, at time.Time) (firmware.Rule, error) {
	return s.transition(ctx, "schedule", ref, func(ctx context.Context, actor, ref string) (firmware.Rule, error) {
		return s.st.Schedule(ctx, actor, ref, at)
	})
}

// Purge removes the stored updates no rule refers to any more.
func (s *Service) Purge(ctx context.Context) ([]firmware.Update, error) {
	p, err := s.change(ctx, "purge updates")
	if err != nil {
		return nil, err
	}
	return s.st.Purge(ctx, p.Name)
}
