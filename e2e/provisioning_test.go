package e2e

import (
	"net"
	"net/http"
	"strings"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/provisioning"
)

// TestEndToEndProvisioning signs devices in against a real devsvc: Basic
// over TLS on the LAN, NTLM at the edge; a wrong password gets nothing.
func TestEndToEndProvisioning(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	svc := devsvctest.Start(t, bin, dir)
	if _, errOut, err := devsvctest.RunCLI(bin, dir, "Carol-phone-1\n", "accounts", "add", "carol", "--password-stdin"); err != nil {
		t.Fatalf("accounts add: %v %s", err, errOut)
	}
	_, intPort, _ := net.SplitHostPort(svc.Run.Internal)
	_, extPort, _ := net.SplitHostPort(svc.Run.External)
	intURL := "https://ucupdates-r2.contoso.com:" + intPort + provisioning.Path
	extURL := "https://ucupdates.contoso.com:" + extPort + provisioning.Path
	lan := deviceClient(t, dir, svc.Run.Internal, nil)
	edge := func() *http.Client {
		return deviceClient(t, dir, svc.Run.External, func(rt http.RoundTripper) http.RoundTripper { return ntlmssp.Negotiator{RoundTripper: rt} })
	}
	wantInt := "https://ucupdates-r2.contoso.com:" + intPort + "/RequestHandler/ucdevice.upx"
	wantExt := "https://ucupdates.contoso.com:" + extPort + "/RequestHandlerExt/ucdevice.upx"

	for _, tc := range []struct {
		name string
		c    *http.Client
		url  string
		user string
	}{
		{"LAN, Basic over TLS", lan, intURL, "carol"},
		{"edge, NTLM", edge(), extURL, `CONTOSO\carol`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.c, tc.url, nil, tc.user, "Carol-phone-1")
			if code != http.StatusOK {
				t.Fatalf("sign-in = %d %s", code, body)
			}
			doc, err := provisioning.ParseDocument(body)
			if err != nil {
				t.Fatalf("ParseDocument: %v\n%s", err, body)
			}
			if doc.InternalURL != wantInt || doc.ExternalURL != wantExt || !doc.Enabled {
				t.Errorf("document = %+v, want %s and %s, enabled", doc, wantInt, wantExt)
			}
		})
	}
	for _, user := range []string{"carol", "nobody"} {
		code, body := post(t, lan, intURL, nil, user, "wrong")
		if code != http.StatusUnauthorized || strings.Contains(string(body), "updatesServer") {
			t.Errorf("sign-in of %s with a wrong password = %d %s, want 401 and no document", user, code, body)
		}
	}
	if code, body := post(t, edge(), extURL, nil, `CONTOSO\carol`, "wrong"); code != http.StatusUnauthorized || strings.Contains(string(body), "updatesServer") {
		t.Errorf("edge sign-in with a wrong password = %d %s", code, body)
	}
}
