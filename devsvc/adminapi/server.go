// Package adminapi is the admin side of the service: a gRPC API over mutual
// TLS for managing rules, imports, test devices, accounts, sites, rollouts,
// alarms and the device inventory, and the client the devsvc command line
// uses. It is the only
// package that imports gRPC.
//
// Every call is authenticated: the TLS layer requires a client certificate
// issued by the service's CA (devsvc init writes one), and the service
// layer checks, on every call, that its registry of admin certificates has
// it and that it is not revoked (service.CertPrincipal). The certificate's
// common name is the actor recorded in the history. Errors are
// mapped to gRPC status codes in one place (statusError) and carry a message
// that says what to do.
package adminapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// DefaultHandshakeTimeout is Config.HandshakeTimeout's default.
const DefaultHandshakeTimeout = 10 * time.Second

// Config configures a Server. The zero value works.
type Config struct {
	Logger *slog.Logger // nil: discard
	// HandshakeTimeout bounds the TLS handshake and the HTTP/2 preface of
	// a new connection: one that has not finished them by then is closed.
	// Default 10 s.
	HandshakeTimeout time.Duration
}

// Server implements the Admin service: a gRPC transport over the service
// layer. It authenticates the caller, calls the one operation, and maps
// its errors to gRPC codes.
type Server struct {
	pb.UnimplementedAdminServer
	cfg       Config
	svc       *service.Service
	clientCAs *x509.CertPool // the CAs client certificates must chain to
	// shutdown is closed by Shutdown: the long-lived streams (a replica's
	// Follow) end, so that a graceful stop does not wait for them.
	shutdown     chan struct{}
	shutdownOnce sync.Once
}

// NewServer returns the admin API of svc.
func NewServer(svc *service.Service, cfg Config) *Server {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, svc: svc, shutdown: make(chan struct{})}
}

// Shutdown ends the streams that last until their client goes (a
// replica's Follow): call it before the gRPC server's GracefulStop, which
// waits for every call to end. The replicas follow again once the server
// is back.
func (s *Server) Shutdown() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

// GRPCServer returns a gRPC server with the Admin service and server
// reflection (so grpcurl works) registered. tlsConfig must verify client
// certificates against the service CA: require them, or, when admins may
// sign in with a directory account, verify them if given.
//
// The TLS layer only requests the client certificate; authenticate
// verifies it against tlsConfig.ClientCAs, so a certificate of another CA
// (or none) is refused with a gRPC status that says why, rather than a TLS
// alert the client may not get to read before its first write fails.
func (s *Server) GRPCServer(tlsConfig *tls.Config) *grpc.Server {
	conf := tlsConfig.Clone()
	s.clientCAs = conf.ClientCAs
	conf.ClientAuth = tls.RequestClientCert
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(conf)),
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
		grpc.MaxRecvMsgSize(4<<20),
		grpc.ConnectionTimeout(s.cfg.HandshakeTimeout),
	)
	pb.RegisterAdminServer(g, s)
	pb.RegisterReplicationServer(g, replicationServer{s: s})
	pb.RegisterReplicasServer(g, replicasServer{s: s})
	reflection.Register(g)
	return g
}

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	p, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		s.log(ctx, info.FullMethod, p.Name, start, err)
		return nil, statusError(err)
	}
	resp, err := h(service.WithPrincipal(ctx, p), req)
	s.log(ctx, info.FullMethod, p.Name, start, err)
	if err != nil {
		return nil, statusError(err)
	}
	return resp, nil
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a principalStream) Context() context.Context { return a.ctx }

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	p, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		s.log(ss.Context(), info.FullMethod, p.Name, start, err)
		return statusError(err)
	}
	err = h(srv, principalStream{ss, service.WithPrincipal(ss.Context(), p)})
	s.log(ss.Context(), info.FullMethod, p.Name, start, err)
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

