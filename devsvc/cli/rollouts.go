package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// listFlag collects a flag given several times or with commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

var sitesCmd = &command{
	name: "sites", args: "add NAME --subnet CIDR[,CIDR...] [--timezone ZONE] [--window WINDOW] [--no-peers] | update NAME ... | list | remove NAME",
	summary: "define sites: where devices are, their time zone and maintenance windows",
	help: `A site is a place devices are at, known by the subnets their check-ins come
from (the address the internal listener sees; the longest subnet that
contains it wins, so a lab inside a campus can be a site of its own).
Devices that come through the edge belong to the site "remote", which has
no subnets: give it a time zone and windows with sites add remote.

A site's time zone (an IANA name like Europe/Berlin; UTC by default) is the
one its windows are read in. A window is a weekly schedule, days and a time
span on a 24-hour clock, several separated by ';':

  Mon-Fri 22:00-05:00            weeknights, crossing midnight
  Sat,Sun 00:00-24:00            whole weekend days
  Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00
  always                         (the default)

Devices of a site are offered updates only inside its windows, and only
when the windows stay open at least window_min_open (1h) more; outside
them they are told when to come back. Rollouts count their progress per
site, and the overdue alarm names the sites that are behind.

Subnet peers (the setting peers, on by default) let one device per update
and subnet download it and serve the subnet's others; --no-peers turns
them off for a site (each of its devices downloads from the service),
update --peers back on.

update changes only what its flags name. add of a site that is there
already, the same, succeeds and changes nothing, so a script may run
twice; a different one of that name is refused (exit status 1): change it
with update.

Examples:
  devsvc sites add berlin-hq --subnet 10.1.0.0/16,10.9.0.0/16 --timezone Europe/Berlin --window "Mon-Fri 22:00-05:00"
  devsvc sites add berlin-lab --subnet 10.1.9.0/24 --timezone Europe/Berlin
  devsvc sites add remote --window "Sat,Sun 00:00-24:00"
  devsvc sites update berlin-hq --window "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00"
  devsvc sites update berlin-lab --no-peers
  devsvc sites list
  devsvc sites remove berlin-lab`,
	setup: func(fs *flag.FlagSet) runFunc {
		var subnets listFlag
		var tz, window string
		fs.Var(&subnets, "subnet", "the site's `CIDR` subnets, comma-separated or repeated (add, update)")
		fs.StringVar(&tz, "timezone", "", "the site's IANA time `ZONE`, like Europe/Berlin (add, update; default UTC)")
		fs.StringVar(&window, "window", "", "the site's maintenance `WINDOW`s, like \"Mon-Fri 22:00-05:00\" (add, update; default always)")
		var noPeers, withPeers bool
		fs.BoolVar(&noPeers, "no-peers", false, "turn subnet peers off for the site's devices: each downloads from the service (add, update)")
		fs.BoolVar(&withPeers, "peers", false, "turn subnet peers back on for the site (update; the default)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say add, update, list or remove")
			}
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			switch args[0] {
			case "list":
				return listSites(ctx, e)
			case "remove":
				if len(args) != 2 {
					return usagef("remove takes one site NAME")
				}
				if err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error { return c.RemoveSite(ctx, args[1]) }); err != nil {
					return err
				}
				if e.json {
					return printJSON(e.stdout, map[string]string{"removed": args[1]})
				}
				fmt.Fprintf(e.stdout, "Removed site %s. Its devices belong to the site their next check-in comes from.\n", args[1])
				return nil
			case "add", "update":
			default:
				return usagef("unknown sites action %q: say add, update, list or remove", args[0])
			}
			if len(args) != 2 {
				return usagef("%s takes one site NAME", args[0])
			}
			site := firmware.Site{Name: args[1]}
			if err := firmware.ValidSiteName(site.Name); err != nil {
				return usagef("%v", err)
			}
			replace := args[0] == "update"
			existed := false
			err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
				sites, err := c.Sites(ctx)
				if err != nil {
					return err
				}
				found := false
				for _, s := range sites {
					if s.Name == site.Name && replace {
						site = s.Site
					}
					found = found || s.Name == site.Name
				}
				if replace && !found {
					return fmt.Errorf("there is no site %q: devsvc sites list shows them; add it with devsvc sites add", site.Name)
				}
				existed = found // for add, only to say so: the server decides (adds are idempotent)
				if set["subnet"] {
					ps, err := firmware.ParseSubnets(strings.Join(subnets, ","))
					if err != nil {
						return usagef("--subnet: %v", err)
					}
					site.Subnets = ps
				}
				if set["timezone"] {
					site.TimeZone = tz
				}
				if set["window"] {
					w, err := firmware.ParseSchedule(window)
					if err != nil {
						return usagef("--window: %v", err)
					}
					site.Windows = w
				}
				switch {
				case noPeers && withPeers:
					return usagef("--no-peers and --peers: say one")
				case noPeers:
					site.NoPeers = true
				case withPeers:
					site.NoPeers = false
				}
				site, err = c.PutSite(ctx, site, replace)
				return err
			})
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.stdout, site)
			}
			if existed && !replace {
				fmt.Fprintf(e.stdout, "Site %s is there already: %s; nothing changed.\n", site.Name, describeSite(site))
				return nil
			}
			verb := "Added"
			if replace {
				verb = "Updated"
			}
			fmt.Fprintf(e.stdout, "%s site %s: %s.\n", verb, site.Name, describeSite(site))
			return nil
		}
	},
}

