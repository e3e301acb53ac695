package segment

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/strata-broker/strata/engine"
)

// Activate makes a sealed segment take appends: both index files are
// preallocated to Config.IndexBytes again and mapped writable, and the log
// file is mapped with room to grow. The owner must first make sure nothing
// trusts the segment's sealed form any more (engines/mmap lowers the
// recovery point to the segment's base), since a crash leaves preallocated
// index files behind that only recovery rebuilds.
func (s *Segment) Activate() error {
	if s.active {
		return nil
	}
	if err := s.idx.grow(s.cfg.IndexBytes); err != nil {
		return err
	}
	if err := s.tidx.grow(s.cfg.IndexBytes); err != nil {
		return err
	}
	if err := s.remapLog(0); err != nil {
		return err
	}
	s.active = true
	return nil
}

// Seal ends appends to the segment: a last time entry records its max
// timestamp, both index files are cut to their entries and mapped
// read-only, and the log file's mapping is dropped (the next read maps the
// file at its size). It does not sync; Sync does, after which the segment may be
// trusted by recovery.
func (s *Segment) Seal() error {
	if !s.active {
		return nil
	}
	if s.ix.final() {
		if s.tidx.n.Load() >= s.tidx.limit {
			// IndexFull keeps a slot for this entry; if an owner
			// ignored it, make room rather than lose the maximum.
			if err := s.tidx.grow(int(s.tidx.n.Load()+1) * TimeEntrySize); err != nil {
				return err
			}
		}
		s.tidx.appendTime(s.ix.maxTs, uint32(s.ix.offsetOfMax-s.base))
		s.ix.wroteTime()
	}
	if err := s.idx.trim(); err != nil {
		return err
	}
	if err := s.tidx.trim(); err != nil {
		return err
	}
	s.active = false
	// The active mapping reserved SegmentBytes of address space; the next
	// read maps just the file (readers keep the old one meanwhile).
	if m := s.cur.Swap(nil); m != nil {
		m.release()
	}
	return nil
}

// TruncateTo removes the batches holding offsets >= to (the batch holding
// to goes whole) and returns the new End. Index entries past the cut go,
// and the segment stays active or sealed as it was. Records read before
// keep their bytes (ShrinkFile). The cut is not synced: call Sync.
func (s *Segment) TruncateTo(to int64) (int64, error) {
	next := s.next.Load()
	if to >= next {
		return next, nil
	}
	cut, newEnd := int64(0), s.base
	if to > s.base {
		p, base, err := s.batchHolding(to)
		if err != nil {
			return next, err
		}
		cut, newEnd = p, base
	}
	wasActive := s.active
	// Writable indexes can be zeroed past the cut, and Seal can add the
	// last time entry again.
	if err := s.Activate(); err != nil {
		return next, err
	}
	nOff := s.idx.n.Load()
	for ; nOff > 0; nOff-- {
		if _, p := s.idx.offsetAt(nOff - 1); int64(p) < cut {
			break
		}
	}
	s.idx.truncate(nOff)
	nTime := s.tidx.n.Load()
	for ; nTime > 0; nTime-- {
		if _, rel := s.tidx.timeAt(nTime - 1); s.base+int64(rel) < newEnd {
			break
		}
	}
	s.tidx.truncate(nTime)

	// The indexer state for what remains: the last time entry left says
	// the maximum up to its batch; the batches from there to the cut may
	// hold a larger one.
	ix := newIndexer(s.base, s.cfg.IndexInterval)
	from := s.base
	if nTime > 0 {
		ts, rel := s.tidx.timeAt(nTime - 1)
		ix.maxTs, ix.offsetOfMax, ix.lastTimeTs = ts, s.base+int64(rel), ts
		from = ix.offsetOfMax
	}
	c, err := s.Locate(from)
	if err != nil {
		return next, err
	}
	data := c.m.data[:cut]
	for p := min(c.pos, cut); p < cut; {
		n, base, _, maxTs, ok := peek(data[p:])
		if !ok {
			c.Close()
			return next, fmt.Errorf("segment: no batch at byte %d: %w", p, engine.ErrCorrupt)
		}
		if maxTs > ix.maxTs {
			ix.maxTs, ix.offsetOfMax = maxTs, base
		}
		p += n
	}
	c.Close()
	ix.bytesSince = cut
	if nOff > 0 {
		_, p := s.idx.offsetAt(nOff - 1)
		ix.bytesSince = cut - int64(p)
	}

	if err := ShrinkFile(s.log, cut); err != nil {
		return next, fmt.Errorf("segment: truncate %s to byte %d: %w", s.log.Name(), cut, err)
	}
	s.ix = ix
	s.size.Store(cut)
	s.next.Store(newEnd)
	s.maxTs.Store(ix.maxTs)
	// ShrinkFile detached the pages past the cut from our mapping too: map
	// afresh so that new appends show through it.
	if err := s.remapLog(0); err != nil {
		return newEnd, err
	}
	if !wasActive {
		return newEnd, s.Seal()
	}
	return newEnd, nil
}

// batchHolding returns the position and base offset of the batch holding
// offset off, which must be in [Base, End).
func (s *Segment) batchHolding(off int64) (pos, base int64, err error) {
	c, err := s.Locate(off)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	data := c.m.data[:c.size]
	for p := c.pos; ; {
		n, b, last, _, ok := peek(data[p:])
		if !ok {
			return 0, 0, fmt.Errorf("segment: no batch holding offset %d at byte %d: %w", off, p, engine.ErrCorrupt)
		}
		if last >= off {
			return p, b, nil
		}
		p += n
	}
}

// SyncLog makes the batches of the log file durable. Enough for an active
// segment, whose indexes recovery rebuilds.
func (s *Segment) SyncLog() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.log.Name(), err)
	}
	return nil
}

// Sync makes the log file durable and, for a sealed segment, its index
// files too, so that recovery may trust the segment.
func (s *Segment) Sync() error {
	if err := s.SyncLog(); err != nil {
		return err
	}
	if s.active {
		return nil
	}
	for _, f := range []engine.File{s.idx.f, s.tidx.f} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("segment: sync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// Close releases the segment's owner reference to its mapping (readers
// keep theirs), unmaps the indexes and closes the files. It neither seals
// nor syncs.
func (s *Segment) Close() error {
	if m := s.cur.Swap(nil); m != nil {
		m.release()
	}
	var errs []error
	errs = append(errs, s.idx.close(), s.tidx.close())
	if s.log != nil {
		errs = append(errs, s.log.Close())
		s.log = nil
	}
	return errors.Join(errs...)
}

// Remove closes the segment and removes its files. Readers holding Records
// keep their bytes: the mapping keeps the removed file's pages.
func (s *Segment) Remove() error {
	errs := []error{s.Close()}
	for _, suffix := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		if err := s.cfg.FS.Remove(s.path(suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("segment: %w", err))
		}
	}
	return errors.Join(errs...)
}
