package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/passhash"
	"github.com/opendus/opendus/signin"
)

// Errors of the service layer; see the package documentation.
var (
	// ErrUnauthenticated is returned when the context carries no
	// principal, or a sign-in fails.
	ErrUnauthenticated = errors.New("sign in required")
	// ErrForbidden is returned when the principal's role does not allow
	// the operation.
	ErrForbidden = errors.New("not allowed")
	// ErrInvalid is returned for a request, or an uploaded bundle, that
	// cannot be accepted as it is; the message says why.
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge is returned when an upload passes a limit.
	ErrTooLarge = errors.New("upload too large")
	// ErrNoRole is returned by an Authenticator for an account that is in
	// neither the admin nor the read-only group.
	ErrNoRole = errors.New("not a member of an admin group")
)

// Role is what a principal may do.
type Role string

// Roles. An admin changes things; a read-only admin may only look; a
// replica follows the catalog (the Replication calls) and may do nothing
// else.
const (
	RoleAdmin    Role = "admin"
	RoleReadOnly Role = "readonly"
	RoleReplica  Role = "replica"
)

// Principal is who asks for an operation.
type Principal struct {
	// Name is the actor the history records: "cert:NAME", "dir:NAME",
	// "web:NAME", or "local:USER" for a command run on the data directory
	// itself while the server is stopped.
	Name string
	Role Role
	// CertSerial is the serial of the admin certificate the principal
	// signed in with (see CertPrincipal); empty for other principals.
	CertSerial string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p, for the operations called with it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.Name != ""
}

// Authenticator signs admins in with a directory account (user name and
// password) and says which role their group membership gives them. It
// returns ErrNoRole for a valid account in neither admin group, and an
// error wrapping ErrBadCredentials when it refuses the name or password;
// any other error means it could not check them. It may also implement
// AccountKey(user string) (key string, ok bool), the sign-in limiter's key
// of the account a user name names, so that console sign-ins count
// against the lockout of the account's other sign-ins (NTLM).
type Authenticator interface {
	AuthenticateAdmin(ctx context.Context, user, password string) (Role, error)
}

// Listener is one address the service listens on, for Status.
type Listener struct{ Name, Address string }

// CertInfo describes one certificate, for Status.
type CertInfo struct {
	Name, Role, Subject string
	Names               []string
	NotAfter            time.Time
	SHA256              string
}

// Config configures a Service. The zero value works with a store alone.
type Config struct {
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
	Version string           // the service's version, for Status
	// SpoolDir is where uploads are kept while they are imported; it
	// should be on the store's file system. Default: the OS temp dir.
	SpoolDir string
	// MaxImportBytes bounds one upload; default 8 GiB.
	MaxImportBytes int64
	// MaxImportFiles bounds the files of one tree upload; default 10,000.
	MaxImportFiles int
	// RPMKeyring, when set, is read at every import (so a new key applies
	// without a restart): RPM bundles must then be signed by one of its
	// keys, and every import is refused while it cannot be read, so a
	// configured signature check never silently turns off. KeyringSetting
	// names it in that refusal.
	RPMKeyring     string
	KeyringSetting string
	Listeners      func() []Listener // for Status
	Certificates   func() []CertInfo // for Status
	Warnings       func() []string   // for Status (certificates near expiry, ...)
	// Directory, if set, signs admins in with a directory account.
	Directory Authenticator
	// Issuer, if set, signs the admin certificates IssueAdminCert
	// issues; without one, issuing is refused.
	Issuer CertIssuer
	// Limiter counts the failed console sign-ins (ConsoleSignIn): give it
	// the limiter of the device sign-ins, so that every sign-in of the
	// service counts against the same lockouts. nil: one of the service's
	// own, with signin's defaults.
	Limiter *signin.Limiter
	// PasswordParams are the argon2id parameters of new console admin
	// passwords; zero: passhash.Default. Hashes keep their own, so a
	// change applies to passwords set from then on.
	PasswordParams passhash.Params
	// MaxConcurrentHashes bounds the password hashes computed at once
	// (each takes PasswordParams.Memory); default GOMAXPROCS.
	MaxConcurrentHashes int
	// Settings, if set, returns the settings the service runs with, for
	// Settings.
	Settings func() []Setting
	// ReplicaOf, when set, says this service is a replica of that primary
	// (its admin address): every change is refused with a message that
	// names it.
	ReplicaOf string
	// Replication configures the primary's side of replicas (see
	// ReplicationConfig); its zero value refuses to add any.
	Replication ReplicationConfig
	// Imported, if set, is told the result of every import an admin may
	// make: ImportStored, ImportUnchanged, ImportRefused or ImportFailed
	// (for metrics).
	Imported func(result string)
	// MinAccountPasswordLength is the fewest characters a device
	// account's new password may have (min_password_length); default
	// DefaultMinAccountPasswordLength. SetMinAccountPasswordLength
	// changes it while the service runs. (Console admins need
	// MinPasswordLength, whatever it is.)
	MinAccountPasswordLength int
}

// The results of an import, as Config.Imported is told.
const (
	ImportStored    = "stored"    // at least one version or file was stored
	ImportUnchanged = "unchanged" // everything was there already
	ImportRefused   = "refused"   // the bundle was refused (ErrInvalid, ErrTooLarge)
	ImportFailed    = "failed"    // the service failed to import it
)

// importSettings are the Config fields SetImportSettings changes.
type importSettings struct {
	maxBytes int64
	keyring  string
}