func describeSite(s firmware.Site) string {
	subnets := firmware.FormatSubnets(s.Subnets)
	if subnets == "" {
		subnets = "no subnets"
		if s.Name == firmware.RemoteSite {
			subnets = "the devices through the edge"
		}
	}
	tz := s.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	peers := ""
	if s.NoPeers {
		peers = ", peers off"
	}
	return fmt.Sprintf("%s, time zone %s, windows %s%s", subnets, tz, s.Windows, peers)
}

func listSites(ctx context.Context, e *env) error {
	var sites []adminapi.SiteInfo
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		sites, err = c.Sites(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		if sites == nil {
			sites = []adminapi.SiteInfo{}
		}
		return printJSON(e.stdout, sites)
	}
	if len(sites) == 0 {
		fmt.Fprintln(e.stdout, "No sites yet: devsvc sites add NAME --subnet CIDR defines one.")
		return nil
	}
	t := newTable(e.stdout, "SITE", "SUBNETS", "TIME ZONE", "WINDOWS", "DEVICES")
	for _, s := range sites {
		tz := s.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		t.row(s.Name, firmware.FormatSubnets(s.Subnets), tz, s.Windows.String(), strconv.FormatInt(s.Devices, 10))
	}
	return t.flush()
}

// parseWait reads a duration, also in days: "24h", "90m", "2d".
func parseWait(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q: want a duration like 24h, 90m or 2d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration like 24h, 90m or 2d", s)
	}
	return d, nil
}

