package adminapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// Client calls the admin API. It speaks the firmware vocabulary; the wire
// messages stay inside this package.
type Client struct {
	addr string
	conn *grpc.ClientConn
	c    pb.AdminClient
	// tlsErr is the last TLS failure of a connection (nil after a
	// handshake that succeeded): it tells a server that refused the
	// client certificate, or that this client does not trust, from one
	// that cannot be reached.
	tlsErr atomic.Pointer[error]
}

// Dial returns a client for the admin API at addr, authenticating with
// tlsConfig (the admin client certificate, and the service CA as the only
// root). It does not connect until the first call.
func Dial(addr string, tlsConfig *tls.Config) (*Client, error) {
	return DialUser(addr, tlsConfig, "", "")
}

// DialUser is Dial for an admin who signs in with a directory account
// (user and password, sent with every call over TLS) rather than a client
// certificate. With user empty it is Dial.
func DialUser(addr string, tlsConfig *tls.Config, user, password string) (*Client, error) {
	c := &Client{addr: addr}
	if len(tlsConfig.Certificates) > 0 && tlsConfig.GetClientCertificate == nil {
		// Present the certificate whatever CAs the server names, so a
		// server of another CA says it refuses it, rather than the client
		// quietly sending none.
		tlsConfig = tlsConfig.Clone()
		cert := &tlsConfig.Certificates[0]
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(recordingCreds{credentials.NewTLS(tlsConfig), &c.tlsErr}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256 << 20)),
	}
	if user != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(newBasicCreds(user, password)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", addr, err)
	}
	c.conn, c.c = conn, pb.NewAdminClient(conn)
	return c, nil
}

// recordingCreds are TLS transport credentials that record in last why a
// connection failed in TLS: the handshake's own error (this client does
// not trust the server's certificate), or an alert the server sent after
// it (with TLS 1.3 the server checks the client certificate after the
// client's side of the handshake is done, so its refusal arrives as the
// first read's "remote error").
type recordingCreds struct {
	credentials.TransportCredentials
	last *atomic.Pointer[error]
}

func (r recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		r.last.Store(&err)
		return nil, nil, err
	}
	r.last.Store(nil)
	return &recordingConn{Conn: conn, last: r.last}, info, nil
}

func (r recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{r.TransportCredentials.Clone(), r.last}
}

// recordingConn records a TLS alert the server sends.
type recordingConn struct {
	net.Conn
	last *atomic.Pointer[error]
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && isRemoteAlert(err) {
		c.last.Store(&err)
	}
	return n, err
}

// isRemoteAlert reports whether err is a TLS alert the peer sent.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Error is an error the server returned: its gRPC code and its message,
// which says what went wrong and what to do.
type Error struct {
	Code codes.Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is lets errors.Is match a server error against the status codes' meaning
// for callers that care: ErrNotFound, ErrRefused.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == codes.NotFound
	case ErrRefused:
		return e.Code == codes.FailedPrecondition || e.Code == codes.InvalidArgument || e.Code == codes.AlreadyExists
	}
	return false
}

// Client-side error classes.
var (
	// ErrNotFound is matched by errors naming something that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrRefused is matched by errors for requests the server refused as
	// invalid in the current state.
	ErrRefused = errors.New("refused")
)

func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		var verr *tls.CertificateVerificationError
		switch tlsErr := c.tlsErr.Load(); {
		case tlsErr != nil && isRemoteAlert(*tlsErr):
			return &Error{codes.Unauthenticated, fmt.Sprintf("the admin API at %s refused the client certificate (%v): it takes only admin certificates of its own CA that have not expired. Use the admin certificate of that service's data directory (--data DIR), or one made with devsvc certs issue (--cert, --key and --ca)", c.addr, *tlsErr)}
		case tlsErr != nil && errors.As(*tlsErr, &verr):
			return &Error{codes.Unavailable, fmt.Sprintf("the server at %s presented a certificate this client does not trust (%v): is it this service? Pass the CA of the service it is with --ca (DIR/certs/ca.pem of its data directory)", c.addr, verr)}
		}
		return &Error{st.Code(), fmt.Sprintf("cannot reach the admin API at %s (%s): is `devsvc serve` running there? Use --server to name another address", c.addr, st.Message())}
	case codes.Unauthenticated, codes.PermissionDenied:
		return &Error{st.Code(), fmt.Sprintf("the admin API at %s refused these credentials: %s", c.addr, st.Message())}
	}
	return &Error{st.Code(), st.Message()}
}

