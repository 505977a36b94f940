package devsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/console"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/directory"
	"github.com/opendus/opendus/devsvc/metrics"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/rollout"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/freespace"
	"github.com/opendus/opendus/internal/simclock"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/signin"
)

// ServeOptions configures Serve. Empty addresses come from the settings.
type ServeOptions struct {
	Dir          string
	InternalAddr string
	ExternalAddr string
	AdminAddr    string
	// ConsoleAddr is the web console's address; "off": no console.
	ConsoleAddr string
	// MetricsAddr is the listener of /metrics, /healthz and /readyz
	// (metrics_addr); empty: the settings', where it is off by default.
	MetricsAddr string
	Logger      *slog.Logger // nil: discard
	// Ready, if set, is called once every listener is bound and serving.
	Ready func(datadir.RunInfo)
	// Reload, if set, makes Serve reload the settings file each time it
	// receives (devsvc serve sends SIGHUP here): what can change without a
	// restart is applied, all of it or, when the file is refused, none;
	// the settings that need a restart are logged and devsvc status shows
	// them. Addresses given here keep overriding the file's.
	Reload <-chan struct{}
	// Reloaded, if set, is called after each reload with what it did.
	Reloaded func(ReloadResult)
	// Clock, if set, is a simulated clock (package internal/simclock,
	// DIR/run/clock) that a fleet simulator drives, for rehearsals: the
	// service's logic runs on its time (what check-ins are answered and
	// recorded with, rollouts and their waves, windows, stalls, alarms,
	// the history), while network deadlines, TLS, sign-in lockouts and
	// logs keep real time. Serve refuses it unless every listener is on a
	// loopback address, logs it and warns of it in devsvc status; devsvc
	// serve --simulated-clock (hidden) sets it. nil: the real clock.
	Clock *simclock.Clock

	// wall, if set, is the real clock of what keeps real time and tests
	// move by hand: the readiness checks and a replica follower's status.
	// nil: time.Now.
	wall func() time.Time
}

// simulatedTick is how often the rollout engine ticks on a simulated
// clock: simulated time runs thousands of times faster, and a wave or a
// pause should not wait hours of it.
const simulatedTick = 100 * time.Millisecond

// shutdownGrace is how long open connections get to finish at shutdown.
const shutdownGrace = 5 * time.Second

// Serve runs the service from the data directory until ctx is done, then
// shuts down gracefully: open connections get a few seconds to finish,
// every goroutine Serve started stops, the audit log and the inventory are
// flushed, and the store is closed last. It is four steps: open the
// dependencies, bind the listeners, build the handlers, run.
func Serve(ctx context.Context, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := datadir.LoadSettings(opts.Dir)
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		log.Warn("settings file", "warning", w)
	}
	override := func(s *datadir.Settings) {
		for _, o := range []struct {
			dst *string
			v   string
		}{
			{&s.InternalAddr, opts.InternalAddr}, {&s.ExternalAddr, opts.ExternalAddr}, {&s.AdminAddr, opts.AdminAddr}, {&s.MetricsAddr, opts.MetricsAddr},
			{&s.ConsoleAddr, opts.ConsoleAddr},
		} {
			if o.v != "" {
				*o.dst = o.v
			}
		}
		if s.ConsoleAddr == "off" {
			s.ConsoleAddr = "" // --console-addr off
		}
	}
	override(&s)
	// With a metrics listener, the parts count for it; without, they are
	// told nothing and pay nothing.
	var (
		p *parts
		m *metrics.Metrics
	)
	if s.MetricsAddr != "" {
		p = &parts{}
		m = newMetrics(p, len(s.ReplicaOf) > 0, log)
		if !loopback(s.MetricsAddr) {
			log.Warn("the metrics listener is not on loopback: it serves plain HTTP without sign-in; keep it on a network only the monitoring reaches",
				"metrics", s.MetricsAddr)
		}
	}
	now := time.Now
	if opts.Clock != nil {
		now = opts.Clock.Now
	}
	d, err := openDeps(opts.Dir, s, m, now, log)
	if err != nil {
		return err
	}
	if opts.wall != nil {
		d.wall = opts.wall
	}
	defer func() {
		// The store says what it could not write; say it again here,
		// last, where an operator reading the end of the log looks.
		if err := d.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	lns, err := bind(ctx, s)
	if err != nil {
		return err
	}
	defer lns.Close()
	ri := lns.runInfo()
	if opts.Clock != nil {
		if err := lns.loopbackOnly(); err != nil {
			return err
		}
		ri.SimulatedClock = true
		log.Warn("running on a simulated clock, driven by a simulator: for rehearsals only", "clock", opts.Clock.Path(), "now", now())
	}
	rl := newReloader(opts.Dir, s, override, log)
	h, err := build(d, s, ri, rl, m, now, log)
	if err != nil {
		return err
	}
	rl.apply = func(next datadir.Settings) error { return h.reconfigure(d, next, ri, log) }
	h.reload, h.reloaded = opts.Reload, opts.Reloaded
	if p != nil {
		p.d, p.h, p.rl = d, h, rl
	}
	defer func() { // after every goroutine stopped, before the store closes
		if err := h.Close(); err != nil {
			log.Error("closing the audit log and the log uploads", "err", err)
		}
	}()
	if err := datadir.WriteRunInfo(opts.Dir, ri); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(opts.Dir, datadir.RunDir, datadir.RunFile))
	return run(ctx, d, lns, h, log, func() {
		log.Info("serving", "internal", ri.Internal, "external", ri.External, "admin", ri.Admin, "console", ri.Console, "metrics", ri.Metrics, "data", opts.Dir)
		if opts.Ready != nil {
			opts.Ready(ri)
		}
	})
}

