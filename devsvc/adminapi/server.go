// Package adminapi is the admin side of the service: a gRPC API over mutual
// TLS for managing rules, imports, test devices, accounts and the device
// inventory, and the client the devsvc command line uses. It is the only
// package that imports gRPC.
//
// Every call is authenticated by the TLS layer: the server requires a client
// certificate issued by the service's CA (devsvc init writes one). The
// certificate's common name is the actor recorded in the history. Errors are
// mapped to gRPC status codes in one place (statusError) and carry a message
// that says what to do.
package adminapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/opendus/opendus/cabingest"
	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// Listener is one address the service listens on, for Status.
type Listener struct{ Name, Address string }

// CertInfo describes one certificate, for Status.
type CertInfo struct {
	Name, Role, Subject string
	Names               []string
	NotAfter            time.Time
	SHA256              string
}

// BundleKind says what kind of bundle an upload is.
type BundleKind string

// Bundle kinds.
const (
	Cabinet BundleKind = "cabinet" // UCUpdates.cab, possibly inside an .exe
	RPM     BundleKind = "rpm"
)

// BundleOpener turns a spooled bundle file (a cabinet or an RPM) into the
// updates it carries; name is what the admin called it. The returned
// cleanup is called after the import.
type BundleOpener func(ctx context.Context, file, name string, kind BundleKind) (updates []firmware.ImportUpdate, cleanup func(), err error)

// Config configures a Server. The zero value works with a store alone.
type Config struct {
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
	Version string           // the service's version, for Status
	// SpoolDir is where uploads are kept while they are imported; it
	// should be on the store's file system. Default: the OS temp dir.
	SpoolDir string
	// MaxImportBytes bounds one upload; default 8 GiB.
	MaxImportBytes int64
	// MaxImportFiles bounds the files of one tree upload; default 10,000.
	MaxImportFiles int
	Listeners      func() []Listener // for Status
	Certificates   func() []CertInfo // for Status
	Warnings       func() []string   // for Status (certificates near expiry, ...)
	Bundles        BundleOpener      // cabinet and RPM imports; nil: refused
	// Directory, if set, lets admins sign in with a directory account and
	// password instead of a client certificate; its groups give the role.
	Directory Authenticator
}

// Server implements the Admin service over a store.
type Server struct {
	pb.UnimplementedAdminServer
	cfg     Config
	st      *store.Store
	started time.Time
}

// NewServer returns the admin service for st.
func NewServer(st *store.Store, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = 8 << 30
	}
	if cfg.MaxImportFiles <= 0 {
		cfg.MaxImportFiles = 10000
	}
	return &Server{cfg: cfg, st: st, started: cfg.Now()}
}

// GRPCServer returns a gRPC server with the Admin service and server
// reflection (so grpcurl works) registered. tlsConfig must verify client
// certificates against the service CA: require them, or, when admins may
// sign in with a directory account, verify them if given.
func (s *Server) GRPCServer(tlsConfig *tls.Config) *grpc.Server {
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
		grpc.MaxRecvMsgSize(4<<20),
	)
	pb.RegisterAdminServer(g, s)
	reflection.Register(g)
	return g
}

type actorKey struct{}

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	p, err := s.authenticate(ctx)
	if err == nil {
		err = authorize(p, info.FullMethod)
	}
	if err != nil {
		s.log(ctx, info.FullMethod, p.actor, time.Now(), err)
		return nil, err
	}
	start := time.Now()
	resp, err := h(context.WithValue(ctx, actorKey{}, p.actor), req)
	s.log(ctx, info.FullMethod, p.actor, start, err)
	if err != nil {
		return nil, statusError(err)
	}
	return resp, nil
}

type actorStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a actorStream) Context() context.Context { return a.ctx }

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	p, err := s.authenticate(ss.Context())
	if err == nil {
		err = authorize(p, info.FullMethod)
	}
	if err != nil {
		s.log(ss.Context(), info.FullMethod, p.actor, time.Now(), err)
		return err
	}
	start := time.Now()
	err = h(srv, actorStream{ss, context.WithValue(ss.Context(), actorKey{}, p.actor)})
	s.log(ss.Context(), info.FullMethod, p.actor, start, err)
	if err != nil {
		return statusError(err)
	}
	return nil
}

