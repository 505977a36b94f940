// Package e2e is the end-to-end suite: real `devsvc serve` processes
// (started by internal/devsvctest on loopback ports, data in t.TempDir())
// and fleets of simulated devices (package simulator) that sign in, check
// in, download, install and report through the real listeners, TLS, NTLM
// and DNS fallback, while the tests drive the service through its command
// line (import, approve, restore, testdevices, accounts, devices --json),
// its admin API (roles, certificates, a directory with a real slapd) and
// its device listeners with real clients (go-ntlmssp, curl).
//
// The tests keep their fleets small, since `make test` runs them under the
// race detector; BenchmarkFleet runs the big fleet (10,000 devices through
// two simulated days) against a service built without it:
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./e2e/
package e2e
