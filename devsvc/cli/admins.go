package cli

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

var adminsCmd = &command{
	name: "admins", args: "add NAME [--role admin|readonly] | passwd NAME | list | disable NAME | enable NAME | remove NAME",
	summary: "manage the accounts admins sign in to the web console with",
	help: `The web console (console_addr, https://127.0.0.1:9444/ by default) signs
admins in with these accounts, or with a directory account of the admin or
read-only group when ldap_url is set. An admin may change things; a
read-only admin (--role readonly) may only look.

The password is read from a prompt, or from standard input with
--password-stdin (one line); it needs at least 15 characters (a few words
make a good one). The service keeps only its argon2id hash. Five wrong
passwords lock an account for signin_lockout, as for device accounts.
Disabling or removing an account ends its console sessions at once.

add of an account that is there already, enabled, with the same role and
password, succeeds and changes nothing, so a script may run twice; one
that differs is refused (exit status 1), saying how.

With the server stopped, --offline works on the data directory itself
(to add the first account before starting it, say).

Examples:
  devsvc admins add alice
  printf '%s\n' "$PASS" | devsvc admins add helpdesk --role readonly --password-stdin
  devsvc admins list
  devsvc admins disable helpdesk`,
	setup: func(fs *flag.FlagSet) runFunc {
		var fromStdin, offline bool
		var role string
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
		fs.StringVar(&role, "role", "admin", "add: the account's `ROLE`, admin or readonly")
		fs.BoolVar(&offline, "offline", false, "work on the data directory itself, with the server stopped")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say add, passwd, list, disable, enable or remove")
			}
			action := args[0]
			if action == "list" {
				if len(args) != 1 {
					return usagef("list takes no argument")
				}
				var as []firmware.ConsoleAdmin
				err := withConsoleAdmins(ctx, e, offline, func(ctx context.Context, c consoleAdmins) error {
					var err error
					as, err = c.ConsoleAdmins(ctx)
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					if as == nil {
						as = []firmware.ConsoleAdmin{}
					}
					return printJSON(e.stdout, as)
				}
				if len(as) == 0 {
					fmt.Fprintln(e.stdout, "No console admins yet: add one with devsvc admins add NAME.")
					return nil
				}
				t := newTable(e.stdout, "NAME", "ROLE", "STATUS", "CREATED", "UPDATED")
				for _, a := range as {
					st := "enabled"
					if a.Disabled {
						st = "disabled"
					}
					t.row(a.Name, a.Role, st, when(a.Created), when(a.Updated))
				}
				return t.flush()
			}
			if len(args) != 2 {
				return usagef("%s takes one account NAME", action)
			}
			name := args[1]
			var a firmware.ConsoleAdmin
			var err error
			existed := false
			switch action {
			case "add", "passwd":
				if err := firmware.ValidAccountName(name); err != nil {
					return usagef("%v", err)
				}
				if role != "admin" && role != "readonly" {
					return usagef("--role is admin or readonly")
				}
				pw, perr := readPassword(e, fromStdin, true)
				if perr != nil {
					return perr
				}
				err = withConsoleAdmins(ctx, e, offline, func(ctx context.Context, c consoleAdmins) error {
					if action == "add" {
						// Only to say whether it was there: the service
						// decides (adds are idempotent).
						if as, err := c.ConsoleAdmins(ctx); err == nil {
							existed = slices.ContainsFunc(as, func(a firmware.ConsoleAdmin) bool { return strings.EqualFold(a.Name, name) })
						}
						a, err = c.AddConsoleAdmin(ctx, name, role, pw)
					} else {
						a, err = c.SetConsoleAdminPassword(ctx, name, pw)
					}
					return err
				})
			case "disable", "enable":
				err = withConsoleAdmins(ctx, e, offline, func(ctx context.Context, c consoleAdmins) error {
					a, err = c.SetConsoleAdminDisabled(ctx, name, action == "disable")
					return err
				})
			case "remove":
				err = withConsoleAdmins(ctx, e, offline, func(ctx context.Context, c consoleAdmins) error { return c.RemoveConsoleAdmin(ctx, name) })
				a.Name = name
			default:
				return usagef("unknown admins action %q", action)
			}
			if err != nil {
				return err
			}
			if e.json && action == "remove" {
				return printJSON(e.stdout, map[string]string{"removed": name})
			}
			if e.json {
				return printJSON(e.stdout, a)
			}
			if existed {
				fmt.Fprintf(e.stdout, "Console admin %s is there already, enabled, %s, with this password; nothing changed.\n", a.Name, a.Role)
				return nil
			}
			past := map[string]string{"add": "Added", "passwd": "Changed the password of", "disable": "Disabled", "enable": "Enabled", "remove": "Removed"}[action]
			fmt.Fprintf(e.stdout, "%s console admin %s.\n", past, a.Name)
			if action == "add" {
				fmt.Fprintf(e.stdout, "%s (%s) signs in at %s\n", a.Name, a.Role, consoleURL(e))
			}
			return nil
		}
	},
}

