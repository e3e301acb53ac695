// Package faultfs is an engine.FS that injects write faults on demand: the
// conformance suite (engine/enginetest) opens every engine on one, and a
// plugin process (plugins) serves its engine on one so the host can fail
// the plugin's writes.
package faultfs

import (
	"errors"
	"os"
	"sync"

	"github.com/strata-broker/strata/engine"
)

// ErrInjected is the error an FS fails operations with unless Fail was
// given another.
var ErrInjected = errors.New("faultfs: injected write fault")

// FS is an engine.FS that passes every call through to the FS it wraps
// until it is armed with Fail. While armed, every operation that would
// change the disk fails with the armed error, as on a full or dying disk:
//
//   - File.Write and File.WriteAt write the first half of the data, then
//     fail, so the engine is left with a torn write to recover from;
//   - File.Sync and File.Truncate fail without doing anything;
//   - OpenFile with O_CREATE, O_TRUNC or O_APPEND, Remove, RemoveAll,
//     Rename, MkdirAll and SyncDir fail without doing anything.
//
// Reads, Seek, Stat, ReadDir, Close and opening files without those flags
// keep working. Writes through a memory mapping of a file (Fd) bypass
// the FS; an engine that writes that way fails at its next File.Sync.
//
// enginetest.Run puts one in Options.FS of every engine it opens; engines
// may use it in their own tests too. It is safe for concurrent use.
type FS struct {
	fs engine.FS

	mu  sync.Mutex
	err error
}

// New returns an FS over fs, not armed.
func New(fs engine.FS) *FS { return &FS{fs: fs} }

// Fail arms f to fail every disk-changing operation with err from now on;
// Fail(nil) disarms it.
func (f *FS) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *FS) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// OpenFile implements engine.FS.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (engine.File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := f.fault(); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

// Remove implements engine.FS.
func (f *FS) Remove(name string) error {
	if err := f.fault(); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return f.fs.Remove(name)
}

// RemoveAll implements engine.FS.
func (f *FS) RemoveAll(name string) error {
	if err := f.fault(); err != nil {
		return &os.PathError{Op: "removeall", Path: name, Err: err}
	}
	return f.fs.RemoveAll(name)
}

// Rename implements engine.FS.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.fault(); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return f.fs.Rename(oldname, newname)
}

// MkdirAll implements engine.FS.
func (f *FS) MkdirAll(name string, perm os.FileMode) error {
	if err := f.fault(); err != nil {
		return &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return f.fs.MkdirAll(name, perm)
}

// ReadDir implements engine.FS.
func (f *FS) ReadDir(name string) ([]os.DirEntry, error) { return f.fs.ReadDir(name) }

// Stat implements engine.FS.
func (f *FS) Stat(name string) (os.FileInfo, error) { return f.fs.Stat(name) }

// SyncDir implements engine.FS.
func (f *FS) SyncDir(name string) error {
	if err := f.fault(); err != nil {
		return &os.PathError{Op: "syncdir", Path: name, Err: err}
	}
	return f.fs.SyncDir(name)
}

// faultFile fails the writes of an open file while its FS is armed.
type faultFile struct {
	engine.File
	fs *FS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.fault(); err != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(); err != nil {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.fault(); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.fault(); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return f.File.Truncate(size)
}

var (
	_ engine.FS   = (*FS)(nil)
	_ engine.File = (*faultFile)(nil)
)
