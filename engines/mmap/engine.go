package mmap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/flushloop"
)

func init() {
	engine.Register("mmap", func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return Open(ctx, dir, opts)
	})
}

var (
	_ engine.Engine = (*Engine)(nil)
	_ engine.Log    = (*Log)(nil)
	_ engine.Sizer  = (*Log)(nil)
)

// Lock order, outermost first. A goroutine holding one of these may take
// only those below it:
//
//	Engine.mu      the set of open logs, the closed flag
//	Log.appendMu   serialises Append, Truncate, DeleteBefore, Close; owns the active segment
//	Log.syncMu     serialises syncs and checkpoint writes; no segment file is closed without it
//	Log.mu         (RWMutex) the segment list; readers hold it shared to find a segment
//	Segment.mapMu  lazy mapping of a sealed segment (engines/segment)
//	segment's live registry of mappings (engines/segment)
//
// Log.Close takes Engine.mu only after releasing its own locks, to leave
// the engine's list; the background flusher takes a snapshot of the list
// under Engine.mu and syncs logs after dropping it.

// Engine is the mmap engine: one directory per partition log under its
// directory, each a sequence of memory-mapped segment files (see the
// package documentation for the format). It is safe for concurrent use.
type Engine struct {
	dir  string
	opts engine.Options
	log  *slog.Logger

	mu     sync.Mutex
	logs   map[engine.TopicPartition]*Log
	closed bool

	kick chan struct{} // wakes the flusher: a log rolled or opened
	stop chan struct{}
	done chan struct{}
}

// Open opens (creating if needed) the mmap engine whose logs live under
// dir. It fills defaults into opts and validates them, as engine.Open does.
func Open(ctx context.Context, dir string, opts engine.Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := validate(opts.Log); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if err := opts.FS.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	e := &Engine{
		dir:  abs,
		opts: opts,
		log:  opts.Logger.With("engine", "mmap", "dir", abs),
		logs: map[engine.TopicPartition]*Log{},
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	// A DeleteLog interrupted by a crash leaves its renamed directory.
	entries, err := opts.FS.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	for _, ent := range entries {
		if strings.HasSuffix(ent.Name(), deletedSuffix) {
			if err := opts.FS.RemoveAll(filepath.Join(abs, ent.Name())); err != nil {
				e.log.Warn("removing a deleted log's leftovers", "name", ent.Name(), "err", err)
			}
		}
	}
	go e.flushLoop()
	return e, nil
}

// validate checks log options beyond engine.LogOptions.Validate: positions
// in the offset index are u32, and Kafka caps segment.bytes at int32 too.
func validate(o engine.LogOptions) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	if o.SegmentBytes > math.MaxInt32 {
		return fmt.Errorf("mmap: %w: segment.bytes=%d: must be <= %d", engine.ErrInvalidOptions, o.SegmentBytes, math.MaxInt32)
	}
	return nil
}

// closeParallelism is how many logs Engine.Close closes at once.
const closeParallelism = 16

// deletedSuffix marks a partition directory that DeleteLog is removing; a
// name with it never parses as a partition ("t-0.deleted").
const deletedSuffix = ".deleted"

// dirName is the directory of tp's log: "<topic>-<partition>", as Kafka.
func dirName(tp engine.TopicPartition) string {
	return tp.Topic + "-" + strconv.FormatInt(int64(tp.Partition), 10)
}

// parseDirName reverses dirName, accepting only canonical names.
func parseDirName(name string) (engine.TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return engine.TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != name[i+1:] || !legalTopic(name[:i]) {
		return engine.TopicPartition{}, false
	}
	return engine.TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// legalTopic reports whether t is a legal Kafka topic name, which also
// makes it a safe directory name.
func legalTopic(t string) bool {
	if len(t) == 0 || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkTP(tp engine.TopicPartition) error {
	if !legalTopic(tp.Topic) || tp.Partition < 0 {
		return fmt.Errorf("mmap: %q partition %d: not a legal Kafka topic-partition", tp.Topic, tp.Partition)
	}
	return nil
}

// OpenLog implements engine.Engine. Recovery runs outside Engine.mu, so
// logs open in parallel; the log is listed (and so refuses a second
// OpenLog) from the start, with its appendMu held until it is ready.
func (e *Engine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	if err := checkTP(tp); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults(e.opts.Log)
	if err := validate(opts); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("mmap: open %s: %w", tp, engine.ErrClosed)
	}
	if _, ok := e.logs[tp]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("mmap: open %s: %w", tp, engine.ErrLogOpen)
	}
	l := newLog(e, tp, opts)
	l.appendMu.Lock()
	e.logs[tp] = l
	e.mu.Unlock()

	err := l.recover(ctx)
	if err != nil {
		l.closed.Store(true)
	} else {
		l.opened.Store(true)
	}
	l.appendMu.Unlock()
	if err != nil {
		e.forget(l)
		return nil, err
	}
	e.poke() // the flusher may need to run more often for this log
	return l, nil
}

