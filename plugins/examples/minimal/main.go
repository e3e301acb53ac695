// Command minimal is a complete Strata engine plugin: an in-memory engine,
// short enough to read in one sitting, served with plugins.Serve. Copy it
// to start a plugin of your own.
//
// The logs live in this process's memory, per directory, so they outlive
// Engine.Close (a reopen in the same process finds them) but not the
// process: the host kills the plugin when it closes the engine, and a
// fresh plugin starts empty. A real plugin keeps its state under dir.
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins"
)

func main() { plugins.Serve(Open) }

// stored is one appended batch; its bytes are never modified, so reads
// hand them out without a Pin.
type stored struct {
	meta engine.BatchMeta
	data []byte
}

// logData is the state of one log, kept in its volume across reopens.
type logData struct {
	batches    []stored
	start, end int64
	failed     bool // a write failed; cleared by the next OpenLog
	open       *Log
}

// volume is the state kept under one dir. Its mutex guards everything of
// its engine and logs.
type volume struct {
	mu   sync.Mutex
	logs map[engine.TopicPartition]*logData
}

var (
	volumesMu sync.Mutex
	volumes   = map[string]*volume{}
)

// Engine is the minimal engine.
type Engine struct {
	v      *volume
	closed bool // guarded by v.mu
	fail   atomic.Bool
}

var errFault = errors.New("minimal: injected write failure")

// Open opens the engine whose logs are kept under dir.
func Open(_ context.Context, dir string, _ engine.Options) (engine.Engine, error) {
	volumesMu.Lock()
	defer volumesMu.Unlock()
	v := volumes[dir]
	if v == nil {
		v = &volume{logs: map[engine.TopicPartition]*logData{}}
		volumes[dir] = v
	}
	return &Engine{v: v}, nil
}

// SetFailWrites makes every write fail while on (a test hook that
// plugins.Engine.SetFailWrites reaches).
func (e *Engine) SetFailWrites(on bool) { e.fail.Store(on) }

func (e *Engine) OpenLog(_ context.Context, tp engine.TopicPartition, _ engine.LogOptions) (engine.Log, error) {
	e.v.mu.Lock()
	defer e.v.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("minimal: %w", engine.ErrClosed)
	}
	d := e.v.logs[tp]
	if d == nil {
		d = &logData{}
		e.v.logs[tp] = d
	}
	if d.open != nil {
		return nil, fmt.Errorf("minimal: %s: %w", tp, engine.ErrLogOpen)
	}
	d.failed = false
	d.open = &Log{e: e, d: d}
	return d.open, nil
}

func (e *Engine) Logs(context.Context) ([]engine.TopicPartition, error) {
	e.v.mu.Lock()
	defer e.v.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("minimal: %w", engine.ErrClosed)
	}
	var tps []engine.TopicPartition
	for tp := range e.v.logs {
		tps = append(tps, tp)
	}
	return tps, nil
}

func (e *Engine) DeleteLog(_ context.Context, tp engine.TopicPartition) error {
	e.v.mu.Lock()
	defer e.v.mu.Unlock()
	if e.closed {
		return fmt.Errorf("minimal: %w", engine.ErrClosed)
	}
	d := e.v.logs[tp]
	if d == nil {
		return fmt.Errorf("minimal: %s: %w", tp, engine.ErrLogNotFound)
	}
	if d.open != nil {
		d.open.closed = true
	}
	delete(e.v.logs, tp)
	return nil
}

func (e *Engine) Close() error {
	e.v.mu.Lock()
	defer e.v.mu.Unlock()
	e.closed = true
	for _, d := range e.v.logs {
		if d.open != nil {
			d.open.closed = true
			d.open = nil
		}
	}
	return nil
}

// Log is a log of the minimal engine.
type Log struct {
	e      *Engine
	d      *logData
	closed bool // guarded by e.v.mu
}

// lock locks the volume and checks the log is usable (and, for writes, not
// failed).
func (l *Log) lock(write bool) error {
	l.e.v.mu.Lock()
	switch {
	case l.closed:
		return fmt.Errorf("minimal: %w", engine.ErrClosed)
	case write && l.d.failed:
		return fmt.Errorf("minimal: %w", engine.ErrLogFailed)
	}
	return nil
}

