package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/internal/testtool"
	"github.com/opendus/opendus/provisioning"
)

// signInService is a running devsvc with local accounts, and how to reach
// its listeners from a chosen loopback address, as phones behind one NAT
// share one address.
type signInService struct {
	svc              *devsvctest.Service
	curl             string
	ca               string
	extPort, intPort string
}

const signInPassword = "Spring2026!"

func startSignInService(t *testing.T, settings map[string]string, accounts ...string) *signInService {
	t.Helper()
	curl := testtool.Need(t, "curl")
	bin, dir := devsvctest.Init(t, domain)
	for k, v := range settings {
		setSetting(t, dir, k, v)
	}
	svc := devsvctest.Start(t, bin, dir)
	for _, name := range accounts {
		if _, errOut, err := devsvctest.RunCLI(bin, dir, signInPassword+"\n", "accounts", "add", name, "--password-stdin"); err != nil {
			t.Fatalf("accounts add %s: %v %s", name, err, errOut)
		}
	}
	_, extPort, _ := net.SplitHostPort(svc.Run.External)
	_, intPort, _ := net.SplitHostPort(svc.Run.Internal)
	return &signInService{svc: svc, curl: curl, ca: filepath.Join(dir, "certs", "ca.pem"), extPort: extPort, intPort: intPort}
}

// curlNTLM runs curl --ntlm from the loopback address from against the
// edge's /healthz (behind NTLM like every edge path) and returns the
// status code.
func (s *signInService) curlNTLM(t *testing.T, from, creds string, extra ...string) int {
	t.Helper()
	name := "ucupdates." + domain
	return s.runCurl(t, append(extra, "--interface", from, "--resolve", name+":"+s.extPort+":127.0.0.1", "--ntlm", "--user", creds,
		"https://"+name+":"+s.extPort+"/healthz")...)
}

// curlBasic signs in with Basic credentials on the LAN (the provisioning
// sign-in) from the loopback address from and returns the status code.
func (s *signInService) curlBasic(t *testing.T, from, creds string, extra ...string) int {
	t.Helper()
	name := "ucupdates-r2." + domain
	return s.runCurl(t, append(extra, "--interface", from, "--resolve", name+":"+s.intPort+":127.0.0.1", "--basic", "--user", creds,
		"--request", "POST", "https://"+name+":"+s.intPort+provisioning.Path)...)
}

func (s *signInService) runCurl(t *testing.T, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args = append([]string{"--silent", "--show-error", "--cacert", s.ca, "--output", os.DevNull, "--write-out", "%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, s.curl, args...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v (%s)", strings.Join(args, " "), err, out)
	}
	var code int
	if _, err := fmt.Sscan(string(out), &code); err != nil {
		t.Fatalf("curl printed %q, want a status code", out)
	}
	return code
}

// garbageNTLM sends n Authorization headers of random bytes as NTLM
// tokens to the edge from the loopback address from, each on a new
// connection, and checks each is refused.
func (s *signInService) garbageNTLM(t *testing.T, from string, n int) {
	t.Helper()
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "ucupdates." + domain},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+s.extPort)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for i := range n {
		token := make([]byte, 8+i*7)
		rand.Read(token)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://ucupdates."+domain+":"+s.extPort+"/healthz", nil)
		req.Header.Set("Authorization", "NTLM "+base64.StdEncoding.EncodeToString(token))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("garbage token %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("garbage token %d = %d, want 401", i, resp.StatusCode)
		}
	}
}

// TestEndToEndSignInSharedAddress is the acceptance test of issue #11's
// sign-in part, against a real devsvc serve and real curl: twenty garbage
// NTLM tokens and thirty wrong passwords for random users from the one
// address every phone behind a NAT shares leave that address able to sign
// in with a right password, and the refusals are not logged one line each.
func TestEndToEndSignInSharedAddress(t *testing.T) {
	s := startSignInService(t, nil, "alice")
	const nat = "127.0.0.1"
	s.garbageNTLM(t, nat, 20)
	// Thirty guesses, four at a time as a guesser would (the later ones are
	// slowed), each a new user that does not exist.
	var wg sync.WaitGroup
	guesses := make(chan int)
	codes := make(chan int, 30)
	for range 4 {
		wg.Go(func() {
			for i := range guesses {
				codes <- s.curlNTLM(t, nat, fmt.Sprintf(`CONTOSO\nobody%d:guess%d`, i, i))
			}
		})
	}
	for i := range 30 {
		guesses <- i
	}
	close(guesses)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusUnauthorized {
			t.Errorf("wrong password for an unknown user = %d, want 401", code)
		}
	}
	start := time.Now()
	if code := s.curlNTLM(t, nat, `CONTOSO\alice:`+signInPassword); code != http.StatusOK {
		t.Errorf("curl --ntlm with alice's right password after 20 garbage tokens and 30 wrong passwords from her address = %d, want 200", code)
	}
	t.Logf("right password after the flood answered in %v", time.Since(start).Round(time.Millisecond))

	// Fifty refusals are not fifty log lines.
	lines := 0
	for _, l := range strings.Split(s.svc.Logs(), "\n") {
		if strings.Contains(l, "sign-in refus") {
			lines++
		}
	}
	t.Logf("log lines of refused sign-ins for 50 refusals: %d", lines)
	if lines > 5 {
		t.Errorf("%d log lines of refused sign-ins for 50 refusals from one address, want at most 5 (the first, then summaries)", lines)
	}
}

