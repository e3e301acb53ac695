package mmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/strata-broker/strata/engine"
)

// Checkpoint files in a partition directory (format in doc.go).
const (
	recoveryPointFile = "recovery-point.checkpoint"
	logStartFile      = "log-start-offset.checkpoint"
	checkpointSize    = 16
	tmpSuffix         = ".tmp"
)

// checkpointMagic tells the two checkpoint files apart, so that one copied
// over the other is caught.
var checkpointMagic = map[string]string{
	recoveryPointFile: "SRP1",
	logStartFile:      "SLS1",
}

// errBadCheckpoint marks a checkpoint file that exists but does not hold a
// valid checkpoint.
var errBadCheckpoint = errors.New("mmap: checkpoint damaged")

// encodeCheckpoint returns the 16 bytes of a checkpoint file.
func encodeCheckpoint(name string, off int64) []byte {
	b := make([]byte, checkpointSize)
	copy(b, checkpointMagic[name])
	binary.BigEndian.PutUint64(b[4:], uint64(off))
	binary.BigEndian.PutUint32(b[12:], engine.Checksum(b[:12]))
	return b
}

// decodeCheckpoint is the inverse of encodeCheckpoint.
func decodeCheckpoint(name string, b []byte) (int64, error) {
	if len(b) != checkpointSize || string(b[:4]) != checkpointMagic[name] ||
		binary.BigEndian.Uint32(b[12:]) != engine.Checksum(b[:12]) {
		return 0, fmt.Errorf("%w: %s: %d bytes % x", errBadCheckpoint, name, len(b), b[:min(len(b), checkpointSize)])
	}
	return int64(binary.BigEndian.Uint64(b[4:])), nil
}

// writeCheckpoint replaces dir/name atomically: the new bytes go to a
// temporary file that is synced, then renamed over the old one, and the
// directory is synced, so a crash leaves either the old or the new
// checkpoint, never a mix.
func writeCheckpoint(fsys engine.FS, dir, name string, off int64) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("mmap: checkpoint: %w", err)
	}
	_, err = f.Write(encodeCheckpoint(name, off))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("mmap: checkpoint %s=%d: %w", name, off, err)
	}
	return nil
}

// readCheckpoint reads dir/name. found is false if the file does not
// exist; a file that exists but is damaged returns an error wrapping
// errBadCheckpoint.
func readCheckpoint(fsys engine.FS, dir, name string) (off int64, found bool, err error) {
	f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("mmap: checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, checkpointSize+1))
	if err != nil {
		return 0, false, fmt.Errorf("mmap: checkpoint %s: %w", name, err)
	}
	off, err = decodeCheckpoint(name, b)
	return off, true, err
}
