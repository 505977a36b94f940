package service

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
)

// AddTestDevice marks a device, by MAC or serial number, as a test device:
// it is offered pending versions. Like every add of the service, it is
// idempotent: a test device that is one already with the same note is
// returned as it is, nothing changed or recorded, so that a script that
// runs twice succeeds; one with another note is store.ErrExists.
func (s *Service) AddTestDevice(ctx context.Context, d firmware.TestDevice) (firmware.TestDevice, error) {
	p, err := s.change(ctx, "add a test device")
	if err != nil {
		return d, err
	}
	d.MAC, d.Serial = strings.TrimSpace(d.MAC), strings.TrimSpace(d.Serial)
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
	err = s.st.AddTestDevice(ctx, p.Name, d)
	if !errors.Is(err, store.ErrExists) {
		return d, err
	}
	tds, lerr := s.st.TestDevices(ctx)
	if lerr != nil {
		return d, err
	}
	for _, old := range tds {
		if (d.MAC == "" || old.MAC != d.MAC) && (d.Serial == "" || old.Serial != d.Serial) {
			continue
		}
		if old.MAC == d.MAC && old.Serial == d.Serial && old.Note == d.Note {
			return old, nil
		}
		key, _ := old.Key()
		return d, fmt.Errorf("test device %s %w with the note %q: to change it, remove it and add it again", key, store.ErrExists, old.Note)
	}
	return d, err
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

// AccountPassword is a device account's new password as the service takes
// it: the NT hash NTLM needs, which is all the service keeps, and the
// password's length in characters, which it checks against
// the service's minimum (Config.MinAccountPasswordLength). The command line computes both where the
// password is typed, so the password itself never travels;
// NewAccountPassword makes one from a password.
type AccountPassword struct {
	NTHash [16]byte
	Length int
}

// NewAccountPassword returns password's NT hash and length.
func NewAccountPassword(password string) AccountPassword {
	return AccountPassword{NTHash: ntlm.NTHash(password), Length: utf8.RuneCountInString(password)}
}

// PutAccount adds a device sign-in account with its password, or, with
// replace, sets a new password for an existing one. A password shorter
// than Config.MinAccountPasswordLength is ErrInvalid, saying the minimum. Adding
// an account that is there already, enabled and with the same password,
// returns it as it is, nothing changed or recorded (adds are idempotent);
// with another password, or disabled, it is store.ErrExists, saying what
// to run instead.
func (s *Service) PutAccount(ctx context.Context, name string, pw AccountPassword, replace bool) (firmware.Account, error) {
	p, err := s.change(ctx, "change accounts")
	if err != nil {
		return firmware.Account{}, err
	}
	if err := firmware.ValidAccountName(name); err != nil {
		return firmware.Account{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if least := int(s.minAccountPassword.Load()); pw.Length < least {
		return firmware.Account{}, fmt.Errorf("%w: the password of %s has %d character(s): device account passwords need at least %d (min_password_length)", ErrInvalid, name, pw.Length, least)
	}
	now := s.cfg.Now()
	a := firmware.Account{Name: name, Created: now, Updated: now}
	if old, err := s.st.Account(ctx, name); err == nil {
		if !replace {
			same := subtle.ConstantTimeCompare(old.NTHash[:], pw.NTHash[:]) == 1
			switch {
			case same && !old.Disabled:
				return old, nil
			case same:
				return firmware.Account{}, fmt.Errorf("account %q %w, disabled: enable it with accounts enable %s", old.Name, store.ErrExists, old.Name)
			}
			return firmware.Account{}, fmt.Errorf("account %q %w with another password: to set this one use accounts passwd %s", old.Name, store.ErrExists, old.Name)
		}
		a.Name, a.Created, a.Disabled = old.Name, old.Created, old.Disabled
	} else if !errors.Is(err, store.ErrNotFound) || replace {
		return firmware.Account{}, err
	}
	a.NTHash = pw.NTHash
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
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.st.Devices(ctx)
}

// MaxHistory bounds the events one History call returns.
const MaxHistory = 10000

// History returns the history events after since, at most limit of them
// (MaxHistory when limit is not in 1..MaxHistory), but the signings of
// the update metadata.
func (s *Service) History(ctx context.Context, since uint64, limit int) ([]firmware.Event, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxHistory {
		limit = MaxHistory
	}
	// The signings of the update metadata (store.ActionMetadataSign) are
	// the system's housekeeping after each change, kept in the history
	// so that they reach replicas in order: they are not listed.
	out := []firmware.Event{}
	for len(out) < limit {
		es, err := s.st.History(ctx, since, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Action != store.ActionMetadataSign && len(out) < limit {
				out = append(out, e)
			}
		}
		if len(es) < limit {
			break
		}
		since = es[len(es)-1].Seq
	}
	return out, nil
}

// LastSeq returns the number of the newest history event (0 for none),
// so that a transport can read the history backwards from it.
func (s *Service) LastSeq(ctx context.Context) (uint64, error) {
	if _, err := s.look(ctx); err != nil {
		return 0, err
	}
	return s.st.Catalog().Seq(), nil
}

// Backup writes a backup archive to w: the database at one history
// number and the files of every update it records (store.Backup), taken
// while the service keeps working. devsvc restore-backup restores one.
func (s *Service) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	if _, err := s.admin(ctx, "take a backup"); err != nil {
		return store.BackupInfo{}, err
	}
	return s.st.Backup(ctx, w, s.cfg.Version)
}

// Status is the service's state, for an admin.
type Status struct {
	Version string
	Started time.Time
	DataDir string
	Stats   store.Stats
	// Inventory says whether the device inventory can be written; while
	// it cannot, devices are answered 503 and Warnings says so first.
	Inventory store.InventoryHealth
	// Alarms counts the open alarms (devsvc alarms lists them).
	Alarms       int
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
	alarms, err := s.st.OpenAlarms(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Status{Version: s.cfg.Version, Started: s.started, DataDir: s.st.Dir(), Stats: st, Inventory: s.st.InventoryHealth(), Actor: p.Name, Alarms: alarms}
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