var rolloutCmd = &command{
	name: "rollout", args: "start RULE [flags] | show RULE | pause RULE [--reason TEXT] | resume RULE | stop RULE",
	summary: "approve a pending version in waves, watch it, pause, resume or stop it",
	help: `A rollout approves a rule's pending version in waves. Test devices get it
first, as they get any pending version. Then each wave opens to a larger
share of the identity's devices, chosen by a stable hash of each device's
key, so a device keeps its wave and new devices join the right one:

  --waves 1%,10%,50%,100%   the cumulative shares the waves open to
  --wave-wait 24h           each wave runs at least this long (also 2d)...
  --success 90%             ...and until this share of its devices installed
                            before the next opens; after the last, the
                            rollout completes and the version is approved
  --max-failures 10%        failures in the current wave that pause the
                            rollout by itself, with an alarm: a share of the
                            wave's devices, or a count like 3. A device
                            counts as failed after rollout_retries retries,
                            or after being silent too long (rollout_*
                            settings in devsvc.conf)
  --at TIME                 start later (RFC 3339, "2026-12-01 02:00" local,
                            or +8h); devices are told to come back then
  --window WINDOW           offer only inside this weekly window, read in
                            each device's site's time zone, on top of the
                            site's own windows ("Mon-Fri 22:00-05:00")
  --max-downloads N         at most N devices taking the version at once

While it runs, devices outside the open waves keep being offered the
approved version, and are told when their wave is expected to open.
rollout show counts the devices per wave and per site: waiting, offered,
downloading, installed, retrying, stalled, failed (with their error codes).
pause stops new offers; resume goes on in the same wave, accepting the
failures that paused it; stop ends it for good (devices that got the
version keep it). devsvc restore RULE during a rollout stops it and rolls
the devices it reached back to the approved version. approve is a
one-wave rollout of every device at once.

Examples:
  devsvc rollout start UCPhone/Polycom/CX600/A/ENU
  devsvc rollout start UCPhone/Polycom/CX600/A/ENU --waves 5%,25%,100% --wave-wait 4h --success 95% --max-failures 3
  devsvc rollout start UCPhone/Polycom/CX600/A/ENU --at 2026-12-05T22:00:00Z --window "Mon-Fri 22:00-05:00" --max-downloads 200
  devsvc rollout show UCPhone/Polycom/CX600/A/ENU
  devsvc rollout pause UCPhone/Polycom/CX600/A/ENU --reason "tickets from berlin"
  devsvc rollout resume UCPhone/Polycom/CX600/A/ENU`,
	setup: func(fs *flag.FlagSet) runFunc {
		def := firmware.DefaultPlan()
		var waves, wait, success, failures, at, window, reason string
		var downloads int
		fs.StringVar(&waves, "waves", def.Waves.String(), "cumulative `SHARES` of the devices the waves open to (start)")
		fs.StringVar(&wait, "wave-wait", "24h", "the least `DURATION` each wave runs before the next opens (start)")
		fs.StringVar(&success, "success", def.Success.String(), "the `PERCENT` of a wave's devices installed before the next opens (start)")
		fs.StringVar(&failures, "max-failures", def.MaxFailures.String(), "failed devices of a wave, `PERCENT or COUNT`, that pause the rollout (start)")
		fs.StringVar(&at, "at", "", "start at `TIME`: RFC 3339, \"2006-01-02 15:04\" (local) or +DURATION (start)")
		fs.StringVar(&window, "window", "", "offer only inside this weekly `WINDOW`, in each site's time zone (start)")
		fs.IntVar(&downloads, "max-downloads", 0, "at most `N` devices taking the version at once; 0: no cap (start)")
		fs.StringVar(&reason, "reason", "", "why, for the history (pause)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("say start, show, pause, resume or stop, and the rule")
			}
			if len(args) != 2 {
				return usagef("%s takes one rule, by ID or identity path (UCPhone/Polycom/CX600/A/ENU)", args[0])
			}
			ref := args[1]
			switch args[0] {
			case "start":
				plan, err := parsePlan(waves, wait, success, failures, at, window, downloads)
				if err != nil {
					return err
				}
				return rolloutAction(ctx, e, func(ctx context.Context, c *adminapi.Client) (firmware.Rollout, error) {
					return c.StartRollout(ctx, ref, plan)
				})
			case "show":
				return showRollout(ctx, e, ref)
			case "pause":
				return rolloutAction(ctx, e, func(ctx context.Context, c *adminapi.Client) (firmware.Rollout, error) {
					return c.PauseRollout(ctx, ref, reason)
				})
			case "resume":
				return rolloutAction(ctx, e, func(ctx context.Context, c *adminapi.Client) (firmware.Rollout, error) {
					return c.ResumeRollout(ctx, ref)
				})
			case "stop":
				return rolloutAction(ctx, e, func(ctx context.Context, c *adminapi.Client) (firmware.Rollout, error) {
					return c.StopRollout(ctx, ref)
				})
			}
			return usagef("unknown rollout action %q: say start, show, pause, resume or stop", args[0])
		}
	},
}

