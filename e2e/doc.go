// Package e2e is the end-to-end suite: real `devsvc serve` processes
// (started by internal/devsvctest on loopback ports, data in t.TempDir())
// and fleets of simulated devices (package simulator) that sign in, check
// in, download, install and report through the real listeners, TLS, NTLM
// and DNS fallback, while the tests drive the service through its command
// line (import, approve, restore, testdevices, accounts, devices --json),
// its admin API (roles, certificates, a directory with a real slapd) and
// its device listeners with real clients (go-ntlmssp, curl).
//
// Rollouts are rehearsed on a simulated clock (devsvc serve
// --simulated-clock) that the simulations drive, so that waves, windows,
// back-offs and alarms play out over simulated days in seconds.
//
// The tests keep their fleets small, since `make test` runs them under the
// race detector; BenchmarkFleet runs the big fleet (10,000 devices through
// two simulated days) against a service built without it, and
// BenchmarkRolloutFleet 100,000 devices in 200 sites through a three-wave
// rollout:
//
//	go test -run '^$' -bench 'Fleet$' -benchtime 1x ./e2e/
//	go test -run '^$' -bench RolloutFleet -benchtime 1x -timeout 30m ./e2e/
package e2e
