package provisioning_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/provisioning"
)

// TestStalledSignInBody: a sign-in whose body stalls is answered 408 at
// BodyTimeout and its connection closed, on real TLS.
func TestStalledSignInBody(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := httptest.NewTLSServer(provisioning.NewHandler(provisioning.Config{InternalURL: intBase, Enabled: true, BodyTimeout: timeout}))
	defer ts.Close()
	cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c, err := tls.Dial("tcp", ts.Listener.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6cA==\r\nContent-Length: 100\r\n\r\nsome", provisioning.Path)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled sign-in = %d, want 408", resp.StatusCode)
	}
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the answer: read %d, %v; want EOF (connection closed)", n, err)
	}
	if d := time.Since(start); d < timeout || d > timeout+5*time.Second {
		t.Errorf("dropped after %v, want about %v", d, timeout)
	}
}
