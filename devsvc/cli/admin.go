package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/devsvc"
	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// noFlags is the setup of a command with no flags of its own.
func noFlags(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

func printRules(e *env, rules []adminapi.RuleInfo) error {
	if e.json {
		if rules == nil {
			rules = []adminapi.RuleInfo{}
		}
		return printJSON(e.stdout, rules)
	}
	if len(rules) == 0 {
		fmt.Fprintln(e.stdout, "No rules yet: import a bundle with devsvc import PATH.")
		return nil
	}
	t := newTable(e.stdout, "RULE", "IDENTITY", "PENDING", "APPROVED", "RESTORE", "ON APPROVED", "APPROVE AT", "UPDATED")
	for _, r := range rules {
		on := "-"
		if r.Devices > 0 {
			on = fmt.Sprintf("%d/%d", r.OnApproved, r.Devices)
		}
		t.row(r.ID, r.Identity.Path(), r.Pending.String(), r.Approved.String(), r.Restore.String(), on, when(r.ApproveAt), when(r.Updated))
	}
	return t.flush()
}

var importCmd = &command{
	name: "import", args: "PATH",
	summary: "import firmware updates as pending rules (a directory tree, UCUpdates.cab or .rpm)",
	help: `PATH is a directory in the layout
  DeviceType/Vendor/Model/Revision/Locale/Version/<files>
(for example UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt), optionally
under a DeviceUpdateFiles directory; or a bundle file: a UCUpdates.cab cabinet
(also inside a self-extracting .exe) or an RPM package carrying that tree.

The import is all or nothing: if any part is invalid, nothing is imported.
Each identity's version becomes its rule's pending version, offered only to
test devices until approved; RoundTable updates are approved at once unless
deploy_roundtable_on_import is false. A new pending version replaces the
one before it, and with it any approval scheduled for that one
(approve --at): the import says so, and the history records it as
schedule-cancel.

Examples:
  devsvc import ./UCUpdates
  devsvc import UCUpdates.cab --json`,
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("name one directory or bundle file to import")
		}
		path := args[0]
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		bar := newProgress(e.stderr, "uploading")
		var results []adminapi.ImportResult
		err = e.call(ctx, true, func(ctx context.Context, c *adminapi.Client) error {
			if info.IsDir() {
				results, err = c.ImportTree(ctx, path, bar.update)
			} else {
				results, err = c.ImportBundle(ctx, path, bar.update)
			}
			return err
		})
		bar.done()
		if err != nil {
			return err
		}
		if e.json {
			return printJSON(e.stdout, results)
		}
		t := newTable(e.stdout, "RULE", "IDENTITY", "VERSION", "FILES", "BYTES", "RESULT")
		var cancelled []adminapi.ImportResult
		for _, r := range results {
			var size int64
			for _, f := range r.Files {
				size += f.Size
			}
			what := "pending"
			switch {
			case r.Unchanged:
				what = "already imported"
			case r.Deployed:
				what = "approved (RoundTable deploys on import)"
			}
			if !r.CancelledApproval.IsZero() {
				what += ", scheduled approval cancelled"
				cancelled = append(cancelled, r)
			}
			t.row(r.Rule.ID, r.Rule.Identity.Path(), r.Version.String(), strconv.Itoa(len(r.Files)), strconv.FormatInt(size, 10), what)
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, r := range cancelled {
			fmt.Fprintf(e.stdout, "NOTE: %s %s was to be approved at %s; it is no longer pending, so that approval is cancelled. To approve %s at that time, run: devsvc approve %s --at %s\n",
				r.Rule.Identity.Path(), r.CancelledVersion, when(r.CancelledApproval), r.Version, r.Rule.Identity.Path(), r.CancelledApproval.Format(time.RFC3339))
		}
		fmt.Fprintf(e.stdout, "Imported %d update(s). Test them on test devices, then devsvc approve RULE.\n", len(results))
		return nil
	}),
}

