// Package updatemeta is OpenDUS's signed update metadata: what the primary
// offers, signed in the four roles of The Update Framework (TUF, spec
// 1.0.31) with github.com/theupdateframework/go-tuf/v2, so that devices
// fetching answers, metadata, piece lists and files through relays they do
// not trust (replicas, subnet peers, caches) can check all of them. It is
// the one owner of go-tuf: the server signs with it, devices verify with
// it.
//
// # Roles and keys
//
//   - root (version 1, 2, ...) names the keys of every role. Its key can
//     live offline: the data directory's keys/root.key may be removed
//     once the service signs, and given back (--root-key) to rotate.
//     Devices are provisioned with one root and follow the chain:
//     version n+1 is signed by n's root keys and by its own.
//   - targets lists, per rule (device identity), the files of its
//     approved and pending versions: path
//     DeviceType/Vendor/Model/Revision/Locale/Version/File, length,
//     SHA-256 and, in custom, the digest of the file's piece list
//     (package pieces), the version's state and, for an approved version
//     lower than one approved before (a restore), the versions a device
//     may go down from. Its version grows with every catalog change.
//   - snapshot names the targets version; timestamp names the snapshot
//     version and expires soon (a day by default): the primary re-signs it
//     before it expires, so a relay can freeze a device for at most that
//     long.
//
// The online keys (targets, snapshot, timestamp) are files of the data
// directory (0600); they never enter the store, which keeps only the
// signed bytes (so that a replica can relay them unchanged).
//
// # What a device checks (Client)
//
// At each check-in, after the answer: fetch timestamp.json; when it is
// the one trusted already, only check expiries (nothing new is trusted,
// and the service signs a new timestamp with every new root). Otherwise
// fetch root n+1, n+2, ... until there is none (each verified by the
// previous root and itself), verify the timestamp (signed by the root's
// timestamp keys, not expired, version never lower than the last trusted
// one), then snapshot.json (length and hash named by the timestamp) and
// targets.json (named by the snapshot). Then the offer (Client.CheckOffer): every file
// of the answer must be in targets with the same length and SHA-256, and a
// version lower than the device's own is taken only when the targets
// entry names the device's version among those it may go down from. The
// download is then checked against the signed SHA-256, and each piece
// against the piece list whose digest targets names. Every refusal has a
// Reason a device reports.
package updatemeta