// parsePlan reads rollout start's flags.
func parsePlan(waves, wait, success, failures, at, window string, downloads int) (firmware.Plan, error) {
	var p firmware.Plan
	var err error
	if p.Waves, err = firmware.ParseWaves(waves); err != nil {
		return p, usagef("--waves: %v", err)
	}
	if p.WaveWait, err = parseWait(wait); err != nil {
		return p, usagef("--wave-wait: %v", err)
	}
	if p.Success, err = firmware.ParseShare(success); err != nil {
		return p, usagef("--success: %v", err)
	}
	if p.MaxFailures, err = firmware.ParseThreshold(failures); err != nil {
		return p, usagef("--max-failures: %v", err)
	}
	if at != "" {
		if p.At, err = parseWhen(at, time.Now()); err != nil {
			return p, usagef("--at: %v", err)
		}
	}
	if p.Window, err = firmware.ParseSchedule(window); err != nil {
		return p, usagef("--window: %v", err)
	}
	if downloads < 0 {
		return p, usagef("--max-downloads %d: want 0 (no cap) or more", downloads)
	}
	p.MaxDownloads = downloads
	return p, p.Validate()
}

// rolloutAction runs a rollout transition and says where it stands.
func rolloutAction(ctx context.Context, e *env, op func(context.Context, *adminapi.Client) (firmware.Rollout, error)) error {
	var ro firmware.Rollout
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		ro, err = op(ctx, c)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, rolloutOut(ro))
	}
	fmt.Fprintln(e.stdout, rolloutSentence(&ro))
	fmt.Fprintf(e.stdout, "Watch it: devsvc rollout show %s\n", ro.Identity)
	return nil
}

// rolloutJSON is a rollout as --json prints it: its wave wait is a
// duration string ("24h"), as every duration (docs/cli-json.md), where
// the stored rollout has nanoseconds.
type rolloutJSON struct {
	firmware.Rollout
	WaveWait string `json:"waveWait"` // shadows Rollout.Plan.WaveWait
}

func rolloutOut(ro firmware.Rollout) rolloutJSON { return rolloutJSON{ro, duration(ro.WaveWait)} }

// rolloutInfoJSON is a listed rollout as --json prints it (rolloutJSON).
type rolloutInfoJSON struct {
	adminapi.RolloutInfo
	WaveWait string `json:"waveWait"`
}

// rolloutProgressJSON is rollout show --json (rolloutJSON).
type rolloutProgressJSON struct {
	store.RolloutProgress
	Rollout rolloutJSON `json:"rollout"`
}

// rolloutSentence says where a rollout stands, in a sentence.
func rolloutSentence(ro *firmware.Rollout) string {
	what := fmt.Sprintf("The rollout of %s to %s", ro.Identity, ro.Version)
	lo, hi := ro.Waves.Bounds(ro.Wave)
	switch ro.State {
	case firmware.RolloutScheduled:
		return fmt.Sprintf("%s is scheduled for %s: only test devices get it until then.", what, when(ro.At))
	case firmware.RolloutRunning:
		return fmt.Sprintf("%s is running: wave %d of %d open (%s of devices, %s more), since %s; the next opens after %s at ≥%s installed; it pauses at %s failures.",
			what, ro.Wave+1, len(ro.Waves), firmware.Share(hi), firmware.Share(hi-lo), when(ro.WaveOpened), ro.WaveWait, ro.Success, ro.MaxFailures)
	case firmware.RolloutPaused:
		return fmt.Sprintf("%s is paused in wave %d of %d by %s: %s. Resume with devsvc rollout resume %s.", what, ro.Wave+1, len(ro.Waves), ro.PausedBy, ro.Reason, ro.Identity)
	case firmware.RolloutCompleted:
		return fmt.Sprintf("%s completed at %s: %s is approved.", what, when(ro.Ended), ro.Version)
	}
	if ro.RolledBack {
		return fmt.Sprintf("%s was rolled back (%s): the devices it reached are offered %s again.", what, ro.Reason, orNone(ro.From))
	}
	return fmt.Sprintf("%s is stopped (%s): the devices it reached keep %s, the others %s.", what, ro.Reason, ro.Version, orNone(ro.From))
}

