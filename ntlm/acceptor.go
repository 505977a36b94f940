package ntlm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opendus/opendus/signin"
)

// ErrUnknownUser is returned by [Accounts.LookupNT] when no account has the
// given name.
var ErrUnknownUser = errors.New("ntlm: unknown user")

// Reasons a sign-in is refused. They go to the log only; the client always
// gets the same answer.
var (
	errNoChallenge      = errors.New("AUTHENTICATE without a pending challenge on this connection")
	errChallengeExpired = errors.New("challenge expired before the AUTHENTICATE arrived")
	errAnonymous        = errors.New("anonymous (null session) sign-in")
	errNTLMv1           = errors.New("NTLMv1 or LM response (only NTLMv2 is accepted)")
	errBadResponse      = errors.New("NTLMv2 response does not verify (wrong password or tampered message)")
	errDisabled         = errors.New("account disabled")
	errStale            = errors.New("NTLMv2 timestamp outside the allowed clock skew")
	errNoMIC            = errors.New("MsvAvFlags announces a MIC but the message has no room for one")
	errBadMIC           = errors.New("MIC does not verify")
	errReplay           = errors.New("replayed NTLMv2 response")
)

// Accounts is how the acceptor finds users: the local store implements it,
// a directory may later. Lookups are case-insensitive on the user name.
type Accounts interface {
	// LookupNT returns the account named user in domain, as the client
	// sent them (domain may be empty; user may be a UPN such as
	// "alice@example.com"). It returns ErrUnknownUser, possibly wrapped,
	// when there is no such account; any other error is an outage.
	LookupNT(ctx context.Context, domain, user string) (Account, error)
}

// Account is what the acceptor needs to know about a user.
type Account struct {
	User     string   // canonical user name, as UserFrom reports it
	Domain   string   // canonical domain, used with User as the lockout key
	NTHash   [16]byte // NTHash(password)
	Disabled bool     // refused even with the right password
}

// Config tunes an Acceptor. The zero value is a working configuration.
type Config struct {
	// TargetName is the NetBIOS domain name offered in the CHALLENGE as
	// TargetName and MsvAvNbDomainName. Default "OPENDUS".
	TargetName string

	// ComputerName is the NetBIOS computer name offered as
	// MsvAvNbComputerName. Default "UPDATE".
	ComputerName string

	// DNSDomainName is offered as MsvAvDnsDomainName. Default: TargetName
	// in lower case.
	DNSDomainName string

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// MaxClockSkew is how far the timestamp in a client's NTLMv2 response
	// may be from the server's clock, either way, and how long a challenge
	// stays valid. Default 5 minutes, the Kerberos default that Windows
	// domains already keep their clocks within. [MS-NLMP] lets a server
	// allow up to 36 hours (MaxLifetime), but each response here is bound
	// to a fresh single-use challenge on a TLS connection, so a long window
	// buys nothing except a longer life for captured responses and a
	// larger replay cache. Phones whose clock is further off are refused
	// and logged with reason "timestamp"; raise the value if that happens.
	MaxClockSkew time.Duration

	// Limiter counts failed sign-ins and decides lockouts (see package
	// signin); a service shares one between the NTLM and the Basic
	// sign-in, so that they count against the same budgets. nil: a
	// Limiter of its own with signin's defaults, this Config's Now and
	// Logger.
	Limiter *signin.Limiter

	// Logger receives one record per successful sign-in, with the keys
	// user and remote, and account lookups that fail; refusals are logged
	// by the Limiter (rate-limited). nil discards.
	Logger *slog.Logger
}

// maxReplayEntries bounds the memory of the replay cache.
const maxReplayEntries = 1 << 16

// Acceptor is the server side of NTLMv2 over HTTP. It is safe for
// concurrent use by many connections.
type Acceptor struct {
	accounts Accounts
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	rand     io.Reader // crypto/rand; tests may replace it
	limiter  *signin.Limiter
	replay   *replayCache
}

