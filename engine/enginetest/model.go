package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/strata-broker/strata/engine"
)

// batch is one record batch as the suite appended it: the metadata handed
// to Append and the exact bytes.
type batch struct {
	meta engine.BatchMeta
	data []byte
}

// newBatch wraps NewBatch.
func newBatch(base int64, records, valueSize int, ts int64, seed byte) batch {
	data, meta := NewBatch(base, records, valueSize, ts, seed)
	return batch{meta: meta, data: data}
}

// model is what a log must hold: the batches appended and not truncated,
// and the offsets. Batches wholly below start stay in the model only until
// deleteBefore drops them; live returns what reads may return.
type model struct {
	batches    []batch
	start, end int64
}

func (m *model) add(b batch) {
	m.batches = append(m.batches, b)
	m.end = b.meta.LastOffset + 1
}

// live returns the batches that hold an offset >= start, the ones a read
// from start returns.
func (m *model) live() []batch {
	for i, b := range m.batches {
		if b.meta.LastOffset >= m.start {
			return m.batches[i:]
		}
	}
	return nil
}

// index returns the position of the batch holding offset off, or -1.
func (m *model) index(off int64) int {
	for i, b := range m.batches {
		if b.meta.BaseOffset <= off && off <= b.meta.LastOffset {
			return i
		}
	}
	return -1
}

// truncate mirrors Log.Truncate for an offset in [start, end).
func (m *model) truncate(to int64) {
	if to >= m.end {
		return
	}
	i := m.index(to)
	m.end = m.batches[i].meta.BaseOffset
	m.batches = m.batches[:i]
}

// deleteBefore mirrors Log.DeleteBefore.
func (m *model) deleteBefore(to int64) {
	switch {
	case to <= m.start:
	case to > m.end:
		m.batches, m.start, m.end = nil, to, to
	default:
		m.start = to
		m.batches = m.live()
	}
}

// offsetForTime is the brute-force answer to OffsetForTime(ts).
func (m *model) offsetForTime(ts int64) int64 {
	for _, b := range m.live() {
		if b.meta.MaxTimestamp >= ts {
			return max(b.meta.BaseOffset, m.start)
		}
	}
	return m.end
}

// gen produces batches of varied sizes, deterministically from its seed.
type gen struct{ rng *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 0x5eed))} }

// next returns a batch at base: mostly small, sometimes a few KiB, rarely
// tens of KiB, so that segments of SegmentBytes fill with batches of every
// size and index entries fall at uneven places.
func (g *gen) next(base int64) batch {
	var records, value int
	switch p := g.rng.IntN(100); {
	case p < 60:
		records, value = 1+g.rng.IntN(5), g.rng.IntN(200)
	case p < 90:
		records, value = 1+g.rng.IntN(10), 100+g.rng.IntN(2000)
	default:
		records, value = 1+g.rng.IntN(4), 2000+g.rng.IntN(8000)
	}
	return newBatch(base, records, value, 1_000_000+base, byte(g.rng.Uint32()))
}

// huge returns a batch larger than SegmentBytes.
func (g *gen) huge(base int64) batch {
	return newBatch(base, 9, SegmentBytes/8, 1_000_000+base, byte(g.rng.Uint32()))
}

// appendAll appends batches and records them in m, failing the test on any
// error.
func appendAll(t testing.TB, l engine.Log, m *model, bs ...batch) {
	t.Helper()
	for _, b := range bs {
		if err := l.Append(context.Background(), b.meta, b.data); err != nil {
			t.Fatalf("Append(base %d, %d bytes) with log %s: %v", b.meta.BaseOffset, len(b.data), describe(l), err)
		}
		m.add(b)
	}
}

// fill appends n batches from g at the log's end.
func fill(t testing.TB, l engine.Log, m *model, g *gen, n int) {
	t.Helper()
	for range n {
		appendAll(t, l, m, g.next(m.end))
	}
}

func describe(l engine.Log) string {
	s, e := l.Offsets()
	return fmt.Sprintf("[%d, %d)", s, e)
}

// parseRecords checks recs, the result of Read(from, maxBytes) on a log
// whose offsets are [start, end) with from in range, against the contract:
// chunks hold whole valid batches (engine.CheckBatch, CRC included) in
// contiguous offset order; the first batch contains from; more than one
// batch only within maxBytes; NextOffset is one past the last batch (or
// from when empty). It returns the batches as views of the chunks (valid
// until recs is released).
func parseRecords(recs engine.Records, from int64, maxBytes int) ([]batch, error) {
	if recs.Empty() {
		if recs.NextOffset != from {
			return nil, fmt.Errorf("Read(%d): empty Records with NextOffset %d, want %d", from, recs.NextOffset, from)
		}
		return nil, nil
	}
	var out []batch
	for ci, chunk := range recs.Chunks {
		if len(chunk) == 0 {
			return nil, fmt.Errorf("Read(%d): chunk %d is empty; a chunk holds one or more whole batches", from, ci)
		}
		for off := 0; off < len(chunk); {
			h, err := engine.CheckBatch(chunk[off:])
			if err != nil {
				return nil, fmt.Errorf("Read(%d): chunk %d byte %d: not a whole valid batch: %w", from, ci, off, err)
			}
			b := batch{meta: h.Meta(), data: chunk[off : off+h.Size()]}
			if n := len(out); n > 0 && b.meta.BaseOffset != out[n-1].meta.LastOffset+1 {
				return nil, fmt.Errorf("Read(%d): batch at %d follows batch ending at %d: gap or disorder", from, b.meta.BaseOffset, out[n-1].meta.LastOffset)
			}
			out = append(out, b)
			off += h.Size()
		}
	}
	first, last := out[0].meta, out[len(out)-1].meta
	switch {
	case first.BaseOffset > from || first.LastOffset < from:
		return nil, fmt.Errorf("Read(%d): first batch holds [%d, %d], not the batch containing %d", from, first.BaseOffset, first.LastOffset, from)
	case len(out) > 1 && recs.Len() > maxBytes:
		return nil, fmt.Errorf("Read(%d, maxBytes %d): %d batches of %d bytes in all: only a single first batch may exceed maxBytes", from, maxBytes, len(out), recs.Len())
	case recs.NextOffset != last.LastOffset+1:
		return nil, fmt.Errorf("Read(%d): NextOffset %d, want last offset %d + 1", from, recs.NextOffset, last.LastOffset)
	}
	return out, nil
}

