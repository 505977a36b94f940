package devsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/updatemeta"

	"github.com/opendus/opendus/devsvc/audit"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/devlogs"
	"github.com/opendus/opendus/devsvc/peers"
	"github.com/opendus/opendus/devsvc/signer"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
	"github.com/opendus/opendus/signin"
)

// deviceSide is what the two device listeners serve, and what must be
// closed once they have stopped: the audit log and the log uploads.
type deviceSide struct {
	// Internal is the internal listener's handler; External the external
	// one's, NTLM included (do not wrap it again).
	Internal, External http.Handler

	audit *audit.Log
	logs  *devlogs.Handler
	// What a reload changes: the device API, the provisioning handler
	// (made anew) and the deadline of bodies.
	api  *deviceapi.Server
	prov *swapHandler
	body *atomic.Int64 // request_body_timeout, nanoseconds
	// meta signs and serves the update metadata and the piece lists.
	meta metadataService
}

// swapHandler is a handler that can be replaced while it serves.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func newSwapHandler(h http.Handler) *swapHandler {
	s := &swapHandler{}
	s.Store(h)
	return s
}

func (s *swapHandler) Store(h http.Handler) { s.h.Store(&h) }
func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// newDeviceSide composes the device listeners' handlers: check-ins, status
// reports and downloads (deviceapi), log uploads (devlogs), the
// provisioning sign-in and the health and readiness checks, each
// listener's requests written to the audit log. On the external listener the audit middleware
// is outside NTLM, so refused sign-ins are audited too. ri gives the bound
// ports, from which the default base URLs are made. Run flushes and
// cleans the audit log (with the uploads); Close closes both.
func newDeviceSide(d *deps, s datadir.Settings, ri datadir.RunInfo, acceptor *ntlm.Acceptor, limiter *signin.Limiter, ready *readiness,
	obs deviceapi.Observer, log *slog.Logger) (*deviceSide, error) {
	logs, err := devlogs.NewHandler(devlogsConfig(d, s, log))
	if err != nil {
		return nil, fmt.Errorf("device log uploads: %w", err)
	}
	al, err := audit.Open(audit.Config{
		Dir: filepath.Join(d.dir, datadir.AuditDir), Retention: s.LogCleanUpInterval, FlushInterval: s.LogFlushInterval,
		Cleaners: []audit.Cleaner{logs}, Floor: d.floor, Logger: log.With("component", "audit"),
	})
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	apiCfg := deviceAPIConfig(s, ri, storeSchedule{d.store}, log.With("component", "devices"))
	apiCfg.Observer = obs
	apiCfg.Now, apiCfg.ClientAddr = d.now, limiter.Client
	if s.Peers {
		apiCfg.Peers = peers.New(peers.Config{Delay: s.PeerDelay, Timeout: s.PeerTimeout, PrefixV4: int(s.PeerPrefixV4), PrefixV6: int(s.PeerPrefixV6),
			Logger: log.With("component", "peers")})
	}
	meta, err := newPublisher(d, s, log.With("component", "metadata"))
	if err != nil {
		logs.Close()
		al.Close()
		return nil, err
	}
	apiCfg.Metadata = meta.Staple
	if relay, ok := meta.(*signer.Relay); ok {
		// A replica offers an update once its primary's signing of it
		// has arrived.
		apiCfg.Signed = relay.Allows
	}
	provCfg := provisioningConfig(s, ri, d.accounts(), limiter, meta, log.With("component", "provisioning"))
	d.replicaHooks.apply(&apiCfg, &provCfg)
	api := deviceapi.New(d.store, apiCfg)
	prov := newSwapHandler(provisioning.NewHandler(provCfg))
	body := &atomic.Int64{}
	body.Store(int64(s.RequestBodyTimeout))
	return &deviceSide{
		Internal: bodyDeadline(body, al.Middleware(audit.Internal, route(devlogs.Path, logs, prov, api.Internal(), meta, ready))),
		External: bodyDeadline(body, al.Middleware(audit.External, acceptor.Require(audit.CaptureUser(route(devlogs.PathExt, logs, prov, api.External(), meta, ready))))),
		audit:    al, logs: logs, api: api, prov: prov, body: body, meta: meta,
	}, nil
}

