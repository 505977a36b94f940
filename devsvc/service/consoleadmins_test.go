package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/passhash"
	"github.com/opendus/opendus/signin"
)

// cheapHash keeps the tests quick; a hash carries its parameters.
var cheapHash = passhash.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	alicePW = "correct horse battery staple"
	bobPW   = "purple monkey dishwasher"
)

// consoleService returns a service with a limiter on a fake clock, alice
// (admin) and helpdesk (read-only).
func consoleService(t *testing.T, dir service.Authenticator) (*service.Service, *store.Store, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))
	lim := signin.New(signin.Config{Now: clock.Now})
	svc, st := newService(t, service.Config{Limiter: lim, PasswordParams: cheapHash, Directory: dir})
	ctx := service.WithPrincipal(context.Background(), admin)
	if _, err := svc.AddConsoleAdmin(ctx, "alice", service.RoleAdmin, alicePW); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsoleAdmin(ctx, "helpdesk", service.RoleReadOnly, alicePW); err != nil {
		t.Fatal(err)
	}
	return svc, st, clock
}

func TestAddConsoleAdmin(t *testing.T) {
	svc, st, _ := consoleService(t, nil)
	ctx := service.WithPrincipal(context.Background(), admin)
	for _, tc := range []struct {
		name, pw string
		role     service.Role
		want     error
	}{
		{"bob", "short", service.RoleAdmin, service.ErrInvalid},
		{"bob", "fourteen chars", service.RoleAdmin, service.ErrInvalid},
		{"bob", strings.Repeat("x", 1025), service.RoleAdmin, service.ErrInvalid},
		{"bob", bobPW, "root", service.ErrInvalid},
		{"bob smith", bobPW, service.RoleAdmin, service.ErrInvalid},
		{"ALICE", bobPW, service.RoleAdmin, store.ErrExists},
	} {
		if _, err := svc.AddConsoleAdmin(ctx, tc.name, tc.role, tc.pw); !errors.Is(err, tc.want) {
			t.Errorf("AddConsoleAdmin(%q, %q, %d-character password) = %v, want %v", tc.name, tc.role, len(tc.pw), err, tc.want)
		}
	}
	a, err := svc.AddConsoleAdmin(ctx, "bob", service.RoleAdmin, "fifteen chars!!")
	if err != nil || a.Name != "bob" || a.Role != "admin" || a.PasswordHash != "" {
		t.Errorf("AddConsoleAdmin(bob, 15 characters) = %+v, %v; want bob without his hash", a, err)
	}
	rec, err := st.ConsoleAdmin(context.Background(), "bob")
	if err != nil || !strings.HasPrefix(rec.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(rec.PasswordHash, "fifteen") {
		t.Errorf("stored bob = %+v, %v; want an argon2id hash", rec, err)
	}
	list, err := svc.ConsoleAdmins(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ConsoleAdmins = %+v, %v", list, err)
	}
	for _, a := range list {
		if a.PasswordHash != "" {
			t.Errorf("ConsoleAdmins lists %s with its hash", a.Name)
		}
	}
	es, _ := svc.History(ctx, 0, 0)
	if last := es[len(es)-1]; last.Actor != admin.Name || last.Action != store.ActionConsoleAdminAdd || last.Subject != "bob" {
		t.Errorf("last event = %+v, want cert:admin adding bob", last)
	}
}

func TestConsoleSignIn(t *testing.T) {
	svc, _, clock := consoleService(t, nil)
	ctx := context.Background()
	signIn := func(user, pw string) (service.Principal, error) {
		return svc.ConsoleSignIn(ctx, "192.0.2.7", user, pw)
	}
	if p, err := signIn("Alice", alicePW); err != nil || p != (service.Principal{Name: "web:alice", Role: service.RoleAdmin}) {
		t.Errorf("signing in as Alice = %+v, %v; want web:alice, admin", p, err)
	}
	if p, err := signIn("helpdesk", alicePW); err != nil || p.Role != service.RoleReadOnly {
		t.Errorf("signing in as helpdesk = %+v, %v; want read-only", p, err)
	}
	// Every refusal reads the same.
	_, wrong := signIn("alice", "wrong password here")
	for _, tc := range []struct{ user, pw string }{
		{"mallory", alicePW},
		{"alice", ""},
		{"", alicePW},
		{"al ice", alicePW},
		{"alice", strings.Repeat("x", 2000)},
	} {
		_, err := signIn(tc.user, tc.pw)
		if !errors.Is(err, service.ErrUnauthenticated) || err.Error() != wrong.Error() {
			t.Errorf("signing in as %q = %v, want the wrong-password answer %v", tc.user, err, wrong)
		}
	}
	// Disabled: the right password is refused, with the same answer.
	actx := service.WithPrincipal(ctx, admin)
	if _, err := svc.SetConsoleAdminDisabled(actx, "helpdesk", true); err != nil {
		t.Fatal(err)
	}
	if _, err := signIn("helpdesk", alicePW); err == nil || err.Error() != wrong.Error() {
		t.Errorf("signing in as disabled helpdesk = %v, want refused", err)
	}

	// Five wrong passwords (one above, four here) lock alice, from any
	// address, right password or not, until the lockout ends.
	for i := range 4 {
		if _, err := svc.ConsoleSignIn(ctx, fmt.Sprintf("198.51.100.%d", i), "alice", "wrong password here"); err == nil {
			t.Fatal("a wrong password signed in")
		}
	}
	if _, err := svc.ConsoleSignIn(ctx, "203.0.113.9", "alice", alicePW); err == nil || err.Error() != wrong.Error() {
		t.Errorf("alice after 5 wrong passwords = %v, want locked (the wrong-password answer)", err)
	}
	clock.Advance(signin.DefaultLockout + time.Second)
	if _, err := signIn("alice", alicePW); err != nil {
		t.Errorf("alice after the lockout = %v, want signed in", err)
	}
}

// TestConsolePrincipal checks that a session of a console admin ends when
// the admin is disabled or removed.
func TestConsolePrincipal(t *testing.T) {
	svc, _, _ := consoleService(t, nil)
	ctx := context.Background()
	actx := service.WithPrincipal(ctx, admin)
	p, err := svc.ConsoleSignIn(ctx, "192.0.2.7", "helpdesk", alicePW)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.ConsolePrincipal(ctx, p); err != nil || got != p {
		t.Errorf("ConsolePrincipal(%+v) = %+v, %v", p, got, err)
	}
	dir := service.Principal{Name: "dir:carol", Role: service.RoleAdmin}
	if got, err := svc.ConsolePrincipal(ctx, dir); err != nil || got != dir {
		t.Errorf("ConsolePrincipal(%+v) = %+v, %v; want it unchanged", dir, got, err)
	}
	svc.SetConsoleAdminDisabled(actx, "helpdesk", true)
	if _, err := svc.ConsolePrincipal(ctx, p); !errors.Is(err, service.ErrUnauthenticated) || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("ConsolePrincipal after disabling = %v, want ErrUnauthenticated saying disabled", err)
	}
	svc.SetConsoleAdminDisabled(actx, "helpdesk", false)
	if _, err := svc.ConsolePrincipal(ctx, p); err != nil {
		t.Errorf("ConsolePrincipal after enabling = %v", err)
	}
	svc.RemoveConsoleAdmin(actx, "helpdesk")
	if _, err := svc.ConsolePrincipal(ctx, p); !errors.Is(err, service.ErrUnauthenticated) || !strings.Contains(err.Error(), "removed") {
		t.Errorf("ConsolePrincipal after removing = %v, want ErrUnauthenticated saying removed", err)
	}
}

