package provisioning_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
)

const (
	intBase = "https://ucupdates-r2.contoso.com/"
	extBase = "https://ucupdates.contoso.com:4443/"
	intURL  = "https://ucupdates-r2.contoso.com/RequestHandler/ucdevice.upx"
	extURL  = "https://ucupdates.contoso.com:4443/RequestHandlerExt/ucdevice.upx"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// account is a local account of the test directory.
type account struct {
	password string
	disabled bool
}

// directory is the accounts both sign-in paths use: NTLM through
// ntlm.Accounts, Basic through NTHashAuthenticator. err, when set, makes
// every lookup fail (an outage).
type directory struct {
	users map[string]account
	err   error
}

var testUsers = map[string]account{
	"alice": {password: "Passw0rd!"},
	"bob":   {password: "bob's secret", disabled: true},
	"carol": {password: "Carol's secret"},
}

func (d directory) lookup(_ context.Context, user string) (ntlm.Account, error) {
	if d.err != nil {
		return ntlm.Account{}, d.err
	}
	name := strings.ToLower(user)
	if i := strings.IndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	a, ok := d.users[name]
	if !ok {
		return ntlm.Account{}, fmt.Errorf("%w: %s", ntlm.ErrUnknownUser, user)
	}
	return ntlm.Account{User: name, Domain: "CONTOSO", NTHash: ntlm.NTHash(a.password), Disabled: a.disabled}, nil
}

func (d directory) LookupNT(ctx context.Context, domain, user string) (ntlm.Account, error) {
	return d.lookup(ctx, user)
}

func (d directory) authenticator() provisioning.Authenticator {
	return provisioning.NTHashAuthenticator{Lookup: d.lookup}
}

// logBuffer is a concurrency-safe log sink for a JSON slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testConfig(auth provisioning.Authenticator, log io.Writer) provisioning.Config {
	return provisioning.Config{
		InternalURL:   intBase,
		ExternalURL:   extBase,
		Enabled:       true,
		CheckInterval: 12 * time.Hour,
		Auth:          auth,
		Logger:        slog.New(slog.NewJSONHandler(log, nil)),
		Now:           fixedClock,
	}
}

// reply is what a device sees of an answer.
type reply struct {
	Status       int
	Authenticate string
	ContentType  string
	Close        bool
	Body         string
}

func readReply(t *testing.T, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{
		Status:       resp.StatusCode,
		Authenticate: resp.Header.Get("WWW-Authenticate"),
		ContentType:  resp.Header.Get("Content-Type"),
		Close:        resp.Close,
		Body:         string(body),
	}
}

// basicServer serves the handler over real TLS, as the internal listener
// does, and returns its URL and a device's client.
func basicServer(t *testing.T, cfg provisioning.Config) (string, *http.Client) {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	srv := certstest.NewServer(t, cs.ServerTLSConfig(), provisioning.NewHandler(cfg))
	tr := &http.Transport{TLSClientConfig: cs.DeviceTLSConfig()}
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL + provisioning.Path, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestSignInBasic(t *testing.T) {
	var logs logBuffer
	url, client := basicServer(t, testConfig(directory{users: testUsers}.authenticator(), &logs))
	post := func(t *testing.T, header string) reply {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("<signIn/>"))
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readReply(t, resp)
	}
	basic := func(user, password string) string {
		req, _ := http.NewRequest("POST", "/", nil)
		req.SetBasicAuth(user, password)
		return req.Header.Get("Authorization")
	}

	t.Run("right password", func(t *testing.T) {
		got := post(t, basic("Alice", "Passw0rd!"))
		if got.Status != http.StatusOK || got.ContentType != provisioning.ContentType {
			t.Fatalf("sign-in = %d %q %q, want 200 %q", got.Status, got.ContentType, got.Body, provisioning.ContentType)
		}
		doc, err := provisioning.ParseDocument([]byte(got.Body))
		if err != nil {
			t.Fatalf("ParseDocument: %v\n%s", err, got.Body)
		}
		want := provisioning.Document{User: "Alice", Issued: t0, InternalURL: intURL, ExternalURL: extURL, Enabled: true, CheckInterval: 12 * time.Hour}
		if diff := cmp.Diff(want, doc); diff != "" {
			t.Errorf("document (-want +got):\n%s", diff)
		}
	})

	refused := post(t, basic("alice", "wrong"))
	if refused.Status != http.StatusUnauthorized || !refused.Close || !strings.HasPrefix(refused.Authenticate, `Basic realm="OpenDUS"`) {
		t.Fatalf("wrong password = %+v, want 401, Connection: close, a Basic challenge", refused)
	}
	for _, field := range []string{"provisionGroup", "updatesServer", "ucupdates", "https://"} {
		if strings.Contains(refused.Body, field) {
			t.Errorf("wrong password: body %q contains %q", refused.Body, field)
		}
	}
	// Every refusal is the same answer as a wrong password.
	for _, tt := range []struct{ name, header string }{
		{"unknown user", basic("mallory", "Passw0rd!")},
		{"unknown user, empty password", basic("mallory", "")},
		{"disabled account, right password", basic("bob", "bob's secret")},
		{"empty password", basic("alice", "")},
		{"password with another case", basic("alice", "passw0rd!")},
		{"empty user", basic("", "Passw0rd!")},
		{"not base64", "Basic !!!"},
		{"no colon", "Basic " + "YWxpY2U="},
		{"control character in user", basic("ali\nce", "Passw0rd!")},
		{"long password", basic("alice", strings.Repeat("x", provisioning.MaxCredentialBytes+1))},
		{"other scheme", "Bearer abc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(t, tt.header); got != refused {
				t.Errorf("answer = %+v, want the wrong password's %+v", got, refused)
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		got := post(t, "")
		if got.Status != http.StatusUnauthorized || got.Authenticate != refused.Authenticate || got.Body != refused.Body {
			t.Errorf("answer = %+v, want 401 with the same challenge and body as a refusal", got)
		}
	})

	t.Run("log", func(t *testing.T) {
		l := logs.String()
		for _, want := range []string{`"reason":"provisioning: sign-in failed: wrong password for \"alice\""`, `"reason":"provisioning: sign-in failed: unknown user \"mallory\"`, `"via":"basic"`} {
			if !strings.Contains(l, want) {
				t.Errorf("log lacks %s:\n%s", want, l)
			}
		}
		if strings.Contains(l, "Passw0rd") || strings.Contains(l, "secret") {
			t.Errorf("log contains a password:\n%s", l)
		}
	})
}

