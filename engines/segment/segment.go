package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

// Config says where a segment's files live and how an active segment grows.
// Segments keep a pointer to it; it must not change while they are open.
type Config struct {
	// FS opens, truncates and removes the files.
	FS engine.FS
	// Dir holds the segment files.
	Dir string
	// SegmentBytes is the capacity an active segment's log file is mapped
	// with (segment.bytes), so that appends seldom need a new mapping.
	SegmentBytes int64
	// IndexBytes is the size each index file is preallocated to while the
	// segment is active (segment.index.bytes).
	IndexBytes int
	// IndexInterval is the number of bytes of batches between offset-index
	// entries (index.interval.bytes).
	IndexInterval int64
}

// Segment is one segment of a partition log: the log file holding record
// batches exactly as appended, its sparse offset index and its time index.
//
// A segment is either active, when its index files are preallocated and it
// takes appends, or sealed, when its index files hold exactly their entries.
// A new segment is active; a loaded one is sealed until Activate.
//
// Concurrency: one goroutine at a time calls the writer methods (Append,
// Activate, Seal, TruncateTo, Close, Remove). Readers (Locate, Cursor.Read,
// OffsetForTime and the accessors) may run concurrently with Append, but the
// owner must exclude them from the other writer methods, which remap the
// index files (in engines/mmap, with the log's RWMutex). Records returned
// by reads stay valid after any of them.
type Segment struct {
	cfg  *Config
	base int64
	log  engine.File
	idx  index
	tidx index

	// Published by Append after the write, read by readers: the log file
	// holds whole batches in [0, size) holding offsets [base, next).
	size  atomic.Int64
	next  atomic.Int64
	maxTs atomic.Int64 // max timestamp of the batches; math.MinInt64 if none

	mapMu sync.Mutex              // serialises lazy mapping of a sealed segment
	cur   atomic.Pointer[Mapping] // covers [0, size); holds an owner reference

	ix     indexer // writer-owned
	active bool    // writer-owned
}

// Recovery reports what Load did to a segment.
type Recovery struct {
	// Trusted: the segment lay below the recovery point and passed the
	// sanity checks, so its batches were not validated one by one. A
	// segment that was validated instead is not synced by Load: the
	// bytes it kept may sit in the page cache only (the process died, the
	// machine did not), so the caller must Sync it before it counts on
	// it, for example before moving a recovery point past it.
	Trusted bool
	// Cut is the number of bytes removed from the end of the log file.
	Cut int64
	// Reason says why validation stopped before the end of the file (nil
	// if it did not, or the segment was trusted).
	Reason error
	// Distrust says why the segment was not trusted (nil if it was). For
	// a segment that lies below the recovery point it means damage the
	// sanity checks caught; for one at or past it, that it was not synced.
	Distrust error
}

func (s *Segment) path(suffix string) string {
	return filepath.Join(s.cfg.Dir, FileName(s.base, suffix))
}

// Create creates the files of a new, empty, active segment at base. It
// fails if they exist.
func Create(cfg *Config, base int64) (*Segment, error) {
	s := &Segment{cfg: cfg, base: base, ix: newIndexer(base, cfg.IndexInterval)}
	s.next.Store(base)
	s.maxTs.Store(math.MinInt64)
	created, err := s.open(os.O_RDWR | os.O_CREATE | os.O_EXCL)
	if err == nil {
		err = s.Activate()
	}
	if err != nil {
		s.Close()
		for _, name := range created { // never files that were there before
			s.cfg.FS.Remove(name)
		}
		return nil, err
	}
	return s, nil
}

