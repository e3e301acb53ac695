package lsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/flushloop"
)

// Name is the name the engine registers under (log.engine=pebble).
const Name = "pebble"

func init() {
	engine.Register(Name, func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return Open(ctx, dir, opts)
	})
}

var (
	_ engine.Engine = (*Engine)(nil)
	_ engine.Log    = (*Log)(nil)
	_ engine.Sizer  = (*Log)(nil)
)

// Lock order, outermost first; a goroutine holding one may take only those
// below it:
//
//	Log.mu       serialises Append, Truncate, DeleteBefore and Close of one log
//	Engine.mu    the catalog, the open logs, the closed flag
//	Engine.dbMu  (RWMutex) held shared around every use of the DB, exclusively to close it
//	Engine.syncMu serialises WAL syncs
//	Log.offMu    (RWMutex) the published offsets
//
// Engine.Close and DeleteLog close logs without taking their Log.mu: they
// mark them closed, and every Log method checks the flag under dbMu.

// Engine is the pebble engine: every log of the engine in one Pebble DB
// (see the package documentation for the key layout). It is safe for
// concurrent use.
type Engine struct {
	dir      string
	opts     engine.Options
	log      *slog.Logger
	settings Settings
	db       *pebble.DB

	dbMu     sync.RWMutex
	dbClosed bool // under dbMu

	// fatal holds the first error Pebble reported as fatal (a failed WAL
	// write or sync, a failed MANIFEST write). From then on every log
	// refuses writes: Pebble's commit pipeline cannot go on after one.
	fatal atomic.Pointer[error]

	// commitSeq counts commits that were not synced; syncedSeq is the
	// highest commitSeq a WAL sync is known to cover.
	commitSeq atomic.Uint64
	syncedSeq atomic.Uint64
	syncMu    sync.Mutex

	mu      sync.Mutex
	catalog map[engine.TopicPartition]uint32
	nextID  uint32
	logs    map[engine.TopicPartition]*Log
	closed  bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// Open opens (creating if needed) the engine whose Pebble DB lives in dir.
// It fills defaults into opts and validates them, including the
// strata.pebble.* keys of opts.Settings.
func Open(ctx context.Context, dir string, opts engine.Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("lsm: %w", err)
	}
	st, err := ParseSettings(opts.Settings)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lsm: %w", err)
	}
	if err := opts.FS.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("lsm: %w", err)
	}
	e := &Engine{
		dir:      abs,
		opts:     opts,
		log:      opts.Logger.With("engine", Name, "dir", abs),
		settings: st,
		catalog:  map[engine.TopicPartition]uint32{},
		nextID:   1,
		logs:     map[engine.TopicPartition]*Log{},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	po := &pebble.Options{
		FS:                 fsAdapter{fs: opts.FS},
		Logger:             pebbleLogger{e},
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { e.log.Error("pebble background error", "err", err) },
		},
	}
	st.apply(po)
	db, err := pebble.Open(abs, po)
	if err != nil {
		return nil, fmt.Errorf("lsm: opening the pebble DB: %w", err)
	}
	e.db = db
	if err := e.loadCatalog(); err != nil {
		db.Close()
		return nil, err
	}
	go e.flushLoop()
	return e, nil
}

// pebbleLogger routes Pebble's logs to the engine's logger. Pebble calls
// Fatalf when its write path fails (it expects the process to exit); the
// engine instead fails every log, which refuse writes until the engine is
// reopened, and keeps serving reads.
type pebbleLogger struct{ e *Engine }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.e.log.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.e.log.Error(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("lsm: pebble: "+format, args...)
	p.e.fatal.CompareAndSwap(nil, &err)
	p.e.log.Error("pebble failed; every log refuses writes until the engine is reopened", "err", err)
}

