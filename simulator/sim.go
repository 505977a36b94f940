package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/simclock"
	"github.com/opendus/opendus/updatemeta"
)

// Config tunes how a simulation runs; it does not change its outcome. The
// zero value is sensible.
type Config struct {
	// Workers bounds the HTTP exchanges under way at once; default 32.
	// Keep it below the service's in-flight limit (1024), or the service
	// sheds load and the outcome depends on timing.
	Workers int
	// Lookahead is how far, in simulated time, events may be handled
	// ahead of the earliest one still under way; default one simulated
	// minute. Devices do not interact, so this changes only the order in
	// which the service sees them, and, on a service whose simulated clock
	// the run drives (Service.ClockFile), the service's time at each
	// request: it trails the device's by at most the lookahead. Answers
	// that depend on that time (a back-off that ends, a window or wave
	// that opens) may then differ by it from run to run; a lookahead of a
	// nanosecond makes them exact, and the run nearly sequential.
	Lookahead time.Duration
	// Progress, if set, is called from the simulation's goroutine every
	// ProgressEvery of real time (default 250ms) and at the end of each
	// RunUntil.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Logger receives a debug record per failure; nil discards.
	Logger *slog.Logger
	// Now is the real clock that paces a run with a speed; nil means
	// time.Now.
	Now func() time.Time
	// NoVerify turns off the devices' verification of the signed update
	// metadata (Service.Root): they believe the answers, as before.
	NoVerify bool
	// AlwaysRefresh makes verifying devices fetch the metadata at every
	// check-in, as if the answers did not say which timestamp and root
	// the service serves nor staple a newer timestamp (deviceproto
	// Answer.Metadata, Stapled): the reference of what they save.
	AlwaysRefresh bool
}

// Progress is a snapshot of a running simulation.
type Progress struct {
	// Now is the simulated time.
	Now     time.Time
	Devices int
	// Devices by what they do now.
	Off, Downloading, WaitingIdle, Rebooting int
	// CheckedIn devices have checked in at least once; Updated devices have
	// rebooted onto a new version at least once; Failed devices' last
	// update attempt failed; Refused devices were refused at least once.
	CheckedIn, Updated, Failed, Refused int
	// Events is how many device events were handled.
	Events int64
}

// Sim is a simulated fleet on a virtual clock. Its methods must not be
// called concurrently, except Now.
type Sim struct {
	sc     Scenario
	svc    Service
	cfg    Config
	log    *slog.Logger
	groups []groupInfo
	devs   []device
	q      queue
	clock  atomic.Int64 // simulated ns since the start

	started bool
	dns     *dnsServer
	dial    *dialer
	lan     *lanClient   // the LAN client of devices at no subnet
	lans    []*lanClient // it and those of the groups' subnets
	workers []*worker
	// svcClock is the service's simulated clock (Service.ClockFile),
	// which the run drives; nil when the service runs on real time.
	svcClock *simclock.Clock

	internMu sync.Mutex
	interned map[string]string
	// metaCache shares the verification of targets among the devices
	// (updatemeta.Cache).
	metaCache *updatemeta.Cache
	// primaryHosts are the primary service's host:ports: a file URL on
	// another is a replica's (sourceOf).
	primaryHosts []string

	// Subnet peers (peer.go): the files' shared content, the bytes each
	// peer subnet fetched, the client of the piece servers.
	filesMu    sync.Mutex
	files      map[string]*sharedFile
	subnets    map[netip.Prefix]*byteCounts
	peerClient *http.Client

	// Counts the scheduler keeps between events (see account).
	phases                              [numPhases]int
	checkedIn, updated, failed, refused int
	events                              int64
	before                              map[[2]string]int
}