// read calls Read and checks the result with parseRecords, returning copies
// of the batches; it releases the Records.
func read(t testing.TB, l engine.Log, from int64, maxBytes int) []batch {
	t.Helper()
	recs, err := l.Read(context.Background(), from, maxBytes)
	if err != nil {
		t.Fatalf("Read(%d, %d) of log %s: %v", from, maxBytes, describe(l), err)
	}
	defer recs.Release()
	bs, err := parseRecords(recs, from, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range bs {
		bs[i].data = bytes.Clone(bs[i].data)
	}
	return bs
}

// readAll reads from from to the log's end with Read calls of maxBytes
// each (maxBytes < 0 picks a random size for every call), checking every
// result, and returns the batches read.
func readAll(t testing.TB, l engine.Log, from int64, maxBytes int) []batch {
	t.Helper()
	_, end := l.Offsets()
	rng := rand.New(rand.NewPCG(uint64(from), uint64(end)))
	var out []batch
	// Every non-empty Read advances by at least one offset, so the loop
	// ends within end-from+1 calls on a log that meets the contract.
	for next, calls := from, int64(0); ; calls++ {
		if calls > end-from+1 {
			t.Fatalf("readAll(%d): still reading at %d after %d calls; log end %d", from, next, calls, end)
		}
		mb := maxBytes
		if mb < 0 {
			mb = []int{1, 100, 1000, 5000, 50_000, 200_000, math.MaxInt32}[rng.IntN(7)]
		}
		bs := read(t, l, next, mb)
		if len(bs) == 0 {
			if next != end {
				t.Fatalf("Read(%d, %d): empty Records before the log end %d", next, mb, end)
			}
			return out
		}
		out = append(out, bs...)
		next = bs[len(bs)-1].meta.LastOffset + 1
	}
}

// sameBatches fails unless got and want are the same batches, byte for byte.
func sameBatches(t testing.TB, what string, got, want []batch) {
	t.Helper()
	if err := diffBatches(got, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func diffBatches(got, want []batch) error {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.meta.BaseOffset != w.meta.BaseOffset || g.meta.LastOffset != w.meta.LastOffset {
			return fmt.Errorf("batch %d holds [%d, %d], want [%d, %d]", i, g.meta.BaseOffset, g.meta.LastOffset, w.meta.BaseOffset, w.meta.LastOffset)
		}
		if !bytes.Equal(g.data, w.data) {
			return fmt.Errorf("batch %d at offset %d: %d bytes differ from the %d appended", i, g.meta.BaseOffset, len(g.data), len(w.data))
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d batches, want %d", len(got), len(want))
	}
	return nil
}

// checkLog verifies that l holds exactly what m says: offsets, every batch
// byte for byte through reads of several sizes, and the out-of-range and
// end-of-log answers.
func checkLog(t testing.TB, l engine.Log, m *model) {
	t.Helper()
	if s, e := l.Offsets(); s != m.start || e != m.end {
		t.Fatalf("Offsets() = [%d, %d), want [%d, %d)", s, e, m.start, m.end)
	}
	want := m.live()
	for _, mb := range []int{1, 4096, math.MaxInt32, -1} {
		sameBatches(t, fmt.Sprintf("reading [%d, %d) with maxBytes %d", m.start, m.end, mb), readAll(t, l, m.start, mb), want)
	}
	checkEdges(t, l, m.start, m.end)
}

// checkEdges checks the answers at and beyond the ends of [start, end).
func checkEdges(t testing.TB, l engine.Log, start, end int64) {
	t.Helper()
	if bs := read(t, l, end, 1<<20); len(bs) != 0 {
		t.Fatalf("Read(EndOffset %d) returned %d batches, want none", end, len(bs))
	}
	outOfRange(t, l, end+1)
	outOfRange(t, l, start-1)
}

// outOfRange checks that Read(from) fails with ErrOffsetOutOfRange and
// empty Records.
func outOfRange(t testing.TB, l engine.Log, from int64) {
	t.Helper()
	recs, err := l.Read(context.Background(), from, 1<<20)
	defer recs.Release()
	if !errors.Is(err, engine.ErrOffsetOutOfRange) {
		t.Fatalf("Read(%d) of log %s: error %v, want ErrOffsetOutOfRange", from, describe(l), err)
	}
	if !recs.Empty() {
		t.Fatalf("Read(%d) failed with %v but returned %d bytes", from, err, recs.Len())
	}
}

// wantErr fails unless err wraps target.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// noErr fails on a non-nil err.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
