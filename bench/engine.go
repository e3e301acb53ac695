// Package bench holds Strata's benchmark suites: every registered storage
// engine side by side with a raw-file baseline, driven through package engine
// exactly as the broker drives them. The workloads live here, in a library,
// so a command can run them too; go test -bench runs them through
// bench_test.go:
//
//	go test -run '^$' -bench 'Engine/' ./bench/
//
// Results are named BenchmarkEngine/<engine>/<op> so benchstat can compare
// engines op by op. The machine is shared and noisy: compare engines only as
// ratios to raw measured in the same run.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// Target is one storage under benchmark: a registered engine or raw.
type Target struct {
	Name string
	Open func(dir string, opts engine.Options) (engine.Engine, error)
}

// Targets returns the raw baseline followed by every registered engine.
func Targets() []Target {
	ts := []Target{{Name: "raw", Open: func(dir string, opts engine.Options) (engine.Engine, error) {
		return openRaw(dir, opts)
	}}}
	for _, name := range engine.Names() {
		ts = append(ts, Target{Name: name, Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return engine.Open(context.Background(), name, dir, opts)
		}})
	}
	return ts
}

// Workload sizes. The read fixtures are large enough that one pass is many
// fetches, small enough to build in a second.
const (
	fetchMaxBytes   = 1 << 20   // max.partition.fetch.bytes, Kafka's default
	readFixture     = 64 << 20  // bytes appended before read-seq and read-random
	recoverFixture  = 256 << 20 // bytes appended before recover
	largeBatchBytes = 16 << 10  // batch.size, the producer default
	smallBatchBytes = 1 << 10
)

var tp = engine.TopicPartition{Topic: "bench", Partition: 0}

// RunEngines runs every op over every target as b.Run(<target>/<op>).
func RunEngines(b *testing.B) {
	for _, t := range Targets() {
		b.Run(t.Name, func(b *testing.B) {
			b.Run("append-1KiB", func(b *testing.B) { benchAppend(b, t, smallBatchBytes) })
			b.Run("append-16KiB", func(b *testing.B) { benchAppend(b, t, largeBatchBytes) })
			b.Run("read-seq", func(b *testing.B) { benchReadSeq(b, t) })
			b.Run("read-tail", func(b *testing.B) { benchReadTail(b, t) })
			b.Run("read-random", func(b *testing.B) { benchReadRandom(b, t) })
			if t.persistent(b) {
				b.Run("recover", func(b *testing.B) { benchRecover(b, t) })
			}
		})
	}
}

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

func benchAppend(b *testing.B, t Target, size int) {
	ctx := context.Background()
	e, l := t.open(b, b.TempDir())
	defer discard(b, e, l)
	a := newAppender(b, size)
	settle()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := a.append(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}

func benchReadSeq(b *testing.B, t Target) {
	ctx := context.Background()
	dir := b.TempDir()
	e, l := t.open(b, dir)
	defer discard(b, e, l)
	fill(b, l, largeBatchBytes, readFixture)
	start, end := l.Offsets()
	s := &sink{}
	total := 0
	scan := func() {
		total = 0
		for off := start; off < end; {
			r, err := l.Read(ctx, off, fetchMaxBytes)
			if err != nil {
				b.Fatal(err)
			}
			total += s.take(&r)
			off = r.NextOffset
			r.Release()
		}
	}
	scan() // the first pass maps and faults pages in; every pass after is steady state
	if total < readFixture {
		b.Fatalf("read %d bytes, wrote %d", total, readFixture)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	for range b.N {
		scan()
	}
	b.StopTimer()
	reportDisk(b, t, dir, total)
}

func benchReadTail(b *testing.B, t Target) {
	ctx := context.Background()
	e, l := t.open(b, b.TempDir())
	defer discard(b, e, l)
	a := newAppender(b, smallBatchBytes)
	appended := make(chan struct{}, 1) // a token: something new to read
	done := make(chan error, 1)
	b.SetBytes(smallBatchBytes)
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	go func() {
		for range b.N {
			if err := a.append(ctx, l); err != nil {
				done <- err
				return
			}
			select {
			case appended <- struct{}{}:
			default: // a token is already waiting
			}
		}
		done <- nil
	}()
	s := &sink{}
	var off int64
	finished := false // every append is in, so no read may come back empty
	for read := 0; read < b.N; {
		r, err := l.Read(ctx, off, fetchMaxBytes)
		if err != nil {
			b.Fatal(err)
		}
		if r.Empty() {
			if finished {
				b.Fatalf("read at %d empty after all %d appends", off, b.N)
			}
			select {
			case <-appended:
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				finished = true
			}
			continue
		}
		s.take(&r)
		read += int(r.NextOffset - off)
		off = r.NextOffset
		r.Release()
	}
	b.StopTimer()
	if !finished {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func benchReadRandom(b *testing.B, t Target) {
	ctx := context.Background()
	dir := b.TempDir()
	e, l := t.open(b, dir)
	defer discard(b, e, l)
	fill(b, l, smallBatchBytes, readFixture)
	start, end := l.Offsets()
	rng := rand.New(rand.NewPCG(1, 2))
	s := &sink{}
	b.SetBytes(smallBatchBytes)
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	for range b.N {
		r, err := l.Read(ctx, start+rng.Int64N(end-start), smallBatchBytes)
		if err != nil {
			b.Fatal(err)
		}
		if s.take(&r) != smallBatchBytes {
			b.Fatalf("read %d bytes, want one batch of %d", r.Len(), smallBatchBytes)
		}
		r.Release()
	}
}

// benchRecover measures reopening a log of 256 MiB after a crash: the
// directory is copied while the engine is still open (after a Sync), which
// is what a kill leaves, and each op opens the engine on that image and
// reads the end. Between ops the timer stops and the files the last op
// changed are put back as the image has them.
func benchRecover(b *testing.B, t Target) {
	src := b.TempDir()
	e, l := t.open(b, src)
	fill(b, l, largeBatchBytes, recoverFixture)
	_, want := l.Offsets()
	image := b.TempDir()
	copyTree(b, src, image)
	closeAll(b, e, l)
	dir := b.TempDir()
	b.SetBytes(recoverFixture)
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		restoreTree(b, image, dir)
		b.StartTimer()
		e, l := t.open(b, dir)
		if _, end := l.Offsets(); end != want {
			b.Fatalf("recovered end %d, want %d", end, want)
		}
		b.StopTimer()
		closeAll(b, e, l)
		b.StartTimer()
	}
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
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
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

// copyTree copies the regular files of src into dst, keeping the layout and
// the modification times (restoreTree compares them).
func copyTree(tb testing.TB, src, dst string) {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, to)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, fi.ModTime(), fi.ModTime())
}

// restoreTree makes dst a copy of src again, copying only the files whose
// size or modification time differ from src's and removing files src does
// not have, so a 256 MiB image costs only what the last op changed.
func restoreTree(tb testing.TB, src, dst string) {
	err := filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dst {
			return err
		}
		rel, _ := filepath.Rel(dst, path)
		if _, err := os.Lstat(filepath.Join(src, rel)); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err == nil {
		err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			to := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			want, err := d.Info()
			if err != nil || !want.Mode().IsRegular() {
				return err
			}
			if got, err := os.Stat(to); err == nil && got.Size() == want.Size() && got.ModTime().Equal(want.ModTime()) {
				return nil
			}
			return copyFile(path, to)
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
}
