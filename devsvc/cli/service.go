package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/internal/simclock"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var initCmd = &command{
	name: "init", args: "--data DIR --domain DOMAIN [flags] | --data DIR --replica-of PRIMARY --credentials FILE",
	summary: "create a data directory: settings, private CA and certificates, empty store",
	help: `The server certificate covers the internal and external names,
ucupdates-r2.<DOMAIN>, this host, localhost and 127.0.0.1; devices trust only
the CA it is issued by. An admin client certificate (certs/admin.pem) is what
the admin commands use. Settings go to DIR/devsvc.conf, every one listed with
its default. The signing keys of the update metadata go to DIR/keys
(docs/protocol.md "Signed update metadata"; devsvc keys --help).

On an existing data directory init refuses, unless --force: it then keeps
the CA, the certificates, the settings, the catalog, the files and the logs.
Names given that differ from the settings are set in devsvc.conf (its other
lines stay as they are) and, when the server certificate does not cover
them, it is reissued under the same CA with its old names and the new ones,
so devices keep trusting it. --force --new-ca replaces the CA and every
certificate: devices that cached the old CA stop connecting until they are
given the new one, and the old admin certificates stop working. Whatever is
replaced is kept in DIR/backups/init-<time>/ first. Stop devsvc serve before
a re-init.

With --replica-of PRIMARY (the primary's admin address, host:port) and
--credentials FILE (what devsvc replicas add wrote on the primary), init
makes a replica's data directory instead: its settings, names and
certificates come from the file (the primary's CA, without its key), it
holds no signing keys (it relays the metadata its primary signs), and
devsvc serve on it follows the primary (docs/replicas.md).

Examples:
  devsvc init --data /var/lib/opendus --domain contoso.com \
      --internal-name dus.contoso.com --external-name dus-ext.contoso.com
  devsvc init --data /var/lib/opendus --replica-of dus.contoso.com:9443 \
      --credentials paris.cred
  devsvc init --data /var/lib/opendus --domain contoso.com --force \
      --internal-name dus2.contoso.com`,
	setup: func(fs *flag.FlagSet) runFunc {
		var o struct {
			domain, internal, external string
			names                      stringList
			force, newCA               bool
			replicaOf, credentials     string
		}
		fs.StringVar(&o.domain, "domain", "", "the SIP/DNS `DOMAIN` devices are in (required)")
		fs.StringVar(&o.internal, "internal-name", "", "`NAME` devices use inside (default ucupdates-r2.DOMAIN)")
		fs.StringVar(&o.external, "external-name", "", "`NAME` devices use outside (default ucupdates.DOMAIN)")
		fs.Var(&o.names, "name", "another DNS `NAME` or IP for the server certificate (repeatable)")
		fs.BoolVar(&o.force, "force", false, "re-initialise an existing data directory, keeping its CA, certificates, settings, catalog and files (names given are updated)")
		fs.BoolVar(&o.newCA, "new-ca", false, "with --force: replace the CA and every certificate (devices must be given the new CA)")
		fs.StringVar(&o.replicaOf, "replica-of", "", "make a replica of the primary at this admin `ADDR` (host:port), with --credentials")
		fs.StringVar(&o.credentials, "credentials", "", "with --replica-of: the `FILE` devsvc replicas add wrote on the primary")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			if o.replicaOf != "" || o.credentials != "" {
				return initReplica(e, o.replicaOf, o.credentials, o.domain)
			}
			if o.domain == "" {
				return usagef("--domain is required, e.g. --domain contoso.com")
			}
			if o.newCA && !o.force {
				return usagef("--new-ca replaces the CA of an existing data directory: add --force to say so")
			}
			res, err := devsvc.Init(devsvc.InitOptions{Dir: e.data, Domain: o.domain, InternalName: o.internal,
				ExternalName: o.external, ExtraNames: o.names, Force: o.force, NewCA: o.newCA})
			if err != nil {
				return err
			}
			s := res.Settings
			if e.json {
				changes := res.Changes
				if changes == nil {
					changes = []string{}
				}
				return printJSON(e.stdout, map[string]any{"data": e.data, "domain": s.Domain, "internalName": s.InternalName,
					"externalName": s.ExternalName, "config": filepath.Join(e.data, datadir.ConfigFile), "certs": filepath.Join(e.data, datadir.CertsDir),
					"reinit": res.Reinit, "changes": changes, "backup": res.Backup})
			}
			if res.Reinit {
				fmt.Fprintf(e.stdout, "Re-initialised %s for %s: the CA, certificates, settings, catalog and files are kept", e.data, s.Domain)
				if len(res.Changes) == 0 {
					fmt.Fprintln(e.stdout, "; nothing needed changing.")
				} else {
					fmt.Fprintln(e.stdout, ", except:")
					for _, c := range res.Changes {
						fmt.Fprintf(e.stdout, "  %s\n", c)
					}
				}
				if res.Backup != "" {
					fmt.Fprintf(e.stdout, "What was replaced is in %s.\n", res.Backup)
				}
				fmt.Fprintf(e.stdout, "Next: devsvc serve --data %s\n", e.data)
				return nil
			}
			fmt.Fprintf(e.stdout, "Initialised %s for %s.\n", e.data, s.Domain)
			fmt.Fprintf(e.stdout, "  settings     %s\n", filepath.Join(e.data, datadir.ConfigFile))
			fmt.Fprintf(e.stdout, "  certificates %s (CA, server for %s and %s, admin client)\n", filepath.Join(e.data, datadir.CertsDir), s.InternalName, s.ExternalName)
			fmt.Fprintf(e.stdout, "Next: devsvc serve --data %s\n", e.data)
			return nil
		}
	},
}