// open opens the three files with flag (plus O_CREATE for the indexes,
// which recovery can rebuild) and returns the paths of those it created.
func (s *Segment) open(flag int) (created []string, err error) {
	s.idx.es, s.tidx.es = OffsetEntrySize, TimeEntrySize
	for _, f := range []struct {
		file   *engine.File
		suffix string
		flag   int
	}{
		{&s.log, LogSuffix, flag},
		{&s.idx.f, IndexSuffix, flag | os.O_CREATE},
		{&s.tidx.f, TimeIndexSuffix, flag | os.O_CREATE},
	} {
		name := s.path(f.suffix)
		flag := f.flag
		if flag&os.O_EXCL == 0 {
			// An index that exists opens without O_CREATE: opening a
			// healthy segment changes nothing on disk.
			*f.file, err = s.cfg.FS.OpenFile(name, flag&^os.O_CREATE, 0o644)
			if err == nil || !errors.Is(err, fs.ErrNotExist) || flag&os.O_CREATE == 0 {
				if err != nil {
					return created, fmt.Errorf("segment: %w", err)
				}
				continue
			}
		}
		if *f.file, err = s.cfg.FS.OpenFile(name, flag, 0o644); err != nil {
			return created, fmt.Errorf("segment: %w", err)
		}
		if flag&os.O_EXCL != 0 {
			created = append(created, name)
		}
	}
	return created, nil
}

// Load opens the existing segment at base, sealed, and recovers it. If every
// offset it holds is below trustedBelow (the recovery point: everything
// below it was synced) and it passes the sanity checks (indexes well formed
// and within the file, the batch headers from the last offset-index entry
// leading exactly to the end of the file), it is trusted as it is.
// Otherwise every batch is validated from the start (engine.CheckBatch and
// contiguous offsets from base), the file is cut after the last good one,
// and both indexes are rebuilt; nothing is synced (see Recovery.Trusted).
func Load(cfg *Config, base, trustedBelow int64) (*Segment, Recovery, error) {
	s := &Segment{cfg: cfg, base: base, ix: newIndexer(base, cfg.IndexInterval)}
	s.next.Store(base)
	s.maxTs.Store(math.MinInt64)
	var rec Recovery
	_, err := s.open(os.O_RDWR)
	if err == nil {
		rec, err = s.load(trustedBelow)
	}
	if err != nil {
		s.Close()
		return nil, rec, err
	}
	return s, rec, nil
}

func (s *Segment) load(trustedBelow int64) (Recovery, error) {
	var rec Recovery
	info, err := s.log.Stat()
	if err != nil {
		return rec, fmt.Errorf("segment: %w", err)
	}
	m, err := mapFile(s.log, int(info.Size()))
	if err != nil {
		return rec, err
	}
	s.cur.Store(m)
	for _, x := range []*index{&s.idx, &s.tidx} {
		info, err := x.f.Stat()
		if err != nil {
			return rec, fmt.Errorf("segment: %w", err)
		}
		if err := x.remap(int(info.Size()), false); err != nil {
			return rec, err
		}
	}
	if rec.Distrust = s.trust(m.data, trustedBelow); rec.Distrust == nil {
		rec.Trusted = true
		return rec, nil
	}
	rec.Cut, rec.Reason, err = s.recover(m.data)
	return rec, err
}

