package adminapi

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
)

// TestHandshakeTimeout: a connection to the admin listener that never
// finishes the TLS handshake (it sends nothing, or half a ClientHello) is
// closed at HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cs := certstest.NewStore(t, certs.Config{})
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := NewServer(service.New(st, service.Config{SpoolDir: t.TempDir()}), Config{HandshakeTimeout: timeout})
	g := srv.GRPCServer(cs.AdminServerTLSConfig())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	for _, tt := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"half a ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			c.Write(tt.send)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c)
			// The server starts its clock at accept, which may come before
			// this side's start: allow a little early.
			if d := time.Since(start); err != nil || d < timeout*3/4 || d > timeout+5*time.Second {
				t.Errorf("connection closed after %v (%v), want EOF at about %v", d, err, timeout)
			}
		})
	}
}
