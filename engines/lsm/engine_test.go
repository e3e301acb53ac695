package lsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

var ctx = context.Background()

func testOptions(settings map[string]string) engine.Options {
	return engine.Options{
		Logger:   slog.New(slog.DiscardHandler),
		Settings: settings,
	}
}

func openEngine(t testing.TB, dir string, opts engine.Options) *Engine {
	t.Helper()
	e, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func openLog(t testing.TB, e *Engine, tp engine.TopicPartition, opts engine.LogOptions) *Log {
	t.Helper()
	l, err := e.OpenLog(ctx, tp, opts)
	if err != nil {
		t.Fatalf("OpenLog(%s): %v", tp, err)
	}
	return l.(*Log)
}

// appendBatch appends a batch of records records at the log's end and
// returns its bytes.
func appendBatch(t testing.TB, l engine.Log, records, value int, ts int64) []byte {
	t.Helper()
	_, end := l.Offsets()
	b, m := enginetest.NewBatch(end, records, value, ts, byte(end))
	if err := l.Append(ctx, m, b); err != nil {
		t.Fatalf("Append at %d: %v", end, err)
	}
	return b
}

// TestConformanceFlushing runs the suite with the smallest memtable, so
// that memtables flush to sstables and compact while it runs: range
// deletions then cover keys in sstables, and large batches go through
// Pebble's flushable-batch path.
func TestConformanceFlushing(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			opts.Settings = map[string]string{
				"strata.pebble.memtable.size":                  "262144",
				"strata.pebble.l0.compaction.threshold":        "2",
				"strata.pebble.value.separation.min.size":      "512",
				"strata.pebble.compression":                    "snappy",
				"strata.pebble.memtable.stop.writes.threshold": "2",
			}
			return Open(context.Background(), dir, opts)
		},
		Durable: true,
	})
}