// trust sanity-checks a sealed segment and, if it passes, takes its state
// from the indexes and a header walk from the last offset-index entry. It
// returns why the segment cannot be trusted.
func (s *Segment) trust(data []byte, trustedBelow int64) error {
	size := int64(len(data))
	if size > maxPosition {
		return fmt.Errorf("log of %d bytes, too large for u32 positions", size)
	}
	if err := checkOffsetIndex(s.idx.mem, size); err != nil {
		return fmt.Errorf("offset index: %w", err)
	}
	nOff := int64(len(s.idx.mem) / OffsetEntrySize)
	pos, first := int64(0), s.base
	if nOff > 0 {
		rel, p := be.Uint32(s.idx.mem[(nOff-1)*OffsetEntrySize:]), be.Uint32(s.idx.mem[(nOff-1)*OffsetEntrySize+4:])
		pos, first = int64(p), s.base+int64(rel)
	}
	if size > 0 && nOff > 0 {
		// The walk below starts at the last index entry; the first
		// header costs one more read.
		if h, err := engine.ParseBatchHeader(data); err != nil || h.BaseOffset != s.base {
			return fmt.Errorf("first batch does not start at the base offset %d: %v", s.base, err)
		}
	}
	tailMax, tailOff := int64(math.MinInt64), s.base
	end, next, err := scan(data, pos, first, s.base, false, func(_ int64, h engine.BatchHeader) {
		if h.MaxTimestamp > tailMax {
			tailMax, tailOff = h.MaxTimestamp, h.BaseOffset
		}
	})
	switch {
	case err != nil:
		return fmt.Errorf("walking batch headers from the last index entry: %w", err)
	case end != size:
		return fmt.Errorf("batch headers end at byte %d of %d", end, size)
	case next > trustedBelow:
		return fmt.Errorf("offsets up to %d, past the recovery point %d", next, trustedBelow)
	}
	if err := checkTimeIndex(s.tidx.mem, next-s.base); err != nil {
		return fmt.Errorf("time index: %w", err)
	}
	nTime := int64(len(s.tidx.mem) / TimeEntrySize)
	if size > 0 && nTime == 0 {
		return errors.New("time index: empty, but the segment is not")
	}
	s.idx.n.Store(nOff)
	s.tidx.n.Store(nTime)
	s.ix.bytesSince = size - pos
	if nTime > 0 {
		ts, rel := s.tidx.timeAt(nTime - 1)
		s.ix.maxTs, s.ix.offsetOfMax, s.ix.lastTimeTs = ts, s.base+int64(rel), ts
	}
	if tailMax > s.ix.maxTs {
		// A sealed segment's last time entry holds its maximum, so this
		// only happens with an index damaged in a way the checks missed;
		// the next Seal adds the entry.
		s.ix.maxTs, s.ix.offsetOfMax = tailMax, tailOff
	}
	s.size.Store(size)
	s.next.Store(next)
	s.maxTs.Store(s.ix.maxTs)
	return nil
}

// recover validates every batch, cuts the log file after the last good
// one and rebuilds both indexes. It returns the bytes cut and why
// validation stopped early.
func (s *Segment) recover(data []byte) (cut int64, reason error, err error) {
	ix := newIndexer(s.base, s.cfg.IndexInterval)
	var offs, times []byte
	end, next, reason := scan(data, 0, s.base, s.base, true, func(pos int64, h engine.BatchHeader) {
		off, tim := ix.add(int64(h.Size()), h.BaseOffset, h.MaxTimestamp)
		if off {
			offs = be.AppendUint32(offs, uint32(h.BaseOffset-s.base))
			offs = be.AppendUint32(offs, uint32(pos))
		}
		if tim {
			times = be.AppendUint64(times, uint64(ix.maxTs))
			times = be.AppendUint32(times, uint32(ix.offsetOfMax-s.base))
			ix.wroteTime()
		}
	})
	if ix.final() {
		times = be.AppendUint64(times, uint64(ix.maxTs))
		times = be.AppendUint32(times, uint32(ix.offsetOfMax-s.base))
		ix.wroteTime()
	}
	cut = int64(len(data)) - end
	if cut > 0 {
		// Readers of an earlier instance may still map the bytes being
		// cut: ShrinkFile detaches them. Our own mapping goes; a new one
		// is made when the segment is read.
		if m := s.cur.Swap(nil); m != nil {
			m.release()
		}
		if err := ShrinkFile(s.log, end); err != nil {
			return cut, reason, fmt.Errorf("segment: cut %s at byte %d: %w", s.log.Name(), end, err)
		}
	}
	for _, w := range []struct {
		x *index
		b []byte
	}{{&s.idx, offs}, {&s.tidx, times}} {
		if err := w.x.rewrite(w.b); err != nil {
			return cut, reason, err
		}
	}
	s.ix = ix
	s.size.Store(end)
	s.next.Store(next)
	s.maxTs.Store(ix.maxTs)
	return cut, reason, nil
}

