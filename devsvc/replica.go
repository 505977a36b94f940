package devsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/provisioning"
)

// replicaCertName names a replica's client certificate in its certs
// directory: replica.pem and replica.key.
const replicaCertName = "replica"

// initReplica makes a replica's data directory from the credentials the
// primary issued (devsvc replicas add): settings for its names and its
// primary, its certificates under the primary's CA (whose key it never
// holds), and an empty store marked as the primary's replica, which the
// first devsvc serve fills from a snapshot. It refuses a directory that
// is not empty: a replica is made again from a new directory.
func initReplica(opts InitOptions) (InitResult, error) {
	if opts.Dir == "" {
		return InitResult{}, errors.New("init needs --data DIR, the data directory to create")
	}
	if opts.Credentials == nil {
		return InitResult{}, errors.New("--replica-of needs --credentials FILE, the file devsvc replicas add wrote on the primary")
	}
	if opts.Force || opts.NewCA {
		return InitResult{}, errors.New("a replica is not re-initialised: stop it, move its data directory away and init a new one with new credentials (devsvc replicas remove and add on the primary); it fetches everything again from the primary")
	}
	c, err := replica.ParseCredentials(opts.Credentials)
	if err != nil {
		return InitResult{}, err
	}
	if opts.Domain != "" && !strings.EqualFold(opts.Domain, c.Domain) {
		return InitResult{}, fmt.Errorf("--domain %s, but the primary's domain is %s: leave --domain out (a replica serves its primary's domain)", opts.Domain, c.Domain)
	}
	primary := c.Primary
	if opts.ReplicaOf != "" {
		first, err := replica.ParseAddr(opts.ReplicaOf)
		if err != nil {
			return InitResult{}, err
		}
		primary = append([]string{first}, slices.DeleteFunc(slices.Clone(primary), func(a string) bool { return a == first })...)
	}
	if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 {
		return InitResult{}, fmt.Errorf("%s is not empty: a replica starts from an empty or new directory (%w)", opts.Dir, ErrExists)
	}
	for _, d := range []string{"", datadir.RunDir, datadir.TmpDir, datadir.ReplicaDir} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o750); err != nil {
			return InitResult{}, err
		}
	}
	certDir := filepath.Join(opts.Dir, datadir.CertsDir)
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return InitResult{}, err
	}
	for _, f := range []struct {
		name, data string
		perm       os.FileMode
	}{
		{certs.CACertFile, c.CA, 0o644},
		{certs.ServerKeyFile, c.ServerKey, 0o600}, {certs.ServerCertFile, c.ServerCert, 0o644},
		{certs.AdminKeyFile, c.AdminKey, 0o600}, {certs.AdminCertFile, c.AdminCert, 0o644},
		{replicaCertName + ".key", c.Key, 0o600}, {replicaCertName + ".pem", c.Cert, 0o644},
	} {
		if err := datadir.WriteFileAtomic(filepath.Join(certDir, f.name), []byte(f.data), f.perm); err != nil {
			return InitResult{}, err
		}
	}
	cs, err := certs.Open(certDir, certs.Config{})
	if err != nil {
		return InitResult{}, err
	}
	if _, err := cs.ClientTLSConfig(replicaCertName); err != nil {
		return InitResult{}, err
	}
	s := datadir.DefaultSettings(c.Domain)
	s.InternalName = c.InternalName
	if c.ExternalName != "" {
		s.ExternalName = c.ExternalName
	}
	s.ReplicaOf, s.ReplicaName, s.ReplicaSite = primary, c.Replica, c.Site
	s.PrimaryInternalURL, s.PrimaryExternalURL = c.PrimaryInternalURL, c.PrimaryExternalURL
	st, err := store.Open(opts.Dir, &store.Options{Now: opts.Now})
	if err != nil {
		return InitResult{}, err
	}
	err = st.MakeReplica(context.Background(), primary[0])
	if err == nil {
		err = recordDirAdminCert(context.Background(), st, cs, "devsvc init", nil)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return InitResult{}, err
	}
	if err := datadir.WriteFileAtomic(filepath.Join(opts.Dir, datadir.ConfigFile), s.Render(), 0o640); err != nil {
		return InitResult{}, err
	}
	return InitResult{Settings: s}, nil
}

// checkReplicaSettings refuses a data directory whose settings and store
// disagree on whether it is a replica.
func checkReplicaSettings(s datadir.Settings, st *store.Store, dir string) error {
	switch {
	case len(s.ReplicaOf) > 0 && st.ReplicaOf() == "":
		return fmt.Errorf("%s says replica_of = %s, but its store is a primary's (it was not made by devsvc init --replica-of): remove replica_of, or make the replica in a new directory", filepath.Join(dir, datadir.ConfigFile), strings.Join(s.ReplicaOf, ", "))
	case len(s.ReplicaOf) == 0 && st.ReplicaOf() != "":
		return fmt.Errorf("%s has no replica_of, but its store is a replica of %s: set replica_of = %s again (a replica's store cannot serve as a primary)", filepath.Join(dir, datadir.ConfigFile), st.ReplicaOf(), st.ReplicaOf())
	}
	return nil
}

