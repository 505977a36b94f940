package devsvc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/internal/clocktest"
)

// fakeDirectory answers Ping with err and counts the pings.
type fakeDirectory struct {
	err   error
	pings int
}

func (f *fakeDirectory) Ping(context.Context) error { f.pings++; return f.err }

// TestReadiness checks each readiness check through /readyz, as a device
// listener answers it (what is wrong) and as the metrics listener does
// (with the error underneath), and that /healthz answers 200 whatever
// readiness says.
func TestReadiness(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	validCerts := []certs.CertInfo{
		{Name: "ca", Kind: certs.KindCA, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour)},
		{Name: "server", Kind: certs.KindServer, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)},
		{Name: "admin", Kind: certs.KindClient, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(-time.Minute)}, // does not serve devices
	}
	writable := store.InventoryHealth{Writable: true}
	full := store.InventoryHealth{Since: now.Add(-time.Minute), Err: errors.New("write /data/opendus.db: no space left on device")}
	tests := []struct {
		name                string
		inv                 store.InventoryHealth
		certs               []certs.CertInfo
		dir                 error // with a directory, when set
		serving, stopping   bool
		wantCode            int
		wantDevice, wantOps string
	}{
		{name: "ready", inv: writable, certs: validCerts, serving: true, wantCode: 200, wantDevice: "ok\n", wantOps: "ok\n"},
		{name: "inventory unwritable", inv: full, certs: validCerts, serving: true, wantCode: 503,
			wantDevice: "not ready:\nstore: the device inventory cannot be written since 2026-11-21T11:59:00Z, so check-ins are answered 503\n",
			wantOps:    "not ready:\nstore: the device inventory cannot be written since 2026-11-21T11:59:00Z, so check-ins are answered 503: write /data/opendus.db: no space left on device\n"},
		{name: "server certificate expired, CA not yet valid", inv: writable, serving: true, wantCode: 503, certs: []certs.CertInfo{
			{Name: "ca", Kind: certs.KindCA, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)},
			{Name: "server", Kind: certs.KindServer, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)},
		},
			wantDevice: "not ready:\ncertificates: the ca certificate is not valid before 2026-11-21T13:00:00Z\ncertificates: the server certificate expired on 2026-11-20: run devsvc certs renew\n",
			wantOps:    "not ready:\ncertificates: the ca certificate is not valid before 2026-11-21T13:00:00Z\ncertificates: the server certificate expired on 2026-11-20: run devsvc certs renew\n"},
		{name: "directory down", inv: writable, certs: validCerts, dir: errors.New("ldap: dial dc1.contoso.com:636: connection refused"), serving: true, wantCode: 503,
			wantDevice: "not ready:\ndirectory: the LDAP directory does not answer, so device sign-ins are refused\n",
			wantOps:    "not ready:\ndirectory: the LDAP directory does not answer, so device sign-ins are refused: ldap: dial dc1.contoso.com:636: connection refused\n"},
		{name: "not serving yet", inv: writable, certs: validCerts, wantCode: 503,
			wantDevice: "not ready:\nlisteners: the listeners are not serving yet\n", wantOps: "not ready:\nlisteners: the listeners are not serving yet\n"},
		{name: "stopping", inv: writable, certs: validCerts, serving: true, stopping: true, wantCode: 503,
			wantDevice: "not ready:\nlisteners: the service is shutting down\n", wantOps: "not ready:\nlisteners: the service is shutting down\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &readiness{inventory: func() store.InventoryHealth { return tt.inv }, certs: func() []certs.CertInfo { return tt.certs },
				now: func() time.Time { return now }}
			if tt.dir != nil {
				r.dir = &fakeDirectory{err: tt.dir}
			}
			r.serving.Store(tt.serving)
			r.stopping.Store(tt.stopping)
			for _, c := range []struct {
				name string
				h    http.HandlerFunc
				want string
			}{{"device listener", r.readyz(false), tt.wantDevice}, {"metrics listener", r.readyz(true), tt.wantOps}} {
				w := httptest.NewRecorder()
				c.h(w, httptest.NewRequest("GET", "/readyz", nil))
				if w.Code != tt.wantCode || w.Body.String() != c.want {
					t.Errorf("%s: /readyz = %d %q, want %d %q", c.name, w.Code, w.Body.String(), tt.wantCode, c.want)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("%s: /readyz Cache-Control %q, want no-store", c.name, got)
				}
			}
			w := httptest.NewRecorder()
			r.healthz(w, httptest.NewRequest("GET", "/healthz", nil))
			if w.Code != 200 || w.Body.String() != "ok\n" {
				t.Errorf("/healthz = %d %q, want 200 ok: the process is alive", w.Code, w.Body.String())
			}
			var failing []string
			for _, c := range r.metricsChecks() {
				if !c.OK {
					failing = append(failing, c.Name)
				}
			}
			if (len(failing) == 0) != (tt.wantCode == 200) {
				t.Errorf("metrics checks failing: %q, want some exactly when /readyz is 503", failing)
			}
		})
	}
}