var rulesCmd = &command{
	name: "rules", args: "[RULE]", summary: "list update rules: pending, approved and restore versions, devices on the approved one",
	help: `ON APPROVED counts the identity's devices that run the approved version,
of all its devices in the inventory. devsvc rollouts shows the rollouts.`,
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		var rules []adminapi.RuleInfo
		err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
			var err error
			if len(args) == 1 {
				var r adminapi.RuleInfo
				r, err = c.RuleWithDevices(ctx, args[0])
				rules = []adminapi.RuleInfo{r}
			} else {
				rules, err = c.RulesWithDevices(ctx)
			}
			return err
		})
		if err != nil {
			return err
		}
		return printRules(e, rules)
	}),
}

// transitionCmd makes approve, reject, restore and remove.
func transitionCmd(name, summary, done string, op func(*adminapi.Client, context.Context, string) (firmware.Rule, error)) *command {
	return &command{
		name: name, args: "RULE", summary: summary,
		help: "RULE is a rule ID (devsvc rules shows them) or an identity path,\nDeviceType/Vendor/Model/Revision/Locale, e.g. UCPhone/Polycom/CX600/A/ENU.",
		setup: noFlags(func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("name one rule, by ID or identity path (UCPhone/Polycom/CX600/A/ENU)")
			}
			return runTransition(ctx, e, args[0], done, op)
		}),
	}
}

func runTransition(ctx context.Context, e *env, ref, done string, op func(*adminapi.Client, context.Context, string) (firmware.Rule, error)) error {
	var r firmware.Rule
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		r, err = op(c, ctx, ref)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "%s %s.\n", done, r.Identity.Path())
	return printRules(e, []adminapi.RuleInfo{{Rule: r}})
}

var approveCmd = &command{
	name: "approve", args: "RULE [--at TIME | --cancel]",
	summary: "approve a rule's pending version: every device gets it (now, or at a time)",
	help: `RULE is a rule ID (devsvc rules shows them) or an identity path,
DeviceType/Vendor/Model/Revision/Locale, e.g. UCPhone/Polycom/CX600/A/ENU.
With --at the approval is scheduled: the service approves at that time, and
devices that would check later are told to check then. If devices of a site
have not come some hours after that time (overdue_grace), an alarm says so
(devsvc alarms).

approve gives every device the version at once: it is a one-wave rollout
(devsvc rollouts lists it). To approve in waves, with automatic pauses on
failures, use devsvc rollout start. approve is refused while a rollout of the
rule is running or paused: stop it first.

Examples:
  devsvc approve UCPhone/Polycom/CX600/A/ENU
  devsvc approve UCPhone/Polycom/CX600/A/ENU --at 2026-12-01T02:00:00Z
  devsvc approve UCPhone/Polycom/CX600/A/ENU --at +8h
  devsvc approve UCPhone/Polycom/CX600/A/ENU --cancel`,
	setup: func(fs *flag.FlagSet) runFunc {
		var at string
		var cancel bool
		fs.StringVar(&at, "at", "", "approve at `TIME`: RFC 3339, \"2006-01-02 15:04\" (local) or +DURATION")
		fs.BoolVar(&cancel, "cancel", false, "cancel a scheduled approval")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("name one rule, by ID or identity path (UCPhone/Polycom/CX600/A/ENU)")
			}
			if at == "" && !cancel {
				return runTransition(ctx, e, args[0], "Approved", (*adminapi.Client).Approve)
			}
			if at != "" && cancel {
				return usagef("--at and --cancel exclude each other")
			}
			var when time.Time
			if at != "" {
				var err error
				if when, err = parseWhen(at, time.Now()); err != nil {
					return usagef("--at: %v", err)
				}
			}
			done := "Scheduled the approval of"
			if cancel {
				done = "Cancelled the scheduled approval of"
			}
			return runTransition(ctx, e, args[0], done, func(c *adminapi.Client, ctx context.Context, ref string) (firmware.Rule, error) {
				return c.Schedule(ctx, ref, when)
			})
		}
	},
}

