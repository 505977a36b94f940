package provisioning

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/signin"
)

// Path is where the handler is mounted on both listeners.
const Path = "/Provisioning/signin.upx"

// ContentType is the media type of the provisioning document.
const ContentType = "application/xml; charset=utf-8"

// Limits of a sign-in request.
const (
	// MaxBodyBytes is the largest request body accepted (the handler reads
	// and ignores it); a larger one is answered 413.
	MaxBodyBytes = 4 << 10
	// MaxCredentialBytes bounds the Basic user name and the password each;
	// longer ones are refused like a wrong password.
	MaxCredentialBytes = 256
)

// DefaultCheckInterval is the check interval of a zero Config.
const DefaultCheckInterval = 24 * time.Hour

// DefaultRealm is the Basic realm of a zero Config.
const DefaultRealm = "OpenDUS"

// DefaultBodyTimeout is the BodyTimeout of a zero Config.
const DefaultBodyTimeout = 10 * time.Second

var (
	// ErrSignInFailed is returned by NTHashAuthenticator when the user is
	// unknown, the password wrong or the account disabled. The handler
	// treats every error of an Authenticator that is not ErrUnavailable as
	// this one.
	ErrSignInFailed = errors.New("provisioning: sign-in failed")

	// ErrWrongPassword is wrapped, with ErrSignInFailed, by an
	// Authenticator's refusal of an existing account's wrong password:
	// the one refusal that counts against the account (see package
	// signin).
	ErrWrongPassword = errors.New("wrong password")

	// ErrUnavailable is returned, possibly wrapped, by an Authenticator that
	// could not reach its accounts (a store or directory outage): the
	// handler answers 503 instead of refusing the credentials.
	ErrUnavailable = errors.New("provisioning: accounts unavailable")
)

// Authenticator verifies a user's password (the local store compares the
// NT hash; an LDAP directory binds). It returns the account's key for the
// sign-in limiter (signin.AccountKey of its canonical domain and name)
// whenever user names an existing account, right password or not, so that
// the handler can refuse a locked account and count a wrong password
// against it; and an error for any failure: one wrapping ErrUnavailable
// when it could not decide, any other when the credentials are refused,
// wrapping ErrWrongPassword too when the account exists and the password
// is wrong.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (account string, err error)
}

// NTHashAuthenticator verifies passwords against stored NT hashes, as the
// local accounts that NTLM uses keep them.
type NTHashAuthenticator struct {
	// Lookup returns the account user names (its canonical domain and
	// name, NT hash and whether it is disabled), as ntlm.Accounts.LookupNT
	// does for an empty domain. It returns an error wrapping
	// ntlm.ErrUnknownUser when there is no such account; any other error
	// is an outage.
	Lookup func(ctx context.Context, user string) (ntlm.Account, error)
}

// Authenticate computes ntlm.NTHash(password) and compares it with the
// account's in constant time. An unknown user costs the same: the hash is
// computed and compared with a zero hash. Refusals wrap ErrSignInFailed and
// say why (for the log, never for the device); lookup failures wrap
// ErrUnavailable.
func (a NTHashAuthenticator) Authenticate(ctx context.Context, user, password string) (string, error) {
	acct, err := a.Lookup(ctx, user)
	unknown := errors.Is(err, ntlm.ErrUnknownUser)
	if err != nil && !unknown {
		return "", fmt.Errorf("%w: looking up %q: %w", ErrUnavailable, user, err)
	}
	want := acct.NTHash
	if unknown {
		want = [16]byte{}
	}
	got := ntlm.NTHash(password)
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	if unknown {
		return "", fmt.Errorf("%w: unknown user %q: %w", ErrSignInFailed, user, err)
	}
	account := signin.AccountKey(acct.Domain, acct.User)
	switch {
	case !match:
		return account, fmt.Errorf("%w: %w for %q", ErrSignInFailed, ErrWrongPassword, user)
	case acct.Disabled:
		return account, fmt.Errorf("%w: account %q is disabled", ErrSignInFailed, user)
	}
	return account, nil
}

