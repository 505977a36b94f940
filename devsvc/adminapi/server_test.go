package adminapi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/certs/certstest"
	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// harness is an admin server on loopback over real mutual TLS, with a real
// store, and a client with the admin certificate.
type harness struct {
	st     *store.Store
	cs     *certs.Store
	addr   string
	client *Client
	grpc   *grpc.Server
}

func newHarness(t *testing.T) *harness { return newHarnessDir(t, nil) }

// newHarnessDir is newHarness with a directory for password sign-in: the
// server then verifies client certificates only if given.
func newHarnessDir(t *testing.T, dir service.Authenticator) *harness {
	return newHarnessSpool(t, dir, t.TempDir())
}

// newHarnessSpool is newHarnessDir with uploads spooled in spool.
func newHarnessSpool(t *testing.T, dir service.Authenticator, spool string) *harness {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(st, service.Config{SpoolDir: spool, MaxImportFiles: 5, MaxImportBytes: 1 << 20, Directory: dir, Issuer: cs})
	if _, err := service.RecordAdminCert(context.Background(), st, "test", cs.AdminCertificate(), ""); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(svc, Config{})
	tlsConf := cs.AdminServerTLSConfig()
	if dir != nil {
		tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
	}
	g := srv.GRPCServer(tlsConf)
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

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestReflectionListsTheAdminService(t *testing.T) {
	h := newHarness(t)
	conf, err := h.cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "opendus.admin.v1.Admin") {
		t.Errorf("reflection lists %v, want opendus.admin.v1.Admin", names)
	}
}

// TestStatusError checks the code of every sentinel error the service
// layer can return. The sentinels are read from the packages' sources, so
// a new one without a code here fails the test instead of silently
// becoming Internal.
func TestStatusError(t *testing.T) {
	want := map[error]codes.Code{
		service.ErrUnauthenticated:    codes.Unauthenticated,
		service.ErrForbidden:          codes.PermissionDenied,
		service.ErrNoRole:             codes.Internal, // wrapped in ErrForbidden when returned
		service.ErrBadCredentials:     codes.Unauthenticated,
		service.ErrInvalid:            codes.InvalidArgument,
		service.ErrTooLarge:           codes.ResourceExhausted,
		store.ErrNotFound:             codes.NotFound,
		store.ErrExists:               codes.AlreadyExists,
		store.ErrBusy:                 codes.Unavailable,
		store.ErrConflict:             codes.FailedPrecondition,
		store.ErrNotCheckedIn:         codes.FailedPrecondition,
		store.ErrNotOffered:           codes.FailedPrecondition,
		store.ErrIntegrity:            codes.InvalidArgument,
		store.ErrClosed:               codes.Unavailable,
		store.ErrUnavailable:          codes.ResourceExhausted, // the disk is full: not "cannot reach the server"
		store.ErrSchema:               codes.Internal,
		store.ErrRevoked:              codes.FailedPrecondition,
		store.ErrFollower:             codes.FailedPrecondition,
		firmware.ErrReplica:           codes.InvalidArgument,
		firmware.ErrCertSerial:        codes.InvalidArgument,
		firmware.ErrNoPending:         codes.FailedPrecondition,
		firmware.ErrNothingToRestore:  codes.FailedPrecondition,
		firmware.ErrNotApproved:       codes.FailedPrecondition,
		firmware.ErrAlreadyApproved:   codes.FailedPrecondition,
		firmware.ErrSchedule:          codes.FailedPrecondition,
		firmware.ErrVersion:           codes.InvalidArgument,
		firmware.ErrIdentity:          codes.InvalidArgument,
		firmware.ErrMAC:               codes.InvalidArgument,
		store.ErrRolloutLive:          codes.FailedPrecondition,
		firmware.ErrPlan:              codes.InvalidArgument,
		firmware.ErrShare:             codes.InvalidArgument,
		firmware.ErrSite:              codes.InvalidArgument,
		firmware.ErrWindow:            codes.InvalidArgument,
		firmware.ErrRolloutNotRunning: codes.FailedPrecondition,
		firmware.ErrRolloutNotPaused:  codes.FailedPrecondition,
		firmware.ErrRolloutEnded:      codes.FailedPrecondition,
		context.Canceled:              codes.Canceled,
		context.DeadlineExceeded:      codes.DeadlineExceeded,
	}
	names := map[string]bool{}
	for err := range want {
		names[err.Error()] = true
	}
	for _, dir := range []string{"../service", "../store", "../../firmware"} {
		for _, name := range sentinels(t, dir) {
			if !names[name] {
				t.Errorf("%s declares the error %q, which TestStatusError does not map: give it a code here (and in statusError)", dir, name)
			}
		}
	}
	for err, code := range want {
		wrapped := fmt.Errorf("rule x: %w", err)
		if got := status.Code(statusError(wrapped)); got != code {
			t.Errorf("statusError(%v) code = %v, want %v", wrapped, got, code)
		}
		if got := status.Convert(statusError(wrapped)).Message(); got != wrapped.Error() {
			t.Errorf("statusError(%v) message = %q, want the error's own", wrapped, got)
		}
	}
	if got := status.Code(statusError(errors.New("disk on fire"))); got != codes.Internal {
		t.Errorf("an unknown error is %v, want Internal", got)
	}
	if got := status.Code(statusError(status.Error(codes.Unimplemented, "no"))); got != codes.Unimplemented {
		t.Errorf("a status error is %v, want it kept", got)
	}
}

