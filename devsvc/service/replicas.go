package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// ReplicaIssuer issues what a replica needs under the service's CA (its
// client, server and admin certificates) and exports the CA certificate;
// *certs.Store is one.
type ReplicaIssuer interface {
	IssueClient(name, role string) (certPEM, keyPEM []byte, err error)
	IssueServer(cfg certs.Config) (certPEM, keyPEM []byte, err error)
	ExportCA(format string) ([]byte, error)
}

// Defaults of ReplicationConfig.
const (
	DefaultReplicaAlarmAfter = 15 * time.Minute
	DefaultReplicaStaleAfter = 2 * time.Minute
)

// ReplicationConfig is how a primary serves its replicas.
type ReplicationConfig struct {
	// Issuer issues the replicas' certificates; nil refuses AddReplica.
	Issuer ReplicaIssuer
	// Domain is the service's SIP/DNS domain, for the replicas' server
	// certificates.
	Domain string
	// AdminAddrs returns the addresses of the admin API that replicas
	// dial (host:port), when AddReplica is not given any.
	AdminAddrs func() []string
	// DeviceURLs returns the primary's base URLs for devices: a replica's
	// answers give them as the alternative URLs.
	DeviceURLs func() (internal, external string)
	// AlarmAfter is how long after a release (an approval) a replica that
	// has not applied it raises an alarm; default 15 minutes.
	AlarmAfter time.Duration
	// StaleAfter: a replica not heard from for this long is not given
	// devices' downloads (ReplicaFor); default 2 minutes.
	StaleAfter time.Duration
	// Follower, on a replica, returns what its follower is doing, for
	// ReplicationStatus.
	Follower func() replica.Status
}

// replication is the primary's view of its replicas: their records by
// site, for the check-in path (read without a lock), and the open alarms.
type replication struct {
	cfg      ReplicationConfig
	loadOnce sync.Once
	bySite   atomic.Pointer[map[string]firmware.Replica]
	mu       sync.Mutex
	alarms   map[string]firmware.Alarm // open alarms by ID
	// streams are the Follow streams open, by replica: RemoveReplica
	// ends them at once.
	streams map[string]map[*context.CancelCauseFunc]bool
}

func (r *replication) init(cfg ReplicationConfig) {
	if cfg.AlarmAfter <= 0 {
		cfg.AlarmAfter = DefaultReplicaAlarmAfter
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultReplicaStaleAfter
	}
	r.cfg = cfg
	r.alarms = map[string]firmware.Alarm{}
	r.streams = map[string]map[*context.CancelCauseFunc]bool{}
}

// openStream registers a Follow stream of replica name and returns its
// context, which RemoveReplica cancels, and its release.
func (r *replication) openStream(ctx context.Context, name string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	r.mu.Lock()
	if r.streams[name] == nil {
		r.streams[name] = map[*context.CancelCauseFunc]bool{}
	}
	r.streams[name][&cancel] = true
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.streams[name], &cancel)
		r.mu.Unlock()
		cancel(nil)
	}
}

// endStreams ends the Follow streams of replica name with cause.
func (r *replication) endStreams(name string, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.streams[name] {
		(*c)(cause)
	}
}

// refresh reloads the replicas by site from the store.
func (s *Service) refreshReplicas(ctx context.Context) {
	rs, err := s.st.Replicas(ctx)
	if err != nil {
		s.cfg.Logger.Error("reading the replicas", "err", err)
		return
	}
	m := map[string]firmware.Replica{}
	for _, r := range rs {
		if r.Active() {
			m[r.Site] = r
		}
	}
	s.repl.bySite.Store(&m)
}

// noteReplica replaces one replica's record in the view.
func (s *Service) noteReplica(r firmware.Replica) {
	s.repl.loadOnce.Do(func() { s.refreshReplicas(context.Background()) })
	for {
		old := s.repl.bySite.Load()
		m := map[string]firmware.Replica{}
		if old != nil {
			for site, o := range *old {
				if o.Name != r.Name {
					m[site] = o
				}
			}
		}
		if r.Active() {
			m[r.Site] = r
		}
		if s.repl.bySite.CompareAndSwap(old, &m) {
			return
		}
	}
}

