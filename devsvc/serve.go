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
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/directory"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/ntlm"
)

// ServeOptions configures Serve. Empty addresses come from the settings.
type ServeOptions struct {
	Dir          string
	InternalAddr string
	ExternalAddr string
	AdminAddr    string
	Logger       *slog.Logger // nil: discard
	// Ready, if set, is called once every listener is bound and serving.
	Ready func(datadir.RunInfo)
}

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
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&s.InternalAddr, opts.InternalAddr}, {&s.ExternalAddr, opts.ExternalAddr}, {&s.AdminAddr, opts.AdminAddr},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	d, err := openDeps(opts.Dir, s, log)
	if err != nil {
		return err
	}
	defer d.Close()
	lns, err := bind(ctx, s)
	if err != nil {
		return err
	}
	defer lns.Close()
	ri := lns.runInfo()
	h, err := build(d, s, ri, log)
	if err != nil {
		return err
	}
	defer h.Close() // after every goroutine stopped, before the store closes
	if err := datadir.WriteRunInfo(opts.Dir, ri); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(opts.Dir, datadir.RunDir, datadir.RunFile))
	return run(ctx, d, lns, h, log, func() {
		log.Info("serving", "internal", ri.Internal, "external", ri.External, "admin", ri.Admin, "data", opts.Dir)
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
}

// openDeps opens the certificates, the store and the directory, and
// empties the spool of uploads a previous run left behind.
func openDeps(dir string, s datadir.Settings, log *slog.Logger) (*deps, error) {
	cs, err := certs.Open(filepath.Join(dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	deploy := s.DeployRoundTableOnImport
	st, err := store.Open(dir, &store.Options{Logger: log.With("component", "store"), FlushInterval: s.InventoryFlush, DeployRoundTable: &deploy})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d := &deps{dir: dir, settings: s, certs: cs, store: st}
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
	return storeAccounts{d.store}
}

// listeners are the three bound listeners.
type listeners struct {
	internal, external, admin net.Listener
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
	} {
		ln, err := lc.Listen(ctx, "tcp", b.addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s listener on %s: %w (set %s_addr in %s or pass --%s-addr)", b.name, b.addr, err, b.name, datadir.ConfigFile, b.name)
		}
		*b.ln = ln
	}
	return l, nil
}

// Close closes the listeners still open.
func (l *listeners) Close() {
	for _, ln := range []net.Listener{l.internal, l.external, l.admin} {
		if ln != nil {
			ln.Close()
		}
	}
}

func (l *listeners) runInfo() datadir.RunInfo {
	return datadir.RunInfo{PID: os.Getpid(), Started: time.Now().UTC(),
		Internal: l.internal.Addr().String(), External: l.external.Addr().String(), Admin: l.admin.Addr().String()}
}

// handlers are the servers of the three listeners and what runs beside
// them.
type handlers struct {
	device    *deviceSide
	svc       *service.Service
	internal  *http.Server
	external  *http.Server
	admin     grpcServer
	acceptor  *ntlm.Acceptor
	scheduler func(context.Context)
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
// edge), the service layer and its gRPC transport, and their servers.
func build(d *deps, s datadir.Settings, ri datadir.RunInfo, log *slog.Logger) (*handlers, error) {
	keyring := s.RPMKeyring
	if keyring != "" && !filepath.IsAbs(keyring) {
		keyring = filepath.Join(d.dir, keyring)
	}
	svcCfg := service.Config{
		Logger: log.With("component", "service"), Version: Version(), SpoolDir: filepath.Join(d.dir, datadir.TmpDir),
		MaxImportBytes: s.MaxImportBytes, RPMKeyring: keyring, KeyringSetting: "rpm_keyring in " + datadir.ConfigFile,
		Listeners: func() []service.Listener {
			return []service.Listener{{Name: "internal", Address: ri.Internal}, {Name: "external", Address: ri.External}, {Name: "admin", Address: ri.Admin}}
		},
		Certificates: func() []service.CertInfo { return certInfos(d.certs.List()) },
		Warnings:     func() []string { return certWarnings(d.certs.Expiring(30 * 24 * time.Hour)) },
	}
	adminTLS := d.certs.AdminServerTLSConfig()
	if d.ldap != nil {
		svcCfg.Directory = directoryAdmins{d.ldap}
		adminTLS.ClientAuth = tls.VerifyClientCertIfGiven // or a directory account
	}
	svc := service.New(d.store, svcCfg)
	admin := adminapi.NewServer(svc, adminapi.Config{Logger: log.With("component", "admin"), HandshakeTimeout: handshakeTimeout})

	acceptor := ntlm.NewAcceptor(d.accounts(), ntlmConfig(s, log.With("component", "ntlm")))
	dev, err := newDeviceSide(d, s, ri, acceptor, log)
	if err != nil {
		return nil, err
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	extTLS := d.certs.ServerTLSConfig().Clone()
	extTLS.NextProtos = []string{"http/1.1"} // NTLM binds to a connection
	st := d.store
	schedLog := log.With("component", "scheduler")
	return &handlers{
		device: dev, svc: svc, acceptor: acceptor,
		internal: &http.Server{Handler: dev.Internal, TLSConfig: d.certs.ServerTLSConfig(), ReadHeaderTimeout: handshakeTimeout,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog,
			HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams, WriteByteTimeout: s.DownloadStallTimeout}},
		external: &http.Server{Handler: dev.External, TLSConfig: extTLS, ConnContext: acceptor.ConnContext,
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, ReadHeaderTimeout: handshakeTimeout,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errLog},
		admin:     admin.GRPCServer(adminTLS),
		scheduler: func(ctx context.Context) { runScheduler(ctx, st, time.Now, 5*time.Second, schedLog) },
	}, nil
}

// Close closes what the device side keeps open (the audit log, writing
// what is buffered, and the log uploads). Call it once the listeners have
// stopped.
func (h *handlers) Close() error { return h.device.Close() }

// ntlmConfig is the NTLM acceptor's configuration from the settings.
func ntlmConfig(s datadir.Settings, log *slog.Logger) ntlm.Config {
	addrFailures := int(s.NTLMMaxAddressFailures)
	if addrFailures == 0 {
		addrFailures = -1 // the setting's 0 turns the per-address lockout off
	}
	return ntlm.Config{Logger: log, MaxFailures: int(s.NTLMMaxFailures), MaxAddressFailures: addrFailures,
		FailureWindow: s.NTLMLockout, Lockout: s.NTLMLockout}
}

// run serves the listeners and runs the background work in one group
// until ctx is done or a listener fails, then shuts down: the servers stop
// taking requests and get shutdownGrace to finish, the background work is
// cancelled, and run returns once every goroutine it started has stopped.
func run(ctx context.Context, d *deps, lns *listeners, h *handlers, log *slog.Logger, ready func()) error {
	g, gctx := newGroup(ctx)
	g.Go("internal listener", func() error { return h.internal.ServeTLS(lns.internal, "", "") })
	g.Go("external listener", func() error { return h.external.ServeTLS(lns.external, "", "") })
	g.Go("admin listener", func() error { return h.admin.Serve(lns.admin) })
	g.Go("certificate watcher", func() error { d.certs.Watch(gctx, time.Minute, log.With("component", "certs")); return nil })
	g.Go("scheduler", func() error { h.scheduler(gctx); return nil })
	g.Go("audit log", func() error { h.device.Run(gctx); return nil })
	ready()

	<-gctx.Done()
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopped := make(chan struct{})
	go func() { h.admin.GracefulStop(); close(stopped) }()
	h.internal.Shutdown(shutCtx)
	h.external.Shutdown(shutCtx)
	select {
	case <-stopped:
	case <-shutCtx.Done():
		h.admin.Stop()
		<-stopped
	}
	return g.Wait()
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

// localDomain is the NTLM domain of the store's local accounts.
const localDomain = "OPENDUS"

// storeAccounts lets the NTLM acceptor find the store's local accounts.
type storeAccounts struct{ st *store.Store }

func (a storeAccounts) LookupNT(ctx context.Context, domain, user string) (ntlm.Account, error) {
	name := user
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i] // a UPN: alice@contoso.com
	}
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:] // DOMAIN\alice
	}
	acct, err := a.st.Account(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return ntlm.Account{}, fmt.Errorf("%w: %s", ntlm.ErrUnknownUser, user)
	}
	if err != nil {
		return ntlm.Account{}, err
	}
	// The domain is the service's own, whatever the client sent: the
	// acceptor keys its lockout on domain and user, so a client-chosen
	// domain would let each guess dodge the account's lockout.
	return ntlm.Account{User: acct.Name, Domain: localDomain, NTHash: acct.NTHash, Disabled: acct.Disabled}, nil
}