var serveCmd = &command{
	name: "serve", args: "--data DIR [flags]", hiddenFlags: []string{"simulated-clock"},
	summary: "run the service: device listeners, the admin API and the web console",
	help: `Runs until interrupted (Ctrl-C or SIGTERM), then shuts down gracefully.
Listener addresses come from DIR/devsvc.conf unless given here; port 0 picks a
free port, and DIR/run/serve.json tells the admin commands where it went.
Under systemd (the opendus unit, Type=notify) it tells systemd when it is
ready and when it stops, and pings the watchdog (docs/operations.md).
A data directory without signing keys gets them in DIR/keys at the start
(devsvc keys --help). On a replica's data directory (made by
devsvc init --replica-of) it follows the primary: it fetches its catalog
and files, relays its signed metadata and forwards check-ins and reports
(docs/replicas.md).
The web console is at https://127.0.0.1:9444/ by default (console_addr); sign
in with an account of devsvc admins add.

SIGHUP (systemctl reload opendus) reloads DIR/devsvc.conf: check intervals,
URLs, timeouts, log and sign-in limits and the other settings that can change
while it runs apply at once; a file it refuses changes nothing; settings that
need a restart (addresses, names, the directory, inventory_flush) are logged
and devsvc status lists them.

With --metrics-addr (metrics_addr) a plain-HTTP listener serves /metrics for
Prometheus and /healthz and /readyz; keep it on loopback. The device
listeners serve /healthz and /readyz too.

Example:
  devsvc serve --data ./dus --internal-addr :8443 --external-addr :9444
  devsvc serve --data ./dus --metrics-addr 127.0.0.1:9445`,
	setup: func(fs *flag.FlagSet) runFunc {
		var o struct{ internal, external, admin, console, metrics, logLevel, logFormat, clock string }
		fs.StringVar(&o.internal, "internal-addr", "", "LAN listener `ADDR` (default from settings, :443)")
		fs.StringVar(&o.external, "external-addr", "", "edge listener `ADDR`, NTLM (default :4443)")
		fs.StringVar(&o.admin, "admin-addr", "", "admin API `ADDR` (default 127.0.0.1:9443)")
		fs.StringVar(&o.console, "console-addr", "", "web console `ADDR` (default 127.0.0.1:9444); off: no console")
		fs.StringVar(&o.metrics, "metrics-addr", "", "metrics listener `ADDR`, plain HTTP (default from settings: none)")
		fs.StringVar(&o.logLevel, "log-level", "info", "`LEVEL`: debug, info, warn or error")
		fs.StringVar(&o.logFormat, "log-format", "text", "`FORMAT`: text or json")
		// Hidden: for rehearsals with a fleet simulator (docs/simulator.md).
		fs.StringVar(&o.clock, "simulated-clock", "", "run on a simulated clock that starts at `TIME` (RFC 3339) and that a simulator (device-sim) drives; loopback listeners only, for rehearsals")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			hopts := &slog.HandlerOptions{Level: level}
			var h slog.Handler
			switch o.logFormat {
			case "text":
				h = slog.NewTextHandler(e.stderr, hopts)
			case "json":
				h = slog.NewJSONHandler(e.stderr, hopts)
			default:
				return usagef("--log-format must be text or json")
			}
			log := slog.New(h)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			opts := devsvc.ServeOptions{Dir: e.data, InternalAddr: o.internal,
				ExternalAddr: o.external, AdminAddr: o.admin, ConsoleAddr: o.console, MetricsAddr: o.metrics, Logger: log}
			if o.clock != "" {
				clock, err := simulatedClock(e.data, o.clock)
				if err != nil {
					return err
				}
				defer clock.Close()
				opts.Clock = clock
			}
			return serveNotified(ctx, log, opts, hup)
		}
	},
}

var versionCmd = &command{
	name: "version", args: "", summary: "print the version, commit and Go version (also devsvc --version)",
	setup: func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, e *env, args []string) error {
			b := devsvc.BuildInfo()
			if e.json {
				return printJSON(e.stdout, b)
			}
			_, err := fmt.Fprintf(e.stdout, "devsvc %s\n", b)
			return err
		}
	},
}

// simulatedClock creates (or opens) the simulated clock DIR/run/clock at
// start, or at its own time if that is later: a rehearsal's clock never
// goes back.
func simulatedClock(dir, start string) (*simclock.Clock, error) {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return nil, usagef("--simulated-clock %q: want an RFC 3339 time (2026-11-23T06:00:00Z)", start)
	}
	run := filepath.Join(dir, datadir.RunDir)
	if err := os.MkdirAll(run, 0o750); err != nil {
		return nil, err
	}
	return simclock.Create(filepath.Join(run, datadir.ClockFile), t)
}

// fileExists reports whether name exists.
func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
