package bench

// The ops over the JSON log (jsonFixture): json-bytes-on-disk and
// read-cold, on engine options that roll its segments on a manual clock
// and, for an engine with a cold tier, settle them into it.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
)

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
