// Package mem is the reference engine: the contract of package engine in
// its simplest form, kept in memory. It is the baseline the other engines'
// tests and benchmarks compare with, and the place to learn the contract
// from; nothing in it is tuned.
//
// # Volumes
//
// Nothing touches the disk. What a file-based engine keeps under its
// directory, mem keeps in a volume: a process-wide in-memory store keyed by
// the directory string (cleaned with filepath.Clean). A volume lives as long
// as the process, so closing an engine and opening one on the same dir
// string finds every log as it was; every engine opened on that dir string
// shares the volume, one open engine per dir at a time.
//
// # Durability, modelled
//
// Each log in a volume is a list of batches, each a private copy of the
// bytes handed to Append and never modified afterwards, plus how far the log
// is synced. Sync and Close move the synced point to the end. Nothing in mem
// loses data except [TearTail], which damages the last batch the way a crash
// mid-append would and rolls the synced point back before it; so a flush
// policy (flush.messages, flush.ms) would change nothing observable, and mem
// validates those options but does not act on them.
//
// OpenLog recovers the log as a file engine would: it validates every batch
// (engine.CheckBatch, agreement with its metadata, contiguous offsets) and
// cuts the log at the first invalid one, which is an error
// (engine.ErrCorrupt) only if that batch had been synced.
//
// # Write faults
//
// [Engine.SetFailWrites] makes every write fail as a dying disk would, so
// the conformance suite can check the sticky-error behaviour.
package mem

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

func init() {
	engine.Register("mem", func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return Open(ctx, dir, opts)
	})
}

var (
	_ engine.Engine = (*Engine)(nil)
	_ engine.Log    = (*memLog)(nil)
	_ engine.Sizer  = (*memLog)(nil)
)

// Lock order: Engine.mu, then volume.mu, then state.mu; volumes.mu comes
// before volume.mu and is never held with Engine.mu.
var volumes = struct {
	mu sync.Mutex
	m  map[string]*volume
}{m: map[string]*volume{}}

// volume is what a directory would hold.
type volume struct {
	mu    sync.Mutex // guards the fields below
	logs  map[engine.TopicPartition]*state
	inUse bool // an engine is open on the volume
}

// state is one log's stored state, which outlives the handles opened on it.
type state struct {
	mu      sync.RWMutex // guards the fields below and the handles' fields
	batches []stored     // in offset order, contiguous
	start   int64
	end     int64
	synced  int64 // batches that end below synced are durable
}

type stored struct {
	meta engine.BatchMeta
	// data is never modified once stored, so Read hands it out as it is.
	data []byte
}

// errFault is what writes fail with while SetFailWrites is on.
var errFault = errors.New("mem: injected write fault")

// Engine is an engine whose logs live in a process-wide in-memory volume.
type Engine struct {
	vol  *volume
	opts engine.Options
	fail atomic.Bool

	mu     sync.Mutex // guards open and closed
	open   map[engine.TopicPartition]*memLog
	closed bool
}

