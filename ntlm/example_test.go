package ntlm_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/opendus/opendus/ntlm"
)

// oneUser is an Accounts with a single account.
type oneUser struct{ acct ntlm.Account }

func (o oneUser) LookupNT(_ context.Context, _, user string) (ntlm.Account, error) {
	if !strings.EqualFold(user, o.acct.User) {
		return ntlm.Account{}, ntlm.ErrUnknownUser
	}
	return o.acct, nil
}

// Example wires the acceptor into an HTTP/1.1 server: ConnContext keeps
// the per-connection state, Require guards the handler.
func Example() {
	accounts := oneUser{ntlm.Account{User: "phone-0042", Domain: "OPENDUS", NTHash: ntlm.NTHash("provisioned secret")}}
	a := ntlm.NewAcceptor(accounts, ntlm.Config{TargetName: "OPENDUS"})

	updates := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := ntlm.UserFrom(r.Context())
		fmt.Fprintf(w, "hello %s\n", user)
	})
	srv := &http.Server{
		Addr:        ":8443",
		Handler:     a.Require(updates),
		ConnContext: a.ConnContext,
		// NTLM authenticates connections: keep HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	_ = srv // srv.ListenAndServeTLS(certFile, keyFile) in main
	fmt.Println("ready")
	// Output: ready
}
