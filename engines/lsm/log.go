package lsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-broker/strata/engine"
)

// Log is one partition log: the keys of one partition id in the engine's
// Pebble DB.
type Log struct {
	e    *Engine
	tp   engine.TopicPartition
	id   uint32
	opts engine.LogOptions

	// mu serialises the writers of the log: Append, Truncate,
	// DeleteBefore, Close. The fields below it are the appender's.
	mu sync.Mutex
	// runningMax is the largest max timestamp of the batches from the
	// last time entry (or the start) to the end; with the entries, what
	// the next entry records.
	runningMax int64
	// sinceEntry is the bytes appended since the last time entry.
	sinceEntry int64
	// unsyncedRecords counts records appended since the log was last
	// durable, for flush.messages.
	unsyncedRecords int64
	keyBuf          [offsetKeyLen]byte
	timeKeyBuf      [offsetKeyLen]byte
	timeValBuf      [timeValueLen]byte

	// offMu guards the published state readers use.
	offMu      sync.RWMutex
	start, end int64
	startBytes int64 // bytes the log ever held below the batch holding start
	endBytes   int64 // bytes the log ever held below end

	closed atomic.Bool
	failed atomic.Bool
	// pendingSeq is the commit sequence of the last append not known to
	// be durable (0: none); the log is durable once the engine's
	// syncedSeq reaches it.
	pendingSeq atomic.Uint64
	// dirtySince is when (Options.Now, ns) the log went from durable to
	// holding unsynced appends, for flush.ms.
	dirtySince atomic.Int64
}

// Offsets implements engine.Log.
func (l *Log) Offsets() (start, end int64) {
	l.offMu.RLock()
	defer l.offMu.RUnlock()
	return l.start, l.end
}

// Size implements engine.Sizer: the bytes of the batches the log holds,
// counted as appended. The DB is shared by every log, so its files are
// apportioned by these logical sizes; storage freed by DeleteBefore and
// Truncate leaves the files when Pebble compacts.
func (l *Log) Size() int64 {
	l.offMu.RLock()
	defer l.offMu.RUnlock()
	return l.endBytes - l.startBytes
}

func (l *Log) published() (start, end int64) { return l.Offsets() }

func (l *Log) errClosed(op string) error {
	return fmt.Errorf("lsm: %s %s: %w", op, l.tp, engine.ErrClosed)
}

// writable reports why the log refuses a write, or nil.
func (l *Log) writable(op string) error {
	if l.closed.Load() {
		return l.errClosed(op)
	}
	if l.failed.Load() {
		return fmt.Errorf("lsm: %s %s: %w", op, l.tp, engine.ErrLogFailed)
	}
	return nil
}

// fail fails the log after a write error.
func (l *Log) fail(op string, err error) error {
	l.failed.Store(true)
	l.e.log.Error("log failed", "log", l.tp.String(), "op", op, "err", err)
	return fmt.Errorf("lsm: %s %s: %w: %w", op, l.tp, engine.ErrLogFailed, err)
}

// durable reports whether every append of the log is known durable.
func (l *Log) durable() bool {
	p := l.pendingSeq.Load()
	return p == 0 || p <= l.e.syncedSeq.Load()
}

