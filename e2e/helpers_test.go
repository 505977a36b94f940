package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/simulator"
)

const domain = "contoso.com"

var (
	cx600 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	hp    = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "HP", Model: "4120", Revision: "A", Locale: "ENU"}
	rt    = firmware.Identity{DeviceType: firmware.RoundTable, Vendor: "Microsoft", Model: "RoundTable", Revision: "A", Locale: "ENU"}
)

// startService initialises a data directory, lets configure change its
// settings file, and starts devsvc serve on free loopback ports.
func startService(t testing.TB, configure func(dir string)) *devsvctest.Service {
	t.Helper()
	bin, dir := devsvctest.Init(t, domain)
	if configure != nil {
		configure(dir)
	}
	return devsvctest.Start(t, bin, dir)
}

// setSetting appends "key = value" to the data directory's settings file.
func setSetting(t testing.TB, dir, key, value string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "devsvc.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + key + " = " + value + "\n"); err != nil {
		t.Fatal(err)
	}
}

// importVersion writes sample firmware of version v for ids into a tree
// and imports it with devsvc import.
func importVersion(t testing.TB, s *devsvctest.Service, v string, size int64, ids ...firmware.Identity) {
	t.Helper()
	tree := t.TempDir()
	for _, id := range ids {
		if err := simulator.WriteFirmware(tree, id, firmware.MustParseVersion(v), size); err != nil {
			t.Fatal(err)
		}
	}
	s.CLI(t, "import", tree)
}

// prepare adds the scenario's accounts (when someone signs in) and marks
// its test devices in the service, as an admin does.
func prepare(t testing.TB, s *devsvctest.Service, sc *simulator.Scenario) {
	t.Helper()
	if err := sc.Normalize(); err != nil {
		t.Fatal(err)
	}
	signIn := false
	for _, g := range sc.Groups {
		signIn = signIn || g.SignIn > 0
	}
	for _, name := range sc.AccountNames() {
		if !signIn {
			break
		}
		if out, errOut, err := devsvctest.RunCLI(s.Bin, s.Dir, sc.Password+"\n", "accounts", "add", name, "--password-stdin"); err != nil {
			t.Fatalf("devsvc accounts add %s: %v\n%s%s", name, err, out, errOut)
		}
	}
	for _, d := range sc.Fleet() {
		if d.Test {
			s.CLI(t, "testdevices", "add", "--mac", d.MAC)
		}
	}
}

// newSim builds a simulator of sc against the running service s.
func newSim(t testing.TB, s *devsvctest.Service, sc simulator.Scenario) *simulator.Sim {
	t.Helper()
	svc, err := simulator.LoadService(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.New(sc, svc, simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// runUntil runs sim until the simulated time start+d, bounded in real time.
func runUntil(t testing.TB, sim *simulator.Sim, d time.Duration) {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, 5*time.Minute)
	defer cancel()
	if err := sim.RunUntil(ctx, sim.Scenario().Start.Add(d)); err != nil {
		t.Fatal(err)
	}
}

// inventory is the service's view of the devices: devsvc devices --json.
func inventory(t testing.TB, s *devsvctest.Service) map[string]firmware.Device {
	t.Helper()
	var ds []firmware.Device
	s.JSON(t, &ds, "devices")
	m := map[string]firmware.Device{}
	for _, d := range ds {
		m[d.MAC] = d
	}
	return m
}

// settled checks the service's inventory once: every request the devices
// sent has been answered, and devsvc devices flushes the inventory's
// batches before it lists, so a check-in or report answered but not
// recorded is a failure, never a reason to ask again.
func settled(t testing.TB, s *devsvctest.Service, check func(inv map[string]firmware.Device) []string) map[string]firmware.Device {
	t.Helper()
	inv := inventory(t, s)
	for _, p := range check(inv) {
		t.Error(p)
	}
	return inv
}

// count counts the simulated devices by key(d) + " " + version.
func count(devs []simulator.DeviceInfo, key func(simulator.DeviceInfo) string) map[string]int {
	m := map[string]int{}
	for _, d := range devs {
		m[key(d)+" "+d.Version.String()]++
	}
	return m
}

// kind names a device by model, location, whether someone signs in on it
// and whether it is a test device.
func kind(d simulator.DeviceInfo) string {
	var b strings.Builder
	b.WriteString(d.Identity.Model + "/" + string(d.Location))
	if d.User != "" {
		b.WriteString("/user")
	}
	if d.Test {
		b.WriteString("/test")
	}
	return b.String()
}

// TestMain removes the devsvc and device-sim binaries the tests built.
func TestMain(m *testing.M) {
	code := devsvctest.Run(m)
	if simBin != "" {
		os.RemoveAll(filepath.Dir(simBin))
	}
	os.Exit(code)
}

var (
	simOnce sync.Once
	simBin  string
	simErr  error
	simOut  []byte
)

// deviceSimBinary builds the device-sim command once per test binary.
func deviceSimBinary(t testing.TB) string {
	t.Helper()
	simOnce.Do(func() {
		dir, err := os.MkdirTemp("", "device-sim-*")
		if err != nil {
			simErr = err
			return
		}
		simBin = filepath.Join(dir, "device-sim")
		simOut, simErr = exec.Command("go", "build", "-o", simBin, "github.com/opendus/opendus/device-sim").CombinedOutput()
	})
	if simErr != nil {
		t.Fatalf("go build device-sim: %v\n%s", simErr, simOut)
	}
	return simBin
}
