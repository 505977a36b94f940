package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/opendus/opendus/devsvc/service"
)

// cookieName is the session cookie's name. The __Host- prefix makes the
// browser refuse it unless it is Secure, has Path=/ and no Domain, so no
// other host (a sibling subdomain) can set or shadow it.
const cookieName = "__Host-opendus-session"

// sessionID is the SHA-256 of a session's cookie value: the table is
// keyed by it, so the table holds nothing a cookie could be made from
// and a lookup compares no secret byte by byte.
type sessionID [sha256.Size]byte

// session is one sign-in's state, held by the server.
type session struct {
	principal service.Principal
	csrf      string // the synchronizer token of its forms
	created   time.Time
	lastSeen  time.Time
	flash     string // shown once, on the next page
	imports   []importResult
}

// Errors of a request without a usable session.
var (
	errNoSession    = errors.New("not signed in")
	errSessionEnded = errors.New("session ended")
)

// sessions is the server-side session table: bounded, with an idle
// timeout and an absolute lifetime, safe for concurrent use.
type sessions struct {
	now            func() time.Time
	idle, lifetime time.Duration
	max            int

	mu sync.Mutex
	m  map[sessionID]*session
}

func newSessions(now func() time.Time, idle, lifetime time.Duration, max int) *sessions {
	return &sessions{now: now, idle: idle, lifetime: lifetime, max: max, m: map[sessionID]*session{}}
}

// randomToken returns 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func idOf(token string) sessionID { return sha256.Sum256([]byte(token)) }

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) >= ss.idle || now.Sub(s.created) >= ss.lifetime
}

// start opens a session for p and returns its cookie value. When the
// table is full it first ends the expired sessions, then the one unused
// the longest.
func (ss *sessions) start(p service.Principal) string {
	token := randomToken()
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		for id, s := range ss.m {
			if ss.expired(s, now) {
				delete(ss.m, id)
			}
		}
	}
	for len(ss.m) >= ss.max {
		var oldest sessionID
		var at time.Time
		for id, s := range ss.m {
			if at.IsZero() || s.lastSeen.Before(at) {
				oldest, at = id, s.lastSeen
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[idOf(token)] = &session{principal: p, csrf: randomToken(), created: now, lastSeen: now}
	return token
}

// fromRequest returns the live session of r's cookie, touching it (its
// idle time starts again) when touch is true. A copy is returned: the
// table's stays under its lock.
func (ss *sessions) fromRequest(r *http.Request, touch bool) (sessionID, *session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return sessionID{}, nil, errNoSession
	}
	id := idOf(ck.Value)
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return id, nil, errSessionEnded
	}
	if ss.expired(s, now) {
		delete(ss.m, id)
		return id, nil, errSessionEnded
	}
	if touch {
		s.lastSeen = now
	}
	cp := *s
	cp.imports = append([]importResult(nil), s.imports...)
	return id, &cp, nil
}

// alive reports whether the session id is held and not expired, without
// touching it: an event stream asks it as it goes.
func (ss *sessions) alive(id sessionID) bool {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	return ok && !ss.expired(s, now)
}

// sweep ends the expired sessions.
func (ss *sessions) sweep() {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, id)
		}
	}
}

// end ends a session (sign-out, or its principal may no longer act).
func (ss *sessions) end(id sessionID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// len returns the number of sessions held.
func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (ss *sessions) setFlash(id sessionID, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.m[id]; ok {
		s.flash = msg
	}
}

func (ss *sessions) takeFlash(id sessionID) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return ""
	}
	msg := s.flash
	s.flash = ""
	return msg
}

// maxImportResults bounds the import results a session keeps to show.
const maxImportResults = 4

// addImport keeps an import's result for its page and returns its number.
func (ss *sessions) addImport(id sessionID, res importResult) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return
	}
	s.imports = append(s.imports, res)
	if len(s.imports) > maxImportResults {
		s.imports = s.imports[len(s.imports)-maxImportResults:]
	}
}

// checkCSRF compares a form's token with the session's, in constant time.
func (rq *request) checkCSRF(token string) error {
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(rq.s.csrf)) != 1 {
		return errCSRF
	}
	return nil
}

// setCookie sets the session cookie: Secure, HttpOnly, SameSite=Strict,
// for the whole console, for the browser's session (the server ends it).
func setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}
