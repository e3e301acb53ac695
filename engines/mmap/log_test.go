package mmap

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/segment"
)

var (
	ctx = context.Background()
	tp  = engine.TopicPartition{Topic: "unit", Partition: 3}
)

// countingFS counts the calls that change the disk, per kind.
type countingFS struct {
	engine.FS
	mu     sync.Mutex
	counts map[string]int
	syncs  map[string]int // File.Sync by file name
}

func newCountingFS() *countingFS {
	return &countingFS{FS: engine.OSFS, counts: map[string]int{}, syncs: map[string]int{}}
}

func (c *countingFS) add(kind, name string) {
	c.mu.Lock()
	c.counts[kind]++
	if kind == "sync" {
		c.syncs[filepath.Base(name)]++
	}
	c.mu.Unlock()
}

func (c *countingFS) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[kind]
}

func (c *countingFS) reset() {
	c.mu.Lock()
	clear(c.counts)
	clear(c.syncs)
	c.mu.Unlock()
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (engine.File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		c.add("create", name)
	}
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c}, nil
}
func (c *countingFS) Remove(name string) error  { c.add("remove", name); return c.FS.Remove(name) }
func (c *countingFS) Rename(o, n string) error  { c.add("rename", n); return c.FS.Rename(o, n) }
func (c *countingFS) SyncDir(name string) error { c.add("syncdir", name); return c.FS.SyncDir(name) }
func (c *countingFS) MkdirAll(n string, p os.FileMode) error {
	c.add("mkdir", n)
	return c.FS.MkdirAll(n, p)
}

type countingFile struct {
	engine.File
	fs *countingFS
}

func (f *countingFile) Write(p []byte) (int, error) {
	f.fs.add("write", f.Name())
	return f.File.Write(p)
}
func (f *countingFile) WriteAt(p []byte, o int64) (int, error) {
	f.fs.add("write", f.Name())
	return f.File.WriteAt(p, o)
}
func (f *countingFile) Sync() error { f.fs.add("sync", f.Name()); return f.File.Sync() }
func (f *countingFile) Truncate(n int64) error {
	f.fs.add("truncate", f.Name())
	return f.File.Truncate(n)
}

// clock is a settable Options.Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func testOptions(fs engine.FS) engine.Options {
	return engine.Options{
		FS:     fs,
		Logger: slog.New(slog.DiscardHandler),
		Log: engine.LogOptions{
			SegmentBytes:       8 << 10,
			IndexIntervalBytes: 256,
			SegmentIndexBytes:  1 << 10,
		},
	}
}

func openEngine(t testing.TB, dir string, opts engine.Options) *Engine {
	t.Helper()
	e, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func openLog(t testing.TB, e *Engine, lo engine.LogOptions) *Log {
	t.Helper()
	l, err := e.OpenLog(ctx, tp, lo)
	if err != nil {
		t.Fatal(err)
	}
	return l.(*Log)
}

type batch struct {
	meta engine.BatchMeta
	data []byte
}

// fill appends n batches of about size bytes at the log's end.
func fill(t testing.TB, l engine.Log, n, size int) []batch {
	t.Helper()
	var out []batch
	for i := range n {
		_, end := l.Offsets()
		data, meta := enginetest.NewBatch(end, 1+i%3, size, 1000+end, byte(i))
		if err := l.Append(ctx, meta, data); err != nil {
			t.Fatalf("Append at %d: %v", end, err)
		}
		out = append(out, batch{meta, data})
	}
	return out
}

// readAll reads the log from its start and returns the bytes of every batch.
func readAll(t testing.TB, l engine.Log) []byte {
	t.Helper()
	start, end := l.Offsets()
	var out []byte
	for from := start; from < end; {
		r, err := l.Read(ctx, from, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		for _, c := range r.Chunks {
			out = append(out, c...)
		}
		from = r.NextOffset
		r.Release()
	}
	return out
}

func concat(bs []batch) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b.data...)
	}
	return out
}

