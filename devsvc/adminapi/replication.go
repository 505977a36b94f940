package adminapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// The primary's side: the Replication service, for replicas.

type replicationServer struct {
	pb.UnimplementedReplicationServer
	s *Server
}

// Follow implements Replication.Follow.
func (r replicationServer) Follow(req *pb.FollowRequest, stream pb.Replication_FollowServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-r.s.shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := r.s.svc.Follow(ctx, req.GetSince(), req.GetSnapshot(), func(m replica.Message) error {
		return stream.Send(followPB(m))
	})
	select {
	case <-r.s.shutdown:
		return status.Error(codes.Unavailable, "the primary is stopping: follow again once it is back")
	default:
	}
	return err
}

func recordsPB(rs []store.Record) []*pb.FeedRecord {
	out := make([]*pb.FeedRecord, len(rs))
	for i, r := range rs {
		out[i] = &pb.FeedRecord{Bucket: r.Bucket, Key: r.Key, Value: r.Value, Delete: r.Delete}
	}
	return out
}

func recordsFromPB(rs []*pb.FeedRecord) []store.Record {
	out := make([]store.Record, len(rs))
	for i, r := range rs {
		out[i] = store.Record{Bucket: r.GetBucket(), Key: r.GetKey(), Value: r.GetValue(), Delete: r.GetDelete()}
	}
	return out
}

func followPB(m replica.Message) *pb.FollowReply {
	out := &pb.FollowReply{Head: m.Head, Time: ts(m.Time)}
	if s := m.Snapshot; s != nil {
		out.Snapshot = &pb.SnapshotPart{Seq: s.Seq, Records: recordsPB(s.Records), Last: s.Last}
	}
	for _, c := range m.Changes {
		out.Changes = append(out.Changes, &pb.FeedChange{Seq: c.Seq, Records: recordsPB(c.Records)})
	}
	return out
}

func followFromPB(p *pb.FollowReply) replica.Message {
	m := replica.Message{Head: p.GetHead(), Time: fromTS(p.GetTime())}
	if s := p.GetSnapshot(); s != nil {
		m.Snapshot = &replica.SnapshotPart{Seq: s.GetSeq(), Records: recordsFromPB(s.GetRecords()), Last: s.GetLast()}
	}
	for _, c := range p.GetChanges() {
		m.Changes = append(m.Changes, store.Change{Seq: c.GetSeq(), Records: recordsFromPB(c.GetRecords())})
	}
	return m
}

// fileChunkSize is the size of FetchFile's messages.
const fileChunkSize = 256 << 10

// FetchFile implements Replication.FetchFile.
func (r replicationServer) FetchFile(req *pb.FetchFileRequest, stream pb.Replication_FetchFileServer) error {
	sha, err := sha256Of(req.GetSha256())
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fileChunks{stream}, fileChunkSize)
	if _, err := r.s.svc.FetchFile(stream.Context(), sha, req.GetOffset(), w); err != nil {
		return err
	}
	return w.Flush()
}

func sha256Of(b []byte) ([32]byte, error) {
	if len(b) != 32 {
		return [32]byte{}, fmt.Errorf("%w: a SHA-256 has 32 bytes, not %d", service.ErrInvalid, len(b))
	}
	return [32]byte(b), nil
}

type fileChunks struct {
	stream pb.Replication_FetchFileServer
}