// forget removes l from the open logs if it is still listed.
func (e *Engine) forget(l *Log) {
	e.mu.Lock()
	if e.logs[l.tp] == l {
		delete(e.logs, l.tp)
	}
	e.mu.Unlock()
}

// Logs implements engine.Engine: the partition directories.
func (e *Engine) Logs(ctx context.Context) ([]engine.TopicPartition, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("mmap: logs: %w", engine.ErrClosed)
	}
	entries, err := e.opts.FS.ReadDir(e.dir)
	if err != nil {
		return nil, fmt.Errorf("mmap: logs: %w", err)
	}
	var tps []engine.TopicPartition
	for _, ent := range entries {
		if tp, ok := parseDirName(ent.Name()); ok && ent.IsDir() {
			tps = append(tps, tp)
		}
	}
	return tps, nil
}

// DeleteLog implements engine.Engine. The directory is first renamed out
// of the way, so that a crash mid-removal leaves nothing that looks like a
// log (Open removes the leftovers).
func (e *Engine) DeleteLog(ctx context.Context, tp engine.TopicPartition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("mmap: delete %s: %w", tp, engine.ErrClosed)
	}
	if checkTP(tp) != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, engine.ErrLogNotFound)
	}
	if l := e.logs[tp]; l != nil {
		delete(e.logs, tp)
		if err := l.close(false); err != nil {
			e.log.Warn("closing a log to delete it", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		}
	}
	dir := filepath.Join(e.dir, dirName(tp))
	if _, err := e.opts.FS.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mmap: delete %s: %w", tp, engine.ErrLogNotFound)
	} else if err != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, err)
	}
	trash := dir + deletedSuffix
	if err := e.opts.FS.RemoveAll(trash); err != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, err)
	}
	if err := e.opts.FS.Rename(dir, trash); err != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, err)
	}
	if err := e.opts.FS.SyncDir(e.dir); err != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, err)
	}
	if err := e.opts.FS.RemoveAll(trash); err != nil {
		return fmt.Errorf("mmap: delete %s: %w", tp, err)
	}
	return nil
}

// Close implements engine.Engine: it stops the flusher, then closes (and
// syncs) every open log.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	logs := make([]*Log, 0, len(e.logs))
	for _, l := range e.logs {
		logs = append(logs, l)
	}
	e.mu.Unlock()

	close(e.stop)
	<-e.done
	// Closing a log waits for a handful of fsyncs: close several at once,
	// so that a broker with thousands of partitions shuts down in the time
	// of a fraction of them.
	errs := make([]error, len(logs))
	sem := make(chan struct{}, closeParallelism)
	var wg sync.WaitGroup
	for i, l := range logs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = l.close(true)
		})
	}
	wg.Wait()
	e.mu.Lock()
	clear(e.logs)
	e.mu.Unlock()
	return errors.Join(errs...)
}

// poke wakes the flusher without blocking.
func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) snapshot() []*Log {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := make([]*Log, 0, len(e.logs))
	for _, l := range e.logs {
		logs = append(logs, l)
	}
	return logs
}

// flushLoop is the engine's background flusher. It syncs a log when its
// oldest unsynced append is older than the log's flush.ms, or when a roll
// left sealed segments to sync (so that the recovery point moves on even
// without a flush policy, as Kafka flushes a rolled segment in the
// background). Ages are measured with Options.Now; the wake-up period is a
// quarter of the shortest flush.ms, between 1ms and 1s.
func (e *Engine) flushLoop() {
	defer close(e.done)
	flushloop.Run(e.stop, e.kick, e.opts.Now, e.snapshot,
		func(l *Log) time.Duration { return l.opts.FlushInterval },
		func(l *Log, now int64) {
			if !l.flushDue(now) {
				return
			}
			if err := l.sync(); err != nil && !errors.Is(err, engine.ErrClosed) {
				l.logger.Error("background flush failed", "err", err)
			}
		})
}
