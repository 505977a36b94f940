package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/signin"
)

// Prefix starts the name of every metric of the service.
const Prefix = "opendus_"

// Build is what opendus_build_info says of the binary.
type Build struct {
	Version, Revision, GoVersion string
}

// Check is one readiness check and whether it passes.
type Check struct {
	Name string
	OK   bool
}

// Reload is the state of the settings' reloads (SIGHUP).
type Reload struct {
	// OK is false when the last reload failed (the running settings
	// were kept).
	OK bool
	// Last is when the settings were last loaded successfully: the start,
	// or the last good reload.
	Last time.Time
	// RestartNeeded is true while the settings file differs from the
	// running settings in one that takes a restart.
	RestartNeeded bool
}

// Config is what the metrics read at each scrape. A nil function leaves
// its metrics out.
type Config struct {
	Build Build
	// Devices returns the device handlers' counts of load shed and stalls.
	Devices func() deviceapi.Stats
	// SignIn returns the sign-in limiter's counts.
	SignIn func() signin.Stats
	// Inventory returns the inventory's health.
	Inventory func() store.InventoryHealth
	// Logs returns the device log uploads' counts.
	Logs func() devlogs.Stats
	// Certificates returns the service's certificates.
	Certificates func() []certs.CertInfo
	// Checks returns the readiness checks (as /readyz runs them).
	Checks func() []Check
	// Reload returns the state of the settings' reloads.
	Reload func() Reload
	// Peers returns the subnet peers' election state; nil when peers
	// are off (no families).
	Peers func() peers.Stats
	// Now is the clock of the certificates' remaining time; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the errors of a scrape; nil discards.
	Logger *slog.Logger
}

// listeners are the label values of the two device listeners, in the
// order of listenerIndex.
var listeners = []firmware.Location{firmware.Internal, firmware.External}

func listenerIndex(loc firmware.Location) int {
	if loc == firmware.External {
		return 1
	}
	return 0
}

// reportedStates are the states a status report may carry.
var reportedStates = []firmware.State{firmware.StateDownloading, firmware.StateDownloaded, firmware.StateInstalling,
	firmware.StateRebooting, firmware.StateSuccess, firmware.StateFailure}

// ImportResults are the results of an import Imported counts: those
// service.Config.Imported is told.
var ImportResults = []string{"stored", "unchanged", "refused", "failed"}

// Metrics holds the service's metrics and serves them. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	cfg Config

	checkIns      [2][]prometheus.Counter // by listener, answer
	reports       [2][]prometheus.Counter
	offers        map[string]prometheus.Counter // by device type
	states        map[firmware.State]prometheus.Counter
	downloads     [2]prometheus.Counter
	downloadBytes [2]prometheus.Counter
	commits       map[string]prometheus.Observer // by kind
	imports       map[string]prometheus.Counter  // by result
}

var _ deviceapi.Observer = (*Metrics)(nil)