func (l *Log) unlock() { l.e.v.mu.Unlock() }

// first returns the index of the first batch holding an offset >= off.
func (l *Log) first(off int64) int {
	b := l.d.batches
	return sort.Search(len(b), func(i int) bool { return b[i].meta.LastOffset >= off })
}

func (l *Log) Append(_ context.Context, meta engine.BatchMeta, batch []byte) error {
	defer l.unlock()
	if err := l.lock(true); err != nil {
		return err
	}
	if meta.BaseOffset != l.d.end {
		return fmt.Errorf("minimal: base offset %d, log ends at %d: %w", meta.BaseOffset, l.d.end, engine.ErrNonContiguous)
	}
	if err := engine.CheckAppend(meta, batch); err != nil {
		return fmt.Errorf("minimal: %w", err)
	}
	if l.e.fail.Load() {
		l.d.failed = true
		return fmt.Errorf("minimal: %w: %w", engine.ErrLogFailed, errFault)
	}
	l.d.batches = append(l.d.batches, stored{meta, append([]byte(nil), batch...)})
	l.d.end = meta.LastOffset + 1
	return nil
}

func (l *Log) Read(_ context.Context, from int64, maxBytes int) (engine.Records, error) {
	defer l.unlock()
	if err := l.lock(false); err != nil {
		return engine.Records{}, err
	}
	if from < l.d.start || from > l.d.end {
		return engine.Records{}, fmt.Errorf("minimal: read at %d of [%d, %d): %w", from, l.d.start, l.d.end, engine.ErrOffsetOutOfRange)
	}
	recs := engine.Records{NextOffset: from}
	size := 0
	for _, b := range l.d.batches[l.first(from):] {
		if len(recs.Chunks) > 0 && size+len(b.data) > maxBytes {
			break
		}
		recs.Chunks = append(recs.Chunks, b.data)
		recs.NextOffset = b.meta.LastOffset + 1
		size += len(b.data)
	}
	return recs, nil
}

func (l *Log) Offsets() (start, end int64) {
	l.e.v.mu.Lock()
	defer l.e.v.mu.Unlock()
	return l.d.start, l.d.end
}

func (l *Log) Truncate(_ context.Context, to int64) error {
	defer l.unlock()
	if err := l.lock(true); err != nil {
		return err
	}
	if to < l.d.start {
		return fmt.Errorf("minimal: truncate to %d below start %d: %w", to, l.d.start, engine.ErrOffsetOutOfRange)
	}
	if to >= l.d.end {
		return nil
	}
	i := l.first(to)
	l.d.end = l.d.batches[i].meta.BaseOffset
	l.d.start = min(l.d.start, l.d.end)
	l.d.batches = l.d.batches[:i:i] // later appends must not reuse the array
	return nil
}

func (l *Log) DeleteBefore(_ context.Context, to int64) error {
	defer l.unlock()
	if err := l.lock(true); err != nil {
		return err
	}
	switch {
	case to <= l.d.start:
	case to > l.d.end:
		l.d.batches, l.d.start, l.d.end = nil, to, to
	default:
		l.d.batches = l.d.batches[l.first(to):]
		l.d.start = to
	}
	return nil
}

func (l *Log) OffsetForTime(_ context.Context, ts int64) (int64, error) {
	defer l.unlock()
	if err := l.lock(false); err != nil {
		return 0, err
	}
	for _, b := range l.d.batches[l.first(l.d.start):] {
		if b.meta.MaxTimestamp >= ts {
			return max(b.meta.BaseOffset, l.d.start), nil
		}
	}
	return l.d.end, nil
}

func (l *Log) Sync(context.Context) error {
	defer l.unlock()
	if err := l.lock(false); err != nil {
		return err
	}
	if l.e.fail.Load() {
		l.d.failed = true
		return fmt.Errorf("minimal: sync: %w: %w", engine.ErrLogFailed, errFault)
	}
	return nil
}

func (l *Log) Close() error {
	l.e.v.mu.Lock()
	defer l.e.v.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.d.open = nil
	}
	return nil
}
