package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/clocktest"
)

// addReplica adds replica name of site on svc and returns its principal,
// as CertPrincipal makes it from the certificate in its credentials.
func addReplica(t *testing.T, svc *service.Service, name, site string) (service.Principal, replica.Credentials) {
	t.Helper()
	ctx := service.WithPrincipal(context.Background(), admin)
	_, creds, err := svc.AddReplica(ctx, service.AddReplicaRequest{Name: name, Site: site, Primary: []string{"dus.contoso.com:9443"}})
	if err != nil {
		t.Fatalf("AddReplica(%s) = %v", name, err)
	}
	c, err := certs.ParseCertPEM([]byte(creds.Cert))
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CertPrincipal(context.Background(), c)
	if err != nil {
		t.Fatalf("CertPrincipal(the replica's certificate) = %v", err)
	}
	return p, creds
}

func replicaService(t *testing.T, clock func() time.Time) (*service.Service, *store.Store) {
	cs := certstest.NewStore(t, certs.Config{})
	return newServiceClock(t, clock, service.Config{Issuer: cs, Replication: service.ReplicationConfig{Issuer: cs, Domain: "contoso.com",
		DeviceURLs: func() (string, string) { return "https://dus.contoso.com/", "https://dus-ext.contoso.com/" }}})
}

// newServiceClock is newService with clock (nil: time.Now) for the store
// and the service.
func newServiceClock(t *testing.T, clock func() time.Time, cfg service.Config) (*service.Service, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), &store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.SpoolDir, cfg.Now = t.TempDir(), clock
	return service.New(st, cfg), st
}

// TestReplicaAuthorization: a replica's certificate calls nothing but
// the Replication calls; an admin's cannot follow as a replica; a removed
// replica is refused at once.
func TestReplicaAuthorization(t *testing.T) {
	svc, _ := replicaService(t, nil)
	rp, creds := addReplica(t, svc, "paris", "paris")
	if rp.Name != "replica:paris" || rp.Role != service.RoleReplica {
		t.Fatalf("the replica's principal is %+v", rp)
	}
	if creds.PrimaryInternalURL != "https://dus.contoso.com/" || creds.Site != "paris" || creds.InternalName != "paris.contoso.com" {
		t.Errorf("credentials %+v: want the primary's device URL, the site and the default name", creds)
	}
	asReplica := service.WithPrincipal(context.Background(), rp)
	for name, call := range map[string]func() error{
		"Status":     func() error { _, err := svc.Status(asReplica); return err },
		"Rules":      func() error { _, err := svc.Rules(asReplica); return err },
		"Approve":    func() error { _, err := svc.Approve(asReplica, cx600); return err },
		"Replicas":   func() error { _, _, err := svc.Replicas(asReplica); return err },
		"AdminCerts": func() error { _, err := svc.AdminCerts(asReplica); return err },
		"AddReplica": func() error {
			_, _, err := svc.AddReplica(asReplica, service.AddReplicaRequest{Name: "lyon", Site: "lyon"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "replica's certificate") {
			t.Errorf("%s as a replica = %v, want ErrForbidden saying it is a replica's certificate", name, err)
		}
	}
	send := func(replica.Message) error { return errors.New("stop") }
	for who, p := range map[string]service.Principal{"admin": admin, "read-only": viewer} {
		ctx := service.WithPrincipal(context.Background(), p)
		if err := svc.Follow(ctx, 0, false, send); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "not a replica") {
			t.Errorf("Follow as %s = %v, want ErrForbidden", who, err)
		}
		if _, err := svc.Upstream(ctx, replica.Upstream{}); !errors.Is(err, service.ErrForbidden) {
			t.Errorf("Upstream as %s = %v, want ErrForbidden", who, err)
		}
		if _, err := svc.FetchFile(ctx, [32]byte{}, 0, &bytes.Buffer{}); !errors.Is(err, service.ErrForbidden) {
			t.Errorf("FetchFile as %s = %v, want ErrForbidden", who, err)
		}
	}
	if err := svc.Follow(context.Background(), 0, false, send); !errors.Is(err, service.ErrUnauthenticated) {
		t.Errorf("Follow as nobody = %v, want ErrUnauthenticated", err)
	}
	if err := svc.Follow(asReplica, 0, false, send); err == nil || err.Error() != "stop" {
		t.Errorf("Follow as the replica = %v, want its first message sent", err)
	}
	if _, err := svc.RemoveReplica(service.WithPrincipal(context.Background(), admin), "paris", "site closed"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Follow(asReplica, 0, false, send); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "removed") {
		t.Errorf("Follow as a removed replica = %v, want ErrForbidden saying it was removed", err)
	}
	c, _ := certs.ParseCertPEM([]byte(creds.Cert))
	if _, err := svc.CertPrincipal(context.Background(), c); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "replicas add") {
		t.Errorf("CertPrincipal of a removed replica's certificate = %v, want ErrForbidden saying how to add it again", err)
	}
}

