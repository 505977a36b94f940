package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/opendus/opendus/firmware"
)

// ErrScenario is returned when a scenario is invalid: an unknown model, a
// negative count, a share outside [0, 1], a version that does not parse.
var ErrScenario = errors.New("invalid scenario")

// Defaults of a Scenario's zero fields.
const (
	DefaultDuration      = 48 * time.Hour
	DefaultDomain        = "contoso.com"
	DefaultAccounts      = 20
	DefaultPassword      = "Simulated-1"
	DefaultBootSpread    = 30 * time.Minute
	DefaultRebootTime    = 3 * time.Minute
	DefaultIdleTime      = 5 * time.Minute
	DefaultRetryDelay    = time.Hour
	DefaultCheckInterval = 24 * time.Hour
	DefaultLANRate       = 10 << 20 // bytes per simulated second
	DefaultRemoteRate    = 1 << 20
)

// DefaultStart is the simulated time a scenario without a start begins at:
// a Monday, 06:00 UTC, before the office opens.
var DefaultStart = time.Date(2026, time.November, 23, 6, 0, 0, 0, time.UTC)

// Scenario describes a simulated fleet, its faults and how long and how fast
// to run it. With the same scenario (and the same service state) a run gives
// the same Report: every random choice comes from per-device sources seeded
// from Seed. The zero value of every field but Groups has a sensible default
// (see Normalize).
type Scenario struct {
	// Seed seeds every random choice of the run.
	Seed uint64 `json:"seed"`
	// Start is the simulated time the run begins at; default DefaultStart.
	// Office hours are those of Start's location.
	Start time.Time `json:"start,omitzero"`
	// Duration is how much simulated time Run covers; default 48h.
	Duration Duration `json:"duration,omitzero"`
	// Speed is how many simulated seconds pass per real second; 0 runs as
	// fast as the service answers.
	Speed float64 `json:"speed,omitempty"`
	// Domain is the SIP/DNS domain: devices nobody signed in to look up
	// ucupdates-r2.<Domain>. Default contoso.com.
	Domain string `json:"domain,omitempty"`
	// Groups are the devices, by model, count, location and sign-in share.
	Groups []Group `json:"groups"`
	// Accounts is how many user accounts the signed-in devices share
	// (user01, user02, ...), all with Password; default 20. The service
	// must know them (devsvc accounts add).
	Accounts int    `json:"accounts,omitempty"`
	Password string `json:"password,omitempty"`
	// Faults injected into every group that has none of its own.
	Faults Faults `json:"faults,omitzero"`
	// Behaviour of the devices.
	Behaviour Behaviour `json:"behaviour,omitzero"`
	// Waves are the waves of the rollout the run rehearses, as devsvc
	// rollout start --waves takes them ("5%,25%,100%"): the report counts
	// what each wave's devices did, placing them by the cohorts the
	// service uses (firmware.Cohort). Empty: no report by wave.
	Waves string `json:"waves,omitempty"`
	// Replicas are the sites' replicas: site name -> the replica's base
	// URL (https://dus-paris.contoso.com:8443/). The devices of a group at
	// a site with a replica find it as their site's update service: they
	// sign in and check in there (see replicas.go).
	Replicas map[string]string `json:"replicas,omitempty"`
}

// Group is a number of devices of one model, in one location.
type Group struct {
	// Model is the device identity, DeviceType/Vendor/Model/Revision/Locale
	// (UCPhone/Polycom/CX600/A/ENU).
	Model string `json:"model"`
	// Count is how many devices the group has.
	Count int `json:"count"`
	// Location is "internal" (on the LAN) or "external" (remote, through
	// the edge, with NTLM); default internal.
	Location firmware.Location `json:"location,omitempty"`
	// SignIn is the share of the group's devices whose user signs in
	// (0 to 1). The others never see a user: on the LAN they find the
	// service through DNS, outside they are refused.
	SignIn float64 `json:"signIn,omitempty"`
	// Version is the version the devices run at the start.
	Version string `json:"version"`
	// TestDevices is how many of the group's devices, the first ones, are
	// test devices. The simulator only lists them (Scenario.Fleet,
	// device-sim --list test-macs); the admin marks them in the service.
	TestDevices int `json:"testDevices,omitempty"`
	// Site names the site the group's devices are at, for the report
	// (and Scenario.Sites); the service places a device by the address it
	// comes from, so give the site a Subnet and the service the site
	// (devsvc sites add NAME --subnet CIDR). External devices are at the
	// site remote, whatever their address: an external group may name no
	// other (and is reported there when other groups name sites).
	Site string `json:"site,omitempty"`
	// Subnet, when set, is where the group's devices connect from: a
	// subnet inside 127.0.0.0/8 (127.1.0.0/16), whose addresses every
	// Linux host routes to itself. The devices of a subnet share
	// connections, each bound to one of the subnet's first addresses.
	// Internal groups only.
	Subnet string `json:"subnet,omitempty"`
	// Faults, when set, replace the scenario's for this group.
	Faults *Faults `json:"faults,omitempty"`
	// Peers is the share of the group's devices (0 to 1, spread evenly)
	// that can serve subnet peers: they run a piece server on an address
	// of their subnet, say so in their check-ins, and fetch their updates
	// from the peer the service names, checking every piece (peer.go).
	// Internal groups only.
	Peers float64 `json:"peers,omitempty"`
}