// parseWhen reads a time: RFC 3339, "2006-01-02 15:04" in local time, or
// "+DURATION" from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return time.Time{}, fmt.Errorf("%q: want +DURATION like +8h", s)
		}
		return now.Add(dur), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-12-01T02:00:00Z), \"2026-12-01 02:00\" or +8h", s)
}

var (
	rejectCmd = transitionCmd("reject", "drop a rule's pending version; test devices go back to the approved one", "Rejected the pending version of", (*adminapi.Client).Reject)
	removeCmd = transitionCmd("remove", "delete a rule; its devices are offered nothing", "Removed", (*adminapi.Client).Remove)
)

var restoreCmd = &command{
	name: "restore", args: "RULE [--withdraw]",
	summary: "roll a rule back to its restore version, or a rollout back (devices downgrade)",
	help: `RULE is a rule ID (devsvc rules shows them) or an identity path,
DeviceType/Vendor/Model/Revision/Locale, e.g. UCPhone/Polycom/CX600/A/ENU.
restore approves again the version approved before the current one (the
RESTORE column of devsvc rules); devices take it as a downgrade. A rule
without one is refused and left as it is, so running restore twice by
accident changes nothing the second time.

During a rollout (devsvc rollout start), restore rolls the rollout back
instead: it stops, and the devices it reached are offered the approved
version again; the rule keeps its versions. A second restore then
restores the rule.

With --withdraw the approved version is withdrawn instead: devices of the
identity are offered nothing until a version is approved again (test
devices still get a pending one). The history records it as withdraw.

Examples:
  devsvc restore UCPhone/Polycom/CX600/A/ENU
  devsvc restore UCPhone/Polycom/CX600/A/ENU --withdraw`,
	setup: func(fs *flag.FlagSet) runFunc {
		var withdraw bool
		fs.BoolVar(&withdraw, "withdraw", false, "withdraw the approved version: offer devices nothing")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("name one rule, by ID or identity path (UCPhone/Polycom/CX600/A/ENU)")
			}
			if withdraw {
				return runTransition(ctx, e, args[0], "Withdrew the approved version of", (*adminapi.Client).Withdraw)
			}
			return runTransition(ctx, e, args[0], "Restored", (*adminapi.Client).Restore)
		}
	},
}

var purgeCmd = &command{
	name: "purge", args: "", summary: "delete stored images no rule refers to (rejected, replaced)",
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		var removed []firmware.Update
		err := e.call(ctx, true, func(ctx context.Context, c *adminapi.Client) error {
			var err error
			removed, err = c.Purge(ctx)
			return err
		})
		if err != nil {
			return err
		}
		if e.json {
			if removed == nil {
				removed = []firmware.Update{}
			}
			return printJSON(e.stdout, removed)
		}
		if len(removed) == 0 {
			fmt.Fprintln(e.stdout, "Nothing to purge.")
			return nil
		}
		t := newTable(e.stdout, "IDENTITY", "VERSION", "FILES")
		for _, u := range removed {
			t.row(u.Identity.Path(), u.Version.String(), strconv.Itoa(len(u.Files)))
		}
		return t.flush()
	}),
}