// fakeDir is a directory with bob (admin), olga (in no admin group) and a
// switch to make it unreachable; AccountKey names accounts as NTLM does.
type fakeDir struct{ down bool }

func (d *fakeDir) AuthenticateAdmin(_ context.Context, user, password string) (service.Role, error) {
	switch {
	case d.down:
		return "", errors.New("ldap: connection refused")
	case user == "bob" && password == bobPW:
		return service.RoleAdmin, nil
	case user == "olga" && password == bobPW:
		return "", service.ErrNoRole
	}
	return "", fmt.Errorf("directory: %w", service.ErrBadCredentials)
}

func (d *fakeDir) AccountKey(user string) (string, bool) {
	return signin.AccountKey("CONTOSO", user), !strings.ContainsAny(user, " ")
}

func TestConsoleSignInDirectory(t *testing.T) {
	dir := &fakeDir{}
	clock := clocktest.New(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))
	lim := signin.New(signin.Config{Now: clock.Now})
	svc, _ := newService(t, service.Config{Limiter: lim, PasswordParams: cheapHash, Directory: dir})
	ctx := context.Background()
	if p, err := svc.ConsoleSignIn(ctx, "192.0.2.7", "bob", bobPW); err != nil || p != (service.Principal{Name: "dir:bob", Role: service.RoleAdmin}) {
		t.Errorf("bob = %+v, %v; want dir:bob, admin", p, err)
	}
	if _, err := svc.ConsoleSignIn(ctx, "192.0.2.7", "olga", bobPW); !errors.Is(err, service.ErrForbidden) {
		t.Errorf("olga (no admin group) = %v, want ErrForbidden", err)
	}
	dir.down = true
	if _, err := svc.ConsoleSignIn(ctx, "192.0.2.7", "bob", bobPW); !errors.Is(err, store.ErrBusy) || !strings.Contains(err.Error(), "directory cannot be reached") {
		t.Errorf("bob, directory down = %v, want busy, saying the directory cannot be reached", err)
	}
	dir.down = false
	// bob's NTLM sign-ins share the lockout: five wrong passwords there
	// lock his console sign-in too.
	key := signin.AccountKey("CONTOSO", "bob")
	for range 5 {
		a, err := lim.Begin("198.51.100.1")
		if err != nil {
			t.Fatal(err)
		}
		a.Fail(ctx, signin.Failure{Via: "ntlm", User: "bob", Account: key, WrongPassword: true})
	}
	if _, err := svc.ConsoleSignIn(ctx, "192.0.2.8", "bob", bobPW); !errors.Is(err, service.ErrUnauthenticated) {
		t.Errorf("bob locked by NTLM failures = %v, want refused", err)
	}
	clock.Advance(signin.DefaultLockout + time.Second)
	if _, err := svc.ConsoleSignIn(ctx, "192.0.2.8", "bob", bobPW); err != nil {
		t.Errorf("bob after the lockout = %v", err)
	}
}

