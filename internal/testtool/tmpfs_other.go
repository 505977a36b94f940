//go:build !linux

package testtool

import "testing"

// TmpFS mounts a small tmpfs for the test; it needs Linux, so here the test
// is skipped, or failed under CI=true.
func TmpFS(tb testing.TB, size int64) string {
	tb.Helper()
	missing(tb, "a tmpfs mount needs Linux", "run the test on Linux as root (CI does)")
	return ""
}