// NewAcceptor returns an Acceptor that checks credentials against accounts.
func NewAcceptor(accounts Accounts, cfg Config) *Acceptor {
	if cfg.TargetName == "" {
		cfg.TargetName = "OPENDUS"
	}
	if cfg.ComputerName == "" {
		cfg.ComputerName = "UPDATE"
	}
	if cfg.DNSDomainName == "" {
		cfg.DNSDomainName = strings.ToLower(cfg.TargetName)
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = 5 * time.Minute
	}
	a := &Acceptor{
		accounts: accounts,
		cfg:      cfg,
		now:      cfg.Now,
		log:      cfg.Logger,
		rand:     rand.Reader,
		limiter:  cfg.Limiter,
		// A response older than the skew is refused anyway, so remembering
		// it for twice the skew (either side of the clock) is enough.
		replay: newReplayCache(2*cfg.MaxClockSkew, maxReplayEntries),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.limiter == nil {
		a.limiter = signin.New(signin.Config{Now: cfg.Now, Logger: cfg.Logger})
	}
	return a
}

// connState is the NTLM state of one connection.
type connState struct {
	mu sync.Mutex
	// The pending handshake: set by a NEGOTIATE, consumed by the next
	// AUTHENTICATE whatever its outcome.
	pending         bool
	negotiate       []byte
	challenge       []byte
	serverChallenge [8]byte
	issued          time.Time
	// user is the authenticated user; empty until the handshake succeeds.
	user string
}

type connKey struct{}

type userKey struct{}

// ConnContext must be installed as http.Server.ConnContext: it attaches the
// per-connection NTLM state (pending challenge, authenticated user) that
// Require uses. NTLM authenticates a connection, not a request, so the
// server must speak HTTP/1.1 (no HTTP/2) on the listener. Failures count
// against the address Config.Limiter attributes each request to
// (signin.Limiter.ClientAddress).
func (a *Acceptor) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

// UserFrom returns the user that Require authenticated for the request
// whose context is ctx.
func UserFrom(ctx context.Context) (user string, ok bool) {
	user, ok = ctx.Value(userKey{}).(string)
	return user, ok && user != ""
}

// Answers to the client. They say what to do and never which check failed.
const (
	msgSignInRequired = "sign-in required: the external update service needs NTLM authentication of a signed-in user\n"
	msgChallenge      = "sign-in in progress: answer the NTLM challenge on this connection\n"
	msgSignInFailed   = "sign-in failed: the user name or password was not accepted, or sign-in is locked for a while after repeated failures; check the credentials configured on the device\n"
	msgUnavailable    = "sign-in temporarily unavailable on the server side; try again later\n"
	msgBusy           = "sign-in busy: too many failed sign-ins from this network at once; try again in a few seconds\n"
	msgMisconfigured  = "server misconfigured: NTLM connection state missing\n"
	msgHTTP11         = "NTLM sign-in needs HTTP/1.1\n"
)

// Require wraps next so that it only runs on connections that completed an
// NTLM handshake. A request on any other connection gets 401 with
// "WWW-Authenticate: NTLM" (or the next handshake message), a short
// plain-text reason, and nothing from next. Authorization headers with the
// scheme NTLM or Negotiate carrying raw NTLM messages are understood; the
// acceptor offers only NTLM. Once the connection is authenticated, next
// runs with the user in the request context (see UserFrom).
func (a *Acceptor) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := r.Context().Value(connKey{}).(*connState)
		if st == nil {
			a.log.Error("ntlm: Acceptor.ConnContext is not installed on the http.Server", "reason", "misconfigured")
			plain(w, http.StatusInternalServerError, msgMisconfigured)
			return
		}
		if r.ProtoMajor != 1 {
			plain(w, http.StatusHTTPVersionNotSupported, msgHTTP11)
			return
		}
		scheme, token, present := authorization(r.Header)
		if !present {
			if user := st.authenticated(); user != "" {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
				return
			}
			w.Header().Set("WWW-Authenticate", "NTLM")
			plain(w, http.StatusUnauthorized, msgSignInRequired)
			return
		}
		reply, user, err := a.step(r.Context(), st, a.limiter.ClientAddress(r), token)
		switch {
		case errors.Is(err, signin.ErrBusy):
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			plain(w, http.StatusServiceUnavailable, msgBusy)
		case err != nil && !isRefusal(err):
			plain(w, http.StatusServiceUnavailable, msgUnavailable)
		case err != nil:
			w.Header().Set("WWW-Authenticate", "NTLM")
			// Make a guesser pay for a new connection per attempt.
			w.Header().Set("Connection", "close")
			plain(w, http.StatusUnauthorized, msgSignInFailed)
		case reply != nil:
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(reply))
			plain(w, http.StatusUnauthorized, msgChallenge)
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
		}
	})
}

