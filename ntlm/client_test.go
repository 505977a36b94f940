package ntlm

import (
	"context"
	"crypto/rand"
	"crypto/rc4"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/signin"
)

// This file holds the test doubles and the hand-written NTLM client used
// where go-ntlmssp cannot go: MIC, key exchange, chosen timestamps, NTLMv1
// and anonymous messages. It is written from [MS-NLMP] 3.1.5 (the client
// side); the key tests pin the shared formulas to the spec's vectors.

// memAccounts is an in-memory Accounts keyed by lower-case user name; the
// domain must be empty or match.
type memAccounts struct {
	mu    sync.Mutex
	users map[string]Account
	err   error // returned by every lookup when set
}

func newMemAccounts(accts ...Account) *memAccounts {
	m := &memAccounts{users: map[string]Account{}}
	for _, a := range accts {
		m.users[strings.ToLower(a.User)] = a
	}
	return m
}

func (m *memAccounts) LookupNT(_ context.Context, domain, user string) (Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Account{}, m.err
	}
	a, ok := m.users[strings.ToLower(user)]
	if !ok || (domain != "" && !strings.EqualFold(domain, a.Domain)) {
		return Account{}, fmt.Errorf("lookup %s\\%s: %w", domain, user, ErrUnknownUser)
	}
	return a, nil
}

// logRecorder is a slog.Handler that keeps the attributes of every record.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, m)
	return nil
}

// find returns the attributes of the last record with message msg.
func (l *logRecorder) find(msg string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.records) - 1; i >= 0; i-- {
		if l.records[i]["msg"] == msg {
			return l.records[i]
		}
	}
	return map[string]string{}
}

// all returns every record, for failure messages.
func (l *logRecorder) all() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

// last returns the attributes of the last record.
func (l *logRecorder) last() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) == 0 {
		return map[string]string{}
	}
	return l.records[len(l.records)-1]
}

const secret = "protected firmware catalogue for "

// testEnv is a TLS test server running the acceptor in front of a handler
// that writes secret and the user name.
type testEnv struct {
	srv      *httptest.Server
	acceptor *Acceptor
	clock    *clocktest.Clock
	logs     *logRecorder
	accounts *memAccounts
	// deviceTLS, when set, is a client configuration that trusts srv.
	deviceTLS *tls.Config
}

var testStart = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Test accounts.
var (
	alice    = Account{User: "alice", Domain: "OPENDUS", NTHash: NTHash("correct horse")}
	bob      = Account{User: "Bob", Domain: "OPENDUS", NTHash: NTHash("hunter2")}
	disabled = Account{User: "mallory", Domain: "OPENDUS", NTHash: NTHash("s3cret"), Disabled: true}
)

func newTestEnv(t testing.TB, cfg Config) *testEnv { return newTestEnvWith(t, cfg, nil, nil) }

// newTestEnvLimits is newTestEnv with a sign-in limiter of these limits,
// on the environment's clock and log.
func newTestEnvLimits(t testing.TB, limits signin.Config) *testEnv {
	return newTestEnvWith(t, Config{}, nil, &limits)
}

// newTestEnvWith is newTestEnv with the server's TLS configuration (nil:
// httptest's certificate) and the limits of its sign-in limiter (nil:
// the defaults).
func newTestEnvWith(t testing.TB, cfg Config, tlsConf *tls.Config, limits *signin.Config) *testEnv {
	t.Helper()
	e := &testEnv{clock: &clocktest.Clock{T: testStart}, logs: &logRecorder{}, accounts: newMemAccounts(alice, bob, disabled)}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	cfg.Logger = slog.New(e.logs)
	if limits != nil {
		limits.Now, limits.Logger = cfg.Now, cfg.Logger
		cfg.Limiter = signin.New(*limits)
	}
	e.acceptor = NewAcceptor(e.accounts, cfg)
	e.srv = httptest.NewUnstartedServer(e.acceptor.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := UserFrom(r.Context())
		if !ok {
			t.Errorf("handler ran without a user")
		}
		_, _ = io.WriteString(w, secret+user)
	})))
	e.srv.EnableHTTP2 = false
	e.srv.Config.ConnContext = e.acceptor.ConnContext
	if tlsConf == nil {
		e.srv.StartTLS()
	} else {
		// Not StartTLS: it would add httptest's certificate, which Go
		// serves to clients that send no SNI (those dialing an IP).
		e.srv.Listener = tls.NewListener(e.srv.Listener, tlsConf)
		e.srv.Start()
		e.srv.URL = "https://" + e.srv.Listener.Addr().String()
	}
	t.Cleanup(e.srv.Close)
	return e
}