// ReplicaFor returns the base URLs of the replica that serves site, when
// one does that has update u (it has applied the change that stored it)
// and was heard from within StaleAfter: where a device of that site is
// sent for u's files. It takes no lock and does no I/O, but the first
// time. It needs no principal: the device side asks it.
func (s *Service) ReplicaFor(site string, u firmware.Update) (internal, external string, ok bool) {
	r, ok := s.liveReplica(site)
	if !ok || r.Progress.Position < u.Seq {
		return "", "", false
	}
	return r.Progress.InternalURL, r.Progress.ExternalURL, true
}

// ReplicaOfSite returns the base URLs of the replica that serves site,
// when one does that has applied changes and was heard from within
// StaleAfter: where a device of that site is told to check in
// (provisioning). Like ReplicaFor it needs no principal.
func (s *Service) ReplicaOfSite(site string) (internal, external string, ok bool) {
	r, ok := s.liveReplica(site)
	if !ok {
		return "", "", false
	}
	return r.Progress.InternalURL, r.Progress.ExternalURL, true
}

// liveReplica returns the active replica of site that has applied
// changes, reported its URLs and was heard from within StaleAfter.
func (s *Service) liveReplica(site string) (firmware.Replica, bool) {
	if site == "" {
		return firmware.Replica{}, false
	}
	s.repl.loadOnce.Do(func() { s.refreshReplicas(context.Background()) })
	m := s.repl.bySite.Load()
	if m == nil {
		return firmware.Replica{}, false
	}
	r, ok := (*m)[site]
	p := r.Progress
	if !ok || p.Position == 0 || p.InternalURL == "" || s.cfg.Now().Sub(p.LastContact) > s.repl.cfg.StaleAfter {
		return firmware.Replica{}, false
	}
	return r, true
}

// AddReplicaRequest asks for a replica.
type AddReplicaRequest struct {
	// Name is the replica's name; Site the site it serves (one replica
	// per site).
	Name, Site string
	// InternalName is the name its devices reach it by (default
	// NAME.<domain>), ExternalName the one through its edge, if any; Names
	// more DNS names or IP addresses for its server certificate.
	InternalName, ExternalName string
	Names                      []string
	// NoAccounts keeps the device accounts (their NT hashes) off the
	// replica: its devices then sign in against its own directory.
	NoAccounts bool
	// Primary are the admin addresses the replica dials; default
	// ReplicationConfig.AdminAddrs.
	Primary []string
}

