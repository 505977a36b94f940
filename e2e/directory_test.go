package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/directory/dirtest"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// TestEndToEndDirectory runs devsvc against a real slapd: device sign-in
// with NTLM against sambaNTPassword, admin roles from groups, and failing
// closed when the directory is down while the LAN keeps working.
func TestEndToEndDirectory(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	cs, err := certs.Open(filepath.Join(dir, "certs"), certs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	people := func(uid string) string { return "uid=" + uid + "," + dirtest.PeopleDN }
	ldap := dirtest.Start(t, cs, dirtest.Options{
		Users: []dirtest.User{
			{UID: "alice", Password: "Alice-admin-1"},
			{UID: "bob", Password: "Bob-viewer-1"},
			{UID: "carol", Password: "Carol-phone-1"},
			{UID: "dave", Password: "Dave-phone-1", Flags: "[UD         ]"},
			{UID: "eve", Password: "Eve-phone-1", OU: "contractors"},
		},
		Groups: []dirtest.Group{
			{CN: "dus-admins", Members: []string{people("alice")}},
			{CN: "dus-viewers", Members: []string{people("bob")}},
		},
	})
	pwFile := filepath.Join(t.TempDir(), "bind.pw")
	if err := os.WriteFile(pwFile, []byte(dirtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := os.OpenFile(filepath.Join(dir, "devsvc.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conf, "\nldap_url = %s\nldap_ca_file = %s\nldap_bind_dn = %s\nldap_bind_password_file = %s\nldap_base_dn = %s\n"+
		"ldap_group_base_dn = %s\nldap_admin_group = cn=dus-admins,%s\nldap_readonly_group = cn=dus-viewers,%s\nldap_domains = CONTOSO\n",
		ldap.LDAPS, filepath.Join(dir, "certs", "ca.pem"), dirtest.ServiceDN, pwFile, dirtest.PeopleDN, dirtest.GroupsDN, dirtest.GroupsDN, dirtest.GroupsDN)
	conf.Close()
	svc := devsvctest.Start(t, bin, dir)

	const idPath = "UCPhone/Polycom/CX600/A/ENU"
	svc.CLI(t, "import", writeTree(t, map[string]string{idPath + "/4.0.7577.4372/CX600.nbt": "image"}))

	// Admin roles: bob may look, not change; alice may approve, and the
	// history says so.
	as := func(user, password string, args ...string) (string, string, error) {
		t.Setenv("OPENDUS_ADMIN_PASSWORD", password)
		return devsvctest.RunCLI(bin, dir, "", append([]string{"--user", user}, args...)...)
	}
	if out, errOut, err := as("bob", "Bob-viewer-1", "rules"); err != nil || !strings.Contains(out, idPath) {
		t.Errorf("read-only bob: rules: %v %s %s", err, out, errOut)
	}
	if _, errOut, err := as("bob", "Bob-viewer-1", "approve", idPath); err == nil || !strings.Contains(errOut, "read-only") {
		t.Errorf("read-only bob approved: %v %s", err, errOut)
	}
	if _, errOut, err := as("carol", "Carol-phone-1", "rules"); err == nil || !strings.Contains(errOut, "in neither the admin nor the read-only admin group") {
		t.Errorf("carol, in no admin group, listed rules: %v %s", err, errOut)
	}
	if _, errOut, err := as("alice", "wrong", "rules"); err == nil || !strings.Contains(errOut, "wrong user name or password") {
		t.Errorf("alice with a wrong password: %v %s", err, errOut)
	}
	if _, errOut, err := as("alice", "Alice-admin-1", "approve", idPath); err != nil {
		t.Fatalf("admin alice approve: %v %s", err, errOut)
	}
	var events []firmware.Event
	svc.JSON(t, &events, "history")
	if last := events[len(events)-1]; last.Action != "approve" || last.Actor != "dir:alice" {
		t.Errorf("last event = %+v, want approve by dir:alice", last)
	}

	// Device sign-in through the edge with NTLM against the directory.
	_, extPort, _ := net.SplitHostPort(svc.Run.External)
	extURL := "https://ucupdates.contoso.com:" + extPort + deviceproto.CheckInPathExt
	_, intPort, _ := net.SplitHostPort(svc.Run.Internal)
	intURL := "https://ucupdates-r2.contoso.com:" + intPort + deviceproto.CheckInPath
	ci := deviceproto.CheckIn{
		Identity: firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
		MAC:      "00-04-F2-0D-1A-01",
		Modules:  []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("3.5.6907.35")}},
	}
	ntlmClient := func() *http.Client {
		return deviceClient(t, dir, svc.Run.External, func(rt http.RoundTripper) http.RoundTripper { return ntlmssp.Negotiator{RoundTripper: rt} })
	}
	tests := []struct {
		user, password string
		want           int
	}{
		{`CONTOSO\carol`, "Carol-phone-1", http.StatusOK},
		{"carol", "Carol-phone-1", http.StatusOK},
		{`CONTOSO\carol`, "wrong", http.StatusUnauthorized},
		{`CONTOSO\dave`, "Dave-phone-1", http.StatusUnauthorized}, // disabled
		{`CONTOSO\eve`, "Eve-phone-1", http.StatusUnauthorized},   // outside the base
		{`CONTOSO\*`, "x", http.StatusUnauthorized},               // no filter widening
		{`CONTOSO\carol)(uid=*`, "x", http.StatusUnauthorized},
		{`EVILCORP\carol`, "Carol-phone-1", http.StatusUnauthorized}, // not one of ldap_domains
		{"carol@evilcorp.com", "Carol-phone-1", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		ci.User = tt.user
		if code, body := post(t, ntlmClient(), extURL, ci.AppendXML(nil), tt.user, tt.password); code != tt.want {
			t.Errorf("external check-in as %s: %d %s, want %d", tt.user, code, body, tt.want)
		}
	}

	// With the directory down, the edge fails closed; the LAN keeps working.
	// (carol's account was looked up just now and stays in the cache for
	// its 30 seconds; alice's never was: she signed in as an admin, by a
	// bind.)
	ldap.Stop()
	ci.User = "alice"
	if code, body := post(t, ntlmClient(), extURL, ci.AppendXML(nil), `CONTOSO\alice`, "Alice-admin-1"); code == http.StatusOK {
		t.Errorf("external check-in with slapd stopped succeeded: %s", body)
	}
	ci.User = ""
	if code, body := post(t, deviceClient(t, dir, svc.Run.Internal, nil), intURL, ci.AppendXML(nil), "", ""); code != http.StatusOK {
		t.Errorf("internal check-in with slapd stopped: %d %s", code, body)
	}
	if !strings.Contains(svc.Logs(), "directory") {
		t.Errorf("no log line about the directory outage:\n%s", svc.Logs())
	}
}
