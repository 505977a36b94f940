package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// normalizeTestDevice checks a test device and normalizes it: the MAC as
// firmware.NormalizeMAC writes it, the serial trimmed. It returns its key.
func normalizeTestDevice(d *firmware.TestDevice) (string, error) {
	if strings.TrimSpace(d.MAC) != "" {
		m, err := firmware.NormalizeMAC(d.MAC)
		if err != nil {
			return "", err
		}
		d.MAC = m
	} else {
		d.MAC = ""
	}
	d.Serial = strings.TrimSpace(d.Serial)
	key, ok := d.Key()
	if !ok {
		return "", errors.New("a test device needs a MAC address or a serial number")
	}
	return key, nil
}

// AddTestDevice makes a device a test device: it is offered pending
// versions. One of MAC and serial number is required; the MAC is
// normalized. A device that is one already (same MAC, or same serial) is
// ErrExists.
func (s *Store) AddTestDevice(ctx context.Context, actor string, d firmware.TestDevice) error {
	key, err := normalizeTestDevice(&d)
	if err != nil {
		return fmt.Errorf("store: add test device: %w", err)
	}
	err = s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketTestDevices)
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("test device %s %w", key, ErrExists)
		}
		if d.Serial != "" {
			if k, _, err := findTestDevice(b, d.Serial); err != nil {
				return err
			} else if k != "" {
				return fmt.Errorf("test device with serial %s %w (%s)", d.Serial, ErrExists, k)
			}
		}
		if d.Added.IsZero() {
			d.Added = c.now
		}
		if err := putJSON(b, []byte(key), d); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionTestDeviceAdd, Subject: key, Detail: d.Note})
	})
	if err != nil {
		return fmt.Errorf("store: add test device: %w", err)
	}
	return nil
}

// findTestDevice finds the test device with serial number serial.
func findTestDevice(b *bolt.Bucket, serial string) (key string, d firmware.TestDevice, err error) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var t firmware.TestDevice
		if err := json.Unmarshal(v, &t); err != nil {
			return "", d, fmt.Errorf("test device %q: %w", k, err)
		}
		if t.Serial == serial {
			return string(k), t, nil
		}
	}
	return "", d, nil
}

// RemoveTestDevice makes the device with this MAC address (any notation)
// or serial number an ordinary device again; ErrNotFound if it is not a
// test device.
func (s *Store) RemoveTestDevice(ctx context.Context, actor, macOrSerial string) error {
	macOrSerial = strings.TrimSpace(macOrSerial)
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketTestDevices)
		key := ""
		if m, err := firmware.NormalizeMAC(macOrSerial); err == nil && b.Get([]byte(m)) != nil {
			key = m
		} else if macOrSerial != "" {
			k, _, err := findTestDevice(b, macOrSerial)
			if err != nil {
				return err
			}
			key = k
		}
		if key == "" {
			return fmt.Errorf("test device %q %w", macOrSerial, ErrNotFound)
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionTestDeviceRemove, Subject: key})
	})
	if err != nil {
		return fmt.Errorf("store: remove test device: %w", err)
	}
	return nil
}

// TestDevices lists the test devices by key: MACs, then serial numbers.
func (s *Store) TestDevices(ctx context.Context) ([]firmware.TestDevice, error) {
	var ts []firmware.TestDevice
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTestDevices).ForEach(func(k, v []byte) error {
			var t firmware.TestDevice
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("test device %q: %w", k, err)
			}
			ts = append(ts, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: test devices: %w", err)
	}
	return ts, nil
}

// accountRecord is an account as stored: firmware.Account keeps its hash
// out of JSON, the record keeps it in hex.
type accountRecord struct {
	Name     string    `json:"name"`
	NTHash   string    `json:"ntHash"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

func (r accountRecord) account() (firmware.Account, error) {
	a := firmware.Account{Name: r.Name, Disabled: r.Disabled, Created: r.Created, Updated: r.Updated}
	if decodeHex(a.NTHash[:], r.NTHash) != nil {
		return firmware.Account{}, fmt.Errorf("account %q: bad NT hash", r.Name)
	}
	return a, nil
}

func accountKey(name string) []byte { return []byte(strings.ToLower(name)) }

func getAccount(b *bolt.Bucket, name string) (accountRecord, error) {
	var r accountRecord
	ok, err := getJSON(b, accountKey(name), &r)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, fmt.Errorf("account %q %w", name, ErrNotFound)
	}
	return r, nil
}

// PutAccount creates an account or replaces one of the same name (compared
// case-insensitively), which is how a password changes; a replaced account
// keeps its creation time. Names are checked with
// firmware.ValidAccountName; the history never holds the hash.
func (s *Store) PutAccount(ctx context.Context, actor string, a firmware.Account) error {
	if err := firmware.ValidAccountName(a.Name); err != nil {
		return fmt.Errorf("store: put account: %w", err)
	}
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketAccounts)
		rec := accountRecord{Name: a.Name, NTHash: hex.EncodeToString(a.NTHash[:]), Disabled: a.Disabled, Created: c.now, Updated: c.now}
		action := ActionAccountCreate
		if old, err := getAccount(b, a.Name); err == nil {
			rec.Created = old.Created
			action = ActionAccountUpdate
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := putJSON(b, accountKey(a.Name), rec); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: action, Subject: a.Name})
	})
	if err != nil {
		return fmt.Errorf("store: put account: %w", err)
	}
	return nil
}

// Account returns the account named name, compared case-insensitively;
// ErrNotFound if there is none.
func (s *Store) Account(ctx context.Context, name string) (firmware.Account, error) {
	var a firmware.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		r, err := getAccount(tx.Bucket(bucketAccounts), name)
		if err != nil {
			return err
		}
		a, err = r.account()
		return err
	})
	if err != nil {
		return firmware.Account{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// Accounts lists the accounts, sorted by lower-case name.
func (s *Store) Accounts(ctx context.Context) ([]firmware.Account, error) {
	var as []firmware.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var r accountRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("account %q: %w", k, err)
			}
			a, err := r.account()
			if err != nil {
				return err
			}
			as = append(as, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: accounts: %w", err)
	}
	return as, nil
}

// SetAccountDisabled disables or enables the account named name;
// ErrNotFound if there is none.
func (s *Store) SetAccountDisabled(ctx context.Context, actor, name string, disabled bool) error {
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketAccounts)
		r, err := getAccount(b, name)
		if err != nil {
			return err
		}
		r.Disabled, r.Updated = disabled, c.now
		if err := putJSON(b, accountKey(name), r); err != nil {
			return err
		}
		action := ActionAccountEnable
		if disabled {
			action = ActionAccountDisable
		}
		return c.event(firmware.Event{Action: action, Subject: r.Name})
	})
	if err != nil {
		return fmt.Errorf("store: set account disabled: %w", err)
	}
	return nil
}

// RemoveAccount deletes the account named name; ErrNotFound if there is
// none.
func (s *Store) RemoveAccount(ctx context.Context, actor, name string) error {
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketAccounts)
		r, err := getAccount(b, name)
		if err != nil {
			return err
		}
		if err := b.Delete(accountKey(name)); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionAccountRemove, Subject: r.Name})
	})
	if err != nil {
		return fmt.Errorf("store: remove account: %w", err)
	}
	return nil
}
