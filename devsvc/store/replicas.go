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

// bucketReplicas: a primary's replicas, name -> firmware.Replica.
var bucketReplicas = []byte("replicas")

// History actions of replicas.
const (
	ActionReplicaAdd    = "replica-add"
	ActionReplicaRemove = "replica-remove"
)

// AddReplica records a replica and its client certificate (role
// "replica") in the registry of admin certificates, in one change with
// its replica-add and cert-issue events. A name in use by an active
// replica is ErrExists; a removed replica's name may be used again (its
// certificate stays revoked).
func (s *Store) AddReplica(ctx context.Context, actor string, r firmware.Replica, cert firmware.AdminCert) (firmware.Replica, error) {
	if err := firmware.ValidReplicaName(r.Name); err != nil {
		return firmware.Replica{}, fmt.Errorf("store: add replica: %w", err)
	}
	if err := firmware.ValidSiteName(r.Site); err != nil {
		return firmware.Replica{}, fmt.Errorf("store: add replica %s: %w", r.Name, err)
	}
	serial, err := firmware.ParseCertSerial(cert.Serial)
	if err != nil || serial != cert.Serial || cert.Name != r.Name || cert.Role == "" {
		return firmware.Replica{}, fmt.Errorf("store: add replica %s: its certificate record %+v does not name it", r.Name, cert)
	}
	err = s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketReplicas)
		var old firmware.Replica
		if ok, err := getJSON(b, []byte(r.Name), &old); err != nil {
			return err
		} else if ok && old.Active() {
			return fmt.Errorf("replica %s (site %s, added %s) %w: remove it first (devsvc replicas remove %s), or choose another name",
				r.Name, old.Site, old.Added.UTC().Format(time.DateOnly), ErrExists, r.Name)
		}
		certs := c.tx.Bucket(bucketAdminCerts)
		if certs.Get([]byte(cert.Serial)) != nil {
			return fmt.Errorf("admin certificate %s %w", cert.Serial, ErrExists)
		}
		r.CertSerial, r.Added, r.AddedBy = cert.Serial, c.now, actor
		r.Removed, r.RemovedBy, r.Reason, r.Progress = time.Time{}, "", "", firmware.ReplicaProgress{}
		cert.Issued, cert.IssuedBy = c.now, actor
		if err := putJSON(b, []byte(r.Name), r); err != nil {
			return err
		}
		if err := putJSON(certs, []byte(cert.Serial), cert); err != nil {
			return err
		}
		detail := "site " + r.Site
		if r.NoAccounts {
			detail += ", without the device accounts"
		}
		if err := c.event(firmware.Event{Action: ActionReplicaAdd, Subject: r.Name, Detail: detail}); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionCertIssue, Subject: cert.Name,
			Detail: fmt.Sprintf("replica %s; role %s, serial %s, expires %s", r.Name, cert.Role, cert.Serial, cert.Expires.UTC().Format(time.DateOnly))})
	})
	if err != nil {
		return firmware.Replica{}, fmt.Errorf("store: add replica: %w", err)
	}
	return r, nil
}

// Replica returns the replica named name; ErrNotFound if there is none.
func (s *Store) Replica(ctx context.Context, name string) (firmware.Replica, error) {
	var r firmware.Replica
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketReplicas), []byte(name), &r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("replica %q %w: devsvc replicas list shows them", name, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return firmware.Replica{}, fmt.Errorf("store: %w", err)
	}
	return r, nil
}

// Replicas lists the replicas, removed ones included, by name.
func (s *Store) Replicas(ctx context.Context) ([]firmware.Replica, error) {
	var rs []firmware.Replica
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReplicas).ForEach(func(k, v []byte) error {
			var r firmware.Replica
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("replica %q: %w", k, err)
			}
			rs = append(rs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: replicas: %w", err)
	}
	slices.SortFunc(rs, func(a, b firmware.Replica) int { return strings.Compare(a.Name, b.Name) })
	return rs, nil
}

// RemoveReplica marks the replica named name removed, for reason, and
// revokes its certificate, in one change with its replica-remove and
// cert-revoke events: from then on the primary refuses it. ErrNotFound if
// there is none; ErrRevoked if it was removed already.
func (s *Store) RemoveReplica(ctx context.Context, actor, name, reason string) (firmware.Replica, error) {
	var r firmware.Replica
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketReplicas)
		ok, err := getJSON(b, []byte(name), &r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("replica %q %w: devsvc replicas list shows them", name, ErrNotFound)
		}
		if !r.Active() {
			return fmt.Errorf("replica %s was removed on %s by %s: %w, nothing changed", name, r.Removed.UTC().Format(time.RFC3339), r.RemovedBy, ErrRevoked)
		}
		r.Removed, r.RemovedBy, r.Reason = c.now, actor, reason
		if err := putJSON(b, []byte(name), r); err != nil {
			return err
		}
		detail := "site " + r.Site
		if reason != "" {
			detail += ": " + reason
		}
		if err := c.event(firmware.Event{Action: ActionReplicaRemove, Subject: name, Detail: detail}); err != nil {
			return err
		}
		certs := c.tx.Bucket(bucketAdminCerts)
		var cert firmware.AdminCert
		if ok, err := getJSON(certs, []byte(r.CertSerial), &cert); err != nil || !ok || !cert.Revoked.IsZero() {
			return err
		}
		cert.Revoked, cert.RevokedBy, cert.Reason = c.now, actor, "replica "+name+" removed"
		if reason != "" {
			cert.Reason += ": " + reason
		}
		if err := putJSON(certs, []byte(cert.Serial), cert); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionCertRevoke, Subject: cert.Name, Detail: fmt.Sprintf("role %s, serial %s: %s", cert.Role, cert.Serial, cert.Reason)})
	})
	if err != nil {
		return firmware.Replica{}, fmt.Errorf("store: remove replica: %w", err)
	}
	return r, nil
}

// UpdateReplicaProgress changes what the primary keeps of an active
// replica's progress (firmware.ReplicaProgress) with fn, in a transaction
// of its own that is not a catalog change (no history event). ErrNotFound
// if there is no such replica; ErrRevoked if it was removed.
func (s *Store) UpdateReplicaProgress(ctx context.Context, name string, fn func(p *firmware.ReplicaProgress)) (firmware.Replica, error) {
	var r firmware.Replica
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = activeReplica(tx, name)
		if err != nil {
			return err
		}
		fn(&r.Progress)
		return putJSON(tx.Bucket(bucketReplicas), []byte(name), r)
	})
	if err != nil {
		return firmware.Replica{}, fmt.Errorf("store: replica %s progress: %w", name, err)
	}
	return r, nil
}

// activeReplica reads the replica named name, which must not be removed.
func activeReplica(tx *bolt.Tx, name string) (firmware.Replica, error) {
	var r firmware.Replica
	ok, err := getJSON(tx.Bucket(bucketReplicas), []byte(name), &r)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, fmt.Errorf("replica %q %w", name, ErrNotFound)
	}
	if !r.Active() {
		return r, fmt.Errorf("replica %s was removed on %s: %w", name, r.Removed.UTC().Format(time.RFC3339), ErrRevoked)
	}
	return r, nil
}

// update runs fn in a write transaction that is not a catalog change.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return closedErr(s.db.Update(fn))
}
