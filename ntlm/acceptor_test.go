package ntlm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/opendus/opendus/internal/clocktest"
	"github.com/opendus/opendus/signin"
)

// ntlmsspGet fetches url with go-ntlmssp on a new connection.
func ntlmsspGet(t testing.TB, e *testEnv, user, password string, basic bool) (status int, body string) {
	t.Helper()
	client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: e.freeTransport(t)}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/catalogue", nil)
	if err != nil {
		t.Fatal(err)
	}
	if basic {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET as %q: %v", user, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestGoNTLMSSP(t *testing.T) {
	tests := []struct {
		name, user, password string
		noCreds              bool
		wantStatus           int
		wantUser             string // in the body on success
		wantReason           string // substring of the logged reason on refusal
	}{
		{name: "right password", user: "alice", password: "correct horse", wantStatus: 200, wantUser: "alice"},
		{name: "user name case", user: "ALICE", password: "correct horse", wantStatus: 200, wantUser: "alice"},
		{name: "domain prefix", user: `opendus\bob`, password: "hunter2", wantStatus: 200, wantUser: "Bob"},
		{name: "wrong password", user: "alice", password: "battery staple", wantStatus: 401, wantReason: "does not verify"},
		{name: "wrong domain", user: `OTHER\alice`, password: "correct horse", wantStatus: 401, wantReason: "unknown user"},
		{name: "unknown user", user: "eve", password: "correct horse", wantStatus: 401, wantReason: "unknown user"},
		{name: "disabled account", user: "mallory", password: "s3cret", wantStatus: 401, wantReason: "disabled"},
		{name: "no credentials", noCreds: true, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			status, body := ntlmsspGet(t, e, tt.user, tt.password, !tt.noCreds)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				if want := secret + tt.wantUser; body != want {
					t.Errorf("body = %q, want %q", body, want)
				}
				if got := e.logs.last(); got["msg"] != "ntlm sign-in" || got["user"] != tt.wantUser || got["remote"] != "127.0.0.1" {
					t.Errorf("log = %v, want a sign-in of %s from 127.0.0.1", got, tt.wantUser)
				}
				return
			}
			if strings.Contains(body, secret) {
				t.Errorf("refusal body %q contains protected data", body)
			}
			if tt.wantReason != "" {
				if got := e.logs.last()["reason"]; !strings.Contains(got, tt.wantReason) {
					t.Errorf("logged reason = %q, want it to mention %q", got, tt.wantReason)
				}
				if body != msgSignInFailed {
					t.Errorf("body = %q, want the uniform %q", body, msgSignInFailed)
				}
			}
		})
	}
}

func TestHandcraftedClient(t *testing.T) {
	tests := []struct {
		name       string
		opts       clientOpts
		skew       time.Duration // blob timestamp relative to the server clock
		wantStatus int
		wantReason string
	}{
		{name: "plain", opts: clientOpts{}, wantStatus: 200},
		{name: "negotiate scheme", opts: clientOpts{scheme: "Negotiate"}, wantStatus: 200},
		{name: "MIC", opts: clientOpts{mic: true}, wantStatus: 200},
		{name: "MIC with key exchange", opts: clientOpts{mic: true, keyExch: true}, wantStatus: 200},
		{name: "tampered MIC", opts: clientOpts{mic: true, tamperMIC: true}, wantStatus: 401, wantReason: "MIC does not verify"},
		{name: "tampered MIC with key exchange", opts: clientOpts{mic: true, keyExch: true, tamperMIC: true}, wantStatus: 401, wantReason: "MIC does not verify"},
		{name: "NTLMv1", opts: clientOpts{ntlmV1: true}, wantStatus: 401, wantReason: "NTLMv1"},
		{name: "anonymous", opts: clientOpts{anonymous: true}, wantStatus: 401, wantReason: "anonymous"},
		{name: "timestamp within skew", skew: -4 * time.Minute, wantStatus: 200},
		{name: "stale timestamp", skew: -6 * time.Minute, wantStatus: 401, wantReason: "timestamp"},
		{name: "future timestamp", skew: 6 * time.Minute, wantStatus: 401, wantReason: "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			o := tt.opts
			if !o.anonymous {
				o.user, o.domain, o.password = "alice", "OPENDUS", "correct horse"
			}
			if tt.skew != 0 {
				ts := e.clock.Now().Add(tt.skew)
				o.timestamp = &ts
			}
			_, status, body := handshake(t, e.transport(t), e.srv.URL, o)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d; log %v", status, body, tt.wantStatus, e.logs.last())
			}
			if tt.wantStatus == 200 {
				if body != secret+"alice" {
					t.Errorf("body = %q, want %q", body, secret+"alice")
				}
				return
			}
			if body != msgSignInFailed {
				t.Errorf("body = %q, want %q", body, msgSignInFailed)
			}
			if got := e.logs.last()["reason"]; !strings.Contains(got, tt.wantReason) {
				t.Errorf("logged reason = %q, want it to mention %q", got, tt.wantReason)
			}
		})
	}
}