// statusError maps an error to a gRPC status: the one place that knows
// which error of the service layer (and of the store and vocabulary it
// returns) is which code. The message is the error's own, which says what
// went wrong and what to do.
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
	case errors.Is(err, service.ErrUnauthenticated), errors.Is(err, service.ErrBadCredentials):
		code = codes.Unauthenticated
	case errors.Is(err, service.ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, store.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrFollower),
		errors.Is(err, store.ErrNotCheckedIn), errors.Is(err, store.ErrNotOffered),
		errors.Is(err, store.ErrRolloutLive),
		errors.Is(err, firmware.ErrRolloutNotRunning),
		errors.Is(err, firmware.ErrRolloutNotPaused),
		errors.Is(err, firmware.ErrRolloutEnded),
		errors.Is(err, firmware.ErrSchedule),
		errors.Is(err, firmware.ErrNoPending),
		errors.Is(err, firmware.ErrNothingToRestore),
		errors.Is(err, firmware.ErrNotApproved),
		errors.Is(err, firmware.ErrAlreadyApproved),
		errors.Is(err, firmware.ErrRolloutNotRunning),
		errors.Is(err, firmware.ErrRolloutNotPaused),
		errors.Is(err, firmware.ErrRolloutEnded):
		code = codes.FailedPrecondition
	case errors.Is(err, service.ErrInvalid),
		errors.Is(err, store.ErrIntegrity),
		errors.Is(err, firmware.ErrVersion),
		errors.Is(err, firmware.ErrIdentity),
		errors.Is(err, firmware.ErrMAC),
		errors.Is(err, firmware.ErrPlan),
		errors.Is(err, firmware.ErrShare),
		errors.Is(err, firmware.ErrSite),
		errors.Is(err, firmware.ErrReplica),
		errors.Is(err, firmware.ErrWindow),
		errors.Is(err, firmware.ErrCertSerial):
		code = codes.InvalidArgument
	case errors.Is(err, service.ErrTooLarge),
		errors.Is(err, store.ErrUnavailable): // the disk is full, mostly
		code = codes.ResourceExhausted
	}
	return status.Error(code, err.Error())
}

// Status implements Admin.Status.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusReply, error) {
	st, err := s.svc.Status(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.StatusReply{
		Version: st.Version, Started: ts(st.Started), DataDir: st.DataDir,
		Rules: int64(st.Stats.Rules), Updates: int64(st.Stats.Updates), Devices: int64(st.Stats.Devices),
		TestDevices: int64(st.Stats.TestDevices), Accounts: int64(st.Stats.Accounts), Seq: st.Stats.Seq,
		SchemaVersion: int32(st.Stats.SchemaVersion), DbBytes: st.Stats.DBBytes, Actor: st.Actor, Warnings: st.Warnings,
		Inventory:  &pb.InventoryStatus{Writable: st.Inventory.Writable, Held: int64(st.Inventory.Held)},
		OpenAlarms: int64(st.Alarms),
	}
	if !st.Inventory.Writable {
		r.Inventory.Since = ts(st.Inventory.Since)
		if st.Inventory.Err != nil {
			r.Inventory.Error = st.Inventory.Err.Error()
		}
	}
	for _, l := range st.Listeners {
		r.Listeners = append(r.Listeners, &pb.Listener{Name: l.Name, Address: l.Address})
	}
	now := s.svc.Now()
	for _, c := range st.Certificates {
		r.Certificates = append(r.Certificates, &pb.Certificate{
			Name: c.Name, Role: c.Role, Subject: c.Subject, Names: c.Names, NotAfter: ts(c.NotAfter),
			DaysLeft: int32(c.NotAfter.Sub(now) / (24 * time.Hour)), Sha256: c.SHA256,
		})
	}
	return r, nil
}