// recover loads the log's state from the DB: the start record, the last
// batch (which gives the end), and the time index's tail. The caller
// holds the DB open.
func (l *Log) recover() error {
	db := l.e.db
	v, closer, err := db.Get(startKey(l.id))
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("lsm: open %s: no start record: %w", l.tp, engine.ErrCorrupt)
		}
		return fmt.Errorf("lsm: open %s: %w", l.tp, err)
	}
	start, startBytes, err := decodeStart(v)
	closer.Close()
	if err != nil {
		return fmt.Errorf("lsm: open %s: %w", l.tp, err)
	}
	end := start
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: kindLower(l.id, kindData), UpperBound: kindUpper(l.id, kindData)})
	if err != nil {
		return fmt.Errorf("lsm: open %s: %w", l.tp, err)
	}
	if it.First() {
		if first := keyOffset(it.Key()); first > start {
			it.Close()
			return fmt.Errorf("lsm: open %s: first batch at %d, above the start %d: %w", l.tp, first, start, engine.ErrCorrupt)
		}
		it.Last()
		base := keyOffset(it.Key())
		v, err := it.ValueAndErr()
		if err == nil {
			end, err = batchLast(base, v)
			end++
		}
		if err == nil && end <= start {
			err = fmt.Errorf("last batch ends at %d, below the start %d: %w", end, start, engine.ErrCorrupt)
		}
		if err != nil {
			it.Close()
			return fmt.Errorf("lsm: open %s: %w", l.tp, err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("lsm: open %s: %w", l.tp, err)
	}
	l.start, l.end, l.startBytes = start, end, startBytes
	l.runningMax = math.MinInt64
	return l.loadTimeTail(db)
}

// loadTimeTail sets runningMax, sinceEntry and endBytes from the last time
// entry and the batches after it.
func (l *Log) loadTimeTail(db *pebble.DB) error {
	maxTs, bytes, from := int64(math.MinInt64), l.startBytes, int64(0)
	te, at, ok, err := l.lastTimeEntry(db, kindUpper(l.id, kindTime))
	if err != nil {
		return fmt.Errorf("lsm: %s: %w", l.tp, err)
	}
	if ok {
		maxTs, bytes, from = te.maxTs, te.bytes, at+1
	}
	since := int64(0)
	err = l.walk(db, from, l.end, func(base int64, v []byte) bool {
		maxTs = max(maxTs, batchMaxTimestamp(v))
		bytes += int64(len(v))
		since += int64(len(v))
		return true
	})
	if err != nil {
		return fmt.Errorf("lsm: %s: %w", l.tp, err)
	}
	l.runningMax, l.sinceEntry = maxTs, since
	l.offMu.Lock()
	l.endBytes = bytes
	l.offMu.Unlock()
	return nil
}

// lastTimeEntry returns the log's last time entry whose key is below
// upper, and the base offset it is filed under; ok is false when there is
// none.
func (l *Log) lastTimeEntry(db *pebble.DB, upper []byte) (te timeEntry, at int64, ok bool, err error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: kindLower(l.id, kindTime), UpperBound: upper})
	if err != nil {
		return te, 0, false, err
	}
	if it.Last() {
		var v []byte
		if v, err = it.ValueAndErr(); err == nil {
			te, err = decodeTime(v)
		}
		at, ok = keyOffset(it.Key()), err == nil
	}
	if cerr := errors.Join(it.Error(), it.Close()); err == nil {
		err = cerr
	}
	return te, at, ok && err == nil, err
}

// walk calls f with every batch whose base offset is in [from, to), in
// order, until f returns false. The value is valid only during the call;
// its header has been checked.
func (l *Log) walk(db *pebble.DB, from, to int64, f func(base int64, v []byte) bool) error {
	if from >= to {
		return nil
	}
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: offsetKey(nil, l.id, kindData, from),
		UpperBound: offsetKey(nil, l.id, kindData, to),
	})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		base := keyOffset(it.Key())
		v, err := it.ValueAndErr()
		if err == nil {
			_, err = batchLast(base, v)
		}
		if err != nil {
			it.Close()
			return err
		}
		if !f(base, v) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// batchAt returns the base offset of the batch that holds offset o, or
// false if the log holds no batch at or below o.
func (l *Log) batchAt(db *pebble.DB, o int64) (int64, bool, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: kindLower(l.id, kindData),
		UpperBound: kindUpper(l.id, kindData),
	})
	if err != nil {
		return 0, false, err
	}
	var base int64
	ok := it.SeekLT(offsetKey(nil, l.id, kindData, o+1))
	if ok {
		base = keyOffset(it.Key())
	}
	return base, ok, errors.Join(it.Error(), it.Close())
}

