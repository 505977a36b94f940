package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/internal/freespace"
)

var replicasCmd = &command{
	name: "replicas", args: "add NAME --site SITE -o FILE | list | remove NAME [--reason TEXT]",
	summary: "replicas: services at sites that follow this one and serve the site's devices",
	help: `A replica serves one site's devices from its own copy of this service's
catalog and files, which it follows: one import and approval here reach
every replica, each file crosses the WAN once per replica, and the site
keeps working while the WAN is down (docs/replicas.md).

add issues the replica's credentials into one file (-o FILE, mode 0600):
its client certificate with the replica role (recorded and revocable like
an admin certificate), a server certificate for its names under this
service's CA (devices that trust the CA trust the replica), an admin
certificate for its own data directory, the CA certificate and this
service's admin address. The file holds private keys: move it to the
replica's host by a safe way and delete it once used. There:

  devsvc init --data DIR --replica-of PRIMARY:9443 --credentials FILE
  devsvc serve --data DIR

The replica's devices reach it by --internal-name (default NAME.<domain>;
an IP address works too), which its certificate covers with
ucupdates-r2.<domain>, so that a site's DNS may point that name at it. It
reaches this service's admin API at --primary (default: the admin
listener's address); the admin listener must be reachable from the
replica (admin_addr = :9443 rather than loopback). --no-accounts keeps the
device accounts (their NT hashes) off the replica: its devices then sign
in against a directory of its own (ldap_url on the replica).

list shows each replica: its site, how far it has applied the changes
(position, and how many behind), when it last called, the file bytes it
fetched and the check-ins and reports it forwarded, and its alarms (a
replica that has not applied a release replica_alarm_after after it).
remove revokes its certificate: it is refused from its next call on.

Examples:
  devsvc replicas add paris --site paris --internal-name dus-paris.contoso.com -o paris.cred
  devsvc replicas list
  devsvc replicas remove paris --reason "site closed"`,
	setup: func(fs *flag.FlagSet) runFunc {
		var site, out, internal, external, reason string
		var names, primary stringList
		var noAccounts bool
		fs.StringVar(&site, "site", "", "add: the `SITE` the replica serves (one replica per site)")
		fs.StringVar(&out, "o", "", "add: write the credentials to `FILE` (never overwritten)")
		fs.StringVar(&internal, "internal-name", "", "add: `NAME` (or IP) the site's devices reach the replica by (default NAME.<domain>)")
		fs.StringVar(&external, "external-name", "", "add: `NAME` devices outside reach it by, through its edge")
		fs.Var(&names, "name", "add: another DNS `NAME` or IP for its certificate (repeatable)")
		fs.Var(&primary, "primary", "add: this service's admin `ADDR` the replica dials, host:port (repeatable; default the admin listener's)")
		fs.BoolVar(&noAccounts, "no-accounts", false, "add: do not replicate the device accounts (NT hashes) to it")
		fs.StringVar(&reason, "reason", "", "remove: a `TEXT` saying why, for the history")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say add NAME, list or remove NAME")
			}
			switch args[0] {
			case "add":
				if len(args) != 2 || site == "" || out == "" {
					return usagef("add takes one NAME, --site SITE and -o FILE")
				}
				if fileExists(out) {
					return fmt.Errorf("%s exists: choose another -o FILE (the credentials are never written over a file)", out)
				}
				req := service.AddReplicaRequest{Name: args[1], Site: site, InternalName: internal, ExternalName: external, Names: names, NoAccounts: noAccounts, Primary: primary}
				var info service.ReplicaInfo
				var creds []byte
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					var err error
					info, creds, err = c.AddReplica(ctx, req)
					return err
				})
				if err != nil {
					return err
				}
				if err := writeNew(out, creds, 0o600); err != nil {
					return fmt.Errorf("%w (replica %s was added: remove it with devsvc replicas remove %s, and add it again)", err, info.Name, info.Name)
				}
				c, err := replica.ParseCredentials(creds)
				if err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, map[string]any{"replica": info.Replica, "credentials": out, "primary": c.Primary, "internalName": c.InternalName})
				}
				fmt.Fprintf(e.stdout, "Added replica %s for site %s (certificate serial %s).\n", info.Name, info.Site, info.CertSerial)
				fmt.Fprintf(e.stdout, "Its credentials are in %s: they hold private keys; move the file to the replica's host by a safe way, and delete it once used.\n", out)
				fmt.Fprintf(e.stdout, "Its devices reach it as %s; it reaches this service at %s.\n", c.InternalName, strings.Join(c.Primary, ", "))
				for _, a := range c.Primary {
					if host, _, err := net.SplitHostPort(a); err == nil && (host == "localhost" || net.ParseIP(host).IsLoopback()) {
						fmt.Fprintf(e.stdout, "NOTE: %s is a loopback address: only a replica on this host reaches it. Set admin_addr = :9443 (or this host's address) and pass --primary HOST:PORT.\n", a)
						break
					}
				}
				fmt.Fprintf(e.stdout, "On the replica's host:\n  devsvc init --data DIR --replica-of %s --credentials %s\n  devsvc serve --data DIR\n", c.Primary[0], out)
				return nil
			case "list":
				if len(args) != 1 {
					return usagef("list takes no argument")
				}
				var rs []service.ReplicaInfo
				var head uint64
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					var err error
					rs, head, err = c.Replicas(ctx)
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					if rs == nil {
						rs = []service.ReplicaInfo{}
					}
					return printJSON(e.stdout, map[string]any{"head": head, "replicas": rs})
				}
				printReplicas(e.stdout, rs, head)
				return nil
			case "remove":
				if len(args) != 2 {
					return usagef("remove takes the NAME of one replica (devsvc replicas list shows them)")
				}
				var info service.ReplicaInfo
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					var err error
					info, err = c.RemoveReplica(ctx, args[1], reason)
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, map[string]string{"removed": info.Name})
				}
				fmt.Fprintf(e.stdout, "Removed replica %s of site %s: its certificate (serial %s) is revoked, and it is refused from its next call on.\n", info.Name, info.Site, info.CertSerial)
				return nil
			}
			return usagef("unknown replicas action %q: say add, list or remove", args[0])
		}
	},
}

