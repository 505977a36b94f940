// Package peers elects, for each update file and subnet, the device that
// downloads the file from the service and serves it to the others: subnet
// peers (docs/protocol.md, "Subnet peers").
//
// # The election
//
// A peer-capable device says in its check-in where it serves pieces
// (deviceproto.CheckIn.Peer). When such a device is offered a file, it
// joins the file's group in its peer subnet: the /24 (IPv4) or /64 (IPv6)
// of the address the service sees it at (Config.PrefixV4, PrefixV6). For
// each group the Elector keeps one representative:
//
//   - While it is live (it checked in or reported within Config.Timeout,
//     and no peer reported it unreachable or serving bad pieces since),
//     the representative stays, whoever joins: a late device with a
//     higher rank does not cost the subnet a second download.
//   - Otherwise the live member of highest rank is elected, the rank being
//     a hash of the device's key and the file's SHA-256 (rendezvous
//     hashing): every service that sees the same members elects the same
//     device, and the load of many files spreads over the subnet.
//
// The representative is told to download from the service; every other
// member to wait Config.Delay and fetch from it. Once members report
// having the file (downloaded, installing, rebooting, success), a device
// is sent to one of them at once instead, chosen by the same hash of its
// own key, so that late joiners spread over the holders.
//
// # Soft state
//
// Everything here is in memory and rebuilt from check-ins and reports: a
// restart of the service forgets it, and the next check-ins elect again
// (at worst one more download per subnet). Groups whose members have all
// been silent for Config.HolderTTL are dropped.
package peers

import (
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
)

// Defaults of Config.
const (
	DefaultDelay     = time.Minute
	DefaultTimeout   = 15 * time.Minute
	DefaultHolderTTL = 26 * time.Hour
	DefaultPrefixV4  = 24
	DefaultPrefixV6  = 64
)

// Config configures an Elector. The zero value works, with the defaults.
type Config struct {
	// Delay is how long a device waits before it fetches from its
	// subnet's representative, so that the representative has a head
	// start (peer_delay); default 1 minute.
	Delay time.Duration
	// Timeout is how long a member may be silent (no check-in, no status
	// report) and still be elected or stay representative; default 15
	// minutes (peer_timeout). A peer that another device reports
	// unreachable or serving a bad piece is not elected for as long.
	Timeout time.Duration
	// HolderTTL is how long a member that has the file is still given to
	// late joiners after its last check-in or report; default 26 hours
	// (devices check daily).
	HolderTTL time.Duration
	// PrefixV4 and PrefixV6 are the lengths of a peer subnet; defaults
	// 24 and 64.
	PrefixV4, PrefixV6 int
	// Logger receives a record per representative elected; nil
	// discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Delay <= 0 {
		c.Delay = DefaultDelay
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HolderTTL <= 0 {
		c.HolderTTL = DefaultHolderTTL
	}
	if c.PrefixV4 <= 0 || c.PrefixV4 > 32 {
		c.PrefixV4 = DefaultPrefixV4
	}
	if c.PrefixV6 <= 0 || c.PrefixV6 > 128 {
		c.PrefixV6 = DefaultPrefixV6
	}
	return c
}

// Elector holds the groups and elects. It is safe for concurrent use.
type Elector struct {
	cfg Config

	// mu guards everything below; check-ins of devices in no group (all
	// of a fleet without peers) take only its read lock.
	mu     sync.RWMutex
	groups map[groupKey]*group
	// devices maps a device's key to the group it is a member of: a
	// device takes one update at a time, and holds the file of the last.
	devices map[string]*group
	sweepAt time.Time
	// elections counts the representatives elected: the first of a
	// group, and those that replaced one.
	elections, failovers uint64
}

type groupKey struct {
	sha    string
	subnet netip.Prefix
}

type group struct {
	key     groupKey
	members map[string]*member
	holders map[string]*member // the members that hold the file
	rep     *member
	elected bool // a representative was elected once
}

