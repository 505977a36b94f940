package console

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

// fleet is a snapshot of the device inventory, indexed for the pages:
// the devices by key, a lower-case text to search per device, and counts
// by identity and version.
type fleet struct {
	taken      time.Time
	devices    []firmware.Device // by key
	text       []string          // lower-case key, MAC, serial, user, address
	byIdentity map[firmware.Identity]*identityCount
	identities []firmware.Identity // sorted by path
	versions   []firmware.Version  // every version reported, ascending
}

// identityCount counts the devices of one identity, by version.
type identityCount struct {
	total     int
	byVersion map[firmware.Version]int
}

func newFleet(ds []firmware.Device, taken time.Time) *fleet {
	slices.SortFunc(ds, func(a, b firmware.Device) int { return strings.Compare(a.Key, b.Key) })
	f := &fleet{taken: taken, devices: ds, text: make([]string, len(ds)), byIdentity: map[firmware.Identity]*identityCount{}}
	versions := map[firmware.Version]bool{}
	for i, d := range ds {
		f.text[i] = strings.ToLower(d.Key + " " + d.MAC + " " + d.Serial + " " + d.User + " " + d.Address)
		ic := f.byIdentity[d.Identity]
		if ic == nil {
			ic = &identityCount{byVersion: map[firmware.Version]int{}}
			f.byIdentity[d.Identity] = ic
			f.identities = append(f.identities, d.Identity)
		}
		ic.total++
		ic.byVersion[d.Version]++
		versions[d.Version] = true
	}
	slices.SortFunc(f.identities, func(a, b firmware.Identity) int { return strings.Compare(a.Path(), b.Path()) })
	for v := range versions {
		f.versions = append(f.versions, v)
	}
	slices.SortFunc(f.versions, func(a, b firmware.Version) int { return a.Compare(b) })
	return f
}

// count returns the devices of identity id, and how many of them run v.
func (f *fleet) count(id firmware.Identity, v firmware.Version) (total, on int) {
	ic := f.byIdentity[id]
	if ic == nil {
		return 0, 0
	}
	return ic.total, ic.byVersion[v]
}

// modelVersion is one row of the fleet by model and version.
type modelVersion struct {
	Identity firmware.Identity
	Version  firmware.Version
	Devices  int
}

// byModel counts the devices by identity and version.
func (f *fleet) byModel() []modelVersion {
	var rows []modelVersion
	for _, id := range f.identities {
		ic := f.byIdentity[id]
		for v, n := range ic.byVersion {
			rows = append(rows, modelVersion{id, v, n})
		}
	}
	slices.SortFunc(rows, func(a, b modelVersion) int {
		return cmp.Or(strings.Compare(a.Identity.Path(), b.Identity.Path()), -a.Version.Compare(b.Version))
	})
	return rows
}

// fleetCache holds the snapshot: a page that finds it older than maxAge
// asks Run for a new one and uses the old one meanwhile (so no page waits
// for the whole inventory to be read), or takes one itself when Run is
// not running or there is none yet.
type fleetCache struct {
	svc    *service.Service
	now    func() time.Time
	maxAge time.Duration

	cur      atomic.Pointer[fleet]
	lastUsed atomic.Int64 // unix nanoseconds
	running  atomic.Bool
	refresh  chan service.Principal // whom Run reads the inventory for
	mu       sync.Mutex             // one load at a time
}

// fleetIdle is how long a snapshot no page used is kept.
const fleetIdle = 10 * time.Minute

func newFleetCache(svc *service.Service, now func() time.Time, maxAge time.Duration) *fleetCache {
	return &fleetCache{svc: svc, now: now, maxAge: maxAge, refresh: make(chan service.Principal, 1)}
}

// get returns a snapshot, read as the principal ctx carries.
func (fc *fleetCache) get(ctx context.Context) (*fleet, error) {
	now := fc.now()
	fc.lastUsed.Store(now.UnixNano())
	f := fc.cur.Load()
	if f != nil && now.Sub(f.taken) < fc.maxAge {
		return f, nil
	}
	if f != nil && fc.running.Load() {
		if p, ok := service.PrincipalFrom(ctx); ok {
			select {
			case fc.refresh <- p:
			default: // one is asked for already
			}
		}
		return f, nil
	}
	return fc.load(ctx, f)
}

// load reads the inventory unless another load replaced old meanwhile.
func (fc *fleetCache) load(ctx context.Context, old *fleet) (*fleet, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if f := fc.cur.Load(); f != old && f != nil {
		return f, nil
	}
	taken := fc.now()
	ds, err := fc.svc.Devices(ctx)
	if err != nil {
		return nil, err
	}
	f := newFleet(ds, taken)
	fc.cur.Store(f)
	return f, nil
}

// run takes the snapshots pages ask for, and drops one no page used for
// fleetIdle, until ctx is done.
func (fc *fleetCache) run(ctx context.Context) {
	fc.running.Store(true)
	defer fc.running.Store(false)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-fc.refresh:
			// On an error the snapshot stays as it was: the next page to
			// find it stale asks again.
			fc.load(service.WithPrincipal(ctx, p), fc.cur.Load())
		case <-t.C:
			if fc.now().Sub(time.Unix(0, fc.lastUsed.Load())) > fleetIdle {
				fc.cur.Store(nil)
			}
		}
	}
}
