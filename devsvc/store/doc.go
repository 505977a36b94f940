// Package store is the device update service's embedded database: the
// catalog of update rules, imported updates and their files, test devices,
// local accounts, sites, rollouts and alarms, the device inventory with its
// in-memory index, and the catalog history. It is the only package that
// imports go.etcd.io/bbolt; no bolt transaction leaves it.
//
// # Layout
//
// A data directory holds the database and the file store:
//
//	opendus.db                    bbolt database
//	DeviceUpdateFiles/<DeviceType>/<Vendor>/<Model>/<Revision>/<Locale>/<Version>/<file>
//
// The database has one bucket per kind of record, each record JSON except
// the devices (a compact binary form, see devicerec.go):
//
//	meta         "schema" -> schema version (SchemaVersion)
//	rules        identity path -> firmware.Rule
//	updates      identity path "/" version -> the update and its files' sizes and SHA-256
//	testdevices  device key -> firmware.TestDevice
//	accounts     lower-case name -> account with its NT hash
//	devices      device key -> firmware.Device
//	history      8-byte big-endian number -> firmware.Event
//	admincerts   serial (lower-case hex) -> firmware.AdminCert, the registry
//	             of admin certificates the admin API checks every call against
//	consoleadmins lower-case name -> the web console's accounts: role,
//	             argon2id hash of the password (never the password), disabled
//	sites        name -> firmware.Site
//	rollouts     rule ID -> the rule's last rollout (firmware.Rollout, and
//	             whether an approve made it)
//	alarms       alarm ID -> firmware.Alarm, open and cleared
//	feed         8-byte big-endian history number -> the records a catalog
//	             transaction changed (see "Change feed")
//	replicas     name -> firmware.Replica: a primary's replicas and their progress
//	outbox       8-byte big-endian number -> a check-in, report or refusal a
//	             replica recorded, queued for its primary (see "Replicas")
//
// A bucket added since a schema version (admincerts, consoleadmins, sites,
// rollouts, alarms, feed, replicas, outbox) is created by Open without a
// migration: an older program ignores it (and so does not check
// revocations: do not run one on a data directory that has revoked
// certificates; nor does it serve the console). Schema 3 changed the
// device records and made scheduled approvals rollouts; a schema 2 program
// refuses it (ErrSchema).
// Open refuses a database whose schema version is newer than this package's
// (ErrSchema) and upgrades an older one inside one transaction (migrate).
// Every file-system access under DeviceUpdateFiles goes through an os.Root,
// so no name can reach outside it, even though identities and file names
// are validated first (firmware.Identity.Validate, firmware.ValidName).
//
// # History
//
// Every catalog change (import, approve, reject, restore, withdraw, remove,
// purge, test devices, accounts, admin certificates issued and revoked,
// console admins added, changed, disabled, enabled and removed, sites,
// every transition of a rollout, alarms raised and cleared)
// appends its events to the history, numbered by
// the history bucket's one sequence, in the same transaction as the change,
// under the actor who made it (firmware.SystemActor for what the rollout
// engine does by itself).
// The numbers are therefore gapless and in commit order, and a mirror can
// follow the catalog from any number (History). The Catalog snapshot, an
// immutable in-memory copy of rules, updates, test devices, the site table
// (firmware.SiteTable, zones loaded) and the rules' rollouts read inside
// the committing transaction, is published after the commit, and a snapshot
// never replaces one with a higher number; the check-in path reads it with
// one atomic load.
//
// # Rollouts and the rules they run on
//
// A rule has at most one rollout record, its last. While it is live the
// rule keeps Pending = Version and Approved = From (firmware.Rollout), and
// every transition of the rule checks it in the same transaction: an
// import of another version, an approve, a withdraw or another rollout is
// refused (ErrRolloutLive, naming the rollout and how to stop it); a
// reject or restore rolls it back first; a remove deletes it. approve is
// a one-wave rollout completed at once, approve --at a scheduled one that
// the engine's StepRollout starts and completes at its time; a scheduled
// approval is cancelled, as always, by an import of a newer version. A
// step that completes a rollout approves the rule, and one that pauses it
// on failures raises its alarm, in the same transaction as the step. So
// after a crash a rule and its rollout are as one transaction left them,
// and checkConsistent (in the tests, after every kill of the crash test)
// checks the invariants.
//
// # The fleet index
//
// The store keeps every device's identity, site, cohort, version, last
// report, attempt and last check-in in memory (fleet.go), for the check-in
// decision (DeviceState, Downloading), rollout progress (StepRollout,
// RolloutProgress, ReleaseProgress) and device queries (QueryDevices)
// without reading the database. Open builds it from the devices bucket;
// RecordCheckIn and Report update it under its lock in the same critical
// section as they queue the write, and only when the write is accepted, so
// it holds exactly the accepted operations, in the order the writer
// applies them. A write carries the attempt the index computed. After a
// crash the index is rebuilt from what was committed: the operations lost
// (those accepted and not committed, as above) are lost from both.
//
// # Why an update is whole or absent after a crash
//
// Import writes each file of a new update to a temporary name (a dot name,
// which no valid file name is), computing its size and SHA-256 as it goes;
// compares them with the expected ones; fsyncs it; renames it into place;
// and fsyncs the directory, and the parent of every directory it created.
// Only when every file of the bundle is durable does one bolt transaction
// record every update, rule change and event of the bundle. bbolt commits
// atomically and durably (data pages, fsync, meta page, fsync), so a crash
// leaves one of two states: before the commit, files that no update
// records; after it, updates whose files are all durable. Updates become
// visible (Catalog, OpenFile) only through the snapshot published after
// the commit. Remove and Purge delete records first and files after the
// commit, so a crash between them also leaves only unrecorded files. Open
// removes every file no recorded update lists (temporary names, files of an
// interrupted import or removal) and the directories left empty, so after a
// crash every update is whole or absent and no orphan file remains. A
// stored version's files never change: importing it again with the same
// content (the same images and catalogs; descriptions are metadata and are
// not compared) writes nothing, with other content is ErrConflict.
//
// # Change feed
//
// A replica follows the catalog through the change feed. Every catalog
// transaction (change) compares, in the transaction, the replicated
// buckets (every bucket but those localBuckets names: rules, updates, test
// devices, accounts, and whatever bucket is added later unless it is
// declared local) before and after it ran, and writes the records it put
// and deleted to the feed bucket under the number of its last history
// event, in the same transaction: the feed entry commits with the change
// or not at all. Feed returns the changes after a number, each with its
// history events; a replica applies them in order. The feed keeps the
// changes of the last FeedKeep history numbers (100,000), dropping the
// oldest a few per change; feed-from in meta says from where it is
// complete (also the history number at which a database from before the
// feed started one). A replica behind feed-from, or a new one, starts from
// a Snapshot: every replicated record and the history as of one number,
// read in one transaction.
//
// Recording the diff rather than the operation makes the feed independent
// of what a change does: a new kind of change is replicated without code
// for it. It costs a copy of the replicated buckets per catalog change,
// which the catalog snapshot's reload already reads.
//
// # Replicas
//
// A replica's store (MakeReplica, on an empty store) is marked in meta with
// the primary it follows. Its catalog changes only by ApplyChanges and
// ApplySnapshot (any other change of a replicated bucket is ErrFollower),
// and its history is the primary's, event for event and number for
// number, so that its position is its history number. Its own registry of
// admin certificates changes without history events (they are logged).
//
// ApplyChanges skips changes at or below the position and refuses a gap;
// every record is checked (a known bucket, a value its bucket can hold)
// before anything is written. Like an import, it writes the files of the
// updates the changes leave (fetched by the caller, or copied from a
// stored file of the same SHA-256) to temporary names, checks their size
// and SHA-256, fsyncs and renames them into place, and only then commits
// the records and the new position in one transaction: a device is never
// offered a file the replica cannot serve, a crash leaves the old
// position with unrecorded files (which Open removes) or the new one with
// every file, and a change is never applied twice. Files of the updates
// the changes delete are removed after the commit, as Remove does. A
// version removed and imported again with other files ends one
// transaction and starts another, so that the old files go first.
//
// A replica's inventory writes also queue every check-in and report they
// apply to its outbox, in the same transaction (so the outbox holds what
// the replica answered 200, with the inventory's durability). The
// replica forwards them in order; the primary applies a batch
// (ApplyForwarded) in one transaction with the number of its last item,
// under the replica's outbox epoch (random, made by MakeReplica), and
// skips items at or below it: a batch sent again is not applied twice,
// and a replica made again with a new data directory starts a new epoch.
//
// Imports, Remove, Purge, ApplyChanges and ApplySnapshot are serialized
// with each other (they add and delete update records and files); approve, reject, restore, test devices
// and accounts only wait for bbolt's single writer.
//
// # Backups
//
// Backup writes a tar archive of a manifest, the database as one read
// transaction sees it, and the files of every update that database
// records, while the store keeps working (backup.go). The database is the
// catalog at one history number; its files never change once written, and
// a Remove or Purge that commits while the backup copies them deletes them
// only after it (removeMu), so the archive is that catalog whole, however
// many imports and check-ins run meanwhile. RestoreBackup reads an archive
// into an empty directory and refuses it unless it is whole: the database
// passes bbolt's check and opens, and the files are exactly the recorded
// ones with their recorded sizes and SHA-256.
//
// # Inventory group commit
//
// Check-ins are frequent and each one changes a device record, so they are
// not written one transaction (and fsync) each. RecordCheckIn and Report
// put the operation on a bounded queue and return at once; ErrBusy when it
// is full, ErrUnavailable while the inventory cannot be written (below);
// the device side answers both 503 with Retry-After. One writer
// goroutine gathers the queued operations, merging them per device in
// queue order, and commits them in one fsynced transaction when the oldest
// has waited FlushInterval (200 ms by default), when the batch reaches
// maxBatch operations, when Flush asks, and at Close. An accepted operation
// is therefore durable within FlushInterval plus one commit, well within a
// second; Flush waits until everything queued before it is durable. A
// crash loses at most the operations not yet committed, never a catalog
// change.
//
// # When the inventory cannot be written
//
// A commit can fail: the disk is full, or an I/O error. bbolt then rolls
// the transaction back and the database stays as the last commit left it:
// a commit writes its new pages first and the meta page that makes them
// live last, so a failed write leaves only pages nothing refers to. The
// writer never drops the failed batch. It keeps it, stops taking from the
// queue, and retries it 100 ms later, then doubling the wait up to every 5
// s, and at once when Flush asks. Meanwhile RecordCheckIn and Report
// return ErrUnavailable (the device side answers 503 with Retry-After), so
// nothing more is accepted that might not be written; InventoryHealth says
// since when, why and how much is held, and the store logs once at Error
// when the writes start failing and once at Warn when they succeed again.
// When a retry succeeds the held batch is committed and the queue is taken
// again, in order, so each device's operations still apply in the order
// they were accepted.
//
// The guarantee is therefore: an operation for which RecordCheckIn or
// Report returned nil is committed within FlushInterval plus one commit
// while writes succeed, and, while they fail, as soon as a retry succeeds
// (the held batch by that commit, what was queued behind it by the next
// ones), unless
//
//   - the process dies first: as before, what is not committed is lost,
//     and while writes fail that is the operations accepted before the
//     first failure (at most the batch being committed and a full
//     queue), for as long as the failure lasts; or
//   - the store is closed while writes still fail: Close makes one last
//     attempt and, if it fails too, logs the lost operations at Error
//     (their count and up to 20 device keys) and returns an error wrapping
//     ErrUnavailable.
//
// A device sends its whole state at every check-in, so a lost check-in is
// made good at the device's next one. Both cases need the disk to be full
// when the store writes; the service keeps a floor of free space
// (min_free_space, package internal/freespace) below which it refuses
// anonymous log uploads and drops audit lines, so that what the network
// can make it write never takes the room the inventory needs. The store's
// own writes are not refused by the floor: the floor is their headroom.
//
// A stored device record that cannot be read (which a consistent database
// never has) is left as it is and that device's operations are logged and
// dropped, so that one bad record cannot make the whole inventory
// unwritable.
package store