// ListRules implements Admin.ListRules.
func (s *Server) ListRules(ctx context.Context, _ *pb.ListRulesRequest) (*pb.ListRulesReply, error) {
	rules, err := s.svc.Rules(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.svc.RuleCounts(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListRulesReply{Rules: make([]*pb.Rule, len(rules))}
	for i, rule := range rules {
		r.Rules[i] = withCounts(rulePB(rule), counts)
	}
	return r, nil
}

// withCounts adds the rule's device counts to m.
func withCounts(m *pb.Rule, counts map[string]store.RuleCount) *pb.Rule {
	c := counts[m.GetId()]
	m.Devices, m.OnApproved, m.OnPending = int64(c.Devices), int64(c.Approved), int64(c.Pending)
	return m
}

// GetRule implements Admin.GetRule.
func (s *Server) GetRule(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	m, err := rule(s.svc.Rule(ctx, req.GetRule()))
	if err != nil {
		return nil, err
	}
	counts, err := s.svc.RuleCounts(ctx)
	if err != nil {
		return nil, err
	}
	return withCounts(m, counts), nil
}

func rule(r firmware.Rule, err error) (*pb.Rule, error) {
	if err != nil {
		return nil, err
	}
	return rulePB(r), nil
}

// Approve implements Admin.Approve.
func (s *Server) Approve(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return rule(s.svc.Approve(ctx, req.GetRule()))
}

// Reject implements Admin.Reject.
func (s *Server) Reject(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return rule(s.svc.Reject(ctx, req.GetRule()))
}

// Restore implements Admin.Restore.
func (s *Server) Restore(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return rule(s.svc.Restore(ctx, req.GetRule()))
}

// Withdraw implements Admin.Withdraw.
func (s *Server) Withdraw(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return rule(s.svc.Withdraw(ctx, req.GetRule()))
}

// Remove implements Admin.Remove.
func (s *Server) Remove(ctx context.Context, req *pb.RuleRequest) (*pb.Rule, error) {
	return rule(s.svc.Remove(ctx, req.GetRule()))
}

// Schedule implements Admin.Schedule.
func (s *Server) Schedule(ctx context.Context, req *pb.ScheduleRequest) (*pb.Rule, error) {
	return rule(s.svc.Schedule(ctx, req.GetRule(), fromTS(req.GetAt())))
}

// Purge implements Admin.Purge.
func (s *Server) Purge(ctx context.Context, _ *pb.PurgeRequest) (*pb.PurgeReply, error) {
	removed, err := s.svc.Purge(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.PurgeReply{}
	for _, u := range removed {
		r.Removed = append(r.Removed, updatePB(u))
	}
	return r, nil
}

// Import implements Admin.Import: it spools the upload into a
// service.Upload, then imports it in one all-or-nothing transaction. The
// content decides what the bundle is; the header's kind only says how
// the bytes arrive (files of a tree, or one file).
func (s *Server) Import(stream pb.Admin_ImportServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return fmt.Errorf("%w: an import starts with a header naming its kind", service.ErrInvalid)
	}
	up, err := s.svc.NewUpload(ctx, h.GetName())
	if err != nil {
		return err
	}
	defer up.Close()
	switch h.GetKind() {
	case pb.ImportHeader_TREE:
		err = receiveTree(stream, up)
	case pb.ImportHeader_CABINET, pb.ImportHeader_RPM:
		err = receiveFile(stream, up)
	default:
		err = fmt.Errorf("%w: unknown import kind %v", service.ErrInvalid, h.GetKind())
	}
	if err != nil {
		return err
	}
	results, err := s.svc.Import(ctx, up, nil)
	if err != nil {
		return err
	}
	reply := &pb.ImportReply{}
	for _, r := range results {
		reply.Results = append(reply.Results, &pb.ImportResult{
			Rule: rulePB(r.Rule), Version: r.Update.Version.String(), Deployed: r.Deployed,
			Unchanged: r.Unchanged, Files: filesPB(r.Update.Files),
			CancelledApproval: ts(r.CancelledApproval), CancelledVersion: r.CancelledVersion.String(),
		})
	}
	return stream.SendAndClose(reply)
}

// receiveTree writes the files of a tree upload into up: each file's
// header, then its data.
func receiveTree(stream pb.Admin_ImportServer, up *service.Upload) error {
	var cur io.WriteCloser
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch p := m.GetPart().(type) {
		case *pb.ImportRequest_File:
			if cur != nil {
				if err := cur.Close(); err != nil {
					return err
				}
			}
			if cur, err = up.TreeFile(p.File.GetPath(), p.File.GetSize()); err != nil {
				return err
			}
		case *pb.ImportRequest_Data:
			if cur == nil {
				return fmt.Errorf("%w: data before a file header", service.ErrInvalid)
			}
			if _, err := cur.Write(p.Data); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unexpected message in a tree upload", service.ErrInvalid)
		}
	}
	if cur == nil {
		return nil
	}
	err := cur.Close()
	cur = nil
	return err
}

// receiveFile writes a single-file upload into up.
func receiveFile(stream pb.Admin_ImportServer, up *service.Upload) error {
	w, err := up.File()
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		data := m.GetData()
		if data == nil {
			return fmt.Errorf("%w: a bundle upload carries only data", service.ErrInvalid)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return w.Close()
}

// AddTestDevice implements Admin.AddTestDevice.
func (s *Server) AddTestDevice(ctx context.Context, req *pb.TestDevice) (*pb.TestDevice, error) {
	d, err := s.svc.AddTestDevice(ctx, testDeviceFromPB(req))
	if err != nil {
		return nil, err
	}
	return testDevicePB(d), nil
}

// ListTestDevices implements Admin.ListTestDevices.
func (s *Server) ListTestDevices(ctx context.Context, _ *pb.ListTestDevicesRequest) (*pb.ListTestDevicesReply, error) {
	ds, err := s.svc.TestDevices(ctx)
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
	if err := s.svc.RemoveTestDevice(ctx, req.GetKey()); err != nil {
		return nil, err
	}
	return &pb.RemoveTestDeviceReply{}, nil
}

// PutAccount implements Admin.PutAccount.
func (s *Server) PutAccount(ctx context.Context, req *pb.PutAccountRequest) (*pb.Account, error) {
	pw := service.AccountPassword{Length: int(req.GetPasswordLength())}
	if copy(pw.NTHash[:], req.GetNtHash()) != len(pw.NTHash) || len(req.GetNtHash()) != len(pw.NTHash) {
		return nil, fmt.Errorf("%w: the NT hash must be 16 bytes", service.ErrInvalid)
	}
	a, err := s.svc.PutAccount(ctx, req.GetName(), pw, req.GetReplace())
	if err != nil {
		return nil, err
	}
	return accountPB(a), nil
}

// ListAccounts implements Admin.ListAccounts.
func (s *Server) ListAccounts(ctx context.Context, _ *pb.ListAccountsRequest) (*pb.ListAccountsReply, error) {
	as, err := s.svc.Accounts(ctx)
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
	a, err := s.svc.SetAccountDisabled(ctx, req.GetName(), req.GetDisabled())
	if err != nil {
		return nil, err
	}
	return accountPB(a), nil
}

// RemoveAccount implements Admin.RemoveAccount.
func (s *Server) RemoveAccount(ctx context.Context, req *pb.RemoveAccountRequest) (*pb.RemoveAccountReply, error) {
	if err := s.svc.RemoveAccount(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.RemoveAccountReply{}, nil
}

// History implements Admin.History.
func (s *Server) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryReply, error) {
	es, err := s.svc.History(ctx, req.GetSince(), int(req.GetLimit()))
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
	if _, err := s.svc.Backup(stream.Context(), w); err != nil {
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

// IssueAdminCertificate implements Admin.IssueAdminCertificate.
func (s *Server) IssueAdminCertificate(ctx context.Context, req *pb.IssueAdminCertificateRequest) (*pb.IssueAdminCertificateReply, error) {
	c, certPEM, err := s.svc.IssueAdminCert(ctx, req.GetName(), service.Role(req.GetRole()), req.GetPublicKey())
	if err != nil {
		return nil, err
	}
	return &pb.IssueAdminCertificateReply{Certificate: adminCertPB(c), CertificatePem: certPEM}, nil
}

// ListAdminCertificates implements Admin.ListAdminCertificates.
func (s *Server) ListAdminCertificates(ctx context.Context, _ *pb.ListAdminCertificatesRequest) (*pb.ListAdminCertificatesReply, error) {
	cs, err := s.svc.AdminCerts(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListAdminCertificatesReply{}
	for _, c := range cs {
		r.Certificates = append(r.Certificates, adminCertPB(c))
	}
	return r, nil
}

// RevokeAdminCertificate implements Admin.RevokeAdminCertificate.
func (s *Server) RevokeAdminCertificate(ctx context.Context, req *pb.RevokeAdminCertificateRequest) (*pb.AdminCertificate, error) {
	c, err := s.svc.RevokeAdminCert(ctx, req.GetCertificate(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return adminCertPB(c), nil
}
