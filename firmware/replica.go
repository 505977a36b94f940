package firmware

import (
	"errors"
	"fmt"
	"time"
)

// ErrReplica is returned when a replica's name or site is malformed.
var ErrReplica = errors.New("invalid replica")

// Replica is what a primary service keeps of one of its replicas: a
// service at a site that follows the primary's catalog, serves the site's
// devices from its own copy and forwards their check-ins and reports. Its
// client certificate (role "replica") is in the registry of admin
// certificates under CertSerial; removing the replica revokes it.
type Replica struct {
	// Name is the replica's name, like a site's (ValidReplicaName); the
	// history records its calls as "replica:" + Name.
	Name string `json:"name"`
	// Site is the name of the site it serves (Site.Name).
	Site string `json:"site"`
	// CertSerial is its client certificate's serial, as AdminCert.Serial.
	CertSerial string `json:"certSerial"`
	// NoAccounts says the device accounts (their NT hashes) are not
	// replicated to it: its devices sign in against a directory of its
	// own, or not at all.
	NoAccounts bool `json:"noAccounts,omitempty"`
	// Added is when it was added, by AddedBy.
	Added   time.Time `json:"added"`
	AddedBy string    `json:"addedBy"`
	// Removed, when set, is when it was removed, by RemovedBy, for
	// Reason: its certificate is revoked and the primary refuses it.
	Removed   time.Time `json:"removed,omitzero"`
	RemovedBy string    `json:"removedBy,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Progress is what it last told the primary.
	Progress ReplicaProgress `json:"progress"`
}

// Active reports whether the replica has not been removed.
func (r *Replica) Active() bool { return r.Removed.IsZero() }

// ReplicaProgress is what a replica last told its primary, and what the
// primary counted of it.
type ReplicaProgress struct {
	// Position is the history number of the last catalog change the
	// replica applied (with every file it needs).
	Position uint64 `json:"position"`
	// LastContact is when the replica last called the primary.
	LastContact time.Time `json:"lastContact,omitzero"`
	// BytesFetched and FilesFetched count the image file bytes the primary
	// sent it, and the files it finished.
	BytesFetched int64 `json:"bytesFetched"`
	FilesFetched int64 `json:"filesFetched"`
	// InternalURL and ExternalURL are the replica's base URLs for
	// devices, as it reported them.
	InternalURL string `json:"internalURL,omitempty"`
	ExternalURL string `json:"externalURL,omitempty"`
	// Version is the program version the replica runs.
	Version string `json:"version,omitempty"`
	// Epoch and Forwarded say which of the replica's queued check-ins and
	// reports the primary has applied: those numbered up to Forwarded of
	// the replica's queue Epoch (a new queue, after the replica's data
	// directory was made again, has another epoch).
	Epoch     uint64 `json:"epoch,omitempty"`
	Forwarded uint64 `json:"forwarded,omitempty"`
	// Reports counts the check-ins and reports it forwarded.
	Reports int64 `json:"reports,omitempty"`
}

// Behind returns how many changes the replica is behind head.
func (p ReplicaProgress) Behind(head uint64) uint64 {
	if p.Position >= head {
		return 0
	}
	return head - p.Position
}

// ValidReplicaName checks a replica's name: the same rules as a site's (a
// DNS label of lower-case letters, digits and hyphens), so that it is safe
// in certificates, file names and history entries.
func ValidReplicaName(name string) error {
	if err := ValidSiteName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrReplica, err)
	}
	return nil
}

// AlarmReplicaBehind: a replica has not applied a release (an approval,
// scheduled or not) Grace after it, so the devices of its site are not
// offered it: the patent's overdue alarm, extended to mirrors (see
// CheckReplicaBehind).
const AlarmReplicaBehind AlarmKind = "replica-behind"

// CheckReplicaBehind checks a replica against a release that the primary
// made at history number seq: once the release is grace past, a replica
// that has not applied seq is behind. It returns the alarm naming the
// replica, its site and the release, or ok false (nothing to raise, or
// clear an open alarm of the same ID). A removed replica is never behind.
func CheckReplicaBehind(rel Release, seq uint64, grace time.Duration, r Replica, now time.Time) (a Alarm, ok bool) {
	if !r.Active() || rel.At.IsZero() || now.Before(rel.At.Add(grace)) || r.Progress.Position >= seq {
		return Alarm{}, false
	}
	contact := "it has never called the primary"
	if !r.Progress.LastContact.IsZero() {
		contact = "its last contact was " + r.Progress.LastContact.UTC().Format(time.RFC3339)
	}
	return Alarm{
		ID:   fmt.Sprintf("%s-%s-%s-%d", AlarmReplicaBehind, r.Name, rel.Rule, seq),
		Kind: AlarmReplicaBehind, Rule: rel.Rule, Identity: rel.Identity, Version: rel.Version, Replica: r.Name,
		Sites: []SiteProgress{{Site: r.Site}},
		Detail: fmt.Sprintf("replica %s (site %s) has not applied the release of %s %s at %s (change %d), %s past: it has applied changes up to %d, and %s; its site's devices are not offered the release until it catches up",
			r.Name, r.Site, rel.Identity, rel.Version, rel.At.UTC().Format(time.RFC3339), seq, now.Sub(rel.At).Round(time.Second), r.Progress.Position, contact),
		Raised: now,
	}, true
}
