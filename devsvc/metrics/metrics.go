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
	"github.com/opendus/opendus/devsvc/replica"
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
	// Rollouts returns the live rollouts with their devices
	// (store.LiveRollouts).
	Rollouts func() []store.LiveRollout
	// Alarms returns the open alarms (store.Alarms).
	Alarms func() ([]firmware.Alarm, error)
	// Replicas returns, on a primary, its replicas (store.Replicas; the
	// removed ones are left out) and its head, the history number of its
	// last catalog change.
	Replicas func() (head uint64, replicas []firmware.Replica, err error)
	// Follower returns, on a replica, what its follower is doing.
	Follower func() replica.Status
	// Peers returns the subnet peers' election state, zero while peers
	// are off (deviceapi.Server.PeerStats): the service always sets it,
	// so the peer metrics are there, at 0, with peers off. nil: no peer
	// metrics.
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

// rolloutDeviceStates are the states opendus_rollout_devices counts a
// rollout's devices in (firmware.Outcome), liveStates the states of a live
// rollout, alarmKinds the kinds of alarm there are.
var (
	rolloutDeviceStates = []firmware.Outcome{firmware.OutcomeWaiting, firmware.OutcomeOffered, firmware.OutcomeDownloading,
		firmware.OutcomeInstalled, firmware.OutcomeRetrying, firmware.OutcomeStalled, firmware.OutcomeFailed}
	liveStates = []firmware.RolloutState{firmware.RolloutScheduled, firmware.RolloutRunning, firmware.RolloutPaused}
	alarmKinds = []firmware.AlarmKind{firmware.AlarmOverdue, firmware.AlarmPaused, firmware.AlarmReplicaBehind}
)

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
	m.reg.MustRegister(single(name, help, labels, prometheus.GaugeValue, read))
}

// Counters adds a family of counters read at each scrape, as Gauges
// does: the values must only grow.
func (m *Metrics) Counters(name, help string, labels []string, read func(emit func(v float64, labelValues ...string))) {
	m.reg.MustRegister(single(name, help, labels, prometheus.CounterValue, read))
}

// single is a group of one family.
func single(name, help string, labels []string, kind prometheus.ValueType, read func(emit func(v float64, labelValues ...string))) *group {
	return &group{kind: kind, descs: []*prometheus.Desc{prometheus.NewDesc(name, help, labels, nil)},
		read: func(emit func(int, float64, ...string)) error {
			read(func(v float64, lv ...string) { emit(0, v, lv...) })
			return nil
		}}
}

// one emits a single value without labels.
func one(v func() float64) func(emit func(float64, ...string)) {
	return func(emit func(float64, ...string)) { emit(v()) }
}

// timestamp is t as a Unix time in seconds, 0 for the zero time (never).
func timestamp(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
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
	m.rollouts()
	m.replication()
}

// rollouts adds the metrics of the rollouts and the alarms.
func (m *Metrics) rollouts() {
	cfg := m.cfg
	if f := cfg.Rollouts; f != nil {
		labels := []string{"rule", "identity", "state"}
		m.reg.MustRegister(&group{kind: prometheus.GaugeValue, descs: []*prometheus.Desc{
			prometheus.NewDesc(Prefix+"rollout_devices", "Devices of each live rollout (scheduled, running, paused) by where they stand with its version: waiting, offered, downloading, installed, retrying, stalled, failed (test devices left out, as devsvc rollout show counts them), by rule ID and identity.", labels, nil),
			prometheus.NewDesc(Prefix+"rollout_state", "The state of each live rollout: 1 for the state it is in (scheduled, running, paused), 0 for the others, by rule ID and identity. A rollout that ends (completed, stopped) leaves the metrics.", labels, nil),
		}, read: func(emit func(int, float64, ...string)) error {
			for _, lr := range f() {
				rule, id, d := lr.Rollout.Rule, lr.Rollout.Identity.Path(), lr.Devices
				for i, n := range []int{d.Waiting, d.Offered, d.Downloading, d.Installed, d.Retrying, d.Stalled, d.Failed} {
					emit(0, float64(n), rule, id, string(rolloutDeviceStates[i]))
				}
				for _, st := range liveStates {
					emit(1, boolValue(lr.Rollout.State == st), rule, id, string(st))
				}
			}
			return nil
		}})
	}
	if f := cfg.Alarms; f != nil {
		m.reg.MustRegister(&group{kind: prometheus.GaugeValue, descs: []*prometheus.Desc{
			prometheus.NewDesc(Prefix+"alarms_open", "Open alarms (devsvc alarms), by kind: overdue (devices of a site have not followed a scheduled release), paused (a rollout paused itself on failures), replica-behind (a replica has not applied a release).", []string{"kind"}, nil),
		}, read: func(emit func(int, float64, ...string)) error {
			as, err := f()
			if err != nil {
				return err
			}
			n := map[firmware.AlarmKind]int{}
			for _, a := range as { // open ones only (Config.Alarms)
				n[a.Kind]++
			}
			for _, k := range alarmKinds {
				emit(0, float64(n[k]), string(k))
				delete(n, k)
			}
			for k, c := range n { // a kind this binary does not know, replicated from a newer one
				emit(0, float64(c), string(k))
			}
			return nil
		}})
	}
}