// Faults are injected failures, each a probability in [0, 1].
type Faults struct {
	// BrokenDownload is the chance that a file transfer breaks part-way
	// (once per file); the device resumes it with a Range request.
	BrokenDownload float64 `json:"brokenDownload,omitempty"`
	// CorruptImage is the chance that a downloaded image arrives
	// corrupted; the device refuses it (SHA-256), reports the failure and
	// retries after Behaviour.RetryDelay.
	CorruptImage float64 `json:"corruptImage,omitempty"`
	// PowerLoss is the chance that the power fails during an install; the
	// device comes back on its previous image, reports the failure and
	// retries after Behaviour.RetryDelay.
	PowerLoss float64 `json:"powerLoss,omitempty"`
	// InstallFails gives, per version ("4.0.7577.4400"), the chance that
	// installing it fails: the device keeps its old image, reports the
	// failure (error code install) and retries after Behaviour.RetryDelay
	// if it is offered the version again. 1: a version that fails on
	// every device.
	InstallFails map[string]float64 `json:"installFails,omitempty"`
	// PoisonPieces is the share of the peer-capable devices (spread
	// evenly) that serve corrupted pieces to their peers (a byte of every
	// piece flipped); the devices that fetch from them detect it against
	// the piece list, avoid them and fetch elsewhere.
	PoisonPieces float64 `json:"poisonPieces,omitempty"`
	// SlowPeers is the share of the peer-capable devices (spread evenly,
	// after the poisoned ones) that stall on every piece they serve: the
	// devices that fetch from them give up on each at
	// Behaviour.PeerPieceTimeout, avoid them and fetch elsewhere.
	SlowPeers float64 `json:"slowPeers,omitempty"`
	// KillRepresentative is the chance that the first device of a subnet
	// told it is its representative has its piece server stop
	// mid-transfer, after it served half the file's pieces, and never
	// serve again (the device goes on, without peers).
	KillRepresentative float64 `json:"killRepresentative,omitempty"`
}

// installFails returns the chance that installing v fails.
func (f *Faults) installFails(v firmware.Version) float64 {
	if len(f.InstallFails) == 0 {
		return 0
	}
	return f.InstallFails[v.String()]
}