// newFollower connects a replica's follower to its primary, with the
// replica's certificate.
func newFollower(d *deps, s datadir.Settings, ri datadir.RunInfo, rl *reloader, log *slog.Logger) (*replica.Follower, *adminapi.ReplicaClient, error) {
	tlsConf, err := d.certs.ClientTLSConfig(replicaCertName)
	if err != nil {
		return nil, nil, fmt.Errorf("the replica's certificate: %w; make the replica again (devsvc replicas add on the primary, then devsvc init --replica-of)", err)
	}
	client, err := adminapi.DialReplica(s.ReplicaOf, tlsConf, s.ReplicaRetryMax)
	if err != nil {
		return nil, nil, err
	}
	f := replica.New(d.store, client, replica.Config{
		Dir: filepath.Join(d.dir, datadir.ReplicaDir), Primary: strings.Join(s.ReplicaOf, ", "),
		DeviceURLs: func() (string, string) { return deviceURLs(rl.settings(), ri) },
		Version:    Version(), Logger: log, MaxBackoff: s.ReplicaRetryMax, Now: d.wall,
	})
	return f, client, nil
}

// deviceURLs are the base URLs devices reach this service at: the
// internal_url and external_url settings in force, or the listeners'
// addresses under the internal and external names.
func deviceURLs(s datadir.Settings, ri datadir.RunInfo) (internal, external string) {
	return baseURL(s.InternalURL, s.InternalName, ri.Internal), baseURL(s.ExternalURL, s.ExternalName, ri.External)
}

// followerWarnings says, on a replica, that the primary cannot be reached.
func followerWarnings(f *replica.Follower) []string {
	st := f.Status()
	if st.Connected {
		return nil
	}
	return []string{fmt.Sprintf("the primary %s cannot be reached since %s (%s): this replica serves its site from what it has (change %d, %d behind as last heard), keeps %d check-ins and reports for the primary, and tries again by itself",
		st.Primary, st.Since.UTC().Format(time.RFC3339), st.LastError, st.Position, st.Behind(), st.Outbox)}
}

// replicaAlarmWarnings says, on a primary, which replicas are behind.
func replicaAlarmWarnings(svc *service.Service) []string {
	var out []string
	for _, a := range svc.ReplicaAlarms() {
		out = append(out, "alarm: "+a.Detail)
	}
	return out
}

// runReplicaChecks raises and clears the replicas' alarms every poll
// until ctx is done.
func runReplicaChecks(ctx context.Context, svc *service.Service, poll time.Duration, log *slog.Logger) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := svc.CheckReplicas(ctx); err != nil && ctx.Err() == nil {
			log.Error("checking the replicas", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// siteOf returns the site of a device's address in the table sites
// gives (nil, or no table: none), for devices on the LAN: devices through
// the edge are remote.
func siteOf(sites func() *firmware.SiteTable, addr netip.Addr, loc firmware.Location) string {
	if sites == nil || loc != firmware.Internal {
		return ""
	}
	z, ok := sites().Lookup(addr)
	if !ok {
		return ""
	}
	return z.Name
}

// mirror is deviceapi's Mirror on a primary: the base URLs of the
// replica of a LAN device's site, when it holds the update.
func mirror(svc *service.Service) func(string, firmware.Location, firmware.Update) (string, string, bool) {
	return func(site string, loc firmware.Location, u firmware.Update) (string, string, bool) {
		if site == "" || loc != firmware.Internal {
			return "", "", false
		}
		return svc.ReplicaFor(site, u)
	}
}

// serviceFor is provisioning's ServiceFor on a primary: a device of a
// site with a replica is given the replica's check-in URLs. client gives
// the address a request comes from (behind a trusted proxy, the client
// it names), as the device API's check-ins find their site.
func serviceFor(svc *service.Service, sites func() *firmware.SiteTable, client func(*http.Request) (netip.Addr, bool), loc firmware.Location) func(*http.Request) (string, string, bool) {
	return func(r *http.Request) (string, string, bool) {
		addr, ok := client(r)
		if !ok {
			return "", "", false
		}
		site := siteOf(sites, addr, loc)
		if site == "" {
			return "", "", false
		}
		return svc.ReplicaOfSite(site)
	}
}

// replicaHooks are what the device side needs of replication: on a
// replica, the primary's base URLs, given as the files' alternatives; on
// a primary with sites, where a site's devices are sent.
type replicaHooks struct {
	altInternal, altExternal string
	mirror                   func(string, firmware.Location, firmware.Update) (string, string, bool)
	serviceFor               func(*http.Request) (string, string, bool)
}

// apply sets the hooks in the device API's and the provisioning's
// configurations.
func (h replicaHooks) apply(api *deviceapi.Config, prov *provisioning.Config) {
	api.AltInternalURL, api.AltExternalURL, api.Mirror = h.altInternal, h.altExternal, h.mirror
	prov.ServiceFor = h.serviceFor
}

// replicaAdminAddr is the admin address replicas are given by default:
// the admin listener's, with this host's internal name when it listens on
// every address.
func replicaAdminAddr(bound, internalName string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = internalName
	}
	return net.JoinHostPort(host, port)
}
