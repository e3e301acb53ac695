package tiered

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/strata-broker/strata/engine"
)

// Manifest file of a log, in the log's hot directory (format in doc.go).
const (
	manifestFile      = "cold.manifest"
	manifestMagic     = "STM1"
	manifestEntrySize = 40
	manifestHeader    = 16 // magic, start, count
	tmpSuffix         = ".tmp"
	// maxManifestEntries bounds what a damaged count may make us read.
	maxManifestEntries = 1 << 24
)

// coldSegment is one entry of a manifest: a sealed segment's batches, in a
// cold object.
type coldSegment struct {
	base, last int64 // first batch's base offset, last batch's last offset
	maxTs      int64
	size       int64 // bytes of the object
	nonce      uint64
}

// manifest is what a log keeps in its cold tier.
type manifest struct {
	// start is the log's start offset while segs is not empty (with none
	// the hot tier's start is the log's).
	start int64
	segs  []coldSegment
}

// objectName is the ColdStore name of a cold segment of tp. The nonce
// makes every upload's name new, so an object is never replaced by one
// with other bytes.
func objectName(tp engine.TopicPartition, c coldSegment) string {
	return fmt.Sprintf("%s/%020d-%016x.cold", tp, c.base, c.nonce)
}

func encodeManifest(m manifest) []byte {
	b := make([]byte, 0, manifestHeader+len(m.segs)*manifestEntrySize+4)
	b = append(b, manifestMagic...)
	b = be.AppendUint64(b, uint64(m.start))
	b = be.AppendUint32(b, uint32(len(m.segs)))
	for _, c := range m.segs {
		b = be.AppendUint64(b, uint64(c.base))
		b = be.AppendUint64(b, uint64(c.last))
		b = be.AppendUint64(b, uint64(c.maxTs))
		b = be.AppendUint64(b, uint64(c.size))
		b = be.AppendUint64(b, c.nonce)
	}
	return be.AppendUint32(b, engine.Checksum(b))
}

func decodeManifest(b []byte) (manifest, error) {
	var m manifest
	if len(b) < manifestHeader+4 || string(b[:4]) != manifestMagic {
		return m, fmt.Errorf("%w: manifest of %d bytes without its magic", errCorrupt, len(b))
	}
	if got := engine.Checksum(b[:len(b)-4]); got != be.Uint32(b[len(b)-4:]) {
		return m, fmt.Errorf("%w: manifest crc %08x, file says %08x", errCorrupt, got, be.Uint32(b[len(b)-4:]))
	}
	m.start = int64(be.Uint64(b[4:]))
	n := int(be.Uint32(b[12:]))
	if n > maxManifestEntries || len(b) != manifestHeader+n*manifestEntrySize+4 {
		return m, fmt.Errorf("%w: manifest of %d bytes with %d entries", errCorrupt, len(b), n)
	}
	for i := range n {
		e := b[manifestHeader+i*manifestEntrySize:]
		c := coldSegment{
			base:  int64(be.Uint64(e[0:])),
			last:  int64(be.Uint64(e[8:])),
			maxTs: int64(be.Uint64(e[16:])),
			size:  int64(be.Uint64(e[24:])),
			nonce: be.Uint64(e[32:]),
		}
		if c.base < 0 || c.last < c.base || c.last == math.MaxInt64 || c.size < footerSize ||
			(i > 0 && c.base != m.segs[i-1].last+1) {
			return m, fmt.Errorf("%w: manifest entry %d: offsets [%d, %d], %d bytes", errCorrupt, i, c.base, c.last, c.size)
		}
		m.segs = append(m.segs, c)
	}
	if n > 0 && (m.start < m.segs[0].base || m.start > m.segs[0].last) {
		return m, fmt.Errorf("%w: manifest start %d outside its first segment [%d, %d]", errCorrupt, m.start, m.segs[0].base, m.segs[0].last)
	}
	return m, nil
}

// writeManifest replaces dir's manifest atomically: temporary file, fsync,
// rename, fsync of the directory.
func writeManifest(fsys engine.FS, dir string, m manifest) error {
	tmp := filepath.Join(dir, manifestFile+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("tiered: manifest: %w", err)
	}
	_, err = f.Write(encodeManifest(m))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(dir, manifestFile))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("tiered: manifest: %w", err)
	}
	return nil
}

// readManifest reads dir's manifest; a log without one has no cold data.
func readManifest(fsys engine.FS, dir string) (manifest, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, manifestFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, nil
	}
	if err != nil {
		return manifest{}, fmt.Errorf("tiered: manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, manifestHeader+maxManifestEntries*manifestEntrySize+5))
	if err != nil {
		return manifest{}, fmt.Errorf("tiered: manifest: %w", err)
	}
	return decodeManifest(b)
}