// New builds the fleet of sc (normalized here) against svc. It starts
// nothing: the first RunUntil starts the DNS server and the workers, and
// Close stops them.
func New(sc Scenario, svc Service, cfg Config) (*Sim, error) {
	if err := svc.normalize(); err != nil {
		return nil, err
	}
	var clock *simclock.Clock
	if svc.ClockFile != "" {
		// The service's clock: the run starts at its time, or later.
		c, err := simclock.Open(svc.ClockFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrService, err)
		}
		if sc.Start.IsZero() {
			sc.Start = c.Now()
		}
		if now := c.Now(); sc.Start.Before(now) {
			c.Close()
			return nil, fmt.Errorf("%w: the scenario starts at %s, before the service's simulated clock (%s): start at or after it",
				ErrScenario, sc.Start.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		clock = c
	}
	if err := sc.Normalize(); err != nil {
		if clock != nil {
			clock.Close()
		}
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Lookahead <= 0 {
		cfg.Lookahead = time.Minute
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{sc: sc, svc: svc, cfg: cfg, log: cfg.Logger, interned: map[string]string{}, before: map[[2]string]int{}, svcClock: clock,
		files: map[string]*sharedFile{}, subnets: map[netip.Prefix]*byteCounts{},
		metaCache: updatemeta.NewCache(), primaryHosts: svc.primaryHosts()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	usage := map[string]*usageModel{
		firmware.UCPhone:    newUsageModel(sc.Start, sc.Behaviour.Phones),
		firmware.RoundTable: newUsageModel(sc.Start, sc.Behaviour.RoundTables),
	}
	for i := range sc.Groups {
		g := &sc.Groups[i]
		id, _ := firmware.ParseIdentity(g.Model)
		v, _ := firmware.ParseVersion(g.Version)
		gi := groupInfo{id: id, loc: g.Location, faults: sc.Faults, rate: sc.Behaviour.LANRate, usage: usage[id.DeviceType],
			initial: v, module: id.Model + ".nbt", site: g.Site}
		if g.Subnet != "" {
			gi.subnet, _ = parseSubnet(g.Subnet)
		}
		if u, ok := sc.Replicas[g.Site]; ok && g.Site != "" {
			gi.replica, _ = baseURL(u)
		}
		if g.Faults != nil {
			gi.faults = *g.Faults
		}
		if g.Location == firmware.External {
			gi.rate = sc.Behaviour.RemoteRate
		} else {
			gi.peerNet, gi.peers = peerNet(&gi), g.Peers
			if s.subnets[gi.peerNet] == nil {
				s.subnets[gi.peerNet] = &byteCounts{}
			}
		}
		s.groups = append(s.groups, gi)
	}
	total := 0
	for _, g := range sc.Groups {
		total += g.Count
	}
	s.devs = make([]device, total)
	s.q = make(queue, 0, total)
	gidx := map[*Group]int32{}
	for i := range sc.Groups {
		gidx[&sc.Groups[i]] = int32(i)
	}
	bootSpread := int64(sc.Behaviour.BootSpread)
	groupStart, peerIndex := make([]int, len(sc.Groups)), make([]int, len(sc.Groups))
	for i, n := 1, 0; i < len(sc.Groups); i++ {
		n += sc.Groups[i-1].Count
		groupStart[i] = n
	}
	sc.generate(func(i int, g *Group, fd FleetDevice) {
		d := &s.devs[i]
		gi := gidx[g]
		*d = device{
			mac: fd.MAC, serial: fd.Serial, group: gi, user: -1, test: fd.Test,
			version: fd.Version, module: s.groups[gi].module, lastUpdate: never, viaRelay: s.svc.RelayURL != "",
			interval: int64(sc.Behaviour.CheckInterval),
			signInAt: never, checkAt: never, stepAt: never,
			behaviour: *rand.NewPCG(sc.Seed, uint64(i)<<1),
			usage:     *rand.NewPCG(sc.Seed, uint64(i)<<1|1),
		}
		if fd.User != "" {
			var n int
			fmt.Sscanf(fd.User, "user%d", &n)
			d.user = int16(n - 1)
		}
		if gr := &s.groups[gi]; gr.peers > 0 {
			// An exact share of the group serves peers, spread evenly;
			// and of those, an exact share is poisoned.
			j := i - groupStart[gi]
			d.peerCapable = math.Floor(float64(j+1)*gr.peers) > math.Floor(float64(j)*gr.peers)
			if p := gr.faults.PoisonPieces; d.peerCapable && p > 0 {
				k := peerIndex[gi]
				d.poison = math.Floor(float64(k+1)*p) > math.Floor(float64(k)*p)
			}
			if p := gr.faults.SlowPeers; d.peerCapable && !d.poison && p > 0 {
				k := peerIndex[gi] + 1 // offset from the poisoned
				d.slow = math.Floor(float64(k+1)*p) > math.Floor(float64(k)*p)
			}
			if d.peerCapable {
				peerIndex[gi]++
			}
		}
		r := rand.New(&d.behaviour)
		boot := r.Int64N(max(bootSpread, 1))
		d.stepAt, d.step = boot, stepBoot
		if d.user >= 0 {
			d.signInAt = signInTime(boot, s.groups[gi].usage, r)
		}
		// The site's update service, as its DNS or provisioning names it.
		d.internal = s.groups[gi].replica
		s.q.push(timer{d.next(), int32(i)})
		s.phases[phaseOff]++
		s.before[[2]string{s.groups[gi].id.Path(), fd.Version.String()}]++
	})
	return s, nil
}

// signInTime is when a device's user first signs in: soon after boot in
// office hours, else when the office opens.
func signInTime(boot int64, m *usageModel, r *rand.Rand) int64 {
	if m.office(boot) {
		return boot + int64(time.Minute) + r.Int64N(int64(30*time.Minute))
	}
	return m.nextOfficeStart(boot) + r.Int64N(int64(90*time.Minute))
}

// Scenario returns the normalized scenario.
func (s *Sim) Scenario() Scenario { return s.sc }

// Now returns the simulated time: that of the latest event handled (or the
// end of the last RunUntil). It is safe to call at any time.
func (s *Sim) Now() time.Time { return s.sc.Start.Add(time.Duration(s.clock.Load())) }

func (s *Sim) intern(v string) string {
	s.internMu.Lock()
	defer s.internMu.Unlock()
	if u, ok := s.interned[v]; ok {
		return u
	}
	s.interned[v] = v
	return v
}

// start starts the DNS server, the transports and the workers, once.
func (s *Sim) start() error {
	if s.started {
		return nil
	}
	s.started = true
	if len(s.devs) == 0 {
		return nil
	}
	var err error
	if s.dns, err = startDNS(s.svc.Hosts); err != nil {
		return err
	}
	dial := newDialer(s.dns.addr)
	s.dial = dial
	tlsCfg := newTLSConfig(s.svc.RootCAs)
	// A LAN client per subnet, whose connections come from its addresses;
	// the workers' idle connections are shared out among them.
	subnets := map[netip.Prefix]*lanClient{}
	for i := range s.groups {
		if s.groups[i].subnet.IsValid() {
			subnets[s.groups[i].subnet] = nil
		}
	}
	s.lan = newLANClient(dial.DialContext, tlsCfg, s.cfg.Workers)
	s.lans = []*lanClient{s.lan}
	idle := max(4, s.cfg.Workers/max(len(subnets), 1))
	for i := range s.groups {
		g := &s.groups[i]
		g.lan = s.lan
		g.userAgent = "OpenDUS-device-sim/1 " + g.id.Model
		if !g.subnet.IsValid() {
			continue
		}
		if subnets[g.subnet] == nil {
			subnets[g.subnet] = newLANClient(newSubnetDialer(dial, g.subnet).DialContext, tlsCfg, idle)
			s.lans = append(s.lans, subnets[g.subnet])
		}
		g.lan = subnets[g.subnet]
	}
	if err := s.startPeers(); err != nil {
		return err
	}
	for range s.cfg.Workers {
		w := &worker{s: s, buf: make([]byte, 32<<10), edgeUser: -2}
		w.edgeT = newTransport(dial.DialContext, tlsCfg, 1)
		w.edge = ntlmClient(w.edgeT)
		s.workers = append(s.workers, w)
	}
	return nil
}

// Close stops the DNS server and closes idle connections.
func (s *Sim) Close() error {
	if s.dns != nil {
		s.dns.close()
		s.dns = nil
	}
	for _, lc := range s.lans {
		lc.closeIdle()
	}
	s.closePeers()
	if s.svcClock != nil {
		s.svcClock.Close()
		s.svcClock = nil
	}
	for _, w := range s.workers {
		w.edgeT.CloseIdleConnections()
	}
	return nil
}

// Run runs the scenario to its end (Start + Duration).
func (s *Sim) Run(ctx context.Context) error { return s.RunUntil(ctx, s.sc.End()) }

// ErrCanceled is returned (wrapping the context's error) when RunUntil was
// canceled; the Sim is not usable afterwards.
var ErrCanceled = errors.New("simulation canceled")

// RunUntil runs the simulation until simulated time until: device events
// are handled in simulated-time order by a bounded pool of workers, each
// event's HTTP exchanges complete before the clock moves more than
// Config.Lookahead past it, and with a Speed the clock keeps pace with real
// time. Between calls the simulation stands still, so a test can change
// the service (approve, restore) at a known simulated time.
func (s *Sim) RunUntil(ctx context.Context, until time.Time) error {
	end := int64(until.Sub(s.sc.Start))
	if end <= s.clock.Load() {
		return nil
	}
	if err := s.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan timer)
	results := make(chan timer, len(s.workers))
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				w.handle(ctx, &s.devs[j.dev], j.at)
				results <- j
			}
		}()
	}
	p := pace{speed: s.sc.Speed, realStart: s.cfg.Now(), simStart: s.clock.Load()}
	look := int64(s.cfg.Lookahead)
	inflight := make([]int64, 0, len(s.workers))
	var wake *time.Timer
	var wakeC <-chan time.Time
	setWake := func(t time.Time) {
		d := max(t.Sub(s.cfg.Now()), 0)
		if wake == nil {
			wake = time.NewTimer(d)
		} else {
			wake.Reset(d)
		}
		wakeC = wake.C
	}
	var tickC <-chan time.Time
	if s.cfg.Progress != nil {
		tick := time.NewTicker(s.cfg.ProgressEvery)
		defer tick.Stop()
		tickC = tick.C
	}
	finish := func() {
		close(jobs)
		for len(inflight) > 0 {
			j := <-results
			inflight = inflight[:len(inflight)-1]
			s.done(j)
		}
		wg.Wait()
		if wake != nil {
			wake.Stop()
		}
	}
	// idle moves the clock with real time while nothing is under way, up to
	// the next event.
	idle := func(reached int64) {
		if c := min(reached, end); len(inflight) == 0 && c > s.clock.Load() && (s.q.empty() || c <= s.q.peek().at) {
			s.clock.Store(c)
		}
	}
	for {
		wakeC = nil
		reached := p.reached(s.cfg.Now())
		for len(inflight) < cap(inflight) && !s.q.empty() {
			e := s.q.peek()
			if e.at >= end || len(inflight) > 0 && e.at > minOf(inflight)+look {
				break
			}
			if e.at > reached {
				setWake(p.due(e.at))
				break
			}
			s.q.pop()
			s.account(&s.devs[e.dev], -1)
			inflight = append(inflight, e.at)
			if e.at > s.clock.Load() {
				s.clock.Store(e.at)
			}
			jobs <- e
		}
		if len(inflight) == 0 && (s.q.empty() || s.q.peek().at >= end) {
			if reached >= end {
				break
			}
			setWake(p.due(end)) // a paced run takes its time
		}
		idle(reached)
		s.publish(inflight, reached, end)
		select {
		case j := <-results:
			for i, t := range inflight {
				if t == j.at {
					inflight[i] = inflight[len(inflight)-1]
					inflight = inflight[:len(inflight)-1]
					break
				}
			}
			s.done(j)
		case <-wakeC:
		case <-tickC:
			idle(p.reached(s.cfg.Now()))
			s.cfg.Progress(s.Progress())
		case <-ctx.Done():
			finish()
			return fmt.Errorf("%w at %s: %w", ErrCanceled, s.Now().Format(time.RFC3339), ctx.Err())
		}
	}
	finish()
	s.clock.Store(end)
	if s.svcClock != nil {
		s.svcClock.Set(until)
	}
	if s.cfg.Progress != nil {
		s.cfg.Progress(s.Progress())
	}
	return nil
}

