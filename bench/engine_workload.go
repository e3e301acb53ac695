package bench

// What the engine workloads share: batches of a given size and the
// appenders that append copies of them; opening, filling and discarding a
// target's log; the page-cache settle before each timed section; the sink
// reads are copied into; and the bytes a target's files occupy.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// batchOfSize returns a one-record batch of exactly size bytes.
func batchOfSize(tb testing.TB, size int) ([]byte, engine.BatchMeta) {
	// A one-record batch of value length v is v plus a fixed overhead
	// that varies by a byte or two with the varint widths: search down.
	for v := size - engine.BatchHeaderSize; v >= 0; v-- {
		bt, m := enginetest.NewBatch(0, 1, v, time.Now().UnixMilli(), 0x5a)
		if len(bt) == size {
			return bt, m
		}
	}
	tb.Fatalf("no one-record batch of %d bytes", size)
	return nil, engine.BatchMeta{}
}

// appender appends copies of one batch, patching the base offset in place as
// the broker does (the CRC does not cover it), so the loop allocates nothing.
type appender struct {
	batch []byte
	meta  engine.BatchMeta
	next  int64
}

func newAppender(tb testing.TB, size int) *appender {
	bt, m := batchOfSize(tb, size)
	return &appender{batch: bt, meta: m}
}

func (a *appender) append(ctx context.Context, l engine.Log) error {
	span := a.meta.LastOffset - a.meta.BaseOffset
	binary.BigEndian.PutUint64(a.batch, uint64(a.next))
	a.meta.BaseOffset, a.meta.LastOffset = a.next, a.next+span
	if err := l.Append(ctx, a.meta, a.batch); err != nil {
		return err
	}
	a.next += span + 1
	return nil
}

// groupAppender appends groups of copies of one batch, one
// engine.AppendBatches a group, patching the base offsets in place as
// appender does: in process that is one Append a batch, for a plugin one
// round trip a group.
type groupAppender struct {
	batches []engine.Batch
	span    int64 // LastOffset - BaseOffset of each batch
	next    int64
}

func newGroupAppender(tb testing.TB, size, n int) *groupAppender {
	bt, m := batchOfSize(tb, size)
	g := &groupAppender{batches: make([]engine.Batch, n), span: m.LastOffset - m.BaseOffset}
	for i := range g.batches {
		g.batches[i] = engine.Batch{Meta: m, Data: bytes.Clone(bt)}
	}
	return g
}

func (g *groupAppender) append(ctx context.Context, l engine.Log) error {
	off := g.next
	for i := range g.batches {
		bt := &g.batches[i]
		binary.BigEndian.PutUint64(bt.Data, uint64(off))
		bt.Meta.BaseOffset, bt.Meta.LastOffset = off, off+g.span
		off += g.span + 1
	}
	n, err := engine.AppendBatches(ctx, l, g.batches)
	g.next += int64(n) * (g.span + 1)
	if err == nil && n != len(g.batches) {
		err = fmt.Errorf("AppendBatches appended %d of %d batches and returned no error", n, len(g.batches))
	}
	return err
}

// open opens target t in dir with the engine defaults (Kafka's: 1 GiB
// segments, no fsync by count or time) and the bench log.
func (t Target) open(tb testing.TB, dir string) (engine.Engine, engine.Log) {
	e, err := t.Open(dir, engine.Options{})
	if err != nil {
		tb.Fatalf("%s: open: %v", t.Name, err)
	}
	l, err := e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if err != nil {
		e.Close()
		tb.Fatalf("%s: open log: %v", t.Name, err)
	}
	return e, l
}

func closeAll(tb testing.TB, e engine.Engine, l engine.Log) {
	if err := l.Close(); err != nil {
		tb.Errorf("close log: %v", err)
	}
	if err := e.Close(); err != nil {
		tb.Errorf("close engine: %v", err)
	}
}

// discard closes the bench log and engine and deletes the log, so an
// in-memory engine gives its memory back between benchmarks (files go with
// the test's temporary directory anyway).
func discard(tb testing.TB, e engine.Engine, l engine.Log) {
	if err := l.Close(); err != nil {
		tb.Errorf("close log: %v", err)
	}
	if err := e.DeleteLog(context.Background(), tp); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tb.Errorf("delete log: %v", err)
	}
	if err := e.Close(); err != nil {
		tb.Errorf("close engine: %v", err)
	}
}

// persistent reports whether the target keeps its logs in files, which is
// when recover and bytes-on-disk mean something.
func (t Target) persistent(tb testing.TB) bool {
	dir := tb.TempDir()
	e, l := t.open(tb, dir)
	a := newAppender(tb, smallBatchBytes)
	if err := a.append(context.Background(), l); err != nil {
		tb.Fatal(err)
	}
	if err := l.Sync(context.Background()); err != nil {
		tb.Fatal(err)
	}
	n := diskBytes(tb, dir)
	discard(tb, e, l)
	return n > 0
}

// fill appends bytes worth of batches of batchSize and syncs.
func fill(tb testing.TB, l engine.Log, batchSize, bytes int) *appender {
	ctx := context.Background()
	a := newAppender(tb, batchSize)
	for n := 0; n < bytes; n += batchSize {
		if err := a.append(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	return a
}

// settle writes back the dirty pages earlier benchmarks left, so that each
// write benchmark starts from the same clean page cache rather than paying
// for the writeback of whatever ran before it (which skews whichever target
// happens to run next by a factor of two or more on this kind of machine).
func settle() { syscall.Sync() }

// sink stands for the socket a fetch is written to: every byte a read
// returns is copied once into a reused buffer, so engines that hand out
// memory without touching it still pay for the bytes they deliver.
type sink struct{ buf []byte }

func (s *sink) take(r *engine.Records) int {
	n := 0
	for _, c := range r.Chunks {
		if len(s.buf) < len(c) {
			s.buf = make([]byte, len(c))
		}
		n += copy(s.buf, c)
	}
	return n
}

// reportDisk reports the bytes the target's files occupy (allocated blocks)
// for a fixture of logical bytes.
func reportDisk(b *testing.B, t Target, dir string, logical int) {
	if n := diskBytes(b, dir); n > 0 {
		b.ReportMetric(float64(n), "bytes-on-disk")
		b.ReportMetric(float64(n)/float64(logical), "disk/logical")
	}
}

// diskBytes sums the allocated size of every regular file under dir.
func diskBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by the engine meanwhile
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return n
}
