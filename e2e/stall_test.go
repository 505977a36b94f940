package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
)

// The stall attacks of issue #11: peers that send a request's headers and
// the first bytes of its body, then stall. They must take nothing the
// devices need: normal check-ins are answered meanwhile, and the server
// drops each stalled peer at its deadline.
//
// TestStalledPeers runs them with short deadlines set through the
// settings, so that the real process uses them. With
// OPENDUS_STALL_FIGURES=1 it also runs each check-in attack alone, and all
// of them on a service with the default settings (request_body_timeout
// 10 s, log_upload_timeout 2 min), and logs the figures.

const (
	stalledHTTP1   = 1100 // stalled HTTP/1.1 bodies
	stalledStreams = 1000 // stalled HTTP/2 streams
	streamsPerConn = 100  // the server's HTTP/2 limit per connection
	normalCheckIns = 300  // check-ins of real devices during an attack
	normalWorkers  = 16   // at once, each on a new connection as a phone does
	stalledUploads = 1100 // stalled log uploads
	// slack is how much earlier than its deadline a peer may see itself
	// dropped: the server's deadline runs from when its handler starts,
	// a little before the peer, once its write returned, notes its start.
	slack = 250 * time.Millisecond
)

// attackEnv is a running service and what its attackers and devices need.
type attackEnv struct {
	svc    *devsvctest.Service
	tls    *tls.Config // a device's, with the name the service gives devices
	host   string      // ucupdates-r2.contoso.com:port
	addr   string      // the internal listener
	bodyTO time.Duration
}

func newAttackEnv(t *testing.T, settings map[string]string) *attackEnv {
	t.Helper()
	svc := startService(t, func(dir string) {
		for k, v := range settings {
			setSetting(t, dir, k, v)
		}
	})
	caPEM, err := os.ReadFile(filepath.Join(svc.Dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	_, port, _ := net.SplitHostPort(svc.Run.Internal)
	bodyTO := 10 * time.Second
	if v, ok := settings["request_body_timeout"]; ok {
		if bodyTO, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	return &attackEnv{svc: svc, addr: svc.Run.Internal, host: "ucupdates-r2." + domain + ":" + port, bodyTO: bodyTO,
		tls: &tls.Config{RootCAs: pool, ServerName: "ucupdates-r2." + domain, ClientSessionCache: tls.NewLRUClientSessionCache(256)}}
}

// from returns a dialer whose connections come from the loopback address
// 127.0.0.n.
func from(n int) *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
}

// drops collects when and how the service dropped n stalled peers; all
// is closed when it has heard of every one.
type drops struct {
	mu     sync.Mutex
	n      int
	byCode map[int][]time.Duration // answer -> from the peer's start to its drop
	first  time.Time               // the earliest drop
	bad    []string                // peers not dropped as they should be
	all    chan struct{}
	added  chan struct{} // a drop was added
}

func newDrops(n int) *drops {
	return &drops{n: n, byCode: map[int][]time.Duration{}, all: make(chan struct{}), added: make(chan struct{}, 1)}
}

// add records a peer dropped with the answer code, or bad.
func (d *drops) add(start time.Time, code int, bad string) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if bad != "" {
		d.bad = append(d.bad, bad)
	} else {
		d.byCode[code] = append(d.byCode[code], now.Sub(start))
		if d.first.IsZero() || now.Before(d.first) {
			d.first = now
		}
	}
	if d.n--; d.n == 0 {
		close(d.all)
	}
	select {
	case d.added <- struct{}{}:
	default:
	}
}

// waitFor waits (bounded) until n peers were answered code.
func (d *drops) waitFor(t *testing.T, code, n int, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for d.count(code) < n {
		select {
		case <-d.added:
		case <-timeout:
			t.Fatalf("%d peers answered %d within %v, want %d", d.count(code), code, within, n)
		}
	}
}

// wait waits (bounded) until every peer was heard of.
func (d *drops) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-d.all:
	case <-time.After(within):
		d.mu.Lock()
		defer d.mu.Unlock()
		t.Fatalf("%d stalled peers were not dropped within %v", d.n, within)
	}
	if len(d.bad) > 0 {
		t.Errorf("%d stalled peers not dropped as they should be: %q", len(d.bad), d.bad[:min(5, len(d.bad))])
	}
}

// count returns how many peers were answered code so far.
func (d *drops) count(code int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byCode[code])
}

// firstDrop returns the time of the earliest drop, zero if none yet.
func (d *drops) firstDrop() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first
}