func orNone(v firmware.Version) string {
	if v.IsZero() {
		return "nothing"
	}
	return v.String()
}

func statsRow(s firmware.WaveStats) []string {
	n := func(v int) string { return strconv.Itoa(v) }
	return []string{n(s.Devices), n(s.Waiting), n(s.Offered), n(s.Downloading), n(s.Installed), n(s.Retrying), n(s.Stalled), n(s.Failed)}
}

var statsHeader = []string{"DEVICES", "WAITING", "OFFERED", "DOWNLOADING", "INSTALLED", "RETRYING", "STALLED", "FAILED"}

func showRollout(ctx context.Context, e *env, ref string) error {
	var pr store.RolloutProgress
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		pr, err = c.RolloutProgress(ctx, ref)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, rolloutProgressJSON{pr, rolloutOut(pr.Rollout)})
	}
	ro := &pr.Rollout
	w := e.stdout
	fmt.Fprintln(w, rolloutSentence(ro))
	kind := "rollout start"
	if pr.Approval {
		kind = "approve"
	}
	fmt.Fprintf(w, "From %s to %s, by %s (%s) at %s. Waves %s, wave wait %s, success %s, max failures %s, window %s",
		orNone(ro.From), ro.Version, ro.By, kind, when(ro.Created), ro.Waves, ro.WaveWait, ro.Success, ro.MaxFailures, ro.Window)
	if ro.MaxDownloads > 0 {
		fmt.Fprintf(w, ", at most %d downloads at once", ro.MaxDownloads)
	}
	fmt.Fprint(w, ".\n\n")
	t := newTable(w, append([]string{"WAVE", "SHARE", "OPEN"}, statsHeader...)...)
	for _, wv := range pr.Waves {
		open := "yes"
		if !wv.Open {
			open = "at " + when(wv.Opens)
			if wv.Opens.IsZero() {
				open = "no"
			}
		}
		t.row(append([]string{strconv.Itoa(wv.Wave + 1), fmt.Sprintf("%s-%s", wv.From, wv.To), open}, statsRow(wv.Stats)...)...)
	}
	t.row(append([]string{"all", "", ""}, statsRow(pr.Total)...)...)
	if pr.Test.Devices > 0 {
		t.row(append([]string{"test", "", "always"}, statsRow(pr.Test)...)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(pr.Sites) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, append([]string{"SITE"}, statsHeader...)...)
		for _, s := range pr.Sites {
			name := s.Site
			if name == "" {
				name = "(no site)"
			}
			t.row(append([]string{name}, statsRow(s.WaveStats)...)...)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(pr.Failures) > 0 {
		fmt.Fprintf(w, "\nFailed and retrying devices by error: %s\n", countList(pr.Failures))
	}
	if len(pr.Holds) > 0 {
		fmt.Fprintf(w, "Waiting devices by why: %s\n", countList(pr.Holds))
	}
	fmt.Fprintf(w, "\nFailed devices: devsvc devices --rule %s --state failed\n", ro.Rule)
	return nil
}

func countList(cs []store.Count) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.Name, c.Devices)
	}
	return strings.Join(parts, ", ")
}

