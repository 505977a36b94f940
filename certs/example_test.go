package certs_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/opendus/opendus/certs"
)

// Bootstrap a data directory, then look at what it holds. devsvc serve
// would pass store.ServerTLSConfig() to the device listener and
// store.AdminServerTLSConfig() to the admin API.
func Example() {
	dir, err := os.MkdirTemp("", "certs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store, err := certs.Bootstrap(dir, certs.Config{
		Domain:   "contoso.com",
		HostName: "upd1",
		Now:      func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range store.List() {
		fmt.Printf("%-6s %-6s %-5s %4d days  %s\n", c.Name, c.Kind, c.Role, c.DaysLeft, c.Subject)
		for _, n := range c.DNSNames {
			fmt.Println("       dns", n)
		}
		for _, ip := range c.IPAddresses {
			fmt.Println("       ip ", ip)
		}
	}

	// Two months before the server certificate expires, it shows up.
	now = now.Add((825 - 60) * 24 * time.Hour)
	for _, c := range store.Expiring(90 * 24 * time.Hour) {
		fmt.Println("expiring:", c.Name, c.DaysLeft, "days left")
	}
	// Output:
	// ca     ca           3650 days  CN=OpenDUS CA contoso.com,O=OpenDUS
	// server server        825 days  CN=ucupdates-r2.contoso.com,O=OpenDUS
	//        dns ucupdates-r2.contoso.com
	//        dns ucupdates.contoso.com
	//        dns upd1.contoso.com
	//        dns upd1
	//        dns localhost
	//        ip  127.0.0.1
	//        ip  ::1
	// admin  client admin  730 days  CN=admin,OU=admin,O=OpenDUS
	// expiring: server 60 days left
	// expiring: admin -35 days left
}
