package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/opendus/opendus/firmware"
)

// Sentinel errors. Every error the store returns wraps at most one of them,
// with context that names what was involved.
var (
	// ErrNotFound is returned when a rule, update, file, test device,
	// account or device does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when a test device being added is already one.
	ErrExists = errors.New("already exists")
	// ErrBusy is returned by RecordCheckIn and Report when the inventory
	// queue is full; the device should retry later.
	ErrBusy = errors.New("inventory queue full")
	// ErrConflict is returned by Import when a version already stored is
	// imported again with different content: a version's files never change.
	ErrConflict = errors.New("version already stored with different content")
	// ErrClosed is returned when the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrSchema is returned by Open when the database was written by a newer
	// program (a schema version this one does not know).
	ErrSchema = errors.New("unsupported database schema")
)

// Options configures a Store. The zero value (or nil) is sensible.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives crash-cleanup notes and inventory write failures; nil
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
}

// Store is an open data directory. Its methods are safe for concurrent use.
type Store struct {
	dir string
}

// Open opens (creating what is missing) the data directory dir: the
// database dir/opendus.db and the file store dir/DeviceUpdateFiles. It
// removes what a crash left behind: temporary files and files of updates
// that were never recorded.
func Open(dir string, opts *Options) (*Store, error) {
	return nil, errors.ErrUnsupported
}