func (s *Server) log(ctx context.Context, method, actor string, start time.Time, err error) {
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	s.cfg.Logger.Log(ctx, level, "admin call", "method", path.Base(method), "actor", actor,
		"duration", time.Since(start).Round(time.Microsecond), "err", err)
}

func actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// statusError maps an error to a gRPC status: the one place that knows
// which domain error is which code. The message is the error's own, which
// says what went wrong and what to do.
func statusError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, store.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, store.ErrBusy):
		code = codes.Unavailable
	case errors.Is(err, store.ErrConflict),
		errors.Is(err, firmware.ErrSchedule),
		errors.Is(err, firmware.ErrNoPending),
		errors.Is(err, firmware.ErrNothingToRestore),
		errors.Is(err, firmware.ErrAlreadyApproved):
		code = codes.FailedPrecondition
	case errors.Is(err, firmware.ErrVersion),
		errors.Is(err, firmware.ErrIdentity),
		errors.Is(err, firmware.ErrMAC),
		errors.Is(err, cabingest.ErrLayout),
		errors.Is(err, store.ErrIntegrity),
		errors.Is(err, cabingest.ErrInvalid),
		errors.Is(err, errInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, errTooLarge):
		code = codes.ResourceExhausted
	}
	return status.Error(code, err.Error())
}

var (
	errInvalid  = errors.New("invalid request")
	errTooLarge = errors.New("upload too large")
)

// Status implements Admin.Status.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusReply, error) {
	st, err := s.st.Stats(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.StatusReply{
		Version: s.cfg.Version, Started: ts(s.started), DataDir: s.st.Dir(),
		Rules: int64(st.Rules), Updates: int64(st.Updates), Devices: int64(st.Devices),
		TestDevices: int64(st.TestDevices), Accounts: int64(st.Accounts), Seq: st.Seq,
		SchemaVersion: int32(st.SchemaVersion), DbBytes: st.DBBytes, Actor: actor(ctx),
	}
	if s.cfg.Listeners != nil {
		for _, l := range s.cfg.Listeners() {
			r.Listeners = append(r.Listeners, &pb.Listener{Name: l.Name, Address: l.Address})
		}
	}
	if s.cfg.Certificates != nil {
		now := s.cfg.Now()
		for _, c := range s.cfg.Certificates() {
			r.Certificates = append(r.Certificates, &pb.Certificate{
				Name: c.Name, Role: c.Role, Subject: c.Subject, Names: c.Names, NotAfter: ts(c.NotAfter),
				DaysLeft: int32(c.NotAfter.Sub(now) / (24 * time.Hour)), Sha256: c.SHA256,
			})
		}
	}
	if s.cfg.Warnings != nil {
		r.Warnings = s.cfg.Warnings()
	}
	return r, nil
}

// ListRules implements Admin.ListRules.
func (s *Server) ListRules(ctx context.Context, _ *pb.ListRulesRequest) (*pb.ListRulesReply, error) {
	rules := s.st.Catalog().Rules()
	r := &pb.ListRulesReply{Rules: make([]*pb.Rule, len(rules))}
	for i, rule := range rules {
		r.Rules[i] = rulePB(rule)
	}
	return r, nil
}

// GetRule implements Admin.GetRule.
func (s *Server) GetRule(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	r, err := s.st.Rule(ctx, req.GetRule())
	if err != nil {
		return nil, err
	}
	return rulePB(r), nil
}

func (s *Server) transition(ctx context.Context, req *pb.RuleRequest, op func(context.Context, string, string) (firmware.Rule, error)) (*pb.Rule, error) {
	if req.GetRule() == "" {
		return nil, fmt.Errorf("%w: name the rule by its ID or identity path, like UCPhone/Polycom/CX600/A/ENU", errInvalid)
	}
	r, err := op(ctx, actor(ctx), req.GetRule())
	if err != nil {
		return nil, err
	}
	return rulePB(r), nil
}