var testDevicesCmd = &command{
	name: "testdevices", args: "add (--mac MAC | --serial SERIAL) [--note TEXT] | list | remove MAC|SERIAL",
	summary: "manage test devices, which get pending versions before approval",
	help: `add of a test device that is one already, with the same note, succeeds
and changes nothing, so a script may run twice; with another note it is
refused (exit status 1).

Examples:
  devsvc testdevices add --mac 00-04-F2-AB-CD-EF --note "lab phone 1"
  devsvc testdevices add --serial 64167F0A8B2C
  devsvc testdevices list
  devsvc testdevices remove 00-04-F2-AB-CD-EF`,
	setup: func(fs *flag.FlagSet) runFunc {
		var mac, serial, note string
		fs.StringVar(&mac, "mac", "", "the device's `MAC` address (add)")
		fs.StringVar(&serial, "serial", "", "the device's `SERIAL` number (add)")
		fs.StringVar(&note, "note", "", "a `TEXT` note (add)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say add, list or remove")
			}
			switch args[0] {
			case "add":
				if (mac == "") == (serial == "") {
					return usagef("add takes one of --mac or --serial")
				}
				var d firmware.TestDevice
				var existed bool
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					// Only to say whether it was there: the server decides
					// (an identical one is no error, adds are idempotent).
					if tds, err := c.TestDevices(ctx); err == nil {
						m, _ := firmware.NormalizeMAC(mac)
						existed = slices.ContainsFunc(tds, func(t firmware.TestDevice) bool {
							return (mac != "" && t.MAC == m) || (serial != "" && t.Serial == strings.TrimSpace(serial))
						})
					}
					var err error
					d, err = c.AddTestDevice(ctx, firmware.TestDevice{MAC: mac, Serial: serial, Note: note})
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, d)
				}
				if existed {
					fmt.Fprintf(e.stdout, "%s%s is a test device already (since %s); nothing changed.\n", d.MAC, d.Serial, when(d.Added))
					return nil
				}
				fmt.Fprintf(e.stdout, "Added test device %s%s.\n", d.MAC, d.Serial)
				return nil
			case "list":
				var ds []firmware.TestDevice
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					var err error
					ds, err = c.TestDevices(ctx)
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					if ds == nil {
						ds = []firmware.TestDevice{}
					}
					return printJSON(e.stdout, ds)
				}
				t := newTable(e.stdout, "MAC", "SERIAL", "NOTE", "ADDED")
				for _, d := range ds {
					t.row(d.MAC, d.Serial, d.Note, when(d.Added))
				}
				return t.flush()
			case "remove":
				if len(args) != 2 {
					return usagef("remove takes the MAC or serial of one test device")
				}
				if err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error { return c.RemoveTestDevice(ctx, args[1]) }); err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, map[string]string{"removed": args[1]})
				}
				fmt.Fprintf(e.stdout, "Removed test device %s.\n", args[1])
				return nil
			}
			return usagef("unknown testdevices action %q: say add, list or remove", args[0])
		}
	},
}

var accountsCmd = &command{
	name: "accounts", args: "add NAME | passwd NAME | list | disable NAME | enable NAME | remove NAME",
	summary: "manage local accounts devices sign in with (NTLM at the edge)",
	help: `The password is read from a prompt, or from standard input with
--password-stdin (one line). It needs at least min_password_length
characters (devsvc.conf, 8 by default). The service keeps only the NT hash
NTLM needs, never the password; it is computed here and only it and the
password's length are sent.

add of an account that is there already, enabled and with the same
password, succeeds and changes nothing, so a script may run twice; with
another password, or disabled, it is refused (exit status 1) and says
what to run instead (accounts passwd, accounts enable).

Examples:
  devsvc accounts add alice
  printf '%s\n' "$PASS" | devsvc accounts add bob --password-stdin
  devsvc accounts disable bob`,
	setup: func(fs *flag.FlagSet) runFunc {
		var fromStdin bool
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say add, passwd, list, disable, enable or remove")
			}
			action := args[0]
			if action == "list" {
				var as []firmware.Account
				err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					var err error
					as, err = c.Accounts(ctx)
					return err
				})
				if err != nil {
					return err
				}
				if e.json {
					if as == nil {
						as = []firmware.Account{}
					}
					return printJSON(e.stdout, as)
				}
				t := newTable(e.stdout, "NAME", "STATUS", "CREATED", "UPDATED")
				for _, a := range as {
					st := "enabled"
					if a.Disabled {
						st = "disabled"
					}
					t.row(a.Name, st, when(a.Created), when(a.Updated))
				}
				return t.flush()
			}
			if len(args) != 2 {
				return usagef("%s takes one account NAME", action)
			}
			name := args[1]
			var a firmware.Account
			var err error
			existed := false
			switch action {
			case "add", "passwd":
				if err := firmware.ValidAccountName(name); err != nil {
					return usagef("%v", err)
				}
				pw, perr := readPassword(e, fromStdin, action == "add")
				if perr != nil {
					return perr
				}
				err = e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					if action == "add" {
						// Only to say whether it was there: the server
						// decides (adds are idempotent).
						if as, err := c.Accounts(ctx); err == nil {
							existed = slices.ContainsFunc(as, func(a firmware.Account) bool { return strings.EqualFold(a.Name, name) })
						}
					}
					a, err = c.PutAccount(ctx, name, pw, action == "passwd")
					return err
				})
			case "disable", "enable":
				err = e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
					a, err = c.SetAccountDisabled(ctx, name, action == "disable")
					return err
				})
			case "remove":
				err = e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error { return c.RemoveAccount(ctx, name) })
				a.Name = name
			default:
				return usagef("unknown accounts action %q", action)
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
				fmt.Fprintf(e.stdout, "Account %s is there already, enabled, with this password; nothing changed.\n", a.Name)
				return nil
			}
			past := map[string]string{"add": "Added", "passwd": "Changed the password of", "disable": "Disabled", "enable": "Enabled", "remove": "Removed"}[action]
			fmt.Fprintf(e.stdout, "%s account %s.\n", past, a.Name)
			return nil
		}
	},
}

