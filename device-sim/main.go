// Command device-sim runs a simulated fleet of UC desk phones and RoundTable
// conference units against a running OpenDUS service, on a virtual clock,
// and prints what happened: versions before and after by model, updates
// done, time to converge, bytes served, refusals and failures.
//
// Usage:
//
//	device-sim [flags]                                   run a scenario
//	device-sim firmware -o DIR [--size N] MODEL=VERSION   write sample firmware
//
// Run "device-sim --help" for the flags. The logic lives in package
// simulator; this command reads flags, shows progress and prints the report.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `device-sim runs simulated UC devices against a running OpenDUS service
(devsvc serve) on a virtual clock, and reports what they did.

Usage:
  device-sim [flags]
  device-sim firmware -o DIR [--size BYTES] MODEL=VERSION...

Examples:
  # 1,000 phones and conference units through two simulated days
  device-sim --data ./dus \
    --group UCPhone/Polycom/CX600/A/ENU,600,3.5.6907.35,signin=0.7,test=5 \
    --group UCPhone/Polycom/CX600/A/ENU,300,3.5.6907.35,external,signin=0.6 \
    --group RoundTable/Microsoft/RoundTable/A/ENU,100,1.0.522.101 \
    --duration 2d --seed 1

  # the same from a scenario file, as JSON for a script
  device-sim --data ./dus --scenario fleet.json --json

  # the test devices' MACs and the accounts, to set them up in the service
  device-sim --scenario fleet.json --list test-macs
  device-sim --scenario fleet.json --list accounts

  # rehearse a rollout: the service on a simulated clock the run drives,
  # two sites, a version that fails on one install in ten
  devsvc serve --data ./dus --simulated-clock 2026-11-23T06:00:00Z \
    --internal-addr 127.0.0.1:8443 --external-addr 127.0.0.1:4443 &
  device-sim --list sites --group ...,site=berlin,subnet=127.1.0.0/16 ...
  devsvc sites add berlin --subnet 127.1.0.0/16 --timezone Europe/Berlin --window "22:00-05:00"
  devsvc rollout start UCPhone/Polycom/CX600/A/ENU --waves 5%,25%,100% --wave-wait 4h
  device-sim --data ./dus --waves 5%,25%,100% --install-fails 4.0.7577.4400=0.1 \
    --group UCPhone/Polycom/CX600/A/ENU,800,3.5.6907.35,site=berlin,subnet=127.1.0.0/16 \
    --group UCPhone/Polycom/CX600/A/ENU,200,3.5.6907.35,site=lab,subnet=127.2.0.0/16 \
    --devices-out devices.json

  # a sample firmware tree to pack and import
  device-sim firmware -o ./UCUpdates UCPhone/Polycom/CX600/A/ENU=4.0.7577.4372

A group is MODEL,COUNT,VERSION[,internal|external][,signin=SHARE][,test=N]
[,site=NAME][,subnet=CIDR][,peers=SHARE]: COUNT devices of MODEL
(DeviceType/Vendor/Model/Revision/Locale) running VERSION, on the LAN
(internal, the default) or remote through the edge (external); SHARE of them
(0-1) have a user who signs in; the first N are test devices; they are at the
site NAME and connect from addresses of CIDR, a subnet inside 127.0.0.0/8
(tell the service the site: devsvc sites add NAME --subnet CIDR; --list
sites prints them); SHARE of them (0-1) can serve subnet peers: each runs
a piece server on an address of its /24 (127.A.B.10 and up), says so in its
check-ins, and fetches its updates from the representative the service
elects, checking every piece (the report's subnet table shows the bytes
fetched across the WAN and from peers). Devices nobody signs in to find the service through DNS
(ucupdates-r2.<domain>, answered by a DNS server device-sim runs on
loopback) on the LAN, and are refused at the edge.