// fatalErr returns the error that failed the DB, or nil.
func (e *Engine) fatalErr() error {
	if p := e.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// loadCatalog reads the catalog and the next partition id.
func (e *Engine) loadCatalog() error {
	v, closer, err := e.db.Get(nextIDKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("lsm: reading the next partition id: %w", err)
	default:
		if len(v) != 4 {
			closer.Close()
			return fmt.Errorf("lsm: next partition id of %d bytes: %w", len(v), engine.ErrCorrupt)
		}
		e.nextID = binary.BigEndian.Uint32(v)
		closer.Close()
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: catalogLower, UpperBound: catalogUpper})
	if err != nil {
		return fmt.Errorf("lsm: reading the catalog: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		tp, err := parseCatalogKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("lsm: reading the catalog: %w", err)
		}
		if len(v) != 4 {
			return fmt.Errorf("lsm: catalog entry of %s of %d bytes: %w", tp, len(v), engine.ErrCorrupt)
		}
		id := binary.BigEndian.Uint32(v)
		if id == 0 || id >= e.nextID {
			return fmt.Errorf("lsm: catalog entry of %s: id %d, next id %d: %w", tp, id, e.nextID, engine.ErrCorrupt)
		}
		e.catalog[tp] = id
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("lsm: reading the catalog: %w", err)
	}
	return nil
}

// useDB runs f with the DB held open, or returns ErrClosed.
func (e *Engine) useDB(op string, tp engine.TopicPartition, f func(db *pebble.DB) error) error {
	e.dbMu.RLock()
	defer e.dbMu.RUnlock()
	if e.dbClosed {
		return fmt.Errorf("lsm: %s %s: %w", op, tp, engine.ErrClosed)
	}
	return f(e.db)
}

// commit commits b (which it closes), synced if sync. A commit error or a
// fatal error Pebble reported meanwhile is returned; the caller fails the
// log.
func (e *Engine) commit(b *pebble.Batch, sync bool) (uint64, error) {
	defer b.Close()
	if err := e.fatalErr(); err != nil {
		return 0, err
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		return 0, err
	}
	// Pebble reports a failed WAL write through Fatalf and then returns
	// nil from Commit.
	if err := e.fatalErr(); err != nil {
		return 0, err
	}
	return e.commitSeq.Add(1), nil
}

// syncWAL makes every commit up to commit sequence need durable. One WAL
// sync covers every log, so logs syncing together share it.
func (e *Engine) syncWAL(need uint64) error {
	if e.syncedSeq.Load() >= need {
		return nil
	}
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	if e.syncedSeq.Load() >= need {
		return nil
	}
	if err := e.fatalErr(); err != nil {
		return err
	}
	s := e.commitSeq.Load()
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		return err
	}
	if err := e.fatalErr(); err != nil {
		return err
	}
	e.syncedSeq.Store(s)
	return nil
}

// OpenLog implements engine.Engine. A log the catalog does not hold gets
// the next partition id.
func (e *Engine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	if tp.Partition < 0 || len(tp.Topic) == 0 || len(tp.Topic) > 249 {
		return nil, fmt.Errorf("lsm: %q partition %d: not a legal Kafka topic-partition", tp.Topic, tp.Partition)
	}
	for i := 0; i < len(tp.Topic); i++ {
		if tp.Topic[i] == 0 {
			return nil, fmt.Errorf("lsm: %q: not a legal Kafka topic name", tp.Topic)
		}
	}
	opts = opts.WithDefaults(e.opts.Log)
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("lsm: %s: %w", tp, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("lsm: open %s: %w", tp, engine.ErrClosed)
	}
	if _, ok := e.logs[tp]; ok {
		return nil, fmt.Errorf("lsm: open %s: %w", tp, engine.ErrLogOpen)
	}
	l := &Log{e: e, tp: tp, opts: opts}
	err := e.useDB("open", tp, func(db *pebble.DB) error {
		id, ok := e.catalog[tp]
		if !ok {
			return e.create(l)
		}
		l.id = id
		return l.recover()
	})
	if err != nil {
		return nil, err
	}
	e.logs[tp] = l
	e.poke()
	return l, nil
}

