package coordination

import (
	"os"
	"path/filepath"

	"github.com/strata-broker/strata/engine"
)

// TmpSuffix names the temporary file of WriteAtomic.
const TmpSuffix = ".tmp"

// WriteAtomic replaces dir/name with data on fsys: it writes
// dir/name.tmp, syncs it, renames it over name and syncs the directory,
// so a crash leaves the old file or the new one, and at worst a leftover
// name.tmp.
func WriteAtomic(fsys engine.FS, dir, name string, data []byte) (err error) {
	tmp := filepath.Join(dir, name+TmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}