// TestAdminSignInCountsAgainstTheLimiter: a directory account's password
// sign-in to the admin API (devsvc --user) goes through the same limiter
// as the console's and the devices': five wrong passwords lock the
// account there, and then its right password is refused on the console
// too; an account in no admin group is forbidden, naming ErrNoRole.
func TestAdminSignInCountsAgainstTheLimiter(t *testing.T) {
	dir := &fakeDir{}
	clock := clocktest.New(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))
	lim := signin.New(signin.Config{Now: clock.Now})
	svc, _ := newService(t, service.Config{Limiter: lim, PasswordParams: cheapHash, Directory: dir})
	ctx := context.Background()
	if p, err := svc.SignIn(ctx, "192.0.2.9", "bob", bobPW); err != nil || p != (service.Principal{Name: "dir:bob", Role: service.RoleAdmin}) {
		t.Fatalf("bob = %+v, %v; want dir:bob, admin", p, err)
	}
	if _, err := svc.SignIn(ctx, "192.0.2.9", "olga", bobPW); !errors.Is(err, service.ErrForbidden) || !errors.Is(err, service.ErrNoRole) {
		t.Errorf("olga (no admin group) = %v, want ErrForbidden wrapping ErrNoRole", err)
	}
	for i := range 5 {
		if _, err := svc.SignIn(ctx, "192.0.2.9", "bob", "wrong"); !errors.Is(err, service.ErrUnauthenticated) {
			t.Fatalf("wrong password %d = %v, want ErrUnauthenticated", i+1, err)
		}
	}
	if _, err := svc.SignIn(ctx, "192.0.2.9", "bob", bobPW); !errors.Is(err, service.ErrUnauthenticated) {
		t.Errorf("bob's right password after five wrong ones = %v, want refused (locked)", err)
	}
	if _, err := svc.ConsoleSignIn(ctx, "192.0.2.10", "bob", bobPW); !errors.Is(err, service.ErrUnauthenticated) {
		t.Errorf("bob on the console after the admin API locked him = %v, want refused", err)
	}
	clock.Advance(signin.DefaultLockout + time.Second)
	if _, err := svc.SignIn(ctx, "192.0.2.9", "bob", bobPW); err != nil {
		t.Errorf("bob after the lockout = %v, want signed in", err)
	}
}
