package devsvc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/devsvc/metrics"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/signin"
)

// parts are what the metrics read at scrape time. Serve fills them in
// once it has built them, before the metrics listener serves.
type parts struct {
	d  *deps
	h  *handlers
	rl *reloader
}

// newMetrics returns the service's metrics, reading p at each scrape. A
// primary shows its rollouts, alarms and replicas; a replica its
// follower (its rollouts and alarms are its primary's, which shows them).
func newMetrics(p *parts, isReplica bool, log *slog.Logger) *metrics.Metrics {
	b := BuildInfo()
	cfg := metrics.Config{
		Build:        metrics.Build{Version: b.Version, Revision: b.Revision, GoVersion: b.GoVersion},
		Devices:      func() deviceapi.Stats { return p.h.device.api.Stats() },
		SignIn:       func() signin.Stats { return p.h.limiter.Stats() },
		Inventory:    func() store.InventoryHealth { return p.d.store.InventoryHealth() },
		Logs:         func() devlogs.Stats { return p.h.device.logs.Stats() },
		Certificates: func() []certs.CertInfo { return p.d.certs.List() },
		Checks:       func() []metrics.Check { return p.h.ready.metricsChecks() },
		Reload:       func() metrics.Reload { return p.rl.metricsState() },
		Peers:        func() peers.Stats { return p.h.device.api.PeerStats() },
		Logger:       log.With("component", "metrics"),
	}
	if isReplica {
		cfg.Follower = func() replica.Status { return p.h.follower.Status() }
	} else {
		cfg.Rollouts = func() []store.LiveRollout { return p.d.store.LiveRollouts(p.d.now()) }
		cfg.Alarms = func() ([]firmware.Alarm, error) { return p.d.store.Alarms(context.Background(), false) }
		cfg.Replicas = func() (uint64, []firmware.Replica, error) {
			head := p.d.store.Catalog().Seq()
			rs, err := p.d.store.Replicas(context.Background())
			return head, rs, err
		}
	}
	return metrics.New(cfg)
}

// metricsMux serves the metrics listener: /metrics, /healthz and /readyz,
// the last with the errors underneath (the listener is the operator's).
func metricsMux(m *metrics.Metrics, ready *readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", ready.healthz)
	mux.HandleFunc("GET /readyz", ready.readyz(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		plainHeaders(w)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "not found: this listener serves GET /metrics (Prometheus), /healthz and /readyz\n")
	})
	return mux
}

// loopback reports whether addr (host:port) is on a loopback address
// only; a wildcard or a name is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