// Close flushes the inventory queue and closes the database.
func (s *Store) Close() error { return nil }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Catalog is an immutable in-memory view of the catalog (rules, updates,
// test devices) as of one history number. The store replaces it atomically
// after every catalog commit; the check-in hot path reads it without locks.
type Catalog struct {
	seq uint64
}

// Catalog returns the current snapshot.
func (s *Store) Catalog() *Catalog { return &Catalog{} }

// Rule returns the rule for id.
func (c *Catalog) Rule(id firmware.Identity) (firmware.Rule, bool) { return firmware.Rule{}, false }

// Rules returns every rule, sorted by identity path.
func (c *Catalog) Rules() []firmware.Rule { return nil }

// Update returns the committed update of id at version v.
func (c *Catalog) Update(id firmware.Identity, v firmware.Version) (firmware.Update, bool) {
	return firmware.Update{}, false
}

// IsTestDevice reports whether the device with this MAC or serial is a test
// device.
func (c *Catalog) IsTestDevice(mac, serial string) bool { return false }

// Seq returns the history number the snapshot reflects.
func (c *Catalog) Seq() uint64 { return c.seq }

// Rule returns the rule named by ref, a rule ID or an identity path.
func (s *Store) Rule(ctx context.Context, ref string) (firmware.Rule, error) {
	return firmware.Rule{}, errors.ErrUnsupported
}

// Updates returns every stored update.
func (s *Store) Updates(ctx context.Context) ([]firmware.Update, error) {
	return nil, errors.ErrUnsupported
}

// ImportFile is one file of an update to import.
type ImportFile struct {
	Name string
	Role firmware.Role
	// Size is the expected size, -1 when unknown.
	Size int64
	// SHA256 is the expected digest, nil when unknown; verified when given.
	SHA256 *[32]byte
	// Open returns the content.
	Open func() (io.ReadCloser, error)
}

// ImportUpdate is one update of a bundle to import.
type ImportUpdate struct {
	Identity   firmware.Identity
	Version    firmware.Version
	UpdateType string
	Files      []ImportFile
}

// ImportOptions tunes an import.
type ImportOptions struct {
	// Progress, when set, is called at least every few MB with the bytes
	// done and the sum of the known sizes.
	Progress func(doneBytes, totalBytes int64)
}

// ImportResult says what an import did to one update.
type ImportResult struct {
	Rule      firmware.Rule
	Update    firmware.Update
	Deployed  bool
	Unchanged bool
}

// Import stores a bundle of updates atomically.
func (s *Store) Import(ctx context.Context, actor string, updates []ImportUpdate, opts ImportOptions) ([]ImportResult, error) {
	return nil, errors.ErrUnsupported
}

// Approve approves the pending version of the rule named by ref.
func (s *Store) Approve(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return firmware.Rule{}, errors.ErrUnsupported
}

// Reject drops the pending version of the rule named by ref.
func (s *Store) Reject(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return firmware.Rule{}, errors.ErrUnsupported
}

// Restore rolls the rule named by ref back.
func (s *Store) Restore(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return firmware.Rule{}, errors.ErrUnsupported
}

// Remove deletes the rule named by ref with its updates.
func (s *Store) Remove(ctx context.Context, actor, ref string) (firmware.Rule, error) {
	return firmware.Rule{}, errors.ErrUnsupported
}

// Purge deletes the updates no rule version refers to.
func (s *Store) Purge(ctx context.Context, actor string) (removed []firmware.Update, err error) {
	return nil, errors.ErrUnsupported
}

// OpenFile opens a stored file read-only.
func (s *Store) OpenFile(id firmware.Identity, v firmware.Version, name string) (*os.File, firmware.Image, error) {
	return nil, firmware.Image{}, errors.ErrUnsupported
}

// AddTestDevice adds a test device.
func (s *Store) AddTestDevice(ctx context.Context, actor string, d firmware.TestDevice) error {
	return errors.ErrUnsupported
}

// RemoveTestDevice removes a test device.
func (s *Store) RemoveTestDevice(ctx context.Context, actor, macOrSerial string) error {
	return errors.ErrUnsupported
}

// TestDevices lists the test devices.
func (s *Store) TestDevices(ctx context.Context) ([]firmware.TestDevice, error) {
	return nil, errors.ErrUnsupported
}

// PutAccount creates or replaces an account.
func (s *Store) PutAccount(ctx context.Context, actor string, a firmware.Account) error {
	return errors.ErrUnsupported
}

// Account returns the account named name, case-insensitively.
func (s *Store) Account(ctx context.Context, name string) (firmware.Account, error) {
	return firmware.Account{}, errors.ErrUnsupported
}

// Accounts lists the accounts.
func (s *Store) Accounts(ctx context.Context) ([]firmware.Account, error) {
	return nil, errors.ErrUnsupported
}

// SetAccountDisabled disables or enables an account.
func (s *Store) SetAccountDisabled(ctx context.Context, actor, name string, disabled bool) error {
	return errors.ErrUnsupported
}

// RemoveAccount deletes an account.
func (s *Store) RemoveAccount(ctx context.Context, actor, name string) error {
	return errors.ErrUnsupported
}

// RecordCheckIn enqueues a device's check-in.
func (s *Store) RecordCheckIn(ctx context.Context, d firmware.Device) error {
	return errors.ErrUnsupported
}

// Report is a device's report of its progress in an update.
type Report struct {
	Key    string
	State  firmware.State
	Target firmware.Version
	Error  string
	Time   time.Time
}

// Report enqueues a device's report.
func (s *Store) Report(ctx context.Context, r Report) error { return errors.ErrUnsupported }

// Flush waits until everything enqueued before the call is durable.
func (s *Store) Flush(ctx context.Context) error { return errors.ErrUnsupported }

// Devices lists the inventory.
func (s *Store) Devices(ctx context.Context) ([]firmware.Device, error) {
	return nil, errors.ErrUnsupported
}

// Device returns one device's record.
func (s *Store) Device(ctx context.Context, key string) (firmware.Device, error) {
	return firmware.Device{}, errors.ErrUnsupported
}

// History returns the events numbered above since, ascending.
func (s *Store) History(ctx context.Context, since uint64, limit int) ([]firmware.Event, error) {
	return nil, errors.ErrUnsupported
}

// Backup writes a consistent copy of the database to w.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return 0, errors.ErrUnsupported
}

// Stats counts what the store holds.
type Stats struct {
	Rules, Updates, Devices, TestDevices, Accounts int
	Seq                                            uint64
	SchemaVersion                                  int
	DBBytes                                        int64
}

// Stats returns counts of what the store holds.
func (s *Store) Stats(ctx context.Context) (Stats, error) { return Stats{}, errors.ErrUnsupported }
