package enginetest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// TestFlat runs the suite against flat, a deliberately plain file engine
// defined below, so that the suite's durable-only parts (the child process
// killed mid-append, write faults through FaultFS, Records that the caller
// owns, chunks of several batches) run in this package's own tests too. The
// mem engine covers the rest.
func TestFlat(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return &flatEngine{dir: dir, fs: opts.FS, open: map[engine.TopicPartition]*flatLog{}}, opts.FS.MkdirAll(dir, 0o755)
		},
		TearTail: flatTearTail,
		Durable:  true,
	})
}

// flat keeps each log in <dir>/<topic>@<partition>/ as one file "log" of
// batches back to back, and the start offset in the 8-byte file "start".
// Recovery scans the log file and cuts it at the first invalid batch.
// DeleteBefore rewrites the file without the batches below the start.
type flatEngine struct {
	dir    string
	fs     engine.FS
	mu     sync.Mutex
	open   map[engine.TopicPartition]*flatLog
	closed bool
}

type flatLog struct {
	e     *flatEngine
	tp    engine.TopicPartition
	dir   string
	mu    sync.RWMutex
	f     engine.File
	ents  []flatEntry
	size  int64
	start int64
	end   int64
	// closed and failed are sticky states.
	closed bool
	failed error
}

type flatEntry struct {
	meta     engine.BatchMeta
	pos, len int64
}

func (e *flatEngine) logDir(tp engine.TopicPartition) string {
	return filepath.Join(e.dir, tp.Topic+"@"+strconv.Itoa(int(tp.Partition)))
}

func (e *flatEngine) OpenLog(_ context.Context, tp engine.TopicPartition, _ engine.LogOptions) (engine.Log, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, engine.ErrClosed
	}
	if e.open[tp] != nil {
		return nil, engine.ErrLogOpen
	}
	l := &flatLog{e: e, tp: tp, dir: e.logDir(tp)}
	if err := l.recover(); err != nil {
		return nil, err
	}
	e.open[tp] = l
	return l, nil
}

// recover opens the log's files and cuts the log file after its last valid
// batch.
func (l *flatLog) recover() error {
	fs := l.e.fs
	if err := fs.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	f, err := fs.OpenFile(filepath.Join(l.dir, "log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.f = f
	if sf, err := fs.OpenFile(filepath.Join(l.dir, "start"), os.O_RDONLY, 0); err == nil {
		var b [8]byte
		_, err := io.ReadFull(sf, b[:])
		sf.Close()
		if err != nil {
			return err
		}
		l.start = int64(binary.BigEndian.Uint64(b[:]))
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return err
	}
	l.end = l.start
	for pos := int64(0); pos < int64(len(data)); {
		h, err := engine.CheckBatch(data[pos:])
		if err != nil || (len(l.ents) > 0 && h.BaseOffset != l.end) || (len(l.ents) == 0 && h.BaseOffset > l.start) {
			break
		}
		l.ents = append(l.ents, flatEntry{h.Meta(), pos, int64(h.Size())})
		l.end = h.LastOffset() + 1
		pos += int64(h.Size())
		l.size = pos
	}
	if l.size < int64(len(data)) {
		if err := f.Truncate(l.size); err != nil {
			return err
		}
		return f.Sync()
	}
	return nil
}

func (e *flatEngine) Logs(context.Context) ([]engine.TopicPartition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, engine.ErrClosed
	}
	des, err := e.fs.ReadDir(e.dir)
	if err != nil {
		return nil, err
	}
	var tps []engine.TopicPartition
	for _, de := range des {
		i := strings.LastIndexByte(de.Name(), '@')
		p, err := strconv.Atoi(de.Name()[i+1:])
		if i < 0 || err != nil {
			return nil, fmt.Errorf("flat: stray %s", de.Name())
		}
		tps = append(tps, engine.TopicPartition{Topic: de.Name()[:i], Partition: int32(p)})
	}
	return tps, nil
}

func (e *flatEngine) DeleteLog(_ context.Context, tp engine.TopicPartition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return engine.ErrClosed
	}
	if l := e.open[tp]; l != nil {
		l.closeLocked()
	}
	if _, err := e.fs.Stat(e.logDir(tp)); err != nil {
		return engine.ErrLogNotFound
	}
	return e.fs.RemoveAll(e.logDir(tp))
}

func (e *flatEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.open {
		l.closeLocked()
	}
	e.closed = true
	return nil
}

// fail makes the log refuse writes until reopened. l.mu is held.
func (l *flatLog) fail(err error) error {
	l.failed = err
	return fmt.Errorf("flat: %w: %w", engine.ErrLogFailed, err)
}

// writable returns why the log cannot be written. l.mu is held.
func (l *flatLog) writable() error {
	if l.closed {
		return engine.ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("flat: %w: %w", engine.ErrLogFailed, l.failed)
	}
	return nil
}

func (l *flatLog) Append(_ context.Context, meta engine.BatchMeta, b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if meta.BaseOffset != l.end {
		return engine.ErrNonContiguous
	}
	if err := engine.CheckAppend(meta, b); err != nil {
		return err
	}
	if _, err := l.f.WriteAt(b, l.size); err != nil {
		return l.fail(err)
	}
	l.ents = append(l.ents, flatEntry{meta, l.size, int64(len(b))})
	l.size += int64(len(b))
	l.end = meta.LastOffset + 1
	return nil
}