// Config configures the sign-in handler. The zero value works but tells
// devices nothing useful: no URLs, updates disabled, and no Basic sign-in;
// the service sets the URLs, Enabled and Auth.
type Config struct {
	// InternalURL and ExternalURL are the base URLs of the update service
	// ("https://ucupdates-r2.contoso.com/"); the document gives the
	// check-in URLs under them (CheckInPath, CheckInPathExt). Empty: the
	// document leaves that URL out.
	InternalURL, ExternalURL string
	// ServiceFor, when set, may give a signed-in device the base URLs of
	// another update service than InternalURL and ExternalURL: the one
	// near it (its site's replica), told by its request (the address it
	// comes from). ok false, or URLs that are not valid, give the
	// Config's. It must not block.
	ServiceFor func(r *http.Request) (internalURL, externalURL string, ok bool)
	// Enabled is updatesServerEnabled: false tells devices not to check
	// for updates.
	Enabled bool
	// CheckInterval is how often devices check; default 24h.
	CheckInterval time.Duration
	// Auth verifies Basic credentials on the internal listener; nil refuses
	// every Basic sign-in (NTLM users are still served).
	Auth Authenticator
	// Realm is the Basic realm in WWW-Authenticate; default "OpenDUS".
	Realm string

	// Limiter counts failed Basic sign-ins and decides lockouts (see
	// package signin); a service shares one with the NTLM acceptor, so
	// that both sign-ins count against the same budgets. nil: a Limiter of
	// its own with signin's defaults, this Config's Now and Logger.
	Limiter *signin.Limiter

	// BodyTimeout bounds the time the request body may take to arrive
	// once the headers are read; a body not complete by then is answered
	// 408 and the connection closed. Default 10 s.
	BodyTimeout time.Duration

	// Logger receives one record per sign-in served, with the keys user,
	// remote and via, and the failures that are not refusals (an outage, no
	// TLS, invalid URLs); refusals are logged by the Limiter,
	// rate-limited. nil discards.
	Logger *slog.Logger
	// Now is the clock (the document's issued time); nil means time.Now.
	Now func() time.Time
	// RootMetadata, if set, returns the root of the signed update
	// metadata the document carries (updatesServerRootMetadata); nil or
	// an empty root: none.
	RootMetadata func() []byte
}

type handler struct {
	cfg              Config
	log              *slog.Logger
	internal, extern string
	urlErr           error
	challenge        string
	limiter          *signin.Limiter
}

// NewHandler returns the sign-in handler, to be mounted at Path (POST) on
// both listeners: behind ntlm.Acceptor.Require on the external one, where
// the NTLM user is signed in, and on the internal one, where Basic
// credentials over TLS are checked with Config.Auth. A signed-in user gets
// the provisioning document (200, ContentType); anything else gets no
// document: 401 for missing or refused credentials (all the same), 403 for
// Basic credentials without TLS, 405 for other methods, 408 for a body
// that does not arrive within BodyTimeout, 413 for a body larger than
// MaxBodyBytes, 503 when the accounts are unavailable or the limiter finds
// the address busy (with Retry-After) and 500 when Config's URLs are
// invalid (logged).
func NewHandler(cfg Config) http.Handler {
	h := &handler{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.cfg.CheckInterval <= 0 {
		h.cfg.CheckInterval = DefaultCheckInterval
	}
	if h.cfg.Now == nil {
		h.cfg.Now = time.Now
	}
	if h.cfg.BodyTimeout <= 0 {
		h.cfg.BodyTimeout = DefaultBodyTimeout
	}
	h.limiter = cfg.Limiter
	if h.limiter == nil {
		h.limiter = signin.New(signin.Config{Now: h.cfg.Now, Logger: h.log})
	}
	realm := cfg.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	realm = strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, realm)
	h.challenge = `Basic realm="` + realm + `", charset="UTF-8"`
	var errInt, errExt error
	h.internal, errInt = checkInURL(cfg.InternalURL, CheckInPath)
	h.extern, errExt = checkInURL(cfg.ExternalURL, CheckInPathExt)
	if err := errors.Join(errInt, errExt); err != nil {
		h.urlErr = fmt.Errorf("provisioning: invalid service URL: %w", err)
	}
	return h
}

