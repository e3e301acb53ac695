package mmap

import (
	"context"
	"fmt"
	"slices"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/segment"
)

// Truncate implements engine.Log. In crash order: the recovery point drops
// to the base of the segment holding to (so a crash midway makes recovery
// validate it rather than trust it), the later segments are removed from
// the last one back (a crash leaves a prefix of the log), the segment is
// cut and its indexes trimmed, and the cut and the removals are synced
// before Truncate returns.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writable("truncate"); err != nil {
		return err
	}
	start, end := l.start.Load(), l.end.Load()
	if to < start {
		return fmt.Errorf("mmap: truncate %s to %d below start %d: %w", l.tp, to, start, engine.ErrOffsetOutOfRange)
	}
	if to >= end {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	k := l.index(to)
	s := l.segs[k]
	if err := l.lowerRecoveryPoint(s.Base()); err != nil {
		return fmt.Errorf("mmap: truncate %s: %w", l.tp, err)
	}

	// From here on a failure leaves the log somewhere between its old and
	// new state: fail it, and let reopening sort the files out.
	l.mu.Lock()
	for i := len(l.segs) - 1; i > k; i-- {
		if err := l.segs[i].Remove(); err != nil {
			l.segs = l.segs[:i]
			l.mu.Unlock()
			return l.fail("truncate", err)
		}
	}
	l.segs = l.segs[:k+1]
	// s is now last: its durability is seen to below, not by the flusher.
	l.pending = slices.DeleteFunc(l.pending, func(p *segment.Segment) bool { return p.Base() >= s.Base() })
	newEnd, err := s.TruncateTo(to)
	if err == nil {
		l.end.Store(newEnd)
		// Truncating into the batch that holds start empties the log at
		// that batch's base (as engines/mem): start follows it down.
		if newEnd < start {
			l.start.Store(newEnd)
		}
	}
	l.mu.Unlock()
	if err != nil {
		return l.fail("truncate", err)
	}
	if err := s.Sync(); err != nil {
		return l.fail("truncate", err)
	}
	if err := l.e.opts.FS.SyncDir(l.dir); err != nil {
		return l.fail("truncate", err)
	}
	if newEnd < start {
		if err := writeCheckpoint(l.e.opts.FS, l.dir, logStartFile, newEnd); err != nil {
			return l.fail("truncate", err)
		}
	}
	l.activeBorn = l.e.opts.Now().UnixNano()
	return nil
}

// index returns the position in segs of the segment holding off, which is
// in [start, end). Called by the appender, which owns segs.
func (l *Log) index(off int64) int {
	i, found := slices.BinarySearchFunc(l.segs, off, func(s *segment.Segment, off int64) int {
		switch {
		case s.Base() < off:
			return -1
		case s.Base() > off:
			return 1
		}
		return 0
	})
	if found {
		return i
	}
	return max(i-1, 0)
}

// DeleteBefore implements engine.Log. The new start offset is checkpointed
// first, so it is durable when DeleteBefore returns and a crash midway
// leaves nothing readable below it; segments wholly below it are then
// removed (a removal that fails is logged and retried by the next open,
// which drops segments below the start).
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writable("delete from"); err != nil {
		return err
	}
	start, end := l.start.Load(), l.end.Load()
	if to <= start {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := writeCheckpoint(l.e.opts.FS, l.dir, logStartFile, to); err != nil {
		return fmt.Errorf("mmap: delete from %s: %w", l.tp, err)
	}

	var removed []*segment.Segment
	if to >= end {
		// Nothing stays readable: the log restarts empty at to, in a
		// fresh segment (or in the last one, if it is empty and there
		// already; no other segment can start at to).
		var fresh *segment.Segment
		if last := l.active(); last.Base() == to {
			fresh = last
		} else {
			var err error
			if fresh, err = segment.Create(&l.cfg, to); err != nil {
				// The checkpoint says to, memory says otherwise.
				return l.fail("delete from", err)
			}
		}
		l.mu.Lock()
		for _, s := range l.segs {
			if s != fresh {
				removed = append(removed, s)
			}
		}
		l.segs = []*segment.Segment{fresh}
		l.pending = nil
		l.start.Store(to)
		l.end.Store(to)
		l.mu.Unlock()
		// Nothing below to is left to recover; the old recovery point
		// (<= the old end < to) keeps the fresh segment validated.
		l.activeBorn = l.e.opts.Now().UnixNano()
	} else {
		l.mu.Lock()
		k := 0
		for k < len(l.segs)-1 && l.segs[k].End() <= to {
			k++
		}
		removed = slices.Clone(l.segs[:k])
		l.segs = slices.Clone(l.segs[k:])
		l.pending = slices.DeleteFunc(l.pending, func(p *segment.Segment) bool { return p.End() <= to })
		l.start.Store(to)
		l.mu.Unlock()
	}
	for _, s := range removed {
		if err := s.Remove(); err != nil {
			l.logger.Warn("removing a segment below the start offset", "base", s.Base(), "err", err)
		}
	}
	return nil
}

// Reset empties the log and restarts it at offset to, which may lie below
// StartOffset or anywhere else (unlike DeleteBefore, which only raises the
// start): both offsets become to and the next Append must start there. An
// engine that keeps the part of a log below to elsewhere (engines/tiered,
// after a Truncate into its cold tier) uses it. The segments are removed
// from the last one back, so a crash midway leaves a prefix of the log;
// the new start is durable when Reset returns.
func (l *Log) Reset(ctx context.Context, to int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writable("reset"); err != nil {
		return err
	}
	if to < 0 {
		return fmt.Errorf("mmap: reset %s to %d: %w", l.tp, to, engine.ErrOffsetOutOfRange)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.lowerRecoveryPoint(to); err != nil {
		return fmt.Errorf("mmap: reset %s: %w", l.tp, err)
	}
	// keep is the segment the log restarts in: one already at to, cut
	// empty, or a new one made before anything is removed, so that
	// readers never find the list of segments empty.
	var keep *segment.Segment
	l.mu.Lock()
	if k := slices.IndexFunc(l.segs, func(s *segment.Segment) bool { return s.Base() == to }); k >= 0 {
		keep = l.segs[k]
		if _, err := keep.TruncateTo(to); err != nil {
			l.mu.Unlock()
			return l.fail("reset", err)
		}
	}
	l.mu.Unlock()
	if keep == nil {
		var err error
		if keep, err = segment.Create(&l.cfg, to); err != nil {
			return l.fail("reset", err)
		}
	}
	l.mu.Lock()
	var rerr error
	for i := len(l.segs) - 1; i >= 0; i-- {
		if s := l.segs[i]; s != keep {
			if rerr == nil {
				rerr = s.Remove()
			} else {
				s.Close() // reopening removes what is left
			}
		}
	}
	l.segs = append(l.segs[:0], keep)
	l.pending = nil
	l.start.Store(to)
	l.end.Store(to)
	l.mu.Unlock()
	if rerr != nil {
		return l.fail("reset", rerr)
	}
	l.activeBorn = l.e.opts.Now().UnixNano()
	if err := writeCheckpoint(l.e.opts.FS, l.dir, logStartFile, to); err != nil {
		return l.fail("reset", err)
	}
	if err := l.e.opts.FS.SyncDir(l.dir); err != nil {
		return l.fail("reset", err)
	}
	return nil
}
