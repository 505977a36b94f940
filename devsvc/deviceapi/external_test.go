package deviceapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
)

// accounts is a one-account directory for the NTLM acceptor.
type accounts map[string]string // user -> password

func (a accounts) LookupNT(_ context.Context, domain, user string) (ntlm.Account, error) {
	pw, ok := a[strings.ToLower(user)]
	if !ok {
		return ntlm.Account{}, ntlm.ErrUnknownUser
	}
	return ntlm.Account{User: strings.ToLower(user), Domain: strings.ToUpper(domain), NTHash: ntlm.NTHash(pw)}, nil
}

// ntlmServer serves h behind a real NTLM acceptor over TLS (HTTP/1.1), as
// devsvc serves the external listener.
func ntlmServer(t *testing.T, h http.Handler) (url string, cs *certs.Store) {
	t.Helper()
	cs = certstest.NewStore(t, certs.Config{})
	acc := ntlm.NewAcceptor(accounts{"alice": "Passw0rd!"}, ntlm.Config{})
	srv := httptest.NewUnstartedServer(acc.Require(h))
	srv.Config.ConnContext = acc.ConnContext
	srv.Listener = tls.NewListener(srv.Listener, cs.ServerTLSConfig())
	srv.Start()
	t.Cleanup(srv.Close)
	return "https://" + srv.Listener.Addr().String(), cs
}

func TestExternalCheckInWithNTLM(t *testing.T) {
	st := offerStore(t)
	// A site holds the loopback address the edge's devices come from; they
	// belong to the remote site all the same.
	lab := firmware.Site{Name: "lab", Subnets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if _, err := st.PutSite(context.Background(), "test", lab, false); err != nil {
		t.Fatal(err)
	}
	srv := deviceapi.New(st, deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Now: fixedClock})
	url, cs := ntlmServer(t, srv.External())
	tr := &http.Transport{TLSClientConfig: cs.DeviceTLSConfig()}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: tr}}

	post := func(path string, body []byte, user, password string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("POST", url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The device says bob is signed in, but alice authenticated: alice counts.
	c := deviceproto.CheckIn{Identity: cx500, MAC: macDevice, User: "bob", Modules: []firmware.Module{{Name: "CX500.nbt", Version: v2}}}
	resp := post(deviceproto.CheckInPathExt, c.AppendXML(nil), "CONTOSO\\alice", "Passw0rd!")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("external check-in = %d %q, want 200", resp.StatusCode, body)
	}
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != v1 || a.ExternalURL != extURL+"DeviceUpdateFiles_Ext/UCPhone/Polycom/CX500/A/ENU/"+v1.String()+"/" {
		t.Errorf("answer offers %v at %q, want %v at the external URL", a.Version, a.ExternalURL, v1)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := st.Device(context.Background(), macDevice)
	if err != nil {
		t.Fatal(err)
	}
	if d.Location != firmware.External || d.User != "alice" || d.Address != "127.0.0.1" || d.Site != firmware.RemoteSite {
		t.Errorf("inventory: location %q user %q address %q site %q, want external, alice, 127.0.0.1, remote", d.Location, d.User, d.Address, d.Site)
	}

	// The file and the report, through the same authenticated connection.
	req, _ := http.NewRequest("GET", url+"/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX500/A/ENU/"+v1.String()+"/CX500.nbt", nil)
	req.SetBasicAuth("CONTOSO\\alice", "Passw0rd!")
	fresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(fresp.Body)
	fresp.Body.Close()
	if fresp.StatusCode != 200 || !bytes.Equal(data, imageOf(cx500, v1)) {
		t.Errorf("external download = %d with %d bytes, want 200 with the image", fresp.StatusCode, len(data))
	}
	// Served to a signed-in user: no shared cache may keep it.
	if cc := fresp.Header.Get("Cache-Control"); cc != "private, max-age=31536000, immutable" {
		t.Errorf("external download Cache-Control %q, want private (behind NTLM), kept by the device only", cc)
	}
	if resp := post(deviceproto.StatusPathExt, statusBody(macDevice, firmware.StateSuccess, v1, ""), "CONTOSO\\alice", "Passw0rd!"); resp.StatusCode != 204 {
		t.Errorf("external report = %d, want 204", resp.StatusCode)
	}

	// Nobody signed in: the edge refuses before the handler runs.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: cs.DeviceTLSConfig()}}
	presp, err := plain.Post(url+deviceproto.CheckInPathExt, "application/xml", bytes.NewReader(c.AppendXML(nil)))
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != 401 {
		t.Errorf("external check-in without credentials = %d, want 401", presp.StatusCode)
	}
}

// TestExternalWithoutUser mounts the external handler without the NTLM
// wrapper: every request is refused, and nothing is recorded.
func TestExternalWithoutUser(t *testing.T) {
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock})
	tests := []struct {
		name, method, path string
		body               []byte
	}{
		{"check-in", "POST", deviceproto.CheckInPathExt, checkInBody(cx500, macDevice, v2)},
		{"status", "POST", deviceproto.StatusPathExt, statusBody(macDevice, firmware.StateDownloading, v1, "")},
		{"file", "GET", deviceproto.FilesPrefixExt + "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/CX500.nbt", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(srv.External(), tt.method, tt.path, tt.body)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "signed-in user") {
				t.Errorf("%s %s without a user = %d %q, want 403 naming the signed-in user", tt.method, tt.path, w.Code, w.Body.String())
			}
		})
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds, _ := st.Devices(context.Background()); len(ds) != 0 {
		t.Errorf("refused requests recorded devices: %+v", ds)
	}
}
