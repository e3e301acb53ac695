package tiered

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/mmap"
)

// Log is the log of one topic-partition: cold segments (objects listed in
// the manifest) followed by the hot mmap log. The cold segments hold
// [start, coldEnd) and the hot log [coldEnd, end); with no cold segment,
// the hot log holds the whole log.
type Log struct {
	e      *Engine
	tp     engine.TopicPartition
	opts   engine.LogOptions
	hot    *mmap.Log
	logger *slog.Logger

	opMu sync.Mutex

	cold   atomic.Pointer[coldState] // replaced whole under opMu
	start  atomic.Int64              // the log's start offset (written under opMu)
	gen    atomic.Int64              // bumped by every Truncate and DeleteBefore (under opMu)
	ready  atomic.Bool               // OpenLog finished: the uploader may look at it
	closed atomic.Bool
	failed atomic.Bool // a manifest write failed: refuse writes until reopened
}

// coldState is an immutable snapshot of the cold tier of a log.
type coldState struct {
	start int64 // as in manifest
	segs  []*coldSeg
}

// end returns the offset after the last cold segment, or -1 with none.
func (c *coldState) end() int64 {
	if len(c.segs) == 0 {
		return -1
	}
	return c.segs[len(c.segs)-1].last + 1
}

func (c *coldState) manifest() manifest {
	m := manifest{start: c.start}
	for _, s := range c.segs {
		m.segs = append(m.segs, s.coldSegment)
	}
	return m
}

// coldSeg is a cold segment with its frame index, read on first use.
type coldSeg struct {
	coldSegment
	name string

	mu  sync.Mutex
	idx []frameEntry
}

func (l *Log) dir() string { return filepath.Join(l.e.dir, l.tp.String()) }

// recover reconciles the manifest, the cold store and the hot log after
// OpenLog (the procedure is in doc.go). opMu held.
func (l *Log) recover(ctx context.Context) error {
	m, err := readManifest(l.e.opts.FS, l.dir())
	if err != nil {
		return err
	}
	objs, err := l.e.cold.List(ctx, l.tp.String()+"/")
	if err != nil {
		return err
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Name] = o.Size
	}
	cs := &coldState{start: m.start}
	for _, c := range m.segs {
		name := objectName(l.tp, c)
		size, ok := sizes[name]
		if !ok || size != c.size {
			return fmt.Errorf("%w: cold object %s of the manifest (%d bytes) missing or %d bytes", errCorrupt, name, c.size, size)
		}
		delete(sizes, name)
		cs.segs = append(cs.segs, &coldSeg{coldSegment: c, name: name})
	}
	// Objects not in the manifest: an upload or truncation a crash cut
	// short before (or a deletion after) its manifest write.
	for name := range sizes {
		if err := l.e.cold.Delete(ctx, name); err != nil {
			return err
		}
	}
	hs, _ := l.hot.Offsets()
	if coldEnd := cs.end(); coldEnd >= 0 {
		if hs < coldEnd {
			// Hot copies of segments already cold: a crash came
			// between the manifest write and their removal.
			if err := l.hot.DeleteBefore(ctx, coldEnd); err != nil {
				return err
			}
			hs, _ = l.hot.Offsets()
		}
		if hs != coldEnd {
			return fmt.Errorf("%w: the cold tier ends at %d, the hot tier starts at %d", errCorrupt, coldEnd, hs)
		}
		l.start.Store(m.start)
	} else {
		l.start.Store(hs)
	}
	l.cold.Store(cs)
	return nil
}

// writable returns the error a write to the log gets, if any.
func (l *Log) writable(op string) error {
	switch {
	case l.closed.Load():
		return fmt.Errorf("tiered: %s %s: %w", op, l.tp, engine.ErrClosed)
	case l.failed.Load() || l.hot.Failed():
		return fmt.Errorf("tiered: %s %s: %w", op, l.tp, engine.ErrLogFailed)
	}
	return nil
}

// commit writes the manifest of cs and publishes it. A failed write fails
// the log: the file may hold the old manifest or the new one. opMu held.
func (l *Log) commit(op string, cs *coldState) error {
	if err := writeManifest(l.e.opts.FS, l.dir(), cs.manifest()); err != nil {
		l.failed.Store(true)
		l.logger.Error("log failed; refusing writes until reopened", "op", op, "err", err)
		return fmt.Errorf("tiered: %s %s: %w: %w", op, l.tp, engine.ErrLogFailed, err)
	}
	l.cold.Store(cs)
	return nil
}

