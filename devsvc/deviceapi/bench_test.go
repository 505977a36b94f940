package deviceapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/metrics"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
)

// fleet returns n check-in bodies of distinct devices, a tenth of them
// offered an update, the rest already up to date.
func fleet(n int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		v := v1
		if i%10 == 0 {
			v = v2
		}
		mac := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		bodies[i] = checkInBody(cx500, mac, v)
	}
	return bodies
}

// benchServer serves h over TLS on loopback as devsvc serves the internal
// listener (http.Server.ServeTLS with the certs package's configuration,
// so HTTP/1.1 and HTTP/2 are offered), and returns its address and a
// device TLS configuration that trusts it.
func benchServer(b *testing.B, h http.Handler) (addr string, cfg *tls.Config, cs *certs.Store) {
	b.Helper()
	cs = certstest.NewStore(b, certs.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cs.ServerTLSConfig(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), cs.DeviceTLSConfig(), cs
}

// BenchmarkCheckInHandler is the check-in path without network or TLS:
// parse, offer, inventory queue, answer; without and with the metrics (as
// BenchmarkCheckInTLS).
func BenchmarkCheckInHandler(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "metrics=off", true: "metrics=on"}[on], func(b *testing.B) { benchCheckInHandler(b, on) })
	}
}

func benchCheckInHandler(b *testing.B, metricsOn bool) {
	opts, apiCfg := &store.Options{}, deviceapi.Config{}
	if metricsOn {
		opts, apiCfg = withMetrics(b)
	}
	opts.Now = fixedClock
	st := offerStoreWith(b, opts)
	apiCfg.MaxInFlight = 1 << 20
	srv := deviceapi.New(st, apiCfg)
	h := srv.Internal()
	bodies := fleet(10_000)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			body := bodies[next.Add(1)%int64(len(bodies))]
			req := httptest.NewRequest("POST", deviceproto.CheckInPath, bytes.NewReader(body))
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkins/s")
	st.Flush(context.Background())
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkCheckInTLS measures check-ins per second over keep-alive TLS
// (HTTP/1.1, as phones speak) on loopback: 64 client goroutines, each on
// its own connection, post check-ins of 10,000 distinct devices (a tenth
// of them offered an update) to the internal handler over a real store.
// The server runs in a process of its own (TestServerProcess), as devsvc
// would; the clients are lean (a prepared request written on a tls.Conn,
// the answer read by readAnswer) but share the machine's cores with it.
// Besides the rate it reports the CPU time (user+system) per check-in of
// the server process (handler, net/http, TLS, the store's inventory
// writer) and of the clients: on a shared machine the CPU time tells the
// capacity better than the wall clock (capacity ≈ cores / server CPU time,
// with the clients elsewhere). DEVICEAPI_BENCH_INPROCESS=1 runs the server
// in the benchmark's process instead and reports the total as
// cpu-us/checkin.
//
// It runs twice in the same run, metrics=off and metrics=on: with the
// Prometheus metrics devsvc serve keeps with metrics_addr set (the
// Observer counting every check-in, the store timing its commits) and a
// scrape every second, so that their cost is measured against the same
// machine's load (the issue allows 3%).
func BenchmarkCheckInTLS(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "metrics=off", true: "metrics=on"}[on], func(b *testing.B) { benchCheckInTLS(b, on) })
	}
}

// withMetrics returns the store options and the device API configuration
// of a server with metrics on, as devsvc serve makes them, and starts a
// scrape every second until the test or benchmark ends.
func withMetrics(tb testing.TB) (*store.Options, deviceapi.Config) {
	m := metrics.New(metrics.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
			}
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return &store.Options{ObserveCommit: m.ObserveCommit}, deviceapi.Config{Observer: m}
}