func segmentFiles(t testing.TB, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, ent := range entries {
		if b, s, ok := segment.ParseFileName(ent.Name()); ok && s == segment.LogSuffix {
			bases = append(bases, b)
		}
	}
	return bases
}

// snapshot copies the engine directory as it is on disk now (page cache
// included): what a process killed at this moment leaves behind.
func snapshot(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	// The engine's background flusher may replace a checkpoint while the
	// walk runs: a file that vanished between listing and reading is left
	// out, as a crash at that instant could equally have left it.
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCheckpointFormat(t *testing.T) {
	b := encodeCheckpoint(recoveryPointFile, 0x0102030405060708)
	want := []byte{'S', 'R', 'P', '1', 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(b[:12], want) || len(b) != checkpointSize {
		t.Fatalf("% x", b)
	}
	if off, err := decodeCheckpoint(recoveryPointFile, b); err != nil || off != 0x0102030405060708 {
		t.Fatal(off, err)
	}
	for i := range b {
		d := bytes.Clone(b)
		d[i] ^= 0x10
		if _, err := decodeCheckpoint(recoveryPointFile, d); !errors.Is(err, errBadCheckpoint) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := decodeCheckpoint(logStartFile, b); !errors.Is(err, errBadCheckpoint) {
		t.Fatal("a recovery point read as a log start offset")
	}
}

// TestCheckpointAtomicity checks what an interrupted checkpoint write
// leaves: a stray temporary file changes nothing, a damaged recovery point
// only costs validation, and a damaged log start offset refuses to open.
func TestCheckpointAtomicity(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS))
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 40, 300)
	if err := l.DeleteBefore(ctx, bs[3].meta.BaseOffset); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, dirName(tp))
	rp, found, err := readCheckpoint(engine.OSFS, pdir, recoveryPointFile)
	if err != nil || !found || rp != bs[39].meta.LastOffset+1 {
		t.Fatalf("recovery point after a clean close: %d, %v, %v", rp, found, err)
	}
	want := concat(bs[3:])

	reopen := func() (*Engine, *Log, error) {
		e := openEngine(t, dir, testOptions(engine.OSFS))
		l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
		if err != nil {
			return e, nil, err
		}
		return e, l.(*Log), nil
	}
	// A write interrupted before its rename: garbage in the .tmp file.
	for _, name := range []string{recoveryPointFile, logStartFile} {
		if err := os.WriteFile(filepath.Join(pdir, name+tmpSuffix), []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, l, err = reopen()
	if err != nil || !bytes.Equal(readAll(t, l), want) {
		t.Fatalf("reopen with stray temporary files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pdir, recoveryPointFile+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stray temporary file not removed")
	}
	e.Close()

	// A damaged recovery point: every segment is validated, nothing lost.
	if err := os.WriteFile(filepath.Join(pdir, recoveryPointFile), []byte("0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, l, err = reopen()
	if err != nil || !bytes.Equal(readAll(t, l), want) {
		t.Fatalf("reopen with a damaged recovery point: %v", err)
	}
	e.Close()

	// A damaged log start offset: data below the start could come back.
	start, _, _ := readCheckpoint(engine.OSFS, pdir, logStartFile)
	rpBytes, _ := os.ReadFile(filepath.Join(pdir, recoveryPointFile))
	if err := os.WriteFile(filepath.Join(pdir, logStartFile), rpBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	e, _, err = reopen()
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("reopen with a recovery point copied over the log start offset: %v", err)
	}
	e.Close()
	if err := writeCheckpoint(engine.OSFS, pdir, logStartFile, start); err != nil {
		t.Fatal(err)
	}
	e, l, err = reopen()
	if err != nil || !bytes.Equal(readAll(t, l), want) {
		t.Fatalf("reopen with the log start offset restored: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRolls checks the three reasons a segment rolls: size (a batch that
// would overflow goes to a new segment; a batch larger than a segment sits
// alone), age (segment.ms by Options.Now) and a full index.
func TestRolls(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		dir := t.TempDir()
		e := openEngine(t, dir, testOptions(engine.OSFS))
		l := openLog(t, e, engine.LogOptions{})
		var bs []batch
		bs = append(bs, fill(t, l, 10, 1000)...)  // about 1 KiB each: 8 per segment
		bs = append(bs, fill(t, l, 1, 20<<10)...) // larger than a segment
		bs = append(bs, fill(t, l, 3, 100)...)
		pdir := filepath.Join(dir, dirName(tp))
		bases := segmentFiles(t, pdir)
		var sizes []int64
		for _, b := range bases {
			fi, err := os.Stat(filepath.Join(pdir, segment.FileName(b, segment.LogSuffix)))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, fi.Size())
		}
		huge := slices.IndexFunc(bases, func(b int64) bool { return b == bs[10].meta.BaseOffset })
		if huge < 1 || sizes[huge] != int64(len(bs[10].data)) {
			t.Fatalf("segments %v of sizes %v: the huge batch at %d is not alone", bases, sizes, bs[10].meta.BaseOffset)
		}
		for i, s := range sizes {
			if i != huge && s > 8<<10 {
				t.Fatalf("segment %d is %d bytes, over segment.bytes", bases[i], s)
			}
		}
		if !bytes.Equal(readAll(t, l), concat(bs)) {
			t.Fatal("read back differs")
		}
	})
	t.Run("age", func(t *testing.T) {
		dir := t.TempDir()
		var c clock
		opts := testOptions(engine.OSFS)
		opts.Now = c.now
		e := openEngine(t, dir, opts)
		l := openLog(t, e, engine.LogOptions{SegmentMs: time.Hour})
		fill(t, l, 2, 10)
		c.advance(59 * time.Minute)
		fill(t, l, 1, 10)
		if n := len(segmentFiles(t, l.dir)); n != 1 {
			t.Fatalf("%d segments before segment.ms", n)
		}
		c.advance(time.Minute)
		bs := fill(t, l, 1, 10)
		if got := segmentFiles(t, l.dir); len(got) != 2 || got[1] != bs[0].meta.BaseOffset {
			t.Fatalf("segments %v after segment.ms, want a new one at %d", got, bs[0].meta.BaseOffset)
		}
		c.advance(2 * time.Hour) // an idle segment rolls at its next append only
		fill(t, l, 1, 10)
		if n := len(segmentFiles(t, l.dir)); n != 3 {
			t.Fatalf("%d segments", n)
		}
	})
	t.Run("index full", func(t *testing.T) {
		dir := t.TempDir()
		e := openEngine(t, dir, testOptions(engine.OSFS))
		// 48-byte indexes, an entry for every batch but the first: the
		// time index (4 entries, one kept for sealing) fills first.
		l := openLog(t, e, engine.LogOptions{SegmentIndexBytes: engine.MinSegmentIndexBytes, IndexIntervalBytes: 1})
		bs := fill(t, l, 10, 10)
		if got := segmentFiles(t, l.dir); len(got) != 3 || got[1] != bs[4].meta.BaseOffset {
			t.Fatalf("segments %v, want rolls every 4 batches", got)
		}
	})
}

// TestFlushPolicy checks flush.messages (records since the last sync) and
// flush.ms (the background flusher, by Options.Now).
func TestFlushPolicy(t *testing.T) {
	logSyncs := func(fs *countingFS) int {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		n := 0
		for name, k := range fs.syncs {
			if strings.HasSuffix(name, segment.LogSuffix) {
				n += k
			}
		}
		return n
	}
	t.Run("messages", func(t *testing.T) {
		fs := newCountingFS()
		e := openEngine(t, t.TempDir(), testOptions(fs))
		l := openLog(t, e, engine.LogOptions{FlushMessages: 5})
		for range 4 {
			fill(t, l, 1, 10) // a one-record batch
		}
		if n := logSyncs(fs); n != 0 {
			t.Fatalf("%d syncs after 4 one-record appends with flush.messages=5", n)
		}
		fill(t, l, 1, 10)
		if n := logSyncs(fs); n != 1 {
			t.Fatalf("%d syncs after 5 one-record appends with flush.messages=5", n)
		}
		for range 4 {
			fill(t, l, 1, 10)
		}
		if n := logSyncs(fs); n != 1 {
			t.Fatalf("%d syncs after 4 more", n)
		}
		fill(t, l, 1, 10)
		if n := logSyncs(fs); n != 2 {
			t.Fatalf("%d syncs after 5 more", n)
		}
	})
	t.Run("interval", func(t *testing.T) {
		fs := newCountingFS()
		var c clock
		c.advance(time.Duration(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
		opts := testOptions(fs)
		opts.Now = c.now
		e := openEngine(t, t.TempDir(), opts)
		l := openLog(t, e, engine.LogOptions{FlushInterval: 40 * time.Millisecond})
		fill(t, l, 3, 10)
		time.Sleep(100 * time.Millisecond) // real time passes, Now does not
		if n := logSyncs(fs); n != 0 {
			t.Fatalf("%d syncs before flush.ms passed by Now", n)
		}
		c.advance(40 * time.Millisecond)
		for deadline := time.Now().Add(5 * time.Second); logSyncs(fs) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the flusher did not sync a log older than flush.ms")
			}
		}
		if l.dirtySince.Load() != 0 {
			t.Fatal("still dirty after the flush")
		}
		n := logSyncs(fs)
		c.advance(time.Hour)
		time.Sleep(50 * time.Millisecond)
		if logSyncs(fs) != n {
			t.Fatal("a clean log synced again")
		}
	})
}

// TestCleanReopenTrusts checks that a cleanly closed engine reopens
// without validating, rewriting or syncing anything, and that the first
// append after it lowers the recovery point to the last segment's base
// before its indexes go back to their preallocated form.
func TestCleanReopenTrusts(t *testing.T) {
	dir := t.TempDir()
	fs := newCountingFS()
	e := openEngine(t, dir, testOptions(fs))
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 60, 500)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fs.reset()
	e = openEngine(t, dir, testOptions(fs))
	l = openLog(t, e, engine.LogOptions{})
	for _, kind := range []string{"create", "write", "truncate", "sync", "rename", "remove", "syncdir"} {
		if n := fs.get(kind); n != 0 {
			t.Fatalf("clean reopen: %d %s calls", n, kind)
		}
	}
	if !bytes.Equal(readAll(t, l), concat(bs)) {
		t.Fatal("read back differs")
	}
	if _, err := l.OffsetForTime(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if len(l.pending) != 0 || l.rp != bs[59].meta.LastOffset+1 {
		t.Fatalf("pending %d, rp %d", len(l.pending), l.rp)
	}
	fill(t, l, 1, 10)
	last := l.active().Base()
	if rp, _, err := readCheckpoint(engine.OSFS, l.dir, recoveryPointFile); err != nil || rp != last {
		t.Fatalf("recovery point %d after appending to a reopened log, want the last segment's base %d (%v)", rp, last, err)
	}
}

// TestCrashRecovery takes the disk image of a running engine (what a
// killed process leaves), adds a torn batch to its last segment and
// reopens it: everything appended is back (a process crash loses nothing
// the page cache has), the torn bytes are cut exactly, the recovery point
// moves on once the flusher has synced what was validated, and a second
// reopen trusts everything.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS))
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 50, 400)
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bs = append(bs, fill(t, l, 5, 400)...) // not synced
	img := snapshot(t, dir)
	pdir := filepath.Join(img, dirName(tp))
	bases := segmentFiles(t, pdir)
	lastFile := filepath.Join(pdir, segment.FileName(bases[len(bases)-1], segment.LogSuffix))
	good, err := os.ReadFile(lastFile)
	if err != nil {
		t.Fatal(err)
	}
	torn, _ := enginetest.NewBatch(bs[len(bs)-1].meta.LastOffset+1, 3, 300, 0, 9)
	if err := os.WriteFile(lastFile, append(bytes.Clone(good), torn[:len(torn)-7]...), 0o644); err != nil {
		t.Fatal(err)
	}

	e2 := openEngine(t, img, testOptions(engine.OSFS))
	l2 := openLog(t, e2, engine.LogOptions{})
	if _, end := l2.Offsets(); end != bs[len(bs)-1].meta.LastOffset+1 {
		t.Fatalf("recovered end %d", end)
	}
	if !bytes.Equal(readAll(t, l2), concat(bs)) {
		t.Fatal("recovered batches differ")
	}
	if got, _ := os.ReadFile(lastFile); !bytes.Equal(got, good) {
		t.Fatalf("last segment %d bytes after recovery, want exactly the %d good ones", len(got), len(good))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		rp, _, _ := readCheckpoint(engine.OSFS, pdir, recoveryPointFile)
		if rp == l2.active().Base() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recovery point %d, want it moved to the last segment's base %d after the flusher synced", rp, l2.active().Base())
		}
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	fs := newCountingFS()
	e3 := openEngine(t, img, testOptions(fs))
	l3 := openLog(t, e3, engine.LogOptions{})
	if fs.get("write") != 0 || !bytes.Equal(readAll(t, l3), concat(bs)) {
		t.Fatalf("second reopen: %d writes", fs.get("write"))
	}
}

// TestTruncateAndDeleteBeforeAreDurable checks that Truncate and
// DeleteBefore hold in the disk image taken right after they return,
// without a Close.
func TestTruncateAndDeleteBeforeAreDurable(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS))
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 80, 300)
	if err := e.Close(); err != nil { // recovery point at the end
		t.Fatal(err)
	}
	e = openEngine(t, dir, testOptions(engine.OSFS))
	l = openLog(t, e, engine.LogOptions{})
	to := bs[31].meta.BaseOffset + 1 // inside a two-record batch
	if err := l.Truncate(ctx, to); err != nil {
		t.Fatal(err)
	}
	check := func(start, end int64, want []byte) {
		t.Helper()
		img := snapshot(t, dir)
		e := openEngine(t, img, testOptions(engine.OSFS))
		l := openLog(t, e, engine.LogOptions{})
		if s, en := l.Offsets(); s != start || en != end {
			t.Fatalf("image: [%d, %d), want [%d, %d)", s, en, start, end)
		}
		if !bytes.Equal(readAll(t, l), want) {
			t.Fatal("image: batches differ")
		}
	}
	check(0, bs[31].meta.BaseOffset, concat(bs[:31]))
	if rp, _, _ := readCheckpoint(engine.OSFS, l.dir, recoveryPointFile); rp > l.active().Base() {
		t.Fatalf("recovery point %d above the truncated segment's base %d", rp, l.active().Base())
	}
	more := fill(t, l, 10, 300)
	if err := l.DeleteBefore(ctx, bs[20].meta.BaseOffset); err != nil {
		t.Fatal(err)
	}
	_, end := l.Offsets()
	check(bs[20].meta.BaseOffset, end, concat(append(bs[20:31:31], more...)))
	if err := l.DeleteBefore(ctx, end+100); err != nil {
		t.Fatal(err)
	}
	check(end+100, end+100, nil)
}