// readPassword reads a password from standard input (one line) or from a
// prompt on the terminal, asked twice.
func readPassword(e *env, fromStdin, confirm bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", errors.New("--password-stdin: no password on standard input")
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: the password is empty")
		}
		return pw, nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to ask for the password: use --password-stdin")
	}
	fmt.Fprint(e.stderr, "Password: ")
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", err
	}
	if len(pw) == 0 {
		return "", errors.New("the password is empty")
	}
	if confirm {
		fmt.Fprint(e.stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(again) != string(pw) {
			return "", errors.New("the passwords differ; nothing changed")
		}
	}
	return string(pw), nil
}

var historyCmd = &command{
	name: "history", args: "[--since SEQ] [--limit N]", summary: "catalog changes: who imported, approved, rejected what, and when",
	setup: func(fs *flag.FlagSet) runFunc {
		var since uint64
		var limit int
		fs.Uint64Var(&since, "since", 0, "show events after sequence number `SEQ`")
		fs.IntVar(&limit, "limit", 0, "show at most `N` events (0: all)")
		return func(ctx context.Context, e *env, args []string) error {
			var es []firmware.Event
			err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
				var err error
				es, err = c.History(ctx, since, limit)
				return err
			})
			if err != nil {
				return err
			}
			if e.json {
				if es == nil {
					es = []firmware.Event{}
				}
				return printJSON(e.stdout, es)
			}
			t := newTable(e.stdout, "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "VERSION", "DETAIL")
			for _, ev := range es {
				t.row(strconv.FormatUint(ev.Seq, 10), when(ev.Time), ev.Actor, ev.Action, ev.Subject, ev.Version.String(), ev.Detail)
			}
			return t.flush()
		}
	},
}

