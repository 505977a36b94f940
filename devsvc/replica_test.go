package devsvc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/provisioning"
)

// events is a slog handler that wakes waiters at every record: tests
// wait for a condition, checked again after each thing the service logs.
type events struct {
	mu sync.Mutex
	ch chan struct{}
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) Handle(context.Context, slog.Record) error {
	e.mu.Lock()
	if e.ch != nil {
		close(e.ch)
		e.ch = nil
	}
	e.mu.Unlock()
	return nil
}
func (e *events) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *events) WithGroup(string) slog.Handler      { return e }

func (e *events) next() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch == nil {
		e.ch = make(chan struct{})
	}
	return e.ch
}

// waitFor checks cond after everything the services log, for at most
// limit.
func (e *events) waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		ch := e.next()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

// serveDir runs Serve on dir, initialised already, until the test ends.
func serveDir(t *testing.T, dir string, opts ServeOptions) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan datadir.RunInfo, 1)
	done := make(chan error, 1)
	opts.Dir, opts.InternalAddr, opts.ExternalAddr, opts.AdminAddr, opts.ConsoleAddr = dir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "off"
	opts.Ready = func(ri datadir.RunInfo) { ready <- ri }
	go func() { done <- Serve(ctx, opts) }()
	r := &running{dir: dir}
	select {
	case r.ri = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	stopped := false
	var stopErr error
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	var err error
	if r.cs, err = certs.Open(filepath.Join(dir, datadir.CertsDir), certs.Config{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServeReplica runs a primary and a replica in the test process: the
// replica made from the primary's credentials follows its catalog and
// files, serves its site's devices with the primary's URLs as the
// alternatives, forwards their check-ins and reports, and refuses
// changes; the primary sends a site's devices to the replica, once it
// holds the update, and provisions them there.
func TestServeReplica(t *testing.T) {
	ctx := t.Context()
	image := bytes.Repeat([]byte("CX600 image "), 20_000)
	sum := sha256.Sum256(image)
	v := firmware.MustParseVersion("4.0.7577.4372")
	seed := func(st *store.Store) {
		withAlice(st)
		_, err := st.Import(ctx, "test", []firmware.ImportUpdate{{Identity: cx600, Version: v, Files: []firmware.ImportFile{
			{Name: "CX600.nbt", Size: int64(len(image)), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}}}}, store.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	ev := &events{}
	log := slog.New(ev)
	pdir := t.TempDir()
	if _, err := Init(InitOptions{Dir: pdir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(pdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	seed(st)
	if _, err := st.PutSite(ctx, "test", firmware.Site{Name: "paris", Subnets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, false); err != nil {
		t.Fatal(err)
	}
	st.Close()
	primary := serveDir(t, pdir, ServeOptions{Logger: log})
	padmin := primary.admin(t)
	_, creds, err := padmin.AddReplica(ctx, service.AddReplicaRequest{Name: "paris", Site: "paris", InternalName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	rdir := filepath.Join(t.TempDir(), "replica")
	if _, err := Init(InitOptions{Dir: rdir, ReplicaOf: primary.ri.Admin, Credentials: creds}); err != nil {
		t.Fatalf("init --replica-of = %v", err)
	}
	rep := serveDir(t, rdir, ServeOptions{Logger: log})
	radmin := rep.admin(t)

	ev.waitFor(t, 30*time.Second, "the replica follows the primary", func() bool {
		rules, err := radmin.Rules(ctx)
		return err == nil && len(rules) == 1 && rules[0].Pending == v
	})
	if _, err := padmin.Approve(ctx, cx600.Path()); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, 30*time.Second, "the replica has the approval", func() bool {
		rules, err := radmin.Rules(ctx)
		return err == nil && len(rules) == 1 && rules[0].Approved == v
	})

	// The replica serves the metadata its primary signed after the
	// approval, byte for byte (it holds no keys: it relays).
	pc := certstest.Client(primary.cs.DeviceTLSConfig(), primary.ri.Internal)
	rc := certstest.Client(rep.cs.DeviceTLSConfig(), rep.ri.Internal)
	for _, name := range []string{"timestamp.json", "snapshot.json", "targets.json", "root.json", "1.root.json"} {
		var pb, rb []byte
		ev.waitFor(t, 30*time.Second, "the replica serves the primary's "+name, func() bool {
			var pcode, rcode int
			pcode, pb = do(t, pc, http.MethodGet, "https://"+primary.ri.Internal+deviceproto.MetadataPrefix+name, nil, nil)
			rcode, rb = do(t, rc, http.MethodGet, "https://"+rep.ri.Internal+deviceproto.MetadataPrefix+name, nil, nil)
			return pcode == http.StatusOK && rcode == http.StatusOK && bytes.Equal(pb, rb)
		})
		if name == "targets.json" && !bytes.Contains(rb, []byte(v.String())) {
			t.Errorf("the replica's targets.json does not name the approved %s:\n%s", v, rb)
		}
	}
	if _, err := os.Stat(filepath.Join(rdir, datadir.KeysDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replica has a keys directory (%v): a replica must hold no signing keys", err)
	}

	// A device of the site checks in at the replica: offered the files
	// there, with the primary's as the alternatives.
	c := certstest.Client(rep.cs.DeviceTLSConfig(), rep.ri.Internal)
	base := "https://" + rep.ri.Internal
	ci := deviceproto.CheckIn{Identity: cx600, MAC: "00-04-F2-00-00-07", Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("4.0.1.1")}}}
	code, body := do(t, c, http.MethodPost, base+deviceproto.CheckInPath, ci.AppendXML(nil), nil)
	if code != http.StatusOK {
		t.Fatalf("check-in at the replica = %d %s", code, body)
	}
	a, err := deviceproto.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	_, pport, _ := net.SplitHostPort(primary.ri.Internal)
	if a.Version != v || !strings.Contains(a.InternalURL, rep.ri.Internal) || !strings.Contains(a.InternalURLAlt, ":"+pport+"/") {
		t.Errorf("the replica offers %s at %q, alternative %q: want its own URL first and the primary's (port %s) second", a.Version, a.InternalURL, a.InternalURLAlt, pport)
	}
	code, got := do(t, c, http.MethodGet, base+strings.TrimPrefix(a.InternalURL, "https://"+rep.ri.Internal)+"CX600.nbt", nil, nil)
	if code != http.StatusOK || !bytes.Equal(got, image) {
		t.Errorf("download from the replica = %d, %d bytes", code, len(got))
	}
	st2 := deviceproto.Status{MAC: ci.MAC, State: firmware.StateDownloading, Target: v}
	if code, body := do(t, c, http.MethodPost, base+deviceproto.StatusPath, st2.AppendXML(nil), nil); code != http.StatusNoContent {
		t.Errorf("report at the replica = %d %s", code, body)
	}
	// It reaches the primary's inventory.
	ev.waitFor(t, 30*time.Second, "the report reaches the primary", func() bool {
		ds, err := padmin.Devices(ctx)
		return err == nil && len(ds) == 1 && ds[0].State == firmware.StateDownloading && ds[0].Target == v
	})

	// The primary sends a device of the site to the replica, and
	// provisions it there.
	pbase := "https://" + primary.ri.Internal
	ci.MAC = "00-04-F2-00-00-08"
	code, body = do(t, pc, http.MethodPost, pbase+deviceproto.CheckInPath, ci.AppendXML(nil), nil)
	if code != http.StatusOK {
		t.Fatalf("check-in at the primary = %d %s", code, body)
	}
	if a, _ := deviceproto.ParseAnswer(body); !strings.Contains(a.InternalURL, rep.ri.Internal) || !strings.Contains(a.InternalURLAlt, ":"+pport+"/") {
		t.Errorf("the primary offers a device of the replica's site %q, alternative %q: want the replica's first", a.InternalURL, a.InternalURLAlt)
	}
	code, body = do(t, pc, http.MethodPost, pbase+provisioning.Path, nil, func(req *http.Request) { req.SetBasicAuth("alice", "Winter2026!") })
	if code != http.StatusOK {
		t.Fatalf("sign-in at the primary = %d %s", code, body)
	}
	if doc, _ := provisioning.ParseDocument(body); !strings.HasPrefix(doc.InternalURL, "https://"+rep.ri.Internal+"/") {
		t.Errorf("the primary provisions a device of the site with %q, want the replica's check-in URL", doc.InternalURL)
	}
	// NTLM against the same accounts on the replica's provisioning.
	code, _ = do(t, c, http.MethodPost, base+provisioning.Path, nil, func(req *http.Request) { req.SetBasicAuth("alice", "Winter2026!") })
	if code != http.StatusOK {
		t.Errorf("sign-in at the replica with the primary's account = %d, want 200", code)
	}

	// The replica refuses changes, naming its primary, and says how it
	// follows.
	if _, err := radmin.Approve(ctx, cx600.Path()); err == nil || !strings.Contains(err.Error(), "replica of "+primary.ri.Admin) {
		t.Errorf("approve on the replica = %v, want it refused naming the primary", err)
	}
	rs, err := radmin.ReplicationStatus(ctx)
	if err != nil || rs.Follower == nil || !rs.Follower.Connected || rs.Follower.FilesFetched != 1 || rs.Follower.InStep.IsZero() {
		t.Errorf("the replica's replication status = %+v, %v: want following, one file fetched, in step", rs.Follower, err)
	}
	list, _, err := padmin.Replicas(ctx)
	if err != nil || len(list) != 1 || list[0].Progress.BytesFetched != int64(len(image)) || list[0].Progress.Reports == 0 {
		t.Errorf("the primary's replicas = %+v, %v: want paris, the image's bytes fetched once, reports forwarded", list, err)
	}
}

// TestServeReplicaSettings: a data directory whose settings and store
// disagree on being a replica does not start.
func TestServeReplicaSettings(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Domain: testDomain}); err != nil {
		t.Fatal(err)
	}
	s, _ := datadir.LoadSettings(dir)
	s.ReplicaOf = []string{"dus.contoso.com:9443"}
	if err := datadir.WriteFileAtomic(filepath.Join(dir, datadir.ConfigFile), s.Render(), 0o640); err != nil {
		t.Fatal(err)
	}
	err := Serve(t.Context(), ServeOptions{Dir: dir, InternalAddr: "127.0.0.1:0", ExternalAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", ConsoleAddr: "off"})
	if err == nil || !strings.Contains(err.Error(), "its store is a primary's") {
		t.Errorf("Serve of a primary's store with replica_of = %v, want a refusal that says why", err)
	}
}

// TestInitReplicaRefuses: a replica is made only from whole credentials,
// into an empty directory, once.
func TestInitReplicaRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(dir string) InitOptions
		want string
	}{
		{"no credentials", func(dir string) InitOptions { return InitOptions{Dir: dir, ReplicaOf: "dus:9443"} }, "--credentials"},
		{"not credentials", func(dir string) InitOptions {
			return InitOptions{Dir: dir, ReplicaOf: "dus:9443", Credentials: []byte(`{"format":"x"}`)}
		}, "invalid replica credentials"},
		{"force", func(dir string) InitOptions {
			return InitOptions{Dir: dir, ReplicaOf: "dus:9443", Credentials: []byte("{}"), Force: true}
		}, "not re-initialised"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Init(tc.opts(t.TempDir())); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Init = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