--replica NAME=URL gives a site a replica (its internal base URL): the
site's devices sign in and check in there, and fetch files there, falling
back to the alternative URL (the primary's) when that fails. The report
shows, per site, the bytes fetched from the primary (across the WAN) and
from the replica.

  # 2 sites of 500 phones, one behind a replica
  device-sim --data ./dus \
    --group UCPhone/Polycom/CX600/A/ENU,500,3.5.6907.35,site=paris,subnet=127.0.1.0/24 \
    --group UCPhone/Polycom/CX600/A/ENU,500,3.5.6907.35,site=lyon,subnet=127.0.2.0/24 \
    --replica paris=https://127.0.1.1:8443/

Devices verify the service's signed update metadata (docs/protocol.md):
with --data they come provisioned with its first root (DIR/keys), and a
device a user signs in to takes the provisioning document's; each refusal
(an expired or replayed timestamp, an offer that is not signed...) is
reported to the service and counted in the report by its reason. A
device says in its check-in which timestamp it trusts; the answer staples a
newer one, which it verifies as if fetched, so it fetches only what a
catalog change signed anew (or what its trust needs once expired, or an
offer that is not signed). --always-refresh makes it fetch everything at
every check-in, without stapling (the reference of what that saves);
--no-verify turns verification off.

A service started with devsvc serve --simulated-clock runs on a clock this
run drives (found in its run file with --data): its rollouts, waves,
maintenance windows, back-offs and alarms follow the simulated time, and the
run starts at the clock's time.

Flags:
`

// printFlags lists the flags of fs as flag.PrintDefaults does, but spelt
// as the usage and devsvc spell them: --name, and -o for a single letter
// (the flag package takes either).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name
		}
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(use, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			if fmt.Sprintf("%T", f.Value) == "*flag.stringValue" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += " (default " + f.DefValue + ")"
			}
		}
		fmt.Fprintln(w, line)
	})
}

// options are the command line's.
type options struct {
	data, internalURL, externalURL, caFile, domain string
	address                                        string
	scenarioFile                                   string
	groups                                         []simulator.Group
	duration, rebootTime, idleTime, bootSpread     string
	speed                                          float64
	seed                                           uint64
	broken, corrupt, powerLoss                     float64
	poison, slowPeers, killRep                     float64
	wanRate                                        int64
	installFails                                   map[string]float64
	waves                                          string
	accounts                                       int
	password                                       string
	workers                                        int
	lookahead                                      string
	progress                                       string
	json                                           bool
	devicesOut                                     string
	list                                           string
	cpuProfile                                     string
	replicas                                       map[string]string
	rootFile                                       string
	noVerify, alwaysRefresh                        bool
	set                                            map[string]bool
	// startSet says the scenario file gives the start time.
	startSet bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("device-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		printFlags(stderr, fs)
	}
	fs.StringVar(&o.data, "data", os.Getenv("OPENDUS_DATA"), "the service's data `DIR` (default $OPENDUS_DATA): its run file, CA and settings")
	fs.StringVar(&o.internalURL, "internal-url", "", "instead of --data: the internal listener's base `URL`")
	fs.StringVar(&o.externalURL, "external-url", "", "instead of --data: the edge's base `URL`")
	fs.StringVar(&o.caFile, "ca", "", "instead of --data: the service CA certificate `FILE` (PEM), the only one devices trust")
	fs.StringVar(&o.domain, "domain", "", "instead of --data: the devices' `DOMAIN` (ucupdates-r2.DOMAIN)")
	fs.StringVar(&o.rootFile, "root", "", "instead of --data: the root of the signed update metadata devices are provisioned with, a `FILE` (devsvc keys export)")
	fs.BoolVar(&o.noVerify, "no-verify", false, "devices do not verify the signed update metadata: they believe every answer")
	fs.BoolVar(&o.alwaysRefresh, "always-refresh", false, "verifying devices fetch the metadata at every check-in, without the answer's <Metadata> hint and stapled timestamp")
	fs.StringVar(&o.address, "address", "127.0.0.1", "with --internal-url: the `IP` address device-sim's DNS server gives for the service's names")
	fs.StringVar(&o.scenarioFile, "scenario", "", "read the scenario from a JSON `FILE`; the flags below override it")
	fs.Func("group", "add a device `GROUP` (see above); repeat for more; replaces the scenario's groups", func(v string) error {
		g, err := parseGroup(v)
		if err != nil {
			return err
		}
		o.groups = append(o.groups, g)
		return nil
	})
	fs.Func("replica", "give a site a replica: `SITE=URL`, its internal base URL; repeat for more", func(v string) error {
		site, u, ok := strings.Cut(v, "=")
		if !ok || site == "" || u == "" {
			return fmt.Errorf("--replica %q: want SITE=URL, like paris=https://dus-paris.contoso.com/", v)
		}
		if o.replicas == nil {
			o.replicas = map[string]string{}
		}
		o.replicas[site] = u
		return nil
	})
	fs.StringVar(&o.duration, "duration", "", "simulated `TIME` to run, like 2d or 36h (default 2d)")
	fs.Float64Var(&o.speed, "speed", 0, "`SPEED`: simulated seconds per real second; 0 runs as fast as the service answers")
	fs.Uint64Var(&o.seed, "seed", 0, "`SEED` of every random choice: the same seed gives the same report")
	fs.Float64Var(&o.broken, "broken", 0, "probability `P` that a file transfer breaks part-way (resumed with Range)")
	fs.Float64Var(&o.corrupt, "corrupt", 0, "probability `P` that an image arrives corrupted (refused, retried)")
	fs.Float64Var(&o.powerLoss, "power-loss", 0, "probability `P` of a power loss during an install (old image kept, failure reported)")
	fs.Float64Var(&o.poison, "poison", 0, "share `P` of the peer-capable devices that serve corrupted pieces (detected, avoided)")
	fs.Float64Var(&o.slowPeers, "slow-peers", 0, "share `P` of the peer-capable devices that stall on every piece they serve (given up on, avoided)")
	fs.Int64Var(&o.wanRate, "wan-rate", 0, "`BYTES` per simulated second of each subnet's link to the service, shared by its downloads from the primary service, not from a replica or peer (0: no shared link)")
	fs.Float64Var(&o.killRep, "kill-representative", 0, "probability `P` that a subnet's first representative's piece server stops mid-transfer")
	fs.Func("install-fails", "`VERSION=P`: installing VERSION fails with probability P (old image kept, failure reported); repeat for more versions", func(v string) error {
		version, p, ok := strings.Cut(v, "=")
		if _, err := firmware.ParseVersion(version); err != nil || !ok {
			return fmt.Errorf("%q: want VERSION=P, like 4.0.7577.4400=0.1", v)
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return fmt.Errorf("%q: the probability %q must be from 0 to 1", v, p)
		}
		if o.installFails == nil {
			o.installFails = map[string]float64{}
		}
		o.installFails[version] = f
		return nil
	})
	fs.StringVar(&o.waves, "waves", "", "the rehearsed rollout's `WAVES` (5%,25%,100%, as rollout start --waves): the report counts each wave's devices")
	fs.StringVar(&o.rebootTime, "reboot-time", "", "`TIME` an install and reboot take (default 3m)")
	fs.StringVar(&o.idleTime, "idle-time", "", "`TIME` a device must have been idle before it installs (default 5m)")
	fs.StringVar(&o.bootSpread, "boot-spread", "", "devices power on within this `TIME` of the start (default 30m)")
	fs.IntVar(&o.accounts, "accounts", 0, "`N` accounts (user01...) the signed-in users share (default 20)")
	fs.StringVar(&o.password, "password", "", "the accounts' `PASSWORD` (default "+simulator.DefaultPassword+")")
	fs.IntVar(&o.workers, "workers", 0, "`N` HTTP exchanges under way at once (default 32)")
	fs.StringVar(&o.lookahead, "lookahead", "1m", "how far in simulated `TIME` events may run ahead of the earliest one under way")
	fs.StringVar(&o.progress, "progress", "auto", "live progress on standard error: `WHEN` auto (on a terminal), always or never")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.StringVar(&o.devicesOut, "devices-out", "", "write every device's System Information (version, last update...) as JSON to `FILE`")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	fs.StringVar(&o.list, "list", "", "print `WHAT` of the scenario, one per line, and exit: test-macs, accounts, sites (NAME SUBNET,...) or fleet")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// parseGroup parses MODEL,COUNT,VERSION[,internal|external][,signin=S][,test=N].
func parseGroup(v string) (simulator.Group, error) {
	parts := strings.Split(v, ",")
	if len(parts) < 3 {
		return simulator.Group{}, fmt.Errorf("group %q: want MODEL,COUNT,VERSION[,external][,signin=S][,test=N]", v)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return simulator.Group{}, fmt.Errorf("group %q: count %q is not a number", v, parts[1])
	}
	g := simulator.Group{Model: parts[0], Count: n, Version: parts[2]}
	for _, p := range parts[3:] {
		key, val, _ := strings.Cut(p, "=")
		switch key {
		case string(firmware.Internal), string(firmware.External):
			g.Location = firmware.Location(key)
		case "signin":
			if g.SignIn, err = strconv.ParseFloat(val, 64); err != nil {
				return simulator.Group{}, fmt.Errorf("group %q: signin=%q: want a share from 0 to 1", v, val)
			}
		case "test":
			if g.TestDevices, err = strconv.Atoi(val); err != nil {
				return simulator.Group{}, fmt.Errorf("group %q: test=%q: want a number", v, val)
			}
		case "site":
			g.Site = val
		case "subnet":
			g.Subnet = val
		case "peers":
			if g.Peers, err = strconv.ParseFloat(val, 64); err != nil {
				return simulator.Group{}, fmt.Errorf("group %q: peers=%q: want a share from 0 to 1", v, val)
			}
		default:
			return simulator.Group{}, fmt.Errorf("group %q: unknown option %q (internal, external, signin=S, test=N, site=NAME, subnet=CIDR, peers=S)", v, p)
		}
	}
	return g, nil
}

// scenario builds the scenario from the file and the flags.
func (o *options) scenario() (simulator.Scenario, error) {
	var sc simulator.Scenario
	if o.scenarioFile != "" {
		f, err := os.Open(o.scenarioFile)
		if err != nil {
			return sc, err
		}
		sc, err = simulator.ReadScenario(f)
		f.Close()
		if err != nil {
			return sc, fmt.Errorf("%s: %w", o.scenarioFile, err)
		}
	}
	if len(o.groups) > 0 {
		sc.Groups = o.groups
	}
	if len(o.replicas) > 0 {
		sc.Replicas = o.replicas
	}
	durations := []struct {
		flag string
		v    string
		dst  *simulator.Duration
	}{
		{"duration", o.duration, &sc.Duration}, {"reboot-time", o.rebootTime, &sc.Behaviour.RebootTime},
		{"idle-time", o.idleTime, &sc.Behaviour.IdleTime}, {"boot-spread", o.bootSpread, &sc.Behaviour.BootSpread},
	}
	for _, d := range durations {
		if o.set[d.flag] {
			v, err := simulator.ParseDuration(d.v)
			if err != nil {
				return sc, fmt.Errorf("--%s: %w", d.flag, err)
			}
			*d.dst = simulator.Duration(v)
		}
	}
	if o.set["speed"] {
		sc.Speed = o.speed
	}
	if o.set["seed"] {
		sc.Seed = o.seed
	}
	if o.set["broken"] {
		sc.Faults.BrokenDownload = o.broken
	}
	if o.set["corrupt"] {
		sc.Faults.CorruptImage = o.corrupt
	}
	if o.set["power-loss"] {
		sc.Faults.PowerLoss = o.powerLoss
	}
	if o.set["poison"] {
		sc.Faults.PoisonPieces = o.poison
	}
	if o.set["slow-peers"] {
		sc.Faults.SlowPeers = o.slowPeers
	}
	if o.set["wan-rate"] {
		sc.Behaviour.WANRate = o.wanRate
	}
	if o.set["kill-representative"] {
		sc.Faults.KillRepresentative = o.killRep
	}
	if o.set["install-fails"] {
		sc.Faults.InstallFails = o.installFails
	}
	if o.set["waves"] {
		sc.Waves = o.waves
	}
	if o.set["accounts"] {
		sc.Accounts = o.accounts
	}
	if o.set["password"] {
		sc.Password = o.password
	}
	o.startSet = !sc.Start.IsZero()
	return sc, sc.Normalize()
}

// service finds the service: from --data, or from the URL flags.
func (o *options) service() (simulator.Service, error) {
	if o.internalURL != "" {
		if o.caFile == "" {
			return simulator.Service{}, errors.New("--internal-url needs --ca")
		}
		pool, err := simulator.LoadCA(o.caFile)
		if err != nil {
			return simulator.Service{}, err
		}
		ip, err := netip.ParseAddr(o.address)
		if err != nil {
			return simulator.Service{}, fmt.Errorf("--address: %w", err)
		}
		svc := simulator.Service{Domain: o.domain, InternalURL: o.internalURL, ExternalURL: o.externalURL, RootCAs: pool, Hosts: map[string]netip.Addr{}}
		for _, u := range []string{o.internalURL, o.externalURL} {
			if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" {
				svc.Hosts[strings.ToLower(pu.Hostname())] = ip
			}
		}
		if o.domain != "" {
			svc.Hosts["ucupdates-r2."+strings.ToLower(o.domain)] = ip
		}
		if o.rootFile != "" {
			if svc.Root, err = os.ReadFile(o.rootFile); err != nil {
				return simulator.Service{}, fmt.Errorf("--root: %w", err)
			}
		}
		return svc, nil
	}
	if o.data == "" {
		return simulator.Service{}, errors.New("no service: give --data DIR (or set OPENDUS_DATA), or --internal-url and --ca")
	}
	return simulator.LoadService(o.data)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "firmware" {
		if err := firmwareCmd(args[1:], stdout, stderr); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stderr, "device-sim firmware:", err)
			}
			return 2
		}
		return 0
	}
	if len(args) == 1 && args[0] == "man" {
		if err := manCmd(stdout); err != nil {
			fmt.Fprintln(stderr, "device-sim man:", err)
			return 1
		}
		return 0
	}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if err := o.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "device-sim:", err)
		return 1
	}
	return 0
}

func (o *options) run(ctx context.Context, stdout, stderr io.Writer) error {
	sc, err := o.scenario()
	if err != nil {
		return err
	}
	if o.list != "" {
		return list(stdout, &sc, o.list)
	}
	svc, err := o.service()
	if err != nil {
		return err
	}
	if svc.ClockFile != "" && !o.startSet {
		sc.Start = time.Time{} // the service's simulated clock's time
	}
	look, err := simulator.ParseDuration(o.lookahead)
	if err != nil {
		return fmt.Errorf("--lookahead: %w", err)
	}
	cfg := simulator.Config{Workers: o.workers, Lookahead: look, NoVerify: o.noVerify, AlwaysRefresh: o.alwaysRefresh}
	live := o.progress == "always" || o.progress == "auto" && isTerminal(stderr)
	var pl *progressLine
	if live {
		pl = &progressLine{w: stderr, start: sc.Start, tty: isTerminal(stderr)}
		cfg.Progress = pl.show
		if !pl.tty {
			cfg.ProgressEvery = 2 * time.Second
		}
	}
	sim, err := simulator.New(sc, svc, cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	wall := time.Now()
	runErr := sim.Run(ctx)
	elapsed := time.Since(wall)
	if pl != nil {
		pl.end()
	}
	rep := sim.Report()
	if o.devicesOut != "" {
		if err := writeJSON(o.devicesOut, sim.Devices()); err != nil {
			return err
		}
	}
	stats := runStats(sim, elapsed)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
		fmt.Fprintln(stderr, stats)
	} else {
		if err := rep.WriteText(stdout); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Run              "+stats)
	}
	if runErr != nil {
		return fmt.Errorf("the report covers the run until it stopped: %w", runErr)
	}
	return nil
}

// runStats is the real-time side of a run, which the report leaves out.
func runStats(sim *simulator.Sim, elapsed time.Duration) string {
	p := sim.Progress()
	sc := sim.Scenario()
	span := p.Now.Sub(sc.Start)
	s := fmt.Sprintf("%.1fs wall for %s simulated (%.0f×), %d device events", elapsed.Seconds(), span, span.Seconds()/max(elapsed.Seconds(), 1e-3), p.Events)
	if rss := peakRSS(); rss > 0 {
		s += fmt.Sprintf(", peak RSS %.0f MiB (%.1f KiB/device)", float64(rss)/(1<<20), float64(rss)/1024/float64(max(p.Devices, 1)))
	}
	return s
}

func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // KiB on Linux
}

func writeJSON(file string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

func list(w io.Writer, sc *simulator.Scenario, what string) error {
	switch what {
	case "test-macs":
		for _, d := range sc.Fleet() {
			if d.Test {
				fmt.Fprintln(w, d.MAC)
			}
		}
	case "accounts":
		for _, n := range sc.AccountNames() {
			fmt.Fprintln(w, n)
		}
	case "fleet":
		for _, d := range sc.Fleet() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\ttest=%v\t%s\n", d.MAC, d.Serial, d.Identity, d.Location, d.Version, cmpOr(d.User, "-"), d.Test, cmpOr(d.Site, "-"))
		}
	case "sites":
		for _, si := range sc.Sites() {
			fmt.Fprintf(w, "%s\t%s\n", si.Name, cmpOr(firmware.FormatSubnets(si.Subnets), "-"))
		}
	default:
		return fmt.Errorf("--list %q: want test-macs, accounts, sites or fleet", what)
	}
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// firmwareCmd writes sample firmware trees.
func firmwareCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("device-sim firmware", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the tree under `DIR` (required)")
	size := fs.Int64("size", 128<<10, "image size in `BYTES`")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: device-sim firmware -o DIR [--size BYTES] MODEL=VERSION...\n\n"+
			"Writes a sample update per MODEL=VERSION (an image <Model>.nbt and its catalog\n"+
			"<Model>.cat) into DIR/DeviceType/Vendor/Model/Revision/Locale/Version/,\n"+
			"the tree devsvc import and devsvc bundle pack read.\n\n")
		printFlags(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("want -o DIR and at least one MODEL=VERSION")
	}
	for _, a := range fs.Args() {
		model, version, ok := strings.Cut(a, "=")
		id, err := firmware.ParseIdentity(model)
		if err != nil || !ok {
			return fmt.Errorf("%q: want DeviceType/Vendor/Model/Revision/Locale=VERSION: %v", a, err)
		}
		v, err := firmware.ParseVersion(version)
		if err != nil {
			return fmt.Errorf("%q: %w", a, err)
		}
		if err := simulator.WriteFirmware(*out, id, v, *size); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s/%s\n", id.Path(), v)
	}
	return nil
}
