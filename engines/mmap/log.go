package mmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/segment"
)

// Log is the log of one topic-partition: a directory of segments. See the
// lock order beside Engine.
type Log struct {
	e      *Engine
	tp     engine.TopicPartition
	dir    string
	opts   engine.LogOptions
	cfg    segment.Config
	logger *slog.Logger

	appendMu sync.Mutex
	syncMu   sync.Mutex
	mu       sync.RWMutex

	// segs holds the segments in offset order; the last one takes appends
	// (activated on the first append if it was loaded or truncated
	// sealed). Written under appendMu and mu, so the appender reads it
	// without mu. pending (mu) are sealed segments whose files are not
	// yet synced: sealed by a roll, or validated by recovery. A pending
	// segment stays sealed until it leaves pending, so the flusher can
	// sync it without the appender's lock.
	segs    []*segment.Segment
	pending []*segment.Segment

	// rp is the recovery point last checkpointed (syncMu): every segment
	// that ends at or below it is sealed and synced.
	rp int64

	activeBorn int64 // appendMu: Now (unix ns) at the active segment's first batch

	start, end atomic.Int64
	opened     atomic.Bool // recovery done
	closed     atomic.Bool
	failed     atomic.Bool  // a write failed: refuse writes until reopened
	unsynced   atomic.Int64 // records appended since the last sync began
	dirtySince atomic.Int64 // Now (unix ns) of the oldest unsynced append, 0 if none
	rolled     atomic.Bool  // a roll left segments in pending
	dirsDirty  atomic.Bool  // files or the log's directory were created since the last sync
}

func newLog(e *Engine, tp engine.TopicPartition, opts engine.LogOptions) *Log {
	dir := filepath.Join(e.dir, dirName(tp))
	return &Log{
		e:    e,
		tp:   tp,
		dir:  dir,
		opts: opts,
		cfg: segment.Config{
			FS:            e.opts.FS,
			Dir:           dir,
			SegmentBytes:  opts.SegmentBytes,
			IndexBytes:    int(opts.SegmentIndexBytes),
			IndexInterval: int64(opts.IndexIntervalBytes),
		},
		logger: e.log.With("topic", tp.Topic, "partition", tp.Partition),
		rp:     math.MinInt64,
	}
}

func (l *Log) active() *segment.Segment { return l.segs[len(l.segs)-1] }

// writable returns the error a write to the log gets, if any. Called with
// appendMu held.
func (l *Log) writable(op string) error {
	switch {
	case l.closed.Load():
		return fmt.Errorf("mmap: %s %s: %w", op, l.tp, engine.ErrClosed)
	case l.failed.Load():
		return fmt.Errorf("mmap: %s %s: %w", op, l.tp, engine.ErrLogFailed)
	}
	return nil
}

// fail makes the log refuse writes until reopened and returns err wrapped
// with ErrLogFailed.
func (l *Log) fail(op string, err error) error {
	l.failed.Store(true)
	l.logger.Error("log failed; refusing writes until reopened", "op", op, "err", err)
	return fmt.Errorf("mmap: %s %s: %w: %w", op, l.tp, engine.ErrLogFailed, err)
}

// Append implements engine.Log. The hot path takes one uncontended mutex,
// writes the batch with one WriteAt and updates a few atomics and
// memory-mapped index entries; it does not allocate.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	if err := engine.CheckAppend(meta, batch); err != nil {
		return fmt.Errorf("mmap: append to %s: %w", l.tp, err)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writable("append to"); err != nil {
		return err
	}
	if end := l.end.Load(); meta.BaseOffset != end {
		return fmt.Errorf("mmap: append to %s at offset %d, log ends at %d: %w", l.tp, meta.BaseOffset, end, engine.ErrNonContiguous)
	}
	now := l.e.opts.Now().UnixNano()
	s := l.active()
	if size := s.Size(); size > 0 && (size+int64(len(batch)) > l.opts.SegmentBytes ||
		now-l.activeBorn >= int64(l.opts.SegmentMs) ||
		(s.Active() && s.IndexFull()) ||
		meta.LastOffset-s.Base() > math.MaxInt32) {
		if err := l.roll(meta.BaseOffset); err != nil {
			return l.fail("roll", err)
		}
		s = l.active()
	} else if !s.Active() {
		if err := l.activate(s); err != nil {
			return l.fail("activate the last segment of", err)
		}
	}
	if s.Size() == 0 {
		l.activeBorn = now
	}
	if err := s.Append(meta, batch); err != nil {
		return l.fail("append to", err)
	}
	l.end.Store(meta.LastOffset + 1)
	if l.dirtySince.Load() == 0 {
		l.dirtySince.CompareAndSwap(0, max(now, 1)) // 0 means clean
	}
	if l.unsynced.Add(max(int64(meta.RecordCount), 1)) >= l.opts.FlushMessages {
		return l.sync()
	}
	return nil
}