// Open opens the engine of the volume named dir, creating the volume if the
// process has none by that name. It fails if an engine is open on dir.
func Open(_ context.Context, dir string, opts engine.Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	volumes.mu.Lock()
	defer volumes.mu.Unlock()
	v := volumes.m[dir]
	if v == nil {
		v = &volume{logs: map[engine.TopicPartition]*state{}}
		volumes.m[dir] = v
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inUse {
		return nil, fmt.Errorf("mem: %s: an engine is already open on this volume", dir)
	}
	v.inUse = true
	return &Engine{vol: v, opts: opts, open: map[engine.TopicPartition]*memLog{}}, nil
}

// SetFailWrites is a fault-injection hook for tests. While on, every write
// of every log of e (Append, Sync, Truncate, DeleteBefore) fails as a
// failing disk would, which fails the log (engine.ErrLogFailed) until it is
// reopened. A new engine on the same volume starts with it off.
func (e *Engine) SetFailWrites(on bool) { e.fail.Store(on) }

// OpenLog implements engine.Engine. It recovers the log's stored state.
func (e *Engine) OpenLog(_ context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	opts = opts.WithDefaults(e.opts.Log)
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("mem: %s: %w", tp, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("mem: open %s: %w", tp, engine.ErrClosed)
	}
	if e.open[tp] != nil {
		return nil, fmt.Errorf("mem: open %s: %w", tp, engine.ErrLogOpen)
	}
	e.vol.mu.Lock()
	st := e.vol.logs[tp]
	if st == nil {
		st = &state{}
		e.vol.logs[tp] = st
	}
	e.vol.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.recover(); err != nil {
		return nil, fmt.Errorf("mem: open %s: %w", tp, err)
	}
	l := &memLog{e: e, tp: tp, st: st}
	e.open[tp] = l
	return l, nil
}

// Logs implements engine.Engine.
func (e *Engine) Logs(context.Context) ([]engine.TopicPartition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("mem: logs: %w", engine.ErrClosed)
	}
	e.vol.mu.Lock()
	defer e.vol.mu.Unlock()
	tps := make([]engine.TopicPartition, 0, len(e.vol.logs))
	for tp := range e.vol.logs {
		tps = append(tps, tp)
	}
	return tps, nil
}

// DeleteLog implements engine.Engine. Records read from the log stay valid:
// they hold the batch slices, which the garbage collector keeps alive.
func (e *Engine) DeleteLog(_ context.Context, tp engine.TopicPartition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("mem: delete %s: %w", tp, engine.ErrClosed)
	}
	if l := e.open[tp]; l != nil {
		l.closeLocked(false)
	}
	e.vol.mu.Lock()
	defer e.vol.mu.Unlock()
	if e.vol.logs[tp] == nil {
		return fmt.Errorf("mem: delete %s: %w", tp, engine.ErrLogNotFound)
	}
	delete(e.vol.logs, tp)
	return nil
}

// Close implements engine.Engine: it closes (and so syncs) every open log
// and frees the volume for the next engine.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	for _, l := range e.open {
		l.closeLocked(true)
	}
	e.closed = true
	e.vol.mu.Lock()
	e.vol.inUse = false
	e.vol.mu.Unlock()
	return nil
}

// recover validates the stored batches and cuts the log at the first
// invalid one, as a file engine cuts a torn tail.
func (st *state) recover() error {
	for i, b := range st.batches {
		err := validate(b)
		if err == nil && i > 0 && b.meta.BaseOffset != st.batches[i-1].meta.LastOffset+1 {
			err = fmt.Errorf("batch at %d follows one ending at %d", b.meta.BaseOffset, st.batches[i-1].meta.LastOffset)
		}
		if err == nil {
			continue
		}
		if b.meta.LastOffset < st.synced {
			return fmt.Errorf("%w: synced batch at %d: %v", engine.ErrCorrupt, b.meta.BaseOffset, err)
		}
		clear(st.batches[i:]) // let the collector have the cut batches
		st.batches = st.batches[:i]
		// A cut that reaches below start (into the batch holding it)
		// leaves an empty log at start.
		st.end = max(b.meta.BaseOffset, st.start)
		break
	}
	return nil
}

// validate checks that a stored batch is whole, intact and the one its
// metadata describes.
func validate(b stored) error {
	h, err := engine.CheckBatch(b.data)
	switch {
	case err != nil:
		return err
	case h.Size() != len(b.data):
		return fmt.Errorf("%d bytes after a %d-byte batch", len(b.data)-h.Size(), h.Size())
	case h.BaseOffset != b.meta.BaseOffset || h.LastOffset() != b.meta.LastOffset:
		return fmt.Errorf("header holds [%d, %d], metadata [%d, %d]", h.BaseOffset, h.LastOffset(), b.meta.BaseOffset, b.meta.LastOffset)
	}
	return nil
}

