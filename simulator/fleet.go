package simulator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/pieces"
	"github.com/opendus/opendus/updatemeta"
)

// FleetDevice is a simulated device as the scenario defines it.
type FleetDevice struct {
	MAC, Serial string
	Identity    firmware.Identity
	Location    firmware.Location
	// User is the account that signs in on the device; empty when nobody
	// ever does.
	User string
	// Test says the device is one of its group's test devices.
	Test bool
	// Site is its group's site ("" for none).
	Site string
	// Version is the version it runs at the start.
	Version firmware.Version
}

// Fleet returns the scenario's devices, in order: groups in order, and in
// each group its test devices first. sc must be normalized.
func (sc *Scenario) Fleet() []FleetDevice {
	var out []FleetDevice
	sc.generate(func(i int, g *Group, d FleetDevice) { out = append(out, d) })
	return out
}

// vendorOUI gives the simulated devices the vendor's real prefix; other
// vendors get a locally administered one.
var vendorOUI = map[string][3]byte{
	"Polycom":   {0x00, 0x04, 0xF2},
	"Aastra":    {0x00, 0x08, 0x5D},
	"HP":        {0x00, 0x1F, 0x29},
	"LG-Nortel": {0x00, 0x1E, 0x75},
	"Microsoft": {0x00, 0x15, 0x5D},
}

// generate calls fn for every device of the scenario, with its index.
func (sc *Scenario) generate(fn func(i int, g *Group, d FleetDevice)) {
	next := map[string]uint32{} // next MAC suffix per vendor
	base := uint32(splitmix(sc.Seed) & 0xFFFFFF)
	i, user := 0, 0
	for gi := range sc.Groups {
		g := &sc.Groups[gi]
		id, _ := firmware.ParseIdentity(g.Model)
		v, _ := firmware.ParseVersion(g.Version)
		oui, ok := vendorOUI[id.Vendor]
		if !ok {
			h := splitmix(uint64(len(id.Vendor))<<32 ^ uint64(fnv32(id.Vendor)))
			oui = [3]byte{0x02, byte(h >> 8), byte(h >> 16)}
		}
		prefix := serialPrefix(id.Vendor)
		for j := 0; j < g.Count; j++ {
			n := (base + next[id.Vendor]) & 0xFFFFFF
			next[id.Vendor]++
			d := FleetDevice{
				MAC:      fmt.Sprintf("%02X-%02X-%02X-%02X-%02X-%02X", oui[0], oui[1], oui[2], byte(n>>16), byte(n>>8), byte(n)),
				Serial:   fmt.Sprintf("%s%08d", prefix, i+1),
				Identity: id,
				Location: g.Location,
				Test:     j < g.TestDevices,
				Site:     g.Site,
				Version:  v,
			}
			// An exact share of the group signs in, spread evenly.
			if math.Floor(float64(j+1)*g.SignIn) > math.Floor(float64(j)*g.SignIn) && sc.Accounts > 0 {
				d.User = accountName(user % sc.Accounts)
				user++
			}
			fn(i, g, d)
			i++
		}
	}
}

