package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// AddTestDevice marks a device, by MAC or serial number, as a test device:
// it is offered pending versions.
func (s *Service) AddTestDevice(ctx context.Context, d firmware.TestDevice) (firmware.TestDevice, error) {
	p, err := s.change(ctx, "add a test device")
	if err != nil {
		return d, err
	}
	if d.MAC == "" && d.Serial == "" {
		return d, fmt.Errorf("%w: name the test device by --mac or --serial", ErrInvalid)
	}
	if d.MAC != "" {
		m, err := firmware.NormalizeMAC(d.MAC)
		if err != nil {
			return d, err
		}
		d.MAC = m
	}
	d.Added = s.cfg.Now()
	return d, s.st.AddTestDevice(ctx, p.Name, d)
}

// TestDevices lists the test devices.
func (s *Service) TestDevices(ctx context.Context) ([]firmware.TestDevice, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.TestDevices(ctx)
}

// RemoveTestDevice unmarks a test device, by MAC or serial number.
func (s *Service) RemoveTestDevice(ctx context.Context, key string) error {
	p, err := s.change(ctx, "remove a test device")
	if err != nil {
		return err
	}
	return s.st.RemoveTestDevice(ctx, p.Name, key)
}

// PutAccount adds a device sign-in account with its NT hash, or, with
// replace, sets a new hash for an existing one.
func (s *Service) PutAccount(ctx context.Context, name string, ntHash []byte, replace bool) (firmware.Account, error) {
	p, err := s.change(ctx, "change accounts")
	if err != nil {
		return firmware.Account{}, err
	}
	if err := firmware.ValidAccountName(name); err != nil {
		return firmware.Account{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(ntHash) != 16 {
		return firmware.Account{}, fmt.Errorf("%w: the NT hash must be 16 bytes", ErrInvalid)
	}
	now := s.cfg.Now()
	a := firmware.Account{Name: name, Created: now, Updated: now}
	if old, err := s.st.Account(ctx, name); err == nil {
		if !replace {
			return firmware.Account{}, fmt.Errorf("account %q: %w; to set a new password use accounts passwd", old.Name, store.ErrExists)
		}
		a.Name, a.Created, a.Disabled = old.Name, old.Created, old.Disabled
	} else if !errors.Is(err, store.ErrNotFound) || replace {
		return firmware.Account{}, err
	}
	copy(a.NTHash[:], ntHash)
	if err := s.st.PutAccount(ctx, p.Name, a); err != nil {
		return firmware.Account{}, err
	}
	return a, nil
}

// Accounts lists the device sign-in accounts.
func (s *Service) Accounts(ctx context.Context) ([]firmware.Account, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	return s.st.Accounts(ctx)
}

// SetAccountDisabled disables or enables an account.
func (s *Service) SetAccountDisabled(ctx context.Context, name string, disabled bool) (firmware.Account, error) {
	p, err := s.change(ctx, "change accounts")
	if err != nil {
		return firmware.Account{}, err
	}
	if err := s.st.SetAccountDisabled(ctx, p.Name, name, disabled); err != nil {
		return firmware.Account{}, err
	}
	return s.st.Account(ctx, name)
}

// RemoveAccount removes an account.
func (s *Service) RemoveAccount(ctx context.Context, name string) error {
	p, err := s.change(ctx, "change accounts")
	if err != nil {
		return err
	}
	return s.st.RemoveAccount(ctx, p.Name, name)
}

// Devices lists the device inventory, with every check-in received so far
// (the inventory is written in batches; this flushes it first).
func (s *Service) Devices(ctx context.Context) ([]firmware.Device, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	if err := s.st.Flush(ctx); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			h := s.st.InventoryHealth()
			return nil, fmt.Errorf("%w; %d check-ins and reports wait to be written, so the list would miss them: free space on the data directory's disk (devsvc status says more)", err, h.Held)
		}
		return nil, err
	}
	return s.st.Devices(ctx)
}

// MaxHistory bounds the events one History call returns.
const MaxHistory = 10000

// History returns the history events after since, at most limit of them
// (MaxHistory when limit is not in 1..MaxHistory).
func (s *Service) History(ctx context.Context, since uint64, limit int) ([]firmware.Event, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxHistory {
		limit = MaxHistory
	}
	return s.st.History(ctx, since, limit)
}

// LastSeq returns the number of the newest history event (0 for none),
// so that a transport can read the history backwards from it.
func (s *Service) LastSeq(ctx context.Context) (uint64, error) {
	if _, err := s.look(ctx); err != nil {
		return 0, err
	}
	return s.st.Catalog().Seq(), nil
}

// Backup writes a consistent copy of the database to w.
func (s *Service) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if _, err := s.admin(ctx, "take a backup"); err != nil {
		return 0, err
	}
	return s.st.Backup(ctx, w)
}

// Status is the service's state, for an admin.
type Status struct {
	Version string
	Started time.Time
	DataDir string
	Stats   store.Stats
	// Inventory says whether the device inventory can be written; while
	// it cannot, devices are answered 503 and Warnings says so first.
	Inventory    store.InventoryHealth
	Listeners    []Listener
	Certificates []CertInfo
	Warnings     []string
	// Actor is who asked.
	Actor string
}

// Status returns the service's state.
func (s *Service) Status(ctx context.Context) (Status, error) {
	p, err := s.look(ctx)
	if err != nil {
		return Status{}, err
	}
	st, err := s.st.Stats(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Status{Version: s.cfg.Version, Started: s.started, DataDir: s.st.Dir(), Stats: st, Inventory: s.st.InventoryHealth(), Actor: p.Name}
	if s.cfg.Listeners != nil {
		out.Listeners = s.cfg.Listeners()
	}
	if s.cfg.Certificates != nil {
		out.Certificates = s.cfg.Certificates()
	}
	if h := out.Inventory; !h.Writable {
		out.Warnings = append(out.Warnings, inventoryWarning(h))
	}
	if s.cfg.Warnings != nil {
		out.Warnings = append(out.Warnings, s.cfg.Warnings()...)
	}
	return out, nil
}

// inventoryWarning says that the inventory cannot be written, what that
// does to devices, and what to do.
func inventoryWarning(h store.InventoryHealth) string {
	return fmt.Sprintf("the device inventory cannot be written since %s (%v): check-ins and status reports are answered 503 until it can, "+
		"and %d accepted before wait to be written; free space on the data directory's disk (the service retries by itself)",
		h.Since.Format(time.RFC3339), h.Err, h.Held)
}

// Setting is one setting the service runs with, for Settings: its key in
// the settings file, its value, its default and what it means.
type Setting struct {
	Key, Value, Default, Help string
}

// Settings returns the settings the service runs with (Config.Settings),
// for an admin to read.
func (s *Service) Settings(ctx context.Context) ([]Setting, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	if s.cfg.Settings == nil {
		return nil, nil
	}
	return s.cfg.Settings(), nil
}

// Now is the service's clock, for transports that show times.
func (s *Service) Now() time.Time { return s.cfg.Now() }