// Append implements engine.Log: one Pebble batch holds the data key and,
// every index.interval.bytes, a time index entry; it is committed without
// a WAL sync unless flush.messages says so.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable("append to"); err != nil {
		return err
	}
	if meta.BaseOffset != l.end {
		return fmt.Errorf("lsm: append to %s: batch at %d, log ends at %d: %w", l.tp, meta.BaseOffset, l.end, engine.ErrNonContiguous)
	}
	if err := engine.CheckAppend(meta, batch); err != nil {
		return fmt.Errorf("lsm: append to %s: %w", l.tp, err)
	}
	e := l.e
	n := int64(len(batch))
	maxTs := max(l.runningMax, meta.MaxTimestamp)
	since := l.sinceEntry + n
	entry := since >= int64(l.opts.IndexIntervalBytes)
	wasDurable := l.durable()
	if wasDurable {
		l.unsyncedRecords = 0
	}
	records := l.unsyncedRecords + max(int64(meta.RecordCount), 1)
	sync := records >= l.opts.FlushMessages
	// The hot path holds the DB open itself rather than through useDB,
	// whose closure would escape.
	e.dbMu.RLock()
	if e.dbClosed {
		e.dbMu.RUnlock()
		return l.errClosed("append to")
	}
	b := e.db.NewBatch()
	b.Set(offsetKey(l.keyBuf[:0], l.id, kindData, meta.BaseOffset), batch, nil)
	if entry {
		te := timeEntry{maxTs: maxTs, bytes: l.endBytes + n}
		b.Set(offsetKey(l.timeKeyBuf[:0], l.id, kindTime, meta.BaseOffset), te.appendTo(l.timeValBuf[:0]), nil)
	}
	seq, err := e.commit(b, sync)
	e.dbMu.RUnlock()
	if err != nil {
		if errors.Is(err, engine.ErrClosed) {
			return err
		}
		return l.fail("append to", err)
	}
	if entry {
		since = 0
	}
	l.runningMax, l.sinceEntry = maxTs, since
	l.offMu.Lock()
	l.end = meta.LastOffset + 1
	l.endBytes += n
	l.offMu.Unlock()
	if sync {
		l.unsyncedRecords = 0
		l.pendingSeq.Store(0)
		return nil
	}
	l.unsyncedRecords = records
	if wasDurable {
		l.dirtySince.Store(max(e.opts.Now().UnixNano(), 1))
	}
	l.pendingSeq.Store(seq)
	return nil
}

// Read implements engine.Log. The batches are copied out of Pebble into
// pooled buffers that the Records own until Release.
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	if l.closed.Load() {
		return engine.Records{}, l.errClosed("read")
	}
	start, end := l.published()
	if from < start || from > end {
		return engine.Records{}, fmt.Errorf("lsm: read %s at %d: log holds [%d, %d): %w", l.tp, from, start, end, engine.ErrOffsetOutOfRange)
	}
	if from == end {
		return engine.Records{NextOffset: from}, nil
	}
	p := getPin()
	next := from
	err := l.e.useDB("read", l.tp, func(db *pebble.DB) error {
		if l.closed.Load() {
			return l.errClosed("read")
		}
		p.iterOpts.LowerBound = offsetKey(p.lower[:0], l.id, kindData, 0)
		p.iterOpts.UpperBound = offsetKey(p.upper[:0], l.id, kindData, end)
		it, err := db.NewIter(&p.iterOpts)
		if err != nil {
			return err
		}
		total := 0
		for valid := it.SeekLT(offsetKey(p.seek[:0], l.id, kindData, from+1)); valid; valid = it.Next() {
			base := keyOffset(it.Key())
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return err
			}
			if total > 0 && total+len(v) > maxBytes {
				break
			}
			last, err := batchLast(base, v)
			if err != nil {
				it.Close()
				return err
			}
			if total == 0 && last < from {
				break // truncated meanwhile
			}
			p.add(v, maxBytes-total)
			total += len(v)
			next = last + 1
			if total >= maxBytes {
				break
			}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		if total == 0 {
			// DeleteBefore or Truncate ran since the offsets were read.
			s, e := l.published()
			return fmt.Errorf("lsm: read %s at %d: log holds [%d, %d): %w", l.tp, from, s, e, engine.ErrOffsetOutOfRange)
		}
		return nil
	})
	if err != nil {
		p.Release()
		return engine.Records{}, err
	}
	return engine.Records{Chunks: p.chunks, NextOffset: next, Pin: p}, nil
}

