package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// deviceClient is an HTTP client as a phone has one: it trusts only the CA
// it was given (DIR/certs/ca.pem) and reaches name:port on the service's
// loopback address, so TLS verifies the name the service gives devices.
func deviceClient(t testing.TB, dir, listenAddr string, rt func(http.RoundTripper) http.RoundTripper) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("certs/ca.pem holds no certificate")
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, listenAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	var r http.RoundTripper = tr
	if rt != nil {
		r = rt(tr)
	}
	return &http.Client{Transport: r, Timeout: 30 * time.Second}
}

// post sends a device message and returns the status and body.
func post(t testing.TB, c *http.Client, url string, body []byte, user, password string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// device returns the service's record of the device key, listed once with
// devsvc devices --json: the listing flushes the inventory first, so what
// was answered is there.
func device(t *testing.T, svc *devsvctest.Service, key string) firmware.Device {
	t.Helper()
	var ds []firmware.Device
	svc.JSON(t, &ds, "devices")
	for _, d := range ds {
		if d.Key == key {
			return d
		}
	}
	t.Fatalf("device %s is not in the inventory (%d devices)", key, len(ds))
	return firmware.Device{}
}

func TestEndToEndDeviceUpdate(t *testing.T) {
	bin, dir := devsvctest.Init(t, "contoso.com")
	svc := devsvctest.Start(t, bin, dir)

	const idPath = "UCPhone/Polycom/CX600/A/ENU"
	newV, oldV := firmware.MustParseVersion("4.0.7577.4372"), firmware.MustParseVersion("3.5.6907.35")
	image := strings.Repeat("CX600 firmware image ", 150_000) // 3 MB
	tree := writeTree(t, map[string]string{
		idPath + "/" + newV.String() + "/CX600.nbt": image,
		idPath + "/" + newV.String() + "/CX600.cat": "security catalog",
		idPath + "/" + newV.String() + "/CX600.xml": "<description/>",
	})
	svc.CLI(t, "import", tree)
	svc.CLI(t, "approve", idPath)

	_, port, _ := net.SplitHostPort(svc.Run.Internal)
	intBase := "https://ucupdates-r2.contoso.com:" + port
	dev := deviceClient(t, dir, svc.Run.Internal, nil)

	// Check in on the old version: the approved one is offered.
	const mac = "00-04-F2-E2-E0-01"
	ci := deviceproto.CheckIn{
		Identity: firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
		MAC:      mac, Serial: "CX600-E2E-1", User: "bob@contoso.com",
		Modules: []firmware.Module{{Name: "CX600.nbt", Version: oldV, Timestamp: "2025-06-01T10:00:00Z"}},
	}
	code, body := post(t, dev, intBase+deviceproto.CheckInPath, ci.AppendXML(nil), "", "")
	if code != 200 {
		t.Fatalf("check-in = %d %s", code, body)
	}
	ans, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatalf("ParseAnswer: %v\n%s", err, body)
	}
	wantBase := intBase + "/DeviceUpdateFiles_Int/" + idPath + "/" + newV.String() + "/"
	if ans.Version != newV || len(ans.Files) != 1 || ans.InternalURL != wantBase {
		t.Fatalf("answer = %+v, want %v with one module under %s", ans, newV, wantBase)
	}
	if ans.NextCheck < 23*time.Hour || ans.NextCheck >= 25*time.Hour {
		t.Errorf("next check in %v, want 24h ± 1h", ans.NextCheck)
	}
	f := ans.Files[0]
	report := func(state firmware.State) {
		t.Helper()
		s := deviceproto.Status{MAC: mac, State: state, Target: ans.Version}
		if code, body := post(t, dev, intBase+deviceproto.StatusPath, s.AppendXML(nil), "", ""); code != http.StatusNoContent {
			t.Fatalf("report %s = %d %s", state, code, body)
		}
	}
	report(firmware.StateDownloading)

	// Download, interrupted after a third, then resumed with Range.
	resp, err := dev.Get(ans.InternalURL + f.FileName)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len(image)/3)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	resp.Body.Close()
	req, _ := http.NewRequest("GET", ans.InternalURL+f.FileName, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(first)))
	req.Header.Set("If-Range", etag)
	resp, err = dev.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("resumed download = %d, want 206", resp.StatusCode)
	}
	sum := sha256.Sum256(append(first, rest...))
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 || int64(len(first)+len(rest)) != f.Size || etag != `"`+got+`"` {
		t.Fatalf("downloaded %d bytes with SHA-256 %s (ETag %s), want %d bytes with %s", len(first)+len(rest), got, etag, f.Size, f.SHA256)
	}
	// The signature file too.
	resp, err = dev.Get(ans.InternalURL + f.SignatureFileName)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if catSum := sha256.Sum256(cat); hex.EncodeToString(catSum[:]) != f.SignatureSHA256 {
		t.Errorf("signature file SHA-256 mismatch")
	}
	for _, s := range []firmware.State{firmware.StateDownloaded, firmware.StateInstalling, firmware.StateRebooting, firmware.StateSuccess} {
		report(s)
	}

	d := device(t, svc, mac)
	if d.State != firmware.StateSuccess || d.Version != newV || d.Target != newV || d.Offered != newV || d.Location != firmware.Internal || d.User != "bob@contoso.com" || d.LastUpdate.IsZero() {
		t.Errorf("devices --json shows %+v, want version %v after success, internal, bob", d, newV)
	}

	// Back on the new version, the device is offered nothing.
	ci.Modules[0].Version = newV
	if code, body = post(t, dev, intBase+deviceproto.CheckInPath, ci.AppendXML(nil), "", ""); code != 200 || !bytes.Contains(body, []byte(`downloads="0"`)) {
		t.Errorf("check-in on the new version = %d %s, want downloads=\"0\"", code, body)
	}

	// Path tricks get nothing.
	for _, p := range []string{"/DeviceUpdateFiles_Int/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/opendus.db", "/DeviceUpdateFiles_Int/" + idPath + "/" + newV.String() + "/..%5c..%5copendus.db"} {
		resp, err := dev.Get(intBase + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || len(b) > 512 {
			t.Errorf("GET %s = %d with %d bytes, want 400 and a short reason", p, resp.StatusCode, len(b))
		}
	}

	// The external listener: NTLM with a local account.
	if _, errOut, err := devsvctest.RunCLI(bin, dir, "Winter2026!\n", "accounts", "add", "alice", "--password-stdin"); err != nil {
		t.Fatalf("accounts add: %v: %s", err, errOut)
	}
	_, extPort, _ := net.SplitHostPort(svc.Run.External)
	extBase := "https://ucupdates.contoso.com:" + extPort
	ext := deviceClient(t, dir, svc.Run.External, func(rt http.RoundTripper) http.RoundTripper { return ntlmssp.Negotiator{RoundTripper: rt} })
	const extMAC = "00-04-F2-E2-E0-02"
	eci := ci
	eci.MAC, eci.Serial, eci.User = extMAC, "", "alice"
	eci.Modules = []firmware.Module{{Name: "CX600.nbt", Version: oldV}}
	if code, body := post(t, ext, extBase+deviceproto.CheckInPathExt, eci.AppendXML(nil), "", ""); code != http.StatusUnauthorized {
		t.Errorf("external check-in without credentials = %d %s, want 401", code, body)
	}
	code, body = post(t, ext, extBase+deviceproto.CheckInPathExt, eci.AppendXML(nil), "CONTOSO\\alice", "Winter2026!")
	if code != 200 {
		t.Fatalf("external check-in = %d %s", code, body)
	}
	eans, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := extBase + "/DeviceUpdateFiles_Ext/" + idPath + "/" + newV.String() + "/"; eans.Version != newV || eans.ExternalURL != want {
		t.Errorf("external answer offers %v at %q, want %v at %q", eans.Version, eans.ExternalURL, newV, want)
	}
	// NTLM authenticates a connection: a wrong password needs a new one.
	fresh := deviceClient(t, dir, svc.Run.External, func(rt http.RoundTripper) http.RoundTripper { return ntlmssp.Negotiator{RoundTripper: rt} })
	if code, _ := post(t, fresh, extBase+deviceproto.CheckInPathExt, eci.AppendXML(nil), "CONTOSO\\alice", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("external check-in with a wrong password = %d, want 401", code)
	}
	ed := device(t, svc, extMAC)
	if ed.User != "alice" || ed.Offered != newV {
		t.Errorf("external device = %+v, want user alice, offered %v", ed, newV)
	}

	// Stopping flushes the audit log: one line per request, with the MACs.
	svc.Stop(t)
	logs, _ := filepath.Glob(filepath.Join(dir, "Logs", "Server", "Audit", "imageUpdates", "*.log"))
	var audit []byte
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		audit = append(audit, b...)
	}
	for _, want := range []string{
		" internal - POST /RequestHandler/ucdevice.upx 200 ", " internal - POST /RequestHandler/status.upx 204 ",
		" external alice POST /RequestHandlerExt/ucdevice.upx 200 ", " external - POST /RequestHandlerExt/ucdevice.upx 401 ",
		" " + mac + "\n", " " + extMAC + "\n",
	} {
		if !bytes.Contains(audit, []byte(want)) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}
}