// create gives l a new partition id and records it in the catalog, with an
// empty log's start record. The commit is not synced: an append that
// survives a crash was committed after it, so it survives too.
func (e *Engine) create(l *Log) error {
	if e.nextID == math.MaxUint32 {
		return fmt.Errorf("lsm: create %s: partition ids exhausted", l.tp)
	}
	if err := e.fatalErr(); err != nil {
		return fmt.Errorf("lsm: create %s: %w: %w", l.tp, engine.ErrLogFailed, err)
	}
	id := e.nextID
	b := e.db.NewBatch()
	b.Set(catalogKey(l.tp), binary.BigEndian.AppendUint32(nil, id), nil)
	b.Set(nextIDKey, binary.BigEndian.AppendUint32(nil, id+1), nil)
	b.Set(startKey(id), encodeStart(0, 0), nil)
	seq, err := e.commit(b, false)
	if err != nil {
		return fmt.Errorf("lsm: create %s: %w", l.tp, err)
	}
	e.nextID = id + 1
	e.catalog[l.tp] = id
	l.id = id
	l.pendingSeq.Store(seq)
	l.dirtySince.Store(max(e.opts.Now().UnixNano(), 1))
	l.runningMax = math.MinInt64
	return nil
}

// Logs implements engine.Engine.
func (e *Engine) Logs(ctx context.Context) ([]engine.TopicPartition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("lsm: logs: %w", engine.ErrClosed)
	}
	tps := make([]engine.TopicPartition, 0, len(e.catalog))
	for tp := range e.catalog {
		tps = append(tps, tp)
	}
	return tps, nil
}

// DeleteLog implements engine.Engine: one synced commit drops the
// catalog entry and every key of the partition (a range deletion); the
// partition id is never handed out again.
func (e *Engine) DeleteLog(ctx context.Context, tp engine.TopicPartition) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("lsm: delete %s: %w", tp, engine.ErrClosed)
	}
	id, ok := e.catalog[tp]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("lsm: delete %s: %w", tp, engine.ErrLogNotFound)
	}
	l := e.logs[tp]
	e.mu.Unlock()
	if l != nil {
		// Waits for an Append in flight; the handle is closed from now
		// on (without a sync: its data is going).
		l.mu.Lock()
		l.closed.Store(true)
		l.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("lsm: delete %s: %w", tp, engine.ErrClosed)
	}
	if e.logs[tp] == l {
		delete(e.logs, tp)
	}
	if e.catalog[tp] != id {
		return fmt.Errorf("lsm: delete %s: %w", tp, engine.ErrLogNotFound)
	}
	return e.useDB("delete", tp, func(db *pebble.DB) error {
		b := db.NewBatch()
		b.Delete(catalogKey(tp), nil)
		b.DeleteRange(partitionPrefix(id), partitionUpper(id), nil)
		if _, err := e.commit(b, true); err != nil {
			return fmt.Errorf("lsm: delete %s: %w", tp, err)
		}
		delete(e.catalog, tp)
		return nil
	})
}

// Close implements engine.Engine: it syncs the WAL once for every log,
// closes them and the DB.
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
	clear(e.logs)
	e.mu.Unlock()
	close(e.stop)
	<-e.done

	var err error
	for _, l := range logs {
		// A log in the middle of an Append finishes it first.
		l.mu.Lock()
		if !l.closed.Load() && !l.failed.Load() {
			if serr := l.sync(); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		l.closed.Store(true)
		l.mu.Unlock()
	}
	e.dbMu.Lock()
	defer e.dbMu.Unlock()
	e.dbClosed = true
	if cerr := e.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("lsm: closing the pebble DB: %w", cerr))
	}
	if ferr := e.fatalErr(); ferr != nil && err == nil {
		err = fmt.Errorf("lsm: %w: %w", engine.ErrLogFailed, ferr)
	}
	return err
}

// forget removes l from the open logs, if it is still there.
func (e *Engine) forget(l *Log) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.logs[l.tp] == l {
		delete(e.logs, l.tp)
	}
}

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

// flushLoop is the engine's background flusher for flush.ms: it syncs the
// WAL once some log's oldest unsynced append is older than that log's
// flush.ms (measured with Options.Now). It wakes every quarter of the
// shortest flush.ms among open logs, between 1ms and 1s.
func (e *Engine) flushLoop() {
	defer close(e.done)
	flushloop.Run(e.stop, e.kick, e.opts.Now, e.snapshot,
		func(l *Log) time.Duration { return l.opts.FlushInterval },
		func(l *Log, now int64) {
			if !l.flushDue(now) {
				return
			}
			if err := l.Sync(context.Background()); err != nil && !errors.Is(err, engine.ErrClosed) {
				e.log.Error("background flush failed", "log", l.tp.String(), "err", err)
			}
		})
}
