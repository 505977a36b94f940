package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// History actions of the console admins: added, password or role
// changed, disabled, enabled, removed. The history never holds a hash.
const (
	ActionConsoleAdminAdd     = "console-admin-add"
	ActionConsoleAdminUpdate  = "console-admin-update"
	ActionConsoleAdminDisable = "console-admin-disable"
	ActionConsoleAdminEnable  = "console-admin-enable"
	ActionConsoleAdminRemove  = "console-admin-remove"
)

// consoleAdminRecord is a console admin as stored: firmware.ConsoleAdmin
// keeps its hash out of JSON, the record keeps it.
type consoleAdminRecord struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Hash     string    `json:"hash"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

func (r consoleAdminRecord) admin() firmware.ConsoleAdmin {
	return firmware.ConsoleAdmin{Name: r.Name, Role: r.Role, PasswordHash: r.Hash, Disabled: r.Disabled, Created: r.Created, Updated: r.Updated}
}

// validConsoleAdmin checks what PutConsoleAdmin stores.
func validConsoleAdmin(a firmware.ConsoleAdmin) error {
	if err := firmware.ValidAccountName(a.Name); err != nil {
		return err
	}
	if a.Role != "admin" && a.Role != "readonly" {
		return fmt.Errorf("console admin %s: role %q, want admin or readonly", a.Name, a.Role)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$") || len(a.PasswordHash) > 512 {
		return fmt.Errorf("console admin %s: the password hash is not an argon2id hash in the PHC format", a.Name)
	}
	return nil
}

func getConsoleAdmin(b *bolt.Bucket, name string) (consoleAdminRecord, error) {
	var r consoleAdminRecord
	ok, err := getJSON(b, accountKey(name), &r)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, fmt.Errorf("console admin %q %w", name, ErrNotFound)
	}
	return r, nil
}

// PutConsoleAdmin adds a console admin, or with replace sets the role
// and password hash of an existing one (which keeps its creation time
// and whether it is disabled). Names are compared case-insensitively and
// checked with firmware.ValidAccountName; the role is admin or readonly;
// the hash must be an argon2id hash in the PHC format. Adding a name that
// exists is ErrExists; replacing one that does not, ErrNotFound.
func (s *Store) PutConsoleAdmin(ctx context.Context, actor string, a firmware.ConsoleAdmin, replace bool) error {
	if err := validConsoleAdmin(a); err != nil {
		return fmt.Errorf("store: put console admin: %w", err)
	}
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketConsoleAdmins)
		rec := consoleAdminRecord{Name: a.Name, Role: a.Role, Hash: a.PasswordHash, Disabled: a.Disabled}
		rec.Created, rec.Updated = c.now, c.now
		action := ActionConsoleAdminAdd
		old, err := getConsoleAdmin(b, a.Name)
		switch {
		case err == nil && !replace:
			return fmt.Errorf("console admin %q %w", old.Name, ErrExists)
		case err == nil:
			rec.Name, rec.Created, rec.Disabled = old.Name, old.Created, old.Disabled
			action = ActionConsoleAdminUpdate
		case !errors.Is(err, ErrNotFound) || replace:
			return err
		}
		if err := putJSON(b, accountKey(a.Name), rec); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: action, Subject: rec.Name, Detail: "role " + rec.Role})
	})
	if err != nil {
		return fmt.Errorf("store: put console admin: %w", err)
	}
	return nil
}

// ConsoleAdmin returns the console admin named name, compared
// case-insensitively, with its password hash; ErrNotFound if there is
// none.
func (s *Store) ConsoleAdmin(ctx context.Context, name string) (firmware.ConsoleAdmin, error) {
	var a firmware.ConsoleAdmin
	err := s.view(ctx, func(tx *bolt.Tx) error {
		r, err := getConsoleAdmin(tx.Bucket(bucketConsoleAdmins), name)
		a = r.admin()
		return err
	})
	if err != nil {
		return firmware.ConsoleAdmin{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// ConsoleAdmins lists the console admins, sorted by lower-case name,
// with their password hashes.
func (s *Store) ConsoleAdmins(ctx context.Context) ([]firmware.ConsoleAdmin, error) {
	var as []firmware.ConsoleAdmin
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConsoleAdmins).ForEach(func(k, v []byte) error {
			var r consoleAdminRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("console admin %q: %w", k, err)
			}
			as = append(as, r.admin())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: console admins: %w", err)
	}
	return as, nil
}

// SetConsoleAdminDisabled disables or enables the console admin named
// name; ErrNotFound if there is none.
func (s *Store) SetConsoleAdminDisabled(ctx context.Context, actor, name string, disabled bool) (firmware.ConsoleAdmin, error) {
	var a firmware.ConsoleAdmin
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketConsoleAdmins)
		r, err := getConsoleAdmin(b, name)
		if err != nil {
			return err
		}
		r.Disabled, r.Updated = disabled, c.now
		if err := putJSON(b, accountKey(name), r); err != nil {
			return err
		}
		a = r.admin()
		action := ActionConsoleAdminEnable
		if disabled {
			action = ActionConsoleAdminDisable
		}
		return c.event(firmware.Event{Action: action, Subject: r.Name})
	})
	if err != nil {
		return firmware.ConsoleAdmin{}, fmt.Errorf("store: set console admin disabled: %w", err)
	}
	return a, nil
}

// RemoveConsoleAdmin deletes the console admin named name; ErrNotFound if
// there is none.
func (s *Store) RemoveConsoleAdmin(ctx context.Context, actor, name string) error {
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketConsoleAdmins)
		r, err := getConsoleAdmin(b, name)
		if err != nil {
			return err
		}
		if err := b.Delete(accountKey(name)); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionConsoleAdminRemove, Subject: r.Name})
	})
	if err != nil {
		return fmt.Errorf("store: remove console admin: %w", err)
	}
	return nil
}