type member struct {
	key    string
	serve  netip.AddrPort
	rank   uint64
	seen   time.Time // last check-in or report
	failed time.Time // a peer reported it unreachable or bad at this time
	holds  bool      // reported having the file
}

// New returns an Elector.
func New(cfg Config) *Elector {
	return &Elector{cfg: cfg.withDefaults(), groups: map[groupKey]*group{}, devices: map[string]*group{}}
}

// Config returns the configuration in force, with defaults.
func (e *Elector) Config() Config { return e.cfg }

// Subnet returns the peer subnet of an address.
func (e *Elector) Subnet(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := e.cfg.PrefixV6
	if a.Is4() {
		bits = e.cfg.PrefixV4
	}
	p, _ := a.Prefix(bits)
	return p
}

// Query is a check-in of a peer-capable device offered a file.
type Query struct {
	// Key is the device's inventory key.
	Key string
	// Seen is the address the service sees the device at; Serve where
	// the device serves its peers (validated by the caller: in Seen's
	// peer subnet).
	Seen  netip.Addr
	Serve netip.AddrPort
	// Avoid, when valid, is a peer the device gave up on.
	Avoid netip.AddrPort
	// SHA256 is the offered file's digest (lower-case hex).
	SHA256 string
	Now    time.Time
}

// Advise records a check-in of a peer-capable device offered a file, and
// returns what the device is told: download it and serve the subnet
// (Representative), or fetch it from a peer.
func (e *Elector) Advise(q Query) deviceproto.PeerAdvice {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweep(q.Now)
	gk := groupKey{q.SHA256, e.Subnet(q.Seen)}
	g := e.groups[gk]
	if g == nil {
		g = &group{key: gk, members: map[string]*member{}, holders: map[string]*member{}}
		e.groups[gk] = g
	}
	if q.Avoid.IsValid() {
		for _, m := range g.members {
			if m.serve == q.Avoid && m.key != q.Key {
				m.failed = q.Now
			}
		}
	}
	m := g.members[q.Key]
	if m == nil {
		e.leave(q.Key) // offered another file: it no longer holds the old one
		m = &member{key: q.Key, rank: rank(q.Key, q.SHA256)}
		g.members[q.Key] = m
		e.devices[q.Key] = g
	}
	if m.serve != q.Serve {
		m.serve, m.failed = q.Serve, time.Time{} // a new server: judged afresh
	}
	m.seen = q.Now
	if m.holds {
		// It has the file (a device that installed it and was offered it
		// again): it needs nobody.
		return deviceproto.PeerAdvice{Representative: true}
	}
	if h := e.holder(g, m, q.Now); h != nil {
		return deviceproto.PeerAdvice{From: h.serve}
	}
	if g.rep == nil || !e.live(g.rep, q.Now) {
		old := g.rep
		g.rep = nil
		for _, c := range g.members {
			if e.live(c, q.Now) && (g.rep == nil || c.rank > g.rep.rank || c.rank == g.rep.rank && c.key < g.rep.key) {
				g.rep = c
			}
		}
		if g.rep != nil {
			failover := g.elected
			if failover {
				e.failovers++
			} else {
				e.elections++
			}
			g.elected = true
			if e.cfg.Logger != nil {
				reason := "first"
				switch {
				case old != nil:
					reason = "the representative " + old.key + " is silent or was reported failing"
				case failover:
					reason = "the representative left"
				}
				e.cfg.Logger.Info("peer representative elected", "device", g.rep.key, "subnet", gk.subnet.String(), "file", gk.sha, "reason", reason)
			}
		}
	}
	if g.rep == m || g.rep == nil {
		return deviceproto.PeerAdvice{Representative: true}
	}
	return deviceproto.PeerAdvice{From: g.rep.serve, Delay: e.cfg.Delay}
}

