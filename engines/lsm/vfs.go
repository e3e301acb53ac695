package lsm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-broker/strata/engine"
)

// fsAdapter presents an engine.FS as Pebble's vfs.FS, so every file Pebble
// touches goes through the engine's FS seam (and the conformance suite's
// fault injection reaches Pebble's WAL, sstables and MANIFEST).
type fsAdapter struct {
	fs engine.FS
}

var (
	_ vfs.FS   = fsAdapter{}
	_ vfs.File = (*fileAdapter)(nil)
	_ vfs.File = (*dirAdapter)(nil)
)

func (a fsAdapter) wrap(f engine.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &fileAdapter{File: f}, nil
}

// Create implements vfs.FS: an existing file is removed first, so the new
// one is a new inode, as Pebble expects.
func (a fsAdapter) Create(name string, _ vfs.DiskWriteCategory) (vfs.File, error) {
	if err := a.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return a.wrap(a.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o644))
}

// Link implements vfs.FS. engine.FS has no hard links; Pebble links only to
// ingest external files and to make checkpoints, which this engine does not
// do.
func (a fsAdapter) Link(oldname, newname string) error {
	return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: errors.ErrUnsupported}
}

// Open implements vfs.FS.
func (a fsAdapter) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := a.wrap(a.fs.OpenFile(name, os.O_RDONLY|syscall.O_CLOEXEC, 0))
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o.Apply(f)
	}
	return f, nil
}

// OpenReadWrite implements vfs.FS.
func (a fsAdapter) OpenReadWrite(name string, _ vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := a.wrap(a.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644))
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o.Apply(f)
	}
	return f, nil
}

// OpenDir implements vfs.FS. Pebble opens directories only to sync them,
// which engine.FS offers as SyncDir.
func (a fsAdapter) OpenDir(name string) (vfs.File, error) {
	fi, err := a.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "opendir", Path: name, Err: syscall.ENOTDIR}
	}
	return &dirAdapter{fs: a.fs, name: name}, nil
}

func (a fsAdapter) Remove(name string) error             { return a.fs.Remove(name) }
func (a fsAdapter) RemoveAll(name string) error          { return a.fs.RemoveAll(name) }
func (a fsAdapter) Rename(oldname, newname string) error { return a.fs.Rename(oldname, newname) }
func (a fsAdapter) MkdirAll(dir string, perm os.FileMode) error {
	return a.fs.MkdirAll(dir, perm)
}

// ReuseForWrite implements vfs.FS as vfs.Default does: rename, then open
// without truncating (Pebble's recyclable WAL format tells old records from
// new ones).
func (a fsAdapter) ReuseForWrite(oldname, newname string, _ vfs.DiskWriteCategory) (vfs.File, error) {
	if err := a.fs.Rename(oldname, newname); err != nil {
		return nil, err
	}
	return a.wrap(a.fs.OpenFile(newname, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644))
}

// locks holds the lock files this process has locked: fcntl locks are per
// process, so a second lock from the same process must be refused here.
var locks = struct {
	sync.Mutex
	held map[string]bool
}{held: map[string]bool{}}

// Lock implements vfs.FS with an fcntl write lock on a file opened through
// the engine FS, as vfs.Default does on Linux.
func (a fsAdapter) Lock(name string) (io.Closer, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	locks.Lock()
	defer locks.Unlock()
	if locks.held[abs] {
		return nil, fmt.Errorf("lsm: lock %s: already held by this process", name)
	}
	f, err := a.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
		if err := syscall.FcntlFlock(fd, syscall.F_SETLK, &lk); err != nil {
			f.Close()
			return nil, fmt.Errorf("lsm: lock %s: %w (is another process using the directory?)", name, err)
		}
	}
	locks.held[abs] = true
	return &fileLock{f: f, abs: abs}, nil
}

type fileLock struct {
	f   engine.File
	abs string
}

func (l *fileLock) Close() error {
	locks.Lock()
	delete(locks.held, l.abs)
	locks.Unlock()
	return l.f.Close()
}

// List implements vfs.FS.
func (a fsAdapter) List(dir string) ([]string, error) {
	ents, err := a.fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// Stat implements vfs.FS.
func (a fsAdapter) Stat(name string) (vfs.FileInfo, error) {
	fi, err := a.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

func (fsAdapter) PathBase(path string) string    { return filepath.Base(path) }
func (fsAdapter) PathJoin(elem ...string) string { return filepath.Join(elem...) }
func (fsAdapter) PathDir(path string) string     { return filepath.Dir(path) }
func (fsAdapter) Unwrap() vfs.FS                 { return nil }
func (fsAdapter) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	// Only statfs, which reads: nothing is written around the seam.
	return vfs.Default.GetDiskUsage(path)
}

// fileInfo adds the DeviceID Pebble's FileInfo wants.
type fileInfo struct{ os.FileInfo }

// DeviceID implements vfs.FileInfo. Pebble's DeviceID cannot be built
// outside package vfs; Pebble uses it only for disk statistics.
func (fi fileInfo) DeviceID() vfs.DeviceID { return vfs.DeviceID{} }

// fileAdapter presents an engine.File as a vfs.File.
type fileAdapter struct {
	engine.File
}

func (f *fileAdapter) Stat() (vfs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

// Preallocate implements vfs.File; preallocation is only an optimisation.
func (f *fileAdapter) Preallocate(offset, length int64) error { return nil }

// SyncTo implements vfs.File. It may do nothing and report that nothing
// was made durable: Pebble uses it for the background syncs of
// bytes.per.sync, which promise nothing, and calls Sync where it needs
// durability.
func (f *fileAdapter) SyncTo(length int64) (fullSync bool, err error) { return false, nil }

// SyncData implements vfs.File with a full Sync, which engine.File offers.
func (f *fileAdapter) SyncData() error { return f.File.Sync() }

// Prefetch implements vfs.File; it is only a hint.
func (f *fileAdapter) Prefetch(offset, length int64) error { return nil }

// dirAdapter is a directory opened to be synced.
type dirAdapter struct {
	fs   engine.FS
	name string
}

func (d *dirAdapter) notFile(op string) error {
	return &os.PathError{Op: op, Path: d.name, Err: syscall.EISDIR}
}

func (d *dirAdapter) Close() error                            { return nil }
func (d *dirAdapter) Read(p []byte) (int, error)              { return 0, d.notFile("read") }
func (d *dirAdapter) ReadAt(p []byte, off int64) (int, error) { return 0, d.notFile("read") }
func (d *dirAdapter) Write(p []byte) (int, error)             { return 0, d.notFile("write") }
func (d *dirAdapter) WriteAt(p []byte, off int64) (int, error) {
	return 0, d.notFile("write")
}
func (d *dirAdapter) Preallocate(offset, length int64) error { return nil }
func (d *dirAdapter) Stat() (vfs.FileInfo, error) {
	fi, err := d.fs.Stat(d.name)
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}
func (d *dirAdapter) Sync() error                         { return d.fs.SyncDir(d.name) }
func (d *dirAdapter) SyncTo(int64) (bool, error)          { return false, nil }
func (d *dirAdapter) SyncData() error                     { return d.fs.SyncDir(d.name) }
func (d *dirAdapter) Prefetch(offset, length int64) error { return nil }
func (d *dirAdapter) Fd() uintptr                         { return vfs.InvalidFd }
