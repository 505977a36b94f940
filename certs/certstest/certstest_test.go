package certstest_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
)

func TestNewServer(t *testing.T) {
	store := certstest.NewStore(t, certs.Config{})
	srv := certstest.NewServer(t, store.ServerTLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := certstest.Client(store.DeviceTLSConfig(), srv.Listener.Addr().String())
	urls := []string{
		srv.URL + "/",
		"https://localhost:" + port + "/",
		"https://ucupdates-r2." + certstest.Domain + ":" + port + "/",
		"https://" + certstest.HostName + ":" + port + "/",
	}
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != "ok" {
				t.Errorf("GET %s = %q, want ok", u, body)
			}
			if got, want := resp.TLS.PeerCertificates[0].SerialNumber, store.ServerCertificate().SerialNumber; got.Cmp(want) != 0 {
				t.Errorf("GET %s: serial %x, want the store's %x", u, got, want)
			}
		})
	}
}