func TestSignInRequests(t *testing.T) {
	cs := certstest.NewStore(t, certs.Config{})
	tests := []struct {
		name       string
		cfg        provisioning.Config
		method     string
		body       string
		wantStatus int
		wantHeader map[string]string
	}{
		{"GET", testConfig(directory{users: testUsers}.authenticator(), io.Discard), http.MethodGet, "", http.StatusMethodNotAllowed, map[string]string{"Allow": "POST"}},
		{"PUT", testConfig(directory{users: testUsers}.authenticator(), io.Discard), http.MethodPut, "", http.StatusMethodNotAllowed, map[string]string{"Allow": "POST"}},
		{"body at the limit", testConfig(directory{users: testUsers}.authenticator(), io.Discard), http.MethodPost, strings.Repeat("x", provisioning.MaxBodyBytes), http.StatusOK, nil},
		{"body too large", testConfig(directory{users: testUsers}.authenticator(), io.Discard), http.MethodPost, strings.Repeat("x", provisioning.MaxBodyBytes+1), http.StatusRequestEntityTooLarge, nil},
		{"accounts unavailable", testConfig(directory{err: errors.New("store closed")}.authenticator(), io.Discard), http.MethodPost, "", http.StatusServiceUnavailable, nil},
		{"no authenticator", testConfig(nil, io.Discard), http.MethodPost, "", http.StatusUnauthorized, map[string]string{"Connection": "close"}},
		{"invalid service URL", func() provisioning.Config {
			c := testConfig(directory{users: testUsers}.authenticator(), io.Discard)
			c.InternalURL = "http://ucupdates-r2.contoso.com/"
			return c
		}(), http.MethodPost, "", http.StatusInternalServerError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := certstest.NewServer(t, cs.ServerTLSConfig(), provisioning.NewHandler(tt.cfg))
			tr := &http.Transport{TLSClientConfig: cs.DeviceTLSConfig()}
			defer tr.CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+provisioning.Path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("alice", "Passw0rd!")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readReply(t, resp)
			if got.Status != tt.wantStatus {
				t.Fatalf("%s = %d %q, want %d", tt.method, got.Status, got.Body, tt.wantStatus)
			}
			for k, v := range tt.wantHeader {
				if k == "Connection" {
					if !got.Close {
						t.Errorf("no Connection: close")
					}
					continue
				}
				if h := resp.Header.Get(k); h != v {
					t.Errorf("%s: %q, want %q", k, h, v)
				}
			}
			if tt.wantStatus != http.StatusOK && strings.Contains(got.Body, "provisionGroup") {
				t.Errorf("a %d answer carries a document: %q", got.Status, got.Body)
			}
		})
	}
}