// find returns the index of the first entry ending at or after off.
func (l *flatLog) find(off int64) int {
	return sort.Search(len(l.ents), func(i int) bool { return l.ents[i].meta.LastOffset >= off })
}

// Read copies whole batches into one chunk that the caller owns (Pin nil).
func (l *flatLog) Read(_ context.Context, from int64, maxBytes int) (engine.Records, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return engine.Records{}, engine.ErrClosed
	}
	if from < l.start || from > l.end {
		return engine.Records{}, engine.ErrOffsetOutOfRange
	}
	i := l.find(from)
	if i == len(l.ents) {
		return engine.Records{NextOffset: from}, nil
	}
	j := i + 1
	for j < len(l.ents) && l.ents[j].pos+l.ents[j].len-l.ents[i].pos <= int64(maxBytes) {
		j++
	}
	buf := make([]byte, l.ents[j-1].pos+l.ents[j-1].len-l.ents[i].pos)
	if _, err := l.f.ReadAt(buf, l.ents[i].pos); err != nil {
		return engine.Records{}, err
	}
	return engine.Records{Chunks: [][]byte{buf}, NextOffset: l.ents[j-1].meta.LastOffset + 1}, nil
}

func (l *flatLog) Offsets() (int64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start, l.end
}

func (l *flatLog) Truncate(_ context.Context, to int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if to < l.start {
		return engine.ErrOffsetOutOfRange
	}
	if to >= l.end {
		return nil
	}
	i := l.find(to)
	if err := l.f.Truncate(l.ents[i].pos); err != nil {
		return l.fail(err)
	}
	if err := l.f.Sync(); err != nil {
		return l.fail(err)
	}
	l.size, l.end, l.ents = l.ents[i].pos, l.ents[i].meta.BaseOffset, l.ents[:i]
	l.start = min(l.start, l.end)
	return nil
}

// DeleteBefore makes the new start durable, then rewrites the log file
// without the batches wholly below it.
func (l *flatLog) DeleteBefore(_ context.Context, to int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if to <= l.start {
		return nil
	}
	fs := l.e.fs
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(to))
	if err := l.writeFile("start", b[:]); err != nil {
		return l.fail(err)
	}
	i := l.find(to)
	keep := make([]byte, l.size-l.posOf(i))
	if _, err := l.f.ReadAt(keep, l.posOf(i)); err != nil && err != io.EOF {
		return l.fail(err)
	}
	if err := l.writeFile("log", keep); err != nil {
		return l.fail(err)
	}
	f, err := fs.OpenFile(filepath.Join(l.dir, "log"), os.O_RDWR, 0)
	if err != nil {
		return l.fail(err)
	}
	l.f.Close()
	l.f = f
	shift := l.posOf(i)
	l.ents = append([]flatEntry(nil), l.ents[i:]...)
	for k := range l.ents {
		l.ents[k].pos -= shift
	}
	l.size -= shift
	l.start, l.end = to, max(l.end, to)
	return nil
}

func (l *flatLog) posOf(i int) int64 {
	if i == len(l.ents) {
		return l.size
	}
	return l.ents[i].pos
}

// writeFile replaces the file name of the log's directory atomically.
func (l *flatLog) writeFile(name string, data []byte) error {
	fs := l.e.fs
	tmp := filepath.Join(l.dir, name+".tmp")
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, filepath.Join(l.dir, name))
	}
	if err == nil {
		err = fs.SyncDir(l.dir)
	}
	return err
}

func (l *flatLog) OffsetForTime(_ context.Context, ts int64) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, engine.ErrClosed
	}
	for _, en := range l.ents[l.find(l.start):] {
		if en.meta.MaxTimestamp >= ts {
			return max(en.meta.BaseOffset, l.start), nil
		}
	}
	return l.end, nil
}

func (l *flatLog) Sync(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return l.fail(err)
	}
	return nil
}

func (l *flatLog) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

func (l *flatLog) Close() error {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	l.closeLocked()
	return nil
}

// closeLocked needs l.e.mu.
func (l *flatLog) closeLocked() {
	if l.e.open[l.tp] == l {
		delete(l.e.open, l.tp)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.failed == nil {
		l.f.Sync()
	}
	l.f.Close()
	l.closed = true
}

// flatTearTail rewrites the last batch of tp's log file with tear's result.
func flatTearTail(dir string, tp engine.TopicPartition, tear func([]byte) []byte) error {
	name := filepath.Join((&flatEngine{dir: dir}).logDir(tp), "log")
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	last := -1
	for pos := 0; pos < len(data); {
		h, err := engine.CheckBatch(data[pos:])
		if err != nil {
			return fmt.Errorf("flat: tear: batch at byte %d: %w", pos, err)
		}
		last, pos = pos, pos+h.Size()
	}
	if last < 0 {
		return errors.New("flat: tear: empty log")
	}
	torn := tear(append([]byte(nil), data[last:]...))
	return os.WriteFile(name, append(data[:last:last], torn...), 0o644)
}

var _ engine.Sizer = (*flatLog)(nil)