func TestConnectionStaysAuthenticated(t *testing.T) {
	e := newTestEnv(t, Config{})
	rt := e.transport(t)
	if _, status, _ := handshake(t, rt, e.srv.URL, clientOpts{user: "bob", password: "hunter2"}); status != 200 {
		t.Fatalf("handshake status = %d, want 200", status)
	}
	for i := range 3 {
		if status, _, body := get(t, rt, e.srv.URL+"/next", ""); status != 200 || body != secret+"Bob" {
			t.Errorf("request %d on the authenticated connection: %d %q, want 200 %q", i, status, body, secret+"Bob")
		}
	}
	// Another connection is not authenticated.
	if status, wa, _ := get(t, e.transport(t), e.srv.URL, ""); status != 401 || wa != "NTLM" {
		t.Errorf("new connection: %d, WWW-Authenticate %q; want 401, NTLM", status, wa)
	}
}

func TestReplayOnNewConnection(t *testing.T) {
	e := newTestEnv(t, Config{})
	o := clientOpts{user: "alice", password: "correct horse"}
	auth, status, _ := handshake(t, e.transport(t), e.srv.URL, o)
	if status != 200 {
		t.Fatalf("first handshake: %d, want 200", status)
	}
	rt := e.transport(t)
	if st, _, _ := get(t, rt, e.srv.URL, "NTLM "+base64.StdEncoding.EncodeToString(clientNegotiate(o))); st != 401 {
		t.Fatalf("NEGOTIATE on the second connection: %d, want 401", st)
	}
	status, _, body := get(t, rt, e.srv.URL, "NTLM "+base64.StdEncoding.EncodeToString(auth))
	if status != 401 || strings.Contains(body, secret) {
		t.Fatalf("replayed AUTHENTICATE: %d %q, want 401 without data", status, body)
	}
	// The new connection's challenge differs, so the response no longer
	// verifies.
	if got := e.logs.last()["reason"]; !strings.Contains(got, "does not verify") {
		t.Errorf("logged reason = %q, want a verification failure", got)
	}
}

func TestChallengeSingleUse(t *testing.T) {
	e := newTestEnv(t, Config{})
	rt := e.transport(t)
	auth, status, _ := handshake(t, rt, e.srv.URL, clientOpts{user: "alice", password: "correct horse"})
	if status != 200 {
		t.Fatalf("handshake: %d, want 200", status)
	}
	// The same AUTHENTICATE again on the same connection: the challenge is
	// spent, and the connection loses its authentication.
	if st, _, _ := get(t, rt, e.srv.URL, "NTLM "+base64.StdEncoding.EncodeToString(auth)); st != 401 {
		t.Fatalf("AUTHENTICATE reused on its connection: %d, want 401", st)
	}
	if got := e.logs.last()["reason"]; !strings.Contains(got, "without a pending challenge") {
		t.Errorf("logged reason = %q, want no pending challenge", got)
	}
	if st, _, _ := get(t, rt, e.srv.URL, ""); st != 401 {
		t.Errorf("connection after a refused AUTHENTICATE: %d, want 401", st)
	}
}