// AddReplica makes a replica: it issues its client certificate (role
// replica, recorded in the registry of admin certificates and in the
// history with the replica), a server certificate for its names and an
// admin certificate for its own data directory, all under the CA, and
// returns them with the CA and the primary's addresses as the credentials
// `devsvc init --replica-of` reads. A site has one replica.
func (s *Service) AddReplica(ctx context.Context, req AddReplicaRequest) (firmware.Replica, replica.Credentials, error) {
	p, err := s.change(ctx, "add replicas")
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	rc := s.repl.cfg
	if err := firmware.ValidReplicaName(req.Name); err != nil {
		return firmware.Replica{}, replica.Credentials{}, invalid(err)
	}
	if err := firmware.ValidSiteName(req.Site); err != nil {
		return firmware.Replica{}, replica.Credentials{}, invalid(err)
	}
	if rc.Issuer == nil {
		return firmware.Replica{}, replica.Credentials{}, errors.New("this service has no CA to issue a replica's certificates with")
	}
	rs, err := s.st.Replicas(ctx)
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	for _, r := range rs {
		if r.Active() && r.Site == req.Site && r.Name != req.Name {
			return firmware.Replica{}, replica.Credentials{}, fmt.Errorf("site %s has replica %s %w: a site has one replica; remove it first (devsvc replicas remove %s)", req.Site, r.Name, store.ErrExists, r.Name)
		}
	}
	if req.InternalName == "" {
		req.InternalName = req.Name + "." + rc.Domain
	}
	primary := req.Primary
	if len(primary) == 0 && rc.AdminAddrs != nil {
		primary = rc.AdminAddrs()
	}
	for i, a := range primary {
		if primary[i], err = replica.ParseAddr(a); err != nil {
			return firmware.Replica{}, replica.Credentials{}, invalid(err)
		}
	}
	if len(primary) == 0 {
		return firmware.Replica{}, replica.Credentials{}, fmt.Errorf("%w: name the primary's admin address the replica reaches (--primary HOST:PORT)", ErrInvalid)
	}
	srvCert, srvKey, err := rc.Issuer.IssueServer(certs.Config{Domain: rc.Domain, InternalName: req.InternalName, ExternalName: req.ExternalName,
		HostName: req.InternalName, ExtraNames: req.Names})
	if errors.Is(err, certs.ErrInvalidName) {
		return firmware.Replica{}, replica.Credentials{}, invalid(err)
	}
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	cert, key, err := rc.Issuer.IssueClient(req.Name, replica.RoleReplica)
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	admCert, admKey, err := rc.Issuer.IssueClient("admin", string(RoleAdmin))
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	ca, err := rc.Issuer.ExportCA("pem")
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	c := replica.Credentials{Replica: req.Name, Site: req.Site, Domain: rc.Domain, Primary: primary, InternalName: req.InternalName,
		ExternalName: req.ExternalName, Names: req.Names, CA: string(ca), Cert: string(cert), Key: string(key),
		ServerCert: string(srvCert), ServerKey: string(srvKey), AdminCert: string(admCert), AdminKey: string(admKey), Issued: s.cfg.Now().UTC()}
	if rc.DeviceURLs != nil {
		c.PrimaryInternalURL, c.PrimaryExternalURL = rc.DeviceURLs()
	}
	if c, err = replica.ParseCredentials(c.Marshal()); err != nil {
		return firmware.Replica{}, replica.Credentials{}, fmt.Errorf("the credentials made do not check: %w", err)
	}
	leaf, err := certs.ParseCertPEM(cert)
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	rec, err := s.st.AddReplica(ctx, p.Name, firmware.Replica{Name: req.Name, Site: req.Site, NoAccounts: req.NoAccounts}, AdminCertOf(leaf))
	if err != nil {
		return firmware.Replica{}, replica.Credentials{}, err
	}
	s.noteReplica(rec)
	s.cfg.Logger.Info("replica added", "replica", rec.Name, "site", rec.Site, "serial", rec.CertSerial, "actor", p.Name)
	return rec, c, nil
}

// ReplicaInfo is a replica as Replicas lists it.
type ReplicaInfo struct {
	firmware.Replica
	// Behind is how many changes it is behind the primary.
	Behind uint64 `json:"behind"`
	// Stale is true when it was not heard from within StaleAfter: its
	// site's devices are not sent to it.
	Stale bool `json:"stale,omitempty"`
	// Alarms are its open alarms (an empty list when none).
	Alarms []firmware.Alarm `json:"alarms"`
}

// Replicas lists the replicas, removed ones included, with how far behind
// each is and its open alarms, and the primary's head.
func (s *Service) Replicas(ctx context.Context) ([]ReplicaInfo, uint64, error) {
	if _, err := s.look(ctx); err != nil {
		return nil, 0, err
	}
	rs, err := s.st.Replicas(ctx)
	if err != nil {
		return nil, 0, err
	}
	head := s.st.Catalog().Seq()
	now := s.cfg.Now()
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	out := make([]ReplicaInfo, 0, len(rs))
	for _, r := range rs {
		ri := ReplicaInfo{Replica: r, Behind: r.Progress.Behind(head), Stale: r.Active() && now.Sub(r.Progress.LastContact) > s.repl.cfg.StaleAfter,
			Alarms: []firmware.Alarm{}}
		for _, a := range s.repl.alarms {
			if a.Replica == r.Name {
				ri.Alarms = append(ri.Alarms, a)
			}
		}
		slices.SortFunc(ri.Alarms, func(a, b firmware.Alarm) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, ri)
	}
	return out, head, nil
}