// sentinels returns the messages of the exported package-level
// errors.New errors declared in the Go files of dir (tests excluded).
func sentinels(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					call, ok := vs.Values[i].(*ast.CallExpr)
					if !ok || len(call.Args) != 1 {
						continue
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "New" {
						continue
					}
					if lit, ok := call.Args[0].(*ast.BasicLit); ok {
						msg, _ := strconv.Unquote(lit.Value)
						out = append(out, msg)
					}
				}
			}
		}
	}
	return out
}

// rawImport sends a hand-made tree upload, as a hostile client could.
func rawImport(t *testing.T, h *harness, msgs ...*pb.ImportRequest) error {
	t.Helper()
	stream, err := h.client.c.Import(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

func hdr() *pb.ImportRequest {
	return &pb.ImportRequest{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: pb.ImportHeader_TREE, Name: "t"}}}
}

func file(p string, size int64) *pb.ImportRequest {
	return &pb.ImportRequest{Part: &pb.ImportRequest_File{File: &pb.FileHeader{Path: p, Size: size}}}
}

func data(s string) *pb.ImportRequest {
	return &pb.ImportRequest{Part: &pb.ImportRequest_Data{Data: []byte(s)}}
}

func TestImportRefusesHostileUploads(t *testing.T) {
	const good = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt"
	tests := []struct {
		name string
		msgs []*pb.ImportRequest
		want codes.Code
	}{
		{"no header", []*pb.ImportRequest{file(good, 1), data("x")}, codes.InvalidArgument},
		{"dot dot", []*pb.ImportRequest{hdr(), file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/../../../../../../../etc/x", 1), data("x")}, codes.InvalidArgument},
		{"absolute", []*pb.ImportRequest{hdr(), file("/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/x.nbt", 1), data("x")}, codes.InvalidArgument},
		{"backslash", []*pb.ImportRequest{hdr(), file(`UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/..\..\x.nbt`, 1), data("x")}, codes.InvalidArgument},
		{"bad version", []*pb.ImportRequest{hdr(), file("UCPhone/Polycom/CX600/A/ENU/4.0/x.nbt", 1), data("x")}, codes.InvalidArgument},
		{"data before file", []*pb.ImportRequest{hdr(), data("x")}, codes.InvalidArgument},
		{"longer than said", []*pb.ImportRequest{hdr(), file(good, 1), data("xx")}, codes.InvalidArgument},
		{"shorter than said", []*pb.ImportRequest{hdr(), file(good, 5), data("xx")}, codes.InvalidArgument},
		{"duplicate file", []*pb.ImportRequest{hdr(), file(good, 1), data("x"), file(good, 1), data("x")}, codes.InvalidArgument},
		{"too many files", []*pb.ImportRequest{hdr(),
			file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/a.nbt", 0), file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/b.nbt", 0),
			file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/c.nbt", 0), file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/d.nbt", 0),
			file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/e.nbt", 0), file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/f.nbt", 0)}, codes.ResourceExhausted},
		{"too many bytes", []*pb.ImportRequest{hdr(), file(good, 2<<20), data(strings.Repeat("x", 1<<20)), data(strings.Repeat("x", 1<<20))}, codes.ResourceExhausted},
		{"cabinet that is not one", []*pb.ImportRequest{{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: pb.ImportHeader_CABINET}}}, data("MSCF")}, codes.InvalidArgument},
		{"file header in a bundle upload", []*pb.ImportRequest{{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: pb.ImportHeader_CABINET}}}, file(good, 1)}, codes.InvalidArgument},
		{"empty tree", []*pb.ImportRequest{hdr()}, codes.InvalidArgument},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rawImport(t, h, tt.msgs...)
			if got := status.Code(err); got != tt.want {
				t.Errorf("import: %v (code %v), want code %v", err, got, tt.want)
			}
		})
	}
	if rules := h.st.Catalog().Rules(); len(rules) != 0 {
		t.Errorf("refused imports left rules: %+v", rules)
	}
	// A well-formed upload through the same path works.
	if err := rawImport(t, h, hdr(), file(good, 3), data("abc")); err != nil {
		t.Fatalf("good import: %v", err)
	}
	r, err := h.client.Rule(ctx(t), "UCPhone/Polycom/CX600/A/ENU")
	if err != nil || r.Pending.String() != "4.0.7577.4372" {
		t.Errorf("rule after import = %+v, %v", r, err)
	}
	f, im, err := h.st.OpenFile(r.Identity, r.Pending, "CX600.nbt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "abc" || im.Size != 3 {
		t.Errorf("stored file = %q (%+v), want abc", b, im)
	}
}