// TestAddReplica: one replica per site; names checked; the history
// records the replica and its certificate.
func TestAddReplica(t *testing.T) {
	svc, st := replicaService(t, nil)
	ctx := service.WithPrincipal(context.Background(), admin)
	addReplica(t, svc, "paris", "paris")
	for _, tc := range []struct {
		req  service.AddReplicaRequest
		want error
	}{
		{service.AddReplicaRequest{Name: "paris2", Site: "paris", Primary: []string{"dus:9443"}}, store.ErrExists},
		{service.AddReplicaRequest{Name: "Lyon", Site: "lyon", Primary: []string{"dus:9443"}}, service.ErrInvalid},
		{service.AddReplicaRequest{Name: "lyon", Site: "Lyon", Primary: []string{"dus:9443"}}, service.ErrInvalid},
		{service.AddReplicaRequest{Name: "lyon", Site: "lyon", Primary: []string{"dus:0"}}, service.ErrInvalid},
		{service.AddReplicaRequest{Name: "lyon", Site: "lyon"}, service.ErrInvalid}, // no address
		{service.AddReplicaRequest{Name: "paris", Site: "paris", Primary: []string{"dus:9443"}}, store.ErrExists},
	} {
		if _, _, err := svc.AddReplica(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("AddReplica(%+v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	if _, _, err := svc.AddReplica(service.WithPrincipal(context.Background(), viewer), service.AddReplicaRequest{Name: "lyon", Site: "lyon"}); !errors.Is(err, service.ErrForbidden) {
		t.Errorf("AddReplica as read-only = %v", err)
	}
	es, _ := st.History(context.Background(), 0, 0)
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Action+" "+e.Subject)
	}
	if want := "cert:admin replica-add paris,cert:admin cert-issue paris"; strings.Join(got, ",") != want {
		t.Errorf("history %q, want %q", got, want)
	}
	certs, _ := st.AdminCerts(context.Background())
	if len(certs) != 1 || certs[0].Role != "replica" || certs[0].Name != "paris" {
		t.Errorf("registry %+v: want the replica's certificate only (its admin certificate is its own)", certs)
	}
}

