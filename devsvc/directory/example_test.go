package directory_test

import (
	"fmt"
	"log"
	"log/slog"

	"github.com/opendus/opendus/devsvc/directory"
	"github.com/opendus/opendus/ntlm"
)

// Example wires a Directory into the NTLM acceptor of the external
// listener. New does not connect: the first sign-in does.
func Example() {
	dir, err := directory.New(directory.Config{
		URL:           "ldaps://ldap.contoso.com",
		BindDN:        "cn=opendus,ou=services,dc=contoso,dc=com",
		BindPassword:  "service password", // main reads it from a secret file
		BaseDN:        "ou=people,dc=contoso,dc=com",
		GroupBaseDN:   "ou=groups,dc=contoso,dc=com",
		AdminGroup:    "cn=opendus-admins,ou=groups,dc=contoso,dc=com",
		ReadOnlyGroup: "cn=opendus-readers,ou=groups,dc=contoso,dc=com",
		Domains:       []string{"CONTOSO", "contoso.com"},
		Logger:        slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()
	acceptor := ntlm.NewAcceptor(dir, ntlm.Config{TargetName: "CONTOSO"})
	_ = acceptor // acceptor.Require(handler), with ConnContext on the server
	fmt.Println("ready")
	// Output: ready
}
