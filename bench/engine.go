// Package bench holds Strata's benchmark suites: every registered storage
// engine side by side with a raw-file baseline, driven through package engine
// exactly as the broker drives them. The workloads live here, in a library,
// so a command can run them too; go test -bench runs them through
// bench_test.go:
//
//	go test -run '^$' -bench 'Engine/' ./bench/
//
// Results are named BenchmarkEngine/<engine>/<op> so benchstat can compare
// engines op by op; plugin-<engine> is the same built-in engine served out
// of process by the examples/builtin plugin program. The machine is shared
// and noisy: compare engines only as ratios to raw (or, for a plugin, to the
// same engine in process) measured in the same run.
package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/tiered"
	"github.com/strata-broker/strata/plugins"
)

// Target is one storage under benchmark: a registered engine or raw.
type Target struct {
	Name string
	Open func(dir string, opts engine.Options) (engine.Engine, error)
	// Cold is set for engines that move sealed segments to a cold tier.
	Cold *ColdTier
	// Plugin is set for an engine served out of process. Options.Now
	// stays in the host (the plugin gets its own clock), so the JSON
	// workloads, which roll segments on a manual clock, leave it out.
	Plugin bool
}

// ColdTier is what the benchmarks need of an engine with a cold tier.
type ColdTier struct {
	// Settle moves every sealed segment of l to the cold tier now and
	// drops the hot copies its local retention allows.
	Settle func(ctx context.Context, l engine.Log) error
	// Bytes returns the bytes the cold tier holds for the engine whose
	// directory is dir.
	Bytes func(dir string) (int64, error)
	// Settings are the engine settings (engine.Options.Settings) of the
	// JSON workloads.
	Settings map[string]string
}

// coldTiers names the registered engines that have a cold tier. The tiered
// engine runs the JSON workloads without its frame cache, so that every
// read of read-cold fetches and decompresses its frame from the cold tier,
// and without its background uploader, so that Settle makes every upload
// (timed, in json-bytes-on-disk) and no upload races it.
var coldTiers = map[string]*ColdTier{
	"tiered": {
		Settle: tiered.Settle,
		Bytes:  tiered.ColdBytes,
		Settings: map[string]string{
			tiered.SettingFrameCacheBytes:  "0",
			tiered.SettingUploadIntervalMs: "0",
		},
	},
}

// pluginEngines are the built-in engines that also run out of process, as
// plugin-<name>, so the cost of the process boundary is measured against
// the same engine in process. tiered is left out: its cold tier is driven
// in process (tiered.Settle), which a plugin cannot be.
var pluginEngines = []string{"mem", "mmap", "pebble"}