// DefaultMinAccountPasswordLength is Config.MinAccountPasswordLength's
// default: NIST SP 800-63B's floor for a password whose guesses the
// verifier limits, as the sign-in limiter does, and what users still
// type on a phone.
const DefaultMinAccountPasswordLength = 8

// Service runs the admin operations over a store.
type Service struct {
	cfg     Config
	st      *store.Store
	started time.Time
	limiter *signin.Limiter
	hashes  chan struct{} // a slot per password hash computed now

	dummyOnce sync.Once
	dummy     string // a hash to verify against when there is no account

	repl replication // the primary's view of its replicas (replicas.go)
	imp  atomic.Pointer[importSettings]

	minAccountPassword atomic.Int64 // Config.MinAccountPasswordLength, as set now
}

// New returns the service layer over st.
func New(st *store.Store, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxImportFiles <= 0 {
		cfg.MaxImportFiles = 10000
	}
	if cfg.KeyringSetting == "" {
		cfg.KeyringSetting = "rpm_keyring"
	}
	if cfg.PasswordParams == (passhash.Params{}) {
		cfg.PasswordParams = passhash.Default
	}
	if cfg.MinAccountPasswordLength <= 0 {
		cfg.MinAccountPasswordLength = DefaultMinAccountPasswordLength
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = signin.New(signin.Config{Now: cfg.Now, Logger: cfg.Logger})
	}
	s := &Service{cfg: cfg, st: st, started: cfg.Now(), limiter: lim, hashes: make(chan struct{}, cfg.MaxConcurrentHashes)}
	s.repl.init(cfg.Replication)
	s.minAccountPassword.Store(int64(cfg.MinAccountPasswordLength))
	s.SetImportSettings(cfg.MaxImportBytes, cfg.RPMKeyring)
	return s
}

// SetImportSettings changes Config.MaxImportBytes (zero or less: the
// default) and Config.RPMKeyring for the uploads and imports that start
// from now on.
func (s *Service) SetImportSettings(maxBytes int64, rpmKeyring string) {
	if maxBytes <= 0 {
		maxBytes = 8 << 30
	}
	s.imp.Store(&importSettings{maxBytes: maxBytes, keyring: rpmKeyring})
}

// SetMinAccountPasswordLength sets the fewest characters a device
// account's new password may have, from the next PutAccount on (a reload
// of min_password_length); n <= 0 is DefaultMinAccountPasswordLength.
func (s *Service) SetMinAccountPasswordLength(n int) {
	if n <= 0 {
		n = DefaultMinAccountPasswordLength
	}
	s.minAccountPassword.Store(int64(n))
}

// SignIn signs a directory account in to the admin API with a password
// (devsvc --user), from the address key remote (signin.AddressKey of the
// peer): through the service's sign-in limiter, as the console's and the
// devices' sign-ins, so that a password cannot be guessed faster there.
// The principal is "dir:NAME".
func (s *Service) SignIn(ctx context.Context, remote, user, password string) (Principal, error) {
	if s.cfg.Directory == nil {
		return Principal{}, fmt.Errorf("%w: this server has no directory for password sign-in: use an admin client certificate", ErrUnauthenticated)
	}
	if user == "" || len(user) > 256 || len(password) > MaxPasswordLength {
		s.limiter.Malformed(remote, "admin", user, errors.New("not a valid user name or password"))
		return Principal{}, errSignIn
	}
	att, err := s.limiter.Begin(remote)
	if err != nil {
		return Principal{}, err
	}
	return s.directorySignIn(ctx, att, "admin", remote, user, password)
}

// look returns the principal of ctx, which may look at anything.
func (s *Service) look(ctx context.Context) (Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return Principal{}, fmt.Errorf("%w: present an admin client certificate or sign in", ErrUnauthenticated)
	}
	switch p.Role {
	case RoleAdmin, RoleReadOnly:
		return p, nil
	case RoleReplica:
		return Principal{}, fmt.Errorf("%w: %s is a replica's certificate: it follows the catalog and calls nothing else; use an admin certificate", ErrForbidden, p.Name)
	}
	return Principal{}, fmt.Errorf("%w: %s has no admin role", ErrForbidden, p.Name)
}

// change returns the principal of ctx if it may change things; what says
// what it asked for, for the refusal. A replica changes nothing: its
// catalog is its primary's.
func (s *Service) change(ctx context.Context, what string) (Principal, error) {
	p, err := s.admin(ctx, what)
	if err != nil {
		return p, err
	}
	if s.cfg.ReplicaOf != "" {
		return Principal{}, fmt.Errorf("%w: this server is a replica of %s, which it follows: %s there (devsvc --server %s ..., or its console); this one changes only what the primary sends it",
			store.ErrFollower, s.cfg.ReplicaOf, what, s.cfg.ReplicaOf)
	}
	return p, nil
}

// admin returns the principal of ctx if it has the admin role.
func (s *Service) admin(ctx context.Context, what string) (Principal, error) {
	p, err := s.look(ctx)
	if err != nil {
		return p, err
	}
	if p.Role != RoleAdmin {
		return Principal{}, fmt.Errorf("%w: %s has the read-only role and cannot %s: ask an admin", ErrForbidden, p.Name, what)
	}
	return p, nil
}

// invalidError is an error that is ErrInvalid and reads as its cause.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// invalid marks err as ErrInvalid without changing its message.
func invalid(err error) error { return invalidError{err} }
