package cli

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/cabingest/cabcli"
	"github.com/opendus/opendus/certs"
	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

var certsCmd = &command{
	name: "certs", args: "list | renew [--add-name NAME] | export [--format pem|der] [-o FILE] | issue NAME --role admin|readonly -o PREFIX | revoke NAME|SERIAL [--reason TEXT]",
	summary: "certificates: list, renew the server's, export the CA, issue and revoke admin certificates",
	help: `list shows the service's certificates (DIR/certs: the CA, the server
certificate, the data directory's admin certificate) and every admin
certificate the service issued, with its state: valid, expired or revoked.
renew issues a new server certificate under the same CA; a running server
picks it up within a minute, without dropping connections. export writes the
CA certificate, which devices must trust, in PEM or DER.

issue makes an admin client certificate: the key is made here and written to
PREFIX.key (mode 0600), and the running server certifies it (PREFIX.pem),
with the admin role or the read-only role that may only look. revoke
withdraws one, by name or serial: the server refuses it from the next call
on. The server records both in its registry and its history (who issued or
revoked what, when). issue, revoke and list go through the running server;
with it stopped, --offline works on the data directory itself (the history
then names local:USER).

Examples:
  devsvc certs list
  devsvc certs issue helpdesk --role readonly -o ./helpdesk
  devsvc certs revoke helpdesk --reason "laptop lost"
  devsvc certs renew --add-name dus2.contoso.com
  devsvc certs export --format der -o opendus-ca.cer`,
	setup: func(fs *flag.FlagSet) runFunc {
		var format, out, role, reason string
		var offline bool
		var add stringList
		fs.StringVar(&role, "role", "readonly", "issue: the certificate's `ROLE`, admin or readonly")
		fs.StringVar(&format, "format", "pem", "export `FORMAT`: pem or der")
		fs.StringVar(&out, "o", "", "export to `FILE` instead of standard output; issue: write PREFIX.pem and PREFIX.key")
		fs.StringVar(&reason, "reason", "", "revoke: a `TEXT` saying why, for the history")
		fs.BoolVar(&offline, "offline", false, "issue, revoke, list: work on the data directory itself, with the server stopped")
		fs.Var(&add, "add-name", "renew: add DNS `NAME` or IP to the server certificate (repeatable)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say list, renew, export, issue NAME or revoke NAME|SERIAL")
			}
			switch args[0] {
			case "issue":
				if len(args) != 2 || out == "" {
					return usagef("issue takes one NAME and -o PREFIX")
				}
				if role != "admin" && role != "readonly" {
					return usagef("--role is admin or readonly")
				}
				return certsIssue(ctx, e, offline, args[1], role, out)
			case "revoke":
				if len(args) != 2 {
					return usagef("revoke takes the NAME or SERIAL of one admin certificate (devsvc certs list shows them)")
				}
				return certsRevoke(ctx, e, offline, args[1], reason)
			}
			if len(args) != 1 {
				return usagef("%s takes no argument", args[0])
			}
			cs, err := certs.Open(filepath.Join(e.data, datadir.CertsDir), certs.Config{})
			if err != nil {
				return err
			}
			switch args[0] {
			case "list":
				return certsList(ctx, e, offline, cs)
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

// certAdmin is where the admin certificate operations go: the running
// server's admin API, or with --offline the data directory itself.
type certAdmin interface {
	IssueAdminCertificate(ctx context.Context, name, role string, pubDER []byte) (firmware.AdminCert, []byte, error)
	AdminCertificates(ctx context.Context) ([]firmware.AdminCert, error)
	RevokeAdminCertificate(ctx context.Context, ref, reason string) (firmware.AdminCert, error)
}

// localCerts is certAdmin on the data directory: the service layer as the
// local principal.
type localCerts struct {
	svc *service.Service
	ctx context.Context // carries the principal
}

func (l localCerts) IssueAdminCertificate(_ context.Context, name, role string, pubDER []byte) (firmware.AdminCert, []byte, error) {
	return l.svc.IssueAdminCert(l.ctx, name, service.Role(role), pubDER)
}

func (l localCerts) AdminCertificates(context.Context) ([]firmware.AdminCert, error) {
	return l.svc.AdminCerts(l.ctx)
}

func (l localCerts) RevokeAdminCertificate(_ context.Context, ref, reason string) (firmware.AdminCert, error) {
	return l.svc.RevokeAdminCert(l.ctx, ref, reason)
}

// withCertAdmin runs f against the server, or the data directory when
// offline. A server that cannot be reached gets a hint about --offline.
func withCertAdmin(ctx context.Context, e *env, offline bool, f func(context.Context, certAdmin) error) error {
	if offline {
		svc, lctx, closeLocal, err := devsvc.Local(ctx, e.data)
		if err != nil {
			return err
		}
		err = f(lctx, localCerts{svc, lctx})
		if cerr := closeLocal(); err == nil {
			err = cerr
		}
		return err
	}
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error { return f(ctx, c) })
	if adminapi.IsUnavailable(err) {
		err = fmt.Errorf("%w\nWith the server stopped, add --offline to work on the data directory %s itself", err, e.data)
	}
	return err
}

// certsIssue makes a key here, has it certified and writes both.
func certsIssue(ctx context.Context, e *env, offline bool, name, role, prefix string) error {
	for _, f := range []string{prefix + ".pem", prefix + ".key"} {
		if fileExists(f) {
			return fmt.Errorf("%s exists: choose another -o PREFIX (issue never overwrites a key)", f)
		}
	}
	key, keyPEM, err := certs.NewClientKey()
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	var rec firmware.AdminCert
	var certPEM []byte
	err = withCertAdmin(ctx, e, offline, func(ctx context.Context, c certAdmin) error {
		rec, certPEM, err = c.IssueAdminCertificate(ctx, name, role, pub)
		return err
	})
	if err != nil {
		return err
	}
	if err := writeNew(prefix+".key", keyPEM, 0o600); err != nil {
		return fmt.Errorf("%w (certificate serial %s was issued: revoke it with devsvc certs revoke %s)", err, rec.Serial, rec.Serial)
	}
	if err := writeNew(prefix+".pem", certPEM, 0o644); err != nil {
		return fmt.Errorf("%w (certificate serial %s was issued: revoke it with devsvc certs revoke %s)", err, rec.Serial, rec.Serial)
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"name": rec.Name, "role": rec.Role, "serial": rec.Serial, "expires": rec.Expires,
			"sha256": rec.SHA256, "cert": prefix + ".pem", "key": prefix + ".key"})
	}
	fmt.Fprintf(e.stdout, "Issued %s (%s), serial %s, valid until %s: %s.pem, and its key %s.key (keep it private).\n",
		rec.Name, rec.Role, rec.Serial, rec.Expires.Format(time.DateOnly), prefix, prefix)
	fmt.Fprintf(e.stdout, "Use: devsvc --cert %s.pem --key %s.key --ca %s ...\nRevoke: devsvc certs revoke %s\n",
		prefix, prefix, filepath.Join(e.data, datadir.CertsDir, certs.CACertFile), rec.Serial)
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func certsRevoke(ctx context.Context, e *env, offline bool, ref, reason string) error {
	var rec firmware.AdminCert
	err := withCertAdmin(ctx, e, offline, func(ctx context.Context, c certAdmin) error {
		var err error
		rec, err = c.RevokeAdminCertificate(ctx, ref, reason)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, rec)
	}
	fmt.Fprintf(e.stdout, "Revoked %s (%s, serial %s): the admin API refuses it from now on.\n", rec.Name, rec.Role, rec.Serial)
	return nil
}