// TestReplayCache forces the same server challenge on two connections, the
// one case where the response would verify again, and expects the replay
// cache to refuse it.
func TestReplayCacheRefusesSameChallenge(t *testing.T) {
	clock := &clocktest.Clock{T: testStart}
	logs := &logRecorder{}
	a := NewAcceptor(newMemAccounts(alice), Config{Now: clock.Now, Logger: newLogger(logs)})
	a.rand = zeroReader{}
	o := clientOpts{user: "alice", password: "correct horse"}
	neg := clientNegotiate(o)

	st1 := &connState{}
	chal, _, err := a.step(t.Context(), st1, "192.0.2.1", neg)
	if err != nil {
		t.Fatal(err)
	}
	auth := clientAuthenticate(t, neg, chal, o)
	if _, user, err := a.step(t.Context(), st1, "192.0.2.1", auth); err != nil || user != "alice" {
		t.Fatalf("first AUTHENTICATE: %q, %v; want alice", user, err)
	}

	st2 := &connState{}
	chal2, _, err := a.step(t.Context(), st2, "192.0.2.2", neg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chal2[24:32], chal[24:32]) {
		t.Fatalf("server challenges differ with a zero random source")
	}
	if _, user, err := a.step(t.Context(), st2, "192.0.2.2", auth); !errors.Is(err, errReplay) {
		t.Fatalf("replayed AUTHENTICATE: %q, %v; want %v", user, err, errReplay)
	}

	// Once the response is older than the cache keeps it, the clock check
	// refuses it instead.
	clock.Advance(11 * time.Minute)
	st3 := &connState{}
	if _, _, err := a.step(t.Context(), st3, "192.0.2.3", neg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.step(t.Context(), st3, "192.0.2.3", auth); !errors.Is(err, errStale) {
		t.Fatalf("old AUTHENTICATE: %v; want %v", err, errStale)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestServerChallengeFresh(t *testing.T) {
	a := NewAcceptor(newMemAccounts(), Config{})
	neg := clientNegotiate(clientOpts{})
	seen := map[string]bool{}
	for range 50 {
		chal, _, err := a.step(t.Context(), &connState{}, "192.0.2.1", neg)
		if err != nil {
			t.Fatal(err)
		}
		sc := string(chal[24:32])
		if seen[sc] {
			t.Fatalf("server challenge %x issued twice", sc)
		}
		seen[sc] = true
	}
}

func TestChallengeMessage(t *testing.T) {
	clock := &clocktest.Clock{T: testStart}
	a := NewAcceptor(newMemAccounts(), Config{Now: clock.Now, TargetName: "PHONES", ComputerName: "EDGE1"})
	tests := []struct {
		name      string
		client    uint32
		wantSet   uint32
		wantClear uint32
	}{
		{
			name:      "go-ntlmssp flags",
			client:    flagTargetInfo | flag56 | flag128 | flagUnicode | flagExtendedSessionSecurity | flagNTLM | flagAlwaysSign,
			wantSet:   flagUnicode | flagNTLM | flagTargetInfo | flagExtendedSessionSecurity | flagTargetTypeDomain,
			wantClear: flagKeyExch | flagLMKey | flagOEM | flagSign | flagSeal | flagVersion | flagAnonymous,
		},
		{
			name:      "key exchange asked",
			client:    flagUnicode | flagNTLM | flagKeyExch | flagSign | flagSeal | flagLMKey,
			wantSet:   flagUnicode | flagNTLM | flagTargetInfo | flagKeyExch,
			wantClear: flagLMKey | flagSign | flagSeal,
		},
		{
			name:      "OEM-only client still gets Unicode",
			client:    flagOEM | flagNTLM | flagRequestTarget,
			wantSet:   flagUnicode | flagNTLM | flagTargetInfo | flagRequestTarget,
			wantClear: flagOEM,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			neg := make([]byte, 16)
			copy(neg, signature[:])
			binary.LittleEndian.PutUint32(neg[8:], typeNegotiate)
			binary.LittleEndian.PutUint32(neg[12:], tt.client)
			chal, _, err := a.step(t.Context(), &connState{}, "192.0.2.1", neg)
			if err != nil {
				t.Fatal(err)
			}
			if got := messageType(chal); got != typeChallenge {
				t.Fatalf("message type = %d, want %d", got, typeChallenge)
			}
			flags := binary.LittleEndian.Uint32(chal[20:])
			if flags&tt.wantSet != tt.wantSet || flags&tt.wantClear != 0 {
				t.Errorf("flags = %#08x, want %#08x set and %#08x clear", flags, tt.wantSet, tt.wantClear)
			}
			name, err := field(chal, 12, "TargetName")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := fromUTF16LE(name); got != "PHONES" {
				t.Errorf("TargetName = %q, want PHONES", got)
			}
			ti, err := field(chal, 40, "TargetInfo")
			if err != nil {
				t.Fatal(err)
			}
			pairs, err := parseAVPairs(ti)
			if err != nil {
				t.Fatal(err)
			}
			wantStr := map[uint16]string{avNbDomainName: "PHONES", avNbComputerName: "EDGE1", avDNSDomainName: "phones"}
			for id, want := range wantStr {
				v, _ := pairs.get(id)
				if got, _ := fromUTF16LE(v); got != want {
					t.Errorf("AV pair %d = %q, want %q", id, got, want)
				}
			}
			ts, _ := pairs.get(avTimestamp)
			if len(ts) != 8 {
				t.Fatalf("MsvAvTimestamp of %d bytes, want 8", len(ts))
			}
			if got, _ := fromFiletime(binary.LittleEndian.Uint64(ts)); !got.Equal(testStart) {
				t.Errorf("MsvAvTimestamp = %v, want %v", got, testStart)
			}
		})
	}
}

func TestLockoutOverHTTP(t *testing.T) {
	e := newTestEnvLimits(t, signin.Config{MaxFailures: 3, Window: time.Minute, Lockout: 10 * time.Minute})
	for i := range 3 {
		if status, _ := ntlmsspGet(t, e, "alice", "wrong", true); status != 401 {
			t.Fatalf("wrong password %d: %d, want 401", i, status)
		}
	}
	if got := e.logs.find("sign-in: account locked"); got["locked_for"] == "" || got["account"] != `opendus\alice` {
		t.Errorf("after three failures the log %v does not announce alice's lockout", e.logs.all())
	}
	e.clock.Advance(time.Minute) // a new minute of the refusal log
	if status, body := ntlmsspGet(t, e, "alice", "correct horse", true); status != 401 || body != msgSignInFailed {
		t.Fatalf("right password while locked out: %d %q, want 401 %q", status, body, msgSignInFailed)
	}
	if got := e.logs.last()["reason"]; !strings.Contains(got, "locked out") {
		t.Errorf("logged reason = %q, want locked out", got)
	}
	if status, _ := ntlmsspGet(t, e, "Bob", "hunter2", true); status != 200 {
		t.Errorf("bob from alice's address: %d, want 200 (only alice is locked)", status)
	}
	e.clock.Advance(8 * time.Minute)
	if status, _ := ntlmsspGet(t, e, "alice", "correct horse", true); status != 401 {
		t.Fatalf("right password a minute before release: %d, want 401", status)
	}
	e.clock.Advance(time.Minute)
	if status, body := ntlmsspGet(t, e, "alice", "correct horse", true); status != 200 {
		t.Fatalf("right password after the lockout: %d %q, want 200", status, body)
	}
}

// TestSignInLimits plays sign-ins through the acceptor: an account locks
// on its own wrong passwords only, from any address; garbage and unknown
// users from an address never lock the accounts behind it.
func TestSignInLimits(t *testing.T) {
	type try struct {
		advance                time.Duration
		remote, user, password string // user "garbage": a message that is no NTLM
		want                   error  // nil: signed in
	}
	const nat = "192.0.2.1"
	repeat := func(n int, f func(i int) try) []try {
		out := make([]try, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name  string
		tries []try
	}{
		{"an account locks from any address, and only it", []try{
			{remote: "192.0.2.1", user: "alice", password: "guess", want: errBadResponse},
			{remote: "192.0.2.2", user: "alice", password: "guess", want: errBadResponse},
			{remote: "192.0.2.3", user: "alice", password: "guess", want: errBadResponse},
			{remote: "192.0.2.4", user: "alice", password: "correct horse", want: signin.ErrLockedOut},
			{remote: "192.0.2.1", user: "bob", password: "hunter2"},
			{advance: 5 * time.Minute, remote: "192.0.2.4", user: "alice", password: "correct horse"},
		}},
		{"garbage and unknown users do not lock the accounts behind an address", slices.Concat(
			repeat(20, func(int) try { return try{remote: nat, user: "garbage", want: ErrMalformed} }),
			repeat(30, func(i int) try {
				return try{remote: nat, user: fmt.Sprintf("nobody%d", i), password: "x", want: ErrUnknownUser}
			}),
			[]try{
				{remote: nat, user: "alice", password: "correct horse"},
				{remote: nat, user: "Bob", password: "hunter2"},
			},
		)},
		{"spraying from one address locks each account on its own", slices.Concat(
			repeat(3, func(int) try { return try{remote: nat, user: "bob", password: "guess", want: errBadResponse} }),
			[]try{
				{remote: nat, user: "bob", password: "hunter2", want: signin.ErrLockedOut},
				{remote: nat, user: "alice", password: "correct horse"},
			},
		)},
		{"refusals of a verified response do not lock the account", slices.Concat(
			repeat(5, func(int) try { return try{remote: nat, user: "mallory", password: "s3cret", want: errDisabled} }),
		)},
		{"failures spread wider than the window do not add up", slices.Concat(
			repeat(6, func(int) try {
				return try{advance: 2 * time.Minute, remote: nat, user: "bob", password: "guess", want: errBadResponse}
			}),
			[]try{{remote: nat, user: "bob", password: "hunter2"}},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &clocktest.Clock{T: testStart}
			// The address limit is low, and a slowed address's refusals
			// are held back a nanosecond: the limits are those of
			// package signin, only quicker.
			lim := signin.New(signin.Config{Now: clock.Now, MaxFailures: 3, MaxAddressFailures: 5, Window: time.Minute,
				Lockout: 5 * time.Minute, Delay: time.Nanosecond})
			a := NewAcceptor(newMemAccounts(alice, bob, disabled), Config{Now: clock.Now, Limiter: lim})
			for i, tr := range tt.tries {
				clock.Advance(tr.advance)
				var err error
				if tr.user == "garbage" {
					// A NEGOTIATE, then an AUTHENTICATE that does not parse.
					st := &connState{}
					if _, _, err := a.step(t.Context(), st, tr.remote, clientNegotiate(clientOpts{})); err != nil {
						t.Fatal(err)
					}
					_, _, err = a.step(t.Context(), st, tr.remote, []byte("NTLMSSP\x00\x03\x00\x00\x00garbage"))
				} else {
					err = signIn(t, a, tr.remote, tr.user, tr.password)
				}
				if !errors.Is(err, tr.want) || (tr.want == nil) != (err == nil) {
					t.Fatalf("try %d: %s from %s = %v, want %v", i, tr.user, tr.remote, err, tr.want)
				}
			}
		})
	}
}

// TestBusy: a slowed address whose held refusals are all pending gets
// 503, Retry-After and Connection: close, with nothing checked.
func TestBusy(t *testing.T) {
	e := newTestEnvLimits(t, signin.Config{MaxAddressFailures: 1, MaxDelayed: 1, Delay: time.Hour})
	lim := e.acceptor.limiter
	first, _ := lim.Begin("127.0.0.1")
	first.Fail(t.Context(), signin.Failure{}) // slows 127.0.0.1
	held, err := lim.Begin("127.0.0.1")       // takes its one slot
	if err != nil {
		t.Fatal(err)
	}
	defer held.Abandon()
	client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: e.freeTransport(t)}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/catalogue", nil)
	req.SetBasicAuth("alice", "correct horse")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != msgBusy || resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Errorf("sign-in from a busy address = %d %q, Retry-After %q, close %v; want 503 %q, 1, close",
			resp.StatusCode, body, resp.Header.Get("Retry-After"), resp.Close, msgBusy)
	}
}

// signIn runs a whole handshake with a on a new connection from remote
// and returns the acceptor's verdict.
func signIn(t *testing.T, a *Acceptor, remote, user, password string) error {
	t.Helper()
	o := clientOpts{user: user, password: password}
	st := &connState{}
	neg := clientNegotiate(o)
	chal, _, err := a.step(t.Context(), st, remote, neg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = a.step(t.Context(), st, remote, clientAuthenticate(t, neg, chal, o))
	return err
}

func TestAccountsOutage(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.accounts.mu.Lock()
	e.accounts.err = errors.New("directory unreachable")
	e.accounts.mu.Unlock()
	_, status, body := handshake(t, e.transport(t), e.srv.URL, clientOpts{user: "alice", password: "correct horse"})
	if status != http.StatusServiceUnavailable || body != msgUnavailable {
		t.Errorf("with the directory down: %d %q, want 503 %q", status, body, msgUnavailable)
	}
}

func TestMissingConnContext(t *testing.T) {
	a := NewAcceptor(newMemAccounts(alice), Config{})
	h := a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("wrapped handler ran without ConnContext")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
}

func TestUserFrom(t *testing.T) {
	if u, ok := UserFrom(context.Background()); ok || u != "" {
		t.Errorf("UserFrom(empty) = %q, %v; want \"\", false", u, ok)
	}
}

// TestSweep sends requests that are not authenticated in every way the
// tests can think of and checks that each gets 401 and nothing from the
// wrapped handler.
func TestSweep(t *testing.T) {
	e := newTestEnvLimits(t, signin.Config{MaxFailures: -1, MaxAddressFailures: -1})
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	neg := clientNegotiate(clientOpts{})
	chalLike := challengeMessage(flagUnicode, [8]byte{}, "X", appendAVPair(nil, avEOL, nil))
	authNoChallenge := clientAuthenticate(t, neg, chalLike, clientOpts{user: "alice", password: "correct horse"})
	headers := []string{
		"",
		"Basic " + b64([]byte("alice:correct horse")),
		"Bearer abc",
		"NTLM",
		"NTLM !!!notbase64",
		"NTLM " + b64([]byte("hello")),
		"NTLM " + b64(chalLike),
		"NTLM " + b64(authNoChallenge),
		"NTLM " + b64(make([]byte, MaxTokenSize+1)),
		"NTLM " + strings.Repeat("A", 10000),
		"Negotiate " + b64([]byte{0x60, 0x82, 0x01, 0x00}),
		"NTLM " + b64(neg[:15]),
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead}
	paths := []string{"/", "/catalogue", "/firmware/latest.cab", "/../etc/passwd"}
	for _, h := range headers {
		for _, m := range methods {
			for _, p := range paths {
				req, err := http.NewRequestWithContext(t.Context(), m, e.srv.URL+p, strings.NewReader("body"))
				if err != nil {
					t.Fatal(err)
				}
				if h != "" {
					req.Header.Set("Authorization", h)
				}
				resp, err := e.transport(t).RoundTrip(req)
				if err != nil {
					t.Fatalf("%s %s: %v", m, p, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				short := h
				if len(short) > 40 {
					short = short[:40]
				}
				if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), secret) {
					t.Errorf("%s %s with %q: %d %q, want 401 without protected data", m, p, short, resp.StatusCode, b)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "NTLM") && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate") {
					t.Errorf("%s %s with %q: WWW-Authenticate %q, want an NTLM offer", m, p, short, resp.Header.Get("WWW-Authenticate"))
				}
			}
		}
	}
}

// advanceOnAuthenticate advances clock by d before forwarding a request
// that carries an NTLM AUTHENTICATE message.
type advanceOnAuthenticate struct {
	rt    http.RoundTripper
	clock *clocktest.Clock
	d     time.Duration
}

func (a advanceOnAuthenticate) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, tok, ok := authorization(r.Header); ok && messageType(tok) == typeAuthenticate {
		a.clock.Advance(a.d)
	}
	return a.rt.RoundTrip(r)
}

// TestGoNTLMSSPSlowAnswer lets the server clock run while go-ntlmssp
// answers the challenge: within the skew it passes, beyond it the
// challenge has expired.
func TestGoNTLMSSPSlowAnswer(t *testing.T) {
	tests := []struct {
		delay      time.Duration
		wantStatus int
	}{
		{4 * time.Minute, 200},
		{6 * time.Minute, 401},
	}
	for _, tt := range tests {
		t.Run(tt.delay.String(), func(t *testing.T) {
			e := newTestEnv(t, Config{})
			rt := advanceOnAuthenticate{rt: e.freeTransport(t), clock: e.clock, d: tt.delay}
			client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: rt}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("alice", "correct horse")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; log %v", resp.StatusCode, tt.wantStatus, e.logs.last())
			}
			if tt.wantStatus == 401 {
				if got := e.logs.last()["reason"]; !strings.Contains(got, "challenge expired") {
					t.Errorf("logged reason = %q, want challenge expired", got)
				}
			}
		})
	}
}
