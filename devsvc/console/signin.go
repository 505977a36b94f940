package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/opendus/opendus/devsvc/service"
)

func (c *Console) signInRoutes() []route {
	return []route{
		{pattern: "GET /signin", public: true, h: c.signInPage},
		{pattern: "POST /signin", public: true, h: c.signIn},
		{pattern: "POST /signout", h: c.signOut},
	}
}

type signInView struct {
	User, Next, Error string
	Ended             bool
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request, _ *request) error {
	w.Header().Set("Cache-Control", "no-store")
	next := safeNext(r.URL.Query().Get("next"))
	if _, _, err := c.sessions.fromRequest(r, true); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	c.render(w, nil, http.StatusOK, "signin", "Sign in", signInView{Next: next, Ended: r.URL.Query().Get("ended") != ""})
	return nil
}

// signIn checks the name and password with the service, which counts
// failures against the account and the address, and starts a new
// session: a sign-in never reuses a session (no fixation).
func (c *Console) signIn(w http.ResponseWriter, r *http.Request, _ *request) error {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errFormTooBig
	}
	user, password := r.PostForm.Get("user"), r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	p, err := c.svc.ConsoleSignIn(r.Context(), c.cfg.ClientAddress(r), user, password)
	if err != nil {
		status := statusOf(err)
		if status == http.StatusInternalServerError {
			return err
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		c.render(w, nil, status, "signin", "Sign in", signInView{User: user, Next: next, Error: err.Error()})
		return nil
	}
	if id, _, err := c.sessions.fromRequest(r, true); err == nil {
		c.sessions.end(id) // the session this browser had, if any
	}
	setCookie(w, c.sessions.start(p))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, rq *request) error {
	c.sessions.end(rq.sid)
	clearCookie(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

// safeNext returns next if it is a path of the console, else "/": a
// sign-in never sends the browser to another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/signin") {
		return "/"
	}
	return u.RequestURI()
}

// principalLabel names a principal for the pages.
func principalLabel(p service.Principal) string {
	_, name, ok := strings.Cut(p.Name, ":")
	if !ok {
		return p.Name
	}
	return name
}