var statusCmd = &command{
	name: "status", args: "", summary: "what runs, where, with which certificates; counts",
	help: `On a replica it shows whether it follows its primary, how far behind it is
and what waits to be forwarded; on a primary, how many replicas are
behind (devsvc replicas list shows them; docs/replicas.md).`,
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		var s adminapi.Status
		var repl *service.ReplicationStatus
		err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
			var err error
			if s, err = c.Status(ctx); err != nil {
				return err
			}
			repl, err = replicationStatus(ctx, c)
			return err
		})
		if err != nil {
			return err
		}
		if e.json {
			return printJSON(e.stdout, statusJSON{Status: s, Replication: repl})
		}
		w := e.stdout
		fmt.Fprintf(w, "devsvc %s, up since %s, data in %s\n", s.Version, when(s.Started), s.DataDir)
		fmt.Fprintf(w, "You are %s.\n\nListeners:\n", s.Actor)
		for _, l := range s.Listeners {
			fmt.Fprintf(w, "  %-9s %s\n", l.Name, l.Address)
		}
		fmt.Fprintln(w, "\nCertificates:")
		t := newTable(w, "  NAME", "ROLE", "EXPIRES", "DAYS LEFT", "NAMES")
		for _, c := range s.Certificates {
			t.row("  "+c.Name, c.Role, c.NotAfter.Format(time.DateOnly), strconv.Itoa(c.DaysLeft), strings.Join(c.Names, " "))
		}
		t.flush()
		fmt.Fprintf(w, "\nRules %d, updates %d, devices %d, test devices %d, accounts %d; history at %d; database %.1f MB (schema %d)\n",
			s.Counts["rules"], s.Counts["updates"], s.Counts["devices"], s.Counts["testDevices"], s.Counts["accounts"], s.Seq, float64(s.DBBytes)/1e6, s.Schema)
		if s.Alarms > 0 {
			fmt.Fprintf(w, "Alarms: %d open: devsvc alarms lists them.\n", s.Alarms)
		} else {
			fmt.Fprintln(w, "Alarms: none open.")
		}
		if inv := s.Inventory; inv.Writable {
			fmt.Fprintf(w, "Inventory: written as devices check in (%d waiting).\n", inv.Held)
		} else {
			fmt.Fprintf(w, "Inventory: CANNOT BE WRITTEN since %s: %s; %d check-ins and reports wait, new ones are answered 503.\n", when(inv.Since), inv.Error, inv.Held)
		}
		if repl != nil {
			printReplication(w, *repl)
		}
		for _, warn := range s.Warnings {
			fmt.Fprintf(w, "WARNING: %s\n", warn)
		}
		return nil
	}),
}

var backupCmd = &command{
	name: "backup", args: "FILE", summary: "back up a running server to FILE: the database and the update files, consistently",
	help: `The backup is taken online, while devices check in and imports run: a tar
archive of the database at one point of the history (every rule, update,
rollout, site, test device, account, console admin, device and history
event up to it) and of the image files its updates record, each checked
against its SHA-256 as it is copied. FILE is written with mode 0600: it
holds the accounts' NT hashes and the console admins' password hashes.

It does not hold the settings (DIR/devsvc.conf), the certificates and the
CA's key (DIR/certs: the admin API never hands them out) or the logs: back
those up as files; they change only at init, certs renew and when you edit
the settings.

Restore with devsvc restore-backup FILE --data DIR, the server stopped.

Example:
  devsvc backup /var/backups/opendus/$(date +%F).tar`,
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("name the FILE to write")
		}
		if fileExists(args[0]) {
			return fmt.Errorf("%s exists: choose a new file name", args[0])
		}
		f, err := os.OpenFile(args[0]+".partial", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		var n int64
		err = e.call(ctx, true, func(ctx context.Context, c *adminapi.Client) error {
			n, err = c.Backup(ctx, f)
			return err
		})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		info, err := readBackupInfo(f.Name())
		if err != nil {
			return err
		}
		if err := os.Rename(f.Name(), args[0]); err != nil {
			return err
		}
		if e.json {
			return printJSON(e.stdout, struct {
				File  string `json:"file"`
				Bytes int64  `json:"bytes"`
				store.BackupInfo
			}{args[0], n, info})
		}
		fmt.Fprintf(e.stdout, "Wrote %s (%d bytes): the database at history %d (%.1f MB) and %d file(s) of %d update(s) (%.1f MB).\n",
			args[0], n, info.Seq, float64(info.DBBytes)/1e6, info.Files, info.Updates, float64(info.FileBytes)/1e6)
		fmt.Fprintf(e.stdout, "Restore it with devsvc restore-backup %s --data DIR. Keep DIR/%s and DIR/%s too: the backup has neither.\n", args[0], datadir.ConfigFile, datadir.CertsDir)
		return nil
	}),
}