var rolloutsCmd = &command{
	name: "rollouts", args: "", summary: "list the rollouts: each rule's last, live ones first",
	help: "devsvc rollout show RULE shows one per wave and per site.",
	setup: noFlags(func(ctx context.Context, e *env, args []string) error {
		var rs []adminapi.RolloutInfo
		err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
			var err error
			rs, err = c.Rollouts(ctx)
			return err
		})
		if err != nil {
			return err
		}
		if e.json {
			out := make([]rolloutInfoJSON, len(rs))
			for i, r := range rs {
				out[i] = rolloutInfoJSON{r, duration(r.WaveWait)}
			}
			return printJSON(e.stdout, out)
		}
		if len(rs) == 0 {
			fmt.Fprintln(e.stdout, "No rollouts yet: devsvc rollout start RULE starts one.")
			return nil
		}
		t := newTable(e.stdout, "RULE", "IDENTITY", "FROM", "VERSION", "STATE", "WAVE", "INSTALLED", "FAILED", "STARTED", "BY")
		for _, r := range rs {
			state := string(r.State)
			if r.RolledBack {
				state = "rolled back"
			}
			if r.Approval {
				state += " (approve)"
			}
			t.row(r.Rule, r.Identity.Path(), r.From.String(), r.Version.String(), state, fmt.Sprintf("%d/%d", r.Wave+1, len(r.Waves)),
				fmt.Sprintf("%d/%d", r.Total.Installed, r.Total.Devices), strconv.Itoa(r.Total.Failed), when(r.Started), r.By)
		}
		return t.flush()
	}),
}

var alarmsCmd = &command{
	name: "alarms", args: "[--all]", summary: "open alarms: rollouts paused on failures, scheduled releases overdue, replicas behind",
	help: `An alarm is raised when a rollout pauses itself on failures (kind paused;
it clears when the rollout is resumed or stopped), when a scheduled
release (approve --at, rollout start --at) is overdue_grace past and more
than overdue_tolerance of a site's devices have not checked in since
(kind overdue; it clears when they have), and when a replica has not
applied a release replica_alarm_after after it (kind replica-behind; it
clears when the replica catches up or is removed; docs/replicas.md).
devsvc status counts the open ones.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var all bool
		fs.BoolVar(&all, "all", false, "also the cleared alarms")
		return func(ctx context.Context, e *env, args []string) error {
			var as []firmware.Alarm
			err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
				var err error
				as, err = c.Alarms(ctx, all)
				return err
			})
			if err != nil {
				return err
			}
			if e.json {
				if as == nil {
					as = []firmware.Alarm{}
				}
				return printJSON(e.stdout, as)
			}
			if len(as) == 0 {
				fmt.Fprintln(e.stdout, "No open alarms.")
				return nil
			}
			t := newTable(e.stdout, "RAISED", "CLEARED", "KIND", "IDENTITY", "VERSION", "DETAIL")
			for _, a := range as {
				t.row(when(a.Raised), when(a.Cleared), string(a.Kind), a.Identity.Path(), a.Version.String(), a.Detail)
			}
			return t.flush()
		}
	},
}

// deviceSummary counts devices by model and version.
type deviceSummary struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	Devices int    `json:"devices"`
}

var devicesCmd = &command{
	name: "devices", args: "[filters] [--limit N] [--page KEY] [--summary] | show KEY",
	summary: "find devices: versions, sites, where they stand; one device's recent history",
	help: `Filters (all that are given must match):
  --model M      a model like CX600, or an identity path
  --rule R       a rule's devices (ID or identity path)
  --version V    the version they run
  --state S      where they stand with their rule's rollout (approve is a
                 one-wave rollout): waiting, offered, downloading,
                 installed, retrying, stalled or failed
  --site S       the site of their last check-in
  --text T       part of the MAC address, serial number or user, any case

The server streams the list, so any fleet lists; --limit stops after N
devices and says how to go on (--page KEY starts after that key).
devsvc devices show KEY gives one device (by MAC, serial or key) with its
recent check-ins (what it was offered, or held back and why), status
reports and refusals.