// Approve implements Admin.Approve.
func (s *Server) Approve(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return s.transition(ctx, req, s.st.Approve)
}

// Reject implements Admin.Reject.
func (s *Server) Reject(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return s.transition(ctx, req, s.st.Reject)
}

// Restore implements Admin.Restore.
func (s *Server) Restore(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return s.transition(ctx, req, s.st.Restore)
}

// Remove implements Admin.Remove.
func (s *Server) Remove(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return s.transition(ctx, req, s.st.Remove)
}

// Schedule implements Admin.Schedule.
func (s *Server) Schedule(ctx context.Context, req *pb.ScheduleRequest) (*pb.Rule, error) {
	if req.GetRule() == "" {
		return nil, fmt.Errorf("%w: name the rule by its ID or identity path, like UCPhone/Polycom/CX600/A/ENU", errInvalid)
	}
	r, err := s.st.Schedule(ctx, actor(ctx), req.GetRule(), fromTS(req.GetAt()))
	if err != nil {
		return nil, err
	}
	return rulePB(r), nil
}

// Purge implements Admin.Purge.
func (s *Server) Purge(ctx context.Context, _ *pb.PurgeRequest) (*pb.PurgeReply, error) {
	removed, err := s.st.Purge(ctx, actor(ctx))
	if err != nil {
		return nil, err
	}
	r := &pb.PurgeReply{}
	for _, u := range removed {
		r.Removed = append(r.Removed, updatePB(u))
	}
	return r, nil
}

// Import implements Admin.Import: it spools the upload, then imports it in
// one all-or-nothing store transaction.
func (s *Server) Import(stream pb.Admin_ImportServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return fmt.Errorf("%w: an import starts with a header naming its kind", errInvalid)
	}
	spool, err := os.MkdirTemp(s.cfg.SpoolDir, "import-*")
	if err != nil {
		return fmt.Errorf("spool upload: %w", err)
	}
	defer os.RemoveAll(spool)
	root, err := os.OpenRoot(spool)
	if err != nil {
		return err
	}
	defer root.Close()

	var updates []firmware.ImportUpdate
	switch h.GetKind() {
	case pb.ImportHeader_TREE:
		var names []string
		updates, names, err = s.receiveTree(stream, root)
		var bundle bool
		if err == nil {
			bundle, err = cabingest.HasDescriptions(root.FS(), names)
		}
		if bundle {
			// A tree with descriptions is a bundle: checked as one.
			var b *cabingest.Bundle
			if b, err = cabingest.OpenTreeBundle(ctx, spool, h.GetName()); err == nil {
				defer b.Close()
				updates = b.Updates
			}
		}
	case pb.ImportHeader_CABINET, pb.ImportHeader_RPM:
		if s.cfg.Bundles == nil {
			return status.Errorf(codes.Unimplemented, "this server cannot import %s files", strings.ToLower(h.GetKind().String()))
		}
		if err = s.receiveFile(stream, root, "bundle"); err != nil {
			return err
		}
		var cleanup func()
		kind := Cabinet
		if h.GetKind() == pb.ImportHeader_RPM {
			kind = RPM
		}
		updates, cleanup, err = s.cfg.Bundles(ctx, spool+"/bundle", h.GetName(), kind)
		if cleanup != nil {
			defer cleanup()
		}
	default:
		return fmt.Errorf("%w: unknown import kind %v", errInvalid, h.GetKind())
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", h.GetName(), err)
	}
	results, err := s.st.Import(ctx, actor(ctx), updates, store.ImportOptions{})
	if err != nil {
		return fmt.Errorf("import %s: %w", h.GetName(), err)
	}
	reply := &pb.ImportReply{}
	for _, r := range results {
		reply.Results = append(reply.Results, &pb.ImportResult{
			Rule: rulePB(r.Rule), Version: r.Update.Version.String(), Deployed: r.Deployed,
			Unchanged: r.Unchanged, Files: filesPB(r.Update.Files),
		})
	}
	return stream.SendAndClose(reply)
}

