package partition

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/engine"
)

func TestSequenceArithmetic(t *testing.T) {
	for _, c := range []struct {
		first, delta, last int32
	}{{0, 0, 0}, {0, 4, 4}, {math.MaxInt32, 0, math.MaxInt32}, {math.MaxInt32, 1, 0}, {math.MaxInt32 - 1, 3, 1}} {
		if got := lastSequence(c.first, c.delta); got != c.last {
			t.Errorf("lastSequence(%d, %d) = %d, want %d", c.first, c.delta, got, c.last)
		}
	}
	if !inSequence(math.MaxInt32, 0) || inSequence(math.MaxInt32, math.MinInt32) || !inSequence(4, 5) || inSequence(4, 6) {
		t.Error("inSequence")
	}
	// A producer whose sequence wraps.
	e := &producerEntry{}
	e.add(0, producerBatch{firstSeq: math.MaxInt32 - 2, lastSeq: math.MaxInt32}, time.Time{})
	h := &engine.BatchHeader{ProducerID: 1, BaseSequence: 0, LastOffsetDelta: 1}
	if dup, err := checkSequence(e, h); dup != nil || err != nil {
		t.Errorf("wrapped sequence: %v %v", dup, err)
	}
}

// The rebuild reads a bounded tail: producers whose last batch lies
// further back than producerScanBytes are not found; the others are, with
// their offsets.
func TestLoadProducersBound(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(ctx, "mem", t.TempDir(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "t"}, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	appendBatch := func(raw []byte) {
		t.Helper()
		in, kerr := ValidateBatches(raw, math.MaxInt32, 10)
		if kerr != nil {
			t.Fatal(kerr.Msg)
		}
		meta := patchBatch(&in[0], end, 0, -1)
		if err := l.Append(ctx, meta, in[0].b); err != nil {
			t.Fatal(err)
		}
		end = meta.LastOffset + 1
	}
	appendBatch(batchtest.Idempotent(t, 1, 0, 0, "old"))
	big := strings.Repeat("x", 100<<10)
	for range producerScanBytes/(100<<10) + 1 {
		appendBatch(batchtest.Make(t, kgo.NoCompression(), 1, big))
	}
	for i := range 7 {
		appendBatch(batchtest.Idempotent(t, 2, 3, int32(2*i), "a", "b"))
	}
	s, err := loadProducers(ctx, l, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.m[1]; ok {
		t.Error("producer 1 found beyond the scan bound")
	}
	p2 := s.m[2]
	if p2 == nil || p2.epoch != 3 || len(p2.batches) != maxProducerBatches {
		t.Fatalf("producer 2: %+v", p2)
	}
	if last := p2.last(); last.firstSeq != 12 || last.lastSeq != 13 || last.lastOffset != end-1 || last.baseOffset != end-2 {
		t.Fatalf("producer 2's last batch: %+v (log end %d)", last, end)
	}

	// Within the bound, the old producer is found too.
	l2, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "t2"}, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, end = l2, 0
	appendBatch(batchtest.Idempotent(t, 1, 0, 0, "old"))
	for range 3000 {
		appendBatch(batchtest.Make(t, kgo.NoCompression(), 1, "small"))
	}
	appendBatch(batchtest.Idempotent(t, 2, 0, 0, "new"))
	if s, err = loadProducers(ctx, l, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p1 := s.m[1]; p1 == nil || p1.last().baseOffset != 0 || s.m[2] == nil || s.m[2].last().baseOffset != 3001 {
		t.Fatalf("producers %+v", s.m)
	}
}
