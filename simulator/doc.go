// Package simulator simulates a fleet of UC desk phones and RoundTable
// conference units against a real update service, on a virtual clock: two
// days of fleet life run in seconds, and a run is reproducible from its
// seed. device-sim is its command; the end-to-end suite (package e2e) and
// `make demo` drive it against real devsvc processes.
//
// # The devices
//
// A device has an identity (type, vendor, model, revision, locale), a MAC
// address and serial number, the module it runs, a location (on the LAN, or
// remote through the edge) and maybe a user who signs in. It behaves as the
// protocol of package deviceproto says (docs/protocol.md):
//
//   - It powers on within Behaviour.BootSpread of the start and checks in
//     with its modules (the image, with the timestamp of its update, and
//     the catalog that came with it).
//     A LAN device nobody ever signed in to finds the service through DNS,
//     ucupdates-r2.<domain> (provisioning.FallbackHost, asked of the DNS server the
//     simulator runs on loopback), using the internal listener's port. A
//     remote device goes to the edge, which refuses it (401) as long as
//     nobody is signed in; the refusals are counted.
//   - When its user signs in (in office hours) it takes the provisioning
//     document (provisioning.Path: Basic credentials over TLS inside, NTLM
//     through go-ntlmssp at the edge), stores the service URLs it gives, and
//     checks in again.
//   - It checks again when the answer says (NextCheck: the interval with the
//     service's jitter, or earlier for a scheduled approval), after
//     Retry-After on a 503, and after Behaviour.RetryDelay when the service
//     is unreachable; an answer that names a moved service makes it store the
//     new address and use it from then on.
//   - Offered an update, it reports downloading, fetches every file (image
//     and security catalog), resuming a broken transfer with a Range
//     request, and checks each file's size and SHA-256; a file that does not
//     match is refused and reported (failure, error code checksum or size),
//     and the device tries again after RetryDelay.
//   - It then waits until it has been idle (no call) for Behaviour.IdleTime,
//     by its usage model: calls arrive as a Poisson process, faster in office
//     hours, and last an exponential time (long meetings on a RoundTable).
//     It reports installing and rebooting, comes back after RebootTime on
//     the new version, reports success and checks in. A power loss during
//     the install (a fault) brings it back on its previous image; it reports
//     the failure (power-loss) and retries later. So does an install that
//     fails (Faults.InstallFails: a version that fails to install with a
//     given probability, error code install).
//   - An offer made inside maintenance windows carries InstallBy, when they
//     close: the device does not begin an install that would not end by
//     then (it stayed busy too long); it drops the update and takes it again
//     when offered it inside a window (Report.Missed counts these).
//
// Its "System Information" (Sim.Devices) shows its version and the date of
// its last update.
//
// # Subnet peers
//
// A share of a group may be peer-capable (Group.Peers, device-sim's
// peers=SHARE): such a device runs a piece server (plain HTTP) on an
// address of its /24, 127.A.B.10 and up, next to the addresses its group's
// connections come from, and announces it in every check-in. Offered an
// update, it fetches the image piece by piece, each checked against the
// piece list it takes from the service: from the service when it is its
// subnet's representative, else from the peer the answer names after the
// delay it gives; it waits Behaviour.PeerRetry when the peer has not got a
// piece yet, avoids a peer that fails or serves a bad piece (checking in
// again at once to name it, and following the new advice), and falls
// back to the service. The bytes of each file are kept once for the whole
// fleet. Faults.PoisonPieces and Faults.KillRepresentative inject bad
// peers; Behaviour.WANRate gives each subnet a shared line to the service.
// Devices that fetch from peers interact, so a run with peers is
// reproducible in its outcome (versions, bytes per subnet within a copy)
// but not exactly in its timing. The report's Subnets give per subnet the
// bytes fetched across the WAN (from the primary service), from replicas
// (a file URL on another host) and from peers.
//
// # Sites
//
// A group may be at a site (Group.Site) and connect from a subnet inside
// 127.0.0.0/8 (Group.Subnet, 127.1.0.0/16): every Linux host answers on
// all of it, so the service sees each group's devices come from their own
// addresses and places them at the site whose subnets hold them, as it
// would on a real network (devsvc sites add NAME --subnet CIDR;
// Scenario.Sites lists what to add, device-sim --list sites prints it).
// The devices of a subnet share keep-alive connections, each bound to one
// of its first addresses. Devices through the edge are at the site remote.
//
// A site may have a replica (Scenario.Replicas): its devices sign in and
// check in there, as the site's DNS or provisioning would send them, and
// fetch the files the answer names first; when that fails they fetch them
// from the alternative URL the answer gives (url/urlalt: the primary's),
// from the start. The report shows, per site, the file bytes fetched from
// the primary, which crossed the WAN, and from the replica, and how many
// files came from the alternative (Report.Sites).
//
// # The virtual clock
//
// Each device is a small state machine with up to three timers (sign-in,
// the next update or boot step, the next check); the earliest is its one
// entry in a priority queue ordered by simulated time, then device number.
// No goroutine sleeps per device: RunUntil pops due timers in order and hands
// them to a bounded pool of workers that make the HTTP exchanges: on the LAN
// over pooled keep-alive HTTP/1.1 connections (TLS trusting only the
// service's CA; one pool per subnet), written and read as net/http does but
// without its Transport, whose goroutines, channels and timers per request
// cost as much as the service's answer; and, because NTLM authenticates a
// connection and its
// handshake must stay on one, an HTTP/1.1 transport per worker for the edge,
// whose connection is kept while the worker's devices have the same user and
// closed when a device of another user (or of nobody) needs it. Simulated
// time moves on only as exchanges complete: an event is handed out only when
// it is at most Config.Lookahead (a simulated minute) past the earliest
// event still being handled, and a transfer takes simulated time by the
// location's rate, not by how long the real bytes took. With Scenario.Speed
// the clock also keeps pace with real time (speed simulated seconds per real
// second); with 0 it runs as fast as the service answers.
//
// # The service's clock
//
// What the service answers depends on its time: rollouts open waves after
// their wave wait, windows open and close in sites' time zones, failed
// devices wait out a back-off, silent ones stall, overdue alarms fire. A
// service on real time would see two simulated days pass in seconds. So a
// rehearsal runs the service on a simulated clock that the simulation
// drives (devsvc serve --simulated-clock START; Service.ClockFile, which
// LoadService finds in the service's run file): a file both map, which
// RunUntil moves, never back, to the earliest simulated time a device may
// still act at (the earliest event under way or queued). So the service's
// time trails each device's by at most Config.Lookahead, and is never
// ahead of it: an offer the service makes inside a window reaches the
// device inside it. Between RunUntil calls the service's time stands at
// the end of the last one, so an admin's command (rollout start, pause)
// happens at a known simulated time. The run starts at the clock's time
// (a Scenario.Start set earlier is refused). The service's rollout engine
// ticks every 100 ms of real time on such a clock.
//
// Driving the service's clock from the simulation, rather than scaling
// real time by a speed on both sides, keeps the two time lines together
// whatever the load: a scaled clock runs on while the simulator falls
// behind at a peak (a fleet powering on), and the service would then judge
// windows and waves hours away from the devices' time; and a driven clock
// lets the quiet hours pass at once instead of at the scaled rate.
//
// # Reproducibility
//
// Every random choice (boot and sign-in times, calls, faults) comes from
// math/rand/v2 PCG sources of each device, seeded from Scenario.Seed and the
// device's number, and is drawn in the device's own event order. Devices
// do not interact, and the service's answers depend on its catalog (changed
// only between RunUntil calls), the device and the service's time. So a
// seed gives the same Report however the network schedules the requests,
// as long as the service does not shed load (keep Config.Workers below its
// in-flight limit) and its time-dependent answers do not fall within the
// lookahead: on a simulated clock the service's time at a request trails
// the device's by up to Config.Lookahead, so a back-off that ends or a
// window that opens within it may be judged either way (a lookahead of a
// nanosecond makes runs exact, and slow). A rollout engine that steps
// waves while the run goes on (devsvc serve's) adds its own timing. The
// report holds nothing of real time (device-sim prints the wall time
// beside it).
//
// # The report
//
// Besides versions before and after, convergence, requests and failures,
// the Report shows per site what its devices did (checked in, updated,
// failed, missed windows, first and last update), and per version the
// service offered: to how many devices, when it was first and last newly
// offered (offers that stop while devices still wait for it are a rollout
// that paused, or a wave that waits), how many installed or failed, and,
// with Scenario.Waves (the rehearsed rollout's --waves), the same per wave,
// each device placed by the cohort the service gives it. Sim.Devices gives
// every device's installs with their times, to check windows against
// (device-sim --devices-out).
package simulator