// find returns the index of the first batch ending at or after off.
func (st *state) find(off int64) int {
	return sort.Search(len(st.batches), func(i int) bool { return st.batches[i].meta.LastOffset >= off })
}

// TearTail damages the stored log of tp in the volume dir as a crash in the
// middle of its last Append would: the last batch's bytes become
// tear(copy of the bytes), and the synced point moves back before it. It is
// the enginetest.Harness.TearTail of mem; no engine may be open on dir.
func TearTail(dir string, tp engine.TopicPartition, tear func(last []byte) []byte) error {
	volumes.mu.Lock()
	defer volumes.mu.Unlock()
	v := volumes.m[filepath.Clean(dir)]
	if v == nil {
		return fmt.Errorf("mem: tear %s: no volume %s: %w", tp, dir, engine.ErrLogNotFound)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inUse {
		return fmt.Errorf("mem: tear %s: an engine is open on %s", tp, dir)
	}
	st := v.logs[tp]
	if st == nil {
		return fmt.Errorf("mem: tear %s: %w", tp, engine.ErrLogNotFound)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.batches) == 0 {
		return fmt.Errorf("mem: tear %s: the log holds no batch", tp)
	}
	last := &st.batches[len(st.batches)-1]
	// Stored bytes are never modified (Records may still hold them):
	// tear works on a copy, and its result is copied again in case tear
	// kept a reference.
	last.data = clone(tear(clone(last.data)))
	st.synced = min(st.synced, last.meta.BaseOffset)
	return nil
}

// clone copies b into a slice of exactly its length, so a reader that
// appends to a chunk it was given cannot write into a neighbour.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// memLog is a handle on an open log. Its fields below st are guarded by
// st.mu, so the appender and readers agree on them.
type memLog struct {
	e  *Engine
	tp engine.TopicPartition
	st *state

	closed    bool
	failed    error // the write fault that failed the log, if any
	lastStart int64 // Offsets after Close
	lastEnd   int64
}

// check returns the error a write gets before it touches anything: ErrClosed,
// ErrLogFailed if the log failed earlier, or ErrLogFailed (failing the log)
// if writes fail now. st.mu must be held.
func (l *memLog) check(op string) error {
	switch {
	case l.closed:
		return fmt.Errorf("mem: %s %s: %w", op, l.tp, engine.ErrClosed)
	case l.failed != nil:
		return fmt.Errorf("mem: %s %s: %w: %w", op, l.tp, engine.ErrLogFailed, l.failed)
	case l.e.fail.Load():
		l.failed = errFault
		return fmt.Errorf("mem: %s %s: %w: %w", op, l.tp, engine.ErrLogFailed, l.failed)
	}
	return nil
}

// Append implements engine.Log. It stores a copy of batch.
func (l *memLog) Append(_ context.Context, meta engine.BatchMeta, batch []byte) error {
	st := l.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := l.check("append to"); err != nil {
		return err
	}
	if meta.BaseOffset != st.end {
		return fmt.Errorf("mem: append to %s: base offset %d, end %d: %w", l.tp, meta.BaseOffset, st.end, engine.ErrNonContiguous)
	}
	if err := engine.CheckAppend(meta, batch); err != nil {
		return fmt.Errorf("mem: append to %s: %w", l.tp, err)
	}
	st.batches = append(st.batches, stored{meta: meta, data: clone(batch)})
	st.end = meta.LastOffset + 1
	return nil
}

// Read implements engine.Log. Chunks are the stored batch slices
// themselves, one batch per chunk. Pin is nil: the slices are never
// modified after Append stored them, and Truncate, DeleteBefore, DeleteLog
// and Close only drop references to them, so the garbage collector keeps
// them valid for as long as the caller holds them.
func (l *memLog) Read(_ context.Context, from int64, maxBytes int) (engine.Records, error) {
	st := l.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	if l.closed {
		return engine.Records{NextOffset: from}, fmt.Errorf("mem: read %s: %w", l.tp, engine.ErrClosed)
	}
	if from < st.start || from > st.end {
		return engine.Records{NextOffset: from}, fmt.Errorf("mem: read %s at %d, log holds [%d, %d): %w", l.tp, from, st.start, st.end, engine.ErrOffsetOutOfRange)
	}
	recs := engine.Records{NextOffset: from}
	size := 0
	for _, b := range st.batches[st.find(from):] {
		if len(recs.Chunks) > 0 && size+len(b.data) > maxBytes {
			break
		}
		recs.Chunks = append(recs.Chunks, b.data)
		size += len(b.data)
		recs.NextOffset = b.meta.LastOffset + 1
	}
	return recs, nil
}

// Offsets implements engine.Log.
func (l *memLog) Offsets() (start, end int64) {
	l.st.mu.RLock()
	defer l.st.mu.RUnlock()
	if l.closed {
		return l.lastStart, l.lastEnd
	}
	return l.st.start, l.st.end
}

// Truncate implements engine.Log.
func (l *memLog) Truncate(_ context.Context, to int64) error {
	st := l.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := l.check("truncate"); err != nil {
		return err
	}
	if to < st.start {
		return fmt.Errorf("mem: truncate %s to %d below start %d: %w", l.tp, to, st.start, engine.ErrOffsetOutOfRange)
	}
	if to >= st.end {
		return nil
	}
	i := st.find(to)
	st.end = st.batches[i].meta.BaseOffset
	// Truncating into the batch that holds start empties the log at that
	// batch's base, where a follower resumes fetching from its leader.
	st.start = min(st.start, st.end)
	st.synced = min(st.synced, st.end)
	clear(st.batches[i:])
	st.batches = st.batches[:i]
	return nil
}

// DeleteBefore implements engine.Log. Its unit of storage is the batch:
// batches ending below to are dropped.
func (l *memLog) DeleteBefore(_ context.Context, to int64) error {
	st := l.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := l.check("delete from"); err != nil {
		return err
	}
	if to <= st.start {
		return nil
	}
	if to > st.end {
		st.end, st.synced = to, to
	}
	st.start = to
	// A new slice, so the dropped batches' array can be collected.
	st.batches = append([]stored(nil), st.batches[st.find(to):]...)
	return nil
}

// OffsetForTime implements engine.Log with a scan: the reference engine
// keeps no time index.
func (l *memLog) OffsetForTime(_ context.Context, ts int64) (int64, error) {
	st := l.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	if l.closed {
		return 0, fmt.Errorf("mem: offset for time %s: %w", l.tp, engine.ErrClosed)
	}
	for _, b := range st.batches[st.find(st.start):] {
		if b.meta.MaxTimestamp >= ts {
			return max(b.meta.BaseOffset, st.start), nil
		}
	}
	return st.end, nil
}

// Sync implements engine.Log.
func (l *memLog) Sync(context.Context) error {
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	if err := l.check("sync"); err != nil {
		return err
	}
	l.st.synced = l.st.end
	return nil
}

// Size implements engine.Sizer: the bytes of the batches held.
func (l *memLog) Size() int64 {
	l.st.mu.RLock()
	defer l.st.mu.RUnlock()
	var n int64
	for _, b := range l.st.batches {
		n += int64(len(b.data))
	}
	return n
}

// Close implements engine.Log.
func (l *memLog) Close() error {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	l.closeLocked(true)
	return nil
}

// closeLocked closes l, syncing it first if sync is set and the log has
// not failed (a failed log's unsynced tail is for recovery to judge).
// e.mu must be held.
func (l *memLog) closeLocked(sync bool) {
	if l.e.open[l.tp] == l {
		delete(l.e.open, l.tp)
	}
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	if l.closed {
		return
	}
	if sync && l.failed == nil {
		l.st.synced = l.st.end
	}
	l.closed = true
	l.lastStart, l.lastEnd = l.st.start, l.st.end
}
