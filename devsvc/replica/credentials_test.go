package replica

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/certs"
)

// testCredentials issues a replica's credentials under a new CA.
func testCredentials(t testing.TB) (Credentials, *certs.Store) {
	t.Helper()
	cs, err := certs.Bootstrap(filepath.Join(t.TempDir(), "certs"), certs.Config{Domain: "contoso.com", HostName: "dus"})
	if err != nil {
		t.Fatal(err)
	}
	return issue(t, cs, "paris"), cs
}

func issue(t testing.TB, cs *certs.Store, name string) Credentials {
	t.Helper()
	cert, key, err := cs.IssueClient(name, RoleReplica)
	if err != nil {
		t.Fatal(err)
	}
	host := name + ".contoso.com"
	srv, srvKey, err := cs.IssueServer(certs.Config{Domain: "contoso.com", InternalName: host, HostName: host})
	if err != nil {
		t.Fatal(err)
	}
	adm, admKey, err := cs.IssueClient("admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := cs.ExportCA("pem")
	return Credentials{Replica: name, Site: name, Domain: "contoso.com", Primary: []string{"dus.contoso.com:9443"},
		PrimaryInternalURL: "https://dus.contoso.com/", InternalName: host, CA: string(ca), Cert: string(cert), Key: string(key),
		ServerCert: string(srv), ServerKey: string(srvKey), AdminCert: string(adm), AdminKey: string(admKey), Issued: time.Now().UTC().Truncate(time.Second)}
}

func TestParseCredentials(t *testing.T) {
	c, cs := testCredentials(t)
	got, err := ParseCredentials(c.Marshal())
	if err != nil {
		t.Fatalf("ParseCredentials of what Marshal wrote = %v", err)
	}
	c.Format = CredentialsFormat
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	other, _ := testCredentials(t) // another CA
	mine := issue(t, cs, "lyon")
	for _, tc := range []struct {
		name   string
		change func(c *Credentials)
		want   string
	}{
		{"format", func(c *Credentials) { c.Format = "x" }, "format"},
		{"replica name", func(c *Credentials) { c.Replica = "Paris" }, "replica"},
		{"site", func(c *Credentials) { c.Site = "" }, "site"},
		{"no primary", func(c *Credentials) { c.Primary = nil }, "primary addresses"},
		{"primary address", func(c *Credentials) { c.Primary = []string{"dus"} }, "primary address"},
		{"primary URL", func(c *Credentials) { c.PrimaryInternalURL = "http://dus/" }, "primary URL"},
		{"key of another certificate", func(c *Credentials) { c.Key = c.AdminKey }, "replica certificate"},
		{"certificate of another CA", func(c *Credentials) { c.Cert, c.Key = other.Cert, other.Key }, "not one of the CA's"},
		{"another replica's certificate", func(c *Credentials) { c.Cert, c.Key = mine.Cert, mine.Key }, `"lyon"`},
		{"an admin certificate as the replica's", func(c *Credentials) { c.Cert, c.Key = c.AdminCert, c.AdminKey }, "role"},
		{"a server certificate for other names", func(c *Credentials) { c.ServerCert, c.ServerKey = mine.ServerCert, mine.ServerKey }, "does not cover"},
		{"no CA", func(c *Credentials) { c.CA = "" }, "CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := c
			tc.change(&bad)
			data := bad.Marshal()
			if tc.name == "format" {
				data = []byte(strings.Replace(string(data), CredentialsFormat, "x", 1))
			}
			_, err := ParseCredentials(data)
			if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseCredentials = %v, want ErrCredentials saying %q", err, tc.want)
			}
		})
	}
	if _, err := ParseCredentials([]byte(`{"format":"` + CredentialsFormat + `","extra":1}`)); !errors.Is(err, ErrCredentials) {
		t.Errorf("ParseCredentials with an unknown field = %v", err)
	}
}

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dus.contoso.com:9443", "dus.contoso.com:9443"},
		{"https://dus.contoso.com:9000/", "dus.contoso.com:9000"},
		{"dus.contoso.com", "dus.contoso.com:9443"},
		{"127.0.0.1:1234", "127.0.0.1:1234"},
		{"[::1]:1234", "[::1]:1234"},
		{"", ""},
		{"dus:0", ""},
		{"dus:x", ""},
	} {
		got, err := ParseAddr(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseCredentials: a credentials file is read or refused, never
// half-read: what passes has every part.
func FuzzParseCredentials(f *testing.F) {
	c, _ := testCredentials(f)
	f.Add(c.Marshal())
	f.Add([]byte(`{"format":"opendus-replica-credentials/1"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseCredentials(data)
		if err != nil {
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("ParseCredentials = %v, want ErrCredentials", err)
			}
			return
		}
		if got.Replica == "" || got.Site == "" || len(got.Primary) == 0 || got.Cert == "" || got.ServerCert == "" || got.AdminCert == "" {
			t.Fatalf("accepted incomplete credentials %+v", got)
		}
	})
}
