package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

// raw is the baseline every engine figure stands beside: one plain os.File
// per log, appended with write(2) and read with pread(2), with an in-memory
// table of batch positions standing in for a perfect index. It does the
// least work any file-based engine can do for the same bytes, under the same
// flush policy, so an engine's figure divided by raw's says how much of the
// disk's speed the engine keeps. It is not registered: it stores nothing the
// broker could use (no recovery point, no truncation, no retention), and its
// recovery is a full scan with CRC checks.
type raw struct {
	dir  string
	opts engine.Options
}

func openRaw(dir string, opts engine.Options) (*raw, error) {
	opts.EnsureDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &raw{dir: dir, opts: opts}, nil
}

var (
	_ engine.Engine = (*raw)(nil)
	_ engine.Log    = (*rawLog)(nil)
	_ engine.Sizer  = (*rawLog)(nil)
)

func (r *raw) OpenLog(ctx context.Context, tp engine.TopicPartition, lo engine.LogOptions) (engine.Log, error) {
	f, err := os.OpenFile(filepath.Join(r.dir, tp.String()+".raw"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	l := &rawLog{f: f, flushMessages: lo.WithDefaults(r.opts.Log).FlushMessages}
	if err := l.scan(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (r *raw) Logs(context.Context) ([]engine.TopicPartition, error) {
	return nil, errors.ErrUnsupported
}
func (r *raw) DeleteLog(context.Context, engine.TopicPartition) error { return errors.ErrUnsupported }
func (r *raw) Close() error                                           { return nil }

// rawLog keeps, for every batch, its base offset and file position; the
// slice only grows, under mu, and readers copy the header they need.
type rawLog struct {
	f             *os.File
	flushMessages int64

	mu        sync.RWMutex
	bases     []int64 // base offset of batch i
	pos       []int64 // file position of batch i; pos[len] is the file size
	end       atomic.Int64
	unsynced  int64
	readBufMu sync.Mutex
	readBuf   []byte
}

// scan rebuilds the position table from the file, checking every batch as a
// full recovery must; it is what raw's "recover" figure measures.
func (l *rawLog) scan() error {
	st, err := l.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	buf := make([]byte, 1<<20)
	var pos, next int64
	l.pos = append(l.pos[:0], 0)
	for pos < size {
		var hdr [engine.BatchHeaderSize]byte
		if _, err := l.f.ReadAt(hdr[:], pos); err != nil {
			break
		}
		h, err := engine.ParseBatchHeader(hdr[:])
		if err != nil || pos+int64(h.Size()) > size {
			break
		}
		if cap(buf) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if _, err := l.f.ReadAt(b, pos); err != nil {
			return err
		}
		if _, err := engine.CheckBatch(b); err != nil {
			break
		}
		l.bases = append(l.bases, h.BaseOffset)
		pos += int64(h.Size())
		l.pos = append(l.pos, pos)
		next = h.LastOffset() + 1
	}
	l.end.Store(next)
	if _, err := l.f.Seek(pos, io.SeekStart); err != nil {
		return err
	}
	return l.f.Truncate(pos)
}

func (l *rawLog) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	if meta.BaseOffset != l.end.Load() {
		return engine.ErrNonContiguous
	}
	if _, err := l.f.Write(batch); err != nil {
		return fmt.Errorf("raw: %w: %v", engine.ErrLogFailed, err)
	}
	l.mu.Lock()
	l.bases = append(l.bases, meta.BaseOffset)
	l.pos = append(l.pos, l.pos[len(l.pos)-1]+int64(len(batch)))
	l.mu.Unlock()
	l.end.Store(meta.LastOffset + 1)
	l.unsynced += int64(meta.RecordCount)
	if l.unsynced >= l.flushMessages {
		return l.Sync(ctx)
	}
	return nil
}

// Read preads whole batches into one buffer owned by the log, which is the
// baseline's honest cost of a reader that does not map the file: a copy from
// the page cache per read. The buffer is reused, so the Records pin it (hold
// its lock) until Release; concurrent readers take turns.
func (l *rawLog) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	end := l.end.Load()
	if from > end || from < 0 {
		return engine.Records{NextOffset: from}, engine.ErrOffsetOutOfRange
	}
	if from == end {
		return engine.Records{NextOffset: from}, nil
	}
	l.mu.RLock()
	// The batch holding from is the last one whose base offset <= from.
	lo, hi := 0, len(l.bases)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.bases[m] <= from {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo - 1
	start := l.pos[i]
	j := i + 1
	for j < len(l.bases) && l.pos[j+1]-start <= int64(maxBytes) {
		j++
	}
	stop := l.pos[j]
	next := end
	if j < len(l.bases) {
		next = l.bases[j]
	}
	l.mu.RUnlock()

	l.readBufMu.Lock()
	n := int(stop - start)
	if cap(l.readBuf) < n {
		l.readBuf = make([]byte, n)
	}
	b := l.readBuf[:n]
	if _, err := l.f.ReadAt(b, start); err != nil {
		l.readBufMu.Unlock()
		return engine.Records{NextOffset: from}, err
	}
	return engine.Records{Chunks: [][]byte{b}, NextOffset: next, Pin: (*readBufPin)(l)}, nil
}

// readBufPin releases the read buffer of a rawLog.
type readBufPin rawLog

func (p *readBufPin) Release() { p.readBufMu.Unlock() }

func (l *rawLog) Offsets() (int64, int64) { return 0, l.end.Load() }

func (l *rawLog) Truncate(context.Context, int64) error     { return errors.ErrUnsupported }
func (l *rawLog) DeleteBefore(context.Context, int64) error { return errors.ErrUnsupported }
func (l *rawLog) OffsetForTime(context.Context, int64) (int64, error) {
	return 0, errors.ErrUnsupported
}

func (l *rawLog) Sync(context.Context) error {
	l.unsynced = 0
	return l.f.Sync()
}

func (l *rawLog) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.pos[len(l.pos)-1]
}

func (l *rawLog) Close() error {
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
