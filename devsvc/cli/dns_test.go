package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/datadir"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/provisioning"
)

// dataDir writes a settings file for contoso.com with the given lines
// appended and returns the directory.
func dataDir(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	conf := append(datadir.DefaultSettings("contoso.com").Render(), []byte(strings.Join(extra, "\n")+"\n")...)
	if err := os.WriteFile(filepath.Join(dir, datadir.ConfigFile), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runDNS(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), append([]string{"dns"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDNSCommand(t *testing.T) {
	dir := dataDir(t)
	code, out, errOut := runDNS(t, "--data", dir, "--address", "10.0.0.5", "--address", "2001:db8::5", "--external-address", "203.0.113.7", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("devsvc dns = %d, stderr %q", code, errOut)
	}
	want := `; Zone file lines
; internal DNS: devices inside the network (zone contoso.com)
ucupdates-r2.contoso.com.	300	IN	A	10.0.0.5
ucupdates-r2.contoso.com.	300	IN	AAAA	2001:db8::5
; public DNS: devices outside, through the edge (zone contoso.com)
ucupdates.contoso.com.	300	IN	A	203.0.113.7

# Windows DNS Server (PowerShell, on the DNS server)
# internal DNS: devices inside the network
Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv4Address "10.0.0.5" -TimeToLive 00:05:00
Add-DnsServerResourceRecordAAAA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv6Address "2001:db8::5" -TimeToLive 00:05:00
# public DNS: devices outside, through the edge
Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates" -IPv4Address "203.0.113.7" -TimeToLive 00:05:00
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("devsvc dns output (-want +got):\n%s", diff)
	}
	if errOut != "" {
		t.Errorf("stderr = %q, want nothing", errOut)
	}
}

func TestDNSCommandFromSettings(t *testing.T) {
	// Listeners bound to one address each; another internal name; a port
	// other than 443.
	dir := dataDir(t, "internal_addr = 10.0.0.5:8443", "external_addr = 198.51.100.9:4443", "internal_name = dus.contoso.com")
	code, out, errOut := runDNS(t, "--data", dir, "--json")
	if code != 0 {
		t.Fatalf("devsvc dns --json = %d, stderr %q", code, errOut)
	}
	var got struct {
		Domain  string
		Records []provisioning.Record
		Notes   []string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	want := []provisioning.Record{
		{Scope: "internal", Zone: "contoso.com", Name: "ucupdates-r2.contoso.com", Type: "A", Value: "10.0.0.5", TTL: 3600},
		{Scope: "internal", Zone: "contoso.com", Name: "dus.contoso.com", Type: "A", Value: "10.0.0.5", TTL: 3600},
		{Scope: "external", Zone: "contoso.com", Name: "ucupdates.contoso.com", Type: "A", Value: "198.51.100.9", TTL: 3600},
	}
	if diff := cmp.Diff(want, got.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if got.Domain != "contoso.com" || len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "port 443") {
		t.Errorf("domain %q, notes %q; want contoso.com and a note about port 443", got.Domain, got.Notes)
	}
}

func TestDNSCommandMisuse(t *testing.T) {
	tests := []struct {
		name     string
		extra    []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"listener on every address", nil, nil, 2, "pass --address IP"},
		{"listener on loopback", []string{"internal_addr = 127.0.0.1:443"}, nil, 2, "pass --address IP"},
		{"bad address", nil, []string{"--address", "10.0.0.300"}, 2, "want an IPv4 or IPv6 address"},
		{"unspecified address", nil, []string{"--address", "0.0.0.0"}, 1, "cannot be a host's"},
		{"ttl too short", nil, []string{"--address", "10.0.0.5", "--ttl", "0s"}, 2, "--ttl"},
		{"argument", nil, []string{"--address", "10.0.0.5", "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dataDir(t, tt.extra...)
			code, _, errOut := runDNS(t, append([]string{"--data", dir}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("devsvc dns %q = %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
	t.Run("no data directory", func(t *testing.T) {
		code, _, errOut := runDNS(t, "--data", t.TempDir(), "--address", "10.0.0.5")
		if code != 1 || !strings.Contains(errOut, "devsvc init") {
			t.Errorf("devsvc dns without settings = %d, %q; want 1 and a hint to run devsvc init", code, errOut)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if code := Main(t.Context(), []string{"dns", "--help"}, strings.NewReader(""), &out, &out); code != 0 || !strings.Contains(out.String(), "Examples:") {
			t.Errorf("devsvc dns --help = %d, %q", code, out.String())
		}
	})
}