// New returns the metrics of cfg, with the Go runtime's and the process's
// (go_*, process_*).
func New(cfg Config) *Metrics {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), cfg: cfg}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: Prefix + "build_info",
		Help:        "The running binary: always 1, with its version, VCS revision and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": cfg.Build.Version, "revision": cfg.Build.Revision, "goversion": cfg.Build.GoVersion}})
	info.Set(1)
	m.reg.MustRegister(info)

	answers := deviceapi.Answers()
	checkIns := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "checkins_total",
		Help: "Device check-ins, by listener and by how they were answered: offered (an update), nothing, refused (4xx), shed (503 busy), unavailable (503: the inventory cannot be written, or stopping), error (500), gone (the device left first)."},
		[]string{"listener", "answer"})
	reports := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "status_reports_total",
		Help: "Device status reports, by listener and by how they were answered: accepted, refused (4xx), shed, unavailable, error, gone."},
		[]string{"listener", "answer"})
	for i, loc := range listeners {
		for _, a := range answers {
			// Every pair exists from the start (a rate needs its zero),
			// but only the answers each message can get.
			var c, r prometheus.Counter
			if a != deviceapi.AnswerAccepted {
				c = checkIns.WithLabelValues(string(loc), a.String())
			}
			if a != deviceapi.AnswerNothing && a != deviceapi.AnswerOffered {
				r = reports.WithLabelValues(string(loc), a.String())
			}
			m.checkIns[i] = append(m.checkIns[i], c)
			m.reports[i] = append(m.reports[i], r)
		}
	}
	offers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "offers_total",
		Help: "Check-ins answered with an update, by device type."}, []string{"device_type"})
	m.offers = map[string]prometheus.Counter{}
	for _, t := range []string{firmware.UCPhone, firmware.RoundTable} {
		m.offers[t] = offers.WithLabelValues(t)
	}
	states := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "reported_states_total",
		Help: "Accepted status reports, by the state the device reported (downloading, downloaded, installing, rebooting, success, failure)."},
		[]string{"state"})
	m.states = map[firmware.State]prometheus.Counter{}
	for _, s := range reportedStates {
		m.states[s] = states.WithLabelValues(string(s))
	}
	downloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "downloads_total",
		Help: "Requests for a stored update file that found it (downloads, resumed downloads, HEAD and 304), by listener."}, []string{"listener"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "download_bytes_total",
		Help: "Bytes of update files sent, by listener."}, []string{"listener"})
	for i, loc := range listeners {
		m.downloads[i] = downloads.WithLabelValues(string(loc))
		m.downloadBytes[i] = bytes.WithLabelValues(string(loc))
	}
	commits := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: Prefix + "store_commit_duration_seconds",
		Help:    "Time of the store's write transactions, fsync included, failed ones too: inventory (a batch of check-ins and reports) or catalog (an admin's change).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"kind"})
	m.commits = map[string]prometheus.Observer{}
	for _, k := range []string{store.CommitInventory, store.CommitCatalog} {
		m.commits[k] = commits.WithLabelValues(k)
	}
	imports := prometheus.NewCounterVec(prometheus.CounterOpts{Name: Prefix + "imports_total",
		Help: "Firmware imports, by result: stored (something new), unchanged (all there already), refused (the bundle), failed (the service)."},
		[]string{"result"})
	m.imports = map[string]prometheus.Counter{}
	for _, r := range ImportResults {
		m.imports[r] = imports.WithLabelValues(r)
	}
	m.reg.MustRegister(checkIns, reports, offers, states, downloads, bytes, commits, imports)
	m.snapshots()
	return m
}

// CheckIn counts a check-in (deviceapi.Observer).
func (m *Metrics) CheckIn(loc firmware.Location, a deviceapi.Answer, deviceType string) {
	cs := m.checkIns[listenerIndex(loc)]
	if int(a) < len(cs) && cs[a] != nil {
		cs[a].Inc()
	}
	if a == deviceapi.AnswerOffered {
		if c := m.offers[deviceType]; c != nil {
			c.Inc()
		}
	}
}

// Report counts a status report (deviceapi.Observer).
func (m *Metrics) Report(loc firmware.Location, a deviceapi.Answer, state firmware.State) {
	rs := m.reports[listenerIndex(loc)]
	if int(a) < len(rs) && rs[a] != nil {
		rs[a].Inc()
	}
	if a == deviceapi.AnswerAccepted {
		if c := m.states[state]; c != nil {
			c.Inc()
		}
	}
}

// Download counts a file served and its bytes (deviceapi.Observer).
func (m *Metrics) Download(loc firmware.Location, sent int64) {
	i := listenerIndex(loc)
	m.downloads[i].Inc()
	if sent > 0 {
		m.downloadBytes[i].Add(float64(sent))
	}
}

// ObserveCommit records a store commit (store.Options.ObserveCommit).
func (m *Metrics) ObserveCommit(kind string, took time.Duration) {
	if o := m.commits[kind]; o != nil {
		o.Observe(took.Seconds())
	}
}