// Listener is one address the service listens on, in Status.
type Listener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// CertInfo describes one certificate, in Status.
type CertInfo struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Subject  string    `json:"subject"`
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"notAfter"`
	SHA256   string    `json:"sha256"`
}

// Status is what Client.Status reports.
type Status struct {
	Version      string           `json:"version"`
	Started      time.Time        `json:"started"`
	DataDir      string           `json:"dataDir"`
	Listeners    []Listener       `json:"listeners"`
	Certificates []CertStatus     `json:"certificates"`
	Counts       map[string]int64 `json:"counts"`
	Seq          uint64           `json:"seq"`
	Schema       int              `json:"schemaVersion"`
	DBBytes      int64            `json:"dbBytes"`
	Actor        string           `json:"actor"`
	Warnings     []string         `json:"warnings"`
	Inventory    InventoryStatus  `json:"inventory"`
	// Alarms counts the open alarms (Alarms lists them).
	Alarms int64 `json:"openAlarms"`
}

// InventoryStatus says whether the device inventory can be written, in
// Status. While it cannot, check-ins and reports are answered 503.
type InventoryStatus struct {
	Writable bool      `json:"writable"`
	Since    time.Time `json:"since,omitzero"` // when the writes began to fail
	Error    string    `json:"error,omitempty"`
	Held     int64     `json:"held"` // accepted, waiting to be written
}

// CertStatus is one certificate in Status.
type CertStatus struct {
	CertInfo
	DaysLeft int `json:"daysLeft"`
}

// Status returns what runs, where, with which certificates, and counts.
func (c *Client) Status(ctx context.Context) (Status, error) {
	r, err := c.c.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return Status{}, c.wrap(err)
	}
	s := Status{
		Version: r.GetVersion(), Started: fromTS(r.GetStarted()), DataDir: r.GetDataDir(),
		Counts: map[string]int64{"rules": r.GetRules(), "updates": r.GetUpdates(), "devices": r.GetDevices(),
			"testDevices": r.GetTestDevices(), "accounts": r.GetAccounts()},
		Seq: r.GetSeq(), Schema: int(r.GetSchemaVersion()), DBBytes: r.GetDbBytes(), Actor: r.GetActor(), Warnings: r.GetWarnings(),
		Inventory: InventoryStatus{Writable: r.GetInventory().GetWritable(), Error: r.GetInventory().GetError(), Held: r.GetInventory().GetHeld()},
		Alarms:    r.GetOpenAlarms(),
	}
	if inv := r.GetInventory(); inv.GetSince() != nil {
		s.Inventory.Since = fromTS(inv.GetSince())
	}
	for _, l := range r.GetListeners() {
		s.Listeners = append(s.Listeners, Listener{Name: l.GetName(), Address: l.GetAddress()})
	}
	for _, ce := range r.GetCertificates() {
		s.Certificates = append(s.Certificates, CertStatus{CertInfo: CertInfo{
			Name: ce.GetName(), Role: ce.GetRole(), Subject: ce.GetSubject(), Names: ce.GetNames(),
			NotAfter: fromTS(ce.GetNotAfter()), SHA256: ce.GetSha256()}, DaysLeft: int(ce.GetDaysLeft())})
	}
	return s, nil
}

// Rules lists the rules.
func (c *Client) Rules(ctx context.Context) ([]firmware.Rule, error) {
	r, err := c.c.ListRules(ctx, &pb.ListRulesRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetRules(), ruleFromPB), nil
}

// Rule returns one rule, named by ID or identity path.
func (c *Client) Rule(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.GetRule, ref)
}

func (c *Client) ruleCall(ctx context.Context, call func(context.Context, *pb.RuleRequest, ...grpc.CallOption) (*pb.Rule, error), ref string) (firmware.Rule, error) {
	r, err := call(ctx, &pb.RuleRequest{Rule: ref})
	if err != nil {
		return firmware.Rule{}, c.wrap(err)
	}
	return ruleFromPB(r), nil
}

// Approve approves a rule's pending version.
func (c *Client) Approve(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.Approve, ref)
}

// Reject drops a rule's pending version.
func (c *Client) Reject(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.Reject, ref)
}

// Restore rolls a rule back to its restore version.
func (c *Client) Restore(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.Restore, ref)
}

// Withdraw stops offering a rule's approved version.
func (c *Client) Withdraw(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.Withdraw, ref)
}

// Remove deletes a rule.
func (c *Client) Remove(ctx context.Context, ref string) (firmware.Rule, error) {
	return c.ruleCall(ctx, c.c.Remove, ref)
}

// Schedule approves a rule's pending version at a time; the zero time
// cancels the schedule.
func (c *Client) Schedule(ctx context.Context, ref string, at time.Time) (firmware.Rule, error) {
	r, err := c.c.Schedule(ctx, &pb.ScheduleRequest{Rule: ref, At: ts(at)})
	if err != nil {
		return firmware.Rule{}, c.wrap(err)
	}
	return ruleFromPB(r), nil
}

// ImportResult is what an import did for one identity.
type ImportResult struct {
	Rule      firmware.Rule    `json:"rule"`
	Version   firmware.Version `json:"version"`
	Deployed  bool             `json:"deployed"`
	Unchanged bool             `json:"unchanged"`
	Files     []firmware.Image `json:"files"`
	// CancelledApproval, when set, is when the pending version
	// CancelledVersion, which this import replaced, was to be approved:
	// the import cancelled that scheduled approval.
	CancelledApproval time.Time        `json:"cancelledApproval,omitzero"`
	CancelledVersion  firmware.Version `json:"cancelledVersion,omitzero"`
}

// Progress is called as an upload goes, with bytes sent and the total.
type Progress func(done, total int64)

const chunkSize = 1 << 20

// ImportTree uploads the update tree under dir (the layout
// DeviceType/Vendor/Model/Revision/Locale/Version/file, optionally under a
// DeviceUpdateFiles directory) and imports it.
func (c *Client) ImportTree(ctx context.Context, dir string, progress Progress) ([]ImportResult, error) {
	type file struct {
		rel  string
		size int64
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (links are not imported)", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, file{filepath.ToSlash(rel), info.Size()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s has no files: want DeviceType/Vendor/Model/Revision/Locale/Version/file", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	stream, err := c.c.Import(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	send := c.sender(stream)
	if err := send(&pb.ImportRequest{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: pb.ImportHeader_TREE, Name: dir, Size: total}}}); err != nil {
		return nil, err
	}
	var done int64
	buf := make([]byte, chunkSize)
	for _, f := range files {
		if err := send(&pb.ImportRequest{Part: &pb.ImportRequest_File{File: &pb.FileHeader{Path: f.rel, Size: f.size}}}); err != nil {
			return nil, err
		}
		if err := c.sendFile(filepath.Join(dir, filepath.FromSlash(f.rel)), buf, send, &done, total, progress); err != nil {
			return nil, err
		}
	}
	return c.closeImport(stream)
}

// ImportBundle uploads a bundle file (a UCUpdates.cab cabinet or an RPM,
// told apart by its content) and imports it.
func (c *Client) ImportBundle(ctx context.Context, file string, progress Progress) ([]ImportResult, error) {
	kind, err := bundleKind(file)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	stream, err := c.c.Import(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	send := c.sender(stream)
	if err := send(&pb.ImportRequest{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: kind, Name: filepath.Base(file), Size: info.Size()}}}); err != nil {
		return nil, err
	}
	var done int64
	if err := c.sendFile(file, make([]byte, chunkSize), send, &done, info.Size(), progress); err != nil {
		return nil, err
	}
	return c.closeImport(stream)
}

// bundleKind tells a cabinet from an RPM by the first bytes: a cabinet
// starts with MSCF (or is embedded in an .exe, which starts with MZ), an RPM
// with its lead magic ED AB EE DB.
func bundleKind(file string) (pb.ImportHeader_Kind, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return 0, fmt.Errorf("%s: too short to be a cabinet or an RPM", file)
	}
	switch {
	case string(magic[:]) == "MSCF", string(magic[:2]) == "MZ":
		return pb.ImportHeader_CABINET, nil
	case magic == [4]byte{0xED, 0xAB, 0xEE, 0xDB}:
		return pb.ImportHeader_RPM, nil
	}
	return 0, fmt.Errorf("%s is neither a cabinet (.cab) nor an RPM package; to import a directory tree name the directory", file)
}

func (c *Client) sendFile(name string, buf []byte, send func(*pb.ImportRequest) error, done *int64, total int64, progress Progress) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := send(&pb.ImportRequest{Part: &pb.ImportRequest_Data{Data: buf[:n]}}); err != nil {
				return err
			}
			*done += int64(n)
			if progress != nil {
				progress(*done, total)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sender sends import messages; when the server ends the stream early, the
// error it returns is its reason, which arrives with CloseAndRecv.
func (c *Client) sender(stream pb.Admin_ImportClient) func(*pb.ImportRequest) error {
	return func(m *pb.ImportRequest) error {
		if err := stream.Send(m); err != nil {
			if _, rerr := stream.CloseAndRecv(); rerr != nil {
				return c.wrap(rerr)
			}
			return c.wrap(err)
		}
		return nil
	}
}

func (c *Client) closeImport(stream pb.Admin_ImportClient) ([]ImportResult, error) {
	r, err := stream.CloseAndRecv()
	if err != nil {
		return nil, c.wrap(err)
	}
	out := make([]ImportResult, len(r.GetResults()))
	for i, p := range r.GetResults() {
		out[i] = ImportResult{Rule: ruleFromPB(p.GetRule()), Version: version(p.GetVersion()),
			Deployed: p.GetDeployed(), Unchanged: p.GetUnchanged(), Files: filesFromPB(p.GetFiles()),
			CancelledApproval: fromTS(p.GetCancelledApproval()), CancelledVersion: version(p.GetCancelledVersion())}
	}
	return out, nil
}

// Purge deletes stored updates that no rule refers to any more.
func (c *Client) Purge(ctx context.Context) ([]firmware.Update, error) {
	r, err := c.c.Purge(ctx, &pb.PurgeRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetRemoved(), updateFromPB), nil
}

// AddTestDevice marks a device, by MAC or serial, as a test device.
func (c *Client) AddTestDevice(ctx context.Context, d firmware.TestDevice) (firmware.TestDevice, error) {
	r, err := c.c.AddTestDevice(ctx, testDevicePB(d))
	if err != nil {
		return firmware.TestDevice{}, c.wrap(err)
	}
	return testDeviceFromPB(r), nil
}

// TestDevices lists the test devices.
func (c *Client) TestDevices(ctx context.Context) ([]firmware.TestDevice, error) {
	r, err := c.c.ListTestDevices(ctx, &pb.ListTestDevicesRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetDevices(), testDeviceFromPB), nil
}

// RemoveTestDevice removes a test device by MAC or serial.
func (c *Client) RemoveTestDevice(ctx context.Context, key string) error {
	_, err := c.c.RemoveTestDevice(ctx, &pb.RemoveTestDeviceRequest{Key: key})
	return c.wrap(err)
}

// PutAccount creates (replace false) or sets a new password of (replace
// true) a device sign-in account. Only the password's NT hash and its
// length are sent (service.NewAccountPassword), never the password.
func (c *Client) PutAccount(ctx context.Context, name, password string, replace bool) (firmware.Account, error) {
	pw := service.NewAccountPassword(password)
	r, err := c.c.PutAccount(ctx, &pb.PutAccountRequest{Name: name, NtHash: pw.NTHash[:], PasswordLength: int32(min(pw.Length, math.MaxInt32)), Replace: replace})
	if err != nil {
		return firmware.Account{}, c.wrap(err)
	}
	return accountFromPB(r), nil
}

// Accounts lists the accounts.
func (c *Client) Accounts(ctx context.Context) ([]firmware.Account, error) {
	r, err := c.c.ListAccounts(ctx, &pb.ListAccountsRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetAccounts(), accountFromPB), nil
}

// SetAccountDisabled disables or enables an account.
func (c *Client) SetAccountDisabled(ctx context.Context, name string, disabled bool) (firmware.Account, error) {
	r, err := c.c.SetAccountDisabled(ctx, &pb.SetAccountDisabledRequest{Name: name, Disabled: disabled})
	if err != nil {
		return firmware.Account{}, c.wrap(err)
	}
	return accountFromPB(r), nil
}

// RemoveAccount deletes an account.
func (c *Client) RemoveAccount(ctx context.Context, name string) error {
	_, err := c.c.RemoveAccount(ctx, &pb.RemoveAccountRequest{Name: name})
	return c.wrap(err)
}

// Devices lists the whole device inventory (ListDevices streams it).
func (c *Client) Devices(ctx context.Context) ([]firmware.Device, error) {
	var ds []firmware.Device
	_, err := c.ListDevices(ctx, DeviceFilter{}, func(d store.DeviceRow) error {
		ds = append(ds, d.Device)
		return nil
	})
	return ds, err
}

// History returns catalog events after since, at most limit (0: all).
func (c *Client) History(ctx context.Context, since uint64, limit int) ([]firmware.Event, error) {
	r, err := c.c.History(ctx, &pb.HistoryRequest{Since: since, Limit: int32(limit)})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetEvents(), eventFromPB), nil
}

// Backup writes a backup archive of the server to w (store.Backup: the
// database at one history number and the files of the updates it
// records), and returns the bytes written.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	stream, err := c.c.Backup(ctx, &pb.BackupRequest{})
	if err != nil {
		return 0, c.wrap(err)
	}
	var n int64
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, c.wrap(err)
		}
		k, err := w.Write(m.GetData())
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}

// IssueAdminCertificate has the server issue an admin certificate named
// name with role for the public key pubDER (PKIX DER of an ECDSA P-256
// key; the private key stays here) and record it. It returns the record
// and the certificate as PEM.
func (c *Client) IssueAdminCertificate(ctx context.Context, name, role string, pubDER []byte) (firmware.AdminCert, []byte, error) {
	r, err := c.c.IssueAdminCertificate(ctx, &pb.IssueAdminCertificateRequest{Name: name, Role: role, PublicKey: pubDER})
	if err != nil {
		return firmware.AdminCert{}, nil, c.wrap(err)
	}
	return adminCertFromPB(r.GetCertificate()), r.GetCertificatePem(), nil
}

// AdminCertificates lists the server's registry of admin certificates.
func (c *Client) AdminCertificates(ctx context.Context) ([]firmware.AdminCert, error) {
	r, err := c.c.ListAdminCertificates(ctx, &pb.ListAdminCertificatesRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetCertificates(), adminCertFromPB), nil
}

// RevokeAdminCertificate revokes the admin certificate ref names (serial,
// or the name of one valid certificate), for reason.
func (c *Client) RevokeAdminCertificate(ctx context.Context, ref, reason string) (firmware.AdminCert, error) {
	r, err := c.c.RevokeAdminCertificate(ctx, &pb.RevokeAdminCertificateRequest{Certificate: ref, Reason: reason})
	if err != nil {
		return firmware.AdminCert{}, c.wrap(err)
	}
	return adminCertFromPB(r), nil
}

// convert maps wire messages to the firmware vocabulary.
func convert[P, T any](in []P, f func(P) T) []T {
	out := make([]T, len(in))
	for i, p := range in {
		out[i] = f(p)
	}
	return out
}

// IsUnavailable reports whether err says the admin API could not be reached.
func IsUnavailable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == codes.Unavailable && strings.Contains(e.Msg, "cannot reach")
}