// Answers that carry no document.
const (
	msgSignIn      = "sign in with the user name and password of the user of this device\n"
	msgNeedTLS     = "sign-in needs HTTPS\n"
	msgUnavailable = "sign-in is unavailable; try again later\n"
	msgBusy        = "too many failed sign-ins from this network at once; try again in a few seconds\n"
	msgBroken      = "the update service is misconfigured\n"
	msgTooLarge    = "request body too large\n"
	msgBadBody     = "cannot read the request body\n"
	msgSlowBody    = "the request body did not arrive in time\n"
	msgMethod      = "use POST\n"
)

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Connection", "close") // the body is not read
		plain(w, http.StatusMethodNotAllowed, msgMethod)
		return
	}
	// The body carries nothing the handler needs; read it so that the
	// connection can be reused, and no more than MaxBodyBytes of it,
	// within BodyTimeout. The deadline stays when the body breaks off, so
	// that the server does not wait for the rest either.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(h.cfg.BodyTimeout))
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		w.Header().Set("Connection", "close")
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			plain(w, http.StatusRequestEntityTooLarge, msgTooLarge)
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.log.Info("provisioning: request body stalled", "remote", r.RemoteAddr, "timeout", h.cfg.BodyTimeout.String())
			plain(w, http.StatusRequestTimeout, msgSlowBody)
			return
		}
		h.log.Info("provisioning: reading request body", "remote", r.RemoteAddr, "reason", err.Error())
		plain(w, http.StatusBadRequest, msgBadBody)
		return
	}
	rc.SetReadDeadline(time.Time{})
	user, via, err := h.signIn(r)
	switch {
	case errors.Is(err, errNoCredentials):
		w.Header().Set("WWW-Authenticate", h.challenge)
		plain(w, http.StatusUnauthorized, msgSignIn)
		return
	case errors.Is(err, errNoTLS):
		h.log.Warn("provisioning: sign-in refused", "user", user, "remote", r.RemoteAddr, "via", via, "reason", err.Error())
		plain(w, http.StatusForbidden, msgNeedTLS)
		return
	case errors.Is(err, signin.ErrBusy):
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		plain(w, http.StatusServiceUnavailable, msgBusy)
		return
	case errors.Is(err, ErrUnavailable):
		h.log.Error("provisioning: sign-in unavailable", "user", user, "remote", r.RemoteAddr, "via", via, "reason", err.Error())
		plain(w, http.StatusServiceUnavailable, msgUnavailable)
		return
	case err != nil:
		// Refused; the limiter has logged why.
		w.Header().Set("WWW-Authenticate", h.challenge)
		// Make a guesser pay for a new connection per attempt.
		w.Header().Set("Connection", "close")
		plain(w, http.StatusUnauthorized, msgSignIn)
		return
	}
	if h.urlErr != nil {
		h.log.Error("provisioning: cannot provision", "user", user, "remote", r.RemoteAddr, "reason", h.urlErr.Error())
		plain(w, http.StatusInternalServerError, msgBroken)
		return
	}
	doc := Document{
		User:          user,
		Issued:        h.cfg.Now().UTC().Truncate(time.Second),
		InternalURL:   h.internal,
		ExternalURL:   h.extern,
		Enabled:       h.cfg.Enabled,
		CheckInterval: h.cfg.CheckInterval,
	}
	if h.cfg.ServiceFor != nil {
		if in, ext, ok := h.cfg.ServiceFor(r); ok {
			ci, errInt := checkInURL(in, CheckInPath)
			ce, errExt := checkInURL(ext, CheckInPathExt)
			if err := errors.Join(errInt, errExt); err != nil {
				h.log.Error("provisioning: the service near the device has an invalid URL; giving this service's", "remote", r.RemoteAddr, "reason", err.Error())
			} else {
				doc.InternalURL, doc.ExternalURL = ci, cmpOr(ce, doc.ExternalURL)
			}
		}
	}
	if h.cfg.RootMetadata != nil {
		doc.RootMetadata = h.cfg.RootMetadata()
	}
	h.log.Info("provisioning: signed in", "user", user, "remote", r.RemoteAddr, "via", via)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(doc.AppendXML(nil))
}

