package mmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/segment"
)

// recover opens the log's directory and brings it to a consistent state
// (the procedure is in doc.go). appendMu held; nobody else has the log yet.
func (l *Log) recover(ctx context.Context) error {
	fsys := l.e.opts.FS
	if _, err := fsys.Stat(l.dir); errors.Is(err, fs.ErrNotExist) {
		if err := fsys.MkdirAll(l.dir, 0o755); err != nil {
			return fmt.Errorf("mmap: open %s: %w", l.tp, err)
		}
		l.dirsDirty.Store(true)
	}
	entries, err := fsys.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("mmap: open %s: %w", l.tp, err)
	}
	var bases []int64
	orphans := map[int64]bool{}
	for _, ent := range entries {
		name := ent.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// A checkpoint write interrupted before its rename: the old
			// checkpoint is intact.
			l.remove(name)
			continue
		}
		switch base, suffix, ok := segment.ParseFileName(name); {
		case !ok:
		case suffix == segment.LogSuffix:
			bases = append(bases, base)
		default:
			orphans[base] = true
		}
	}
	slices.Sort(bases)
	for _, b := range bases {
		delete(orphans, b)
	}
	for b := range orphans { // index files whose log file is gone
		l.removeSegmentFiles(b)
	}

	start, haveStart, err := readCheckpoint(fsys, l.dir, logStartFile)
	if err != nil {
		// Without it, data below the start could come back.
		return fmt.Errorf("mmap: open %s: %w: %w", l.tp, engine.ErrCorrupt, err)
	}
	rp, haveRP, err := readCheckpoint(fsys, l.dir, recoveryPointFile)
	switch {
	case errors.Is(err, errBadCheckpoint):
		// Only a hint: without it every segment is validated.
		l.logger.Warn("recovery point checkpoint damaged; validating every segment", "err", err)
		rp = math.MinInt64
	case err != nil:
		return fmt.Errorf("mmap: open %s: %w", l.tp, err)
	case !haveRP:
		rp = math.MinInt64
	}

	segs, validated, err := l.loadSegments(bases, haveStart, start, rp)
	if err != nil {
		for _, s := range segs {
			s.Close()
		}
		return fmt.Errorf("mmap: open %s: %w", l.tp, err)
	}
	if !haveStart {
		start = 0
		if len(segs) > 0 {
			start = segs[0].Base()
		}
	}
	if len(segs) > 0 && start < segs[0].Base() {
		l.logger.Warn("log start offset below the first segment; starting at the segment", "start", start, "segment", segs[0].Base())
		start = segs[0].Base()
	}
	if len(segs) == 0 || start > segs[len(segs)-1].End() {
		// Nothing at or past start survives (a new log, DeleteBefore
		// beyond the end, or a tail below start cut by recovery): the log
		// is empty at start, in a fresh segment, sealed until the first
		// append like any other loaded one.
		for _, s := range segs {
			if err := s.Remove(); err != nil {
				return fmt.Errorf("mmap: open %s: %w", l.tp, err)
			}
		}
		s, err := segment.Create(&l.cfg, start)
		if err == nil {
			if err = s.Seal(); err != nil {
				s.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("mmap: open %s: %w", l.tp, err)
		}
		segs = []*segment.Segment{s}
		l.dirsDirty.Store(true)
	}
	// Segments wholly below start that a DeleteBefore had yet to remove.
	for len(segs) > 1 && segs[0].End() <= start {
		if err := segs[0].Remove(); err != nil {
			l.logger.Warn("removing a segment below the start offset", "base", segs[0].Base(), "err", err)
		}
		segs = segs[1:]
	}
	end := segs[len(segs)-1].End()
	l.segs = segs
	l.start.Store(start)
	l.end.Store(end)
	l.rp = rp
	l.activeBorn = l.e.opts.Now().UnixNano()

	if rp > end {
		// Appends below the old recovery point must not be trusted.
		l.logger.Error("log ends below its recovery point: synced data was lost", "recovery_point", rp, "end", end)
		if err := l.setRecoveryPoint(end); err != nil {
			return fmt.Errorf("mmap: open %s: %w", l.tp, err)
		}
	}
	// Validated segments may hold bytes that never reached the disk (the
	// process died, not the machine). Rather than fsync them here, which
	// would make opening as slow as the disk, hand them to the flusher
	// as if a roll had just sealed them: it syncs them and then moves the
	// recovery point past them.
	for _, s := range validated {
		if slices.Contains(segs, s) {
			l.pending = append(l.pending, s)
		}
	}
	if len(l.pending) > 0 {
		l.rolled.Store(true)
	}
	return nil
}

