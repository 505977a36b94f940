package devsvc

import (
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
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/signin"
)

// parts are what the metrics read at scrape time. Serve fills them in
// once it has built them, before the metrics listener serves.
type parts struct {
	d  *deps
	h  *handlers
	rl *reloader
}

// newMetrics returns the service's metrics, reading p at each scrape.
func newMetrics(p *parts, log *slog.Logger) *metrics.Metrics {
	b := BuildInfo()
	return metrics.New(metrics.Config{
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
	})
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
