package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/passhash"
	"github.com/opendus/opendus/signin"
)

// Bounds of a console admin's password. The minimum is NIST SP 800-63B-4's
// for a password that is the only factor (15 characters); the maximum
// bounds what a sign-in hashes.
const (
	MinPasswordLength = 15
	MaxPasswordLength = 1024
)

// ErrBadCredentials is what an Authenticator returns (wrapped) when it
// refuses the user name or the password; any other error means it could
// not check them (the directory is unreachable).
var ErrBadCredentials = errors.New("wrong user name or password")

// accountKeyer is what an Authenticator may implement to name the sign-in
// limiter's key of a user name as typed, so that the console's lockout of
// a directory account is the one its NTLM sign-ins count against.
type accountKeyer interface {
	AccountKey(user string) (key string, ok bool)
}

func checkPassword(name, password string) error {
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLength:
		return fmt.Errorf("%w: the password of %s has %d characters: use at least %d (a passphrase of a few words is easiest)", ErrInvalid, name, n, MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("%w: the password of %s is longer than %d bytes", ErrInvalid, name, MaxPasswordLength)
	}
	return nil
}

// hash hashes password, at most as many at once as the service allows.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer s.releaseHash()
	return passhash.Hash(password, s.cfg.PasswordParams)
}

// verify checks password against encoded, at most as many at once as the
// service allows. A malformed stored hash is logged and verifies nothing.
func (s *Service) verify(ctx context.Context, who, encoded, password string) (bool, error) {
	if err := s.acquireHash(ctx); err != nil {
		return false, err
	}
	defer s.releaseHash()
	ok, err := passhash.Verify(encoded, password)
	if err != nil {
		s.cfg.Logger.Error("console admin: the stored password hash cannot be read; set a new password (devsvc admins passwd)", "user", who, "err", err)
		return false, nil
	}
	return ok, nil
}

func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashes }

// dummyVerify spends the time of a verification, so that a refusal of an
// unknown or locked account takes as long as a wrong password.
func (s *Service) dummyVerify(ctx context.Context, password string) {
	s.dummyOnce.Do(func() { s.dummy, _ = passhash.Hash("opendus dummy password", s.cfg.PasswordParams) })
	s.verify(ctx, "", s.dummy, password)
}

func validRole(role Role) error {
	if role != RoleAdmin && role != RoleReadOnly {
		return fmt.Errorf("%w: role %q: want %s or %s", ErrInvalid, role, RoleAdmin, RoleReadOnly)
	}
	return nil
}