// RemoveReplica removes a replica: its certificate is revoked, and the
// primary refuses it from its next call on (a Follow stream open with it
// ends at its next message). Its site's devices are no longer sent to it.
func (s *Service) RemoveReplica(ctx context.Context, name, reason string) (firmware.Replica, error) {
	p, err := s.change(ctx, "remove replicas")
	if err != nil {
		return firmware.Replica{}, err
	}
	r, err := s.st.RemoveReplica(ctx, p.Name, name, reason)
	if err != nil {
		return firmware.Replica{}, err
	}
	s.noteReplica(r)
	s.repl.endStreams(name, fmt.Errorf("%w: replica %s was removed by %s: it may not follow", ErrForbidden, name, p.Name))
	if open, err := s.replicaAlarms(ctx); err == nil {
		err = s.clearAlarms(ctx, open, func(a firmware.Alarm) bool { return a.Replica == name })
		if err != nil {
			s.cfg.Logger.Error("clearing the removed replica's alarms", "replica", name, "err", err)
		}
	}
	s.cfg.Logger.Warn("replica removed", "replica", name, "site", r.Site, "actor", p.Name, "reason", reason)
	return r, nil
}

// ReplicationStatus is Status's part about replication: on a replica,
// what its follower is doing; on a primary, its replicas.
type ReplicationStatus struct {
	// Follower is set on a replica.
	Follower *replica.Status `json:"follower,omitempty"`
	// Replicas and Head are a primary's: Replicas is nil on a replica
	// (left out), a list, empty when there are none, on a primary.
	Replicas []ReplicaInfo `json:"replicas,omitzero"`
	Head     uint64        `json:"head,omitempty"`
}

// ReplicationStatus returns the replication's state, for an admin.
func (s *Service) ReplicationStatus(ctx context.Context) (ReplicationStatus, error) {
	if _, err := s.look(ctx); err != nil {
		return ReplicationStatus{}, err
	}
	if f := s.repl.cfg.Follower; f != nil {
		st := f()
		return ReplicationStatus{Follower: &st}, nil
	}
	rs, head, err := s.Replicas(ctx)
	return ReplicationStatus{Replicas: rs, Head: head}, err
}

// replicaCaller returns the replica a Replication call comes from: the
// principal of a replica's certificate, of a replica that is recorded,
// active, and holds that certificate.
func (s *Service) replicaCaller(ctx context.Context) (firmware.Replica, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return firmware.Replica{}, fmt.Errorf("%w: present the replica's client certificate (DIR/certs/replica.pem)", ErrUnauthenticated)
	}
	if p.Role != RoleReplica {
		return firmware.Replica{}, fmt.Errorf("%w: %s is not a replica: the feed is for the certificates of replicas (devsvc replicas add)", ErrForbidden, p.Name)
	}
	if s.cfg.ReplicaOf != "" {
		return firmware.Replica{}, fmt.Errorf("%w: this server is itself a replica of %s: replicas follow the primary", ErrForbidden, s.cfg.ReplicaOf)
	}
	name := strings.TrimPrefix(p.Name, "replica:")
	r, err := s.st.Replica(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return firmware.Replica{}, fmt.Errorf("%w: no replica is named %s: add it with devsvc replicas add", ErrForbidden, name)
	case err != nil:
		return firmware.Replica{}, err
	case !r.Active():
		return firmware.Replica{}, fmt.Errorf("%w: replica %s was removed on %s by %s: it may not follow", ErrForbidden, name, r.Removed.UTC().Format(time.RFC3339), r.RemovedBy)
	case r.CertSerial != p.CertSerial:
		return firmware.Replica{}, fmt.Errorf("%w: certificate %s is not replica %s's (%s)", ErrForbidden, p.CertSerial, name, r.CertSerial)
	}
	if c, err := s.st.AdminCert(ctx, r.CertSerial); err != nil || !c.Revoked.IsZero() {
		return firmware.Replica{}, fmt.Errorf("%w: replica %s's certificate (serial %s) was revoked: it may not follow; remove the replica and add it again", ErrForbidden, name, r.CertSerial)
	}
	return r, nil
}

