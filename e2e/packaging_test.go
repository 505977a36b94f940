package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// debVersion runs scripts/debversion.sh.
func debVersion(t *testing.T, describe string) (string, error) {
	t.Helper()
	out, err := exec.Command("bash", "../scripts/debversion.sh", describe, "1796523300").Output() // 2026-12-06 02:15:00 UTC
	return strings.TrimSpace(string(out)), err
}

// TestDebianVersions checks how a git describe becomes the package's
// version: valid for dpkg (a digit first, no "-" in a native version), and
// in the order the builds came.
func TestDebianVersions(t *testing.T) {
	dpkg := testtool.Need(t, "dpkg")
	tests := []struct{ describe, want string }{
		{"e91f4a5", "0.0~git20261206.021500.e91f4a5"},
		{"64e61f5-dirty", "0.0~git20261206.021500.64e61f5+dirty"}, // a hash starting with digits is no tag
		{"1234567", "0.0~git20261206.021500.1234567"},
		{"v1.0.0-rc1", "1.0.0~rc1"},
		{"v1.0.0-rc1-2-gabc1234", "1.0.0~rc1+git20261206.021500.abc1234"},
		{"v1.0.0", "1.0.0"},
		{"v1.0.0-dirty", "1.0.0+dirty"},
		{"v1.0.0-3-gabc1234", "1.0.0+git20261206.021500.abc1234"},
		{"v1.2", "1.2"},
	}
	prev := ""
	for _, tt := range tests {
		got, err := debVersion(t, tt.describe)
		if err != nil || got != tt.want {
			t.Errorf("debversion.sh %s = %q, %v; want %q", tt.describe, got, err, tt.want)
			continue
		}
		if out, err := exec.Command(dpkg, "--validate-version", got).CombinedOutput(); err != nil {
			t.Errorf("dpkg --validate-version %s: %v %s", got, err, out)
		}
		// The table is in build order, but for the hashes of one moment.
		if prev != "" && !strings.HasPrefix(prev, "0.0~") {
			if err := exec.Command(dpkg, "--compare-versions", prev, "lt", got).Run(); err != nil {
				t.Errorf("dpkg sorts %s after %s, want before", prev, got)
			}
		}
		prev = got
	}
	if err := exec.Command(dpkg, "--compare-versions", "0.0~git20261206.021500.e91f4a5", "lt", "1.0.0~rc1").Run(); err != nil {
		t.Errorf("an untagged build sorts after the first release candidate")
	}
	for _, bad := range []string{"dev", "v1", "release-2", "1.2.3"} {
		if got, err := debVersion(t, bad); err == nil {
			t.Errorf("debversion.sh %s = %q, want an error", bad, got)
		}
	}
}
