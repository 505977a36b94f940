package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// Replicas are the sites' replicas: site name -> the replica's base
	// URL (https://dus-paris.contoso.com:8443/). The devices of a group at
	// a site with a replica find it as their site's update service: they
	// sign in and check in there (see sites.go).
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
	// Faults, when set, replace the scenario's for this group.
	Faults *Faults `json:"faults,omitempty"`
	// Site, when set, is the site the group's devices are at (on the
	// LAN); the report counts each site's downloads from the primary and
	// from its replica.
	Site string `json:"site,omitempty"`
	// Subnet, when set, is the site's address range the devices' LAN
	// connections come from (their source address is its first host), in
	// 127.0.0.0/8 so that it works on loopback: 127.0.5.0/24.
	Subnet string `json:"subnet,omitempty"`
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
		for _, p := range [...]float64{f.BrokenDownload, f.CorruptImage, f.PowerLoss} {
			if !(p >= 0 && p <= 1) {
				bad("%s: fault probability %v outside [0, 1]", where, p)
				return
			}
		}
	}
	checkFaults("faults", sc.Faults)
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
		if g.Faults != nil {
			checkFaults(where, *g.Faults)
		}
		total += min(max(g.Count, 0), MaxDevices+1)
	}
	if total > MaxDevices {
		bad("%d devices: at most %d", total, MaxDevices)
	}
	sc.checkSites(bad)
	return errors.Join(errs...)
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