// TestEndToEndSignInAccountLockout: six wrong passwords for one account
// lock that account, and only it, whichever sign-in they came through:
// NTLM at the edge or Basic on the LAN count against the same budget, and
// the other accounts behind the same address still sign in.
func TestEndToEndSignInAccountLockout(t *testing.T) {
	s := startSignInService(t, nil, "alice", "bob", "carol")
	tests := []struct {
		name, from, victim string
		guess              func(t *testing.T, from, creds string) int
	}{
		{"ntlm", "127.0.0.2", "bob", func(t *testing.T, from, creds string) int { return s.curlNTLM(t, from, `CONTOSO\`+creds) }},
		{"basic", "127.0.0.3", "carol", func(t *testing.T, from, creds string) int { return s.curlBasic(t, from, creds) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 6 {
				if code := tt.guess(t, tt.from, fmt.Sprintf("%s:wrong%d", tt.victim, i)); code != http.StatusUnauthorized {
					t.Fatalf("wrong password %d for %s = %d, want 401", i, tt.victim, code)
				}
			}
			if code := s.curlNTLM(t, tt.from, `CONTOSO\`+tt.victim+":"+signInPassword); code != http.StatusUnauthorized {
				t.Errorf("NTLM: %s's right password after six wrong ones = %d, want 401 (locked)", tt.victim, code)
			}
			if code := s.curlBasic(t, tt.from, tt.victim+":"+signInPassword); code != http.StatusUnauthorized {
				t.Errorf("Basic: %s's right password after six wrong ones = %d, want 401 (locked)", tt.victim, code)
			}
			if code := s.curlNTLM(t, tt.from, `CONTOSO\alice:`+signInPassword); code != http.StatusOK {
				t.Errorf("NTLM: alice from the same address = %d, want 200 (only %s is locked)", code, tt.victim)
			}
			if code := s.curlBasic(t, tt.from, "alice:"+signInPassword); code != http.StatusOK {
				t.Errorf("Basic: alice from the same address = %d, want 200 (only %s is locked)", code, tt.victim)
			}
		})
	}
}

// TestEndToEndSignInDomains: with local accounts only the service's own
// domain names sign in.
func TestEndToEndSignInDomains(t *testing.T) {
	s := startSignInService(t, nil, "alice")
	tests := []struct {
		user string
		want int
	}{
		{"alice", http.StatusOK},
		{`CONTOSO\alice`, http.StatusOK},
		{`contoso.com\alice`, http.StatusOK},
		{`OPENDUS\alice`, http.StatusOK},
		{"alice@contoso.com", http.StatusOK},
		{`EVILCORP\alice`, http.StatusUnauthorized},
		{"alice@evilcorp.com", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		if code := s.curlNTLM(t, "127.0.0.4", tt.user+":"+signInPassword); code != tt.want {
			t.Errorf("curl --ntlm --user %s with the right password = %d, want %d", tt.user, code, tt.want)
		}
	}
}

// TestEndToEndSignInTrustedProxy: a sign-in through a trusted reverse
// proxy counts against the client its X-Forwarded-For header names; from
// anywhere else the header is ignored.
func TestEndToEndSignInTrustedProxy(t *testing.T) {
	const proxy, other = "127.0.0.2", "127.0.0.3"
	s := startSignInService(t, map[string]string{"trusted_proxies": proxy + ", 10.0.0.0/8"}, "alice")
	tests := []struct {
		name, from, xff, wantRemote string
		signIn                      func(t *testing.T, from, creds string, extra ...string) int
	}{
		{"basic through the proxy", proxy, "198.51.100.7", "198.51.100.7", s.curlBasic},
		{"ntlm through the proxy", proxy, "203.0.113.5, 10.1.1.1", "203.0.113.5", s.curlNTLM},
		{"a forged header from elsewhere", other, "198.51.100.8", other, s.curlBasic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := tt.signIn(t, tt.from, "nobody:x", "--header", "X-Forwarded-For: "+tt.xff); code != http.StatusUnauthorized {
				t.Fatalf("unknown user = %d, want 401", code)
			}
			if code := tt.signIn(t, tt.from, "alice:"+signInPassword, "--header", "X-Forwarded-For: "+tt.xff); code != http.StatusOK {
				t.Errorf("alice = %d, want 200", code)
			}
		})
	}
	logs := s.svc.Logs()
	for _, tt := range tests {
		if want := `"remote":"` + tt.wantRemote + `"`; !strings.Contains(logs, want) {
			t.Errorf("%s: no log line with %s:\n%s", tt.name, want, logs)
		}
	}
	if strings.Contains(logs, "198.51.100.8") {
		t.Errorf("the forged X-Forwarded-For address is in the log:\n%s", logs)
	}
}