// loadSegments loads the segments at bases in order (segment.Load),
// stopping at the first that does not follow on from the previous one's
// end (a gap left by a cut, or a segment that lost its predecessor's
// tail) and removing it and all later ones. It skips (and removes)
// segments wholly below start. validated lists the segments that were
// validated batch by batch rather than trusted.
func (l *Log) loadSegments(bases []int64, haveStart bool, start, rp int64) (segs, validated []*segment.Segment, err error) {
	for i, base := range bases {
		if haveStart && i+1 < len(bases) && bases[i+1] <= start {
			l.removeSegmentFiles(base)
			continue
		}
		if n := len(segs); n > 0 && base != segs[n-1].End() {
			l.logger.Warn("segment does not follow on from the one before; removing it and the later ones",
				"base", base, "previous_end", segs[n-1].End(), "removed", len(bases)-i)
			for _, b := range bases[i:] {
				l.removeSegmentFiles(b)
			}
			break
		}
		s, rec, err := segment.Load(&l.cfg, base, rp)
		if err != nil {
			return segs, validated, err
		}
		segs = append(segs, s)
		if rec.Trusted {
			continue
		}
		validated = append(validated, s)
		belowRP := rp > base && (i+1 == len(bases) || bases[i+1] <= rp)
		switch {
		case belowRP:
			l.logger.Warn("segment below the recovery point failed its sanity checks; validated it batch by batch",
				"base", base, "why", rec.Distrust, "cut_bytes", rec.Cut, "cut_why", rec.Reason)
		case rec.Cut > 0:
			l.logger.Info("cut the unsynced tail of a segment", "base", base, "cut_bytes", rec.Cut, "why", rec.Reason)
		}
	}
	return segs, validated, nil
}

func (l *Log) remove(name string) {
	if err := l.e.opts.FS.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.logger.Warn("removing a leftover file", "name", name, "err", err)
	}
}

func (l *Log) removeSegmentFiles(base int64) {
	for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix} {
		l.remove(segment.FileName(base, suffix))
	}
}

// TearTail damages the closed log of tp under dir as a crash in the middle
// of its last Append would, for the conformance suite (see
// enginetest.Harness.TearTail): the last batch of the last segment that
// holds one is replaced by tear(batch), and the recovery point is rolled
// back to that segment's base, so that the next open validates the
// segment instead of trusting it.
func TearTail(dir string, tp engine.TopicPartition, tear func(last []byte) []byte) error {
	pdir := filepath.Join(dir, dirName(tp))
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return fmt.Errorf("mmap: tear %s: %w", tp, err)
	}
	var bases []int64
	for _, ent := range entries {
		if base, suffix, ok := segment.ParseFileName(ent.Name()); ok && suffix == segment.LogSuffix {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	for i := len(bases) - 1; i >= 0; i-- {
		name := filepath.Join(pdir, segment.FileName(bases[i], segment.LogSuffix))
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("mmap: tear %s: %w", tp, err)
		}
		pos, size, ok := segment.LastBatch(data)
		if !ok {
			continue
		}
		torn := tear(bytes.Clone(data[pos : pos+size]))
		f, err := engine.OSFS.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("mmap: tear %s: %w", tp, err)
		}
		// ShrinkFile, not Truncate: Records of this process may still map
		// the batch.
		err = segment.ShrinkFile(f, pos)
		if err == nil {
			_, err = f.WriteAt(torn, pos)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			rp, found, rerr := readCheckpoint(engine.OSFS, pdir, recoveryPointFile)
			if rerr != nil || !found || rp > bases[i] {
				err = writeCheckpoint(engine.OSFS, pdir, recoveryPointFile, bases[i])
			}
		}
		if err != nil {
			return fmt.Errorf("mmap: tear %s: %w", tp, err)
		}
		return nil
	}
	return fmt.Errorf("mmap: tear %s: no batch in %s", tp, pdir)
}
