package deviceapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// records is a slog handler that keeps the messages logged and signals
// each on a channel.
type records struct {
	mu   sync.Mutex
	msgs []string
	c    chan string
}

func newRecords() *records { return &records{c: make(chan string, 1024)} }

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	select {
	case r.c <- rec.Message:
	default:
	}
	return nil
}

// count returns how many records start with prefix.
func (r *records) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// wait waits (bounded) for a record that starts with prefix.
func (r *records) wait(t *testing.T, prefix string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case m := <-r.c:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no log record %q within %v", prefix, within)
		}
	}
}

// tlsServer serves h over real TLS, with HTTP/2 offered. With sndbuf
// set, accepted connections get that send buffer.
func tlsServer(t *testing.T, h http.Handler, sndbuf ...int) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	if len(sndbuf) > 0 {
		ts.Listener = sndbufListener{ts.Listener, sndbuf[0]}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// sndbufListener sets the send buffer of the connections it accepts.
type sndbufListener struct {
	net.Listener
	size int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// client returns an HTTP client of ts speaking HTTP/2 or HTTP/1.1 only,
// whose connections have a receive buffer of rcvbuf bytes when it is not
// zero (so a reader that stops is felt by the server at once).
func client(t *testing.T, ts *httptest.Server, h2 bool, rcvbuf int) *http.Client {
	cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	if h2 {
		cfg.NextProtos = []string{"h2"}
	}
	d := &net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return err
		}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// stallHTTP1 opens a TLS connection that sends a check-in's headers and
// the first bytes of its body, then stalls.
func stallHTTP1(t *testing.T, ts *httptest.Server) *tls.Conn {
	t.Helper()
	cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", ts.Listener.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: ucupdates-r2.contoso.com\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<DeviceUpdate", deviceproto.CheckInPath)
	return c
}

// stallingBody gives its first bytes, then blocks until done is closed.
type stallingBody struct {
	first []byte
	done  <-chan struct{}
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.done
	return 0, io.ErrUnexpectedEOF
}

// TestStalledBodiesHoldNoSlot: peers that send a check-in's headers and a
// few bytes of its body and then stall, over HTTP/1.1 and on HTTP/2
// streams, take none of the in-flight slots: normal check-ins are
// answered meanwhile. Each stalled request is answered 408 at
// BodyTimeout and its connection closed; the drops are counted and
// logged once.
func TestStalledBodiesHoldNoSlot(t *testing.T) {
	const (
		slots   = 4
		stalled = 3 * slots
		// Long enough for the normal check-ins on a loaded machine
		// (they took 540 ms under race beside other tests).
		timeout = 2 * time.Second
	)
	rec := newRecords()
	st := offerStore(t)
	srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, MaxInFlight: slots, BodyTimeout: timeout, Logger: slog.New(rec)})
	entered := make(chan struct{}, 4*stalled)
	ts := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		srv.Internal().ServeHTTP(w, r)
	}))
	start := time.Now()
	// HTTP/1.1 peers.
	var conns []*tls.Conn
	for range stalled {
		conns = append(conns, stallHTTP1(t, ts))
	}
	// HTTP/2 streams, on one connection.
	done := make(chan struct{})
	defer close(done)
	h2 := client(t, ts, true, 0)
	type result struct {
		code  int
		proto string
		err   error
		after time.Duration
	}
	h2results := make(chan result, stalled)
	for range stalled {
		go func() {
			req, _ := http.NewRequest("POST", ts.URL+deviceproto.CheckInPath, &stallingBody{first: []byte("<DeviceUpdate"), done: done})
			req.ContentLength = 1000
			resp, err := h2.Do(req)
			r := result{err: err, after: time.Since(start)}
			if err == nil {
				r.code, r.proto = resp.StatusCode, resp.Proto
			}
			h2results <- r
			if err == nil {
				<-done // Close waits for the body's writer, which stalls until then
				resp.Body.Close()
			}
		}()
	}
	for range 2 * stalled {
		<-entered
	}
	// Every stalled request is in the handler: normal check-ins over
	// both protocols are answered all the same.
	for _, c := range []*http.Client{client(t, ts, false, 0), h2} {
		for i := range 2 * slots {
			body := checkInBody(cx600, fmt.Sprintf("00-04-F2-00-02-%02d", i), v1)
			resp, err := c.Post(ts.URL+deviceproto.CheckInPath, "application/xml", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("check-in %d (%s) while %d peers stall = %d, want 200", i, resp.Proto, 2*stalled, resp.StatusCode)
			}
		}
	}
	if d := time.Since(start); d >= timeout {
		t.Fatalf("the normal check-ins took %v, not within the stall deadline %v: the test proves nothing", d, timeout)
	}
	// The HTTP/1.1 peers get 408, then the server closes their connection.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled peer %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive in time") {
			t.Errorf("stalled peer %d = %d %q, want 408", i, resp.StatusCode, body)
		}
		var one [1]byte
		if n, err := c.Read(one[:]); err != io.EOF {
			t.Errorf("stalled peer %d: after the 408 read %d bytes, %v; want EOF (connection closed)", i, n, err)
		}
		if d := time.Since(start); d < timeout || d > timeout+5*time.Second {
			t.Errorf("stalled peer %d dropped after %v, want about %v", i, d, timeout)
		}
	}
	for range stalled {
		r := <-h2results
		if r.err != nil || r.code != http.StatusRequestTimeout || r.proto != "HTTP/2.0" {
			t.Errorf("stalled HTTP/2 stream = %d %s %v, want 408 over HTTP/2", r.code, r.proto, r.err)
		}
		if r.after < timeout || r.after > timeout+5*time.Second {
			t.Errorf("stalled HTTP/2 stream dropped after %v, want about %v", r.after, timeout)
		}
	}
	if got := srv.Stats().BodyTimeouts; got != 2*stalled {
		t.Errorf("Stats().BodyTimeouts = %d, want %d", got, 2*stalled)
	}
	if got := rec.count("dropped requests whose body stalled"); got != 1 {
		t.Errorf("%d log records of the stalled bodies, want 1 (rate-limited)", got)
	}
}