// receiveTree writes the files of a tree upload under root and collects
// them into updates; it also returns their paths.
func (s *Server) receiveTree(stream pb.Admin_ImportServer, root *os.Root) ([]firmware.ImportUpdate, []string, error) {
	var (
		tree  cabingest.Tree
		cur   *bufio.Writer
		f     *os.File
		want  int64
		got   int64
		total int64
		files int
		names []string
	)
	finish := func() error {
		if f == nil {
			return nil
		}
		defer func() { f = nil }()
		if err := cur.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%w: %s: received %d bytes, header said %d", errInvalid, f.Name(), got, want)
		}
		return nil
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch p := m.GetPart().(type) {
		case *pb.ImportRequest_File:
			if err := finish(); err != nil {
				return nil, nil, err
			}
			if files++; files > s.cfg.MaxImportFiles {
				return nil, nil, fmt.Errorf("%w: more than %d files", errTooLarge, s.cfg.MaxImportFiles)
			}
			name := p.File.GetPath()
			// ParseTreePath validates every component, so name cannot
			// escape; root enforces it again.
			if _, err := cabingest.ParseTreePath(name); err != nil {
				return nil, nil, err
			}
			names = append(names, name)
			if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
				return nil, nil, err
			}
			if f, err = root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %v", errInvalid, name, err)
			}
			cur = bufio.NewWriterSize(f, 256<<10)
			want, got = p.File.GetSize(), 0
			if err := tree.Add(name, want, func() (io.ReadCloser, error) { return root.Open(name) }); err != nil {
				return nil, nil, err
			}
		case *pb.ImportRequest_Data:
			if f == nil {
				return nil, nil, fmt.Errorf("%w: data before a file header", errInvalid)
			}
			got += int64(len(p.Data))
			if total += int64(len(p.Data)); total > s.cfg.MaxImportBytes {
				return nil, nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, s.cfg.MaxImportBytes)
			}
			if got > want {
				return nil, nil, fmt.Errorf("%w: file longer than its header said (%d bytes)", errInvalid, want)
			}
			if _, err := cur.Write(p.Data); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%w: unexpected message in a tree upload", errInvalid)
		}
	}
	if err := finish(); err != nil {
		return nil, nil, err
	}
	updates, err := tree.Updates()
	return updates, names, err
}

