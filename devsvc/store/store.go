package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/opendus/opendus/firmware"
)

// Sentinel errors. Errors the store returns wrap them with context that
// names what was involved; check them with errors.Is.
var (
	// ErrNotFound is returned when a rule, update, file, test device,
	// account or device does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when a test device being added is one already.
	ErrExists = errors.New("already exists")
	// ErrBusy is returned by RecordCheckIn and Report when the inventory
	// queue is full; the device should retry later (HTTP 503, Retry-After).
	ErrBusy = errors.New("inventory queue full")
	// ErrUnavailable is returned by RecordCheckIn and Report while the
	// inventory cannot be written (the disk is full, say), and by Flush
	// when it still cannot: the check-ins and reports accepted before are
	// kept and retried, and nothing more is accepted until a write
	// succeeds. The device should retry later (HTTP 503, Retry-After);
	// InventoryHealth says since when and why.
	ErrUnavailable = errors.New("the inventory cannot be written")
	// ErrConflict is returned by Import when a version already stored is
	// imported again with different content: a version's files never
	// change, because CDNs and devices cache them forever.
	ErrConflict = errors.New("version already stored with different content")
	// ErrIntegrity is returned by Import when a file's content does not
	// have the size or SHA-256 the import said it has.
	ErrIntegrity = errors.New("content does not match its expected size or SHA-256")
	// ErrNotCheckedIn is returned by Report for a device the inventory
	// does not hold and has no check-in queued for: reports come only
	// from devices that checked in (HTTP 409).
	ErrNotCheckedIn = errors.New("the device has not checked in")
	// ErrNotOffered is returned by Report when the target version is
	// neither the version the device runs nor the one it was last
	// offered (HTTP 409).
	ErrNotOffered = errors.New("the version is neither the one the device runs nor the one it was offered")
	// ErrClosed is returned when the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrSchema is returned by Open when the database was written by a newer
	// program, with a schema version this one does not know.
	ErrSchema = errors.New("unsupported database schema")
	// ErrRevoked is returned by RevokeAdminCert for a certificate revoked
	// already.
	ErrRevoked = errors.New("revoked already")
	// ErrFollower is returned by a change of the catalog (rules, updates,
	// test devices, accounts, sites, rollouts, alarms) on a replica's
	// store: its catalog changes only by what its primary sends
	// (ApplyChanges, ApplySnapshot).
	ErrFollower = errors.New("this is a replica's store")
	// ErrRolloutLive is returned when a change of a rule would break the
	// rollout running on it (an import of another version, approve,
	// withdraw, a second rollout): the message names the rollout and says
	// how to stop it first.
	ErrRolloutLive = errors.New("a rollout is live")
)

// SchemaVersion is the database schema this package writes. Open upgrades
// older databases (see migrate) and refuses newer ones with ErrSchema.
const SchemaVersion = 3

// Names in the data directory: the database and the file store.
const (
	DBFile   = "opendus.db"
	FilesDir = "DeviceUpdateFiles"

	dbName   = DBFile
	filesDir = FilesDir
)

// Buckets. Every record is JSON, keyed as noted.
var (
	bucketMeta        = []byte("meta")        // "schema" -> decimal schema version
	bucketRules       = []byte("rules")       // identity path -> firmware.Rule
	bucketUpdates     = []byte("updates")     // identity path "/" version -> updateRecord
	bucketTestDevices = []byte("testdevices") // device key -> firmware.TestDevice
	bucketAccounts    = []byte("accounts")    // lower-case name -> accountRecord
	bucketDevices     = []byte("devices")     // device key -> firmware.Device
	bucketHistory     = []byte("history")     // 8-byte big-endian seq -> firmware.Event; its sequence is the history number
	bucketAdminCerts  = []byte("admincerts")  // serial (lower-case hex) -> firmware.AdminCert
	// bucketConsoleAdmins: lower-case name -> consoleAdminRecord
	bucketConsoleAdmins = []byte("consoleadmins")
	bucketSites         = []byte("sites")    // name -> firmware.Site
	bucketRollouts      = []byte("rollouts") // rule ID -> rolloutRecord
	bucketAlarms        = []byte("alarms")   // alarm ID -> firmware.Alarm
	// bucketMetadata: the signed update metadata (metadata.go)
	bucketMetadata = []byte("metadata")
	allBuckets     = [][]byte{bucketMeta, bucketRules, bucketUpdates, bucketTestDevices, bucketAccounts, bucketDevices, bucketHistory, bucketAdminCerts,
		bucketConsoleAdmins, bucketSites, bucketRollouts, bucketAlarms, bucketFeed, bucketReplicas, bucketOutbox, bucketMetadata}
	keySchema = []byte("schema")
)

