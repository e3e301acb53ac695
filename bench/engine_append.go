package bench

// The append ops: append-100B, append-1KiB, append-16KiB and
// append-16KiB-durable (benchAppend), and the grouped append-<size>-x<n>
// (benchAppendGroup).

import (
	"context"
	"testing"
)

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
