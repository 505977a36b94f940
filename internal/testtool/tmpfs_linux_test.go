package testtool

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestTmpFS mounts a small tmpfs and fills it: writing past its size
// fails with ENOSPC, which is what the tests that use it rely on.
func TestTmpFS(t *testing.T) {
	const size = 1 << 20
	dir := TmpFS(t, size)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if got := int64(st.Blocks) * st.Bsize; got != size {
		t.Errorf("tmpfs size = %d bytes, want %d", got, size)
	}
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Write(make([]byte, size+4096))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing more than the tmpfs holds: %v, want ENOSPC", err)
	}
}