// Event actions recorded in the history.
const (
	ActionImport           = "import"
	ActionApprove          = "approve"
	ActionReject           = "reject"
	ActionRestore          = "restore"
	ActionWithdraw         = "withdraw"
	ActionRemove           = "remove"
	ActionPurge            = "purge"
	ActionTestDeviceAdd    = "testdevice-add"
	ActionTestDeviceRemove = "testdevice-remove"
	ActionAccountCreate    = "account-create"
	ActionAccountUpdate    = "account-update"
	ActionAccountDisable   = "account-disable"
	ActionAccountEnable    = "account-enable"
	ActionAccountRemove    = "account-remove"
	ActionSiteAdd          = "site-add"
	ActionSiteUpdate       = "site-update"
	ActionSiteRemove       = "site-remove"
	ActionAlarmRaise       = "alarm-raise"
	ActionAlarmClear       = "alarm-clear"
	ActionMetadataSign     = "metadata-sign"
	// A rollout's events are recorded as "rollout-" and their kind:
	// rollout-scheduled, rollout-started, rollout-wave, rollout-paused,
	// rollout-resumed, rollout-completed, rollout-stopped and
	// rollout-rolled-back (see firmware.RolloutEventKind).
	ActionRolloutPrefix = "rollout-"
)

// Options configures a Store. The zero value (or nil) is sensible.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives crash-cleanup notes and the inventory's state
	// changes (cannot be written, written again, lost at Close); nil
	// discards them.
	Logger *slog.Logger
	// FlushInterval bounds how long a batched inventory write waits before
	// it is committed and fsynced; default 200ms (durable within 1 s).
	FlushInterval time.Duration
	// QueueSize bounds the inventory queue; default 65536. When it is full,
	// RecordCheckIn and Report return ErrBusy.
	QueueSize int
	// DeployRoundTable says whether RoundTable imports are approved at once
	// (see firmware.DeploysOnImport); nil means true.
	DeployRoundTable *bool
	// FeedKeep is how many history numbers of changes the change feed
	// keeps for replicas (see "Change feed"); default DefaultFeedKeep.
	FeedKeep uint64
	// Retry is how devices' failed and silent attempts are judged, for
	// rollout progress, device states and the thresholds (the zero value
	// is firmware's default policy). The check-in decision must use the
	// same (RetryPolicy).
	Retry firmware.RetryPolicy
	// LoadZone loads a site's time zone; nil means time.LoadLocation. A
	// site whose zone does not load is refused; a stored site whose zone
	// no longer loads (a system without its zone database) is read in
	// UTC, and the store logs it.
	LoadZone func(name string) (*time.Location, error)
	// ObserveCommit, if set, is told how long each write transaction
	// took, fsync included, failed ones too: kind is CommitInventory for
	// a batch of check-ins and reports, CommitCatalog for a catalog
	// change (for metrics). It runs on the writer: it must be quick.
	ObserveCommit func(kind string, took time.Duration)

	// testHookWrite, set by this package's tests only, runs in every
	// inventory transaction; its error fails the commit as a full disk
	// would.
	testHookWrite func() error
	// testHookRemoveFiles, set by this package's tests only, runs when a
	// Remove or Purge has committed and is about to delete files.
	testHookRemoveFiles func()
}

// The kinds of write transaction Options.ObserveCommit is told of.
const (
	CommitInventory = "inventory"
	CommitCatalog   = "catalog"
)

// Defaults of Options.
const (
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultQueueSize     = 65536
)

