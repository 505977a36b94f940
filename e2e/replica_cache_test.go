package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/testtool"
)

// startCache runs nginx as a caching reverse proxy (proxy_cache, as a CDN
// edge or a branch cache is) in front of upstream, the internal listener
// of a service, over TLS with certDir's server certificate, on ip, and
// returns its address. Every answer says whether it came from the cache
// (X-Cache-Status, nginx's $upstream_cache_status).
func startCache(t *testing.T, nginx, ip, upstream, certDir string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t, ip)
	user := "" // as root, nginx would run its workers as nobody, who cannot read t.TempDir
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := fmt.Sprintf(`daemon off;
%[5]s
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
	proxy_cache_path %[1]s/cache levels=1:2 keys_zone=dus:1m max_size=100m inactive=1d use_temp_path=off;
	server {
		listen %[2]s ssl;
		ssl_certificate %[3]s/server.pem;
		ssl_certificate_key %[3]s/server.key;
		location / {
			proxy_pass https://%[4]s;
			proxy_ssl_trusted_certificate %[3]s/ca.pem;
			proxy_ssl_verify on;
			proxy_ssl_name localhost;
			proxy_cache dus;
			proxy_cache_lock on;
			add_header X-Cache-Status $upstream_cache_status always;
		}
	}
}
`, dir, addr, certDir, upstream, user)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// Wait (bounded) until it accepts connections, or exits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start on %s: %v\n%s\n%s", addr, err, out.String(), log)
		}
		runtime.Gosched() // nginx says nothing when it is ready: dial again
	}
}

// TestReplicaBehindCache puts a real caching reverse proxy (nginx with
// proxy_cache) in front of a replica: the first device's download fills
// the cache, the second device's is a cache hit, byte for byte the file,
// because the internal listener's files are public and immutable.
func TestReplicaBehindCache(t *testing.T) {
	nginx := testtool.Need(t, "nginx")
	p := startPrimary(t, nil)
	r := addReplica(t, p, "paris", "127.0.0.2", nil)
	importVersion(t, p.svc, "2.0.0.1", 256<<10, cx600)
	p.svc.CLI(t, "approve", cx600.Path())
	v := firmware.MustParseVersion("2.0.0.1")
	r.offers(t, v, time.Minute)

	c := deviceClient(t, r.dir, r.svc.Run.Internal, nil)
	ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-0C-01"}
	code, body := post(t, c, r.url(t)+strings.TrimPrefix(deviceproto.CheckInPath, "/"), ci.AppendXML(nil), "", "")
	if code != http.StatusOK {
		t.Fatalf("check-in = %d %s", code, body)
	}
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(a.InternalURL, r.url(t)) + a.Files[0].FileName
	cache := startCache(t, nginx, "127.0.0.2", r.svc.Run.Internal, filepath.Join(r.dir, "certs"))
	var statuses []string
	for i := range 2 { // two devices, one after the other
		dev := deviceClient(t, r.dir, cache, nil)
		resp, err := dev.Get("https://localhost:" + port(t, cache) + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(data)
		if resp.StatusCode != http.StatusOK || fmt.Sprintf("%x", sum) != a.Files[0].SHA256 {
			t.Fatalf("device %d: download through the cache = %d, %d bytes with SHA-256 %x; want the file", i+1, resp.StatusCode, len(data), sum)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("device %d: Cache-Control %q, want the replica's public, immutable", i+1, cc)
		}
		statuses = append(statuses, resp.Header.Get("X-Cache-Status"))
	}
	if statuses[0] != "MISS" || statuses[1] != "HIT" {
		t.Errorf("X-Cache-Status of the two devices' downloads = %q, want MISS then HIT: the second from the cache", statuses)
	}
}