// rewrite replaces the index file's contents with entries b, sealed.
func (x *index) rewrite(b []byte) error {
	if x.mem != nil {
		_ = munmap(x.mem)
		x.mem = nil
	}
	if _, err := x.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("segment: rewrite %s: %w", x.f.Name(), err)
	}
	if err := x.f.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("segment: rewrite %s: %w", x.f.Name(), err)
	}
	x.n.Store(int64(len(b) / x.es))
	return x.remap(len(b), false)
}

// Base returns the segment's base offset, the first offset it may hold.
func (s *Segment) Base() int64 { return s.base }

// Size returns the bytes of batches in the log file.
func (s *Segment) Size() int64 { return s.size.Load() }

// End returns the offset after the segment's last batch (Base if empty).
func (s *Segment) End() int64 { return s.next.Load() }

// MaxTimestamp returns the largest MaxTimestamp of the segment's batches,
// math.MinInt64 if it has none.
func (s *Segment) MaxTimestamp() int64 { return s.maxTs.Load() }

// DiskSize returns the bytes of the segment's files, counting the index
// files by the entries in use: a preallocated index is a sparse file.
func (s *Segment) DiskSize() int64 {
	return s.size.Load() + s.idx.n.Load()*OffsetEntrySize + s.tidx.n.Load()*TimeEntrySize
}

// Active reports whether the segment takes appends.
func (s *Segment) Active() bool { return s.active }

// IndexFull reports whether an index of the active segment has no room
// left, at which point the log rolls a new segment (the time index keeps
// one entry in reserve for Seal).
func (s *Segment) IndexFull() bool {
	return s.idx.n.Load() >= s.idx.limit || s.tidx.n.Load() >= s.tidx.limit-1
}

// Append writes batch, which the caller validated (engine.CheckAppend) and
// which starts at End, to the end of the active segment with one write,
// then indexes it and publishes it to readers. It does not allocate. On
// error some of the bytes may have reached the file but none is published;
// the caller must stop appending (recovery cuts them).
func (s *Segment) Append(meta engine.BatchMeta, batch []byte) error {
	if !s.active {
		return errors.New("segment: append to a sealed segment")
	}
	pos := s.size.Load()
	end := pos + int64(len(batch))
	if m := s.cur.Load(); m == nil || int64(len(m.data)) < end {
		if err := s.remapLog(end); err != nil {
			return err
		}
	}
	if _, err := s.log.WriteAt(batch, pos); err != nil {
		return err
	}
	off, tim := s.ix.add(int64(len(batch)), meta.BaseOffset, meta.MaxTimestamp)
	// maxTs before size: a reader that sees the batch sees its timestamp.
	s.maxTs.Store(s.ix.maxTs)
	s.size.Store(end)
	s.next.Store(meta.LastOffset + 1)
	// Index entries after size: a lookup may miss the newest entry (and
	// scan a little further) but never finds one past what it may read.
	if off && s.idx.n.Load() < s.idx.limit {
		s.idx.appendOffset(uint32(meta.BaseOffset-s.base), uint32(pos))
	}
	if tim && s.tidx.n.Load() < s.tidx.limit-1 {
		s.tidx.appendTime(s.ix.maxTs, uint32(s.ix.offsetOfMax-s.base))
		s.ix.wroteTime()
	}
	return nil
}

// remapLog replaces the current mapping with one of at least need bytes
// (and SegmentBytes), leaving the old one to its readers.
func (s *Segment) remapLog(need int64) error {
	capacity := max(need, s.cfg.SegmentBytes, s.size.Load())
	m, err := mapFile(s.log, int(capacity))
	if err != nil {
		return err
	}
	if old := s.cur.Swap(m); old != nil {
		old.release()
	}
	return nil
}

// acquire returns the current mapping with a reference added, mapping a
// sealed segment on first use.
func (s *Segment) acquire() (*Mapping, error) {
	for {
		if m := s.cur.Load(); m != nil {
			if m.tryAcquire() {
				return m, nil
			}
			continue // replaced and released meanwhile: load the new one
		}
		s.mapMu.Lock()
		if s.cur.Load() == nil {
			m, err := mapFile(s.log, int(s.size.Load()))
			if err != nil {
				s.mapMu.Unlock()
				return nil, err
			}
			s.cur.Store(m)
		}
		s.mapMu.Unlock()
	}
}