// consoleURL says where the console is: the running server's address,
// else the configured one.
func consoleURL(e *env) string {
	addr := ""
	if ri, err := datadir.ReadRunInfo(e.data); err == nil {
		addr = ri.Console
	} else if s, err := datadir.LoadSettings(e.data); err == nil {
		addr = s.ConsoleAddr
	}
	if addr == "" {
		return "the web console once console_addr is set in " + datadir.ConfigFile
	}
	return "https://" + dialable(addr) + "/"
}

// consoleAdmins is where the console admin operations go: the running
// server's admin API, or with --offline the data directory itself.
type consoleAdmins interface {
	AddConsoleAdmin(ctx context.Context, name, role, password string) (firmware.ConsoleAdmin, error)
	SetConsoleAdminPassword(ctx context.Context, name, password string) (firmware.ConsoleAdmin, error)
	ConsoleAdmins(ctx context.Context) ([]firmware.ConsoleAdmin, error)
	SetConsoleAdminDisabled(ctx context.Context, name string, disabled bool) (firmware.ConsoleAdmin, error)
	RemoveConsoleAdmin(ctx context.Context, name string) error
}

// localAdmins is consoleAdmins on the data directory: the service layer
// as the local principal its context carries.
type localAdmins struct{ svc *service.Service }

func (l localAdmins) AddConsoleAdmin(ctx context.Context, name, role, password string) (firmware.ConsoleAdmin, error) {
	return l.svc.AddConsoleAdmin(ctx, name, service.Role(role), password)
}

func (l localAdmins) SetConsoleAdminPassword(ctx context.Context, name, password string) (firmware.ConsoleAdmin, error) {
	return l.svc.SetConsoleAdminPassword(ctx, name, password)
}

func (l localAdmins) ConsoleAdmins(ctx context.Context) ([]firmware.ConsoleAdmin, error) {
	return l.svc.ConsoleAdmins(ctx)
}

func (l localAdmins) SetConsoleAdminDisabled(ctx context.Context, name string, disabled bool) (firmware.ConsoleAdmin, error) {
	return l.svc.SetConsoleAdminDisabled(ctx, name, disabled)
}

func (l localAdmins) RemoveConsoleAdmin(ctx context.Context, name string) error {
	return l.svc.RemoveConsoleAdmin(ctx, name)
}

// withConsoleAdmins runs f against the server, or the data directory when
// offline. A server that cannot be reached gets a hint about --offline.
func withConsoleAdmins(ctx context.Context, e *env, offline bool, f func(context.Context, consoleAdmins) error) error {
	if offline {
		svc, lctx, closeLocal, err := devsvc.Local(ctx, e.data)
		if err != nil {
			return err
		}
		err = f(lctx, localAdmins{svc})
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