// TestReadinessDirectoryCached: the directory is pinged at most once per
// dirCacheFor however often /readyz is asked, and its recovery is seen
// after that.
func TestReadinessDirectoryCached(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	dir := &fakeDirectory{err: errors.New("down")}
	r := &readiness{inventory: func() store.InventoryHealth { return store.InventoryHealth{Writable: true} },
		certs: func() []certs.CertInfo { return nil }, dir: dir, now: clock.Now}
	r.serving.Store(true)
	ask := func() int {
		w := httptest.NewRecorder()
		r.readyz(false)(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code
	}
	for range 100 {
		if code := ask(); code != 503 {
			t.Fatalf("/readyz with the directory down = %d, want 503", code)
		}
	}
	if dir.pings != 1 {
		t.Errorf("100 questions within %v pinged the directory %d times, want 1", dirCacheFor, dir.pings)
	}
	dir.err = nil
	clock.Advance(dirCacheFor - time.Millisecond)
	if code := ask(); code != 503 {
		t.Errorf("/readyz within the cache time = %d, want the cached 503", code)
	}
	clock.Advance(time.Millisecond)
	if code := ask(); code != 200 || dir.pings != 2 {
		t.Errorf("/readyz after the cache time = %d (%d pings), want 200 after a second ping", code, dir.pings)
	}
}

// TestReadinessReplica: a replica is ready while it was in step with its
// primary within replica_max_lag (or, never in step, started within it),
// and says why when it is not: cut off from the primary, or behind it.
func TestReadinessReplica(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const maxLag = 5 * time.Minute
	reason := func(since, lag string) string {
		return "not ready:\nreplica: this replica has not been in step with its primary " + since + " (" + lag + ", more than replica_max_lag 5m0s), so its site's devices should go elsewhere: devsvc status says why"
	}
	tests := []struct {
		name          string
		after         time.Duration // since the start
		status        replica.Status
		maxLag        time.Duration
		wantCode      int
		wantDev, want string
	}{
		{name: "just started", after: time.Minute, maxLag: maxLag, wantCode: 200, wantDev: "ok\n", want: "ok\n"},
		{name: "in step lately", after: time.Hour, maxLag: maxLag, status: replica.Status{Connected: true, InStep: start.Add(56 * time.Minute)},
			wantCode: 200, wantDev: "ok\n", want: "ok\n"},
		{name: "never in step since the start", after: 6 * time.Minute, maxLag: maxLag,
			status:   replica.Status{Primary: "dus:9443", Since: start, LastError: "connection refused"},
			wantCode: 503, wantDev: reason("since its start", "6m0s") + "\n",
			want: reason("since its start", "6m0s") + ": the primary dus:9443 cannot be reached since 2026-11-21T12:00:00Z: connection refused\n"},
		{name: "cut off", after: time.Hour, maxLag: maxLag,
			status:   replica.Status{Primary: "dus:9443", Since: start.Add(40 * time.Minute), InStep: start.Add(40 * time.Minute), LastError: "no heartbeat from the primary in 45s"},
			wantCode: 503, wantDev: reason("since 2026-11-21T12:40:00Z", "20m0s") + "\n",
			want: reason("since 2026-11-21T12:40:00Z", "20m0s") + ": the primary dus:9443 cannot be reached since 2026-11-21T12:40:00Z: no heartbeat from the primary in 45s\n"},
		{name: "connected but behind", after: time.Hour, maxLag: maxLag,
			status:   replica.Status{Primary: "dus:9443", Connected: true, InStep: start.Add(50 * time.Minute), Position: 90, Head: 120},
			wantCode: 503, wantDev: reason("since 2026-11-21T12:50:00Z", "10m0s") + "\n",
			want: reason("since 2026-11-21T12:50:00Z", "10m0s") + ": 30 changes behind the primary dus:9443, which it follows\n"},
		{name: "check off", after: 24 * time.Hour, maxLag: 0, status: replica.Status{Primary: "dus:9443"}, wantCode: 200, wantDev: "ok\n", want: "ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktest.New(start)
			r := &readiness{inventory: func() store.InventoryHealth { return store.InventoryHealth{Writable: true} },
				certs: func() []certs.CertInfo { return nil }, now: clock.Now, started: start,
				replica: func() replica.Status { return tt.status }}
			r.maxLag.Store(int64(tt.maxLag))
			r.serving.Store(true)
			clock.Advance(tt.after)
			for _, c := range []struct {
				name string
				h    http.HandlerFunc
				want string
			}{{"device listener", r.readyz(false), tt.wantDev}, {"metrics listener", r.readyz(true), tt.want}} {
				w := httptest.NewRecorder()
				c.h(w, httptest.NewRequest("GET", "/readyz", nil))
				if w.Code != tt.wantCode || w.Body.String() != c.want {
					t.Errorf("%s: /readyz = %d %q, want %d %q", c.name, w.Code, w.Body.String(), tt.wantCode, c.want)
				}
			}
		})
	}
}