// readBackupInfo reads the manifest of the backup archive name.
func readBackupInfo(name string) (store.BackupInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return store.BackupInfo{}, err
	}
	defer f.Close()
	return store.ReadBackupInfo(f)
}

var restoreBackupCmd = &command{
	name: "restore-backup", args: "FILE --data DIR [--force]",
	summary: "restore a backup (devsvc backup) into a data directory, its server stopped",
	help: `The whole backup is checked before anything changes: the database must
pass bbolt's consistency check and open, and the files must be exactly
the ones it records, with their SHA-256. Then the database and files of
DIR are moved to DIR/backups/restore-<time>/ and the backup's put in
their place; the settings, certificates and logs of DIR stay.

DIR must be a data directory whose server is stopped. A backup holds no
certificates: to keep the devices' trust, restore into the old data
directory, or into a new one with the old devsvc.conf and certs/ copied
in. Into a new devsvc init directory, devices must be given its new CA
(devsvc certs export). A DIR whose store holds rules, updates, devices,
test devices or accounts is replaced only with --force; one that holds
nothing, as devsvc init leaves it, is replaced without.

After a restore, devices that checked in after the backup was taken
check in again and are offered what the restored catalog says; imports
and changes made after it are gone (devsvc history shows where it ends).

Examples:
  systemctl stop opendus
  devsvc restore-backup /var/backups/opendus/2026-12-01.tar --data /var/lib/opendus --force
  systemctl start opendus`,
	setup: func(fs *flag.FlagSet) runFunc {
		var force bool
		fs.BoolVar(&force, "force", false, "replace a store that holds something (it is kept in DIR/backups/)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("name the backup FILE to restore")
			}
			res, err := devsvc.RestoreBackup(ctx, devsvc.RestoreOptions{File: args[0], Dir: e.data, Force: force})
			if err != nil {
				return err
			}
			st := res.Stats
			if e.json {
				return printJSON(e.stdout, restoredJSON{File: args[0], Data: e.data, Kept: res.Kept, AdminCertRecorded: res.AdminCertRecorded,
					Backup: res.Backup, Rules: st.Rules, Updates: st.Updates, Devices: st.Devices, TestDevices: st.TestDevices, Accounts: st.Accounts, Seq: st.Seq})
			}
			b := res.Backup
			fmt.Fprintf(e.stdout, "Restored %s (taken %s by devsvc %s, history at %d) into %s: %d rules, %d updates (%d files, %.1f MB), %d devices, %d test devices, %d accounts.\n",
				args[0], when(b.Created), orDash(b.Version), b.Seq, e.data, st.Rules, st.Updates, b.Files, float64(b.FileBytes)/1e6, st.Devices, st.TestDevices, st.Accounts)
			if res.Kept != "" {
				fmt.Fprintf(e.stdout, "The database and files it replaced are in %s.\n", res.Kept)
			}
			if res.AdminCertRecorded {
				fmt.Fprintf(e.stdout, "NOTE: %s's admin certificate was not in the backup: this data directory's CA is not the one the backup was taken under. Devices that trust the old CA will not connect until they are given this one (devsvc certs export), and admin certificates of the old CA no longer work.\n", e.data)
			}
			fmt.Fprintf(e.stdout, "Start the service: devsvc serve --data %s (or systemctl start opendus).\n", e.data)
			return nil
		}
	},
}

// restoredJSON is restore-backup --json.
type restoredJSON struct {
	File              string           `json:"file"`
	Data              string           `json:"data"`
	Kept              string           `json:"kept,omitempty"`
	AdminCertRecorded bool             `json:"adminCertRecorded"`
	Backup            store.BackupInfo `json:"backup"`
	Rules             int              `json:"rules"`
	Updates           int              `json:"updates"`
	Devices           int              `json:"devices"`
	TestDevices       int              `json:"testDevices"`
	Accounts          int              `json:"accounts"`
	Seq               uint64           `json:"seq"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
