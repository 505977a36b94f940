package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// primaryHarness is an admin server over real mutual TLS whose service
// makes replicas, and an admin client.
func primaryHarness(t testing.TB) *harness {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(st, service.Config{SpoolDir: t.TempDir(), Issuer: cs, Replication: service.ReplicationConfig{Issuer: cs, Domain: "contoso.com"}})
	if _, err := service.RecordAdminCert(context.Background(), st, "test", cs.AdminCertificate(), ""); err != nil {
		t.Fatal(err)
	}
	g := NewServer(svc, Config{}).GRPCServer(cs.AdminServerTLSConfig())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	conf, err := cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ln.Addr().String(), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &harness{st: st, cs: cs, addr: ln.Addr().String(), client: c, grpc: g}
}

// tlsFrom is a client TLS configuration from a certificate and key.
func tlsFrom(t testing.TB, certPEM, keyPEM, caPEM string) *tls.Config {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// TestReplicationOverTLS: a replica made through the admin API follows
// its primary over real mutual TLS with the credentials it was given, and
// ends up with the primary's catalog and files.
func TestReplicationOverTLS(t *testing.T) {
	h := primaryHarness(t)
	id := firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	data := bytes.Repeat([]byte("image"), 100_000)
	sum := sha256.Sum256(data)
	_, err := h.st.Import(context.Background(), "admin", []firmware.ImportUpdate{{Identity: id, Version: firmware.MustParseVersion("4.0.1.2"),
		Files: []firmware.ImportFile{{Name: "CX600.nbt", Size: int64(len(data)), SHA256: &sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}}}, store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info, credsFile, err := h.client.AddReplica(ctx(t), service.AddReplicaRequest{Name: "paris", Site: "paris", Primary: []string{h.addr}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "paris" || info.CertSerial == "" {
		t.Errorf("AddReplica = %+v", info)
	}
	creds, err := replica.ParseCredentials(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := DialReplica(creds.Primary, tlsFrom(t, creds.Cert, creds.Key, creds.CA), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rst, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	if err := rst.MakeReplica(context.Background(), creds.Primary[0]); err != nil {
		t.Fatal(err)
	}
	f := replica.New(rst, rc, replica.Config{Dir: t.TempDir(), DeviceURLs: func() (string, string) { return "https://paris.contoso.com/", "" }})
	fctx, cancel := context.WithCancel(ctx(t))
	done := make(chan struct{})
	go func() { f.Run(fctx); close(done) }()
	for rst.Position() < h.st.Catalog().Seq() {
		if err := rst.WaitChange(ctx(t), rst.Position()); err != nil {
			t.Fatalf("the replica did not follow: %v; status %+v", err, f.Status())
		}
	}
	cancel()
	<-done
	pu, _ := h.st.Updates(context.Background())
	ru, _ := rst.Updates(context.Background())
	if diff := cmp.Diff(pu, ru); diff != "" {
		t.Errorf("updates differ (-primary +replica):\n%s", diff)
	}
	if st := f.Status(); st.FilesFetched != 1 || st.BytesFetched != int64(len(data)) {
		t.Errorf("status %+v: want the one file fetched once", st)
	}
	list, head, err := h.client.Replicas(ctx(t))
	if err != nil || len(list) != 1 || head != h.st.Catalog().Seq() || list[0].Progress.BytesFetched != int64(len(data)) {
		t.Errorf("Replicas = %+v, head %d, %v: want paris with the file's bytes counted", list, head, err)
	}
}

// TestReplicationAuthorization over real TLS: a replica's certificate
// calls no admin method, an admin's does not follow the feed, and a
// removed replica is refused at once.
func TestReplicationAuthorization(t *testing.T) {
	h := primaryHarness(t)
	_, credsFile, err := h.client.AddReplica(ctx(t), service.AddReplicaRequest{Name: "paris", Site: "paris", Primary: []string{h.addr}})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := replica.ParseCredentials(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	replicaTLS := tlsFrom(t, creds.Cert, creds.Key, creds.CA)
	asReplica, err := Dial(h.addr, replicaTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer asReplica.Close()
	if _, err := asReplica.Rules(ctx(t)); !isCode(err, codes.PermissionDenied, "replica's certificate") {
		t.Errorf("Rules with a replica's certificate = %v, want PermissionDenied", err)
	}
	if _, _, err := asReplica.Replicas(ctx(t)); !isCode(err, codes.PermissionDenied, "replica's certificate") {
		t.Errorf("ListReplicas with a replica's certificate = %v, want PermissionDenied", err)
	}
	// The replica's own data directory's admin certificate is not the
	// primary's.
	asItsAdmin, err := Dial(h.addr, tlsFrom(t, creds.AdminCert, creds.AdminKey, creds.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer asItsAdmin.Close()
	if _, err := asItsAdmin.Rules(ctx(t)); !isCode(err, codes.PermissionDenied, "not one this service issued") {
		t.Errorf("Rules with the replica's own admin certificate = %v, want PermissionDenied", err)
	}
	adminTLS, _ := h.cs.ClientTLSConfig("admin")
	asAdmin, err := DialReplica([]string{h.addr}, adminTLS, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer asAdmin.Close()
	stop := errors.New("stop")
	if err := asAdmin.Follow(ctx(t), 0, false, func(replica.Message) error { return stop }); err == nil || !strings.Contains(err.Error(), "not a replica") {
		t.Errorf("Follow with an admin certificate = %v, want it refused: not a replica", err)
	}
	rc, err := DialReplica([]string{h.addr}, replicaTLS, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Follow(ctx(t), 0, false, func(replica.Message) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Follow with the replica's certificate = %v, want its first message", err)
	}
	if _, err := rc.Upstream(ctx(t), replica.Upstream{Items: []store.Forwarded{{Seq: 1, Key: "x"}}}); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("Upstream of a malformed report = %v, want InvalidArgument", err)
	}
	if _, err := h.client.RemoveReplica(ctx(t), "paris", "stolen"); err != nil {
		t.Fatal(err)
	}
	if err := rc.Follow(ctx(t), 0, false, func(replica.Message) error { return stop }); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("Follow after the replica was removed = %v, want it refused: revoked", err)
	}
	if _, err := rc.Upstream(ctx(t), replica.Upstream{}); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("Upstream after the replica was removed = %v, want PermissionDenied", err)
	}
}

func isCode(err error, code codes.Code, msg string) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Code == code && strings.Contains(e.Msg, msg)
	}
	return status.Code(err) == code && strings.Contains(err.Error(), msg)
}