// Behaviour is how the simulated devices behave; zero fields take the
// defaults.
type Behaviour struct {
	// BootSpread: devices power on within this time from the start
	// (default 30m).
	BootSpread Duration `json:"bootSpread,omitzero"`
	// RebootTime is how long an install and reboot take (default 3m).
	RebootTime Duration `json:"rebootTime,omitzero"`
	// IdleTime is how long a device must have been idle (no call) before it
	// installs a downloaded update (default 5m).
	IdleTime Duration `json:"idleTime,omitzero"`
	// RetryDelay is how long a device waits after a failed update or an
	// unreachable service (default 1h).
	RetryDelay Duration `json:"retryDelay,omitzero"`
	// CheckInterval is how often a device checks until the service or its
	// provisioning says otherwise (default 24h).
	CheckInterval Duration `json:"checkInterval,omitzero"`
	// LANRate and RemoteRate are the download speeds, in bytes per
	// simulated second, inside and outside (default 10 MiB/s, 1 MiB/s).
	LANRate    int64 `json:"lanRate,omitempty"`
	RemoteRate int64 `json:"remoteRate,omitempty"`
	// Phones and RoundTables are the usage models (calls, meetings) of the
	// two device types; zero fields take DefaultPhoneUsage and
	// DefaultRoundTableUsage.
	Phones      Usage `json:"phones,omitzero"`
	RoundTables Usage `json:"roundTables,omitzero"`
	// PeerRetry is how long a device waits, in simulated time, when its
	// peer has not got a piece yet (default 30s); PeerPieceTimeout how
	// long, in real time, a piece from a peer may take before the device
	// gives up on the peer (default 10s).
	PeerRetry        Duration `json:"peerRetry,omitzero"`
	PeerPieceTimeout Duration `json:"peerPieceTimeout,omitzero"`
	// WANRate, when set, is the rate in bytes per simulated second of
	// each subnet's link to the service, which its devices' downloads
	// from the primary service share (one after the other): a branch
	// office's line; downloads from a replica or a peer do not use it.
	// 0: every download gets LANRate, however many at once.
	WANRate int64 `json:"wanRate,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as "36h", "90m".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts Go
// durations ("36h", "90m") and "2d" style days.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration ("36h", "1h30m") or whole days ("2d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days >= 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want 36h, 90m or 2d", s)
	}
	return v, nil
}

// ReadScenario reads a scenario from JSON (unknown fields are an error) and
// normalizes it.
func ReadScenario(r io.Reader) (Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return Scenario{}, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	if err := sc.Normalize(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// Normalize fills in the defaults and checks the scenario; errors wrap
// ErrScenario.
func (sc *Scenario) Normalize() error {
	if sc.Start.IsZero() {
		sc.Start = DefaultStart
	}
	if sc.Duration == 0 {
		sc.Duration = Duration(DefaultDuration)
	}
	if sc.Domain == "" {
		sc.Domain = DefaultDomain
	}
	if sc.Accounts == 0 {
		sc.Accounts = DefaultAccounts
	}
	if sc.Password == "" {
		sc.Password = DefaultPassword
	}
	b := &sc.Behaviour
	defDur(&b.BootSpread, DefaultBootSpread)
	defDur(&b.RebootTime, DefaultRebootTime)
	defDur(&b.IdleTime, DefaultIdleTime)
	defDur(&b.RetryDelay, DefaultRetryDelay)
	defDur(&b.CheckInterval, DefaultCheckInterval)
	defDur(&b.PeerRetry, DefaultPeerRetry)
	defDur(&b.PeerPieceTimeout, DefaultPeerPieceTimeout)
	if b.LANRate <= 0 {
		b.LANRate = DefaultLANRate
	}
	if b.RemoteRate <= 0 {
		b.RemoteRate = DefaultRemoteRate
	}
	b.Phones = b.Phones.withDefaults(DefaultPhoneUsage)
	b.RoundTables = b.RoundTables.withDefaults(DefaultRoundTableUsage)

	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrScenario}, args...)...))
	}
	if sc.Duration < 0 || sc.Speed < 0 || sc.Accounts < 0 {
		bad("negative duration, speed or accounts")
	}
	if sc.Accounts > 9999 {
		bad("%d accounts: at most 9999", sc.Accounts)
	}
	if len(sc.Groups) == 0 {
		bad("no device groups")
	}
	checkFaults := func(where string, f Faults) {
		for _, p := range [...]float64{f.BrokenDownload, f.CorruptImage, f.PowerLoss, f.PoisonPieces, f.SlowPeers, f.KillRepresentative} {
			if !(p >= 0 && p <= 1) {
				bad("%s: fault probability %v outside [0, 1]", where, p)
				return
			}
		}
		for v, p := range f.InstallFails {
			if _, err := firmware.ParseVersion(v); err != nil {
				bad("%s: install fails: %v", where, err)
			}
			if !(p >= 0 && p <= 1) {
				bad("%s: install fails %s: probability %v outside [0, 1]", where, v, p)
			}
		}
	}
	checkFaults("faults", sc.Faults)
	if sc.Waves != "" {
		if _, err := firmware.ParseWaves(sc.Waves); err != nil {
			bad("waves: %v", err)
		}
	}
	total := 0
	for i := range sc.Groups {
		g := &sc.Groups[i]
		where := fmt.Sprintf("group %d (%s)", i+1, g.Model)
		if g.Location == "" {
			g.Location = firmware.Internal
		}
		if _, err := firmware.ParseIdentity(g.Model); err != nil {
			bad("%s: %v", where, err)
		}
		if _, err := firmware.ParseVersion(g.Version); err != nil {
			bad("%s: %v", where, err)
		}
		if g.Location != firmware.Internal && g.Location != firmware.External {
			bad("%s: location %q: want internal or external", where, g.Location)
		}
		if g.Count < 0 || g.Count > MaxDevices || g.TestDevices < 0 || g.TestDevices > g.Count {
			bad("%s: count %d, test devices %d", where, g.Count, g.TestDevices)
		}
		if !(g.SignIn >= 0 && g.SignIn <= 1) {
			bad("%s: sign-in share %v outside [0, 1]", where, g.SignIn)
		}
		switch {
		case !(g.Peers >= 0 && g.Peers <= 1):
			bad("%s: peers share %v outside [0, 1]", where, g.Peers)
		case g.Peers > 0 && g.Location == firmware.External:
			bad("%s: peers: external devices come through the edge, from no subnet of their own", where)
		}
		if g.Faults != nil {
			checkFaults(where, *g.Faults)
		}
		if g.Site != "" {
			if err := firmware.ValidSiteName(g.Site); err != nil {
				bad("%s: site: %v", where, err)
			}
			if (g.Site == firmware.RemoteSite) != (g.Location == firmware.External) {
				bad("%s: site %s: the devices that come through the edge, and only they, are at the site %s", where, g.Site, firmware.RemoteSite)
			}
		}
		if g.Subnet != "" {
			p, err := parseSubnet(g.Subnet)
			switch {
			case err != nil:
				bad("%s: subnet: %v", where, err)
			case g.Location == firmware.External:
				bad("%s: subnet %s: external devices come through the edge, from no subnet of their own", where, g.Subnet)
			default:
				if other, taken := subnetTaken(sc.Groups[:i], p, g.Site); taken {
					bad("%s: subnet %s is another site's (%q)", where, g.Subnet, other)
				}
			}
		}
		total += min(max(g.Count, 0), MaxDevices+1)
	}
	if total > MaxDevices {
		bad("%d devices: at most %d", total, MaxDevices)
	}
	sc.checkReplicas(bad)
	return errors.Join(errs...)
}

// loopback is where simulated devices' subnets lie: every address of it
// is the host's own.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// parseSubnet parses a group's subnet: an IPv4 subnet in its canonical
// form inside 127.0.0.0/8, with at least one address besides 127.0.0.1
// (the listeners').
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, fmt.Errorf("%q: want a subnet in CIDR notation, like 127.1.0.0/16", s)
	case p != p.Masked():
		return p, fmt.Errorf("%s has host bits set: want %s", s, p.Masked())
	case !p.Addr().Is4() || p.Bits() < loopback.Bits() || !loopback.Contains(p.Addr()):
		return p, fmt.Errorf("%s is not inside %s: simulated devices connect from loopback addresses", s, loopback)
	case p.Bits() > 30:
		return p, fmt.Errorf("%s is too small: want at most /30", s)
	}
	return p, nil
}

// subnetTaken reports whether one of groups has subnet p for a site other
// than site, and which.
func subnetTaken(groups []Group, p netip.Prefix, site string) (string, bool) {
	for _, g := range groups {
		if q, err := netip.ParsePrefix(g.Subnet); err == nil && q == p && g.Site != site {
			return g.Site, true
		}
	}
	return "", false
}

// SiteInfo is a site of the scenario: its name and the subnets of its
// groups, what the service must be told (devsvc sites add NAME --subnet
// CIDR,...).
type SiteInfo struct {
	Name    string
	Subnets []netip.Prefix
}

// Sites returns the sites the scenario's groups name, in name order, with
// their groups' subnets (the remote site has none). sc must be
// normalized.
func (sc *Scenario) Sites() []SiteInfo {
	var out []SiteInfo
	for _, g := range sc.Groups {
		if g.Site == "" {
			continue
		}
		i := slices.IndexFunc(out, func(s SiteInfo) bool { return s.Name == g.Site })
		if i < 0 {
			out = append(out, SiteInfo{Name: g.Site})
			i = len(out) - 1
		}
		if p, err := parseSubnet(g.Subnet); err == nil && !slices.Contains(out[i].Subnets, p) {
			out[i].Subnets = append(out[i].Subnets, p)
		}
	}
	slices.SortFunc(out, func(a, b SiteInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// MaxDevices bounds a scenario's fleet (MAC addresses are unique per vendor
// up to 2^24 devices).
const MaxDevices = 1 << 22

func defDur(d *Duration, def time.Duration) {
	if *d <= 0 {
		*d = Duration(def)
	}
}

// End returns the simulated time Run stops at: Start plus Duration.
func (sc *Scenario) End() time.Time { return sc.Start.Add(time.Duration(sc.Duration)) }

// AccountNames returns the names of the accounts the scenario's users sign in
// with: user01, user02, ...
func (sc *Scenario) AccountNames() []string {
	names := make([]string, sc.Accounts)
	for i := range names {
		names[i] = accountName(i)
	}
	return names
}

func accountName(i int) string {
	if i < 99 {
		return fmt.Sprintf("user%02d", i+1)
	}
	return fmt.Sprintf("user%d", i+1)
}