func TestClientErrorsSayWhatToDo(t *testing.T) {
	h := newHarness(t)
	_, err := h.client.Approve(ctx(t), "UCPhone/Polycom/CX600/A/ENU")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("approve of a missing rule: %v, want ErrNotFound", err)
	}
	var ae *Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Msg, "UCPhone/Polycom/CX600/A/ENU") {
		t.Errorf("error %v does not name the rule", err)
	}
	// Nothing listens here: the message points at devsvc serve.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	conf, _ := h.cs.ClientTLSConfig("admin")
	c, err := Dial(addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Rules(short); err == nil || !strings.Contains(err.Error(), "devsvc serve") {
		t.Errorf("Rules against nothing: %v, want a hint to run devsvc serve", err)
	}
}

// fakeDirectory is a hand-written directory: user -> password and role.
type fakeDirectory map[string]struct {
	password string
	role     service.Role
}

func (f fakeDirectory) AuthenticateAdmin(_ context.Context, user, password string) (service.Role, error) {
	u, ok := f[user]
	if !ok || u.password != password {
		return "", fmt.Errorf("bad credentials: %w", service.ErrBadCredentials)
	}
	if u.role == "" {
		return "", service.ErrNoRole
	}
	return u.role, nil
}

// seedPending imports one pending update straight into the store.
func seedPending(t *testing.T, h *harness) {
	t.Helper()
	if err := rawImport(t, h, hdr(), file("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt", 3), data("abc")); err != nil {
		t.Fatal(err)
	}
}