// deps are what the handlers are built on: the settings, certificates,
// store and (when configured) the directory.
type deps struct {
	dir      string
	settings datadir.Settings
	certs    *certs.Store
	store    *store.Store
	ldap     *directory.Directory // nil without ldap_url
	// floor is min_free_space on the data directory's file system: log
	// uploads and audit lines are refused below it, so that the store
	// keeps room.
	floor *freespace.Floor
	// now is the clock of the service's logic: time.Now, or a simulated
	// clock (ServeOptions.Clock); wall is real time (time.Now but in
	// tests), for readiness and replication, which a simulated clock does
	// not move.
	now, wall func() time.Time
	// replicaHooks is what the device side needs of replication
	// (replica.go).
	replicaHooks replicaHooks
}

// openDeps opens the certificates, the store (on the clock now) and the
// directory, and empties the spool of uploads a previous run left behind.
// The store's commits are timed for m, if set.
func openDeps(dir string, s datadir.Settings, m *metrics.Metrics, now func() time.Time, log *slog.Logger) (*deps, error) {
	cs, err := certs.Open(filepath.Join(dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		return nil, err // it names the certificates and what is wrong
	}
	deploy := s.DeployRoundTableOnImport
	opts := &store.Options{Logger: log.With("component", "store"), FlushInterval: s.InventoryFlush, DeployRoundTable: &deploy,
		Retry: s.RetryPolicy(), Now: now}
	if m != nil {
		opts.ObserveCommit = m.ObserveCommit
	}
	st, err := store.Open(dir, opts)
	if err != nil {
		return nil, err // it names the store and says what to do
	}
	d := &deps{dir: dir, settings: s, certs: cs, store: st, now: now, wall: time.Now, floor: freespace.New(freespace.Config{
		Dir: dir, Min: s.MinFreeSpace, What: "device log uploads and audit log lines", Logger: log.With("component", "freespace"),
	})}
	if err := checkReplicaSettings(s, st, dir); err != nil {
		st.Close()
		return nil, err
	}
	if err := recordDirAdminCert(context.Background(), st, cs, "devsvc serve", log); err != nil {
		st.Close()
		return nil, err
	}
	if d.ldap, err = openDirectory(s, log.With("component", "directory")); err != nil {
		st.Close()
		return nil, err
	}
	if err := cleanTmp(filepath.Join(dir, datadir.TmpDir)); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the directory and the store (which flushes the inventory).
func (d *deps) Close() error {
	var err error
	if d.ldap != nil {
		err = d.ldap.Close()
	}
	return errors.Join(err, d.store.Close())
}

// accounts is where device sign-ins are checked: the directory when one
// is configured, else the store's local accounts.
func (d *deps) accounts() ntlm.Accounts {
	if d.ldap != nil {
		return d.ldap
	}
	return storeAccounts{st: d.store, domains: serviceDomains(d.settings.Domain)}
}

// listeners are the bound listeners; console is nil when it is off,
// metrics without metrics_addr.
type listeners struct {
	internal, external, admin, console, metrics net.Listener
}

// bind binds every listener first, so a port in use fails the start
// cleanly, naming the setting and flag to change.
func bind(ctx context.Context, s datadir.Settings) (*listeners, error) {
	var lc net.ListenConfig
	l := &listeners{}
	for _, b := range []struct {
		name, addr string
		ln         *net.Listener
	}{
		{"internal", s.InternalAddr, &l.internal}, {"external", s.ExternalAddr, &l.external}, {"admin", s.AdminAddr, &l.admin},
		{"console", s.ConsoleAddr, &l.console},
	} {
		if b.name == "console" && b.addr == "" {
			continue // no console
		}
		ln, err := lc.Listen(ctx, "tcp", b.addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s listener on %s: %w (set %s_addr in %s or pass --%s-addr)", b.name, b.addr, err, b.name, datadir.ConfigFile, b.name)
		}
		*b.ln = ln
	}
	if s.MetricsAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", s.MetricsAddr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("metrics listener on %s: %w (set metrics_addr in %s or pass --metrics-addr; empty turns it off)", s.MetricsAddr, err, datadir.ConfigFile)
		}
		l.metrics = ln
	}
	return l, nil
}