// Follow streams the catalog's changes after since to the replica that
// calls, as replica.ServeFeed does (a snapshot first when asked, or when
// the feed does not reach back), until ctx is done or send fails. It ends
// at once when the replica is removed (ErrForbidden), and every message
// is sent only while the replica and its certificate are still valid, so
// a certificate revoked otherwise ends it at the next heartbeat.
func (s *Service) Follow(ctx context.Context, since uint64, snapshot bool, send func(replica.Message) error) error {
	r, err := s.replicaCaller(ctx)
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("replica follows", "replica", r.Name, "site", r.Site, "since", since, "snapshot", snapshot)
	sctx, release := s.repl.openStream(ctx, r.Name)
	defer release()
	err = replica.ServeFeed(sctx, s.st, since, snapshot, replica.ServeOptions{NoAccounts: r.NoAccounts}, func(m replica.Message) error {
		if _, err := s.replicaCaller(sctx); err != nil {
			return err
		}
		return send(m)
	})
	if cause := context.Cause(sctx); ctx.Err() == nil && errors.Is(cause, ErrForbidden) {
		return cause
	}
	return err
}

// FetchFile writes the stored file with this SHA-256, from offset, to w
// for the replica that calls, and counts what it sent in the replica's
// progress (BytesFetched; FilesFetched when the file is done).
func (s *Service) FetchFile(ctx context.Context, sha [32]byte, offset int64, w io.Writer) (int64, error) {
	r, err := s.replicaCaller(ctx)
	if err != nil {
		return 0, err
	}
	n, err := replica.ServeFile(s.st, sha, offset, w)
	if errors.Is(err, store.ErrNotFound) {
		return n, err
	}
	size := int64(-1)
	if _, im, ok := s.st.Catalog().FileBySHA256(sha); ok {
		size = im.Size
	}
	if n > 0 || err == nil {
		if _, perr := s.st.UpdateReplicaProgress(context.WithoutCancel(ctx), r.Name, func(p *firmware.ReplicaProgress) {
			p.BytesFetched += n
			if err == nil && offset+n == size {
				p.FilesFetched++
			}
			p.LastContact = s.cfg.Now().UTC()
		}); perr != nil {
			s.cfg.Logger.Error("counting a replica's file", "replica", r.Name, "err", perr)
		}
	}
	if err == nil {
		s.cfg.Logger.Info("replica fetched a file", "replica", r.Name, "sha256", fmt.Sprintf("%x", sha), "offset", offset, "bytes", n)
	}
	return n, err
}

// maxURLBytes bounds a URL a replica reports.
const maxURLBytes = 1024

// Upstream takes what the calling replica tells: its position and URLs
// (kept as its progress) and the check-ins and reports it forwards
// (applied once, in order, store.ApplyForwarded).
func (s *Service) Upstream(ctx context.Context, u replica.Upstream) (replica.UpstreamReply, error) {
	r, err := s.replicaCaller(ctx)
	if err != nil {
		return replica.UpstreamReply{}, err
	}
	for _, raw := range []string{u.InternalURL, u.ExternalURL} {
		if raw == "" {
			continue
		}
		pu, err := url.Parse(raw)
		if err != nil || len(raw) > maxURLBytes || pu.Scheme != "https" || pu.Host == "" || pu.User != nil || pu.RawQuery != "" || pu.Fragment != "" || !strings.HasSuffix(raw, "/") {
			return replica.UpstreamReply{}, fmt.Errorf("%w: URL %.64q: want https://host[:port]/", ErrInvalid, raw)
		}
	}
	acked := r.Progress.Forwarded
	if len(u.Items) > 0 || u.Epoch != r.Progress.Epoch {
		if acked, err = s.st.ApplyForwarded(ctx, r.Name, u.Epoch, u.Items); err != nil {
			return replica.UpstreamReply{}, err
		}
	}
	now := s.cfg.Now().UTC()
	rec, err := s.st.UpdateReplicaProgress(ctx, r.Name, func(p *firmware.ReplicaProgress) {
		p.Position, p.LastContact = u.Position, now
		p.InternalURL, p.ExternalURL, p.Version = u.InternalURL, u.ExternalURL, u.Version
	})
	if err != nil {
		return replica.UpstreamReply{}, err
	}
	s.noteReplica(rec)
	if len(u.Items) > 0 {
		s.cfg.Logger.Debug("replica forwarded check-ins and reports", "replica", r.Name, "items", len(u.Items), "acked", acked)
	}
	return replica.UpstreamReply{Acked: acked, Head: s.st.Catalog().Seq()}, nil
}