// TestKeyLayout checks the documented keys byte for byte by reading the
// DB with Pebble directly after the engine closed it.
func TestKeyLayout(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(nil))
	a := openLog(t, e, engine.TopicPartition{Topic: "orders", Partition: 7}, engine.LogOptions{IndexIntervalBytes: 1})
	b1 := appendBatch(t, a, 3, 50, 1000) // offsets 0..2
	b2 := appendBatch(t, a, 2, 50, 900)  // offsets 3..4
	if err := a.DeleteBefore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	openLog(t, e, engine.TopicPartition{Topic: "b", Partition: 0}, engine.LogOptions{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := map[string][]byte{}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		got[fmt.Sprintf("%x", it.Key())] = bytes.Clone(it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64s := func(vs ...int64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
		return b
	}
	want := map[string][]byte{
		"0069":                              u32(3),     // next id
		"00636f726465727300" + "00000007":   u32(1),     // "orders" 0x00 partition 7
		"006362" + "00" + "00000000":        u32(2),     // "b" 0x00 partition 0
		"010000000173":                      u64s(1, 0), // orders: start 1, no bytes below its batch
		"01000000016400000000" + "00000000": b1,         // data at 0
		"01000000016400000000" + "00000003": b2,         // data at 3
		"01000000017400000000" + "00000000": u64s(maxTs(b1), int64(len(b1))),
		"01000000017400000000" + "00000003": u64s(max(maxTs(b1), maxTs(b2)), int64(len(b1)+len(b2))),
		"010000000273":                      u64s(0, 0), // b: empty
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("key %s = %x, want %x", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s", k)
		}
	}
}

// maxTs returns a batch's maxTimestamp.
func maxTs(b []byte) int64 {
	h, err := engine.ParseBatchHeader(b)
	if err != nil {
		panic(err)
	}
	return h.MaxTimestamp
}

// TestSettings checks that strata.pebble.* keys are validated and applied,
// and that other strata.* keys are left to other engines.
func TestSettings(t *testing.T) {
	s, err := ParseSettings(map[string]string{
		"strata.pebble.memtable.size":              "33554432",
		"strata.pebble.compression":                "ZSTD",
		"strata.pebble.max.concurrent.compactions": "3",
		"strata.tiered.something":                  "x",
		"log.retention.ms":                         "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.MemTableSize != 32<<20 || s.Compression != "zstd" || s.MaxConcurrentCompactions != 3 || s.CacheSize != DefaultSettings().CacheSize {
		t.Fatalf("parsed %+v", s)
	}
	for _, c := range []struct{ key, value, want string }{
		{"strata.pebble.memtable.sise", "1", "unknown key strata.pebble.memtable.sise"},
		{"strata.pebble.memtable.size", "64MB", "strata.pebble.memtable.size=\"64MB\": not an integer"},
		{"strata.pebble.memtable.size", "1024", "strata.pebble.memtable.size=\"1024\": must be in"},
		{"strata.pebble.compression", "lz4", "strata.pebble.compression=\"lz4\": must be none, snappy or zstd"},
		{"strata.pebble.cache.size", "-1", "strata.pebble.cache.size"},
		{"strata.pebble.l0.stop.writes.threshold", "2", "l0.stop.writes.threshold=2: must be >="},
	} {
		_, err := ParseSettings(map[string]string{c.key: c.value})
		if !errors.Is(err, engine.ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want ErrInvalidOptions naming %q", c.key, c.value, err, c.want)
		}
		// The registry path fails the same way, before touching dir.
		dir := t.TempDir() + "/never"
		_, err = engine.Open(ctx, Name, dir, testOptions(map[string]string{c.key: c.value}))
		if !errors.Is(err, engine.ErrInvalidOptions) {
			t.Errorf("engine.Open with %s=%s: %v", c.key, c.value, err)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("engine.Open with a bad setting created %s", dir)
		}
	}
	if names := SettingNames(); len(names) != len(settings) || !strings.HasPrefix(names[0], SettingsPrefix) {
		t.Fatalf("SettingNames() = %v", names)
	}
}

// TestThousandsOfLogs opens 2,000 logs in one engine, appends to each, and
// checks that the DB directory holds a few files, not thousands; that a
// reopen finds them; and that a deleted log's id is not used again.
func TestThousandsOfLogs(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(nil))
	data := make([][]byte, n)
	tp := func(i int) engine.TopicPartition {
		return engine.TopicPartition{Topic: fmt.Sprintf("topic-%d", i%40), Partition: int32(i / 40)}
	}
	for i := range n {
		l := openLog(t, e, tp(i), engine.LogOptions{})
		for range 3 {
			data[i] = append(data[i], appendBatch(t, l, 2, 100+i%200, int64(i))...)
		}
		if i%2 == 0 {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 30 {
		t.Fatalf("%d files in the DB directory with %d logs, want a few", len(ents), n)
	}
	t.Logf("%d logs, %d files in the DB directory", n, len(ents))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine(t, dir, testOptions(nil))
	tps, err := e.Logs(ctx)
	if err != nil || len(tps) != n {
		t.Fatalf("Logs() = %d logs, %v; want %d", len(tps), err, n)
	}
	for i := 0; i < n; i += 97 {
		l := openLog(t, e, tp(i), engine.LogOptions{})
		r, err := l.Read(ctx, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(r.Chunks, nil); !bytes.Equal(got, data[i]) {
			t.Fatalf("log %s: read %d bytes, want the %d appended", tp(i), len(got), len(data[i]))
		}
		r.Release()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Ids: deleting and recreating a log gives it a new id.
	old := e.catalog[tp(5)]
	if err := e.DeleteLog(ctx, tp(5)); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, e, tp(5), engine.LogOptions{})
	if l.id == old || l.id != n+1 {
		t.Fatalf("recreated log has id %d (was %d), want %d", l.id, old, n+1)
	}
	if s, end := l.Offsets(); s != 0 || end != 0 {
		t.Fatalf("recreated log holds [%d, %d)", s, end)
	}
}

// TestFlushPolicy checks flush.messages (records since the log was last
// durable) and flush.ms (the background flusher, by Options.Now).
func TestFlushPolicy(t *testing.T) {
	t.Run("messages", func(t *testing.T) {
		e := openEngine(t, t.TempDir(), testOptions(nil))
		l := openLog(t, e, engine.TopicPartition{Topic: "m", Partition: 0}, engine.LogOptions{FlushMessages: 5})
		for i := range 4 {
			appendBatch(t, l, 1, 10, 0)
			if l.durable() {
				t.Fatalf("durable after %d one-record appends with flush.messages=5", i+1)
			}
		}
		appendBatch(t, l, 1, 10, 0)
		if !l.durable() {
			t.Fatal("not durable after 5 one-record appends with flush.messages=5")
		}
		appendBatch(t, l, 5, 10, 0)
		if !l.durable() {
			t.Fatal("not durable after a 5-record append with flush.messages=5")
		}
		one := openLog(t, e, engine.TopicPartition{Topic: "m", Partition: 1}, engine.LogOptions{FlushMessages: 1})
		appendBatch(t, one, 1, 10, 0)
		if !one.durable() {
			t.Fatal("not durable after an append with flush.messages=1")
		}
	})
	t.Run("interval", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		opts := testOptions(nil)
		opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		e := openEngine(t, t.TempDir(), opts)
		l := openLog(t, e, engine.TopicPartition{Topic: "i", Partition: 0}, engine.LogOptions{FlushInterval: 40 * time.Millisecond})
		appendBatch(t, l, 3, 10, 0)
		time.Sleep(100 * time.Millisecond) // real time passes, Now does not
		if l.durable() {
			t.Fatal("synced before flush.ms passed by Now")
		}
		mu.Lock()
		now = now.Add(40 * time.Millisecond)
		mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); !l.durable(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the flusher did not sync a log older than flush.ms")
			}
		}
	})
}

// TestSharedSync checks that one WAL sync covers every log: after one log's
// Sync, the others are durable without syncing.
func TestSharedSync(t *testing.T) {
	e := openEngine(t, t.TempDir(), testOptions(nil))
	var logs []*Log
	for i := range 5 {
		l := openLog(t, e, engine.TopicPartition{Topic: "s", Partition: int32(i)}, engine.LogOptions{})
		appendBatch(t, l, 1, 10, 0)
		logs = append(logs, l)
	}
	if err := logs[4].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		if !l.durable() {
			t.Fatalf("log %d not durable after another log's Sync", i)
		}
	}
}

// TestOSFS runs appends, a reopen and reads on the operating system's FS
// itself (the suite wraps it in a FaultFS).
func TestOSFS(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(nil)
	opts.FS = engine.OSFS
	e := openEngine(t, dir, opts)
	l := openLog(t, e, engine.TopicPartition{Topic: "os", Partition: 0}, engine.LogOptions{})
	want := appendBatch(t, l, 4, 1000, 5)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir, opts)
	l = openLog(t, e, engine.TopicPartition{Topic: "os", Partition: 0}, engine.LogOptions{})
	r, err := l.Read(ctx, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if got := bytes.Join(r.Chunks, nil); !bytes.Equal(got, want) || r.NextOffset != 4 {
		t.Fatalf("read %d bytes, next %d; want the %d-byte batch, next 4", len(got), r.NextOffset, len(want))
	}
	if _, err := Open(ctx, dir, opts); err == nil {
		t.Fatal("a second engine opened on the same directory")
	}
}

// quietLogger drops Pebble's logs (it logs WAL replay on open).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// TestFlushedToSSTables appends well past a small memtable, so that the
// batches live in sstables, and reads them back across DeleteBefore,
// Truncate and a reopen.
func TestFlushedToSSTables(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(map[string]string{"strata.pebble.memtable.size": "262144"})
	e := openEngine(t, dir, opts)
	tp := engine.TopicPartition{Topic: "sst", Partition: 0}
	l := openLog(t, e, tp, engine.LogOptions{})
	var all [][]byte
	for range 400 {
		all = append(all, appendBatch(t, l, 2, 4000, 7))
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(l engine.Log, from int, what string) {
		t.Helper()
		s, _ := l.Offsets()
		r, err := l.Read(ctx, max(s, int64(2*from)), 1<<30)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer r.Release()
		want := bytes.Join(all[from:], nil)
		if got := bytes.Join(r.Chunks, nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, want %d", what, len(got), len(want))
		}
	}
	check(l, 0, "after appends")
	if err := l.DeleteBefore(ctx, 201); err != nil { // inside batch 100
		t.Fatal(err)
	}
	if err := l.Truncate(ctx, 600); err != nil {
		t.Fatal(err)
	}
	all = all[:300]
	check(l, 100, "after DeleteBefore and Truncate")
	if got, want := l.Size(), int64(len(bytes.Join(all[100:], nil))); got != want {
		t.Fatalf("Size() = %d, want %d", got, want)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	ssts := 0
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".sst") {
			ssts++
		}
	}
	if ssts == 0 {
		t.Fatalf("no sstable in %v after 3 MiB through 256 KiB memtables", ents)
	}
	e = openEngine(t, dir, opts)
	l = openLog(t, e, tp, engine.LogOptions{})
	check(l, 100, "after a reopen")
	if got, want := l.Size(), int64(len(bytes.Join(all[100:], nil))); got != want {
		t.Fatalf("Size() after a reopen = %d, want %d", got, want)
	}
}