// plain writes a short plain-text answer.
func plain(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// authorization extracts an NTLM token from the Authorization header. A
// header with another scheme counts as absent. A token that is not valid
// base64, or is larger than MaxTokenSize, is returned as an empty token so
// that it fails as a malformed message.
func authorization(h http.Header) (scheme string, token []byte, present bool) {
	for _, v := range h.Values("Authorization") {
		s, data, _ := strings.Cut(strings.TrimSpace(v), " ")
		switch {
		case strings.EqualFold(s, "NTLM"):
			scheme = "NTLM"
		case strings.EqualFold(s, "Negotiate"):
			scheme = "Negotiate"
		default:
			continue
		}
		data = strings.TrimSpace(data)
		if len(data) > base64.StdEncoding.EncodedLen(MaxTokenSize) {
			return scheme, []byte{}, true
		}
		tok, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return scheme, []byte{}, true
		}
		return scheme, tok, true
	}
	return "", nil, false
}

// authenticated returns the connection's user, empty if none.
func (st *connState) authenticated() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.user
}

// refusal marks an error as a refused sign-in (as opposed to an outage).
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// step runs one handshake message from the address key remote through the
// connection state. For a NEGOTIATE it returns the CHALLENGE to send; for
// an AUTHENTICATE that verifies, the user; otherwise an error: a refusal,
// signin.ErrBusy, or an outage of the account lookup. Any message resets
// the connection's authentication: a connection that starts a new
// handshake must finish it.
func (a *Acceptor) step(ctx context.Context, st *connState, remote string, token []byte) (reply []byte, user string, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.user = ""
	now := a.now()

	switch messageType(token) {
	case typeNegotiate:
		neg, err := parseNegotiate(token)
		if err != nil {
			return nil, "", a.malformed(remote, "", err)
		}
		var sc [8]byte
		if _, err := io.ReadFull(a.rand, sc[:]); err != nil {
			return nil, "", fmt.Errorf("ntlm: server challenge: %w", err)
		}
		st.challenge = challengeMessage(a.challengeFlags(neg.flags), sc, a.cfg.TargetName, a.targetInfoAt(now))
		st.negotiate = append([]byte(nil), token...)
		st.serverChallenge = sc
		st.issued = now
		st.pending = true
		return st.challenge, "", nil

	case typeAuthenticate:
		if !st.pending {
			return nil, "", a.malformed(remote, "", errNoChallenge)
		}
		st.pending = false
		acct, err := a.authenticate(ctx, st, remote, token, now)
		if err != nil {
			return nil, "", err
		}
		st.user = acct.User
		st.negotiate, st.challenge = nil, nil
		return nil, acct.User, nil

	default:
		st.pending = false
		return nil, "", a.malformed(remote, "", fmt.Errorf("%w: not a NEGOTIATE or AUTHENTICATE message", ErrMalformed))
	}
}

// challengeFlags selects the CHALLENGE flags from what the client offered:
// always Unicode, NTLM and TargetInfo (the AV pairs NTLMv2 signs); extended
// session security, 128/56-bit and key exchange when the client asks, since
// they decide how the MIC key is derived; never LM_KEY, anonymous, OEM,
// signing or sealing, which HTTP does not use.
func (a *Acceptor) challengeFlags(client uint32) uint32 {
	f := uint32(flagUnicode | flagNTLM | flagTargetInfo | flagTargetTypeDomain | flagRequestTarget)
	f |= client & (flagExtendedSessionSecurity | flagAlwaysSign | flag128 | flag56 | flagKeyExch)
	return f
}

// targetInfoAt builds the TargetInfo AV pairs of a CHALLENGE issued at now.
func (a *Acceptor) targetInfoAt(now time.Time) []byte {
	var b []byte
	b = appendAVPair(b, avNbDomainName, utf16LE(a.cfg.TargetName))
	b = appendAVPair(b, avNbComputerName, utf16LE(a.cfg.ComputerName))
	b = appendAVPair(b, avDNSDomainName, utf16LE(a.cfg.DNSDomainName))
	b = appendAVPair(b, avTimestamp, binary.LittleEndian.AppendUint64(nil, toFiletime(now)))
	return appendAVPair(b, avEOL, nil)
}

