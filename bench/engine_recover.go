package bench

// The recover op, and the directory images it reopens: copied while the
// engine is still open, as a kill leaves them, and restored between ops.

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchRecover measures reopening a log of 256 MiB after a crash: the
// directory is copied while the engine is still open (after a Sync), which
// is what a kill leaves, and each op opens the engine on that image and
// reads the end. An engine that works in the background (an LSM's flushes
// and compactions) is copied once its files stand still, so the image is
// one instant of the directory, as a kill would leave it, rather than files
// taken at different times. Between ops the timer stops and the files the
// last op changed are put back as the image has them.
func benchRecover(b *testing.B, t Target) {
	src := b.TempDir()
	e, l := t.open(b, src)
	fill(b, l, largeBatchBytes, recoverFixture)
	_, want := l.Offsets()
	image := b.TempDir()
	copyStill(b, src, image)
	closeAll(b, e, l)
	dir := b.TempDir()
	b.SetBytes(recoverFixture)
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		restoreTree(b, image, dir)
		b.StartTimer()
		e, l := t.open(b, dir)
		if _, end := l.Offsets(); end != want {
			b.Fatalf("recovered end %d, want %d", end, want)
		}
		b.StopTimer()
		closeAll(b, e, l)
		b.StartTimer()
	}
}

// copyTree copies the regular files of src into dst, keeping the layout and
// the modification times (restoreTree compares them).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, to)
	})
}

// copyStill copies src into dst as copyTree does, once no file of src
// changes (name, size or modification time) from before the copy to after
// it; it gives up after 30 seconds of a directory that keeps changing.
func copyStill(tb testing.TB, src, dst string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		before := treeState(tb, src)
		err := copyTree(src, dst)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			tb.Fatal(err)
		}
		if err == nil && treeState(tb, src) == before {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s kept changing for 30s; no still image to copy", src)
		}
		if err := os.RemoveAll(dst); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// treeState describes the regular files under dir: names, sizes and
// modification times.
func treeState(tb testing.TB, dir string) string {
	var sb []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile: the next look differs anyway
		} else if err != nil {
			return err
		}
		sb = append(sb, path...)
		sb = append(sb, ' ')
		sb = strconv.AppendInt(sb, fi.Size(), 10)
		sb = append(sb, ' ')
		sb = strconv.AppendInt(sb, fi.ModTime().UnixNano(), 10)
		sb = append(sb, '\n')
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(sb)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, fi.ModTime(), fi.ModTime())
}

// restoreTree makes dst a copy of src again, copying only the files whose
// size or modification time differ from src's and removing files src does
// not have, so a 256 MiB image costs only what the last op changed.
func restoreTree(tb testing.TB, src, dst string) {
	err := filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dst {
			return err
		}
		rel, _ := filepath.Rel(dst, path)
		if _, err := os.Lstat(filepath.Join(src, rel)); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err == nil {
		err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			to := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			want, err := d.Info()
			if err != nil || !want.Mode().IsRegular() {
				return err
			}
			if got, err := os.Stat(to); err == nil && got.Size() == want.Size() && got.ModTime().Equal(want.ModTime()) {
				return nil
			}
			return copyFile(path, to)
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
}