Examples:
  devsvc devices --site berlin-hq --state failed
  devsvc devices --model CX600 --version 4.0.7577.4372 --limit 100
  devsvc devices --text alice
  devsvc devices --summary
  devsvc devices show 00-04-F2-AB-CD-EF`,
	setup: func(fs *flag.FlagSet) runFunc {
		var f adminapi.DeviceFilter
		var version, state string
		var summary bool
		fs.StringVar(&f.Model, "model", "", "only this `MODEL` (CX600) or identity path")
		fs.StringVar(&f.Rule, "rule", "", "only the devices of this `RULE`")
		fs.StringVar(&version, "version", "", "only devices running `VERSION`")
		fs.StringVar(&state, "state", "", "only devices in `STATE` with their rule's rollout")
		fs.StringVar(&f.Site, "site", "", "only devices whose last check-in came from `SITE`")
		fs.StringVar(&f.Text, "text", "", "only devices whose MAC, serial or user contains `TEXT`")
		fs.IntVar(&f.Limit, "limit", 0, "list at most `N` devices (0: all)")
		fs.StringVar(&f.After, "page", "", "start after the device `KEY` a limited listing named")
		fs.BoolVar(&summary, "summary", false, "count devices by model and version instead")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				if args[0] != "show" || len(args) != 2 {
					return usagef("devices takes filters as flags, or show KEY")
				}
				return showDevice(ctx, e, args[1])
			}
			if version != "" {
				v, err := firmware.ParseVersion(version)
				if err != nil {
					return usagef("--version: %v", err)
				}
				f.Version = v
			}
			if state != "" {
				s, err := store.ParseOutcome(state)
				if err != nil {
					return usagef("--state: %v", err)
				}
				f.State = s
			}
			if f.Limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", f.Limit)
			}
			if summary {
				return summarizeDevices(ctx, e, f)
			}
			return listDevices(ctx, e, f)
		}
	},
}

// listDevices prints the devices as the server streams them: a table
// flushed every few thousand rows, or a JSON array written as it goes.
func listDevices(ctx context.Context, e *env, f adminapi.DeviceFilter) error {
	const flushEvery = 5000
	var (
		t     *table
		rows  int
		first = true
	)
	if e.json {
		io.WriteString(e.stdout, "[")
	} else {
		t = newTable(e.stdout, "DEVICE", "MODEL", "VERSION", "SITE", "STATE", "LAST CHECK-IN", "WHERE", "USER", "REPORT", "LAST UPDATE")
	}
	var l adminapi.DeviceListing
	err := e.call(ctx, true, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		l, err = c.ListDevices(ctx, f, func(d store.DeviceRow) error {
			rows++
			if e.json {
				b, err := encodeJSON(d, "  ")
				if err != nil {
					return err
				}
				sep := ",\n  "
				if first {
					sep = "\n  "
				}
				first = false
				_, err = io.WriteString(e.stdout, sep+string(b))
				return err
			}
			state := string(d.Outcome)
			if (d.Outcome == firmware.OutcomeFailed || d.Outcome == firmware.OutcomeRetrying) && d.Error != "" {
				state += " (" + d.Error + ")"
			}
			report := string(d.State)
			if d.State != firmware.StateIdle && !d.Target.IsZero() {
				report += " " + d.Target.String()
			}
			t.row(d.Key, d.Identity.Model, d.Version.String(), d.Site, state, when(d.LastCheckIn), string(d.Location), d.User, report, when(d.LastUpdate))
			if rows%flushEvery == 0 {
				return t.flush()
			}
			return nil
		})
		return err
	})
	if e.json {
		if !first {
			io.WriteString(e.stdout, "\n")
		}
		io.WriteString(e.stdout, "]\n")
	} else if ferr := t.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if l.Next != "" {
		fmt.Fprintf(e.stderr, "Listed %d devices; more follow: add --page %s\n", rows, l.Next)
	} else if !e.json && l.Total >= 0 {
		fmt.Fprintf(e.stdout, "%d device(s)\n", l.Total)
	}
	return nil
}

// summarizeDevices counts the devices f selects by model and version.
func summarizeDevices(ctx context.Context, e *env, f adminapi.DeviceFilter) error {
	counts := map[[2]string]int{}
	total := 0
	err := e.call(ctx, true, func(ctx context.Context, c *adminapi.Client) error {
		_, err := c.ListDevices(ctx, f, func(d store.DeviceRow) error {
			counts[[2]string{d.Identity.Path(), d.Version.String()}]++
			total++
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	rows := make([]deviceSummary, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, deviceSummary{k[0], k[1], n})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Model != rows[j].Model {
			return rows[i].Model < rows[j].Model
		}
		return rows[i].Version < rows[j].Version
	})
	if e.json {
		return printJSON(e.stdout, rows)
	}
	t := newTable(e.stdout, "MODEL", "VERSION", "DEVICES")
	for _, r := range rows {
		t.row(r.Model, r.Version, strconv.Itoa(r.Devices))
	}
	fmt.Fprintf(e.stdout, "%d device(s)\n", total)
	return t.flush()
}

func showDevice(ctx context.Context, e *env, key string) error {
	var d store.DeviceRow
	err := e.call(ctx, false, func(ctx context.Context, c *adminapi.Client) error {
		var err error
		d, err = c.Device(ctx, key)
		return err
	})
	if err != nil {
		return err
	}
	if e.json {
		// One device has its history, [] when empty; listings leave it
		// out (they do not read it).
		return printJSON(e.stdout, struct {
			store.DeviceRow
			History []firmware.DeviceEvent `json:"history"`
		}{d, d.History})
	}
	w := e.stdout
	fmt.Fprintf(w, "Device %s", d.Key)
	if d.Test {
		fmt.Fprint(w, " (a test device)")
	}
	fmt.Fprintf(w, "\n  identity   %s\n  version    %s\n", d.Identity, d.Version)
	if d.MAC != "" {
		fmt.Fprintf(w, "  MAC        %s\n", d.MAC)
	}
	if d.Serial != "" {
		fmt.Fprintf(w, "  serial     %s\n", d.Serial)
	}
	if d.User != "" {
		fmt.Fprintf(w, "  user       %s\n", d.User)
	}
	site := d.Site
	if site == "" {
		site = "none"
	}
	fmt.Fprintf(w, "  site       %s (%s, %s)\n", site, d.Location, d.Address)
	fmt.Fprintf(w, "  cohort     %s (its place in rollout waves)\n", firmware.Share(d.Cohort))
	fmt.Fprintf(w, "  last seen  %s\n", when(d.LastCheckIn))
	fmt.Fprintf(w, "  state      %s", d.Outcome)
	if a := d.Attempt; !a.Version.IsZero() {
		fmt.Fprintf(w, " (offered %s since %s", a.Version, when(a.Offered))
		if a.Failures > 0 {
			fmt.Fprintf(w, "; %d failure(s), the last at %s", a.Failures, when(a.Failed))
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if d.Hold != "" {
		fmt.Fprintf(w, "  held back  %s (%s)\n", d.Held, d.Hold)
	}
	if d.State != firmware.StateIdle {
		fmt.Fprintf(w, "  report     %s %s %s at %s\n", d.State, d.Target, d.Error, when(d.LastReport))
	}
	if len(d.Modules) > 0 {
		mods := make([]string, len(d.Modules))
		for i, m := range d.Modules {
			mods[i] = m.Name + " " + m.Version.String()
		}
		fmt.Fprintf(w, "  modules    %s\n", strings.Join(mods, ", "))
	}
	if len(d.History) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nRecent history, oldest first:")
	t := newTable(w, "  TIME", "EVENT", "DETAIL")
	for _, ev := range d.History {
		t.row("  "+when(ev.Time), string(ev.Kind), ev.Text())
	}
	return t.flush()
}