// deleteObjects removes the objects of segments that left the manifest; one
// that fails stays an orphan, which the next open removes.
func (l *Log) deleteObjects(ctx context.Context, segs []*coldSeg) {
	for _, s := range segs {
		if err := l.e.cold.Delete(ctx, s.name); err != nil {
			l.logger.Warn("removing a cold object", "object", s.name, "err", err)
		}
		l.e.cache.dropObject(s.name)
	}
}

// Append implements engine.Log: the hot log takes it.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	if l.failed.Load() {
		return fmt.Errorf("tiered: append to %s: %w", l.tp, engine.ErrLogFailed)
	}
	return l.hot.Append(ctx, meta, batch)
}

// Offsets implements engine.Log.
func (l *Log) Offsets() (start, end int64) {
	_, end = l.hot.Offsets()
	return l.start.Load(), end
}

// Sync implements engine.Log: cold data is durable once listed.
func (l *Log) Sync(ctx context.Context) error {
	if l.failed.Load() {
		return fmt.Errorf("tiered: sync %s: %w", l.tp, engine.ErrLogFailed)
	}
	return l.hot.Sync(ctx)
}

// Read implements engine.Log. Offsets below the hot tier's start are read
// from the cold segment holding them, one frame at most per call. An upload
// may move the hot segment holding from meanwhile; the read then retries
// in the cold tier.
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	for attempt := 0; ; attempt++ {
		if l.closed.Load() {
			return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s: %w", l.tp, engine.ErrClosed)
		}
		start, end := l.Offsets()
		if from < start || from > end {
			return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s at %d, log holds [%d, %d): %w", l.tp, from, start, end, engine.ErrOffsetOutOfRange)
		}
		if from == end {
			return engine.Records{NextOffset: from}, nil
		}
		cs := l.cold.Load()
		if len(cs.segs) > 0 && from < cs.segs[0].base {
			// A DeleteBefore dropped it after start was loaded.
			return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s at %d, log starts above it: %w", l.tp, from, engine.ErrOffsetOutOfRange)
		}
		if from < cs.end() {
			recs, err := l.readCold(ctx, cs, from, maxBytes)
			if err != nil && errors.Is(err, fs.ErrNotExist) && attempt < 3 {
				continue // deleted by a DeleteBefore or Truncate meanwhile
			}
			return recs, err
		}
		recs, err := l.hot.Read(ctx, from, maxBytes)
		if err != nil && errors.Is(err, engine.ErrOffsetOutOfRange) && attempt < 3 {
			continue // moved to the cold tier meanwhile
		}
		return recs, err
	}
}

// readCold reads from the frame holding from: the batch holding it and
// the next ones of the frame within maxBytes.
func (l *Log) readCold(ctx context.Context, cs *coldState, from int64, maxBytes int) (engine.Records, error) {
	s := cs.segs[sort.Search(len(cs.segs), func(i int) bool { return cs.segs[i].last >= from })]
	idx, err := l.index(ctx, s)
	if err != nil {
		return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s at %d: %w", l.tp, from, err)
	}
	data, err := l.frame(ctx, s, idx, findFrame(idx, from))
	if err != nil {
		return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s at %d: %w", l.tp, from, err)
	}
	p, first, next := 0, -1, from
	for p < len(data) {
		h, err := engine.ParseBatchHeader(data[p:])
		if err != nil {
			return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s at %d: %w: %w", l.tp, from, errCorrupt, err)
		}
		n := h.Size()
		switch {
		case first < 0 && h.LastOffset() < from:
		case first < 0:
			first = p
		case p-first+n > maxBytes:
			return engine.Records{Chunks: [][]byte{data[first:p:p]}, NextOffset: next}, nil
		}
		if first >= 0 {
			next = h.LastOffset() + 1
		}
		p += n
	}
	if first < 0 {
		return engine.Records{NextOffset: from}, fmt.Errorf("tiered: read %s: no batch holding %d in %s: %w", l.tp, from, s.name, errCorrupt)
	}
	return engine.Records{Chunks: [][]byte{data[first:p:p]}, NextOffset: next}, nil
}

