package bench

// The read ops over a filled log: read-seq, read-tail and read-random.

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/strata-broker/strata/engine"
)

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