// Cursor is a position in a segment found by Locate, holding a reference to
// the segment's mapping until its Read (which hands the reference on to the
// Records) or Close.
type Cursor struct {
	m    *Mapping
	size int64 // bytes committed when Locate ran
	pos  int64 // a batch start at or before the batch holding the offset
}

// Locate looks offset from up in the offset index. It runs under the owner's
// read lock; the Cursor may be used after the lock is dropped.
func (s *Segment) Locate(from int64) (Cursor, error) {
	// size before the mapping: the appender maps more before it publishes
	// a size beyond the old mapping, so the mapping covers size.
	size := s.size.Load()
	m, err := s.acquire()
	if err != nil {
		return Cursor{}, err
	}
	c := Cursor{m: m, size: min(size, int64(len(m.data)))}
	if rel := from - s.base; rel > 0 {
		if i := s.idx.floorOffset(uint32(min(rel, math.MaxUint32))); i >= 0 {
			if _, p := s.idx.offsetAt(i); int64(p) < c.size {
				c.pos = int64(p)
			}
		}
	}
	return c, nil
}

// Close drops the Cursor's reference without reading.
func (c *Cursor) Close() {
	if c.m != nil {
		c.m.release()
		c.m = nil
	}
}

// Read returns, as one chunk of the mapping, the batch holding offset from
// and the batches after it that keep the total within maxBytes (at least
// one batch), up to the end of the segment as of Locate and not past
// offset end: the owner may publish its end offset after the segment
// publishes a batch, and a reader must not run ahead of the end it saw.
// The Records hold the Cursor's reference; the Cursor must not be used
// again.
func (c *Cursor) Read(from, end int64, maxBytes int) (engine.Records, error) {
	m := c.m
	c.m = nil
	data := m.data[:c.size]
	p := c.pos
	for {
		n, base, last, _, ok := peek(data[p:])
		if !ok || base > from {
			m.release()
			return engine.Records{NextOffset: from}, fmt.Errorf("segment: no batch holding offset %d from byte %d: %w", from, c.pos, engine.ErrCorrupt)
		}
		if last >= from {
			break
		}
		p += n
	}
	start, total, next := p, int64(0), from
	for p < c.size {
		n, base, last, _, ok := peek(data[p:])
		if !ok || base >= end || (p > start && total+n > int64(maxBytes)) {
			break
		}
		total += n
		p += n
		next = last + 1
	}
	pn := &pin{m: m}
	pn.chunks[0] = data[start:p:p]
	return engine.Records{Chunks: pn.chunks[:], NextOffset: next, Pin: pn}, nil
}

// OffsetForTime returns the base offset of the first batch that holds an
// offset >= minOffset and whose MaxTimestamp is >= ts, and whether there is
// one. The time index narrows the scan: an entry (T, o) with T < ts says
// no batch up to the one at o qualifies.
func (s *Segment) OffsetForTime(ts, minOffset int64) (int64, bool, error) {
	if s.maxTs.Load() < ts || s.next.Load() <= minOffset {
		return 0, false, nil
	}
	from := max(s.base, minOffset)
	if i := s.tidx.belowTime(ts); i >= 0 {
		_, rel := s.tidx.timeAt(i)
		from = max(from, s.base+int64(rel))
	}
	c, err := s.Locate(from)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	data := c.m.data[:c.size]
	for p := c.pos; p < c.size; {
		n, base, last, maxTs, ok := peek(data[p:])
		if !ok {
			return 0, false, fmt.Errorf("segment: no batch at byte %d: %w", p, engine.ErrCorrupt)
		}
		if last >= from && maxTs >= ts {
			return base, true, nil
		}
		p += n
	}
	return 0, false, nil
}