// TestDownloadStall: a download whose client stops reading is dropped
// after DownloadStall; one that keeps moving, for many times
// DownloadStall in all, completes. Over HTTP/1.1 and HTTP/2.
func TestDownloadStall(t *testing.T) {
	const (
		// A second: a loaded machine (the race detector beside other
		// tests) paused the slow reader for more than 300 ms.
		stall = time.Second
		size  = 8 << 20
	)
	st := openStore(t)
	image := content("big", size)
	sum := sha256.Sum256(image)
	u := firmware.ImportUpdate{Identity: cx600, Version: v1, UpdateType: "Firmware", Files: []firmware.ImportFile{storeFile("CX600.nbt", image)}}
	if _, err := st.Import(context.Background(), "test", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	approve(t, st, cx600)
	path := deviceproto.FilesPrefix + "UCPhone/Polycom/CX600/A/ENU/" + v1.String() + "/CX600.nbt"
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(name+"/stopped", func(t *testing.T) {
			rec := newRecords()
			srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, DownloadStall: stall, Logger: slog.New(rec)})
			ts := tlsServer(t, srv.Internal())
			resp, err := client(t, ts, h2, 64<<10).Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			start := time.Now()
			if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			// The client stops reading; the server drops the download.
			rec.wait(t, "dropped downloads that made no progress", 10*time.Second)
			if d := time.Since(start); d < stall {
				t.Errorf("dropped after %v, before the stall timeout %v", d, stall)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && 64<<10+n == size {
				t.Errorf("the stalled download was not dropped: all %d bytes arrived", size)
			}
			if got := srv.Stats().DownloadsStalled; got != 1 {
				t.Errorf("Stats().DownloadsStalled = %d, want 1", got)
			}
		})
		t.Run(name+"/slow but moving", func(t *testing.T) {
			srv := deviceapi.New(st, deviceapi.Config{Now: fixedClock, DownloadStall: stall})
			// The send buffer of a slow link: on loopback the kernel grows
			// it to 4 MiB, and wakes a blocked writer only once a third of
			// it is free, which a client this slow does not drain within
			// the stall timeout of this test (it does within the default
			// minute: see DownloadStall).
			ts := tlsServer(t, srv.Internal(), 256<<10)
			resp, err := client(t, ts, h2, 64<<10).Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// 256 KiB every stall/4: the whole file takes eight times the
			// stall timeout.
			tick := time.NewTicker(stall / 4)
			defer tick.Stop()
			start := time.Now()
			h := sha256.New()
			buf := make([]byte, 256<<10)
			var total int
			for {
				n, err := io.ReadFull(resp.Body, buf)
				h.Write(buf[:n])
				total += n
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					break
				}
				if err != nil {
					t.Fatalf("slow download broke off after %d bytes in %v: %v", total, time.Since(start), err)
				}
				<-tick.C
			}
			if total != size || !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Errorf("slow download got %d bytes, want the whole %d", total, size)
			}
			if d := time.Since(start); d < 5*stall {
				t.Errorf("the slow download took %v, not over five times the stall timeout: the test proves nothing", d)
			}
			if got := srv.Stats().DownloadsStalled; got != 0 {
				t.Errorf("Stats().DownloadsStalled = %d, want 0", got)
			}
		})
	}
}