var (
	errNoCredentials = errors.New("no credentials")
	errNoTLS         = errors.New("basic credentials without TLS")
)

// signIn returns the signed-in user of r and how it signed in, or why not.
// Refusals are counted and logged by the limiter.
func (h *handler) signIn(r *http.Request) (user, via string, err error) {
	if u, ok := ntlm.UserFrom(r.Context()); ok && u != "" {
		return u, "ntlm", nil
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", "", errNoCredentials
	}
	remote := h.limiter.ClientAddress(r)
	if len(values) > 1 {
		err := fmt.Errorf("%w: %d Authorization headers", ErrSignInFailed, len(values))
		h.limiter.Malformed(remote, "basic", "", err)
		return "", "basic", err
	}
	user, password, err := ParseBasic(values[0])
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSignInFailed, err)
		h.limiter.Malformed(remote, "basic", "", err)
		return "", "basic", err
	}
	if r.TLS == nil {
		return user, "basic", errNoTLS
	}
	att, err := h.limiter.Begin(remote)
	if err != nil {
		return user, "basic", err
	}
	var account string
	if h.cfg.Auth == nil {
		_ = ntlm.NTHash(password) // the work a real check does
		err = fmt.Errorf("%w: no authenticator for Basic sign-in", ErrSignInFailed)
	} else {
		account, err = h.cfg.Auth.Authenticate(r.Context(), user, password)
	}
	// The password is checked before the lockout, so that the answer's
	// timing says nothing about either.
	switch {
	case errors.Is(err, ErrUnavailable):
		att.Abandon()
	case account != "" && att.Locked(account):
		err = fmt.Errorf("%w: %w", ErrSignInFailed, signin.ErrLockedOut)
		att.Fail(r.Context(), signin.Failure{Via: "basic", User: user, Account: account, Reason: err})
	case err != nil:
		att.Fail(r.Context(), signin.Failure{Via: "basic", User: user, Account: account, WrongPassword: errors.Is(err, ErrWrongPassword), Reason: err})
	default:
		att.Succeed(account)
	}
	return user, "basic", err
}

// ErrBadCredentials is returned by ParseBasic when an Authorization header
// is not well-formed Basic credentials within the limits.
var ErrBadCredentials = errors.New("provisioning: malformed Basic credentials")

// ParseBasic reads the value of an Authorization header with the Basic
// scheme (RFC 7617): the scheme, case-insensitive, one or more spaces and
// the standard base64 of "user:password", both UTF-8 and without control
// characters. The user name must not be empty and neither may be longer than
// MaxCredentialBytes. Errors wrap ErrBadCredentials.
func ParseBasic(header string) (user, password string, err error) {
	const maxEncoded = (2*MaxCredentialBytes + 1 + 2) / 3 * 4
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", fmt.Errorf("%w: not the Basic scheme", ErrBadCredentials)
	}
	token = strings.TrimLeft(token, " ")
	if len(token) > maxEncoded {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrBadCredentials, maxEncoded)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil {
		return "", "", fmt.Errorf("%w: bad base64", ErrBadCredentials)
	}
	user, password, ok = strings.Cut(string(raw), ":")
	switch {
	case !ok:
		return "", "", fmt.Errorf("%w: no colon", ErrBadCredentials)
	case user == "":
		return "", "", fmt.Errorf("%w: empty user name", ErrBadCredentials)
	case len(user) > MaxCredentialBytes || len(password) > MaxCredentialBytes:
		return "", "", fmt.Errorf("%w: user name or password longer than %d bytes", ErrBadCredentials, MaxCredentialBytes)
	case !printable(user) || !printable(password):
		return "", "", fmt.Errorf("%w: not UTF-8 or has control characters", ErrBadCredentials)
	}
	return user, password, nil
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// cmpOr returns a unless it is empty, else b.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