// authenticate verifies an AUTHENTICATE message from the address key
// remote against the connection's pending challenge. st.mu is held.
func (a *Acceptor) authenticate(ctx context.Context, st *connState, remote string, raw []byte, now time.Time) (Account, error) {
	m, err := parseAuthenticate(raw)
	if err != nil {
		return Account{}, a.malformed(remote, "", err)
	}
	name := m.user
	if m.domain != "" {
		name = m.domain + `\` + m.user
	}
	if m.user == "" || len(m.ntResponse) == 0 || m.flags&flagAnonymous != 0 {
		return Account{}, a.malformed(remote, name, errAnonymous)
	}

	// From here the message names a user: a guess, which the limiter
	// counts and, for a slowed address, answers late or not at all.
	att, err := a.limiter.Begin(remote)
	if err != nil {
		return Account{}, err
	}
	refuse := func(account string, wrongPassword bool, reason error) error {
		att.Fail(ctx, signin.Failure{Via: "ntlm", User: name, Account: account, WrongPassword: wrongPassword, Reason: reason})
		return refusal{reason}
	}
	if len(m.ntResponse) <= ntlmV1ResponseLen {
		return Account{}, refuse("", false, errNTLMv1)
	}
	resp, err := parseNTLMv2Response(m.ntResponse)
	if err != nil {
		return Account{}, refuse("", false, err)
	}
	if now.Sub(st.issued) > a.cfg.MaxClockSkew {
		return Account{}, refuse("", false, errChallengeExpired)
	}

	acct, err := a.accounts.LookupNT(ctx, m.domain, m.user)
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		att.Abandon()
		a.log.Error("ntlm sign-in: account lookup failed", "user", name, "remote", remote, "reason", err.Error())
		return Account{}, fmt.Errorf("ntlm: look up %q: %w", name, err)
	}
	account := ""
	if known {
		account = signin.AccountKey(acct.Domain, acct.User)
		if att.Locked(account) {
			return Account{}, refuse(account, false, signin.ErrLockedOut)
		}
	}

	// Unknown users are checked against a zero hash so that they cost the
	// same as known ones.
	key := ntowfV2(acct.NTHash, m.user, m.domain)
	proof := ntProofStr(key, st.serverChallenge, resp.blob)
	switch {
	case !known:
		return Account{}, refuse("", false, err)
	case !hmac.Equal(proof, resp.proof):
		return Account{}, refuse(account, true, errBadResponse)
	case acct.Disabled:
		return Account{}, refuse(account, false, errDisabled)
	}

	// The response verifies, so its blob is the client's: check what it
	// says. These refusals do not count against the account: the password
	// was right.
	ts, ok := fromFiletime(resp.timestamp)
	if !ok || ts.Sub(now).Abs() > a.cfg.MaxClockSkew {
		return Account{}, refuse(account, false, fmt.Errorf("%w: client time %s, server time %s", errStale, ts.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	avFlags, err := resp.avPairs.flags()
	if err != nil {
		return Account{}, refuse(account, false, err)
	}
	if avFlags&avFlagMIC != 0 {
		if len(raw) < micEnd {
			return Account{}, refuse(account, false, errNoMIC)
		}
		keyExch := st.challenge != nil && binary.LittleEndian.Uint32(st.challenge[20:])&flagKeyExch != 0
		exported, ok := exportedSessionKey(key, proof, keyExch, m.encKey)
		if !ok {
			return Account{}, refuse(account, false, fmt.Errorf("%w: EncryptedRandomSessionKey of %d bytes", ErrMalformed, len(m.encKey)))
		}
		if !hmac.Equal(mic(exported, st.negotiate, st.challenge, raw), raw[micOffset:micEnd]) {
			return Account{}, refuse(account, false, errBadMIC)
		}
	}
	if !a.replay.add(proof, now) {
		return Account{}, refuse(account, false, errReplay)
	}

	att.Succeed(account)
	a.log.Info("ntlm sign-in", "user", acct.User, "remote", remote)
	return acct, nil
}

// malformed logs a message from remote that names no user (user is the
// name it gave, if any) and returns the reason as a refusal; it counts
// against nothing.
func (a *Acceptor) malformed(remote, user string, reason error) error {
	a.limiter.Malformed(remote, "ntlm", user, reason)
	return refusal{reason}
}
