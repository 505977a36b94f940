package signin_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/opendus/opendus/signin"
)

// Example shows a sign-in's life with a Limiter: Begin before the
// credentials are checked, the account's lockout once the user is known,
// then Succeed or Fail.
func Example() {
	l := signin.New(signin.Config{MaxFailures: 2})
	ctx := context.Background()
	signIn := func(remote, user, password string) string {
		a, err := l.Begin(remote)
		if err != nil {
			return "busy: " + err.Error()
		}
		account := signin.AccountKey("CONTOSO", user) // the account store's spelling
		switch {
		case a.Locked(account):
			a.Fail(ctx, signin.Failure{Via: "basic", User: user, Account: account, Reason: signin.ErrLockedOut})
			return "refused (locked)"
		case password != "Winter2026!":
			a.Fail(ctx, signin.Failure{Via: "basic", User: user, Account: account, WrongPassword: true, Reason: errors.New("wrong password")})
			return "refused"
		}
		a.Succeed(account)
		return "signed in"
	}
	fmt.Println(signIn("192.0.2.1", "alice", "guess"))
	fmt.Println(signIn("192.0.2.2", "alice", "guess"))
	fmt.Println(signIn("192.0.2.3", "alice", "Winter2026!"))
	fmt.Println(signIn("192.0.2.1", "bob", "Winter2026!"))
	// Output:
	// refused
	// refused
	// refused (locked)
	// signed in
}
