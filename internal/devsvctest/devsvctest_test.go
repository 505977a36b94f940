package devsvctest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// TestBinaryRace checks that the devsvc binary has the race detector
// exactly when this test binary has it.
func TestBinaryRace(t *testing.T) {
	bin := Binary(t)
	t.Logf("devsvc binary: %s", bin)
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", bin, err, out)
	}
	if got := strings.Contains(string(out), "-race=true"); got != raceEnabled {
		t.Errorf("devsvc built with -race: %v, want %v (the test binary's)\n%s", got, raceEnabled, out)
	}
}
