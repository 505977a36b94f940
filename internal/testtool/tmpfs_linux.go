package testtool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TmpFS mounts a tmpfs of size bytes on a new directory and returns the
// directory: a small file system that a test can fill, to see what the
// code under test does when the disk is full. It is unmounted when the test
// ends (after the cleanups registered later, such as stopping a process
// that uses it). Mounting needs root (CAP_SYS_ADMIN); without it the test
// is skipped, or failed under CI=true.
func TmpFS(tb testing.TB, size int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		missing(tb, fmt.Sprintf("mounting a tmpfs needs root (%v)", err), "run the test as root (CI does)")
		return ""
	}
	if err != nil {
		tb.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Still busy: something left a file open on it, which is a
			// leak unless the test failed half way. Detach it, so the
			// directory can go.
			if !tb.Failed() {
				tb.Errorf("unmount %s: %v (a file on it is still open)", dir, err)
			}
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}