// Close closes the listeners still open.
func (l *listeners) Close() {
	for _, ln := range []net.Listener{l.internal, l.external, l.admin, l.console, l.metrics} {
		if ln != nil {
			ln.Close()
		}
	}
}

// loopbackOnly refuses listeners bound to other than loopback addresses:
// a simulated clock is for rehearsals on one machine, never for a service
// devices can reach.
func (l *listeners) loopbackOnly() error {
	for _, ln := range []net.Listener{l.internal, l.external, l.admin, l.console} {
		if ln == nil {
			continue
		}
		a, ok := ln.Addr().(*net.TCPAddr)
		if !ok || !a.IP.IsLoopback() {
			return fmt.Errorf("a simulated clock is for rehearsals on loopback only, and %s is not a loopback address: listen on 127.0.0.1 (--internal-addr, --external-addr, --admin-addr, --console-addr), or serve without --simulated-clock", ln.Addr())
		}
	}
	return nil
}

func (l *listeners) runInfo() datadir.RunInfo {
	ri := datadir.RunInfo{PID: os.Getpid(), Started: time.Now().UTC(),
		Internal: l.internal.Addr().String(), External: l.external.Addr().String(), Admin: l.admin.Addr().String()}
	if l.console != nil {
		ri.Console = l.console.Addr().String()
	}
	if l.metrics != nil {
		ri.Metrics = l.metrics.Addr().String()
	}
	return ri
}

// handlers are the servers of the listeners and what runs beside them.
type handlers struct {
	device    *deviceSide
	svc       *service.Service
	internal  *http.Server
	external  *http.Server
	admin     grpcServer
	adminAPI  *adminapi.Server // its Shutdown ends the replicas' streams
	console   *console.Console
	consoleHS *http.Server // nil without a console
	metrics   *http.Server // nil without metrics_addr
	acceptor  *ntlm.Acceptor
	limiter   *signin.Limiter
	// rollouts moves rollouts on and raises alarms (package rollout), on
	// a primary; on a replica follower follows the primary instead (nil
	// on a primary), over replicaClient. replicaChecks raises a primary's
	// alarms of replicas behind.
	rollouts      *rollout.Engine
	follower      *replica.Follower
	replicaClient *adminapi.ReplicaClient
	replicaChecks func(context.Context)
	ready         *readiness
	rl            *reloader
	reload        <-chan struct{}    // ServeOptions.Reload
	reloaded      func(ReloadResult) // ServeOptions.Reloaded
}

