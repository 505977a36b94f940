package devsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/metrics"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/store"
)

// How the directory's readiness is checked: one Ping at most every
// dirCacheFor, bounded by dirTimeout, so that /readyz stays cheap however
// often a load balancer (or anyone on the LAN) asks.
const (
	dirCacheFor = 5 * time.Second
	dirTimeout  = 2 * time.Second
)

// pinger is what readiness needs of the directory.
type pinger interface {
	Ping(ctx context.Context) error
}

// readiness answers /healthz and /readyz.
//
// /healthz says the process is alive: it answers 200 "ok" whenever it
// answers at all. A restart is what a failing liveness check asks for, and
// a restart would fix none of what readiness checks (a full disk, an
// expired certificate, an LDAP server down) and would lose the check-ins
// held while the disk is full. /readyz says whether the service can serve
// devices now: 200 "ok", or 503 with a line per check that fails, for a
// load balancer to send devices elsewhere meanwhile.
type readiness struct {
	inventory func() store.InventoryHealth // the store's
	certs     func() []certs.CertInfo      // the certificate store's List
	dir       pinger                       // nil without ldap_url
	now       func() time.Time
	// replica is, on a replica, its follower's progress (nil on a
	// primary); maxLag is replica_max_lag (a time.Duration, set again by
	// a reload), started when the service started: a replica not in step
	// since is as late as its start.
	replica func() replica.Status
	maxLag  atomic.Int64
	started time.Time

	// serving is set once every listener is bound and served, and cleared
	// when the shutdown begins.
	serving  atomic.Bool
	stopping atomic.Bool

	mu         sync.Mutex // serialises the directory's pings
	dirChecked time.Time
	dirErr     error
}

// check is one readiness check's result: err is nil when it passes.
type check struct {
	name string
	err  error
}

// notReady is a check's failure: what anyone may be told, and the detail
// only the metrics listener (the operator's) shows.
type notReady struct {
	reason, detail string
}

func (e notReady) Error() string {
	if e.detail == "" {
		return e.reason
	}
	return e.reason + ": " + e.detail
}

// checks runs the readiness checks: the store, the certificates, the
// directory when one is configured, the replica's lag on a replica, the
// listeners.
func (r *readiness) checks(ctx context.Context) []check {
	out := []check{{"store", r.checkStore()}, {"certificates", r.checkCerts()}}
	if r.dir != nil {
		out = append(out, check{"directory", r.checkDirectory(ctx)})
	}
	if r.replica != nil {
		out = append(out, check{"replica", r.checkReplica()})
	}
	return append(out, check{"listeners", r.checkListeners()})
}

// checkReplica fails while the replica has not been in step with its
// primary for more than replica_max_lag: its site's devices would get
// the answers of a catalog that may be stale, and a load balancer should
// send them to another server. It reads memory only.
func (r *readiness) checkReplica() error {
	maxLag := time.Duration(r.maxLag.Load())
	if maxLag <= 0 {
		return nil
	}
	st := r.replica()
	since, what := st.InStep, "since "+st.InStep.UTC().Format(time.RFC3339)
	if since.IsZero() {
		since, what = r.started, "since its start"
	}
	lag := r.now().Sub(since)
	if lag <= maxLag {
		return nil
	}
	detail := fmt.Sprintf("%d changes behind the primary %s, which it follows", st.Behind(), st.Primary)
	if !st.Connected {
		detail = fmt.Sprintf("the primary %s cannot be reached since %s: %s", st.Primary, st.Since.UTC().Format(time.RFC3339), st.LastError)
	}
	return notReady{fmt.Sprintf("this replica has not been in step with its primary %s (%s, more than replica_max_lag %s), so its site's devices should go elsewhere: devsvc status says why",
		what, lag.Round(time.Second), maxLag), detail}
}

func (r *readiness) checkStore() error {
	h := r.inventory()
	if h.Writable {
		return nil
	}
	return notReady{fmt.Sprintf("the device inventory cannot be written since %s, so check-ins are answered 503", h.Since.UTC().Format(time.RFC3339)),
		fmt.Sprint(h.Err)}
}

// checkCerts checks that the CA and the server certificate are valid now:
// devices refuse a server certificate outside its validity, or one whose
// CA is.
func (r *readiness) checkCerts() error {
	now := r.now()
	var errs []error
	for _, c := range r.certs() {
		if c.Kind != certs.KindCA && c.Kind != certs.KindServer {
			continue // the admin's certificate does not serve devices
		}
		switch {
		case now.Before(c.NotBefore):
			errs = append(errs, notReady{fmt.Sprintf("the %s certificate is not valid before %s", c.Name, c.NotBefore.UTC().Format(time.RFC3339)), ""})
		case !now.Before(c.NotAfter):
			errs = append(errs, notReady{fmt.Sprintf("the %s certificate expired on %s: run devsvc certs renew", c.Name, c.NotAfter.UTC().Format(time.DateOnly)), ""})
		}
	}
	return errors.Join(errs...)
}

// checkDirectory pings the directory, at most once per dirCacheFor.
func (r *readiness) checkDirectory(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); r.dirChecked.IsZero() || now.Sub(r.dirChecked) >= dirCacheFor || now.Before(r.dirChecked) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dirTimeout)
		err := r.dir.Ping(ctx)
		cancel()
		r.dirChecked, r.dirErr = r.now(), nil
		if err != nil {
			r.dirErr = notReady{"the LDAP directory does not answer, so device sign-ins are refused", err.Error()}
		}
	}
	return r.dirErr
}

func (r *readiness) checkListeners() error {
	switch {
	case r.stopping.Load():
		return notReady{"the service is shutting down", ""}
	case !r.serving.Load():
		return notReady{"the listeners are not serving yet", ""}
	}
	return nil
}

// metricsChecks returns the checks for the opendus_ready metric.
func (r *readiness) metricsChecks() []metrics.Check {
	var out []metrics.Check
	for _, c := range r.checks(context.Background()) {
		out = append(out, metrics.Check{Name: c.name, OK: c.err == nil})
	}
	return out
}

// healthz answers 200 "ok": the process is alive and serving HTTP.
func (r *readiness) healthz(w http.ResponseWriter, _ *http.Request) {
	plainHeaders(w)
	io.WriteString(w, "ok\n")
}

// readyz answers 200 "ok" when every check passes, else 503 with a line
// "check: reason" per check that fails (with the detail, the underlying
// error, when detail is set: on the metrics listener).
func (r *readiness) readyz(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		plainHeaders(w)
		var b strings.Builder
		for _, c := range r.checks(req.Context()) {
			if c.err == nil {
				continue
			}
			for _, e := range unjoin(c.err) {
				msg := e.Error()
				if nr, ok := errors.AsType[notReady](e); ok && !detail {
					msg = nr.reason
				}
				fmt.Fprintf(&b, "%s: %s\n", c.name, msg)
			}
		}
		if b.Len() == 0 {
			io.WriteString(w, "ok\n")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready:\n"+b.String())
	}
}

// unjoin returns the errors errors.Join joined, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func plainHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}