// receiveFile writes a single-file upload to name under root.
func (s *Server) receiveFile(stream pb.Admin_ImportServer, root *os.Root, name string) error {
	f, err := root.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	var total int64
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
		data := m.GetData()
		if data == nil {
			f.Close()
			return fmt.Errorf("%w: a bundle upload carries only data", errInvalid)
		}
		if total += int64(len(data)); total > s.cfg.MaxImportBytes {
			f.Close()
			return fmt.Errorf("%w: more than %d bytes", errTooLarge, s.cfg.MaxImportBytes)
		}
		if _, err := w.Write(data); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AddTestDevice implements Admin.AddTestDevice.
func (s *Server) AddTestDevice(ctx context.Context, req *pb.TestDevice) (*pb.TestDevice, error) {
	d := testDeviceFromPB(req)
	if d.MAC == "" && d.Serial == "" {
		return nil, fmt.Errorf("%w: name the test device by --mac or --serial", errInvalid)
	}
	if d.MAC != "" {
		m, err := firmware.NormalizeMAC(d.MAC)
		if err != nil {
			return nil, err
		}
		d.MAC = m
	}
	d.Added = s.cfg.Now()
	if err := s.st.AddTestDevice(ctx, actor(ctx), d); err != nil {
		return nil, err
	}
	return testDevicePB(d), nil
}

// ListTestDevices implements Admin.ListTestDevices.
func (s *Server) ListTestDevices(ctx context.Context, _ *pb.ListTestDevicesRequest) (*pb.ListTestDevicesReply, error) {
	ds, err := s.st.TestDevices(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListTestDevicesReply{}
	for _, d := range ds {
		r.Devices = append(r.Devices, testDevicePB(d))
	}
	return r, nil
}

// RemoveTestDevice implements Admin.RemoveTestDevice.
func (s *Server) RemoveTestDevice(ctx context.Context, req *pb.RemoveTestDeviceRequest) (*pb.RemoveTestDeviceReply, error) {
	if err := s.st.RemoveTestDevice(ctx, actor(ctx), req.GetKey()); err != nil {
		return nil, err
	}
	return &pb.RemoveTestDeviceReply{}, nil
}

// PutAccount implements Admin.PutAccount.
func (s *Server) PutAccount(ctx context.Context, req *pb.PutAccountRequest) (*pb.Account, error) {
	if err := firmware.ValidAccountName(req.GetName()); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if len(req.GetNtHash()) != 16 {
		return nil, fmt.Errorf("%w: the NT hash must be 16 bytes", errInvalid)
	}
	now := s.cfg.Now()
	a := firmware.Account{Name: req.GetName(), Created: now, Updated: now}
	if old, err := s.st.Account(ctx, req.GetName()); err == nil {
		if !req.GetReplace() {
			return nil, fmt.Errorf("account %q: %w; to set a new password use accounts passwd", old.Name, store.ErrExists)
		}
		a.Name, a.Created, a.Disabled = old.Name, old.Created, old.Disabled
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	} else if req.GetReplace() {
		return nil, err
	}
	copy(a.NTHash[:], req.GetNtHash())
	if err := s.st.PutAccount(ctx, actor(ctx), a); err != nil {
		return nil, err
	}
	return accountPB(a), nil
}

// ListAccounts implements Admin.ListAccounts.
func (s *Server) ListAccounts(ctx context.Context, _ *pb.ListAccountsRequest) (*pb.ListAccountsReply, error) {
	as, err := s.st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListAccountsReply{}
	for _, a := range as {
		r.Accounts = append(r.Accounts, accountPB(a))
	}
	return r, nil
}

// SetAccountDisabled implements Admin.SetAccountDisabled.
func (s *Server) SetAccountDisabled(ctx context.Context, req *pb.SetAccountDisabledRequest) (*pb.Account, error) {
	if err := s.st.SetAccountDisabled(ctx, actor(ctx), req.GetName(), req.GetDisabled()); err != nil {
		return nil, err
	}
	a, err := s.st.Account(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return accountPB(a), nil
}

// RemoveAccount implements Admin.RemoveAccount.
func (s *Server) RemoveAccount(ctx context.Context, req *pb.RemoveAccountRequest) (*pb.RemoveAccountReply, error) {
	if err := s.st.RemoveAccount(ctx, actor(ctx), req.GetName()); err != nil {
		return nil, err
	}
	return &pb.RemoveAccountReply{}, nil
}

// ListDevices implements Admin.ListDevices.
func (s *Server) ListDevices(ctx context.Context, _ *pb.ListDevicesRequest) (*pb.ListDevicesReply, error) {
	// Check-ins are written in batches; show every one received so far.
	if err := s.st.Flush(ctx); err != nil {
		return nil, err
	}
	ds, err := s.st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListDevicesReply{Devices: make([]*pb.Device, len(ds))}
	for i, d := range ds {
		r.Devices[i] = devicePB(d)
	}
	return r, nil
}

// History implements Admin.History.
func (s *Server) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryReply, error) {
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	es, err := s.st.History(ctx, req.GetSince(), limit)
	if err != nil {
		return nil, err
	}
	r := &pb.HistoryReply{}
	for _, e := range es {
		r.Events = append(r.Events, eventPB(e))
	}
	return r, nil
}

// Backup implements Admin.Backup.
func (s *Server) Backup(_ *pb.BackupRequest, stream pb.Admin_BackupServer) error {
	w := bufio.NewWriterSize(chunkWriter{stream}, 1<<20)
	if _, err := s.st.Backup(stream.Context(), w); err != nil {
		return err
	}
	return w.Flush()
}

type chunkWriter struct{ stream pb.Admin_BackupServer }

func (c chunkWriter) Write(p []byte) (int, error) {
	if err := c.stream.Send(&pb.BackupChunk{Data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}
