//go:build linux || darwin || freebsd

package broker

import "syscall"

// volumeBytes returns the total and usable bytes of the file system
// holding dir (DescribeLogDirs v4), or -1, -1 if it cannot tell.
func volumeBytes(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	bsize := int64(st.Bsize)
	return int64(st.Blocks) * bsize, int64(st.Bavail) * bsize
}