// grpcServer is what Serve needs of the admin API's gRPC server.
type grpcServer interface {
	Serve(net.Listener) error
	GracefulStop()
	Stop()
}

// Limits of the device listeners' connections. Each request's body and
// each download have their own deadlines (request_body_timeout,
// download_stall_timeout; see package deviceapi).
const (
	// handshakeTimeout bounds a connection's TLS handshake and each
	// request's headers (http.Server uses ReadHeaderTimeout for both), and
	// the admin listener's handshake.
	handshakeTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request's headers; NTLM's are the largest
	// (a few KiB).
	maxHeaderBytes = 64 << 10
	// maxStreams is the HTTP/2 streams one connection of the internal
	// listener may have open at once (the external one is HTTP/1.1 only:
	// NTLM binds to a connection). A device makes one request at a time.
	maxStreams = 100
)

// build composes every handler from the settings: the device side
// (check-ins, downloads, status, log uploads, provisioning, NTLM at the
// edge), the service layer and its gRPC transport, and their servers. The
// service's logic runs on the clock now (time.Now but in rehearsals).
func build(d *deps, s datadir.Settings, ri datadir.RunInfo, rl *reloader, m *metrics.Metrics, now func() time.Time, log *slog.Logger) (*handlers, error) {
	var rootExpires func() time.Time // the signed metadata's root, once the device side is built
	svcCfg := service.Config{
		Logger: log.With("component", "service"), Version: Version(), SpoolDir: filepath.Join(d.dir, datadir.TmpDir),
		MaxImportBytes: s.MaxImportBytes, RPMKeyring: keyringPath(d.dir, s.RPMKeyring), KeyringSetting: "rpm_keyring in " + datadir.ConfigFile,
		MinAccountPasswordLength: int(s.MinPasswordLength),
		Listeners: func() []service.Listener {
			ls := []service.Listener{{Name: "internal", Address: ri.Internal}, {Name: "external", Address: ri.External}, {Name: "admin", Address: ri.Admin}}
			if ri.Console != "" {
				ls = append(ls, service.Listener{Name: "console", Address: "https://" + browsable(ri.Console) + "/"})
			}
			if ri.Metrics != "" {
				ls = append(ls, service.Listener{Name: "metrics", Address: ri.Metrics})
			}
			return ls
		},
		Settings:     func() []service.Setting { return settingEntries(s) },
		Certificates: func() []service.CertInfo { return certInfos(d.certs.List()) },
		Issuer:       d.certs,
		Warnings: func() []string {
			w := append(append(certWarnings(d.certs.Expiring(30*24*time.Hour)), diskWarnings(d.floor)...), rl.warnings()...)
			if rootExpires != nil {
				w = append(w, rootWarnings(rootExpires(), now())...)
			}
			if ri.SimulatedClock {
				w = append(w, fmt.Sprintf("the service runs on a simulated clock (%s), now %s, driven by a simulator: for rehearsals only; restart it without --simulated-clock to serve devices",
					filepath.Join(datadir.RunDir, datadir.ClockFile), now().Format(time.RFC3339)))
			}
			return w
		},
		Now: now,
	}
	// One limiter for every sign-in, NTLM at the edge, Basic on the LAN
	// and the console, so that they count against the same budgets.
	limiter, err := newLimiter(s, log.With("component", "signin"))
	if err != nil {
		return nil, err
	}
	svcCfg.Limiter = limiter
	var obs deviceapi.Observer // nil without metrics: no interface to call
	if m != nil {
		svcCfg.Imported = m.Imported
		obs = m
	}
	ready := &readiness{inventory: d.store.InventoryHealth, certs: d.certs.List, now: d.wall, started: d.wall()}
	ready.maxLag.Store(int64(s.ReplicaMaxLag))
	if d.ldap != nil {
		ready.dir = d.ldap
	}
	adminTLS := d.certs.AdminServerTLSConfig()
	if d.ldap != nil {
		svcCfg.Directory = directoryAdmins{d.ldap}
		adminTLS.ClientAuth = tls.VerifyClientCertIfGiven // or a directory account
	}
	var (
		svc      *service.Service
		follower *replica.Follower
		rclient  *adminapi.ReplicaClient
	)
	warnings := svcCfg.Warnings
	if len(s.ReplicaOf) > 0 {
		if follower, rclient, err = newFollower(d, s, ri, rl, log.With("component", "replica")); err != nil {
			return nil, err
		}
		svcCfg.ReplicaOf = strings.Join(s.ReplicaOf, ", ")
		svcCfg.Replication.Follower = follower.Status
		ready.replica = follower.Progress
		svcCfg.Warnings = func() []string { return append(followerWarnings(follower), warnings()...) }
		d.replicaHooks.altInternal, d.replicaHooks.altExternal = s.PrimaryInternalURL, s.PrimaryExternalURL
	} else {
		svcCfg.Replication = service.ReplicationConfig{Issuer: d.certs, Domain: s.Domain, AlarmAfter: s.ReplicaAlarmAfter,
			AdminAddrs: func() []string { return []string{replicaAdminAddr(ri.Admin, s.InternalName)} },
			DeviceURLs: func() (string, string) { return deviceURLs(rl.settings(), ri) }}
		svcCfg.Warnings = func() []string { return append(replicaAlarmWarnings(svc), warnings()...) }
	}
	svc = service.New(d.store, svcCfg)
	if follower == nil {
		// A site's devices are sent to its replica, by the sites the
		// store holds at the time of each request.
		sites := func() *firmware.SiteTable { return d.store.Catalog().Sites() }
		d.replicaHooks.mirror = mirror(svc)
		d.replicaHooks.serviceFor = serviceFor(svc, sites, limiter.Client, firmware.Internal)
	}
	admin := adminapi.NewServer(svc, adminapi.Config{Logger: log.With("component", "admin"), HandshakeTimeout: handshakeTimeout})
	web, err := console.New(svc, console.Config{Logger: log.With("component", "console"), IdleTimeout: s.ConsoleIdleTimeout,
		SessionLifetime: s.ConsoleSessionLifetime, ClientAddress: limiter.ClientAddress, SpoolDir: svcCfg.SpoolDir,
		MaxUploadBytes: s.MaxImportBytes, Version: Version()})
	if err != nil {
		return nil, err
	}
	acceptor := ntlm.NewAcceptor(d.accounts(), ntlm.Config{Limiter: limiter, Logger: log.With("component", "ntlm")})
	dev, err := newDeviceSide(d, s, ri, acceptor, limiter, ready, obs, log)
	if err != nil {
		return nil, err
	}
	rootExpires = dev.meta.RootExpires
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	extTLS := d.certs.ServerTLSConfig().Clone()
	extTLS.NextProtos = []string{"http/1.1"} // NTLM binds to a connection
	var consoleHS *http.Server
	if ri.Console != "" {
		consoleHS = &http.Server{Handler: web, TLSConfig: d.certs.ServerTLSConfig(), ReadHeaderTimeout: handshakeTimeout, MaxHeaderBytes: maxHeaderBytes,
			IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	}
	var checks func(context.Context)
	if follower == nil {
		checks = func(ctx context.Context) {
			runReplicaChecks(ctx, svc, 30*time.Second, log.With("component", "replicas"))
		}
	}
	var metricsSrv *http.Server
	if m != nil {
		metricsSrv = &http.Server{Handler: metricsMux(m, ready), ReadHeaderTimeout: handshakeTimeout, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog}
	}
	var rollouts *rollout.Engine
	if follower == nil { // a replica's rollouts are its primary's decisions
		rollouts = rollout.New(d.store, rolloutConfig(s, ri, now, log))
	}
	return &handlers{
		rollouts: rollouts, follower: follower, replicaClient: rclient, replicaChecks: checks,
		device: dev, svc: svc, acceptor: acceptor, limiter: limiter, console: web, consoleHS: consoleHS,
		ready: ready, rl: rl, metrics: metricsSrv,
		internal: &http.Server{Handler: dev.Internal, TLSConfig: d.certs.ServerTLSConfig(), ReadHeaderTimeout: handshakeTimeout,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog,
			HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams, WriteByteTimeout: s.DownloadStallTimeout}},
		external: &http.Server{Handler: dev.External, TLSConfig: extTLS, ConnContext: acceptor.ConnContext,
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, ReadHeaderTimeout: handshakeTimeout,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog},
		admin:    admin.GRPCServer(adminTLS),
		adminAPI: admin,
	}, nil
}