// Imported counts an import's result (service.Config.Imported); a
// result not in ImportResults is not counted.
func (m *Metrics) Imported(result string) {
	if c := m.imports[result]; c != nil {
		c.Inc()
	}
}

// Handler serves the metrics in Prometheus' text format (or what the
// scraper asks for), at most four scrapes at once.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.cfg.Logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
}

// Gauges adds a family of gauges read at each scrape: read emits one
// value per set of label values (in the order of labels). name must
// follow the conventions of the package documentation.
func (m *Metrics) Gauges(name, help string, labels []string, read func(emit func(v float64, labelValues ...string))) {
	m.reg.MustRegister(&family{desc: prometheus.NewDesc(name, help, labels, nil), kind: prometheus.GaugeValue, read: read})
}

// Counters adds a family of counters read at each scrape, as Gauges
// does: the values must only grow.
func (m *Metrics) Counters(name, help string, labels []string, read func(emit func(v float64, labelValues ...string))) {
	m.reg.MustRegister(&family{desc: prometheus.NewDesc(name, help, labels, nil), kind: prometheus.CounterValue, read: read})
}

// family is a metric family whose values a function emits at each scrape.
type family struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	read func(emit func(v float64, labelValues ...string))
}

func (f *family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *family) Collect(ch chan<- prometheus.Metric) {
	f.read(func(v float64, lv ...string) {
		mt, err := prometheus.NewConstMetric(f.desc, f.kind, v, lv...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(f.desc, fmt.Errorf("metrics: %w", err))
		}
		ch <- mt
	})
}