func TestRoles(t *testing.T) {
	dir := fakeDirectory{
		"alice": {"alice-pw", service.RoleAdmin},
		"bob":   {"bob-pw", service.RoleReadOnly},
		"carol": {"carol-pw", ""},
	}
	h := newHarnessDir(t, dir)
	seedPending(t, h)

	pool := x509.NewCertPool()
	pool.AddCert(h.cs.CACertificate())
	certClient := func(name, role string) *Client {
		certPEM, keyPEM, err := h.cs.IssueClient(name, role)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := certs.ParseCertPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := service.RecordAdminCert(ctx(t), h.st, "test", cert, ""); err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Dial(h.addr, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	userClient := func(user, pw string) *Client {
		c, err := DialUser(h.addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, user, pw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	tests := []struct {
		name              string
		c                 *Client
		readCode, tryCode codes.Code
	}{
		{"read-only certificate", certClient("viewer", string(service.RoleReadOnly)), codes.OK, codes.PermissionDenied},
		{"certificate without role", certClient("nobody", "printers"), codes.PermissionDenied, codes.PermissionDenied},
		{"read-only directory account", userClient("bob", "bob-pw"), codes.OK, codes.PermissionDenied},
		{"directory account in no group", userClient("carol", "carol-pw"), codes.PermissionDenied, codes.PermissionDenied},
		{"wrong password", userClient("alice", "nope"), codes.Unauthenticated, codes.Unauthenticated},
		{"unknown user", userClient("mallory", "x"), codes.Unauthenticated, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Rules(ctx(t))
			if got := codeOf(err); got != tt.readCode {
				t.Errorf("Rules: %v (code %v), want %v", err, got, tt.readCode)
			}
			_, err = tt.c.Approve(ctx(t), "UCPhone/Polycom/CX600/A/ENU")
			if got := codeOf(err); got != tt.tryCode {
				t.Errorf("Approve: %v (code %v), want %v", err, got, tt.tryCode)
			}
		})
	}
	if r := h.st.Catalog().Rules()[0]; !r.Approved.IsZero() {
		t.Fatalf("a refused admin approved %v", r.Approved)
	}
	// An admin from the directory may approve, and the history names her.
	if _, err := userClient("alice", "alice-pw").Approve(ctx(t), "UCPhone/Polycom/CX600/A/ENU"); err != nil {
		t.Fatalf("alice approve: %v", err)
	}
	events, err := h.client.History(ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Action != "approve" || last.Actor != "dir:alice" {
		t.Errorf("last event = %+v, want approve by dir:alice", last)
	}
	// With a directory configured, no certificate and no password is still
	// refused.
	anon, err := Dial(h.addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Rules(ctx(t)); codeOf(err) != codes.Unauthenticated {
		t.Errorf("anonymous Rules: %v, want Unauthenticated", err)
	}
}

func codeOf(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// TestImportTreeWithDescriptions checks a tree upload carrying
// descriptions as a bundle: a description that disagrees with the files
// refuses the whole tree, a valid one sets the update type.
func TestImportTreeWithDescriptions(t *testing.T) {
	const dir = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/"
	image := "firmware image"
	desc := func(size int64, updateType string) string {
		d := &cabingest.Description{
			Identity: firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
			Version:  firmware.MustParseVersion("4.0.7577.4372"), UpdateType: updateType,
			Files: []cabingest.DescribedFile{{Name: "CX600.nbt", Role: firmware.RoleImage, Size: size, SHA256: sha256.Sum256([]byte(image))}},
		}
		b, err := cabingest.MarshalDescription(d)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	h := newHarness(t)
	upload := func(xml string) error {
		return rawImport(t, h, hdr(), file(dir+"CX600.nbt", int64(len(image))), data(image), file(dir+"CX600.xml", int64(len(xml))), data(xml))
	}
	err := upload(desc(int64(len(image))+1, "Firmware"))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "CX600.nbt") {
		t.Errorf("import with a wrong size in the description = %v, want InvalidArgument naming the file", err)
	}
	if rules := h.st.Catalog().Rules(); len(rules) != 0 {
		t.Errorf("refused import left rules: %+v", rules)
	}
	if err := upload(desc(int64(len(image)), "Security")); err != nil {
		t.Fatalf("import with a valid description: %v", err)
	}
	r, err := h.client.Rule(ctx(t), "UCPhone/Polycom/CX600/A/ENU")
	if err != nil || r.Pending.String() != "4.0.7577.4372" {
		t.Fatalf("rule after import = %+v, %v", r, err)
	}
}

// certClient dials the harness's server with a client certificate and key.
func (h *harness) certClient(t *testing.T, certPEM, keyPEM []byte) *Client {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(h.cs.CACertificate())
	c, err := Dial(h.addr, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAdminCertificates: a certificate issued through the API works, is
// listed and in the history; one the CA signed but the service never
// recorded is refused; a revoked one is refused at once, on a connection
// already open, with a message naming it; nobody revokes the certificate
// they are signed in with.
func TestAdminCertificates(t *testing.T) {
	h := newHarness(t)
	issue := func(c *Client, name, role string) (firmware.AdminCert, []byte, []byte, error) {
		key, keyPEM, err := certs.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		rec, certPEM, err := c.IssueAdminCertificate(ctx(t), name, role, pub)
		return rec, certPEM, keyPEM, err
	}
	rec, certPEM, keyPEM, err := issue(h.client, "helpdesk", "readonly")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Name != "helpdesk" || rec.Role != "readonly" || rec.IssuedBy != "cert:admin" || rec.State(time.Now()) != firmware.CertValid {
		t.Errorf("issued %+v", rec)
	}
	help := h.certClient(t, certPEM, keyPEM)
	if _, err := help.Rules(ctx(t)); err != nil {
		t.Fatalf("Rules with the issued certificate: %v", err)
	}
	if _, _, _, err := issue(help, "mallory", "admin"); codeOf(err) != codes.PermissionDenied {
		t.Errorf("a read-only admin issuing: %v, want PermissionDenied", err)
	}
	if _, _, _, err := issue(h.client, "x", "superuser"); codeOf(err) != codes.InvalidArgument {
		t.Errorf("issuing an unknown role: %v, want InvalidArgument", err)
	}

	// Signed by the CA, never recorded: refused, naming it.
	rogueCert, rogueKey, err := h.cs.IssueClient("rogue", "admin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.certClient(t, rogueCert, rogueKey).Rules(ctx(t))
	if codeOf(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `certificate "rogue"`) || !strings.Contains(err.Error(), "not one this service issued") {
		t.Errorf("Rules with an unrecorded certificate: %v, want PermissionDenied naming it", err)
	}

	list, err := help.AdminCertificates(ctx(t))
	if err != nil || len(list) != 2 {
		t.Fatalf("AdminCertificates = %+v, %v; want admin and helpdesk", list, err)
	}
	if _, err := help.RevokeAdminCertificate(ctx(t), "admin", ""); codeOf(err) != codes.PermissionDenied {
		t.Errorf("a read-only admin revoking: %v, want PermissionDenied", err)
	}
	if _, err := h.client.RevokeAdminCertificate(ctx(t), "admin", ""); codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "you are signed in with") {
		t.Errorf("revoking one's own certificate: %v, want InvalidArgument", err)
	}
	if _, err := h.client.RevokeAdminCertificate(ctx(t), "nobody", ""); codeOf(err) != codes.NotFound {
		t.Errorf("revoking an unknown name: %v, want NotFound", err)
	}
	r, err := h.client.RevokeAdminCertificate(ctx(t), "HelpDesk", "laptop lost")
	if err != nil || r.Serial != rec.Serial || r.RevokedBy != "cert:admin" {
		t.Fatalf("revoke helpdesk = %+v, %v", r, err)
	}
	// The connection open with it is refused from the next call on.
	_, err = help.Rules(ctx(t))
	if codeOf(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `certificate "helpdesk" (serial `+rec.Serial+`) was revoked`) || !strings.Contains(err.Error(), "laptop lost") {
		t.Errorf("Rules with the revoked certificate: %v, want PermissionDenied naming it and why", err)
	}
	if _, err := h.client.RevokeAdminCertificate(ctx(t), rec.Serial, ""); codeOf(err) != codes.FailedPrecondition {
		t.Errorf("revoking twice: %v, want FailedPrecondition", err)
	}
	events, err := h.client.History(ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Actor+" "+e.Action+" "+e.Subject)
	}
	want := []string{"test cert-issue admin", "cert:admin cert-issue helpdesk", "cert:admin cert-revoke helpdesk"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestClientTellsRefusalsFromUnreachable: a server that refuses the
// client certificate in the TLS handshake, or that the client does not
// trust, is not reported as one that cannot be reached.
func TestClientTellsRefusalsFromUnreachable(t *testing.T) {
	h := newHarness(t)
	foreign := certstest.NewStore(t, certs.Config{Domain: "evil.example"})
	pool := x509.NewCertPool()
	pool.AddCert(h.cs.CACertificate())
	foreignAdmin, err := foreign.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	foreignAdmin.RootCAs = pool // trusts the server, presents a foreign certificate
	ours, err := h.cs.ClientTLSConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	ours.RootCAs = foreign.CertPool() // a good certificate, the wrong CA to trust
	tests := []struct {
		name     string
		conf     *tls.Config
		code     codes.Code
		want     string
		dontWant string
	}{
		{"foreign client certificate", foreignAdmin, codes.Unauthenticated, "client certificate", "devsvc serve"},
		{"no client certificate", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, codes.Unauthenticated, "client certificate", "devsvc serve"},
		{"server not trusted", ours, codes.Unavailable, "presented a certificate this client does not trust", "devsvc serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(h.addr, tt.conf)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Rules(ctx(t))
			if codeOf(err) != tt.code || !strings.Contains(fmt.Sprint(err), tt.want) || strings.Contains(fmt.Sprint(err), tt.dontWant) {
				t.Errorf("Rules: %v (code %v); want code %v, %q and not %q", err, codeOf(err), tt.code, tt.want, tt.dontWant)
			}
			if IsUnavailable(err) {
				t.Errorf("IsUnavailable(%v) = true", err)
			}
		})
	}
}