// Close closes what the device side keeps open (the audit log, writing
// what is buffered, and the log uploads). Call it once the listeners have
// stopped.
func (h *handlers) Close() error {
	var err error
	if h.replicaClient != nil {
		err = h.replicaClient.Close()
	}
	return errors.Join(h.device.Close(), err)
}

// reconfigure applies the reloadable settings of s to the running
// handlers, keeping their state (lockouts, reservations, counts, the
// requests in flight). What may refuse s goes first, so that a refusal
// changes nothing.
func (h *handlers) reconfigure(d *deps, s datadir.Settings, ri datadir.RunInfo, log *slog.Logger) error {
	lcfg, err := limiterConfig(s, log.With("component", "signin"))
	if err != nil {
		return err
	}
	if err := h.device.reconfigure(d, s, ri, h.limiter, log); err != nil {
		return err
	}
	h.limiter.Reconfigure(lcfg)
	d.floor.SetMin(s.MinFreeSpace)
	h.svc.SetImportSettings(s.MaxImportBytes, keyringPath(d.dir, s.RPMKeyring))
	h.svc.SetMinAccountPasswordLength(int(s.MinPasswordLength))
	h.ready.maxLag.Store(int64(s.ReplicaMaxLag))
	return nil
}

// keyringPath is rpm_keyring, relative to the data directory dir.
func keyringPath(dir, keyring string) string {
	if keyring != "" && !filepath.IsAbs(keyring) {
		return filepath.Join(dir, keyring)
	}
	return keyring
}