// Store is an open data directory. Its methods are safe for concurrent use.
type Store struct {
	dir              string
	db               *bolt.DB
	root             *os.Root // dir/DeviceUpdateFiles
	now              func() time.Time
	log              *slog.Logger
	deployRoundTable bool

	cat   atomic.Pointer[Catalog]
	fleet *fleet
	retry firmware.RetryPolicy
	// loadZone is Options.LoadZone; zones caches what it loaded.
	loadZone func(string) (*time.Location, error)
	zmu      sync.Mutex
	zones    map[string]*time.Location
	badZones map[string]bool // logged once
	// fileMu serializes the catalog changes that add or delete update
	// records and their files (Import, Remove, Purge), so that what an
	// import saw stored stays so until its transaction commits.
	fileMu sync.Mutex
	// removeMu keeps the files of recorded updates while a backup copies
	// them: Backup holds it for reading, removeUpdateFiles for writing.
	removeMu      sync.RWMutex
	inv           *inventory
	testHookWrite func() error // Options.testHookWrite
	observeCommit func(kind string, took time.Duration)
	// testHookRemoveFiles is Options.testHookRemoveFiles.
	testHookRemoveFiles func()

	// The change feed and replication (feed.go, replica.go).
	feedKeep uint64
	changed  notifier      // woken by every publication
	closing  chan struct{} // closed by Close
	// replicaOf is, on a replica's store, the primary it follows: its
	// catalog then changes only by ApplyChanges and ApplySnapshot.
	replicaOf string
	// fwdMu serializes ApplyForwarded and guards fwdQueued: per replica,
	// the last forwarded item queued for the inventory writer (committed
	// or not).
	fwdMu     sync.Mutex
	fwdQueued map[string]fwdMark

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens the data directory dir, creating what is missing: the database
// dir/opendus.db and the file store dir/DeviceUpdateFiles. It upgrades an
// older schema, refuses a newer one (ErrSchema), and removes what a crash
// left behind: temporary files and files of updates never recorded.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Store{dir: dir, now: o.Now, log: o.Logger, deployRoundTable: true, testHookWrite: o.testHookWrite,
		retry: o.Retry, loadZone: o.LoadZone, zones: map[string]*time.Location{}, badZones: map[string]bool{}, fleet: newFleet(), observeCommit: o.ObserveCommit,
		testHookRemoveFiles: o.testHookRemoveFiles, feedKeep: o.FeedKeep, closing: make(chan struct{})}
	if s.feedKeep == 0 {
		s.feedKeep = DefaultFeedKeep
	}
	if s.loadZone == nil {
		s.loadZone = time.LoadLocation
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.DeployRoundTable != nil {
		s.deployRoundTable = *o.DeployRoundTable
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}

	if err := os.MkdirAll(filepath.Join(dir, filesDir), 0o750); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	root, err := os.OpenRoot(filepath.Join(dir, filesDir))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	dbPath := filepath.Join(dir, dbName)
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		root.Close()
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: %w (is another opendus process using this data directory?)", dbPath, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", dbPath, err)
	}
	s.db, s.root = db, root
	fail := func(err error) (*Store, error) {
		db.Close()
		root.Close()
		return nil, err
	}
	if err := db.Update(s.initSchema); err != nil {
		return fail(fmt.Errorf("store: open %s: %w", dbPath, err))
	}
	if err := s.cleanFiles(); err != nil {
		return fail(fmt.Errorf("store: open %s: cleaning the file store: %w", dir, err))
	}
	var cat *Catalog
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		if cat, err = loadCatalog(tx, s.storedZone); err != nil {
			return err
		}
		return s.loadFleet(tx)
	}); err != nil {
		return fail(fmt.Errorf("store: open %s: %w", dbPath, err))
	}
	s.cat.Store(cat)
	if err := db.View(func(tx *bolt.Tx) error { s.replicaOf = replicaOf(tx); return nil }); err != nil {
		return fail(fmt.Errorf("store: open %s: %w", dbPath, err))
	}
	s.inv = newInventory(o.QueueSize, o.FlushInterval)
	go s.writeInventory()
	return s, nil
}

// initSchema creates the buckets of a new database, upgrades an older one
// and refuses a newer one.
func (s *Store) initSchema(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	version := SchemaVersion
	if v := meta.Get(keySchema); v != nil {
		if version, err = strconv.Atoi(string(v)); err != nil {
			return fmt.Errorf("%w: schema version %q is not a number", ErrSchema, v)
		}
	}
	if version > SchemaVersion {
		return fmt.Errorf("%w: the database has schema version %d, this program knows versions up to %d; run a newer opendus, or restore a backup made by this version", ErrSchema, version, SchemaVersion)
	}
	if version < 1 {
		return fmt.Errorf("%w: schema version %d", ErrSchema, version)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	for ; version < SchemaVersion; version++ {
		if err := migrate(tx, version); err != nil {
			return fmt.Errorf("migrating schema %d to %d: %w", version, version+1, err)
		}
	}
	if err := initFeed(tx); err != nil {
		return fmt.Errorf("the change feed: %w", err)
	}
	return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
}

// migrate upgrades the database from schema version from to from+1, inside
// Open's transaction. Schema 1 is the first; each later schema adds a case.
func migrate(tx *bolt.Tx, from int) error {
	switch from {
	case 1:
		// Schema 2: device records in the binary form of appendDevice
		// instead of JSON.
		return migrateDevicesToBinary(tx.Bucket(bucketDevices))
	case 2:
		// Schema 3: device records with their attempt, history, site and
		// hold (devRecV2); scheduled approvals become scheduled one-wave
		// rollouts, which the rollout engine starts.
		if err := migrateDevicesToV2(tx.Bucket(bucketDevices)); err != nil {
			return err
		}
		return migrateScheduledApprovals(tx)
	default:
		return fmt.Errorf("%w: no migration from schema version %d", ErrSchema, from)
	}
}

// Close flushes the inventory queue, waits for a running import to end and
// closes the database. When the inventory cannot be written even then, the
// check-ins and reports it held are lost: Close logs them and returns an
// error wrapping ErrUnavailable that counts them. Calling it again returns
// the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		lost := s.inv.stop()
		s.fileMu.Lock()
		defer s.fileMu.Unlock()
		s.closeErr = errors.Join(lost, s.db.Close(), s.root.Close())
	})
	return s.closeErr
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return closedErr(s.db.View(fn))
}