func serialPrefix(vendor string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(vendor) {
		if c >= 'A' && c <= 'Z' {
			b.WriteRune(c)
		}
		if b.Len() == 3 {
			break
		}
	}
	for b.Len() < 3 {
		b.WriteByte('X')
	}
	return b.String()
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// phase is where a device is in its life, for progress and reports.
type phase uint8

const (
	phaseOff         phase = iota // not powered on yet
	phaseRunning                  // running, nothing to install
	phaseDownloading              // fetching an offered update
	phaseWaitingIdle              // update verified, waiting until idle
	phaseRebooting                // installing and rebooting
	numPhases
)

var phaseNames = [numPhases]string{"off", "running", "downloading", "waiting for idle", "rebooting"}

// step is the next step of an update or boot.
type step uint8

const (
	stepNone          step = iota
	stepBoot               // power on: check in
	stepDownload           // the download has taken its time: fetch and verify
	stepInstall            // idle long enough: install and reboot
	stepRebooted           // back from the reboot on the new version
	stepPowerRestored      // back from a power loss on the old version
	stepInstallFailed      // back from a failed install on the old version
)

// offer is an update a device is installing.
type offer struct {
	target firmware.Version
	base   source // the files' base URL for the device's location
	alt    source // and their alternative, where the first fails
	stamp  string // the update's timestamp, RFC 3339
	files  []offerFile
	// installBy is the simulated time by which the install must have
	// ended (the answer's InstallBy); never when the offer has no limit.
	installBy int64
	began     int64 // when the install began
	// Subnet peers (peer.go): the service's advice for the image, the
	// pieces of it the device has, and how often it waited for a peer
	// and how many peers it tried.
	advice deviceproto.PeerAdvice
	// list is the image's piece list, checked against the signed
	// metadata at the check-in (verify); nil: hold takes it.
	list                   *pieces.List
	held                   *holding
	waits, rounds, notHeld int
}

// tried is what became of one version a device was offered, for the
// report.
type tried struct {
	version firmware.Version
	offered int64 // first offered
	// failures counts the failed attempts at it (download, install,
	// power loss); missed the installs dropped at InstallBy.
	failures, missed int16
	installed        bool
}

// install is one install a device began: the version, when it began and
// ended, and whether it failed.
type install struct {
	version      firmware.Version
	began, ended int64
	failed       bool
}

type offerFile struct {
	name string
	size int64
	sha  string
}

// device is one simulated device: its identity, what it runs and knows, its
// timers and its random sources. Only the worker handling one of its events
// touches it; the scheduler reads it between events.
type device struct {
	mac, serial string
	group       int32
	user        int16 // account index, -1 when nobody signs in
	test        bool

	// What the device runs and knows ("System Information").
	version    firmware.Version
	module     string // file name of the installed image
	catalog    string // and of its security catalog, once it installed one
	stamp      string // the installed update's timestamp
	lastUpdate int64  // simulated time of the last update; never when none
	internal   string // base URLs it checks in at: provisioned, found in DNS or moved to
	external   string
	interval   int64 // check interval until the service says otherwise
	disabled   bool  // provisioning said updatesServerEnabled=false
	signedIn   bool
	// viaRelay: the device goes through Service.RelayURL, until it
	// refused what the relay served.
	viaRelay bool
	// refusedMeta: it refused metadata, an offer or a file that did not
	// verify at least once.
	refusedMeta bool
	// meta is its trusted update metadata; nil while it holds no root
	// (or does not verify).
	meta *updatemeta.Client

	phase     phase
	checkedIn bool
	moved     bool
	failed    bool // the last update attempt failed
	refused   bool // the service refused it at least once
	lastErr   reason
	updates   int32
	// failedTarget and retryAt: after a failure the device does not try
	// the same version again before retryAt.
	failedTarget firmware.Version
	retryAt      int64
	offer        *offer
	// tries and installs are what became of the versions it was offered
	// and the installs it began, for the report and DeviceInfo.
	tries    []tried
	installs []install
	// fromPrimary and fromReplica are the file bytes it fetched from the
	// primary (across the WAN) and from its site's replica; fallbacks
	// the files it fetched from the alternative URL after the first
	// failed.
	fromPrimary, fromReplica int64
	fallbacks                int32

	// Timers; the device's one entry in the queue is at the earliest.
	signInAt, checkAt, stepAt int64
	step                      step

	// Subnet peers (peer.go): peerCapable devices run a piece server
	// (peer, from the first RunUntil), poisoned ones corrupt what they
	// serve; avoid is the peer the next check-in names as failed, avoids
	// every peer the device gave up on.
	peerCapable, poison, slow bool
	peer                      *peerNode
	avoid                     netip.AddrPort
	avoids                    []netip.AddrPort

	calls     calls
	behaviour rand.PCG // boot and sign-in times, faults
	usage     rand.PCG // the call stream
}

// next returns the device's earliest timer, never when none is set.
func (d *device) next() int64 { return min(d.signInAt, d.checkAt, d.stepAt) }

// groupInfo is what devices of a group share.
type groupInfo struct {
	id      firmware.Identity
	loc     firmware.Location
	faults  Faults
	rate    int64 // download bytes per simulated second
	usage   *usageModel
	initial firmware.Version
	module  string
	site    string
	subnet  netip.Prefix // invalid: none
	// peerNet is the /24 its devices are seen from (internal groups);
	// peers the share of them that are peer-capable.
	peerNet netip.Prefix
	peers   float64
	// lan is the client of the group's LAN requests: from its subnet's
	// addresses, or the shared one.
	lan       *lanClient
	userAgent string
	// replica is the base URL of the replica of the group's site ("":
	// none).
	replica string
}

// try returns d's record of version v, adding it (first offered at) if
// there is none.
func (d *device) try(v firmware.Version, at int64) *tried {
	for i := range d.tries {
		if d.tries[i].version == v {
			return &d.tries[i]
		}
	}
	d.tries = append(d.tries, tried{version: v, offered: at})
	return &d.tries[len(d.tries)-1]
}

// DeviceInfo is what a device shows on its "System Information" screen, and
// what the simulator knows of it.
type DeviceInfo struct {
	MAC, Serial string
	Identity    firmware.Identity
	Location    firmware.Location
	User        string `json:",omitempty"`
	Test        bool   `json:",omitempty"`
	// Version is the version it runs now; LastUpdate when it last
	// installed one (zero when it never did).
	Version    firmware.Version
	LastUpdate time.Time `json:",omitzero"`
	// State is off, running, downloading, waiting for idle or rebooting.
	State string
	// SignedIn says a user signed in and the device took its provisioning.
	SignedIn bool `json:",omitempty"`
	// CheckInURL is where it checks in now.
	CheckInURL string `json:",omitempty"`
	Updates    int    `json:",omitempty"`
	// Error is the reason of the last failed update attempt, if the last
	// attempt failed.
	Error string `json:",omitempty"`
	// Site is its group's site ("" for none).
	Site string `json:",omitempty"`
	// Installs are the installs it began, in order: the version, when the
	// install began and ended (rebooted on the new version, or back on the
	// old one), and whether it failed. A device installs only inside its
	// windows: Began at or after the offer, Ended by its InstallBy.
	Installs []Install `json:",omitempty"`
}

// Install is an install a device began.
type Install struct {
	Version firmware.Version
	Began   time.Time
	Ended   time.Time
	Failed  bool `json:",omitempty"`
}