// certsList prints the data directory's certificates and the registry of
// admin certificates. Without a server and without --offline, it reads
// the registry from the data directory if it can (listing changes
// nothing).
func certsList(ctx context.Context, e *env, offline bool, cs *certs.Store) error {
	var admins []firmware.AdminCert
	list := func(ctx context.Context, c certAdmin) error {
		var err error
		admins, err = c.AdminCertificates(ctx)
		return err
	}
	err := withCertAdmin(ctx, e, offline, list)
	if err != nil && !offline && adminapi.IsUnavailable(err) && e.server == "" {
		if werr := withCertAdmin(ctx, e, true, list); werr == nil {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	files := cs.List()
	if e.json {
		if admins == nil {
			admins = []firmware.AdminCert{}
		}
		return printJSON(e.stdout, map[string]any{"certificates": files, "adminCertificates": admins})
	}
	fmt.Fprintf(e.stdout, "Service certificates (%s):\n", filepath.Join(e.data, datadir.CertsDir))
	t := newTable(e.stdout, "NAME", "KIND", "EXPIRES", "DAYS LEFT", "NAMES", "SHA-256")
	for _, c := range files {
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
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "\nAdmin certificates (revoke one with devsvc certs revoke NAME|SERIAL):")
	t = newTable(e.stdout, "NAME", "ROLE", "STATE", "SERIAL", "ISSUED", "BY", "EXPIRES", "REVOKED")
	now := time.Now()
	for _, c := range admins {
		revoked := "-"
		if !c.Revoked.IsZero() {
			revoked = when(c.Revoked) + " by " + c.RevokedBy
			if c.Reason != "" {
				revoked += " (" + c.Reason + ")"
			}
		}
		t.row(c.Name, c.Role, c.State(now), c.Serial, when(c.Issued), c.IssuedBy, c.Expires.Format(time.DateOnly), revoked)
	}
	return t.flush()
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