// roll seals the active segment and starts a new one at base. The sealed
// segment is synced in the background (the flusher), after which the
// recovery point moves past it.
func (l *Log) roll(base int64) error {
	ns, err := segment.Create(&l.cfg, base)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.active()
	if err := old.Seal(); err != nil {
		l.mu.Unlock()
		ns.Remove()
		return err
	}
	l.segs = append(l.segs, ns)
	if !slices.Contains(l.pending, old) { // validated by recovery, never activated
		l.pending = append(l.pending, old)
	}
	l.mu.Unlock()
	l.rolled.Store(true)
	l.dirsDirty.Store(true)
	l.e.poke()
	return nil
}

// activate makes the sealed last segment s take appends. Its index files
// are about to be preallocated, a form recovery does not trust, so the
// recovery point must first drop to its base. syncMu is held throughout,
// and s leaves pending (where recovery may have put it): the flusher only
// ever syncs sealed segments, and the active one's durability is Sync's.
func (l *Log) activate(s *segment.Segment) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.lowerRecoveryPoint(s.Base()); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = slices.DeleteFunc(l.pending, func(p *segment.Segment) bool { return p == s })
	return s.Activate()
}

// lowerRecoveryPoint checkpoints rp = off if it is higher. syncMu held.
func (l *Log) lowerRecoveryPoint(off int64) error {
	if l.rp <= off {
		return nil
	}
	return l.setRecoveryPoint(off)
}

// setRecoveryPoint checkpoints rp = off. syncMu held.
func (l *Log) setRecoveryPoint(off int64) error {
	if err := writeCheckpoint(l.e.opts.FS, l.dir, recoveryPointFile, off); err != nil {
		return err
	}
	l.rp = off
	return nil
}

// Read implements engine.Log. The batches come back as one slice of the
// segment's mapping, pinned by a reference; the log's lock is held only to
// find the segment and its index entry, not while the batch headers are
// scanned.
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return engine.Records{NextOffset: from}, fmt.Errorf("mmap: read %s: %w", l.tp, engine.ErrClosed)
	}
	start, end := l.start.Load(), l.end.Load()
	if from < start || from > end {
		l.mu.RUnlock()
		return engine.Records{NextOffset: from}, fmt.Errorf("mmap: read %s at %d, log holds [%d, %d): %w", l.tp, from, start, end, engine.ErrOffsetOutOfRange)
	}
	if from == end {
		l.mu.RUnlock()
		return engine.Records{NextOffset: from}, nil
	}
	c, err := l.segmentFor(from).Locate(from)
	l.mu.RUnlock()
	if err != nil {
		return engine.Records{NextOffset: from}, fmt.Errorf("mmap: read %s at %d: %w", l.tp, from, err)
	}
	recs, err := c.Read(from, end, maxBytes)
	if err != nil {
		return recs, fmt.Errorf("mmap: read %s at %d: %w", l.tp, from, err)
	}
	return recs, nil
}

// segmentFor returns the segment holding offset off, which is in
// [start, end). mu held.
func (l *Log) segmentFor(off int64) *segment.Segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].Base() > off })
	return l.segs[max(i-1, 0)]
}

// Offsets implements engine.Log.
func (l *Log) Offsets() (start, end int64) { return l.start.Load(), l.end.Load() }

// OffsetForTime implements engine.Log. Segments whose max timestamp is
// below ts are skipped whole; in the first one that qualifies the time
// index narrows the scan. When the answer is a batch that begins below
// StartOffset (DeleteBefore cut inside it), it returns StartOffset, as
// Kafka does, so that the offset can be read.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return 0, fmt.Errorf("mmap: offset for time %s: %w", l.tp, engine.ErrClosed)
	}
	start := l.start.Load()
	for _, s := range l.segs {
		off, ok, err := s.OffsetForTime(ts, start)
		if err != nil {
			return 0, fmt.Errorf("mmap: offset for time %s: %w", l.tp, err)
		}
		if ok {
			return max(off, start), nil
		}
	}
	return l.end.Load(), nil
}

// Sync implements engine.Log.
func (l *Log) Sync(ctx context.Context) error { return l.sync() }