// TestSignInBasicWithoutTLS: Basic credentials on a plain connection are
// not even looked at.
func TestSignInBasicWithoutTLS(t *testing.T) {
	var calls int
	auth := authFunc(func(context.Context, string, string) (string, error) { calls++; return "", nil })
	srv := httptest.NewServer(provisioning.NewHandler(testConfig(auth, io.Discard)))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+provisioning.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "Passw0rd!")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readReply(t, resp)
	if got.Status != http.StatusForbidden || strings.Contains(got.Body, "provisionGroup") {
		t.Errorf("plain HTTP sign-in = %d %q, want 403 without a document", got.Status, got.Body)
	}
	if calls != 0 {
		t.Errorf("authenticator called %d times, want 0", calls)
	}
}

type authFunc func(ctx context.Context, user, password string) (string, error)

func (f authFunc) Authenticate(ctx context.Context, user, password string) (string, error) {
	return f(ctx, user, password)
}

// ntlmServer serves h behind a real NTLM acceptor over TLS with HTTP/1.1,
// as devsvc serves the external listener. certstest.NewServer starts its
// server at once, before ConnContext could be installed, so the server is
// built the way certstest builds it, with the acceptor's ConnContext.
func ntlmServer(t *testing.T, h http.Handler) (url string, newClient func() *http.Client) {
	t.Helper()
	return ntlmServerWith(t, h, ntlm.Config{})
}

// ntlmServerWith is ntlmServer with the acceptor's configuration.
func ntlmServerWith(t *testing.T, h http.Handler, cfg ntlm.Config) (url string, newClient func() *http.Client) {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	acc := ntlm.NewAcceptor(directory{users: testUsers}, cfg)
	srv := httptest.NewUnstartedServer(acc.Require(h))
	srv.Config.ConnContext = acc.ConnContext
	srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	srv.Listener = tls.NewListener(srv.Listener, cs.ServerTLSConfig())
	srv.Start()
	t.Cleanup(srv.Close)
	// NTLM authenticates connections: each device gets its own transport.
	newClient = func() *http.Client {
		tr := &http.Transport{TLSClientConfig: cs.DeviceTLSConfig()}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: tr}, Timeout: 30 * time.Second}
	}
	return "https://" + srv.Listener.Addr().String(), newClient
}

func TestSignInNTLM(t *testing.T) {
	// No Basic authenticator: the NTLM user alone signs in.
	url, newClient := ntlmServer(t, provisioning.NewHandler(testConfig(nil, io.Discard)))
	// post signs in as a new device, on a new connection.
	post := func(t *testing.T, user, password string) reply {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+provisioning.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, password) // go-ntlmssp signs in with these
		resp, err := newClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readReply(t, resp)
	}

	got := post(t, `CONTOSO\alice`, "Passw0rd!")
	if got.Status != http.StatusOK {
		t.Fatalf("NTLM sign-in = %d %q, want 200", got.Status, got.Body)
	}
	doc, err := provisioning.ParseDocument([]byte(got.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := provisioning.Document{User: "alice", Issued: t0, InternalURL: intURL, ExternalURL: extURL, Enabled: true, CheckInterval: 12 * time.Hour}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}

	wrong := post(t, `CONTOSO\alice`, "wrong")
	if wrong.Status != http.StatusUnauthorized || strings.Contains(wrong.Body, "provisionGroup") {
		t.Fatalf("wrong password = %d %q, want 401 without a document", wrong.Status, wrong.Body)
	}
	if unknown := post(t, `CONTOSO\mallory`, "Passw0rd!"); unknown != wrong {
		t.Errorf("unknown user = %+v, want the wrong password's %+v", unknown, wrong)
	}
}

func TestNTHashAuthenticator(t *testing.T) {
	outage := errors.New("store closed")
	tests := []struct {
		name           string
		dir            directory
		user, password string
		want           error
	}{
		{"right password", directory{users: testUsers}, "alice", "Passw0rd!", nil},
		{"user name in another case", directory{users: testUsers}, "ALICE", "Passw0rd!", nil},
		{"wrong password", directory{users: testUsers}, "alice", "passw0rd!", provisioning.ErrSignInFailed},
		{"unknown user", directory{users: testUsers}, "mallory", "Passw0rd!", provisioning.ErrSignInFailed},
		{"unknown user with the zero hash's password", directory{users: testUsers}, "mallory", "", provisioning.ErrSignInFailed},
		{"disabled", directory{users: testUsers}, "bob", "bob's secret", provisioning.ErrSignInFailed},
		{"outage", directory{err: outage}, "alice", "Passw0rd!", provisioning.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.dir.authenticator().Authenticate(t.Context(), tt.user, tt.password)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Authenticate(%q, %q) = %v, want %v", tt.user, tt.password, err, tt.want)
			}
			if tt.want == provisioning.ErrUnavailable && !errors.Is(err, outage) {
				t.Errorf("Authenticate = %v, want it to wrap the cause %v", err, outage)
			}
		})
	}
}

