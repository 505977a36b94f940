package freespace

import "syscall"

// Stat returns the usage of the file system holding dir, from statfs(2):
// Free is the space an unprivileged writer may use (f_bavail).
func Stat(dir string) (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Usage{}, err
	}
	bs := int64(st.Bsize)
	return Usage{Free: int64(st.Bavail) * bs, Total: int64(st.Blocks) * bs}, nil
}
