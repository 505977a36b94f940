package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/devsvc"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var initCmd = &command{
	name: "init", args: "--data DIR --domain DOMAIN [flags]",
	summary: "create a data directory: settings, private CA and certificates, empty store",
	help: `The server certificate covers the internal and external names,
ucupdates-r2.<DOMAIN>, this host, localhost and 127.0.0.1; devices trust only
the CA it is issued by. An admin client certificate (certs/admin.pem) is what
the admin commands use. Settings go to DIR/devsvc.conf, every one listed with
its default.

Example:
  devsvc init --data /var/lib/opendus --domain contoso.com \
      --internal-name dus.contoso.com --external-name dus-ext.contoso.com`,
	setup: func(fs *flag.FlagSet) runFunc {
		var o struct {
			domain, internal, external string
			names                      stringList
			force                      bool
		}
		fs.StringVar(&o.domain, "domain", "", "the SIP/DNS `DOMAIN` devices are in (required)")
		fs.StringVar(&o.internal, "internal-name", "", "`NAME` devices use inside (default ucupdates-r2.DOMAIN)")
		fs.StringVar(&o.external, "external-name", "", "`NAME` devices use outside (default ucupdates.DOMAIN)")
		fs.Var(&o.names, "name", "another DNS `NAME` or IP for the server certificate (repeatable)")
		fs.BoolVar(&o.force, "force", false, "replace the settings and certificates of an existing data directory (the catalog and files are kept)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			if o.domain == "" {
				return usagef("--domain is required, e.g. --domain contoso.com")
			}
			s, err := devsvc.Init(devsvc.InitOptions{Dir: e.data, Domain: o.domain, InternalName: o.internal,
				ExternalName: o.external, ExtraNames: o.names, Force: o.force})
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.stdout, map[string]any{"data": e.data, "domain": s.Domain, "internalName": s.InternalName,
					"externalName": s.ExternalName, "config": filepath.Join(e.data, datadir.ConfigFile), "certs": filepath.Join(e.data, datadir.CertsDir)})
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
	name: "serve", args: "--data DIR [flags]",
	summary: "run the service: device listeners and the admin API",
	help: `Runs until interrupted (Ctrl-C or SIGTERM), then shuts down gracefully.
Listener addresses come from DIR/devsvc.conf unless given here; port 0 picks a
free port, and DIR/run/serve.json tells the admin commands where it went.
Under systemd (the opendus unit, Type=notify) it tells systemd when it is
ready and when it stops, and pings the watchdog (docs/operations.md).

Example:
  devsvc serve --data ./dus --internal-addr :8443 --external-addr :9444`,
	setup: func(fs *flag.FlagSet) runFunc {
		var o struct{ internal, external, admin, logLevel, logFormat string }
		fs.StringVar(&o.internal, "internal-addr", "", "LAN listener `ADDR` (default from settings, :443)")
		fs.StringVar(&o.external, "external-addr", "", "edge listener `ADDR`, NTLM (default :4443)")
		fs.StringVar(&o.admin, "admin-addr", "", "admin API `ADDR` (default 127.0.0.1:9443)")
		fs.StringVar(&o.logLevel, "log-level", "info", "`LEVEL`: debug, info, warn or error")
		fs.StringVar(&o.logFormat, "log-format", "text", "`FORMAT`: text or json")
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
			return serveNotified(ctx, log, devsvc.ServeOptions{Dir: e.data, InternalAddr: o.internal,
				ExternalAddr: o.external, AdminAddr: o.admin, Logger: log})
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

// fileExists reports whether name exists.
func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