func TestParseBasic(t *testing.T) {
	tests := []struct {
		header, user, password string
		ok                     bool
	}{
		{"Basic YWxpY2U6UGFzc3cwcmQh", "alice", "Passw0rd!", true},
		{"basic   YWxpY2U6UGFzc3cwcmQh", "alice", "Passw0rd!", true},
		{"Basic " + b64(`CONTOSO\alice:a:b`), `CONTOSO\alice`, "a:b", true},
		{"Basic " + b64("alice:"), "alice", "", true},
		{"Basic " + b64("Zoë:pässwörd"), "Zoë", "pässwörd", true},
		{"Basic " + b64(":pw"), "", "", false},
		{"Basic " + b64("alice"), "", "", false},
		{"Basic " + b64("al\x00ice:pw"), "", "", false},
		{"Basic " + b64("alice:p\x7fw"), "", "", false},
		{"Basic " + b64("alice:\xff"), "", "", false},
		{"Basic YWxpY2U6UGFzc3cwcmQh=", "", "", false},
		{"Basic YWxpY2U6UGFzc3cwcmQ", "", "", false},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"NTLM TlRMTVNTUAABAAAA", "", "", false},
		{"Basic " + b64(strings.Repeat("u", provisioning.MaxCredentialBytes)+":"+strings.Repeat("p", provisioning.MaxCredentialBytes)), strings.Repeat("u", provisioning.MaxCredentialBytes), strings.Repeat("p", provisioning.MaxCredentialBytes), true},
		{"Basic " + b64(strings.Repeat("u", provisioning.MaxCredentialBytes+1)+":pw"), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			user, password, err := provisioning.ParseBasic(tt.header)
			if tt.ok != (err == nil) || user != tt.user || password != tt.password {
				t.Errorf("ParseBasic(%q) = %q, %q, %v; want %q, %q, ok %v", tt.header, user, password, err, tt.user, tt.password, tt.ok)
			}
			if err != nil && !errors.Is(err, provisioning.ErrBadCredentials) {
				t.Errorf("ParseBasic(%q) error %v does not wrap ErrBadCredentials", tt.header, err)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSignInServiceFor: a device near another update service (its site's
// replica) is given that service's check-in URLs; one it does not name,
// or whose URLs are not valid, gets this service's.
func TestSignInServiceFor(t *testing.T) {
	const replicaBase = "https://dus-paris.contoso.com/"
	for _, tc := range []struct {
		name     string
		in, ext  string
		ok       bool
		wantIn   string
		wantExt  string
		wantLogs string
	}{
		{"the replica", replicaBase, "", true, replicaBase + "RequestHandler/ucdevice.upx", extURL, ""},
		{"the replica with an edge", replicaBase, "https://paris-ext.contoso.com/", true, replicaBase + "RequestHandler/ucdevice.upx", "https://paris-ext.contoso.com/RequestHandlerExt/ucdevice.upx", ""},
		{"no replica", "", "", false, intURL, extURL, ""},
		{"an invalid URL", "http://paris/", "", true, intURL, extURL, "invalid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			cfg := testConfig(directory{users: testUsers}.authenticator(), &logs)
			var asked string
			cfg.ServiceFor = func(r *http.Request) (string, string, bool) {
				asked = r.RemoteAddr
				return tc.in, tc.ext, tc.ok
			}
			url, client := basicServer(t, cfg)
			req, _ := http.NewRequest(http.MethodPost, url, nil)
			req.SetBasicAuth("alice", "Passw0rd!")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readReply(t, resp)
			doc, err := provisioning.ParseDocument([]byte(got.Body))
			if err != nil {
				t.Fatalf("sign-in = %+v: %v", got, err)
			}
			if doc.InternalURL != tc.wantIn || doc.ExternalURL != tc.wantExt {
				t.Errorf("document URLs %q, %q; want %q, %q", doc.InternalURL, doc.ExternalURL, tc.wantIn, tc.wantExt)
			}
			if !strings.HasPrefix(asked, "127.0.0.1:") {
				t.Errorf("ServiceFor was asked about %q, want the device's request", asked)
			}
			if tc.wantLogs != "" && !strings.Contains(logs.String(), tc.wantLogs) {
				t.Errorf("log lacks %q:\n%s", tc.wantLogs, logs.String())
			}
		})
	}
}