// AddConsoleAdmin adds an account for the web console, with role and
// password; only the password's argon2id hash is stored. Adding one that
// is there already, enabled, with the same role and password, returns it
// as it is, nothing changed or recorded (adds are idempotent); another of
// that name is store.ErrExists, saying what differs.
func (s *Service) AddConsoleAdmin(ctx context.Context, name string, role Role, password string) (firmware.ConsoleAdmin, error) {
	p, err := s.change(ctx, "manage console admins")
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if err := firmware.ValidAccountName(name); err != nil {
		return firmware.ConsoleAdmin{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := validRole(role); err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if err := checkPassword(name, password); err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if old, err := s.st.ConsoleAdmin(ctx, name); err == nil {
		ok, err := s.verify(ctx, old.Name, old.PasswordHash, password)
		switch {
		case err != nil:
			return firmware.ConsoleAdmin{}, err
		case !ok:
			return firmware.ConsoleAdmin{}, fmt.Errorf("console admin %q %w with another password: to set this one use admins passwd %s", old.Name, store.ErrExists, old.Name)
		case old.Role != string(role):
			return firmware.ConsoleAdmin{}, fmt.Errorf("console admin %q %w with the role %s: to change its role, remove it and add it again", old.Name, store.ErrExists, old.Role)
		case old.Disabled:
			return firmware.ConsoleAdmin{}, fmt.Errorf("console admin %q %w, disabled: enable it with admins enable %s", old.Name, store.ErrExists, old.Name)
		}
		return s.consoleAdmin(ctx, old.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return firmware.ConsoleAdmin{}, err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if err := s.st.PutConsoleAdmin(ctx, p.Name, firmware.ConsoleAdmin{Name: name, Role: string(role), PasswordHash: h}, false); err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	s.cfg.Logger.Info("console admin added", "user", name, "role", role, "actor", p.Name)
	return s.consoleAdmin(ctx, name)
}

// SetConsoleAdminPassword sets a new password for a console admin, who
// keeps its role.
func (s *Service) SetConsoleAdminPassword(ctx context.Context, name, password string) (firmware.ConsoleAdmin, error) {
	p, err := s.change(ctx, "manage console admins")
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if err := checkPassword(name, password); err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	old, err := s.st.ConsoleAdmin(ctx, name)
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	if err := s.st.PutConsoleAdmin(ctx, p.Name, firmware.ConsoleAdmin{Name: old.Name, Role: old.Role, PasswordHash: h}, true); err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	return s.consoleAdmin(ctx, name)
}

// consoleAdmin returns the record without its hash.
func (s *Service) consoleAdmin(ctx context.Context, name string) (firmware.ConsoleAdmin, error) {
	a, err := s.st.ConsoleAdmin(ctx, name)
	a.PasswordHash = ""
	return a, err
}

// ConsoleAdmins lists the console admins, without their hashes.
func (s *Service) ConsoleAdmins(ctx context.Context) ([]firmware.ConsoleAdmin, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, err
	}
	as, err := s.st.ConsoleAdmins(ctx)
	for i := range as {
		as[i].PasswordHash = ""
	}
	return as, err
}

// SetConsoleAdminDisabled disables or enables a console admin. A disabled
// admin cannot sign in, and its open console sessions end at their next
// request (see ConsolePrincipal).
func (s *Service) SetConsoleAdminDisabled(ctx context.Context, name string, disabled bool) (firmware.ConsoleAdmin, error) {
	p, err := s.change(ctx, "manage console admins")
	if err != nil {
		return firmware.ConsoleAdmin{}, err
	}
	a, err := s.st.SetConsoleAdminDisabled(ctx, p.Name, name, disabled)
	a.PasswordHash = ""
	return a, err
}

// RemoveConsoleAdmin removes a console admin; its open console sessions
// end at their next request.
func (s *Service) RemoveConsoleAdmin(ctx context.Context, name string) error {
	p, err := s.change(ctx, "manage console admins")
	if err != nil {
		return err
	}
	return s.st.RemoveConsoleAdmin(ctx, p.Name, name)
}

// errSignIn is the one answer to a refused console sign-in, whatever the
// reason (unknown name, wrong password, disabled, locked), so that it
// tells a guesser nothing; the log says which.
var errSignIn = fmt.Errorf("%w: wrong user name or password, or the account is disabled or locked after too many wrong passwords (signin_max_failures; it unlocks after signin_lockout): try again, or ask another admin", ErrUnauthenticated)

// ConsoleSignIn signs a user in to the web console with a password, from
// the address key remote (signin.Limiter.ClientAddress): a console admin
// of that name ("web:NAME"), else, when the service has a directory, a
// directory account in the admin or read-only group ("dir:NAME"). It goes
// through the service's sign-in limiter, the one the device sign-ins use:
// wrong passwords count against the account (Config.Limiter's MaxFailures
// of them lock it, and only it, for its Lockout, right password or not)
// and every refusal against the address, which is slowed, never locked;
// a slowed address that has too many refusals pending is refused at once
// with an error wrapping signin.ErrBusy. A refusal says the same whatever
// its reason, and takes as long as a wrong password.
func (s *Service) ConsoleSignIn(ctx context.Context, remote, user, password string) (Principal, error) {
	user = strings.TrimSpace(user)
	if firmware.ValidAccountName(user) != nil && (s.cfg.Directory == nil || user == "" || len(user) > 256) {
		s.limiter.Malformed(remote, "console", user, errors.New("not a valid user name"))
		return Principal{}, errSignIn
	}
	att, err := s.limiter.Begin(remote)
	if err != nil {
		return Principal{}, err
	}
	fail := func(account string, wrong bool, reason error) (Principal, error) {
		att.Fail(ctx, signin.Failure{Via: "console", User: user, Account: account, WrongPassword: wrong, Reason: reason})
		return Principal{}, errSignIn
	}
	if len(password) > MaxPasswordLength {
		return fail("", false, errors.New("password too long"))
	}
	rec, err := s.st.ConsoleAdmin(ctx, user)
	switch {
	case err == nil:
		account := signin.AccountKey("web", rec.Name)
		if att.Locked(account) {
			s.dummyVerify(ctx, password)
			return fail(account, false, signin.ErrLockedOut)
		}
		ok, err := s.verify(ctx, rec.Name, rec.PasswordHash, password)
		if err != nil {
			att.Abandon()
			return Principal{}, err
		}
		if !ok {
			return fail(account, true, errors.New("wrong password"))
		}
		if rec.Disabled {
			return fail(account, false, errors.New("account disabled"))
		}
		att.Succeed(account)
		s.cfg.Logger.Info("console sign-in", "user", rec.Name, "role", rec.Role, "remote", remote)
		return Principal{Name: "web:" + rec.Name, Role: Role(rec.Role)}, nil
	case !errors.Is(err, store.ErrNotFound):
		att.Abandon()
		return Principal{}, err
	case s.cfg.Directory == nil:
		s.dummyVerify(ctx, password)
		return fail("", false, errors.New("no console admin of that name"))
	}
	return s.directorySignIn(ctx, att, "console", remote, user, password)
}

// directorySignIn checks a directory account's password for a sign-in
// (via: console or admin) that att, the limiter's attempt of its
// address, counts: a locked account is refused without asking the
// directory, a wrong password counts against the account, a right one
// outside the admin groups only against the address.
func (s *Service) directorySignIn(ctx context.Context, att *signin.Attempt, via, remote, user, password string) (Principal, error) {
	fail := func(account string, wrong bool, reason error) (Principal, error) {
		att.Fail(ctx, signin.Failure{Via: via, User: user, Account: account, WrongPassword: wrong, Reason: reason})
		return Principal{}, errSignIn
	}
	account := signin.AccountKey("dir", user)
	if k, ok := s.cfg.Directory.(accountKeyer); ok {
		account, ok = k.AccountKey(user)
		if !ok {
			return fail("", false, errors.New("not a plausible directory user name"))
		}
	}
	if att.Locked(account) {
		return fail(account, false, signin.ErrLockedOut)
	}
	role, err := s.cfg.Directory.AuthenticateAdmin(ctx, user, password)
	switch {
	case errors.Is(err, ErrNoRole):
		// The password was right: nothing counts against the account.
		att.Fail(ctx, signin.Failure{Via: via, User: user, Account: account, Reason: err})
		return Principal{}, fmt.Errorf("%w: %s is in neither the admin nor the read-only admin group of the directory (ask its administrator): %w", ErrForbidden, user, ErrNoRole)
	case errors.Is(err, ErrBadCredentials):
		// The directory does not say whether the name exists; a wrong
		// name counts against an account no one has.
		return fail(account, true, err)
	case err != nil:
		att.Abandon()
		s.cfg.Logger.Warn(via+" sign-in: the directory cannot be reached", "user", user, "err", err)
		return Principal{}, fmt.Errorf("%w: the directory cannot be reached to check the password: try again shortly, or sign in with a console account (devsvc admins add) or an admin certificate", store.ErrBusy)
	}
	att.Succeed(account)
	lvl := slog.LevelInfo
	if via == "admin" {
		lvl = slog.LevelDebug // every call of the admin API signs in
	}
	s.cfg.Logger.Log(ctx, lvl, via+" sign-in", "user", user, "role", role, "remote", remote, "via", "directory")
	return Principal{Name: "dir:" + user, Role: role}, nil
}

// ConsolePrincipal checks, at every request of a console session, that
// its principal may still act: a console admin ("web:NAME") that was
// removed or disabled since it signed in is ErrUnauthenticated, and one
// whose role changed gets its new role. Other principals (directory
// accounts) keep what they signed in with until their session ends.
func (s *Service) ConsolePrincipal(ctx context.Context, p Principal) (Principal, error) {
	name, ok := strings.CutPrefix(p.Name, "web:")
	if !ok {
		return p, nil
	}
	rec, err := s.st.ConsoleAdmin(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, fmt.Errorf("%w: the console admin %s was removed: ask an admin", ErrUnauthenticated, name)
	case err != nil:
		return Principal{}, err
	case rec.Disabled:
		return Principal{}, fmt.Errorf("%w: the console admin %s is disabled: ask an admin", ErrUnauthenticated, name)
	}
	return Principal{Name: "web:" + rec.Name, Role: Role(rec.Role)}, nil
}