// printReplicas writes the replicas as a table, and their alarms.
func printReplicas(w io.Writer, rs []service.ReplicaInfo, head uint64) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "No replicas: add one with devsvc replicas add NAME --site SITE -o FILE.")
		return
	}
	fmt.Fprintf(w, "This service is at change %d.\n", head)
	t := newTable(w, "NAME", "SITE", "STATE", "POSITION", "BEHIND", "LAST CONTACT", "FETCHED", "REPORTS", "URL")
	for _, r := range rs {
		state := "following"
		switch {
		case !r.Active():
			state = "removed " + when(r.Removed)
		case len(r.Alarms) > 0:
			state = "ALARM"
		case r.Progress.LastContact.IsZero():
			state = "never called"
		case r.Stale:
			state = "not heard from"
		}
		p := r.Progress
		fetched := fmt.Sprintf("%s in %d files", freespace.Bytes(p.BytesFetched), p.FilesFetched)
		t.row(r.Name, r.Site, state, strconv.FormatUint(p.Position, 10), strconv.FormatUint(r.Behind, 10), when(p.LastContact), fetched,
			strconv.FormatInt(p.Reports, 10), p.InternalURL)
	}
	t.flush()
	for _, r := range rs {
		for _, a := range r.Alarms {
			fmt.Fprintf(w, "ALARM since %s: %s\n", when(a.Raised), a.Detail)
		}
	}
}

// printReplication writes devsvc status's replication part.
func printReplication(w io.Writer, r service.ReplicationStatus) {
	if f := r.Follower; f != nil {
		if f.Connected {
			fmt.Fprintf(w, "\nReplica of %s: following since %s; at change %d (%d behind), last contact %s.\n",
				f.Primary, when(f.Since), f.Position, f.Behind(), when(f.LastContact))
		} else {
			fmt.Fprintf(w, "\nReplica of %s: THE PRIMARY CANNOT BE REACHED since %s (%s); serving the site from change %d, trying again by itself.\n",
				f.Primary, when(f.Since), f.LastError, f.Position)
		}
		fmt.Fprintf(w, "Fetched %s in %d files since the start; %d check-ins and reports wait to be forwarded.\n", freespace.Bytes(f.BytesFetched), f.FilesFetched, f.Outbox)
		return
	}
	if len(r.Replicas) == 0 {
		return
	}
	active, behind := 0, 0
	for _, ri := range r.Replicas {
		if ri.Active() {
			active++
			if ri.Behind > 0 || ri.Stale {
				behind++
			}
		}
	}
	fmt.Fprintf(w, "\nReplicas: %d (%d behind or not heard from); devsvc replicas list shows them.\n", active, behind)
}

// replicationStatus asks the server its replication state; a server
// without it (an older version) has none.
func replicationStatus(ctx context.Context, c *adminapi.Client) (*service.ReplicationStatus, error) {
	r, err := c.ReplicationStatus(ctx)
	var ae *adminapi.Error
	if errors.As(err, &ae) && ae.Code.String() == "Unimplemented" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// statusJSON is devsvc status --json: the status, and replication.
type statusJSON struct {
	adminapi.Status
	Replication *service.ReplicationStatus `json:"replication,omitempty"`
}

// initReplica runs devsvc init --replica-of.
func initReplica(e *env, primary, credentials, domain string) error {
	if primary == "" || credentials == "" {
		return usagef("--replica-of PRIMARY and --credentials FILE go together")
	}
	data, err := os.ReadFile(credentials)
	if err != nil {
		return fmt.Errorf("the credentials: %w (devsvc replicas add on the primary writes them)", err)
	}
	res, err := devsvc.Init(devsvc.InitOptions{Dir: e.data, ReplicaOf: primary, Credentials: data, Domain: domain})
	if err != nil {
		return err
	}
	s := res.Settings
	if e.json {
		return printJSON(e.stdout, map[string]any{"data": e.data, "domain": s.Domain, "internalName": s.InternalName, "replica": s.ReplicaName,
			"site": s.ReplicaSite, "primary": s.ReplicaOf, "config": filepath.Join(e.data, datadir.ConfigFile)})
	}
	fmt.Fprintf(e.stdout, "Initialised %s as replica %s of site %s, following %s.\n", e.data, s.ReplicaName, s.ReplicaSite, strings.Join(s.ReplicaOf, ", "))
	fmt.Fprintf(e.stdout, "  settings     %s\n", filepath.Join(e.data, datadir.ConfigFile))
	fmt.Fprintf(e.stdout, "  certificates %s (the primary's CA, without its key; server for %s)\n", filepath.Join(e.data, datadir.CertsDir), s.InternalName)
	fmt.Fprintf(e.stdout, "Delete %s now: it holds private keys this directory has.\n", credentials)
	fmt.Fprintf(e.stdout, "Next: devsvc serve --data %s (it fetches the primary's catalog and files, then follows it)\n", e.data)
	return nil
}