// newLimiter is the sign-in limiter the settings describe.
func newLimiter(s datadir.Settings, log *slog.Logger) (*signin.Limiter, error) {
	cfg, err := limiterConfig(s, log)
	if err != nil {
		return nil, err
	}
	return signin.New(cfg), nil
}

// limiterConfig is the sign-in limiter's configuration from the settings.
func limiterConfig(s datadir.Settings, log *slog.Logger) (signin.Config, error) {
	cfg := signin.Config{MaxFailures: int(s.SignInMaxFailures), MaxAddressFailures: int(s.SignInMaxAddressFailures),
		Window: s.SignInLockout, Lockout: s.SignInLockout, Logger: log}
	if cfg.MaxAddressFailures == 0 {
		cfg.MaxAddressFailures = -1 // the setting's 0 means never; signin's zero is its default
	}
	for _, p := range s.TrustedProxies {
		prefix, err := signin.ParsePrefix(p)
		if err != nil {
			return signin.Config{}, fmt.Errorf("trusted_proxies: %q: %w", p, err)
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix)
	}
	return cfg, nil
}

// run serves the listeners and runs the background work in one group
// until ctx is done or a listener fails, then shuts down: the servers stop
// taking requests and get shutdownGrace to finish, the background work is
// cancelled, and run returns once every goroutine it started has stopped.
func run(ctx context.Context, d *deps, lns *listeners, h *handlers, log *slog.Logger, ready func()) error {
	g, gctx := newGroup(ctx)
	g.Go("internal listener", func() error { return h.internal.ServeTLS(lns.internal, "", "") })
	g.Go("external listener", func() error { return h.external.ServeTLS(lns.external, "", "") })
	g.Go("admin listener", func() error {
		err := h.admin.Serve(lns.admin)
		if gctx.Err() != nil {
			// Stopped: an error is the shutdown's (gRPC's Serve called
			// after GracefulStop, when the service stops as it starts).
			return nil
		}
		return err
	})
	if h.consoleHS != nil {
		g.Go("console listener", func() error { return h.consoleHS.ServeTLS(lns.console, "", "") })
		g.Go("console", func() error { h.console.Run(gctx); return nil })
	}
	g.Go("certificate watcher", func() error { d.certs.Watch(gctx, time.Minute, log.With("component", "certs")); return nil })
	if h.follower != nil {
		// A replica's decisions are its primary's: it follows, and
		// approves nothing on a schedule of its own.
		g.Go("replica follower", func() error { h.follower.Run(gctx); return nil })
	} else {
		g.Go("rollout engine", func() error { h.rollouts.Run(gctx); return nil })
		g.Go("replica alarms", func() error { h.replicaChecks(gctx); return nil })
	}
	g.Go("audit log", func() error { h.device.Run(gctx); return nil })
	g.Go("metadata signer", func() error { h.device.RunSigner(gctx); return nil })
	g.Go("sign-in log", func() error { h.limiter.Run(gctx); return nil })
	if h.metrics != nil {
		g.Go("metrics listener", func() error { return h.metrics.Serve(lns.metrics) })
	}
	if h.reload != nil {
		g.Go("reloads", func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-h.reload:
					res := h.rl.reload()
					if h.reloaded != nil {
						h.reloaded(res)
					}
				}
			}
		})
	}
	h.ready.serving.Store(true)
	ready()

	<-gctx.Done()
	h.ready.stopping.Store(true)
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopped := make(chan struct{})
	if h.adminAPI != nil {
		h.adminAPI.Shutdown()
	}
	go func() { h.admin.GracefulStop(); close(stopped) }()
	h.internal.Shutdown(shutCtx)
	h.external.Shutdown(shutCtx)
	if h.consoleHS != nil {
		h.consoleHS.Shutdown(shutCtx)
	}
	if h.metrics != nil {
		h.metrics.Shutdown(shutCtx)
	}
	select {
	case <-stopped:
	case <-shutCtx.Done():
		h.admin.Stop()
		<-stopped
	}
	return g.Wait()
}