// index returns s's frame index, reading it from the cold store on first
// use.
func (l *Log) index(ctx context.Context, s *coldSeg) ([]frameEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idx != nil {
		return s.idx, nil
	}
	tail, err := l.e.cold.GetRange(ctx, s.name, s.size-footerSize, footerSize)
	if err != nil {
		return nil, err
	}
	f, err := parseFooter(tail, s.size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	b, err := l.e.cold.GetRange(ctx, s.name, f.indexPos, int64(f.frames)*frameEntrySize)
	if err != nil {
		return nil, err
	}
	idx, err := parseIndex(b, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	if idx[0].first != s.base || idx[len(idx)-1].last != s.last {
		return nil, fmt.Errorf("%w: %s holds [%d, %d], the manifest says [%d, %d]", errCorrupt, s.name, idx[0].first, idx[len(idx)-1].last, s.base, s.last)
	}
	s.idx = idx
	return idx, nil
}

// frame returns frame i of s decompressed, from the cache or the store.
func (l *Log) frame(ctx context.Context, s *coldSeg, idx []frameEntry, i int) ([]byte, error) {
	k := frameKey{object: s.name, frame: i}
	if data, ok := l.e.cache.get(k); ok {
		return data, nil
	}
	e := idx[i]
	comp, err := l.e.cold.GetRange(ctx, s.name, e.pos, int64(e.clen))
	if err != nil {
		return nil, err
	}
	data, err := decodeFrame(e, comp, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	l.e.cache.put(k, data)
	return data, nil
}

// OffsetForTime implements engine.Log: cold segments and frames whose max
// timestamp is below ts are skipped whole, then the hot log answers. If an
// upload moved a segment meanwhile, it asks again.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	for attempt := 0; ; attempt++ {
		if l.closed.Load() {
			return 0, fmt.Errorf("tiered: offset for time %s: %w", l.tp, engine.ErrClosed)
		}
		start := l.start.Load()
		cs := l.cold.Load()
		off, ok, err := l.coldOffsetForTime(ctx, cs, ts, start)
		if err != nil && errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue // deleted by a DeleteBefore or Truncate meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("tiered: offset for time %s: %w", l.tp, err)
		}
		if ok {
			return max(off, start), nil
		}
		off, err = l.hot.OffsetForTime(ctx, ts)
		if err != nil {
			return 0, err
		}
		if hs, _ := l.hot.Offsets(); hs > max(cs.end(), start) && attempt < 3 {
			continue // segments moved to the cold tier since cs was taken
		}
		return max(off, start), nil
	}
}

// coldOffsetForTime answers OffsetForTime from the cold segments of cs, if
// one holds a batch at or past start whose max timestamp is >= ts.
func (l *Log) coldOffsetForTime(ctx context.Context, cs *coldState, ts, start int64) (int64, bool, error) {
	for _, s := range cs.segs {
		if s.last < start || s.maxTs < ts {
			continue
		}
		off, ok, err := l.segOffsetForTime(ctx, s, ts, start)
		if err != nil || ok {
			return off, ok, err
		}
	}
	return 0, false, nil
}

func (l *Log) segOffsetForTime(ctx context.Context, s *coldSeg, ts, start int64) (int64, bool, error) {
	idx, err := l.index(ctx, s)
	if err != nil {
		return 0, false, err
	}
	for i, e := range idx {
		if e.last < start || e.maxTs < ts {
			continue
		}
		data, err := l.frame(ctx, s, idx, i)
		if err != nil {
			return 0, false, err
		}
		for p := 0; p < len(data); {
			h, err := engine.ParseBatchHeader(data[p:])
			if err != nil {
				return 0, false, fmt.Errorf("%w: %s: %w", errCorrupt, s.name, err)
			}
			if h.LastOffset() >= start && h.MaxTimestamp >= ts {
				return h.BaseOffset, true, nil
			}
			p += h.Size()
		}
	}
	return 0, false, nil
}

// Size implements engine.Sizer: the hot segment files and the cold
// objects.
func (l *Log) Size() int64 {
	n := l.hot.Size()
	if cs := l.cold.Load(); cs != nil {
		for _, s := range cs.segs {
			n += s.size
		}
	}
	return n
}

// Close implements engine.Log.
func (l *Log) Close() error {
	err := l.close()
	l.e.forget(l)
	return err
}

func (l *Log) close() error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	if l.hot == nil {
		return nil
	}
	if err := l.hot.Close(); err != nil {
		return fmt.Errorf("tiered: close %s: %w", l.tp, err)
	}
	return nil
}