// OffsetForTime implements engine.Log: a binary search of the time index
// finds the last entry whose max timestamp is below ts (no batch up to it
// qualifies), then the batches after it are walked to the first whose
// max timestamp is >= ts.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	if l.closed.Load() {
		return 0, l.errClosed("offset for time of")
	}
	start, end := l.published()
	if start == end {
		return end, nil
	}
	ans := end
	err := l.e.useDB("offset for time of", l.tp, func(db *pebble.DB) error {
		startBase, ok, err := l.batchAt(db, start)
		if err != nil || !ok {
			return err // !ok: emptied meanwhile; end is an answer
		}
		from, err := l.searchTime(db, startBase, end, ts)
		if err != nil {
			return err
		}
		return l.walk(db, from, end, func(base int64, v []byte) bool {
			if batchMaxTimestamp(v) >= ts {
				ans = max(base, start)
				return false
			}
			return true
		})
	})
	if err != nil {
		return 0, fmt.Errorf("lsm: offset for time of %s: %w", l.tp, err)
	}
	return ans, nil
}

// searchTime returns where OffsetForTime(ts) starts walking: the offset of
// the last time entry in [lo, end) with a max timestamp below ts, or lo if
// there is none. Entries' timestamps never fall in offset order, so a
// binary search over offsets finds it with O(log(end-lo)) seeks.
func (l *Log) searchTime(db *pebble.DB, lo, end, ts int64) (int64, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: offsetKey(nil, l.id, kindTime, lo),
		UpperBound: offsetKey(nil, l.id, kindTime, end),
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	key := make([]byte, 0, offsetKeyLen)
	// below(o) reports whether the first entry at or after o has a max
	// timestamp below ts, and its offset.
	below := func(o int64) (int64, bool, error) {
		if !it.SeekGE(offsetKey(key[:0], l.id, kindTime, o)) {
			return 0, false, it.Error()
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, false, err
		}
		te, err := decodeTime(v)
		if err != nil {
			return 0, false, err
		}
		return keyOffset(it.Key()), te.maxTs < ts, nil
	}
	at, ok, err := below(lo)
	if err != nil || !ok {
		return lo, err
	}
	// Invariant: the entry at `at` is below ts; every entry at or after
	// hi is not (or there is none).
	hi := end
	for hi-at > 1 {
		mid := at + (hi-at)/2
		o, ok, err := below(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			at = o
		} else {
			hi = mid
		}
	}
	return at, nil
}

// Truncate implements engine.Log: one synced commit deletes the data and
// time keys from the batch holding to onward (a range deletion), and
// lowers the start if that batch holds it.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable("truncate"); err != nil {
		return err
	}
	start, end := l.start, l.end
	if to < start {
		return fmt.Errorf("lsm: truncate %s to %d: log holds [%d, %d): %w", l.tp, to, start, end, engine.ErrOffsetOutOfRange)
	}
	if to >= end {
		return nil
	}
	err := l.e.useDB("truncate", l.tp, func(db *pebble.DB) error {
		base, ok, err := l.batchAt(db, to)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no batch holds %d of [%d, %d): %w", to, start, end, engine.ErrCorrupt)
		}
		b := db.NewBatch()
		b.DeleteRange(offsetKey(nil, l.id, kindData, base), kindUpper(l.id, kindData), nil)
		b.DeleteRange(offsetKey(nil, l.id, kindTime, base), kindUpper(l.id, kindTime), nil)
		newStart := start
		if base < start {
			// The batch cut by DeleteBefore goes: the log is empty at
			// its base, and the bytes below it are unchanged.
			newStart = base
			b.Set(startKey(l.id), encodeStart(base, l.startBytes), nil)
		}
		if _, err := l.e.commit(b, true); err != nil {
			return err
		}
		l.pendingSeq.Store(0)
		l.unsyncedRecords = 0
		l.offMu.Lock()
		l.start, l.end = newStart, base
		l.offMu.Unlock()
		return l.loadTimeTail(db)
	})
	if err != nil {
		if errors.Is(err, engine.ErrClosed) {
			return err
		}
		return l.fail("truncate", err)
	}
	return nil
}

