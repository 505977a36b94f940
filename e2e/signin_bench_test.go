package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/internal/devsvctest"
)

// BenchmarkSignInFlood floods a devsvc built without the race detector
// with refused NTLM sign-ins from the one address phones behind a NAT
// share: 3,000 attempts from 16 clients at once, half garbage tokens, half
// wrong passwords for users that do not exist, each on a new connection.
// It reports the log lines about sign-ins (refusals, lockouts, summaries,
// and the one sign-in), the answers, and what a phone with the right
// password behind the same address gets afterwards:
//
//	go test -run '^$' -bench SignInFlood -benchtime 1x ./e2e/
func BenchmarkSignInFlood(b *testing.B) {
	dir := b.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/opendus/opendus/cmd/devsvc").CombinedOutput(); err != nil {
		b.Fatalf("go build devsvc: %v\n%s", err, out)
	}
	bin, data := filepath.Join(dir, "devsvc"), filepath.Join(dir, "data")
	if out, err := exec.Command(bin, "init", "--data", data, "--domain", domain).CombinedOutput(); err != nil {
		b.Fatalf("devsvc init: %v\n%s", err, out)
	}
	s := devsvctest.Start(b, bin, data)
	if _, errOut, err := devsvctest.RunCLI(bin, data, "Spring2026!\n", "accounts", "add", "alice", "--password-stdin"); err != nil {
		b.Fatalf("accounts add: %v %s", err, errOut)
	}
	pem, err := os.ReadFile(filepath.Join(data, "certs", "ca.pem"))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	_, port, _ := net.SplitHostPort(s.Run.External)
	url := "https://ucupdates." + domain + ":" + port + "/healthz"
	// newClient is a phone's client: a connection of its own.
	newClient := func() *http.Client {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "ucupdates." + domain},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, s.Run.External)
			},
		}
		return &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: tr}, Timeout: 60 * time.Second}
	}
	get := func(user, password, token string) int {
		c := newClient()
		defer c.Transport.(ntlmssp.Negotiator).RoundTripper.(*http.Transport).CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "NTLM "+token)
		} else {
			req.SetBasicAuth(user, password)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Errorf("GET as %q: %v", user, err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	const attempts, clients = 3000, 16
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > attempts {
					return
				}
				var code int
				if i%2 == 0 {
					junk := make([]byte, 16+i%200)
					rand.Read(junk)
					code = get("", "", base64.StdEncoding.EncodeToString(junk))
				} else {
					code = get(fmt.Sprintf(`CONTOSO\nobody%d`, i), "guess", "")
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	flood := time.Since(start)
	before := time.Now()
	right := get(`CONTOSO\alice`, "Spring2026!", "")
	rightTime := time.Since(before)
	b.StopTimer()

	lines := 0
	for _, l := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(l, "sign-in") { // refusals, lockouts, summaries, the sign-in
			lines++
		}
	}
	b.ReportMetric(float64(lines), "log-lines")
	b.ReportMetric(float64(attempts)/flood.Seconds(), "attempts/s")
	b.ReportMetric(float64(right), "right-password-status")
	b.Logf("%d refused NTLM sign-ins from one address in %v (answers %v): %d log lines; then the right password from that address: %d in %v",
		attempts, flood.Round(time.Millisecond), codes, lines, right, rightTime.Round(time.Millisecond))
}