// browsable turns a listen address into one a browser on this host can
// open: an unspecified host (":9444", "0.0.0.0:9444") is the loopback
// address, which the server certificate covers.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// settingEntries are the settings the service runs with, for the
// console's read-only view.
func settingEntries(s datadir.Settings) []service.Setting {
	var out []service.Setting
	for _, e := range s.Entries() {
		out = append(out, service.Setting{Key: e.Key, Value: e.Value, Default: e.Default, Help: e.Help})
	}
	return out
}

// rolloutConfig is the rollout engine's configuration: the settings, on
// the clock now, ticking more often on a simulated clock.
func rolloutConfig(s datadir.Settings, ri datadir.RunInfo, now func() time.Time, log *slog.Logger) rollout.Config {
	cfg := rollout.Config{Grace: s.OverdueGrace, Tolerance: tolerance(s.OverdueTolerance), Now: now, Logger: log.With("component", "rollouts")}
	if ri.SimulatedClock {
		cfg.Interval = simulatedTick
	}
	return cfg
}

// tolerance is the overdue_tolerance setting as rollout.Config takes it:
// its zero is the default, a negative value none.
func tolerance(s firmware.Share) firmware.Share {
	if s == 0 {
		return -1
	}
	return s
}

// cleanTmp removes uploads a previous run left behind.
func cleanTmp(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// diskWarnings warns when the data directory's file system has less free
// space than min_free_space, or its free space cannot be measured.
func diskWarnings(f *freespace.Floor) []string {
	if f.Min() <= 0 {
		return nil
	}
	u, err := f.Usage()
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("the free space of the data directory's disk cannot be measured: %v", err)}
	}
	if u.Free >= f.Min() {
		return nil
	}
	return []string{fmt.Sprintf("the data directory's disk has %s free of %s, below min_free_space (%s): device log uploads are refused and audit log lines dropped; free space (old logs under Logs/, other files on that disk)",
		freespace.Bytes(u.Free), freespace.Bytes(u.Total), freespace.Bytes(f.Min()))}
}

