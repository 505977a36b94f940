package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// History actions of the admin certificate registry.
const (
	ActionCertIssue  = "cert-issue"
	ActionCertRevoke = "cert-revoke"
)

// AddAdminCert records an admin certificate in the registry, with a
// cert-issue event naming actor; note, when set, says how it came (for
// example "the first admin certificate, made by devsvc init"). A serial
// recorded already is ErrExists.
func (s *Store) AddAdminCert(ctx context.Context, actor string, c firmware.AdminCert, note string) error {
	serial, err := firmware.ParseCertSerial(c.Serial)
	if err != nil || serial != c.Serial {
		return fmt.Errorf("store: add admin certificate: serial %q is not in lower-case hex without leading zeros", c.Serial)
	}
	if c.Name == "" || c.Role == "" {
		return fmt.Errorf("store: add admin certificate %s: no name or role", c.Serial)
	}
	err = s.change(ctx, actor, func(ch *change) error {
		b := ch.tx.Bucket(bucketAdminCerts)
		if b.Get([]byte(c.Serial)) != nil {
			return fmt.Errorf("admin certificate %s %w", c.Serial, ErrExists)
		}
		if c.Issued.IsZero() {
			c.Issued = ch.now
		}
		c.IssuedBy = actor
		if err := putJSON(b, []byte(c.Serial), c); err != nil {
			return err
		}
		detail := fmt.Sprintf("role %s, serial %s, expires %s", c.Role, c.Serial, c.Expires.UTC().Format(time.DateOnly))
		if note != "" {
			detail = note + "; " + detail
		}
		return ch.event(firmware.Event{Action: ActionCertIssue, Subject: c.Name, Detail: detail})
	})
	if err != nil {
		return fmt.Errorf("store: add admin certificate: %w", err)
	}
	return nil
}

// AdminCert returns the registry's record of the certificate with this
// serial (as ParseCertSerial writes it); ErrNotFound if there is none.
func (s *Store) AdminCert(ctx context.Context, serial string) (firmware.AdminCert, error) {
	var c firmware.AdminCert
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketAdminCerts), []byte(serial), &c)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("admin certificate with serial %s %w", serial, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return firmware.AdminCert{}, fmt.Errorf("store: %w", err)
	}
	return c, nil
}

// AdminCerts lists the registry, oldest first.
func (s *Store) AdminCerts(ctx context.Context) ([]firmware.AdminCert, error) {
	var cs []firmware.AdminCert
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAdminCerts).ForEach(func(k, v []byte) error {
			var c firmware.AdminCert
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("admin certificate %q: %w", k, err)
			}
			cs = append(cs, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: admin certificates: %w", err)
	}
	slices.SortFunc(cs, func(a, b firmware.AdminCert) int {
		if c := a.Issued.Compare(b.Issued); c != 0 {
			return c
		}
		return strings.Compare(a.Serial, b.Serial)
	})
	return cs, nil
}

// RevokeAdminCert marks the certificate with this serial revoked, for
// reason, with a cert-revoke event naming actor; from then on the admin
// API refuses it. ErrNotFound if there is none; ErrRevoked if it was
// revoked already (nothing changes).
func (s *Store) RevokeAdminCert(ctx context.Context, actor, serial, reason string) (firmware.AdminCert, error) {
	var c firmware.AdminCert
	err := s.change(ctx, actor, func(ch *change) error {
		b := ch.tx.Bucket(bucketAdminCerts)
		ok, err := getJSON(b, []byte(serial), &c)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("admin certificate with serial %s %w", serial, ErrNotFound)
		}
		if !c.Revoked.IsZero() {
			return fmt.Errorf("admin certificate %s (serial %s) was %w on %s by %s: nothing changed",
				c.Name, c.Serial, ErrRevoked, c.Revoked.UTC().Format(time.RFC3339), c.RevokedBy)
		}
		c.Revoked, c.RevokedBy, c.Reason = ch.now, actor, reason
		if err := putJSON(b, []byte(serial), c); err != nil {
			return err
		}
		detail := fmt.Sprintf("role %s, serial %s", c.Role, c.Serial)
		if reason != "" {
			detail += ": " + reason
		}
		return ch.event(firmware.Event{Action: ActionCertRevoke, Subject: c.Name, Detail: detail})
	})
	if err != nil {
		return firmware.AdminCert{}, fmt.Errorf("store: revoke admin certificate: %w", err)
	}
	return c, nil
}
