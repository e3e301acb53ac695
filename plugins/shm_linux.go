package plugins

import (
	"fmt"
	"os"
	"syscall"
)

// shmDir is where the host creates the files of its shared regions. Each
// is unlinked at once: the plugin opens it through the host's descriptor
// (/proc/<pid>/fd/<n>), so no name is left behind, even by a crash.
var shmDir = "/dev/shm"

// createShared creates a shared region of size bytes, all of them
// allocated (so that touching a page cannot fail for want of room), maps
// it, and returns it with the path the plugin opens it by while f, which
// the caller closes, is open.
func createShared(size int) (b []byte, path string, f *os.File, err error) {
	f, err = os.CreateTemp(shmDir, "strata-plugin-*")
	if err != nil {
		return nil, "", nil, fmt.Errorf("plugins: shared region: %w", err)
	}
	os.Remove(f.Name())
	fd := int(f.Fd())
	if err := syscall.Fallocate(fd, 0, 0, int64(size)); err != nil {
		f.Close()
		return nil, "", nil, fmt.Errorf("plugins: shared region: fallocate: %w", err)
	}
	b, err = syscall.Mmap(fd, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, "", nil, fmt.Errorf("plugins: shared region: mmap: %w", err)
	}
	return b, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), f, nil
}

// mapShared maps size bytes of the file at path, read-write and shared.
func mapShared(path string, size int64) ([]byte, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("plugin: shared region %s: bad size %d", path, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("plugin: shared region: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() < size {
		return nil, fmt.Errorf("plugin: shared region %s: smaller than %d bytes (%v)", path, size, err)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("plugin: shared region %s: mmap: %w", path, err)
	}
	return b, nil
}

func unmapShared(b []byte) error { return syscall.Munmap(b) }