// sync makes everything appended before the call durable: the segments a
// roll sealed (log and index files) and their directory entries, then the
// active segment's log file. Once sealed segments are synced, the recovery
// point moves to the active segment's base. A failed sync fails the log:
// after a failed fsync the kernel may have dropped the dirty pages, so
// nothing appended since the last good sync can be counted on.
func (l *Log) sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.writable("sync"); err != nil {
		return err
	}
	// Clear the triggers before looking at what to sync: an append that
	// lands meanwhile sets them again, at worst causing one more sync.
	l.dirtySince.Store(0)
	l.unsynced.Store(0)
	l.rolled.Store(false)
	l.mu.RLock()
	pending := append([]*segment.Segment(nil), l.pending...)
	active := l.active()
	l.mu.RUnlock()

	for _, s := range pending {
		if err := s.Sync(); err != nil {
			return l.fail("sync", err)
		}
	}
	if l.dirsDirty.Swap(false) {
		// New segment files, or the log's new directory, must be
		// findable after a crash.
		if err := l.syncDirs(); err != nil {
			return l.fail("sync", err)
		}
	}
	if err := active.SyncLog(); err != nil {
		return l.fail("sync", err)
	}
	if len(pending) > 0 {
		if err := l.setRecoveryPoint(active.Base()); err != nil {
			return l.fail("sync", err)
		}
		l.mu.Lock()
		l.pending = append(l.pending[:0:0], l.pending[len(pending):]...)
		l.mu.Unlock()
	}
	return nil
}

// flushDue reports whether the flusher should sync the log at now.
func (l *Log) flushDue(now int64) bool {
	if !l.opened.Load() || l.closed.Load() || l.failed.Load() {
		return false
	}
	if l.rolled.Load() {
		return true
	}
	d := l.dirtySince.Load()
	return d != 0 && now-d >= int64(l.opts.FlushInterval)
}

// Close implements engine.Log.
func (l *Log) Close() error {
	err := l.close(true)
	l.e.forget(l)
	return err
}

// close closes the log; with clean it first seals the last segment, syncs
// everything and checkpoints the recovery point at the end offset, so the
// next open trusts every segment. A failed log skips that: what it wrote
// last may be torn, and recovery must look.
func (l *Log) close(clean bool) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var err error
	if clean && l.opened.Load() && !l.failed.Load() {
		err = l.shutdown()
	}
	l.mu.Lock()
	l.closed.Store(true)
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.Close())
	}
	l.segs, l.pending = nil, nil
	l.mu.Unlock()
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		return fmt.Errorf("mmap: close %s: %w", l.tp, err)
	}
	return nil
}

// shutdown is the clean part of close. appendMu and syncMu held.
func (l *Log) shutdown() error {
	l.mu.Lock()
	err := l.active().Seal()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	for _, s := range append(l.pending, l.active()) {
		if err := s.Sync(); err != nil {
			return err
		}
	}
	dirty := l.dirsDirty.Swap(false)
	if dirty {
		if err := l.syncParent(); err != nil {
			return err
		}
	}
	if end := l.end.Load(); l.rp != end {
		return l.setRecoveryPoint(end) // syncs the log's directory too
	}
	if dirty {
		return l.e.opts.FS.SyncDir(l.dir)
	}
	return nil
}

// syncDirs makes the entries of the log's directory, and its own entry in
// the engine's directory, durable.
func (l *Log) syncDirs() error {
	if err := l.e.opts.FS.SyncDir(l.dir); err != nil {
		return err
	}
	return l.syncParent()
}

func (l *Log) syncParent() error { return l.e.opts.FS.SyncDir(l.e.dir) }

// Size implements engine.Sizer: the bytes of the log's segment files, with
// index files counted by their entries in use (an active segment's index
// files are preallocated, but sparse).
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.DiskSize()
	}
	return n
}

// SegmentInfo describes one segment of a Log, for an engine that builds on
// mmap logs (engines/tiered moves sealed segments to its cold tier).
type SegmentInfo struct {
	// Base is the segment's base offset; End the offset after its last
	// batch (Base if it has none).
	Base, End int64
	// MaxTimestamp is the largest MaxTimestamp of its batches,
	// math.MinInt64 if it has none.
	MaxTimestamp int64
	// Size is the bytes of batches in its log file.
	Size int64
	// Settled: the segment is sealed, its files are synced and it is not
	// the last segment, so it will never change again unless the log is
	// truncated into it.
	Settled bool
}

// Segments describes the log's segments in offset order. The first one may
// begin below StartOffset (DeleteBefore removes whole segments only).
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	infos := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		infos[i] = SegmentInfo{
			Base:         s.Base(),
			End:          s.End(),
			MaxTimestamp: s.MaxTimestamp(),
			Size:         s.Size(),
			Settled:      i < len(l.segs)-1 && !s.Active() && !slices.Contains(l.pending, s),
		}
	}
	return infos
}

// Failed reports whether a write to the log failed, so that it refuses
// writes (ErrLogFailed) until it is closed and opened again.
func (l *Log) Failed() bool { return l.failed.Load() }