// TestReplicaRefusesChanges: a replica's service refuses every change with
// a message naming its primary, and still lets its admins look and take a
// backup.
func TestReplicaRefusesChanges(t *testing.T) {
	svc, _ := newService(t, service.Config{ReplicaOf: "dus.contoso.com:9443"})
	ctx := service.WithPrincipal(context.Background(), admin)
	for name, call := range map[string]func() error{
		"Approve":       func() error { _, err := svc.Approve(ctx, cx600); return err },
		"AddTestDevice": func() error { _, err := svc.AddTestDevice(ctx, firmware.TestDevice{Serial: "S1"}); return err },
		"PutAccount": func() error {
			_, err := svc.PutAccount(ctx, "alice", service.NewAccountPassword("correct horse"), false)
			return err
		},
		"PutSite": func() error {
			_, err := svc.PutSite(ctx, firmware.Site{Name: "hq", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, false)
			return err
		},
		"StartRollout": func() error { _, err := svc.StartRollout(ctx, cx600, firmware.DefaultPlan()); return err },
		"NewUpload":    func() error { _, err := svc.NewUpload(ctx, "x"); return err },
		"AddReplica": func() error {
			_, _, err := svc.AddReplica(ctx, service.AddReplicaRequest{Name: "lyon", Site: "lyon"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, store.ErrFollower) || !strings.Contains(err.Error(), "replica of dus.contoso.com:9443") {
			t.Errorf("%s on a replica = %v, want store.ErrFollower naming the primary", name, err)
		}
	}
	if _, err := svc.Rules(ctx); err != nil {
		t.Errorf("Rules on a replica = %v", err)
	}
	var b bytes.Buffer
	if _, err := svc.Backup(ctx, &b); err != nil {
		t.Errorf("Backup on a replica = %v", err)
	}
}

// TestReplicaFor: a site's devices are sent to its replica only once it
// holds the update, and while it is heard from.
func TestReplicaFor(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	svc, st := replicaService(t, clock.Now)
	rp, _ := addReplica(t, svc, "paris", "paris")
	if err := importTree(t, svc, admin, "4.0.7577.4372", "image"); err != nil {
		t.Fatal(err)
	}
	id, _ := firmware.ParseIdentity(cx600)
	u, _ := st.Catalog().Update(id, firmware.MustParseVersion("4.0.7577.4372"))
	up := func(pos uint64) {
		t.Helper()
		if _, err := svc.Upstream(service.WithPrincipal(context.Background(), rp), replica.Upstream{Position: pos, InternalURL: "https://paris.contoso.com:8443/"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok := svc.ReplicaFor("paris", u); ok {
		t.Error("ReplicaFor before the replica said anything = ok")
	}
	up(u.Seq - 1)
	if _, _, ok := svc.ReplicaFor("paris", u); ok {
		t.Error("ReplicaFor of an update the replica has not applied = ok")
	}
	up(u.Seq)
	if in, _, ok := svc.ReplicaFor("paris", u); !ok || in != "https://paris.contoso.com:8443/" {
		t.Errorf("ReplicaFor once it holds the update = %q, %v", in, ok)
	}
	if _, _, ok := svc.ReplicaFor("lyon", u); ok {
		t.Error("ReplicaFor of a site without a replica = ok")
	}
	clock.Advance(service.DefaultReplicaStaleAfter + time.Second)
	if _, _, ok := svc.ReplicaFor("paris", u); ok {
		t.Error("ReplicaFor of a replica not heard from = ok")
	}
	up(u.Seq)
	if _, err := svc.Upstream(service.WithPrincipal(context.Background(), rp), replica.Upstream{InternalURL: "http://evil/"}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("Upstream with an http URL = %v, want ErrInvalid", err)
	}
	if _, err := svc.RemoveReplica(service.WithPrincipal(context.Background(), admin), "paris", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := svc.ReplicaFor("paris", u); ok {
		t.Error("ReplicaFor of a removed replica = ok")
	}
}

// TestCheckReplicas: a replica that has not applied a release 15 minutes
// after it raises an alarm in the store, once, and catching up clears it.
func TestCheckReplicas(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	cs := certstest.NewStore(t, certs.Config{})
	svc, st := newServiceClock(t, clock.Now, service.Config{Issuer: cs, Replication: service.ReplicationConfig{Issuer: cs, Domain: "contoso.com"}})
	rp, _ := addReplica(t, svc, "paris", "paris")
	asReplica := service.WithPrincipal(context.Background(), rp)
	if err := importTree(t, svc, admin, "4.0.7577.4372", "image"); err != nil {
		t.Fatal(err)
	}
	check := func() []firmware.Alarm {
		t.Helper()
		if err := svc.CheckReplicas(context.Background()); err != nil {
			t.Fatal(err)
		}
		return svc.ReplicaAlarms()
	}
	if _, err := svc.Upstream(asReplica, replica.Upstream{Position: st.Catalog().Seq()}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(service.WithPrincipal(context.Background(), admin), cx600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(14 * time.Minute)
	if a := check(); len(a) != 0 {
		t.Errorf("alarms within the grace: %+v", a)
	}
	clock.Advance(time.Minute + time.Second)
	a := check()
	if len(a) != 1 || a[0].Kind != firmware.AlarmReplicaBehind || a[0].Replica != "paris" || a[0].Version.String() != "4.0.7577.4372" {
		t.Fatalf("alarms after the grace: %+v, want one replica-behind of paris", a)
	}
	check()
	infos, _, _ := svc.Replicas(service.WithPrincipal(context.Background(), viewer))
	// Two changes behind: the approval, and the alarm itself, which
	// replicates too.
	if len(infos) != 1 || len(infos[0].Alarms) != 1 || infos[0].Behind != 2 {
		t.Errorf("Replicas = %+v: want the alarm shown, two changes behind", infos)
	}
	if _, err := svc.Upstream(asReplica, replica.Upstream{Position: st.Catalog().Seq()}); err != nil {
		t.Fatal(err)
	}
	if a := check(); len(a) != 0 {
		t.Errorf("alarms after it caught up: %+v", a)
	}
	stored, err := st.Alarms(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].ID != a[0].ID || stored[0].IsOpen() {
		t.Errorf("the store's alarms %+v: want %s raised once, then cleared", stored, a[0].ID)
	}
}

// TestFetchFileCounts: what a replica fetches is counted in its progress,
// resumed or whole.
func TestFetchFileCounts(t *testing.T) {
	svc, st := replicaService(t, nil)
	rp, _ := addReplica(t, svc, "paris", "paris")
	content := strings.Repeat("firmware ", 1000)
	if err := importTree(t, svc, admin, "4.0.7577.4372", content); err != nil {
		t.Fatal(err)
	}
	sha := sha256.Sum256([]byte(content))
	ctx := service.WithPrincipal(context.Background(), rp)
	var b bytes.Buffer
	if n, err := svc.FetchFile(ctx, sha, 100, &b); err != nil || n != int64(len(content)-100) || b.String() != content[100:] {
		t.Fatalf("FetchFile from 100 = %d, %v", n, err)
	}
	if _, err := svc.FetchFile(ctx, [32]byte{1}, 0, &b); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FetchFile of an unknown file = %v, want ErrNotFound", err)
	}
	r, _ := st.Replica(context.Background(), "paris")
	if r.Progress.BytesFetched != int64(len(content)-100) || r.Progress.FilesFetched != 1 {
		t.Errorf("progress %+v: want the bytes sent and one file done", r.Progress)
	}
}

// TestRemoveReplicaEndsItsStream: an open Follow stream of a replica ends
// at once when the replica is removed, not at its next message.
func TestRemoveReplicaEndsItsStream(t *testing.T) {
	svc, _ := replicaService(t, nil)
	rp, _ := addReplica(t, svc, "paris", "paris")
	asReplica := service.WithPrincipal(t.Context(), rp)
	opened := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- svc.Follow(asReplica, 1, false, func(replica.Message) error { once.Do(func() { close(opened) }); return nil })
	}()
	<-opened // its first heartbeat: the stream is open, the next is 15 s away
	if _, err := svc.RemoveReplica(service.WithPrincipal(context.Background(), admin), "paris", "stolen"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "removed") {
			t.Errorf("Follow after the replica was removed = %v, want ErrForbidden saying it was removed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of a removed replica is still open after 10 s")
	}
}