// holder returns a member of g that has the file, is not m, was seen
// within HolderTTL and not reported failed within Timeout: the one of
// highest rank for m's key, so that late joiners spread.
func (e *Elector) holder(g *group, m *member, now time.Time) *member {
	var best *member
	var bestRank uint64
	for _, c := range g.holders {
		if c == m || now.Sub(c.seen) > e.cfg.HolderTTL || e.failed(c, now) {
			continue
		}
		r := rank(m.key, c.key)
		if best == nil || r > bestRank || r == bestRank && c.key < best.key {
			best, bestRank = c, r
		}
	}
	return best
}

func (e *Elector) failed(m *member, now time.Time) bool {
	return !m.failed.IsZero() && now.Sub(m.failed) < e.cfg.Timeout
}

// live says whether m may be (or stay) representative.
func (e *Elector) live(m *member, now time.Time) bool {
	return now.Sub(m.seen) <= e.cfg.Timeout && !e.failed(m, now)
}

// Seen records a check-in (st "") or status report of a device: it is
// alive. A device that reports having the file of its group (state
// downloaded, installing, rebooting or success) becomes a holder; one that
// reports a failure is one no more. Devices of no group are ignored.
func (e *Elector) Seen(key string, st firmware.State, now time.Time) {
	if !e.member(key) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.devices[key]; g != nil {
		m := g.members[key]
		m.seen = now
		switch st {
		case firmware.StateDownloaded, firmware.StateInstalling, firmware.StateRebooting, firmware.StateSuccess:
			m.holds = true
			g.holders[key] = m
		case firmware.StateFailure:
			m.holds = false
			delete(g.holders, key)
		}
	}
}

// Leave removes a device from every group: it no longer serves peers (its
// check-in has no <Peer>).
func (e *Elector) Leave(key string) {
	if !e.member(key) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leave(key)
}

// member reports whether a device is in a group, under the read lock.
func (e *Elector) member(key string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.devices[key] != nil
}

func (e *Elector) leave(key string) {
	g := e.devices[key]
	if g == nil {
		return
	}
	if g.rep == g.members[key] {
		g.rep = nil
	}
	delete(g.members, key)
	delete(g.holders, key)
	delete(e.devices, key)
	if len(g.members) == 0 {
		delete(e.groups, g.key)
	}
}

// sweep drops, at most once a Timeout, the members silent for HolderTTL
// and the groups left empty.
func (e *Elector) sweep(now time.Time) {
	if now.Before(e.sweepAt) {
		return
	}
	e.sweepAt = now.Add(e.cfg.Timeout)
	for gk, g := range e.groups {
		for k, m := range g.members {
			if now.Sub(m.seen) > e.cfg.HolderTTL {
				if g.rep == m {
					g.rep = nil
				}
				delete(g.members, k)
				delete(g.holders, k)
				delete(e.devices, k)
			}
		}
		if len(g.members) == 0 {
			delete(e.groups, gk)
		}
	}
}

// Stats counts the Elector's state, for tests and metrics.
type Stats struct {
	// Groups are the (file, subnet) pairs with members; Members the
	// devices in them, Holders those that have the file.
	Groups, Members, Holders int
	// Elections counts the first representatives of groups, Failovers
	// those elected in place of one that went silent or was reported
	// failing.
	Elections, Failovers uint64
}

// Stats returns the counts.
func (e *Elector) Stats() Stats {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s := Stats{Elections: e.elections, Failovers: e.failovers}
	s.Groups = len(e.groups)
	for _, g := range e.groups {
		s.Members += len(g.members)
		for _, m := range g.members {
			if m.holds {
				s.Holders++
			}
		}
	}
	return s
}

// rank is the rendezvous hash of a device key and a file digest (or of
// two device keys): the first 8 bytes of SHA-256 over both, length-
// prefixed so that no two pairs collide by concatenation.
func rank(a, b string) uint64 {
	h := sha256.New()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(a)))
	h.Write(n[:])
	h.Write([]byte(a))
	h.Write([]byte(b))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
