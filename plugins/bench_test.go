package plugins

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mmap"
)

// BenchmarkBoundary prices the process boundary: the same appends and
// reads on mmap in process and through examples/builtin.
func BenchmarkBoundary(b *testing.B) {
	opens := []struct {
		name string
		open func(dir string) (engine.Engine, error)
	}{
		{"inprocess", func(dir string) (engine.Engine, error) {
			return mmap.Open(context.Background(), dir, quietOptions())
		}},
		{"plugin", func(dir string) (engine.Engine, error) {
			return openBuiltin(context.Background(), "mmap", dir, quietOptions())
		}},
	}
	for _, o := range opens {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%s/append/%dB", o.name, size), func(b *testing.B) {
				benchAppend(b, o.open, size)
			})
		}
		// Groups as the broker hands them over: a produce request's
		// batches for one partition, through engine.AppendBatches (a loop
		// of Append in process, one call through the plugin).
		for _, g := range []struct{ n, size int }{{64, 1 << 10}, {16, 16 << 10}, {64, 16 << 10}} {
			b.Run(fmt.Sprintf("%s/append-x%d/%dB", o.name, g.n, g.size), func(b *testing.B) {
				benchAppendGroup(b, o.open, g.n, g.size)
			})
		}
		b.Run(o.name+"/read/1MiB", func(b *testing.B) { benchRead(b, o.open) })
	}
}

func benchLog(b *testing.B, open func(string) (engine.Engine, error)) engine.Log {
	e, err := open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	l, err := e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func benchAppend(b *testing.B, open func(string) (engine.Engine, error), size int) {
	ctx := context.Background()
	l := benchLog(b, open)
	data, _ := enginetest.NewBatch(0, 1, size, 0, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		batch, meta := enginetest.NewBatch(off, 1, size, 0, 1)
		if err := l.Append(ctx, meta, batch); err != nil {
			b.Fatal(err)
		}
		off++
	}
	b.ReportMetric(float64(off)/b.Elapsed().Seconds(), "batches/s")
}

// benchAppendGroup appends n batches of one size-byte record per
// engine.AppendBatches call. The batches are built once and only their base
// offsets change (the CRC does not cover them), so the loop measures the
// appends and not the building.
func benchAppendGroup(b *testing.B, open func(string) (engine.Engine, error), n, size int) {
	ctx := context.Background()
	l := benchLog(b, open)
	group := make([]engine.Batch, n)
	for i := range group {
		data, meta := enginetest.NewBatch(int64(i), 1, size, 0, byte(i))
		group[i] = engine.Batch{Meta: meta, Data: data}
	}
	b.SetBytes(int64(n * len(group[0].Data)))
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		for i := range group {
			binary.BigEndian.PutUint64(group[i].Data, uint64(off))
			group[i].Meta.BaseOffset, group[i].Meta.LastOffset = off, off
			off++
		}
		if k, err := engine.AppendBatches(ctx, l, group); err != nil || k != n {
			b.Fatalf("AppendBatches: %d of %d, %v", k, n, err)
		}
	}
	b.ReportMetric(float64(off)/b.Elapsed().Seconds(), "batches/s")
}

func benchRead(b *testing.B, open func(string) (engine.Engine, error)) {
	ctx := context.Background()
	l := benchLog(b, open)
	const n = 256
	for i := range int64(n) {
		batch, meta := enginetest.NewBatch(i, 1, 4<<10, 0, 1)
		if err := l.Append(ctx, meta, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var read int64
	for b.Loop() {
		recs, err := l.Read(ctx, 0, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		read += int64(recs.Len())
		recs.Release()
	}
	b.SetBytes(read / int64(b.N))
}