// pluginLogger is the Logger of plugin targets: go-plugin logs every
// process start and exit at info, which would interleave with the results.
var pluginLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// BuildBuiltin builds the examples/builtin plugin program into dir and
// returns its path, for Targets and RunEngines.
func BuildBuiltin(dir string) (string, error) {
	const pkg = "github.com/strata-broker/strata/plugins/examples/builtin"
	bin := filepath.Join(dir, "builtin")
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Targets returns the raw baseline, every registered engine, and then
// plugin-<name> for each engine of pluginEngines: that engine served by
// the plugin program builtin (built by BuildBuiltin), one process per
// Open, which the engine's Close ends.
func Targets(builtin string) []Target {
	ts := []Target{{Name: "raw", Open: func(dir string, opts engine.Options) (engine.Engine, error) {
		return openRaw(dir, opts)
	}}}
	for _, name := range engine.Names() {
		ts = append(ts, Target{Name: name, Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return engine.Open(context.Background(), name, dir, opts)
		}, Cold: coldTiers[name]})
	}
	for _, name := range pluginEngines {
		ts = append(ts, Target{Name: "plugin-" + name, Plugin: true, Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			if opts.Logger == nil {
				opts.Logger = pluginLogger
			}
			return plugins.OpenCommand(context.Background(), exec.Command(builtin, name), dir, opts)
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
	jsonFixtureSize = 64 << 20 // logical bytes of JSON batches for json-bytes-on-disk and read-cold
	jsonSegment     = 16 << 20 // segment.bytes of the JSON workloads
	tinyBatchBytes  = 100      // a batch whose bytes cost next to nothing: what one call costs

	// Groups of batches for one partition handed over in one
	// engine.AppendBatches. produceBurst: 64 producers' 1 KiB batches
	// for one partition that arrived while its previous append ran (64
	// KiB). followerFetch: what a follower appends from one fetch
	// response, replica.fetch.max.bytes (1 MiB, Kafka's default) of
	// 16 KiB batches.
	produceBurst  = 64
	followerFetch = 64
)

var tp = engine.TopicPartition{Topic: "bench", Partition: 0}

// RunEngines runs every op over every target of Targets(builtin) as
// b.Run(<target>/<op>). builtin is the path of the examples/builtin plugin
// program (BuildBuiltin).
func RunEngines(b *testing.B, builtin string) {
	if builtin == "" {
		b.Fatal("bench: no plugin program: build examples/builtin with BuildBuiltin")
	}
	for _, t := range Targets(builtin) {
		b.Run(t.Name, func(b *testing.B) {
			b.Run("append-100B", func(b *testing.B) { benchAppend(b, t, tinyBatchBytes) })
			b.Run("append-1KiB", func(b *testing.B) { benchAppend(b, t, smallBatchBytes) })
			b.Run("append-16KiB", func(b *testing.B) { benchAppend(b, t, largeBatchBytes) })
			b.Run("append-16KiB-durable", func(b *testing.B) { benchAppend(b, t, largeBatchBytes, true) })
			b.Run(fmt.Sprintf("append-1KiB-x%d", produceBurst), func(b *testing.B) {
				benchAppendGroup(b, t, smallBatchBytes, produceBurst)
			})
			b.Run(fmt.Sprintf("append-16KiB-x%d", followerFetch), func(b *testing.B) {
				benchAppendGroup(b, t, largeBatchBytes, followerFetch)
			})
			b.Run("read-seq", func(b *testing.B) { benchReadSeq(b, t) })
			b.Run("read-tail", func(b *testing.B) { benchReadTail(b, t) })
			b.Run("read-random", func(b *testing.B) { benchReadRandom(b, t) })
			if t.persistent(b) {
				b.Run("recover", func(b *testing.B) { benchRecover(b, t) })
			}
			if !t.Plugin {
				b.Run("json-bytes-on-disk", func(b *testing.B) { benchJSONDisk(b, t) })
				b.Run("read-cold", func(b *testing.B) { benchReadCold(b, t) })
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

// benchAppend appends b.N batches of size bytes. With durable, one Sync
// after the last append is timed too, so the figure is the rate at which
// appends become durable: an engine that defers writeback to the page
// cache pays for it here, as one that writes it back while appending
// (a flushed memtable is synced) does in both.
//
// append-100B prices the call itself: its batch costs next to nothing to
// copy or write, so in process it is the engine's per-append overhead and
// for a plugin the round trip.
func benchAppend(b *testing.B, t Target, size int, durable ...bool) {
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
	if len(durable) > 0 && durable[0] {
		if err := l.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}

// benchAppendGroup appends b.N groups of n batches of size bytes, one
// engine.AppendBatches a group: one op is one group, so MB/s counts the
// same appended bytes as benchAppend's and batches/s is comparable too.
func benchAppendGroup(b *testing.B, t Target, size, n int) {
	ctx := context.Background()
	e, l := t.open(b, b.TempDir())
	defer discard(b, e, l)
	g := newGroupAppender(b, size, n)
	settle()
	b.SetBytes(int64(size * n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := g.append(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "batches/s")
}

// scanLog reads [start, end) of l with fetch-sized reads, every byte
// copied into s, and returns the bytes read.
func scanLog(ctx context.Context, b *testing.B, l engine.Log, s *sink, start, end int64) int {
	total := 0
	for off := start; off < end; {
		r, err := l.Read(ctx, off, fetchMaxBytes)
		if err != nil {
			b.Fatal(err)
		}
		total += s.take(&r)
		off = r.NextOffset
		r.Release()
	}
	return total
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
	scan := func() { total = scanLog(ctx, b, l, s, start, end) }
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
// reads the end. An engine that works in the background (an LSM's flushes
// and compactions) is copied once its files stand still, so the image is
// one instant of the directory, as a kill would leave it, rather than files
// taken at different times. Between ops the timer stops and the files the
// last op changed are put back as the image has them.
func benchRecover(b *testing.B, t Target) {
	src := b.TempDir()
	e, l := t.open(b, src)
	fill(b, l, largeBatchBytes, recoverFixture)
	_, want := l.Offsets()
	image := b.TempDir()
	copyStill(b, src, image)
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

// copyTree copies the regular files of src into dst, keeping the layout and
// the modification times (restoreTree compares them).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
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
}

// copyStill copies src into dst as copyTree does, once no file of src
// changes (name, size or modification time) from before the copy to after
// it; it gives up after 30 seconds of a directory that keeps changing.
func copyStill(tb testing.TB, src, dst string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		before := treeState(tb, src)
		err := copyTree(src, dst)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			tb.Fatal(err)
		}
		if err == nil && treeState(tb, src) == before {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s kept changing for 30s; no still image to copy", src)
		}
		if err := os.RemoveAll(dst); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// treeState describes the regular files under dir: names, sizes and
// modification times.
func treeState(tb testing.TB, dir string) string {
	var sb []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile: the next look differs anyway
		} else if err != nil {
			return err
		}
		sb = append(sb, path...)
		sb = append(sb, ' ')
		sb = strconv.AppendInt(sb, fi.Size(), 10)
		sb = append(sb, ' ')
		sb = strconv.AppendInt(sb, fi.ModTime().UnixNano(), 10)
		sb = append(sb, '\n')
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(sb)
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

// The JSON workloads store what most topics hold: structured application
// logs, one JSON object a record, about 300 bytes each, in uncompressed
// batches of about 16 KiB (batch.size). The lines come from a seeded
// generator, so every run and every engine stores the same bytes. The mix
// is that of a fleet of services: repeated keys, a dozen services of four
// hosts each, message templates with variable fields, timestamps
// milliseconds apart, and the high-entropy fields real logs carry (random
// trace and span ids, user ids, latencies), which bound how far any
// compressor can shrink them.

var (
	jsonServices = []string{"checkout", "cart", "payments", "search", "inventory", "auth", "gateway",
		"shipping", "recommendations", "notifications", "users", "pricing"}
	jsonRoutes = []string{"/api/v1/cart", "/api/v1/cart/items", "/api/v1/checkout", "/api/v2/search",
		"/api/v1/orders", "/api/v1/users/me", "/api/v1/payments/authorize", "/healthz", "/api/v1/inventory/reserve",
		"/api/v1/shipping/quote", "/api/v1/recommendations", "/api/v1/prices"}
	jsonMethods = []string{"GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	jsonTables  = []string{"orders", "order_items", "users", "sessions", "carts", "products", "stock", "payments"}
	jsonWords   = []string{"request", "completed", "cache", "miss", "hit", "upstream", "timeout", "retrying",
		"connection", "pool", "exhausted", "user", "session", "expired", "token", "refreshed", "order",
		"created", "payment", "authorized", "declined", "inventory", "reserved", "released", "query",
		"slow", "rows", "scanned", "rate", "limit", "exceeded", "circuit", "breaker", "open", "closed"}
)

// jsonLogs generates the lines, deterministically from its seed.
type jsonLogs struct {
	rng *rand.Rand
	ms  int64 // the clock of the last line, milliseconds since the epoch
	buf []byte
}

func newJSONLogs(seed uint64) *jsonLogs {
	return &jsonLogs{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ms:  time.Date(2026, 11, 25, 14, 3, 7, 123e6, time.UTC).UnixMilli(),
	}
}

// line returns the next line and its timestamp; the bytes are valid until
// the next call.
func (g *jsonLogs) line() ([]byte, int64) {
	r := g.rng
	g.ms += int64(r.IntN(4)) // a busy fleet: several lines a millisecond
	b := g.buf[:0]
	b = append(b, `{"ts":"`...)
	b = time.UnixMilli(g.ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	level := "info"
	switch n := r.IntN(100); {
	case n < 12:
		level = "debug"
	case n < 90:
	case n < 97:
		level = "warn"
	default:
		level = "error"
	}
	svc := r.IntN(len(jsonServices))
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","service":"`...)
	b = append(b, jsonServices[svc]...)
	b = append(b, `","host":"`...)
	b = append(b, jsonServices[svc][:3]...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(svc*4+r.IntN(4)+1), 10)
	b = append(b, `","trace_id":"`...)
	b = appendHex(b, r.Uint64())
	b = appendHex(b, r.Uint64())
	b = append(b, `","span_id":"`...)
	b = appendHex(b, r.Uint64())
	b = append(b, `","msg":"`...)
	route := jsonRoutes[r.IntN(len(jsonRoutes))]
	latency := int64(math.Exp(r.NormFloat64()*0.9 + 3.2)) // log-normal, median about 25 ms
	status := 200
	switch n := r.IntN(100); {
	case n < 6:
		status = 201
	case n < 9:
		status = 404
	case n < 11:
		status = 400
	case n < 12:
		status = 500
	case n < 13:
		status = 503
	}
	switch r.IntN(6) {
	case 0, 1:
		b = append(b, jsonMethods[r.IntN(len(jsonMethods))]...)
		b = append(b, ' ')
		b = append(b, route...)
		b = append(b, " completed in "...)
		b = strconv.AppendInt(b, latency, 10)
		b = append(b, "ms"...)
	case 2:
		b = append(b, "slow query on "...)
		b = append(b, jsonTables[r.IntN(len(jsonTables))]...)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, int64(r.IntN(50000)), 10)
		b = append(b, " rows scanned"...)
	case 3:
		b = append(b, "retrying call to "...)
		b = append(b, jsonServices[r.IntN(len(jsonServices))]...)
		b = append(b, " after "...)
		b = strconv.AppendInt(b, int64(50<<r.IntN(5)), 10)
		b = append(b, "ms (attempt "...)
		b = strconv.AppendInt(b, int64(1+r.IntN(3)), 10)
		b = append(b, ')')
	default:
		for i, n := 0, 4+r.IntN(8); i < n; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, jsonWords[r.IntN(len(jsonWords))]...)
		}
	}
	b = append(b, `","route":"`...)
	b = append(b, route...)
	b = append(b, `","latency_ms":`...)
	b = strconv.AppendInt(b, latency, 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, int64(100000+r.IntN(900000)), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(r.IntN(64<<10)), 10)
	b = append(b, '}')
	g.buf = b
	return b, g.ms
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[v>>uint(i)&0xf])
	}
	return b
}

// jsonBatch is one batch of the JSON fixture, offsets assigned.
type jsonBatch struct {
	bytes []byte
	meta  engine.BatchMeta
}

// jsonFixture is the JSON workload's log: batches from offset 0 holding
// logical bytes, and one small batch after them (tail).
type jsonFixture struct {
	batches []jsonBatch
	logical int
	tail    jsonBatch
}

// jsonFixtureOnce builds the fixture once per process: every engine is
// handed the same batches.
var jsonFixtureOnce = sync.OnceValue(func() *jsonFixture { return newJSONFixture(jsonFixtureSize, largeBatchBytes) })

// newJSONFixture generates batches of at most batchSize bytes until they
// hold size bytes.
func newJSONFixture(size, batchSize int) *jsonFixture {
	g := newJSONLogs(20261125)
	fx := &jsonFixture{}
	var (
		values [][]byte
		ts     []int64
		next   int64
		n      int
	)
	flush := func() jsonBatch {
		bt, m := enginetest.NewBatchOf(next, values, ts)
		next = m.LastOffset + 1
		values, ts, n = values[:0], ts[:0], engine.BatchHeaderSize
		return jsonBatch{bt, m}
	}
	n = engine.BatchHeaderSize
	for fx.logical < size {
		line, ms := g.line()
		if len(values) > 0 && n+len(line)+12 > batchSize {
			jb := flush()
			fx.batches = append(fx.batches, jb)
			fx.logical += len(jb.bytes)
		}
		values = append(values, append([]byte(nil), line...))
		ts = append(ts, ms)
		n += len(line) + 12
	}
	// The tail is the first line of the batch under way.
	values, ts = values[:1], ts[:1]
	fx.tail = flush()
	return fx
}

// manualClock is an Options.Now that moves only when told, so the JSON
// workloads can roll the active segment by segment.ms at a chosen point.
type manualClock struct{ ns atomic.Int64 }

func newManualClock() *manualClock {
	c := &manualClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *manualClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *manualClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// jsonOptions are the engine options of the JSON workloads: 16 MiB
// segments, rolled after an hour of the manual clock, and local retention
// 0 (local.retention.ms and local.retention.bytes), so an engine with a
// cold tier keeps no hot copy of a segment it has moved.
func (t Target) jsonOptions(clk *manualClock) engine.Options {
	o := engine.Options{Now: clk.now, Log: engine.LogOptions{
		SegmentBytes:        jsonSegment,
		SegmentMs:           time.Hour,
		LocalRetentionMs:    0,
		LocalRetentionBytes: 0,
	}}
	if t.Cold != nil {
		o.Settings = t.Cold.Settings
	}
	return o
}

// openJSON opens target t in dir for a JSON workload, on a manual clock.
func (t Target) openJSON(tb testing.TB, dir string) (engine.Engine, engine.Log, *manualClock) {
	clk := newManualClock()
	e, err := t.Open(dir, t.jsonOptions(clk))
	if err != nil {
		tb.Fatalf("%s: open: %v", t.Name, err)
	}
	l, err := e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if err != nil {
		e.Close()
		tb.Fatalf("%s: open log: %v", t.Name, err)
	}
	return e, l, clk
}

// fillJSON appends the fixture, then, an hour later on the log's clock,
// the tail batch, which rolls the segment (segment.ms) so that every byte
// of the fixture is in a sealed segment; then it syncs and, for an engine
// with a cold tier, settles the log.
func (t Target) fillJSON(tb testing.TB, l engine.Log, clk *manualClock, fx *jsonFixture) {
	ctx := context.Background()
	for _, jb := range fx.batches {
		if err := l.Append(ctx, jb.meta, jb.bytes); err != nil {
			tb.Fatal(err)
		}
	}
	clk.advance(2 * time.Hour)
	if err := l.Append(ctx, fx.tail.meta, fx.tail.bytes); err != nil {
		tb.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	if t.Cold != nil {
		if err := t.Cold.Settle(ctx, l); err != nil {
			tb.Fatalf("%s: settle: %v", t.Name, err)
		}
	}
}

// coldBytes returns the bytes t's cold tier holds under dir.
func (t Target) coldBytes(tb testing.TB, dir string) int64 {
	n, err := t.Cold.Bytes(dir)
	if err != nil {
		tb.Fatalf("%s: cold bytes: %v", t.Name, err)
	}
	return n
}

// benchJSONDisk measures what the JSON fixture costs to store: one op
// appends it to a new log, syncs and (for an engine with a cold tier)
// settles it. After the last op the log and engine are closed and their
// files measured: bytes-on-disk is the allocated blocks of every file under
// the engine's directory, or for an engine with a cold tier the bytes its
// cold tier holds (what object storage would bill), with the rest reported
// as local-bytes.
func benchJSONDisk(b *testing.B, t Target) {
	fx := jsonFixtureOnce()
	root := b.TempDir()
	var disk, cold int64
	b.SetBytes(int64(fx.logical))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(root, strconv.Itoa(i))
		e, l, clk := t.openJSON(b, dir)
		settle()
		b.StartTimer()
		t.fillJSON(b, l, clk, fx)
		b.StopTimer()
		closeAll(b, e, l)
		disk = diskBytes(b, dir)
		if t.Cold != nil {
			cold = t.coldBytes(b, dir)
		}
		// Reopen to delete, so an engine that keeps its logs in memory
		// gives them back.
		e, l = t.open(b, dir)
		discard(b, e, l)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	logical := float64(fx.logical + len(fx.tail.bytes))
	switch {
	case t.Cold != nil:
		b.ReportMetric(float64(cold), "bytes-on-disk")
		b.ReportMetric(float64(cold)/logical, "disk/logical")
		b.ReportMetric(float64(disk-cold), "local-bytes")
	case disk > 0:
		b.ReportMetric(float64(disk), "bytes-on-disk")
		b.ReportMetric(float64(disk)/logical, "disk/logical")
	}
}

// benchReadCold scans the JSON fixture as read-seq scans its log (1 MiB
// reads, every byte copied once into the sink) after fillJSON: for an
// engine with a cold tier, once every sealed segment is settled, so the
// scan reads the cold tier; for the others, their only tier. The first
// pass is not timed, as in read-seq; a cold tier must still hold the
// fixture afterwards, with no more local bytes than before it.
func benchReadCold(b *testing.B, t Target) {
	ctx := context.Background()
	fx := jsonFixtureOnce()
	dir := b.TempDir()
	e, l, clk := t.openJSON(b, dir)
	defer discard(b, e, l)
	t.fillJSON(b, l, clk, fx)
	var cold, local int64
	if t.Cold != nil {
		cold = t.coldBytes(b, dir)
		local = diskBytes(b, dir) - cold
		if cold == 0 {
			b.Fatalf("%s: nothing in the cold tier after settle", t.Name)
		}
	}
	start, end := l.Offsets()
	s := &sink{}
	total := 0
	scan := func() { total = scanLog(ctx, b, l, s, start, end) }
	scan()
	if want := fx.logical + len(fx.tail.bytes); total != want {
		b.Fatalf("read %d bytes, wrote %d", total, want)
	}
	if t.Cold != nil {
		if got := diskBytes(b, dir) - t.coldBytes(b, dir); got > local {
			b.Fatalf("%s: a scan grew the local bytes from %d to %d: the reads did not stay cold", t.Name, local, got)
		}
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	settle()
	b.ResetTimer()
	for range b.N {
		scan()
	}
	b.StopTimer()
}
