package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

// BenchmarkFleet runs fleets through two simulated days against a devsvc
// built without the race detector, on a simulated clock, as fast as it
// answers, with the device-sim command, and reports the wall time of the run and the peak
// memory (RSS) of device-sim per simulated device:
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./e2e/
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("devices="+strconv.Itoa(n), func(b *testing.B) { benchmarkFleet(b, n) })
	}
}

// BenchmarkFleetVerify is the signed update metadata's cost at the scale
// of a fleet: the 10,000 devices of BenchmarkFleet with verification (a
// TUF refresh when the answer names a newer timestamp, each offer checked
// against targets and its piece lists), with a refresh at every check-in
// (--always-refresh: what the answer's hint saves), and without
// (--no-verify, the reference), in the same run.
func BenchmarkFleetVerify(b *testing.B) {
	b.Run("verify=on", func(b *testing.B) { benchmarkFleet(b, 10000) })
	b.Run("verify=always-refresh", func(b *testing.B) { benchmarkFleet(b, 10000, "--always-refresh") })
	b.Run("verify=off", func(b *testing.B) { benchmarkFleet(b, 10000, "--no-verify") })
}

func benchmarkFleet(b *testing.B, n int, extra ...string) {
	dir := b.TempDir()
	for _, cmd := range []string{"cmd/devsvc", "device-sim"} {
		out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/opendus/opendus/"+cmd).CombinedOutput()
		if err != nil {
			b.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	devsvc, sim := filepath.Join(dir, "devsvc"), filepath.Join(dir, "device-sim")
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(devsvc, "init", "--data", data, "--domain", domain).CombinedOutput(); err != nil {
		b.Fatalf("devsvc init: %v\n%s", err, out)
	}
	// On a simulated clock that device-sim drives: the service's back-off
	// after the faults' failures passes in simulated time.
	s := devsvctest.Start(b, devsvc, data, "--simulated-clock", rehearsalStart.Format(time.RFC3339))

	models := []firmware.Identity{
		cx600,
		{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"},
		hp,
		{DeviceType: firmware.UCPhone, Vendor: "Aastra", Model: "6725ip", Revision: "A", Locale: "ENU"},
		{DeviceType: firmware.UCPhone, Vendor: "LG-Nortel", Model: "8540", Revision: "A", Locale: "ENU"},
		rt,
	}
	importVersion(b, s, "3.5.6907.35", 128<<10, models...)
	for _, id := range models[:5] {
		s.CLI(b, "approve", id.Path())
	}
	importVersion(b, s, "4.0.7577.4372", 128<<10, models...)
	for _, id := range models[:3] { // Aastra and LG-Nortel stay pending
		s.CLI(b, "approve", id.Path())
	}
	share := func(k int) string { return strconv.Itoa(n * k / 100) }
	groups := []string{
		cx600.Path() + "," + share(30) + ",3.5.6907.35,signin=0.6,test=5",
		cx600.Path() + "," + share(10) + ",3.5.6907.35,external,signin=0.6",
		models[1].Path() + "," + share(15) + ",3.5.6907.35,signin=0.5",
		hp.Path() + "," + share(15) + ",3.5.6907.35,signin=0.5",
		models[3].Path() + "," + share(10) + ",3.5.6907.35,test=5",
		models[4].Path() + "," + share(10) + ",3.5.6907.35,external,signin=0.7",
		rt.Path() + "," + share(10) + ",3.5.6907.35",
	}
	args := []string{"--data", data, "--seed", "1", "--duration", "2d", "--accounts", "20", "--json",
		"--broken", "0.02", "--corrupt", "0.01", "--power-loss", "0.01"}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	args = append(args, extra...)
	sc := simulator.Scenario{Accounts: 20, Groups: []simulator.Group{{Model: cx600.Path(), Count: 1, Version: "1.0.0.1", SignIn: 1}}}
	prepare(b, s, &sc)
	var fleet bytes.Buffer
	list := exec.Command(sim, append(args, "--list", "test-macs")...)
	list.Stdout = &fleet
	if err := list.Run(); err != nil {
		b.Fatal(err)
	}
	for _, mac := range bytes.Fields(fleet.Bytes()) {
		s.CLI(b, "testdevices", "add", "--mac", string(mac))
	}

	b.ResetTimer()
	var wall time.Duration
	var rss int64
	var rep simulator.Report
	for range b.N {
		cmd := exec.Command(sim, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("device-sim: %v\n%s", err, errOut.String())
		}
		wall = time.Since(start)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss*1024)
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			b.Fatalf("device-sim --json: %v\n%s", err, out.String())
		}
	}
	b.StopTimer()
	b.ReportMetric(wall.Seconds(), "wall-s/run")
	b.ReportMetric(float64(rss)/1024/float64(n), "KiB-RSS/device")
	b.ReportMetric(float64(rep.CheckIns+rep.StatusReports)/wall.Seconds(), "requests/s")
	b.ReportMetric(float64(rep.VerifiedCheckIns), "verified-check-ins")
	b.ReportMetric(float64(rep.MetadataCurrent), "current-check-ins")
	var text bytes.Buffer
	rep.WriteText(&text)
	fmt.Fprintf(&text, "wall %.1fs, peak RSS of device-sim %.1f MiB (%.1f KiB per device)\n", wall.Seconds(), float64(rss)/(1<<20), float64(rss)/1024/float64(n))
	b.Logf("%d devices:\n%s", n, text.String())
	if os.Getenv("OPENDUS_BENCH_STRICT") != "" && n >= 10000 && wall > time.Minute {
		b.Errorf("10,000 devices through two days took %v, want at most 60s", wall)
	}
}
