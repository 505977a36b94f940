package provisioning_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/provisioning"
)

// service is the internal listener of a real update service: the real
// check-in handler over a real store, and the sign-in handler, on one
// certstest TLS server whose certificate covers ucupdates-r2.contoso.com.
type service struct {
	cs   *certs.Store
	addr string // 127.0.0.1:port
	port string
}

func startService(t *testing.T) *service {
	t.Helper()
	st, err := store.Open(t.TempDir(), &store.Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := certstest.NewStore(t, certs.Config{})
	mux := http.NewServeMux()
	srv := certstest.NewServer(t, cs.ServerTLSConfig(), mux)
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	base := "https://ucupdates-r2." + certstest.Domain + ":" + port + "/"
	devices := deviceapi.New(st, deviceapi.Config{InternalURL: base, Now: fixedClock})
	mux.Handle(provisioning.Path, provisioning.NewHandler(provisioning.Config{
		InternalURL: base, ExternalURL: extBase, Enabled: true,
		Auth: directory{users: testUsers}.authenticator(), Now: fixedClock,
	}))
	mux.Handle("/", devices.Internal())
	return &service{cs: cs, addr: addr, port: port}
}

// checkIn posts a check-in of a CX600 to url through client and returns
// the service's answer.
func checkIn(t *testing.T, client *http.Client, url, user string) deviceproto.Answer {
	t.Helper()
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	c := deviceproto.CheckIn{Identity: id, MAC: "00-04-F2-00-00-01", User: user,
		Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("3.5.6907.35")}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(c.AppendXML(nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("check-in at %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("check-in at %s = %d %q, want 200", url, resp.StatusCode, body)
	}
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatalf("check-in answer: %v\n%s", err, body)
	}
	return a
}

// TestProvisionedCheckIn: a device signs in, stores the provisioned URLs
// and checks in at the internal one.
func TestProvisionedCheckIn(t *testing.T) {
	svc := startService(t)
	client := certstest.Client(svc.cs.DeviceTLSConfig(), svc.addr)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://ucupdates-r2.contoso.com:"+svc.port+provisioning.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "Passw0rd!")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in = %d %q", resp.StatusCode, body)
	}
	doc, err := provisioning.ParseDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://ucupdates-r2.contoso.com:" + svc.port + deviceproto.CheckInPath; doc.InternalURL != want || !doc.Enabled {
		t.Fatalf("document = %+v, want internal URL %q, enabled", doc, want)
	}
	if want := "https://ucupdates.contoso.com:4443" + deviceproto.CheckInPathExt; doc.ExternalURL != want {
		t.Errorf("external URL = %q, want %q", doc.ExternalURL, want)
	}
	checkIn(t, client, doc.InternalURL, doc.User)
}

// TestCheckInPaths: the document's paths are the check-in handler's.
func TestCheckInPaths(t *testing.T) {
	if provisioning.CheckInPath != deviceproto.CheckInPath || provisioning.CheckInPathExt != deviceproto.CheckInPathExt {
		t.Errorf("check-in paths %q, %q; the device protocol says %q, %q", provisioning.CheckInPath, provisioning.CheckInPathExt, deviceproto.CheckInPath, deviceproto.CheckInPathExt)
	}
}