// publish moves the service's simulated clock, if it has one, to the
// earliest simulated time a device may still act at: the earliest event
// under way or queued, and with a speed the time real time has reached,
// at most the end of the run. So the service's time is never ahead of a
// device's, and trails the latest device by at most the lookahead: an
// offer the service makes inside a window reaches a device inside it.
func (s *Sim) publish(inflight []int64, reached, end int64) {
	if s.svcClock == nil {
		return
	}
	l := min(reached, end)
	if len(inflight) > 0 {
		l = min(l, minOf(inflight))
	}
	if !s.q.empty() {
		l = min(l, s.q.peek().at)
	}
	s.svcClock.Set(s.sc.Start.Add(time.Duration(l)))
}

func minOf(ts []int64) int64 {
	m := ts[0]
	for _, t := range ts[1:] {
		m = min(m, t)
	}
	return m
}

// done takes back a device whose event was handled and queues its next
// timer.
func (s *Sim) done(j timer) {
	d := &s.devs[j.dev]
	s.events++
	s.account(d, +1)
	if at := d.next(); at != never {
		s.q.push(timer{at, j.dev})
	}
}

// account adds (sign +1) or removes (-1) a device's share of the progress
// counts; the scheduler calls it around each of the device's events.
func (s *Sim) account(d *device, sign int) {
	s.phases[d.phase] += sign
	if d.checkedIn {
		s.checkedIn += sign
	}
	if d.updates > 0 {
		s.updated += sign
	}
	if d.failed {
		s.failed += sign
	}
	if d.refused {
		s.refused += sign
	}
}