// stallHTTP1 opens n TLS connections from the addresses 127.0.0.first...
// (100 each), on each sends headers with Content-Length and the first
// bytes of the body, then stalls. It returns once every connection has
// sent them; each connection's drop (one of the answers want, then the
// connection closed) is recorded in d, and wg is done when all are.
func (e *attackEnv) stallHTTP1(t *testing.T, n, first int, path string, contentLength int, want []int, d *drops, wg *sync.WaitGroup) {
	t.Helper()
	cfg := e.tls.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	sent := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			c, err := tls.DialWithDialer(from(first+i/100), "tcp", e.addr, cfg)
			if err == nil {
				_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n<Device", path, e.host, contentLength)
			}
			<-sem
			sent <- err
			if err != nil {
				return
			}
			defer c.Close()
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				d.add(start, 0, fmt.Sprintf("HTTP/1.1 peer: %v", err))
				return
			}
			io.Copy(io.Discard, resp.Body)
			if !slices.Contains(want, resp.StatusCode) {
				d.add(start, 0, fmt.Sprintf("HTTP/1.1 peer answered %d, want one of %v", resp.StatusCode, want))
				return
			}
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				d.add(start, 0, fmt.Sprintf("HTTP/1.1 peer: after the %d the connection is not closed: %v", resp.StatusCode, err))
				return
			}
			d.add(start, resp.StatusCode, "")
		})
	}
	for range n {
		if err := <-sent; err != nil {
			t.Fatalf("stalled HTTP/1.1 peer: %v", err)
		}
	}
}

// stallingBody gives its first bytes, then tells that it was asked for
// more and blocks until done is closed.
type stallingBody struct {
	first   []byte
	stalled chan<- struct{}
	once    sync.Once
	done    <-chan struct{}
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	b.once.Do(func() { b.stalled <- struct{}{} })
	<-b.done
	return 0, io.ErrUnexpectedEOF
}

// stallHTTP2 opens n check-in streams, streamsPerConn on each HTTP/2
// connection (one client per connection, from 127.0.0.first...), each
// with a Content-Length and the first bytes of its body, then stalled. It
// returns once every stream has sent them; drops are recorded in d.
func (e *attackEnv) stallHTTP2(t *testing.T, n, first int, d *drops, wg *sync.WaitGroup, done <-chan struct{}) {
	t.Helper()
	stalled := make(chan struct{}, n)
	for c := range (n + streamsPerConn - 1) / streamsPerConn {
		cfg := e.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		dial := from(first + c)
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxConnsPerHost: 1,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dial.DialContext(ctx, network, e.addr)
			}}
		t.Cleanup(tr.CloseIdleConnections)
		for range min(streamsPerConn, n-c*streamsPerConn) {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", "https://"+e.host+deviceproto.CheckInPath,
					&stallingBody{first: []byte("<DeviceUpdateRequest"), stalled: stalled, done: done})
				req.ContentLength = 1000
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				switch {
				case err != nil:
					d.add(start, 0, fmt.Sprintf("HTTP/2 stream: %v", err))
				case resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout:
					d.add(start, 0, fmt.Sprintf("HTTP/2 stream answered %s %d, want HTTP/2 408", resp.Proto, resp.StatusCode))
				default:
					d.add(start, resp.StatusCode, "")
				}
				if err == nil {
					<-done // Close waits for the body's writer, stalled until then
					resp.Body.Close()
				}
			})
		}
	}
	timeout := time.After(2 * time.Minute)
	for range n {
		select {
		case <-stalled:
		case <-timeout:
			t.Fatalf("the HTTP/2 streams did not all start within 2 minutes")
		}
	}
}

