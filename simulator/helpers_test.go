package simulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/simclock"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
	"github.com/opendus/opendus/simulator"
)

// service is a real update service in the test process: a store in
// t.TempDir(), the deviceapi handlers, the provisioning handler and the NTLM
// acceptor, on two TLS listeners with certificates from package certs.
type service struct {
	clock    *simclock.Clock
	st       *store.Store
	certs    *certs.Store
	internal *httptest.Server
	external *httptest.Server
	svc      simulator.Service
}

type serviceConfig struct {
	api deviceapi.Config
	// certs, if set, is the PKI to use (to share one CA between services).
	certs *certs.Store
	// wrapInternal, if set, wraps the internal listener's handler.
	wrapInternal func(http.Handler) http.Handler
}

func newService(t testing.TB, cfg serviceConfig) *service {
	t.Helper()
	cs := cfg.certs
	if cs == nil {
		cs = certstest.NewStore(t, certs.Config{})
	}
	// The service runs on a simulated clock that the simulation drives, as
	// devsvc serve --simulated-clock does: its back-offs, stalls, waves and
	// windows run on the devices' time line.
	clockFile := filepath.Join(t.TempDir(), "clock")
	clock, err := simclock.Create(clockFile, simulator.DefaultStart)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clock.Close() })
	st, err := store.Open(filepath.Join(t.TempDir(), "data"), &store.Options{FlushInterval: 20 * time.Millisecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &service{st: st, certs: cs, clock: clock}
	if cfg.api.Now == nil {
		cfg.api.Now = clock.Now
	}
	api := deviceapi.New(st, cfg.api)

	s.internal = newTLSServer(cs)
	s.external = newTLSServer(cs)
	port := func(srv *httptest.Server) string {
		_, p, _ := strings.Cut(srv.Listener.Addr().String(), ":")
		return p
	}
	inURL := "https://ucupdates-r2." + certstest.Domain + ":" + port(s.internal) + "/"
	extURL := "https://ucupdates." + certstest.Domain + ":" + port(s.external) + "/"
	prov := provisioning.Config{InternalURL: inURL, ExternalURL: extURL, Enabled: true,
		Auth: provisioning.NTHashAuthenticator{Lookup: func(ctx context.Context, user string) (ntlm.Account, error) {
			a, err := st.Account(ctx, user)
			if errors.Is(err, store.ErrNotFound) {
				return ntlm.Account{}, fmt.Errorf("%w: %s", ntlm.ErrUnknownUser, user)
			}
			return ntlm.Account{User: a.Name, Domain: "OPENDUS", NTHash: a.NTHash, Disabled: a.Disabled}, err
		}}}
	mux := func(devices http.Handler) http.Handler {
		m := http.NewServeMux()
		m.Handle(provisioning.Path, provisioning.NewHandler(prov))
		m.Handle("/", devices)
		return m
	}
	s.internal.Config.Handler = mux(api.Internal())
	if cfg.wrapInternal != nil {
		s.internal.Config.Handler = cfg.wrapInternal(s.internal.Config.Handler)
	}
	s.external.Config.Handler = mux(api.External())
	s.external.Config.Handler = wrapNTLM(s.external, st)
	s.internal.Start()
	s.external.Start()
	t.Cleanup(s.internal.Close)
	t.Cleanup(s.external.Close)
	pool, err := simulator.LoadCA(filepath.Join(cs.Dir(), certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	s.svc = simulator.Service{Domain: certstest.Domain, InternalURL: inURL, ExternalURL: extURL, RootCAs: pool, ClockFile: clockFile}
	return s
}

// wrapNTLM puts the external listener's handler behind a real NTLM
// acceptor, with its ConnContext, as devsvc serve does.
func wrapNTLM(srv *httptest.Server, st *store.Store) http.Handler {
	acc := ntlm.NewAcceptor(accounts{st}, ntlm.Config{})
	srv.Config.ConnContext = acc.ConnContext
	return acc.Require(srv.Config.Handler)
}

// newTLSServer returns an unstarted HTTP/1.1 TLS server with the PKI's server
// certificate, built as certstest.NewServer builds its servers.
func newTLSServer(cs *certs.Store) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener = tls.NewListener(srv.Listener, cs.ServerTLSConfig())
	return srv
}

// accounts lets the NTLM acceptor find the store's accounts.
type accounts struct{ st *store.Store }

func (a accounts) LookupNT(ctx context.Context, domain, user string) (ntlm.Account, error) {
	acct, err := a.st.Account(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return ntlm.Account{}, fmt.Errorf("%w: %s", ntlm.ErrUnknownUser, user)
	}
	if err != nil {
		return ntlm.Account{}, err
	}
	return ntlm.Account{User: acct.Name, Domain: strings.ToUpper(domain), NTHash: acct.NTHash, Disabled: acct.Disabled}, nil
}

// importVersion imports version v of id with an image of size bytes and a
// security catalog.
func (s *service) importVersion(t testing.TB, id firmware.Identity, v string, size int) {
	t.Helper()
	img := bytes.Repeat([]byte(v+id.Model), size/len(v+id.Model)+1)[:size]
	cat := []byte("catalog " + v)
	file := func(name string, data []byte) firmware.ImportFile {
		sum := sha256.Sum256(data)
		return firmware.ImportFile{Name: name, Size: int64(len(data)), SHA256: &sum,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	}
	_, err := s.st.Import(context.Background(), "test", []firmware.ImportUpdate{{
		Identity: id, Version: firmware.MustParseVersion(v), UpdateType: "Firmware",
		Files: []firmware.ImportFile{file(id.Model+".nbt", img), file(id.Model+".cat", cat)},
	}}, store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *service) approve(t testing.TB, id firmware.Identity) {
	t.Helper()
	if _, err := s.st.Approve(context.Background(), "test", id.Path()); err != nil {
		t.Fatal(err)
	}
}

func (s *service) addAccounts(t testing.TB, sc *simulator.Scenario) {
	t.Helper()
	for _, name := range sc.AccountNames() {
		err := s.st.PutAccount(context.Background(), "test", firmware.Account{Name: name, NTHash: ntlm.NTHash(sc.Password)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (s *service) markTestDevices(t testing.TB, sc *simulator.Scenario) {
	t.Helper()
	for _, d := range sc.Fleet() {
		if d.Test {
			if err := s.st.AddTestDevice(context.Background(), "test", firmware.TestDevice{MAC: d.MAC}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