func TestOptionsAndNames(t *testing.T) {
	if !slices.Contains(engine.Names(), "mmap") {
		t.Fatal("mmap not registered")
	}
	dir := t.TempDir()
	e, err := engine.Open(ctx, "mmap", dir, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.OpenLog(ctx, tp, engine.LogOptions{SegmentBytes: math.MaxInt32 + 1}); !errors.Is(err, engine.ErrInvalidOptions) {
		t.Fatalf("segment.bytes over 2 GiB: %v", err)
	}
	if _, err := Open(ctx, dir, engine.Options{Log: engine.LogOptions{SegmentBytes: 10}}); !errors.Is(err, engine.ErrInvalidOptions) {
		t.Fatalf("segment.bytes 10: %v", err)
	}
	for _, bad := range []engine.TopicPartition{{Topic: "", Partition: 0}, {Topic: "../x", Partition: 0}, {Topic: "a/b", Partition: 1}, {Topic: "ok", Partition: -1}, {Topic: "..", Partition: 0}} {
		if _, err := e.OpenLog(ctx, bad, engine.LogOptions{}); err == nil {
			t.Fatalf("OpenLog(%v) accepted", bad)
		}
	}
	// Logs lists partition directories only.
	for _, junk := range []string{"notalog", "t-01", "t-x", "t-1.deleted", "-1", "t-99999999999"} {
		if err := os.Mkdir(filepath.Join(dir, junk), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file-1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "a-b.c_d", Partition: 12}, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := e.Logs(ctx)
	if err != nil || len(got) != 1 || got[0] != (engine.TopicPartition{Topic: "a-b.c_d", Partition: 12}) {
		t.Fatalf("Logs() = %v, %v", got, err)
	}
}

// TestAppendDoesNotAllocate guards the hot path.
func TestAppendDoesNotAllocate(t *testing.T) {
	e := openEngine(t, t.TempDir(), testOptions(engine.OSFS))
	l := openLog(t, e, engine.LogOptions{SegmentBytes: 1 << 30})
	data, meta := enginetest.NewBatch(0, 1, 100, 0, 1)
	span := meta.LastOffset - meta.BaseOffset
	next := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		be := data[:8]
		for i := range 8 {
			be[i] = byte(uint64(next) >> (56 - 8*i))
		}
		meta.BaseOffset, meta.LastOffset = next, next+span
		if err := l.Append(ctx, meta, data); err != nil {
			t.Fatal(err)
		}
		next += span + 1
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %.1f times", allocs)
	}
}

// truncFailFS fails File.Truncate while armed, and nothing else.
type truncFailFS struct {
	engine.FS
	armed atomic.Bool
}

func (f *truncFailFS) OpenFile(name string, flag int, perm os.FileMode) (engine.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &truncFailFile{File: file, fs: f}, nil
}

type truncFailFile struct {
	engine.File
	fs *truncFailFS
}

func (f *truncFailFile) Truncate(n int64) error {
	if f.fs.armed.Load() {
		return enginetest.ErrInjected
	}
	return f.File.Truncate(n)
}

// TestFailedRoll fails a roll (creating the new segment, or sealing the
// old one) and checks that the log fails (ErrLogFailed) with every
// appended batch still readable, and that a reopen recovers them all.
func TestFailedRoll(t *testing.T) {
	for _, c := range []struct {
		name string
		fs   func() (engine.FS, func(bool))
	}{
		{"create", func() (engine.FS, func(bool)) {
			f := enginetest.NewFaultFS(engine.OSFS)
			return f, func(on bool) {
				if on {
					f.Fail(enginetest.ErrInjected)
				} else {
					f.Fail(nil)
				}
			}
		}},
		{"seal", func() (engine.FS, func(bool)) {
			f := &truncFailFS{FS: engine.OSFS}
			return f, f.armed.Store
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fs, arm := c.fs()
			e := openEngine(t, dir, testOptions(fs))
			l := openLog(t, e, engine.LogOptions{})
			bs := fill(t, l, 7, 1000) // 7 KiB of an 8 KiB segment
			arm(true)
			_, end := l.Offsets()
			data, meta := enginetest.NewBatch(end, 2, 2000, 0, 1)
			if err := l.Append(ctx, meta, data); !errors.Is(err, engine.ErrLogFailed) {
				t.Fatalf("Append needing a roll while %s fails: %v", c.name, err)
			}
			if !bytes.Equal(readAll(t, l), concat(bs)) {
				t.Fatal("reads after the failed roll differ")
			}
			if _, err := l.OffsetForTime(ctx, 0); err != nil {
				t.Fatal(err)
			}
			e.Close()
			arm(false)
			e = openEngine(t, dir, testOptions(fs))
			l = openLog(t, e, engine.LogOptions{})
			if !bytes.Equal(readAll(t, l), concat(bs)) {
				t.Fatal("reopened log differs")
			}
			fill(t, l, 5, 1000)
		})
	}
}