func certInfos(list []certs.CertInfo) []service.CertInfo {
	out := make([]service.CertInfo, 0, len(list))
	for _, c := range list {
		names := append([]string(nil), c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		role := c.Kind
		if c.Role != "" {
			role += "/" + c.Role
		}
		out = append(out, service.CertInfo{Name: c.Name, Role: role, Subject: c.Subject, Names: names, NotAfter: c.NotAfter, SHA256: c.SHA256})
	}
	return out
}

func certWarnings(list []certs.CertInfo) []string {
	var out []string
	for _, c := range list {
		if c.DaysLeft < 0 {
			out = append(out, fmt.Sprintf("certificate %s expired on %s: run devsvc certs renew", c.Name, c.NotAfter.Format(time.DateOnly)))
		} else {
			out = append(out, fmt.Sprintf("certificate %s expires in %d days (%s): run devsvc certs renew", c.Name, c.DaysLeft, c.NotAfter.Format(time.DateOnly)))
		}
	}
	return out
}

// recordDirAdminCert records the data directory's admin.pem in the
// registry of admin certificates if it is not there: a data directory
// from before the registry, or whose PKI was copied in, keeps its admin
// certificate working. One recorded already keeps its state (a revoked
// admin.pem stays revoked).
func recordDirAdminCert(ctx context.Context, st *store.Store, cs *certs.Store, actor string, log *slog.Logger) error {
	adm := cs.AdminCertificate()
	if adm == nil {
		return nil
	}
	recorded, err := service.RecordAdminCert(ctx, st, actor, adm, "the data directory's "+datadir.CertsDir+"/"+certs.AdminCertFile)
	if err != nil {
		return err
	}
	if recorded && log != nil {
		log.Info("recorded the data directory's admin certificate in the registry", "serial", adm.SerialNumber.Text(16))
	}
	return nil
}

// localDomain is the NTLM domain of the store's local accounts: their
// canonical domain, and the one the acceptor offers in its challenge.
const localDomain = "OPENDUS"

// serviceDomains are the domain names of the service's own accounts that
// devices may send: the NetBIOS form of domain (its first label in
// capitals, CONTOSO), domain itself (contoso.com), and localDomain. They
// are the local accounts' domains, and the directory's when ldap_domains
// is empty.
func serviceDomains(domain string) []string {
	netbios, _, _ := strings.Cut(domain, ".")
	return []string{strings.ToUpper(netbios), domain, localDomain}
}

// storeAccounts lets the NTLM acceptor find the store's local accounts.
type storeAccounts struct {
	st      *store.Store
	domains []string // accepted, case-insensitive; the empty domain too
}

// LookupNT finds the local account user names, as DOMAIN\user,
// user@domain or user with domain (domain, if not empty, wins). A domain
// that is not one of the service's makes the user unknown: a local
// account has no other.
func (a storeAccounts) LookupNT(ctx context.Context, domain, user string) (ntlm.Account, error) {
	name := user
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[:i] // a UPN: alice@contoso.com
		if domain == "" {
			domain = user[i+1:]
		}
	}
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		if domain == "" {
			domain = name[:i]
		}
		name = name[i+1:] // DOMAIN\alice
	}
	if domain != "" && !slices.ContainsFunc(a.domains, func(d string) bool { return strings.EqualFold(d, domain) }) {
		return ntlm.Account{}, fmt.Errorf("%w: %s: domain %q is not the service's (%s)", ntlm.ErrUnknownUser, user, domain, strings.Join(a.domains, ", "))
	}
	acct, err := a.st.Account(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return ntlm.Account{}, fmt.Errorf("%w: %s", ntlm.ErrUnknownUser, user)
	}
	if err != nil {
		return ntlm.Account{}, err
	}
	// The domain is the canonical one, whatever the client sent: the
	// limiter keys lockouts on domain and user, so a client-chosen domain
	// would let each guess dodge the account's lockout.
	return ntlm.Account{User: acct.Name, Domain: localDomain, NTHash: acct.NTHash, Disabled: acct.Disabled}, nil
}