// DeleteBefore implements engine.Log: one synced commit deletes the data
// and time keys of every batch wholly below to (a range deletion) and
// records the new start.
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable("delete before"); err != nil {
		return err
	}
	start, end := l.start, l.end
	if to <= start {
		return nil
	}
	err := l.e.useDB("delete before", l.tp, func(db *pebble.DB) error {
		b := db.NewBatch()
		if to >= end {
			b.DeleteRange(kindLower(l.id, kindData), kindUpper(l.id, kindData), nil)
			b.DeleteRange(kindLower(l.id, kindTime), kindUpper(l.id, kindTime), nil)
			b.Set(startKey(l.id), encodeStart(to, 0), nil)
			if _, err := l.e.commit(b, true); err != nil {
				return err
			}
			l.runningMax, l.sinceEntry = math.MinInt64, 0
			l.offMu.Lock()
			l.start, l.end, l.startBytes, l.endBytes = to, to, 0, 0
			l.offMu.Unlock()
		} else {
			base, below, err := l.bytesBelow(db, to)
			if err != nil {
				b.Close()
				return err
			}
			b.DeleteRange(kindLower(l.id, kindData), offsetKey(nil, l.id, kindData, base), nil)
			b.DeleteRange(kindLower(l.id, kindTime), offsetKey(nil, l.id, kindTime, base), nil)
			b.Set(startKey(l.id), encodeStart(to, below), nil)
			if _, err := l.e.commit(b, true); err != nil {
				return err
			}
			l.offMu.Lock()
			l.start, l.startBytes = to, below
			l.offMu.Unlock()
		}
		l.pendingSeq.Store(0)
		l.unsyncedRecords = 0
		return nil
	})
	if err != nil {
		if errors.Is(err, engine.ErrClosed) {
			return err
		}
		return l.fail("delete before", err)
	}
	return nil
}

// bytesBelow returns the base of the batch holding o and the bytes the log
// ever held below it: from the last time entry below that batch (or the
// start record) plus the batches between.
func (l *Log) bytesBelow(db *pebble.DB, o int64) (base, bytes int64, err error) {
	base, ok, err := l.batchAt(db, o)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, fmt.Errorf("no batch holds %d: %w", o, engine.ErrCorrupt)
	}
	bytes, from := l.startBytes, int64(0)
	te, at, ok, err := l.lastTimeEntry(db, offsetKey(nil, l.id, kindTime, base))
	if err != nil {
		return 0, 0, err
	}
	if ok {
		bytes, from = te.bytes, at+1
	}
	err = l.walk(db, from, base, func(_ int64, v []byte) bool {
		bytes += int64(len(v))
		return true
	})
	return base, bytes, err
}

// Sync implements engine.Log: one WAL sync, shared with every log that
// syncs at the same time.
func (l *Log) Sync(ctx context.Context) error {
	if err := l.writable("sync"); err != nil {
		return err
	}
	return l.sync()
}

func (l *Log) sync() error {
	need := l.pendingSeq.Load()
	if need == 0 {
		return nil
	}
	err := l.e.useDB("sync", l.tp, func(*pebble.DB) error { return l.e.syncWAL(need) })
	if err != nil {
		if errors.Is(err, engine.ErrClosed) {
			return err
		}
		return l.fail("sync", err)
	}
	l.pendingSeq.CompareAndSwap(need, 0)
	return nil
}

// flushDue reports whether the flusher should sync the log at now.
func (l *Log) flushDue(now int64) bool {
	if l.closed.Load() || l.failed.Load() || l.durable() {
		return false
	}
	d := l.dirtySince.Load()
	return d != 0 && now-d >= int64(l.opts.FlushInterval)
}

// Close implements engine.Log: it syncs the log and leaves the engine's
// open logs. Records read earlier stay valid: they own their memory.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil
	}
	var err error
	if !l.failed.Load() {
		err = l.sync()
	}
	l.closed.Store(true)
	l.mu.Unlock()
	l.e.forget(l)
	if errors.Is(err, engine.ErrClosed) {
		err = nil
	}
	return err
}