// closedErr maps bolt's "database not open" to ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// change is one catalog transaction: the changes and their history events.
type change struct {
	tx     *bolt.Tx
	now    time.Time
	actor  string
	events int
	// replica is set on a replica's store, whose history is the
	// primary's; s logs its local events.
	replica bool
	s       *Store
}

// event appends e to the history with the next number. On a replica's
// store, whose history is the primary's, a local change (its own registry
// of admin certificates) is logged instead.
func (c *change) event(e firmware.Event) error {
	if c.replica {
		c.s.log.Info("store: local change on a replica (its history is the primary's)", "action", e.Action, "subject", e.Subject, "detail", e.Detail, "actor", c.actor)
		return nil
	}
	h := c.tx.Bucket(bucketHistory)
	seq, err := h.NextSequence()
	if err != nil {
		return err
	}
	e.Seq, e.Time, e.Actor = seq, c.now, c.actor
	c.events++
	return putJSON(h, seqKey(seq), e)
}

// change runs fn in a write transaction and, if it recorded events,
// publishes the catalog snapshot the transaction leaves once it committed.
func (s *Store) change(ctx context.Context, actor string, fn func(c *change) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	var cat *Catalog
	defer s.observe(CommitCatalog, time.Now())
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := &change{tx: tx, now: s.now().UTC(), actor: actor, replica: s.replicaOf != "", s: s}
		before := snapshotReplicated(tx)
		if err := fn(c); err != nil {
			return err
		}
		if c.replica {
			// Only what is the replica's own may change here.
			if d := before.diff(tx); len(d) > 0 {
				return fmt.Errorf("store: %w: its catalog changes only by what %s sends; make the change there (it would have changed %s %q)", ErrFollower, s.replicaOf, d[0].Bucket, d[0].Key)
			}
			return nil
		}
		if c.events == 0 {
			return carryFeed(tx, before)
		}
		if err := s.recordFeed(tx, before); err != nil {
			return fmt.Errorf("the change feed: %w", err)
		}
		var err error
		cat, err = loadCatalog(tx, s.storedZone)
		return err
	})
	if err != nil {
		return closedErr(err)
	}
	if cat != nil {
		s.publish(cat)
	}
	return nil
}

// observe tells Options.ObserveCommit how long a write transaction of
// kind begun at start took.
func (s *Store) observe(kind string, start time.Time) {
	if s.observeCommit != nil {
		s.observeCommit(kind, time.Since(start))
	}
}

// publish installs cat as the snapshot unless a newer one is installed:
// commits are serialized, but their publications may race.
func (s *Store) publish(cat *Catalog) {
	for {
		old := s.cat.Load()
		if old != nil && old.seq >= cat.seq {
			return
		}
		if s.cat.CompareAndSwap(old, cat) {
			s.changed.wake()
			return
		}
	}
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// getJSON decodes the record at key into v; ok is false when there is none.
func getJSON(b *bolt.Bucket, key []byte, v any) (ok bool, err error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("record %q: %w", key, err)
	}
	return true, nil
}

// zone loads a time zone through Options.LoadZone, once per name.
func (s *Store) zone(name string) (*time.Location, error) {
	s.zmu.Lock()
	defer s.zmu.Unlock()
	if loc, ok := s.zones[name]; ok {
		return loc, nil
	}
	loc, err := s.loadZone(name)
	if err != nil {
		return nil, err
	}
	s.zones[name] = loc
	return loc, nil
}

// storedZone is zone for the sites the store holds, which were checked
// when they were put: a zone that no longer loads is read in UTC, and
// logged once.
func (s *Store) storedZone(name string) (*time.Location, error) {
	loc, err := s.zone(name)
	if err == nil {
		return loc, nil
	}
	s.zmu.Lock()
	first := !s.badZones[name]
	s.badZones[name] = true
	s.zmu.Unlock()
	if first {
		s.log.Error("store: a site's time zone cannot be loaded: its windows are read in UTC; install the system's zone database (tzdata), or run a devsvc built with time/tzdata", "zone", name, "err", err)
	}
	return time.UTC, nil
}