// replication adds the metrics of a primary's replicas and of a
// replica's follower.
func (m *Metrics) replication() {
	cfg := m.cfg
	if f := cfg.Replicas; f != nil {
		labels := []string{"replica", "site"}
		m.reg.MustRegister(&group{kind: prometheus.GaugeValue, descs: []*prometheus.Desc{
			prometheus.NewDesc(Prefix+"replica_behind_changes", "On a primary: how many catalog changes each replica is behind (its position as it last told, against the primary's head), by replica and site.", labels, nil),
			prometheus.NewDesc(Prefix+"replica_last_contact_timestamp_seconds", "On a primary: when each replica last called it, as a Unix time (0: never), by replica and site.", labels, nil),
		}, read: func(emit func(int, float64, ...string)) error {
			head, rs, err := f()
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.Active() {
					emit(0, float64(r.Progress.Behind(head)), r.Name, r.Site)
					emit(1, timestamp(r.Progress.LastContact), r.Name, r.Site)
				}
			}
			return nil
		}})
	}
	if f := cfg.Follower; f != nil {
		desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(Prefix+name, help, nil, nil) }
		m.reg.MustRegister(&group{kind: prometheus.GaugeValue, descs: []*prometheus.Desc{
			desc("replication_connected", "On a replica: 1 while it follows its primary's feed, 0 while the primary cannot be reached."),
			desc("replication_position", "On a replica: the history number of the primary's last catalog change it applied."),
			desc("replication_behind_changes", "On a replica: how many catalog changes it is behind its primary's head, as last heard."),
			desc("replication_last_contact_timestamp_seconds", "On a replica: when its primary last answered, as a Unix time (0: not since the start)."),
			desc("replication_in_step_timestamp_seconds", "On a replica: when it was last in step with its primary (its position at the head the primary told), as a Unix time (0: not since the start); replica_max_lag after it, /readyz fails."),
			desc("replication_outbox_length", "On a replica: check-ins and reports it answered and has not yet forwarded to its primary."),
		}, read: func(emit func(int, float64, ...string)) error {
			st := f()
			for i, v := range []float64{boolValue(st.Connected), float64(st.Position), float64(st.Behind()),
				timestamp(st.LastContact), timestamp(st.InStep), float64(st.Outbox)} {
				emit(i, v)
			}
			return nil
		}})
	}
}

// group is metric families read together at each scrape: one read of
// what they share (a pass over the fleet, a read of the store). read
// emits a value of family i; when it fails the scrape lacks the families
// and says why (promhttp logs it and serves the rest).
type group struct {
	descs []*prometheus.Desc
	kind  prometheus.ValueType
	read  func(emit func(i int, v float64, labelValues ...string)) error
}

func (g *group) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d
	}
}

func (g *group) Collect(ch chan<- prometheus.Metric) {
	err := g.read(func(i int, v float64, lv ...string) {
		mt, err := prometheus.NewConstMetric(g.descs[i], g.kind, v, lv...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(g.descs[i], fmt.Errorf("metrics: %w", err))
		}
		ch <- mt
	})
	if err != nil {
		for _, d := range g.descs {
			ch <- prometheus.NewInvalidMetric(d, fmt.Errorf("metrics: %w", err))
		}
	}
}