func benchCheckInTLS(b *testing.B, metricsOn bool) {
	var (
		addr  string
		cfg   *tls.Config
		stats func() serverStats
	)
	if os.Getenv("DEVICEAPI_BENCH_INPROCESS") != "" {
		opts, apiCfg := &store.Options{}, deviceapi.Config{}
		if metricsOn {
			opts, apiCfg = withMetrics(b)
		}
		st, err := store.Open(b.TempDir(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		importUpdate(b, st, cx500, v1)
		approve(b, st, cx500)
		addr, cfg, _ = benchServer(b, deviceapi.New(st, apiCfg).Internal())
	} else {
		cs := certstest.NewStore(b, certs.Config{})
		server := startServerProcess(b, cs.Dir(), "", metricsOn)
		addr, cfg, stats = server.addr, cs.DeviceTLSConfig(), server.stats
	}
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	cfg.NextProtos = []string{"http/1.1"}
	bodies := fleet(10_000)
	reqs := make([][]byte, len(bodies))
	for i, body := range bodies {
		reqs[i] = append(fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: ucupdates-r2.contoso.com\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n", deviceproto.CheckInPath, len(body)), body...)
	}
	const clients = 64
	type conn struct {
		c  *tls.Conn
		br *bufio.Reader
	}
	conns := make([]conn, clients)
	for i := range conns {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns[i] = conn{c, bufio.NewReader(c)}
	}
	checkIn := func(c conn, req []byte) error {
		if _, err := c.c.Write(req); err != nil {
			return err
		}
		return readAnswer(c.br)
	}
	var next atomic.Int64
	var failed atomic.Value
	per := b.N/clients + 1
	var server0 serverStats
	if stats != nil {
		server0 = stats()
	}
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for range per {
				if err := checkIn(c, reqs[next.Add(1)%int64(len(reqs))]); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	n := float64(per * clients)
	b.ReportMetric(n/b.Elapsed().Seconds(), "checkins/s")
	if stats == nil {
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-us/checkin")
		return
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "client-cpu-us/checkin")
	b.ReportMetric(float64(stats().cpuMicros-server0.cpuMicros)/n, "server-cpu-us/checkin")
}

// readAnswer reads one HTTP/1.1 answer with a Content-Length and checks
// that it is 200: the least a load generator can do, so that the CPU time
// measured is mostly the server's.
func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", line)
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	_, err = br.Discard(length)
	return err
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDownload compares file download throughput with nginx in the
// same run: 16 concurrent clients each download the same 32 MiB image over
// keep-alive TLS (HTTP/1.1) from deviceapi's internal handler, then from
// nginx serving the same file with the same certificate and cipher suite
// (sendfile on, which TLS without kernel TLS cannot use, as for Go), on
// loopback. Both servers run in processes of their own (deviceapi in this
// test binary, see TestServerProcess), so that neither shares the
// clients' process. Each iteration downloads from both; the servers
// alternate going first. It reports both servers' MB/s and their ratio.
func BenchmarkDownload(b *testing.B) {
	nginx := testtool.Need(b, "nginx")
	const clients, size = 16, 32 << 20
	cs := certstest.NewStore(b, certs.Config{})
	cfg := cs.DeviceTLSConfig()
	data := content("bench image", size)
	file := filepath.Join(b.TempDir(), "CX500.nbt")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	server := startServerProcess(b, cs.Dir(), file)
	goURL := "https://" + server.addr + deviceproto.FilesPrefix + "UCPhone/Polycom/CX500/A/ENU/3.5.6907.36/CX500.nbt"
	ngURL := startNginx(b, nginx, cs.Dir(), "CX500.nbt", data)

	// Both servers must negotiate the same protocol and cipher suite.
	for _, u := range []string{goURL, ngURL} {
		host, _, _ := strings.Cut(strings.TrimPrefix(u, "https://"), "/")
		c, err := tls.Dial("tcp", host, cfg)
		if err != nil {
			b.Fatal(err)
		}
		st := c.ConnectionState()
		c.Close()
		if st.Version != tls.VersionTLS13 || st.CipherSuite != tls.TLS_AES_128_GCM_SHA256 {
			b.Fatalf("%s negotiated %s with %s, want TLS 1.3 with TLS_AES_128_GCM_SHA256", u, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		}
	}
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: clients, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	fetch := func(url string) (time.Duration, error) {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				resp, err := client.Get(url)
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode != 200 || n != size) {
					err = fmt.Errorf("%s: status %d, %d bytes", url, resp.StatusCode, n)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		return time.Since(start), <-errs
	}
	// Warm up both (connections, page cache).
	for _, url := range []string{goURL, ngURL} {
		if _, err := fetch(url); err != nil {
			b.Fatal(err)
		}
	}
	var goTime, ngTime time.Duration
	b.SetBytes(2 * clients * size)
	b.ResetTimer()
	for i := range b.N {
		order := []string{goURL, ngURL}
		if i%2 == 1 {
			order[0], order[1] = ngURL, goURL
		}
		for _, url := range order {
			d, err := fetch(url)
			if err != nil {
				b.Fatal(err)
			}
			if url == goURL {
				goTime += d
			} else {
				ngTime += d
			}
		}
	}
	b.StopTimer()
	mb := float64(b.N) * clients * size / 1e6
	b.ReportMetric(mb/goTime.Seconds(), "opendus-MB/s")
	b.ReportMetric(mb/ngTime.Seconds(), "nginx-MB/s")
	b.ReportMetric(ngTime.Seconds()/goTime.Seconds(), "ratio")
}

// startNginx runs nginx serving name (with content data) over TLS with the
// certificate in certDir on a free loopback port, with two worker
// processes (the machine's cores), and returns the file's URL. nginx is
// stopped when the benchmark ends.
func startNginx(b *testing.B, bin, certDir, name string, data []byte) string {
	b.Helper()
	dir := b.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(www, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, name), data, 0o644); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	user := "" // as root, nginx would run its workers as nobody, who cannot read b.TempDir
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := fmt.Sprintf(`daemon off;
%[5]s
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
	sendfile on; tcp_nopush on; keepalive_requests 100000;
	server {
		listen %[2]s ssl;
		ssl_certificate %[3]s/server.pem;
		ssl_certificate_key %[3]s/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		# The suite Go's server picks with AES hardware, for a like-for-like
		# comparison (OpenSSL would prefer AES-256-GCM).
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
		root %[4]s;
		default_type application/octet-stream;
	}
}
`, dir, addr, certDir, www, user)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// Wait (bounded) until it accepts connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not start on %s: %v\n%s\n%s", addr, err, out.String(), log)
		}
		runtime.Gosched()
	}
	return "https://" + addr + "/" + name
}

// Environment of the test binary when it runs as the server process of
// BenchmarkDownload and BenchmarkIdleConnections: the certificate
// directory, a file to serve as UCPhone/Polycom/CX500/A/ENU/3.5.6907.36/
// CX500.nbt, and a heap profile to write at each "stats" (with the suffix
// _CPU: a CPU profile of the whole run).
const (
	serverCertsEnv   = "OPENDUS_DEVICEAPI_SERVER_CERTS"
	serverFileEnv    = "OPENDUS_DEVICEAPI_SERVER_FILE"
	serverMetricsEnv = "OPENDUS_DEVICEAPI_SERVER_METRICS" // "1": with metrics, as withMetrics makes them
	serverProfileEnv = "OPENDUS_DEVICEAPI_SERVER_HEAPPROFILE"
)

// TestServerProcess is not a test: it is the server process of the
// benchmarks above, run by startServerProcess (and skipped otherwise). It
// serves the internal handler over TLS on a loopback port, as devsvc does,
// over a store holding the identities of offerStore, and the file named by
// serverFileEnv if any. It prints "addr HOST:PORT", then answers each
// "stats" line on stdin with its memory after a GC, until stdin closes.
func TestServerProcess(t *testing.T) {
	certDir := os.Getenv(serverCertsEnv)
	if certDir == "" {
		t.Skip("the server process of BenchmarkDownload and BenchmarkIdleConnections")
	}
	raiseFileLimit(t)
	cs, err := certs.Open(certDir, certs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	opts, apiCfg := &store.Options{}, deviceapi.Config{}
	if os.Getenv(serverMetricsEnv) == "1" {
		opts, apiCfg = withMetrics(t)
	}
	opts.Now = fixedClock
	st := offerStoreWith(t, opts)
	if name := os.Getenv(serverFileEnv); name != "" {
		f := firmware.ImportFile{Name: "CX500.nbt", Size: -1, Open: func() (io.ReadCloser, error) { return os.Open(name) }}
		u := firmware.ImportUpdate{Identity: cx500, Version: firmware.MustParseVersion("3.5.6907.36"), Files: []firmware.ImportFile{f}}
		if _, err := st.Import(context.Background(), "bench", []firmware.ImportUpdate{u}, store.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := &http.Server{Handler: deviceapi.New(st, apiCfg).Internal(), TLSConfig: cs.ServerTLSConfig(),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	if name := os.Getenv(serverProfileEnv + "_CPU"); name != "" {
		if f, err := os.Create(name); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	fmt.Printf("addr %s\n", ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "stats" {
			continue
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("stats %d %d %d %d %d\n", ms.HeapInuse, ms.StackInuse, rssBytes(), runtime.NumGoroutine(), cpuTime().Microseconds())
		if name := os.Getenv(serverProfileEnv); name != "" {
			if f, err := os.Create(name); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
}

// serverProcess is a running TestServerProcess.
type serverProcess struct {
	addr  string
	stats func() serverStats
	stop  func() // ends the process and waits for it; also at cleanup
}

type serverStats struct{ heap, stack, rss, goroutines, cpuMicros int64 }

// startServerProcess runs this test binary as TestServerProcess with the
// certificates in certDir, serving file (if not empty), with metrics when
// metricsOn, and stops it when the benchmark ends (bounded: 10 minutes in
// all).
func startServerProcess(b *testing.B, certDir, file string, metricsOn ...bool) serverProcess {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServerProcess$")
	cmd.Env = append(os.Environ(), serverCertsEnv+"="+certDir, serverFileEnv+"="+file)
	if len(metricsOn) > 0 && metricsOn[0] {
		cmd.Env = append(cmd.Env, serverMetricsEnv+"=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { stdin.Close(); cmd.Wait(); cancel() }) }
	b.Cleanup(stop)
	lines := bufio.NewScanner(stdout)
	readLine := func(prefix string) []string {
		for lines.Scan() {
			if f := strings.Fields(lines.Text()); len(f) > 0 && f[0] == prefix {
				return f[1:]
			}
		}
		b.Fatalf("server process ended before printing %q: %v", prefix, lines.Err())
		return nil
	}
	p := serverProcess{addr: readLine("addr")[0], stop: stop}
	p.stats = func() serverStats {
		io.WriteString(stdin, "stats\n")
		f := readLine("stats")
		var s serverStats
		fmt.Sscan(strings.Join(f, " "), &s.heap, &s.stack, &s.rss, &s.goroutines, &s.cpuMicros)
		return s
	}
	return p
}

// rssBytes is the process's resident set size, from /proc/self/status.
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// raiseFileLimit raises the soft limit on open files to the hard one.
func raiseFileLimit(tb testing.TB) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatal(err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			tb.Fatal(err)
		}
	}
	return rl.Cur
}

// BenchmarkIdleConnections measures what 10,000 idle keep-alive TLS
// connections cost the server: a separate server process (this test
// binary, see TestServerProcess) so that the figures are the server's
// alone and each process stays within its file limit. Each connection
// makes one check-in and stays open. It reports the growth of the
// server's heap in use, goroutine stacks and resident set, per connection,
// measured after a GC. Each iteration runs a new server process; run it
// with -benchtime=1x: one measurement is the point.
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 10_000
	if limit := raiseFileLimit(b); limit < conns+100 {
		b.Skipf("the open file limit is %d; %d connections need more", limit, conns)
	}
	cs := certstest.NewStore(b, certs.Config{})
	cfg := cs.DeviceTLSConfig()
	cfg.ServerName = "127.0.0.1"
	cfg.NextProtos = []string{"http/1.1"}
	body := checkInBody(cx500, macDevice, v2)
	req := append(fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: ucupdates-r2.contoso.com\r\nContent-Length: %d\r\n\r\n", deviceproto.CheckInPath, len(body)), body...)
	open := func(addr string) (*tls.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(&d, "tcp", addr, cfg)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(req); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		c.SetDeadline(time.Time{})
		return c, err
	}
	for range b.N {
		// A new server process each time: one that served connections
		// before keeps their memory for reuse.
		server := startServerProcess(b, cs.Dir(), "")
		// Warm the server's code paths and pools with one connection.
		warm, err := open(server.addr)
		if err != nil {
			b.Fatal(err)
		}
		warm.Close()
		before := server.stats()
		all := make([]*tls.Conn, conns)
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		for range 8 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < conns; i = next.Add(1) - 1 {
					c, err := open(server.addr)
					if err != nil {
						failed.Store(fmt.Errorf("connection %d: %w", i, err))
						return
					}
					all[i] = c
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		after := server.stats()
		per := func(a, b int64) float64 { return float64(a-b) / conns }
		b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
		b.ReportMetric(per(after.stack, before.stack), "stack-B/conn")
		b.ReportMetric(per(after.rss, before.rss), "rss-B/conn")
		b.ReportMetric(per(after.goroutines, before.goroutines), "goroutines/conn")
		for _, c := range all {
			c.Close()
		}
		server.stop()
	}
}