// maxAlarmScan bounds the history events CheckReplicas reads per replica.
const maxAlarmScan = 1000

// CheckReplicas raises an alarm for every active replica that has not
// applied a release (an approval) AlarmAfter after it was made, and clears
// those of replicas that caught up or were removed: the patent's overdue
// alarm, extended to mirrors. The composition calls it every few seconds;
// it needs no principal. The alarms are the store's (devsvc alarms, the
// console, metrics, replicated to every replica), logged at Error when
// raised.
func (s *Service) CheckReplicas(ctx context.Context) error {
	if s.cfg.ReplicaOf != "" {
		return nil
	}
	rs, err := s.st.Replicas(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	want := map[string]firmware.Alarm{}
	for _, r := range rs {
		if !r.Active() {
			continue
		}
		es, err := s.st.History(ctx, r.Progress.Position, maxAlarmScan)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Action != store.ActionApprove {
				continue
			}
			id, err := firmware.ParseIdentity(e.Subject)
			if err != nil {
				continue
			}
			rel := firmware.Release{Rule: e.Rule, Identity: id, Version: e.Version, At: e.Time}
			if a, ok := firmware.CheckReplicaBehind(rel, e.Seq, s.repl.cfg.AlarmAfter, r, now); ok {
				want[a.ID] = a
			}
			break // the earliest release it lacks says it
		}
	}
	open, err := s.replicaAlarms(ctx)
	if err != nil {
		return err
	}
	for id, a := range want {
		if _, ok := open[id]; ok {
			continue
		}
		if _, err := s.st.RaiseAlarm(ctx, a); err != nil {
			return err
		}
		s.cfg.Logger.Error("alarm: "+a.Detail, "alarm", a.ID, "kind", string(a.Kind), "replica", a.Replica, "rule", a.Rule)
	}
	s.repl.mu.Lock()
	s.repl.alarms = want
	s.repl.mu.Unlock()
	return s.clearAlarms(ctx, open, func(a firmware.Alarm) bool { _, still := want[a.ID]; return !still })
}

// replicaAlarms returns the open alarms of replicas in the store, by ID.
func (s *Service) replicaAlarms(ctx context.Context) (map[string]firmware.Alarm, error) {
	all, err := s.st.Alarms(ctx, false)
	if err != nil {
		return nil, err
	}
	open := map[string]firmware.Alarm{}
	for _, a := range all {
		if a.Kind == firmware.AlarmReplicaBehind {
			open[a.ID] = a
		}
	}
	return open, nil
}

// clearAlarms clears, in the store and in memory, the open alarms of
// replicas that match.
func (s *Service) clearAlarms(ctx context.Context, open map[string]firmware.Alarm, match func(firmware.Alarm) bool) error {
	s.repl.mu.Lock()
	for id, a := range s.repl.alarms {
		if match(a) {
			delete(s.repl.alarms, id)
		}
	}
	s.repl.mu.Unlock()
	for id, a := range open {
		if !match(a) {
			continue
		}
		if _, err := s.st.ClearAlarm(ctx, id); err != nil {
			return err
		}
		s.cfg.Logger.Info("alarm cleared", "alarm", a.ID, "replica", a.Replica)
	}
	return nil
}

// ReplicaAlarms returns the open alarms of replicas, for warnings.
func (s *Service) ReplicaAlarms() []firmware.Alarm {
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	out := make([]firmware.Alarm, 0, len(s.repl.alarms))
	for _, a := range s.repl.alarms {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b firmware.Alarm) int { return strings.Compare(a.ID, b.ID) })
	return out
}
