package tiered

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/strata-broker/strata/engine"
)

// DeleteBefore implements engine.Log. With cold segments, the manifest
// records the new start and drops the segments wholly below it first (so
// the start is durable), then their objects go; the hot log raises its
// start too when to reaches it.
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if err := l.writable("delete from"); err != nil {
		return err
	}
	if to <= l.start.Load() {
		return nil
	}
	l.gen.Add(1)
	cs := l.cold.Load()
	if len(cs.segs) > 0 {
		k := sort.Search(len(cs.segs), func(i int) bool { return cs.segs[i].last >= to })
		next := &coldState{start: to, segs: cs.segs[k:]}
		if k == len(cs.segs) {
			next.start = 0
		}
		// Readers see the new start before the objects go.
		l.start.Store(to)
		if err := l.commit("delete from", next); err != nil {
			return err
		}
		l.deleteObjects(ctx, cs.segs[:k])
	}
	if hs, _ := l.hot.Offsets(); to > hs {
		if err := l.hot.DeleteBefore(ctx, to); err != nil {
			return err
		}
	}
	l.start.Store(to)
	return nil
}

// Truncate implements engine.Log. Within the hot tier the hot log
// truncates. Into the cold tier, in crash order: the batches of the cold
// segment holding to that stay go to a new object; the hot log restarts
// empty at the new end (a crash now leaves the old cold tier with no hot
// part after it, a prefix of the log); the manifest lists the new cold
// tier; the objects that left it are deleted.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if err := l.writable("truncate"); err != nil {
		return err
	}
	start, end := l.Offsets()
	if to < start {
		return fmt.Errorf("tiered: truncate %s to %d below start %d: %w", l.tp, to, start, engine.ErrOffsetOutOfRange)
	}
	if to >= end {
		return nil
	}
	l.gen.Add(1)
	cs := l.cold.Load()
	if to >= cs.end() {
		if err := l.hot.Truncate(ctx, to); err != nil {
			return err
		}
		if hs, _ := l.hot.Offsets(); hs < l.start.Load() {
			l.start.Store(hs) // to fell in the batch holding start
		}
		return nil
	}

	k := sort.Search(len(cs.segs), func(i int) bool { return cs.segs[i].last >= to })
	s := cs.segs[k]
	keep, newEnd, err := l.prefixBefore(ctx, s, to)
	if err != nil {
		return fmt.Errorf("tiered: truncate %s: %w", l.tp, err)
	}
	newStart := min(start, newEnd)
	next := &coldState{start: newStart, segs: append([]*coldSeg(nil), cs.segs[:k]...)}
	var fresh *coldSeg
	if len(keep) > 0 && newEnd > newStart {
		if fresh, err = l.put(ctx, keep, nil); err != nil {
			return fmt.Errorf("tiered: truncate %s: %w", l.tp, err)
		}
		next.segs = append(next.segs, fresh)
	}
	// Segments wholly below the start go too (to fell in the batch
	// holding start: the log becomes empty at newEnd).
	for len(next.segs) > 0 && next.segs[0].last < newStart {
		next.segs = next.segs[1:]
	}
	if len(next.segs) == 0 {
		next.start = 0
	}
	if err := l.hot.Reset(ctx, newEnd); err != nil {
		if fresh != nil {
			l.deleteObjects(ctx, []*coldSeg{fresh})
		}
		return err
	}
	if err := l.commit("truncate", next); err != nil {
		return err
	}
	l.start.Store(newStart)
	var gone []*coldSeg
	for _, c := range cs.segs {
		if !containsSeg(next.segs, c) {
			gone = append(gone, c)
		}
	}
	l.deleteObjects(ctx, gone)
	return nil
}

func containsSeg(segs []*coldSeg, s *coldSeg) bool {
	for _, x := range segs {
		if x == s {
			return true
		}
	}
	return false
}

// prefixBefore returns the batches of s that hold only offsets < to, and
// the base offset of the batch holding to, which s holds.
func (l *Log) prefixBefore(ctx context.Context, s *coldSeg, to int64) ([]byte, int64, error) {
	idx, err := l.index(ctx, s)
	if err != nil {
		return nil, 0, err
	}
	j := findFrame(idx, to)
	var keep bytes.Buffer
	for i := 0; i <= j; i++ {
		data, err := l.frame(ctx, s, idx, i)
		if err != nil {
			return nil, 0, err
		}
		if i < j {
			keep.Write(data)
			continue
		}
		for p := 0; p < len(data); {
			h, err := engine.ParseBatchHeader(data[p:])
			if err != nil {
				return nil, 0, fmt.Errorf("%w: %s: %w", errCorrupt, s.name, err)
			}
			if h.LastOffset() >= to {
				return keep.Bytes(), h.BaseOffset, nil
			}
			keep.Write(data[p : p+h.Size()])
			p += h.Size()
		}
	}
	return nil, 0, fmt.Errorf("%w: %s: no batch holding %d", errCorrupt, s.name, to)
}
