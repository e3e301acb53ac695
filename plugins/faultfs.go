package plugins

import (
	"errors"
	"os"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

// errFault is what writes fail with while the host's SetFailWrites is on.
var errFault = errors.New("plugins: injected write failure")

// faultFS is the FS a served engine gets: the operating system's, with a
// switch the host flips through SetFailWrites (tests only) that makes
// every write, sync and truncate fail as a dying disk would.
type faultFS struct {
	engine.FS
	fail atomic.Bool
}

func (f *faultFS) setFail(on bool) { f.fail.Store(on) }

func (f *faultFS) fault() error {
	if f.fail.Load() {
		return errFault
	}
	return nil
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (engine.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		if err := f.fault(); err != nil {
			return nil, err
		}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *faultFS) RemoveAll(name string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.FS.RemoveAll(name)
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

func (f *faultFS) MkdirAll(name string, perm os.FileMode) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.FS.MkdirAll(name, perm)
}

func (f *faultFS) SyncDir(name string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.FS.SyncDir(name)
}

type faultFile struct {
	engine.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.fault(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.fault(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.fault(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