// devlogsConfig is the log uploads' configuration from the settings.
func devlogsConfig(d *deps, s datadir.Settings, log *slog.Logger) devlogs.Config {
	return devlogs.Config{
		Dir: filepath.Join(d.dir, datadir.DeviceLogsDir), MaxSize: s.MaxLogFileSize, MaxTotal: s.MaxLogStorage, Types: s.ValidLogFileTypes,
		Extensions: s.ValidLogFileExtensions, Retention: s.LogCleanUpInterval, Floor: d.floor, Logger: log.With("component", "devlogs"),
		MaxPerAddress: s.MaxLogUploadPerAddress, ReadTimeout: s.LogUploadTimeout,
	}
}

// reconfigure applies the reloadable settings of s to the device side:
// the log uploads' limits first, since they may refuse s (then nothing
// changes), then the audit log's, the device API's, provisioning's and
// the bodies' deadline.
func (ds *deviceSide) reconfigure(d *deps, s datadir.Settings, ri datadir.RunInfo, limiter *signin.Limiter, log *slog.Logger) error {
	if err := ds.logs.Reconfigure(devlogsConfig(d, s, log)); err != nil {
		return fmt.Errorf("device log uploads: %w", err)
	}
	ds.audit.Reconfigure(s.LogCleanUpInterval, s.LogFlushInterval)
	apiCfg := deviceAPIConfig(s, ri, storeSchedule{d.store}, log.With("component", "devices"))
	provCfg := provisioningConfig(s, ri, d.accounts(), limiter, ds.meta, log.With("component", "provisioning"))
	d.replicaHooks.apply(&apiCfg, &provCfg)
	ds.api.Reconfigure(apiCfg)
	ds.prov.Store(provisioning.NewHandler(provCfg))
	ds.meta.SetExpiries(metadataExpiries(s))
	ds.body.Store(int64(s.RequestBodyTimeout))
	return nil
}

// bodyDeadline gives every request that has a body a read deadline d
// (nanoseconds, request_body_timeout) away before any handler runs. The handlers that read bodies set their
// own (deviceapi, provisioning, devlogs) and lift it once the body is in;
// it is for those that answer without reading it (NTLM's 401, a 404):
// the server then reads and discards the body before it answers, and
// would wait for a stalled one for ever. A request without a body gets
// none: its handler may run longer (a download), and the server's
// background read must not time out under it.
func bodyDeadline(d *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			timeout := time.Duration(d.Load())
			if timeout <= 0 {
				timeout = deviceapi.DefaultBodyTimeout
			}
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		h.ServeHTTP(w, r)
	})
}

// deviceAPIConfig is the device API's configuration from the settings.
func deviceAPIConfig(s datadir.Settings, ri datadir.RunInfo, sched deviceapi.Schedule, log *slog.Logger) deviceapi.Config {
	jitter := s.CheckJitter
	if jitter == 0 {
		jitter = -1 // the setting's 0 means no spread; deviceapi's zero is its default
	}
	minOpen := s.WindowMinOpen
	if minOpen == 0 {
		minOpen = -1 // likewise: the setting's 0 is none
	}
	return deviceapi.Config{
		InternalURL:      baseURL(s.InternalURL, s.InternalName, ri.Internal),
		ExternalURL:      baseURL(s.ExternalURL, s.ExternalName, ri.External),
		MovedInternalURL: s.MovedInternalURL,
		MovedExternalURL: s.MovedExternalURL,
		CheckInterval:    s.CheckInterval,
		CheckJitter:      jitter,
		Schedule:         sched,
		MinOpen:          minOpen,
		BodyTimeout:      s.RequestBodyTimeout,
		DownloadStall:    s.DownloadStallTimeout,
		Logger:           log,
	}
}

// provisioningConfig is the provisioning handler's configuration from the
// settings: a device signs in (Basic over TLS on the LAN, NTLM at the
// edge) and learns where the update service is. Basic sign-ins count
// against the limiter the NTLM acceptor uses.
func provisioningConfig(s datadir.Settings, ri datadir.RunInfo, accounts ntlm.Accounts, limiter *signin.Limiter, meta metadataService, log *slog.Logger) provisioning.Config {
	return provisioning.Config{
		InternalURL: baseURL(s.InternalURL, s.InternalName, ri.Internal),
		ExternalURL: baseURL(s.ExternalURL, s.ExternalName, ri.External),
		Enabled:     true, CheckInterval: s.CheckInterval,
		Auth: provisioning.NTHashAuthenticator{Lookup: func(ctx context.Context, user string) (ntlm.Account, error) {
			return accounts.LookupNT(ctx, "", user)
		}},
		Limiter:      limiter,
		RootMetadata: meta.Root,
		BodyTimeout:  s.RequestBodyTimeout, Logger: log,
	}
}