func (f fileChunks) Write(p []byte) (int, error) {
	if err := f.stream.Send(&pb.FileChunk{Data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// maxForwarded bounds the items of one Upstream call.
const maxForwarded = 10000

// Upstream implements Replication.Upstream: each forwarded record is read
// and checked (store.DecodeForwarded) before any is applied.
func (r replicationServer) Upstream(ctx context.Context, req *pb.UpstreamRequest) (*pb.UpstreamReply, error) {
	if len(req.GetItems()) > maxForwarded {
		return nil, fmt.Errorf("%w: %d forwarded items in one call, at most %d", service.ErrInvalid, len(req.GetItems()), maxForwarded)
	}
	u := replica.Upstream{Position: req.GetPosition(), InternalURL: req.GetInternalUrl(), ExternalURL: req.GetExternalUrl(),
		Version: req.GetVersion(), Epoch: req.GetEpoch()}
	for _, it := range req.GetItems() {
		f, err := store.DecodeForwarded(it.GetSeq(), it.GetRecord())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", service.ErrInvalid, err)
		}
		u.Items = append(u.Items, f)
	}
	reply, err := r.s.svc.Upstream(ctx, u)
	if err != nil {
		return nil, err
	}
	return &pb.UpstreamReply{Acked: reply.Acked, Head: reply.Head}, nil
}

// The Replicas service, for admins.

type replicasServer struct {
	pb.UnimplementedReplicasServer
	s *Server
}

func replicaInfoPB(r service.ReplicaInfo) *pb.ReplicaInfo {
	p := r.Progress
	out := &pb.ReplicaInfo{Name: r.Name, Site: r.Site, CertSerial: r.CertSerial, NoAccounts: r.NoAccounts, Added: ts(r.Added), AddedBy: r.AddedBy,
		Removed: ts(r.Removed), RemovedBy: r.RemovedBy, Reason: r.Reason, Position: p.Position, Behind: r.Behind, LastContact: ts(p.LastContact),
		BytesFetched: p.BytesFetched, FilesFetched: p.FilesFetched, InternalUrl: p.InternalURL, ExternalUrl: p.ExternalURL, Version: p.Version,
		Reports: p.Reports, Stale: r.Stale}
	for _, a := range r.Alarms {
		out.Alarms = append(out.Alarms, &pb.ReplicaAlarm{Id: a.ID, Detail: a.Detail, Raised: ts(a.Raised), Rule: a.Rule, Version: a.Version.String()})
	}
	return out
}

func replicaInfoFromPB(p *pb.ReplicaInfo) service.ReplicaInfo {
	r := service.ReplicaInfo{Replica: firmware.Replica{Name: p.GetName(), Site: p.GetSite(), CertSerial: p.GetCertSerial(), NoAccounts: p.GetNoAccounts(),
		Added: fromTS(p.GetAdded()), AddedBy: p.GetAddedBy(), Removed: fromTS(p.GetRemoved()), RemovedBy: p.GetRemovedBy(), Reason: p.GetReason(),
		Progress: firmware.ReplicaProgress{Position: p.GetPosition(), LastContact: fromTS(p.GetLastContact()), BytesFetched: p.GetBytesFetched(),
			FilesFetched: p.GetFilesFetched(), InternalURL: p.GetInternalUrl(), ExternalURL: p.GetExternalUrl(), Version: p.GetVersion(), Reports: p.GetReports()}},
		Behind: p.GetBehind(), Stale: p.GetStale(), Alarms: []firmware.Alarm{}}
	for _, a := range p.GetAlarms() {
		r.Alarms = append(r.Alarms, firmware.Alarm{ID: a.GetId(), Kind: firmware.AlarmReplicaBehind, Detail: a.GetDetail(), Raised: fromTS(a.GetRaised()),
			Rule: a.GetRule(), Version: version(a.GetVersion()), Replica: r.Name, Sites: []firmware.SiteProgress{{Site: r.Site}}})
	}
	return r
}

// AddReplica implements Replicas.AddReplica.
func (r replicasServer) AddReplica(ctx context.Context, req *pb.AddReplicaRequest) (*pb.AddReplicaReply, error) {
	rec, creds, err := r.s.svc.AddReplica(ctx, service.AddReplicaRequest{Name: req.GetName(), Site: req.GetSite(), InternalName: req.GetInternalName(),
		ExternalName: req.GetExternalName(), Names: req.GetNames(), NoAccounts: req.GetNoAccounts(), Primary: req.GetPrimary()})
	if err != nil {
		return nil, err
	}
	return &pb.AddReplicaReply{Replica: replicaInfoPB(service.ReplicaInfo{Replica: rec}), Credentials: creds.Marshal()}, nil
}

// ListReplicas implements Replicas.ListReplicas.
func (r replicasServer) ListReplicas(ctx context.Context, _ *pb.ListReplicasRequest) (*pb.ListReplicasReply, error) {
	rs, head, err := r.s.svc.Replicas(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.ListReplicasReply{Head: head}
	for _, ri := range rs {
		out.Replicas = append(out.Replicas, replicaInfoPB(ri))
	}
	return out, nil
}

// RemoveReplica implements Replicas.RemoveReplica.
func (r replicasServer) RemoveReplica(ctx context.Context, req *pb.RemoveReplicaRequest) (*pb.ReplicaInfo, error) {
	rec, err := r.s.svc.RemoveReplica(ctx, req.GetName(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return replicaInfoPB(service.ReplicaInfo{Replica: rec}), nil
}

// ReplicationStatus implements Replicas.ReplicationStatus.
func (r replicasServer) ReplicationStatus(ctx context.Context, _ *pb.ReplicationStatusRequest) (*pb.ReplicationStatusReply, error) {
	st, err := r.s.svc.ReplicationStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.ReplicationStatusReply{Head: st.Head}
	if f := st.Follower; f != nil {
		out.Follower = &pb.FollowerStatus{Primary: f.Primary, Connected: f.Connected, Since: ts(f.Since), LastContact: ts(f.LastContact),
			LastError: f.LastError, Position: f.Position, Head: f.Head, Outbox: int64(f.Outbox), FilesFetched: f.FilesFetched,
			BytesFetched: f.BytesFetched, Applied: f.Applied, InStep: ts(f.InStep)}
	}
	for _, ri := range st.Replicas {
		out.Replicas = append(out.Replicas, replicaInfoPB(ri))
	}
	return out, nil
}

// The admin client's side of Replicas.

// AddReplica asks the server to make a replica and returns it with its
// credentials file.
func (c *Client) AddReplica(ctx context.Context, req service.AddReplicaRequest) (service.ReplicaInfo, []byte, error) {
	r, err := pb.NewReplicasClient(c.conn).AddReplica(ctx, &pb.AddReplicaRequest{Name: req.Name, Site: req.Site, InternalName: req.InternalName,
		ExternalName: req.ExternalName, Names: req.Names, NoAccounts: req.NoAccounts, Primary: req.Primary})
	if err != nil {
		return service.ReplicaInfo{}, nil, c.wrap(err)
	}
	return replicaInfoFromPB(r.GetReplica()), r.GetCredentials(), nil
}

// Replicas lists the server's replicas and returns its head.
func (c *Client) Replicas(ctx context.Context) ([]service.ReplicaInfo, uint64, error) {
	r, err := pb.NewReplicasClient(c.conn).ListReplicas(ctx, &pb.ListReplicasRequest{})
	if err != nil {
		return nil, 0, c.wrap(err)
	}
	return convert(r.GetReplicas(), replicaInfoFromPB), r.GetHead(), nil
}

// RemoveReplica removes a replica.
func (c *Client) RemoveReplica(ctx context.Context, name, reason string) (service.ReplicaInfo, error) {
	r, err := pb.NewReplicasClient(c.conn).RemoveReplica(ctx, &pb.RemoveReplicaRequest{Name: name, Reason: reason})
	if err != nil {
		return service.ReplicaInfo{}, c.wrap(err)
	}
	return replicaInfoFromPB(r), nil
}

// ReplicationStatus returns the server's replication state: a replica's
// follower, or a primary's replicas.
func (c *Client) ReplicationStatus(ctx context.Context) (service.ReplicationStatus, error) {
	r, err := pb.NewReplicasClient(c.conn).ReplicationStatus(ctx, &pb.ReplicationStatusRequest{})
	if err != nil {
		return service.ReplicationStatus{}, c.wrap(err)
	}
	out := service.ReplicationStatus{Head: r.GetHead(), Replicas: convert(r.GetReplicas(), replicaInfoFromPB)}
	if f := r.GetFollower(); f != nil {
		out.Replicas = nil // a replica has none: left out
		out.Follower = &replica.Status{Primary: f.GetPrimary(), Connected: f.GetConnected(), Since: fromTS(f.GetSince()), LastContact: fromTS(f.GetLastContact()),
			LastError: f.GetLastError(), Position: f.GetPosition(), Head: f.GetHead(), Outbox: int(f.GetOutbox()), FilesFetched: f.GetFilesFetched(),
			BytesFetched: f.GetBytesFetched(), Applied: f.GetApplied(), InStep: fromTS(f.GetInStep())}
	}
	return out, nil
}

// The replica's side: a Replication client.

// ReplicaClient calls a primary's Replication service with a replica's
// certificate; it is the replica.Primary a follower uses. It connects
// lazily, to the first of its addresses that answers, and reconnects by
// itself.
type ReplicaClient struct {
	addrs string
	conn  *grpc.ClientConn
	c     pb.ReplicationClient
}

var _ replica.Primary = (*ReplicaClient)(nil)

// DialReplica returns a client of the primary at addrs (host:port, tried
// in order) with tlsConfig: the replica's client certificate and the
// primary's CA as the only root. After a failed connection it tries again
// from a second, growing up to maxBackoff (0: a minute).
func DialReplica(addrs []string, tlsConfig *tls.Config, maxBackoff time.Duration) (*ReplicaClient, error) {
	if maxBackoff <= 0 {
		maxBackoff = time.Minute
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address of the primary")
	}
	r := manual.NewBuilderWithScheme("opendus-primary")
	var state resolver.State
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("primary address %q: %w", a, err)
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	conn, err := grpc.NewClient(r.Scheme()+":///primary",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 10 * time.Second,
			Backoff: backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxBackoff}}),
	)
	if err != nil {
		return nil, fmt.Errorf("primary at %v: %w", addrs, err)
	}
	return &ReplicaClient{addrs: fmt.Sprint(addrs), conn: conn, c: pb.NewReplicationClient(conn)}, nil
}

// Close closes the connection.
func (c *ReplicaClient) Close() error { return c.conn.Close() }

// wrap turns a status into an error that says which primary said it; a
// NOT_FOUND wraps store.ErrNotFound, which the follower acts on.
func (c *ReplicaClient) wrap(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.NotFound:
		return fmt.Errorf("the primary at %s: %w: %s", c.addrs, store.ErrNotFound, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("cannot reach the primary at %s: %s", c.addrs, st.Message())
	}
	return fmt.Errorf("the primary at %s: %s (%s)", c.addrs, st.Message(), st.Code())
}

// Follow implements replica.Primary.
func (c *ReplicaClient) Follow(ctx context.Context, since uint64, snapshot bool, fn func(replica.Message) error) error {
	stream, err := c.c.Follow(ctx, &pb.FollowRequest{Since: since, Snapshot: snapshot})
	if err != nil {
		return c.wrap(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return errors.New("the primary ended the stream")
			}
			return c.wrap(err)
		}
		if err := fn(followFromPB(m)); err != nil {
			return err
		}
	}
}

// FetchFile implements replica.Primary.
func (c *ReplicaClient) FetchFile(ctx context.Context, sha [32]byte, offset int64, w io.Writer) (int64, error) {
	stream, err := c.c.FetchFile(ctx, &pb.FetchFileRequest{Sha256: sha[:], Offset: offset})
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

// Upstream implements replica.Primary.
func (c *ReplicaClient) Upstream(ctx context.Context, u replica.Upstream) (replica.UpstreamReply, error) {
	req := &pb.UpstreamRequest{Position: u.Position, InternalUrl: u.InternalURL, ExternalUrl: u.ExternalURL, Version: u.Version, Epoch: u.Epoch}
	for _, it := range u.Items {
		data, err := store.EncodeForwarded(it)
		if err != nil {
			return replica.UpstreamReply{}, err
		}
		req.Items = append(req.Items, &pb.Forwarded{Seq: it.Seq, Record: data})
	}
	r, err := c.c.Upstream(ctx, req)
	if err != nil {
		return replica.UpstreamReply{}, c.wrap(err)
	}
	return replica.UpstreamReply{Acked: r.GetAcked(), Head: r.GetHead()}, nil
}
