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
	"sync"
	"time"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/ntlm"
)

// Version is the service's version, set at build time with
// -ldflags "-X github.com/opendus/opendus/devsvc.Version=...".
var Version = "dev"

// ServeOptions configures Serve. Empty addresses come from the settings.
type ServeOptions struct {
	Dir          string
	InternalAddr string
	ExternalAddr string
	AdminAddr    string
	Logger       *slog.Logger // nil: discard
	// Ready, if set, is called once every listener is bound.
	Ready func(datadir.RunInfo)
}

// Serve runs the service from the data directory until ctx is done, then
// shuts down gracefully: open connections get a few seconds to finish and
// the inventory is flushed.
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
	cs, err := certs.Open(filepath.Join(opts.Dir, datadir.CertsDir), certs.Config{})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	deploy := s.DeployRoundTableOnImport
	st, err := store.Open(opts.Dir, &store.Options{Logger: log.With("component", "store"), FlushInterval: s.InventoryFlush, DeployRoundTable: &deploy})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	dir, err := openDirectory(s, log.With("component", "directory"))
	if err != nil {
		return err
	}
	if dir != nil {
		defer dir.Close()
	}
	tmp := filepath.Join(opts.Dir, datadir.TmpDir)
	if err := cleanTmp(tmp); err != nil {
		return err
	}

	// Bind every listener first, so a port in use fails the start cleanly.
	lc := net.ListenConfig{}
	bind := func(name, addr string) (net.Listener, error) {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s listener on %s: %w (set %s_addr in %s or pass --%s-addr)", name, addr, err, name, datadir.ConfigFile, name)
		}
		return ln, nil
	}
	intLn, err := bind("internal", s.InternalAddr)
	if err != nil {
		return err
	}
	extLn, err := bind("external", s.ExternalAddr)
	if err != nil {
		intLn.Close()
		return err
	}
	admLn, err := bind("admin", s.AdminAddr)
	if err != nil {
		intLn.Close()
		extLn.Close()
		return err
	}
	ri := datadir.RunInfo{PID: os.Getpid(), Started: time.Now().UTC(), Internal: intLn.Addr().String(), External: extLn.Addr().String(), Admin: admLn.Addr().String()}

	adminCfg := adminapi.Config{
		Logger: log.With("component", "admin"), Version: Version, SpoolDir: tmp, MaxImportBytes: s.MaxImportBytes,
		Listeners: func() []adminapi.Listener {
			return []adminapi.Listener{{Name: "internal", Address: ri.Internal}, {Name: "external", Address: ri.External}, {Name: "admin", Address: ri.Admin}}
		},
		Certificates: func() []adminapi.CertInfo { return certInfos(cs.List()) },
		Warnings:     func() []string { return certWarnings(cs.Expiring(30 * 24 * time.Hour)) },
		Bundles:      bundleOpener(s, opts.Dir),
	}
	if dir != nil {
		adminCfg.Directory = directoryAdmins{dir}
	}
	admin := adminapi.NewServer(st, adminCfg)
	adminTLS := cs.AdminServerTLSConfig()
	var accounts ntlm.Accounts = storeAccounts{st}
	if dir != nil {
		accounts = dir
		adminTLS.ClientAuth = tls.VerifyClientCertIfGiven // or a directory account
	}
	grpcSrv := admin.GRPCServer(adminTLS)

	addrFailures := int(s.NTLMMaxAddressFailures)
	if addrFailures == 0 {
		addrFailures = -1 // the setting's 0 turns the per-address lockout off
	}
	acceptor := ntlm.NewAcceptor(accounts, ntlm.Config{Logger: log.With("component", "ntlm"),
		MaxFailures: int(s.NTLMMaxFailures), MaxAddressFailures: addrFailures,
		FailureWindow: s.NTLMLockout, Lockout: s.NTLMLockout})
	dev, err := newDeviceSide(ctx, st, s, ri, opts.Dir, acceptor, accounts, log)
	if err != nil {
		intLn.Close()
		extLn.Close()
		admLn.Close()
		return err
	}
	defer dev.Close() // after the listeners stopped, before the store closes
	intSrv := &http.Server{Handler: dev.Internal, TLSConfig: cs.ServerTLSConfig(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	extTLS := cs.ServerTLSConfig().Clone()
	extTLS.NextProtos = []string{"http/1.1"} // NTLM binds to a connection
	extSrv := &http.Server{Handler: dev.External, TLSConfig: extTLS, ConnContext: acceptor.ConnContext,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	if err := datadir.WriteRunInfo(opts.Dir, ri); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(opts.Dir, datadir.RunDir, datadir.RunFile))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("%s listener: %w", name, err)
				cancel()
			}
		}()
	}
	run("internal", func() error { return intSrv.ServeTLS(intLn, "", "") })
	run("external", func() error { return extSrv.ServeTLS(extLn, "", "") })
	run("admin", func() error { return grpcSrv.Serve(admLn) })
	go cs.Watch(ctx, time.Minute, log.With("component", "certs"))
	go runScheduler(ctx, st, time.Now, 5*time.Second, log.With("component", "scheduler"))
	log.Info("serving", "internal", ri.Internal, "external", ri.External, "admin", ri.Admin, "data", opts.Dir)
	if opts.Ready != nil {
		opts.Ready(ri)
	}

	<-ctx.Done()
	log.Info("shutting down")
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	stopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(stopped) }()
	intSrv.Shutdown(shutCtx)
	extSrv.Shutdown(shutCtx)
	select {
	case <-stopped:
	case <-shutCtx.Done():
		grpcSrv.Stop()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return nil
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

func certInfos(list []certs.CertInfo) []adminapi.CertInfo {
	out := make([]adminapi.CertInfo, 0, len(list))
	for _, c := range list {
		names := append([]string(nil), c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		role := c.Kind
		if c.Role != "" {
			role += "/" + c.Role
		}
		out = append(out, adminapi.CertInfo{Name: c.Name, Role: role, Subject: c.Subject, Names: names, NotAfter: c.NotAfter, SHA256: c.SHA256})
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
