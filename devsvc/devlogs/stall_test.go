package devlogs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stalledUpload starts an upload from the local address from with a
// Content-Length of size, sends a few bytes of the body and stalls.
func stalledUpload(t *testing.T, e *env, from string, size int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\nfirst bytes",
		Path, q("type", "CELog", "name", "phone.clg"), size)
	return c
}

// uploadFrom uploads body from the local address from and returns the
// answer's status, body and Retry-After.
func uploadFrom(t *testing.T, e *env, from string, body string) (int, string, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	resp, err := c.Post(e.srv.URL+Path+"?"+q("type", "CELog", "name", "real.clg"), "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

// TestStalledUploadsCannotHoldTheDisk: one address that starts uploads and
// stalls reserves at most MaxPerAddress, so other addresses still upload;
// a stalled body is answered 408 at ReadTimeout, its connection closed
// and its reservation freed, after which the address uploads again.
func TestStalledUploadsCannotHoldTheDisk(t *testing.T) {
	const (
		size    = 1000
		timeout = 300 * time.Millisecond
	)
	e := newEnv(t, Config{MaxSize: size, MaxTotal: 10 * size, MaxPerAddress: 3 * size, ReadTimeout: timeout})
	reserved := make(chan struct{}, 16)
	e.h.reserved = func() { reserved <- struct{}{} }
	start := time.Now()
	var stalled []net.Conn
	for range 3 {
		stalled = append(stalled, stalledUpload(t, e, "127.0.0.1", size))
		<-reserved
	}
	// The fourth stall is refused at once, whatever the total allows.
	// (An answer before its reservation proves the three hold theirs.)
	c := stalledUpload(t, e, "127.0.0.1", size)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a fourth stalled upload from the address = %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := e.h.Reserved("127.0.0.1"); got != 3*size {
		t.Errorf("Reserved(127.0.0.1) = %d, want %d", got, 3*size)
	}
	// Another address uploads meanwhile.
	if code, body, _ := uploadFrom(t, e, "127.0.0.2", "a real log"); code != http.StatusCreated {
		t.Errorf("upload from another address while one stalls = %d %q, want 201", code, body)
	}
	// At ReadTimeout the stalled uploads get 408 and their connections close.
	for i, c := range stalled {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled upload %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "stalled") {
			t.Errorf("stalled upload %d = %d %q, want 408", i, resp.StatusCode, b)
		}
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("stalled upload %d: read %d, %v after the answer, want EOF", i, n, err)
		}
		if d := time.Since(start); d < timeout || d > timeout+5*time.Second {
			t.Errorf("stalled upload %d dropped after %v, want about %v", i, d, timeout)
		}
	}
	if got := e.h.Reserved("127.0.0.1"); got != 0 {
		t.Errorf("Reserved(127.0.0.1) after the stalls = %d, want 0", got)
	}
	if got, want := e.h.Used(), int64(len("a real log")); got != want {
		t.Errorf("Used() = %d, want %d (the stored log)", got, want)
	}
	if code, body, _ := uploadFrom(t, e, "127.0.0.1", "now it works"); code != http.StatusCreated {
		t.Errorf("upload from the address after its stalls ended = %d %q, want 201", code, body)
	}
}

func TestAddressKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"10.0.0.7:1234", "10.0.0.7"},
		{"[::ffff:10.0.0.7]:1234", "10.0.0.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"somewhere", "somewhere"},
	} {
		if got := addressKey(tt.remote); got != tt.want {
			t.Errorf("addressKey(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