// transport returns a new transport (so new connections) that trusts the
// test server and keeps one connection per host, so that the requests of a
// hand-written handshake share a connection.
func (e *testEnv) transport(t testing.TB) *http.Transport {
	t.Helper()
	tr := e.freeTransport(t)
	tr.MaxConnsPerHost = 1
	return tr
}

// freeTransport is transport without the connection limit. go-ntlmssp
// needs it: it holds its first 401 response open while it runs the
// handshake, so that response's connection is busy.
func (e *testEnv) freeTransport(t testing.TB) *http.Transport {
	t.Helper()
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// get sends one GET with the given Authorization header (none if empty)
// and returns status, WWW-Authenticate and body.
func get(t testing.TB, rt http.RoundTripper, url, authz string) (status int, wwwAuth, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// clientOpts describes what the hand-written client puts in its messages.
type clientOpts struct {
	user, domain, password string
	keyExch                bool       // ask for NTLMSSP_NEGOTIATE_KEY_EXCH
	mic                    bool       // announce and send a MIC
	tamperMIC              bool       // flip a bit of the MIC
	timestamp              *time.Time // blob timestamp; default the server's
	ntlmV1                 bool       // send a 24-byte NT response
	anonymous              bool       // empty user, empty responses
	scheme                 string     // HTTP scheme; default NTLM
	clientChallenge        []byte     // 8 bytes; default random
}

// clientNegotiate builds a NEGOTIATE_MESSAGE with a Version field.
func clientNegotiate(o clientOpts) []byte {
	flags := uint32(flagUnicode | flagOEM | flagRequestTarget | flagNTLM | flagAlwaysSign |
		flagExtendedSessionSecurity | flagTargetInfo | flagVersion | flag128 | flag56)
	if o.keyExch {
		flags |= flagKeyExch
	}
	b := make([]byte, 40)
	copy(b, signature[:])
	binary.LittleEndian.PutUint32(b[8:], typeNegotiate)
	binary.LittleEndian.PutUint32(b[12:], flags)
	putField(b[16:], 0, 40)
	putField(b[24:], 0, 40)
	copy(b[32:], []byte{10, 0, 0x61, 0x4a, 0, 0, 0, 15}) // Windows 10 build 19041, NTLM revision 15
	return b
}

// clientAuthenticate answers challenge as [MS-NLMP] 3.1.5.1.2 says.
func clientAuthenticate(t testing.TB, negotiate, challenge []byte, o clientOpts) []byte {
	t.Helper()
	if len(challenge) < 48 {
		t.Fatalf("challenge of %d bytes", len(challenge))
	}
	flags := binary.LittleEndian.Uint32(challenge[20:])
	var sc [8]byte
	copy(sc[:], challenge[24:32])
	ti, err := field(challenge, 40, "TargetInfo")
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := parseAVPairs(ti)
	if err != nil {
		t.Fatal(err)
	}

	var ntResp, lmResp, encKey []byte
	var exported []byte
	switch {
	case o.anonymous:
		lmResp = []byte{0}
	case o.ntlmV1:
		ntResp = make([]byte, 24)
		lmResp = make([]byte, 24)
		_, _ = rand.Read(ntResp)
	default:
		var ts []byte
		if o.timestamp != nil {
			ts = binary.LittleEndian.AppendUint64(nil, toFiletime(*o.timestamp))
		} else if v, ok := pairs.get(avTimestamp); ok {
			ts = v
		} else {
			ts = binary.LittleEndian.AppendUint64(nil, toFiletime(time.Now()))
		}
		var avs []byte
		for _, p := range pairs {
			avs = appendAVPair(avs, p.id, p.value)
		}
		if o.mic {
			avs = appendAVPair(avs, avFlags, binary.LittleEndian.AppendUint32(nil, avFlagMIC))
		}
		avs = appendAVPair(avs, avEOL, nil)
		cc := o.clientChallenge
		if cc == nil {
			cc = make([]byte, 8)
			_, _ = rand.Read(cc)
		}
		blob := []byte{1, 1, 0, 0, 0, 0, 0, 0}
		blob = append(blob, ts...)
		blob = append(blob, cc...)
		blob = append(blob, 0, 0, 0, 0)
		blob = append(blob, avs...)
		blob = append(blob, 0, 0, 0, 0)

		key := ntowfV2(NTHash(o.password), o.user, o.domain)
		proof := ntProofStr(key, sc, blob)
		ntResp = append(proof, blob...)
		lmResp = make([]byte, 24) // Z(24): the challenge carries a timestamp
		kx := hmacMD5(key, proof)
		exported = kx
		if flags&flagKeyExch != 0 {
			exported = make([]byte, 16)
			_, _ = rand.Read(exported)
			c, err := rc4.NewCipher(kx)
			if err != nil {
				t.Fatal(err)
			}
			encKey = make([]byte, 16)
			c.XORKeyStream(encKey, exported)
		}
	}

	domain, user, ws := utf16LE(o.domain), utf16LE(o.user), utf16LE("PHONE-42")
	const payloadAt = micEnd
	b := make([]byte, payloadAt)
	copy(b, signature[:])
	binary.LittleEndian.PutUint32(b[8:], typeAuthenticate)
	off := payloadAt
	for _, f := range []struct {
		at   int
		data []byte
	}{{12, lmResp}, {20, ntResp}, {28, domain}, {36, user}, {44, ws}, {52, encKey}} {
		putField(b[f.at:], len(f.data), off)
		off += len(f.data)
	}
	authFlags := flags
	if o.anonymous {
		authFlags |= flagAnonymous
	}
	binary.LittleEndian.PutUint32(b[60:], authFlags)
	copy(b[64:], negotiate[32:40]) // Version
	for _, d := range [][]byte{lmResp, ntResp, domain, user, ws, encKey} {
		b = append(b, d...)
	}
	if o.mic && exported != nil {
		copy(b[micOffset:], mic(exported, negotiate, challenge, b))
		if o.tamperMIC {
			b[micOffset+3] ^= 0x10
		}
	}
	return b
}

// handshake runs the three messages over rt with the hand-written client
// and returns the AUTHENTICATE it sent with the final status and body.
func handshake(t testing.TB, rt http.RoundTripper, url string, o clientOpts) (auth []byte, status int, body string) {
	t.Helper()
	scheme := o.scheme
	if scheme == "" {
		scheme = "NTLM"
	}
	neg := clientNegotiate(o)
	st, wa, _ := get(t, rt, url, scheme+" "+base64.StdEncoding.EncodeToString(neg))
	gotScheme, tok, ok := strings.Cut(wa, " ")
	if st != http.StatusUnauthorized || !ok || gotScheme != scheme {
		t.Fatalf("NEGOTIATE: status %d, WWW-Authenticate %q; want 401 with a %s challenge", st, wa, scheme)
	}
	chal, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	auth = clientAuthenticate(t, neg, chal, o)
	status, _, body = get(t, rt, url, scheme+" "+base64.StdEncoding.EncodeToString(auth))
	return auth, status, body
}

func newLogger(l *logRecorder) *slog.Logger { return slog.New(l) }

// timeNow is the real clock, for clients that use their own.
func timeNow() time.Time { return time.Now() }
