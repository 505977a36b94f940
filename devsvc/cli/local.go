package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/datadir"

	"github.com/opendus/opendus/cabingest/cabcli"
	"github.com/opendus/opendus/certs"
)

var certsCmd = &command{
	name: "certs", args: "list | renew [--add-name NAME] | export [--format pem|der] [-o FILE] | issue NAME --role admin|readonly -o PREFIX",
	summary: "the service's certificates: list, renew the server certificate, export the CA",
	help: `These work on the data directory's certificates directly (DIR/certs).
renew issues a new server certificate under the same CA; a running server
picks it up within a minute, without dropping connections. export writes the
CA certificate, which devices must trust, in PEM or DER. issue makes another
admin client certificate (PREFIX.pem and PREFIX.key) with the admin role, or
the read-only role that may only look.

Examples:
  devsvc certs list
  devsvc certs issue helpdesk --role readonly -o ./helpdesk
  devsvc certs renew --add-name dus2.contoso.com
  devsvc certs export --format der -o opendus-ca.cer`,
	setup: func(fs *flag.FlagSet) runFunc {
		var format, out, role string
		var add stringList
		fs.StringVar(&role, "role", "readonly", "issue: the certificate's `ROLE`, admin or readonly")
		fs.StringVar(&format, "format", "pem", "export `FORMAT`: pem or der")
		fs.StringVar(&out, "o", "", "export to `FILE` instead of standard output")
		fs.Var(&add, "add-name", "renew: add DNS `NAME` or IP to the server certificate (repeatable)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 || (args[0] != "issue" && len(args) != 1) {
				return usagef("say list, renew, export or issue NAME")
			}
			cs, err := certs.Open(filepath.Join(e.data, datadir.CertsDir), certs.Config{})
			if err != nil {
				return err
			}
			switch args[0] {
			case "list":
				list := cs.List()
				if e.json {
					return printJSON(e.stdout, list)
				}
				t := newTable(e.stdout, "NAME", "KIND", "EXPIRES", "DAYS LEFT", "NAMES", "SHA-256")
				for _, c := range list {
					names := append([]string(nil), c.DNSNames...)
					for _, ip := range c.IPAddresses {
						names = append(names, ip.String())
					}
					fp := c.SHA256
					if len(fp) > 23 {
						fp = fp[:23] + "..."
					}
					t.row(c.Name, c.Kind, c.NotAfter.Format(time.DateOnly), strconv.Itoa(c.DaysLeft), strings.Join(names, " "), fp)
				}
				return t.flush()
			case "renew":
				info, err := cs.RenewServer(certs.RenewOptions{AddNames: add})
				if err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, info)
				}
				fmt.Fprintf(e.stdout, "Renewed the server certificate: serial %s, valid until %s. A running server picks it up within a minute.\n",
					info.Serial, info.NotAfter.Format(time.DateOnly))
				return nil
			case "issue":
				if len(args) != 2 || out == "" {
					return usagef("issue takes one NAME and -o PREFIX")
				}
				if role != "admin" && role != "readonly" {
					return usagef("--role is admin or readonly")
				}
				certPEM, keyPEM, err := cs.IssueClient(args[1], role)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out+".key", keyPEM, 0o600); err != nil {
					return err
				}
				if err := os.WriteFile(out+".pem", certPEM, 0o644); err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, map[string]string{"name": args[1], "role": role, "cert": out + ".pem", "key": out + ".key"})
				}
				fmt.Fprintf(e.stdout, "Issued %s (%s): %s.pem, %s.key. Use: devsvc --cert %s.pem --key %s.key --ca %s ...\n",
					args[1], role, out, out, out, out, filepath.Join(e.data, datadir.CertsDir, certs.CACertFile))
				return nil
			case "export":
				data, err := cs.ExportCA(format)
				if err != nil {
					return usagef("%v", err)
				}
				if out == "" {
					_, err = e.stdout.Write(data)
					return err
				}
				if err := os.WriteFile(out, data, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "Wrote the CA certificate (%s) to %s.\n", format, out)
				return nil
			}
			return usagef("unknown certs action %q", args[0])
		}
	},
}

var cabCmd = &command{
	name: "cab", args: "list|extract|test|pack ...",
	summary: "read and write Microsoft cabinet files (run devsvc cab --help)",
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		if code := cabcli.Main(ctx, args, e.stdout, e.stderr); code != 0 {
			return exitCode(code)
		}
		return nil
	}),
}

// exitCode is a failure whose message was already printed.
type exitCode int

func (c exitCode) Error() string { return "exit status " + strconv.Itoa(int(c)) }