// metadataService serves the signed update metadata on the device
// listeners and gives provisioning its root: a primary's signer
// (signer.Publisher), or a replica's relay of what its primary signed
// (signer.Relay).
type metadataService interface {
	http.Handler
	Root() []byte
	RootExpires() time.Time
	Staple() (timestamp, root int64, signed []byte)
	SetExpiries(updatemeta.Expiries)
	Run(ctx context.Context)
}

// newPublisher signs the update metadata with the keys of DIR/keys,
// making them when the data directory has none (one made before signed
// metadata). A replica signs nothing and holds no keys: it relays what
// its primary signed, from its store.
func newPublisher(d *deps, s datadir.Settings, log *slog.Logger) (metadataService, error) {
	if len(s.ReplicaOf) > 0 {
		return signer.NewRelay(d.store, log), nil
	}
	dir := filepath.Join(d.dir, datadir.KeysDir)
	if made, err := updatemeta.Ensure(dir, d.now(), s.MetadataRootExpiry); err != nil {
		return nil, fmt.Errorf("the signing keys in %s: %w", dir, err)
	} else if made {
		log.Warn("made the update metadata's signing keys: give devices the root with devsvc keys export, and move keys/root.key offline", "keys", dir)
	}
	p, err := signer.New(d.store, signer.Config{Keys: dir, Expiries: metadataExpiries(s), Now: d.now, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("signed update metadata: %w", err)
	}
	return p, nil
}

// metadataExpiries are the metadata_*_expiry settings.
func metadataExpiries(s datadir.Settings) updatemeta.Expiries {
	return updatemeta.Expiries{Timestamp: s.MetadataTimestampExpiry, Snapshot: s.MetadataSnapshotExpiry, Targets: s.MetadataTargetsExpiry}
}

// Run flushes and cleans the audit log (and the uploads) until ctx is done.
func (d *deviceSide) Run(ctx context.Context) { d.audit.Run(ctx) }

// RunSigner re-signs the update metadata in the background until ctx is
// done.
func (d *deviceSide) RunSigner(ctx context.Context) { d.meta.Run(ctx) }

// Close closes the audit log (writing what is buffered), the uploads and
// the files kept open for downloads. Call it after the listeners and Run
// have stopped.
func (d *deviceSide) Close() error {
	return errors.Join(d.audit.Close(), d.logs.Close(), d.api.Close())
}

// route sends the log upload path to logs, the provisioning sign-in to
// prov, /healthz and /readyz to the checks and everything else to api,
// which answers unknown paths 404 itself. It compares paths exactly and
// never cleans or redirects them: file paths are validated by deviceapi.
//
// /healthz answers 200 "ok" while the process serves; /readyz 200 "ok"
// while the service can serve devices, and 503 with what is not ready
// (the inventory cannot be written, a certificate expired, the directory
// does not answer, the listeners are not serving), for a load balancer to
// send devices to another server meanwhile. The device listeners are
// anonymous: they say what is wrong, not the errors underneath (the log,
// devsvc status and the metrics listener's /readyz do).
func route(logPath string, logs, prov, api, meta http.Handler, ready *readiness) http.Handler {
	readyz := ready.readyz(false)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, deviceproto.MetadataPrefix):
			meta.ServeHTTP(w, r)
		case p == logPath:
			logs.ServeHTTP(w, r)
		case p == provisioning.Path:
			prov.ServeHTTP(w, r)
		case p == "/healthz":
			ready.healthz(w, r)
		case p == "/readyz":
			readyz(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// baseURL returns the configured base URL, else https://name/ with the
// bound port unless it is 443.
func baseURL(configured, name, bound string) string {
	if configured != "" {
		return configured
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil || port == "443" {
		return "https://" + name + "/"
	}
	return "https://" + net.JoinHostPort(name, port) + "/"
}

// storeSchedule gives deviceapi the scheduled approvals of the current
// catalog snapshot.
type storeSchedule struct{ st *store.Store }

func (s storeSchedule) Next(id firmware.Identity) (time.Time, bool) {
	return s.st.Catalog().ScheduledApproval(id)
}