// Progress returns a snapshot of the simulation. Call it between runs or
// from Config.Progress.
func (s *Sim) Progress() Progress {
	return Progress{
		Now: s.Now(), Devices: len(s.devs),
		Off: s.phases[phaseOff], Downloading: s.phases[phaseDownloading],
		WaitingIdle: s.phases[phaseWaitingIdle], Rebooting: s.phases[phaseRebooting],
		CheckedIn: s.checkedIn, Updated: s.updated, Failed: s.failed, Refused: s.refused,
		Events: s.events,
	}
}

// Devices returns every device's "System Information": what it runs, since
// when, and what it is doing. Call it between runs.
func (s *Sim) Devices() []DeviceInfo {
	out := make([]DeviceInfo, len(s.devs))
	for i := range s.devs {
		out[i] = s.info(&s.devs[i])
	}
	return out
}

func (s *Sim) info(d *device) DeviceInfo {
	g := &s.groups[d.group]
	di := DeviceInfo{MAC: d.mac, Serial: d.serial, Identity: g.id, Location: g.loc, Test: d.test,
		Version: d.version, State: phaseNames[d.phase], SignedIn: d.signedIn, Updates: int(d.updates), Site: g.site}
	for _, in := range d.installs {
		di.Installs = append(di.Installs, Install{Version: in.version, Began: s.sc.Start.Add(time.Duration(in.began)),
			Ended: s.sc.Start.Add(time.Duration(in.ended)), Failed: in.failed})
	}
	if d.user >= 0 {
		di.User = accountName(int(d.user))
	}
	if d.lastUpdate != never {
		di.LastUpdate = s.sc.Start.Add(time.Duration(d.lastUpdate))
	}
	if d.failed {
		di.Error = errorCode[d.lastErr]
	}
	if g.loc == firmware.External && d.external != "" {
		di.CheckInURL = d.external + "RequestHandlerExt/ucdevice.upx"
	} else if d.internal != "" {
		di.CheckInURL = d.internal + "RequestHandler/ucdevice.upx"
	}
	return di
}
