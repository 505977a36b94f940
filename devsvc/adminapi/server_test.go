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
}

func newHarness(t *testing.T) *harness { return newHarnessDir(t, nil) }

// newHarnessDir is newHarness with a directory for password sign-in: the
// server then verifies client certificates only if given.
func newHarnessDir(t *testing.T, dir service.Authenticator) *harness {
	t.Helper()
	cs := certstest.NewStore(t, certs.Config{})
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(st, service.Config{SpoolDir: t.TempDir(), MaxImportFiles: 5, MaxImportBytes: 1 << 20, Directory: dir})
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
	return &harness{st: st, cs: cs, addr: ln.Addr().String(), client: c}
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
		service.ErrUnauthenticated:   codes.Unauthenticated,
		service.ErrForbidden:         codes.PermissionDenied,
		service.ErrNoRole:            codes.Internal, // wrapped in ErrForbidden when returned
		service.ErrInvalid:           codes.InvalidArgument,
		service.ErrTooLarge:          codes.ResourceExhausted,
		store.ErrNotFound:            codes.NotFound,
		store.ErrExists:              codes.AlreadyExists,
		store.ErrBusy:                codes.Unavailable,
		store.ErrConflict:            codes.FailedPrecondition,
		store.ErrNotCheckedIn:        codes.FailedPrecondition,
		store.ErrNotOffered:          codes.FailedPrecondition,
		store.ErrIntegrity:           codes.InvalidArgument,
		store.ErrClosed:              codes.Unavailable,
		store.ErrSchema:              codes.Internal,
		firmware.ErrNoPending:        codes.FailedPrecondition,
		firmware.ErrNothingToRestore: codes.FailedPrecondition,
		firmware.ErrAlreadyApproved:  codes.FailedPrecondition,
		firmware.ErrSchedule:         codes.FailedPrecondition,
		firmware.ErrVersion:          codes.InvalidArgument,
		firmware.ErrIdentity:         codes.InvalidArgument,
		firmware.ErrMAC:              codes.InvalidArgument,
		context.Canceled:             codes.Canceled,
		context.DeadlineExceeded:     codes.DeadlineExceeded,
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
		return "", errors.New("bad credentials")
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