// one emits a single value without labels.
func one(v func() float64) func(emit func(float64, ...string)) {
	return func(emit func(float64, ...string)) { emit(v()) }
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snapshots adds the metrics read at scrape time from Config's functions.
func (m *Metrics) snapshots() {
	cfg := m.cfg
	if f := cfg.Devices; f != nil {
		m.Counters(Prefix+"requests_shed_total", "Check-ins and reports answered 503 busy: too many at once, or the inventory queue full.",
			nil, one(func() float64 { return float64(f().Shed) }))
		m.Counters(Prefix+"request_body_timeouts_total", "Check-ins and reports whose body did not arrive within request_body_timeout (answered 408, connection closed).",
			nil, one(func() float64 { return float64(f().BodyTimeouts) }))
		m.Counters(Prefix+"downloads_stalled_total", "Downloads dropped after download_stall_timeout without progress.",
			nil, one(func() float64 { return float64(f().DownloadsStalled) }))
	}
	if f := cfg.SignIn; f != nil {
		perVia := func(get func(signin.Stats) map[string]uint64) func(emit func(float64, ...string)) {
			return func(emit func(float64, ...string)) {
				counts := get(f())
				for _, via := range []string{"ntlm", "basic"} {
					emit(float64(counts[via]), via)
				}
			}
		}
		m.Counters(Prefix+"signin_refusals_total", "Device sign-ins refused that named a user (wrong password, unknown user, locked account, ...), by sign-in: ntlm (the edge) or basic (provisioning on the LAN).",
			[]string{"via"}, perVia(func(s signin.Stats) map[string]uint64 { return s.Refused }))
		m.Counters(Prefix+"signin_malformed_total", "Device sign-in messages refused that named no user (malformed or anonymous), by sign-in.",
			[]string{"via"}, perVia(func(s signin.Stats) map[string]uint64 { return s.Malformed }))
		m.Counters(Prefix+"signin_lockouts_total", "Device accounts locked for too many wrong passwords (signin_max_failures).",
			nil, one(func() float64 { return float64(f().Lockouts) }))
		m.Counters(Prefix+"signin_slowed_addresses_total", "Addresses slowed for too many refused sign-ins (signin_max_address_failures).",
			nil, one(func() float64 { return float64(f().Slowed) }))
		m.Counters(Prefix+"signin_busy_total", "Sign-ins from a slowed address answered busy (503) without being checked.",
			nil, one(func() float64 { return float64(f().Busy) }))
	}
	if f := cfg.Peers; f != nil {
		m.Gauges(Prefix+"peer_groups", "Update files and peer subnets with peer-capable devices offered the file (each has one representative).",
			nil, one(func() float64 { return float64(f().Groups) }))
		m.Gauges(Prefix+"peer_devices", "Peer-capable devices in the groups, by state: holding (reported having the file) or fetching.",
			[]string{"state"}, func(emit func(float64, ...string)) {
				st := f()
				emit(float64(st.Holders), "holding")
				emit(float64(st.Members-st.Holders), "fetching")
			})
		m.Counters(Prefix+"peer_elections_total", "Subnet representatives elected, by kind: first (of a file and subnet) or failover (in place of one gone silent or reported failing by a peer).",
			[]string{"kind"}, func(emit func(float64, ...string)) {
				st := f()
				emit(float64(st.Elections), "first")
				emit(float64(st.Failovers), "failover")
			})
	}
	if f := cfg.Inventory; f != nil {
		m.Gauges(Prefix+"inventory_writable", "1 while the device inventory can be written, 0 while it cannot (check-ins and reports are answered 503).",
			nil, one(func() float64 { return boolValue(f().Writable) }))
		m.Gauges(Prefix+"inventory_queue_length", "Check-ins and reports accepted and not yet written to the inventory.",
			nil, one(func() float64 { return float64(f().Held) }))
	}
	if f := cfg.Logs; f != nil {
		m.Counters(Prefix+"log_uploads_total", "Device log uploads, by result: stored, or the reason they were refused.",
			[]string{"result"}, func(emit func(float64, ...string)) {
				st := f()
				emit(float64(st.Stored), "stored")
				for _, r := range devlogs.Refusals {
					emit(float64(st.Refused[r]), r)
				}
			})
		m.Counters(Prefix+"log_upload_bytes_total", "Bytes of device log uploads stored.",
			nil, one(func() float64 { return float64(f().StoredBytes) }))
	}
	if f := cfg.Certificates; f != nil {
		m.Gauges(Prefix+"certificate_expiry_timestamp_seconds", "When each certificate of the service expires (NotAfter), as a Unix time, by certificate name (ca, server, admin).",
			[]string{"certificate"}, func(emit func(float64, ...string)) {
				for _, c := range f() {
					emit(float64(c.NotAfter.Unix()), c.Name)
				}
			})
		m.Gauges(Prefix+"certificate_remaining_seconds", "Seconds until each certificate of the service expires, negative once it has, by certificate name.",
			[]string{"certificate"}, func(emit func(float64, ...string)) {
				now := m.cfg.Now()
				for _, c := range f() {
					emit(c.NotAfter.Sub(now).Seconds(), c.Name)
				}
			})
	}
	if f := cfg.Checks; f != nil {
		m.Gauges(Prefix+"ready", "1 while the readiness check passes, 0 while it does not (/readyz answers 503), by check.",
			[]string{"check"}, func(emit func(float64, ...string)) {
				for _, c := range f() {
					emit(boolValue(c.OK), c.Name)
				}
			})
	}
	if f := cfg.Reload; f != nil {
		m.Gauges(Prefix+"config_last_reload_successful", "1 if the last load of the settings file succeeded, 0 if it failed (the running settings were kept).",
			nil, one(func() float64 { return boolValue(f().OK) }))
		m.Gauges(Prefix+"config_last_reload_success_timestamp_seconds", "When the settings were last loaded successfully (the start or a reload), as a Unix time.",
			nil, one(func() float64 { return float64(f().Last.Unix()) }))
		m.Gauges(Prefix+"config_restart_required", "1 while the settings file changes a setting that takes effect only after a restart.",
			nil, one(func() float64 { return boolValue(f().RestartNeeded) }))
	}
}
