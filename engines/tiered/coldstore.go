package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

// ColdStore is where cold objects live: a flat namespace of immutable
// objects named by slash-separated keys ("<topic>-<partition>/<object>"),
// as an object store (S3, GCS) offers. Implementations are safe for
// concurrent use.
type ColdStore interface {
	// Put stores the bytes r yields under name, replacing any object of
	// that name. It is atomic and durable when it returns nil: a reader
	// (or a restart after a crash) sees the whole old object or the whole
	// new one, never a part.
	Put(ctx context.Context, name string, r io.Reader) error
	// GetRange returns n bytes of object name from byte off. An object
	// that does not exist is an error wrapping fs.ErrNotExist; a range
	// past its end is an error.
	GetRange(ctx context.Context, name string, off, n int64) ([]byte, error)
	// List returns the objects whose names begin with prefix, sorted by
	// name.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes object name. Deleting an object that does not exist
	// is not an error.
	Delete(ctx context.Context, name string) error
}

// ObjectInfo describes one object of a ColdStore.
type ObjectInfo struct {
	Name string
	Size int64
}

// LocalDir is a ColdStore in a local directory: an object is a file at its
// name below the root.
type LocalDir struct {
	fs   engine.FS
	root string
	seq  atomic.Uint64
}

var _ ColdStore = (*LocalDir)(nil)

// putSuffix marks a file that Put has not yet renamed into place.
const putSuffix = ".put-tmp"

// NewLocalDir returns the ColdStore in directory root, creating it if
// needed and removing files that Puts interrupted by a crash left behind.
func NewLocalDir(fsys engine.FS, root string) (*LocalDir, error) {
	if err := fsys.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("tiered: cold dir: %w", err)
	}
	d := &LocalDir{fs: fsys, root: root}
	err := d.walk("", func(name string, _ os.DirEntry) error {
		if strings.HasSuffix(name, putSuffix) {
			return fsys.Remove(filepath.Join(root, filepath.FromSlash(name)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: cold dir: %w", err)
	}
	return d, nil
}

// path checks name and returns its file.
func (d *LocalDir) path(name string) (string, error) {
	if name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "../") ||
		name == ".." || strings.HasSuffix(name, putSuffix) {
		return "", fmt.Errorf("tiered: bad object name %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Put implements ColdStore: the bytes go to a temporary file beside the
// object's, which is synced, renamed over the object and its directory
// synced (and any directory Put created, in its parent).
func (d *LocalDir) Put(ctx context.Context, name string, r io.Reader) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.mkdirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("tiered: put %s: %w", name, err)
	}
	tmp := p + "." + strconv.FormatUint(d.seq.Add(1), 10) + putSuffix
	f, err := d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("tiered: put %s: %w", name, err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, p)
	}
	if err == nil {
		err = d.fs.SyncDir(filepath.Dir(p))
	}
	if err != nil {
		d.fs.Remove(tmp)
		return fmt.Errorf("tiered: put %s: %w", name, err)
	}
	return nil
}

// mkdirs creates dir and the directories above it up to the root, syncing
// each new one's parent so the new entries survive a crash.
func (d *LocalDir) mkdirs(dir string) error {
	if _, err := d.fs.Stat(dir); err == nil {
		return nil
	}
	if dir != d.root {
		if err := d.mkdirs(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	if err := d.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return d.fs.SyncDir(filepath.Dir(dir))
}

// GetRange implements ColdStore.
func (d *LocalDir) GetRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("tiered: get %s: bad range %d+%d", name, off, n)
	}
	f, err := d.fs.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("tiered: get %s: %w", name, err)
	}
	defer f.Close()
	b := make([]byte, n)
	if k, err := f.ReadAt(b, off); k != len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("tiered: get %s bytes %d+%d: %w", name, off, n, err)
	}
	return b, nil
}

// List implements ColdStore.
func (d *LocalDir) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := d.walk("", func(name string, ent os.DirEntry) error {
		if !strings.HasPrefix(name, prefix) || strings.HasSuffix(name, putSuffix) {
			return nil
		}
		info, err := ent.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Name: name, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// walk calls visit for every file below the directory rel (slash-separated,
// relative to the root), with its slash-separated name.
func (d *LocalDir) walk(rel string, visit func(name string, ent os.DirEntry) error) error {
	ents, err := d.fs.ReadDir(filepath.Join(d.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ent := range ents {
		name := ent.Name()
		if rel != "" {
			name = rel + "/" + name
		}
		if ent.IsDir() {
			err = d.walk(name, visit)
		} else {
			err = visit(name, ent)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Delete implements ColdStore.
func (d *LocalDir) Delete(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tiered: delete %s: %w", name, err)
	}
	return nil
}