// checkIns runs normalCheckIns check-ins of distinct devices, each on a
// new connection from 127.0.0.1, normalWorkers at once, and returns the
// latencies of those answered 200 and the other outcomes.
func (e *attackEnv) checkIns(t *testing.T, round int) (ok []time.Duration, failed []string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: e.tls.Clone(), DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return from(1).DialContext(ctx, network, e.addr)
		}}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for range normalWorkers {
		wg.Go(func() {
			for i := range work {
				ci := deviceproto.CheckIn{Identity: cx600, MAC: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", round, i/256, i%256),
					Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("3.5.6907.35")}}}
				start := time.Now()
				resp, err := c.Post("https://"+e.host+deviceproto.CheckInPath, "application/xml; charset=utf-8", strings.NewReader(string(ci.AppendXML(nil))))
				lat := time.Since(start)
				mu.Lock()
				switch {
				case err != nil:
					failed = append(failed, err.Error())
				case resp.StatusCode != 200:
					failed = append(failed, resp.Status)
				default:
					ok = append(ok, lat)
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	for i := range normalCheckIns {
		work <- i
	}
	close(work)
	wg.Wait()
	return ok, failed
}

// p returns the q-quantile of ds (sorted in place).
func p(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// checkInAttack stalls h1 HTTP/1.1 bodies and h2 HTTP/2 streams on the
// internal listener, runs normal check-ins while all of them stall, and
// checks that at least 99% of those are answered 200 within 1 s. The
// function it returns waits until every stalled peer is dropped, and
// checks that each was dropped at the body deadline (plus slack).
func checkInAttack(t *testing.T, e *attackEnv, name string, h1, h2 int, round int) (dropped func()) {
	d := newDrops(h1 + h2)
	var wg sync.WaitGroup
	done := make(chan struct{})
	start := time.Now()
	if h1 > 0 {
		e.stallHTTP1(t, h1, 2, deviceproto.CheckInPath, 1000, []int{http.StatusRequestTimeout}, d, &wg)
	}
	if h2 > 0 {
		e.stallHTTP2(t, h2, 40, d, &wg, done)
	}
	setup := time.Since(start)
	ok, failed := e.checkIns(t, round)
	normalEnd := time.Now()
	if firstDrop := d.firstDrop(); !firstDrop.IsZero() && firstDrop.Before(normalEnd) {
		t.Errorf("%s: a stalled peer was dropped (after %v) before the normal check-ins ended (after %v): they did not all run under the whole attack; the test proves less than it should", name, firstDrop.Sub(start), normalEnd.Sub(start))
	}
	var within []time.Duration
	for _, l := range ok {
		if l <= time.Second {
			within = append(within, l)
		}
	}
	rate := float64(len(within)) / normalCheckIns
	t.Logf("%s: %d stalled HTTP/1.1 bodies and %d stalled HTTP/2 streams set up in %v; %d normal check-ins: %.1f%% answered 200 within 1 s, latency p50 %v p99 %v max %v",
		name, h1, h2, setup.Round(time.Millisecond), normalCheckIns, 100*rate, p(ok, .5).Round(time.Millisecond), p(ok, .99).Round(time.Millisecond), p(ok, 1).Round(time.Millisecond))
	if rate < 0.99 {
		t.Errorf("%s: %.1f%% of the normal check-ins answered 200 within 1 s, want at least 99%%; failures: %q", name, 100*rate, failed[:min(len(failed), 5)])
	}
	return func() {
		t.Helper()
		defer func() { close(done); wg.Wait() }()
		d.checkInDrops(t, e, name)
	}
}

// checkInDrops waits until every stalled check-in was dropped and checks
// when.
func (d *drops) checkInDrops(t *testing.T, e *attackEnv, name string) {
	t.Helper()
	// Every stalled peer is dropped at the deadline (the HTTP/2 writers
	// end only once done is closed: wait for the drops, not for them).
	d.wait(t, e.bodyTO+time.Minute)
	after := d.byCode[http.StatusRequestTimeout]
	t.Logf("%s: %d stalled peers answered 408 and dropped %v to %v (p99 %v) after they stalled (request_body_timeout %v)", name, len(after),
		p(after, 0).Round(time.Millisecond), p(after, 1).Round(time.Millisecond), p(after, .99).Round(time.Millisecond), e.bodyTO)
	if p(after, 0) < e.bodyTO-slack || p(after, 1) > e.bodyTO+5*time.Second {
		t.Errorf("%s: stalled peers dropped %v to %v after they stalled, want from %v to %v", name, p(after, 0), p(after, 1), e.bodyTO, e.bodyTO+5*time.Second)
	}
}

// uploadAttack stalls log uploads of 1,024,000 bytes from eleven addresses,
// a hundred each: each address reserves at most max_log_upload_per_address
// of max_log_storage, so a real upload from another address is accepted
// meanwhile; at log_upload_timeout the stalled ones are dropped and their
// space freed.
func uploadAttack(t *testing.T, e *attackEnv, uploadTO time.Duration) {
	var wg sync.WaitGroup
	start := time.Now()
	path := "/RequestHandler/logupload.upx?type=CELog&name=stall.clg"
	// Each address has two uploads reserved (max_log_upload_per_address
	// is a sixteenth of max_log_storage, 32 MiB: 2 MiB); the rest are
	// refused 429 at once.
	const addrs, perAddr = stalledUploads / 100, 2
	d := newDrops(stalledUploads)
	e.stallHTTP1(t, stalledUploads, 60, path, 1024000, []int{http.StatusRequestTimeout, http.StatusTooManyRequests}, d, &wg)
	// Every upload past its address's share has been refused: the others
	// hold their reservations.
	d.waitFor(t, http.StatusTooManyRequests, stalledUploads-addrs*perAddr, time.Minute)
	setup := time.Since(start)
	upload := func(n int) (int, string) {
		tr := &http.Transport{TLSClientConfig: e.tls.Clone(), DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return from(n).DialContext(ctx, network, e.addr)
			}}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		t0 := time.Now()
		resp, err := c.Post("https://"+e.host+"/RequestHandler/logupload.upx?type=CELog&name=real.clg&mac=00-04-F2-00-00-01", "application/octet-stream", strings.NewReader(strings.Repeat("log line\n", 100000)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		t.Logf("log uploads: a real upload from 127.0.0.%d: %d in %v", n, resp.StatusCode, time.Since(t0).Round(time.Millisecond))
		return resp.StatusCode, string(b)
	}
	if code, body := upload(1); code != http.StatusCreated {
		t.Errorf("a real upload while %d uploads stall = %d %q, want 201", stalledUploads, code, body)
	}
	if d.count(http.StatusRequestTimeout) > 0 {
		t.Errorf("a stalled upload was dropped before the real upload: the test proves less than it should")
	}
	d.wait(t, uploadTO+time.Minute)
	held, refused := d.byCode[http.StatusRequestTimeout], d.byCode[http.StatusTooManyRequests]
	t.Logf("log uploads: %d stalled uploads from %d addresses set up in %v; %d refused 429 within %v; %d held, dropped %v to %v after they stalled (log_upload_timeout %v)",
		stalledUploads, addrs, setup.Round(time.Millisecond), len(refused), p(refused, 1).Round(time.Millisecond),
		len(held), p(held, 0).Round(time.Millisecond), p(held, 1).Round(time.Millisecond), uploadTO)
	if len(held) != addrs*perAddr {
		t.Errorf("%d stalled uploads held a reservation, want %d (%d per address)", len(held), addrs*perAddr, perAddr)
	}
	if p(held, 0) < uploadTO-slack || p(held, 1) > uploadTO+5*time.Second {
		t.Errorf("stalled uploads dropped %v to %v after they stalled, want from %v to %v", p(held, 0), p(held, 1), uploadTO, uploadTO+5*time.Second)
	}
	// Their space is free again: an attacker's address uploads too.
	if code, body := upload(60); code != http.StatusCreated {
		t.Errorf("an upload from an attacker's address after its stalls were dropped = %d %q, want 201", code, body)
	}
}

func TestStalledPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of connections")
	}
	figures := os.Getenv("OPENDUS_STALL_FIGURES") != ""
	// The deadlines must outlast setting up the attack and the normal
	// check-ins, which the race detector slows (about 6 s and 3 s), and a
	// loaded machine too: 1,100 uploads' handshakes took over 3 s beside
	// other tests, and an upload dropped at its deadline before the last
	// ones came freed its address's share for one of them.
	body, upload := 5*time.Second, 8*time.Second
	if devsvctest.Race() {
		body, upload = 15*time.Second, 20*time.Second
	}
	t.Run("short deadlines", func(t *testing.T) {
		e := newAttackEnv(t, map[string]string{"request_body_timeout": body.String(), "log_upload_timeout": upload.String(), "max_log_storage": "33554432"})
		importVersion(t, e.svc, "4.0.7577.4372", 1000, cx600)
		e.svc.CLI(t, "approve", cx600.Path())
		if figures {
			checkInAttack(t, e, "HTTP/1.1 bodies", stalledHTTP1, 0, 1)()
			checkInAttack(t, e, "HTTP/2 streams", 0, stalledStreams, 2)()
		}
		// The uploads stall while the check-ins' attackers wait for their
		// deadline: one wait for both.
		dropped := checkInAttack(t, e, "both", stalledHTTP1, stalledStreams, 3)
		uploadAttack(t, e, upload)
		dropped()
		logs := e.svc.Logs()
		if !strings.Contains(logs, "dropped requests whose body stalled") {
			t.Errorf("the service did not log the stalled bodies")
		}
		if n := strings.Count(logs, "dropped requests whose body stalled"); n > 5 {
			t.Errorf("the service logged the stalled bodies %d times, want a few (rate-limited)", n)
		}
		if strings.Contains(logs, "shedding load") {
			t.Errorf("the service shed load under the stall attacks")
		}
	})
	if !figures {
		return
	}
	t.Run("defaults", func(t *testing.T) {
		e := newAttackEnv(t, map[string]string{"max_log_storage": "33554432"})
		importVersion(t, e.svc, "4.0.7577.4372", 1000, cx600)
		e.svc.CLI(t, "approve", cx600.Path())
		checkInAttack(t, e, "defaults, HTTP/1.1 bodies", stalledHTTP1, 0, 4)()
		checkInAttack(t, e, "defaults, HTTP/2 streams", 0, stalledStreams, 5)()
		checkInAttack(t, e, "defaults, both", stalledHTTP1, stalledStreams, 6)()
		uploadAttack(t, e, 2*time.Minute)
	})
}
