package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/strata-broker/strata/engine"
)

var ctx = context.Background()

// testRoundTrip appends hundreds of batches from a few dozen bytes to more
// than a segment, syncing now and then, and reads them all back byte for
// byte with reads of many sizes, before and after a reopen. It also checks
// that Append does not retain the caller's slice.
func (s *suite) testRoundTrip(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	checkLog(t, l, &m) // a new log is empty: [0, 0)

	g := newGen(1)
	total := 0
	for i := range 300 {
		b := g.next(m.end)
		if i%100 == 50 {
			b = g.huge(m.end)
		}
		// The engine gets a copy that is scribbled over once Append
		// returns: a log that kept the slice would read back 0xA5s.
		buf := bytes.Clone(b.data)
		noErr(t, fmt.Sprintf("Append #%d at %d", i, b.meta.BaseOffset), l.Append(ctx, b.meta, buf))
		for j := range buf {
			buf[j] = 0xA5
		}
		m.add(b)
		total += len(b.data)
		if i%37 == 0 {
			noErr(t, "Sync", l.Sync(ctx))
		}
	}
	if total < 8*SegmentBytes {
		t.Fatalf("suite bug: %d bytes appended, too few to roll segments", total)
	}
	checkLog(t, l, &m)

	noErr(t, "Sync", l.Sync(ctx))
	v.reopen()
	checkLog(t, v.openLog(tp0), &m)
}

// testReadInsideBatch reads from an offset inside every batch (its second,
// middle and last offset) and checks that the batch comes back whole and
// first, before and after a reopen (which may rebuild indexes).
func (s *suite) testReadInsideBatch(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	fill(t, l, &m, newGen(2), 150)
	check := func(l engine.Log) {
		t.Helper()
		for _, b := range m.batches {
			n := b.meta.LastOffset - b.meta.BaseOffset
			for _, k := range []int64{1, n / 2, n} {
				if k == 0 || k > n {
					continue
				}
				from := b.meta.BaseOffset + k
				got := read(t, l, from, 1)
				sameBatches(t, fmt.Sprintf("Read(%d, 1) inside batch [%d, %d]", from, b.meta.BaseOffset, b.meta.LastOffset), got, []batch{b})
				got = read(t, l, from, math.MaxInt32)
				sameBatches(t, fmt.Sprintf("first batch of Read(%d, MaxInt32)", from), got[:1], []batch{b})
			}
		}
	}
	check(l)
	v.reopen()
	check(v.openLog(tp0))
}

// testReadLimits reads from every batch with maxBytes around the batch's
// size: at least one batch always comes back, it is the batch asked for,
// and more than one only if they all fit in maxBytes (parseRecords).
func (s *suite) testReadLimits(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	fill(t, l, &m, newGen(3), 80)
	appendAll(t, l, &m, newGen(3).huge(m.end))
	fill(t, l, &m, newGen(4), 20)
	for i, b := range m.batches {
		n := len(b.data)
		limits := []int{0, 1, n - 1, n, n + 1, 3 * n}
		if i+1 < len(m.batches) {
			n2 := n + len(m.batches[i+1].data)
			limits = append(limits, n2-1, n2)
		}
		for _, mb := range limits {
			got := read(t, l, b.meta.BaseOffset, mb)
			if len(got) == 0 {
				t.Fatalf("Read(%d, %d) returned nothing below the end %d", b.meta.BaseOffset, mb, m.end)
			}
			sameBatches(t, fmt.Sprintf("Read(%d, %d)", b.meta.BaseOffset, mb), got, m.batches[i:i+len(got)])
		}
	}
	checkEdges(t, l, m.start, m.end)
}

// testAppendRejects checks that a batch not starting at the end fails with
// ErrNonContiguous, that bytes disagreeing with their meta fail with
// ErrInvalidBatch, that neither changes the log, and that neither makes the
// log refuse later valid appends.
func (s *suite) testAppendRejects(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model

	b := newBatch(5, 2, 10, 100, 1)
	wantErr(t, "Append at 5 to an empty log", l.Append(ctx, b.meta, b.data), engine.ErrNonContiguous)
	checkLog(t, l, &m)

	fill(t, l, &m, newGen(5), 5)
	for _, base := range []int64{m.end + 1, m.end - 1, 0, m.end + 1000} {
		b := newBatch(base, 3, 20, 100, 2)
		wantErr(t, fmt.Sprintf("Append at %d to log ending at %d", base, m.end), l.Append(ctx, b.meta, b.data), engine.ErrNonContiguous)
	}
	checkLog(t, l, &m)

	end := m.end
	good := newBatch(end, 3, 20, 100, 3)
	shifted := newBatch(end+1, 3, 20, 100, 3) // header base offset end+1
	badMagic := bytes.Clone(good.data)
	badMagic[16] = 1
	longerMeta := good.meta
	longerMeta.LastOffset += 2
	invalid := []struct {
		name string
		meta engine.BatchMeta
		data []byte
	}{
		{"header base offset disagrees with meta", good.meta, shifted.data},
		{"meta last offset disagrees with header", longerMeta, good.data},
		{"batch cut short by one byte", good.meta, good.data[:len(good.data)-1]},
		{"trailing byte after the batch", good.meta, append(bytes.Clone(good.data), 0)},
		{"magic 1", good.meta, badMagic},
		{"shorter than a header", good.meta, good.data[:engine.BatchHeaderSize-1]},
		{"no bytes", good.meta, nil},
	}
	for _, c := range invalid {
		err := l.Append(ctx, c.meta, c.data)
		wantErr(t, "Append of a batch with "+c.name, err, engine.ErrInvalidBatch)
		if errors.Is(err, engine.ErrLogFailed) {
			t.Fatalf("Append of a batch with %s: %v: an invalid batch must not fail the log", c.name, err)
		}
	}
	checkLog(t, l, &m)

	appendAll(t, l, &m, good)
	fill(t, l, &m, newGen(6), 3)
	checkLog(t, l, &m)
	v.reopen()
	checkLog(t, v.openLog(tp0), &m)
}

// testTruncate truncates inside a batch, at batch boundaries, across
// segments, to the end and beyond (no-ops) and below the start (an error),
// appends different batches at the truncated offsets, and reopens.
func (s *suite) testTruncate(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	g := newGen(7)
	fill(t, l, &m, g, 120) // a few segments
	noErr(t, "Sync", l.Sync(ctx))

	truncate := func(to int64) {
		t.Helper()
		noErr(t, fmt.Sprintf("Truncate(%d) of log %s", to, describe(l)), l.Truncate(ctx, to))
		m.truncate(to)
		checkLog(t, l, &m)
	}
	truncate(m.end)        // no-op
	truncate(m.end + 1000) // no-op

	// Inside the last multi-record batch: it goes whole.
	for i := len(m.batches) - 1; i >= 0; i-- {
		if b := m.batches[i]; b.meta.LastOffset > b.meta.BaseOffset {
			truncate(b.meta.BaseOffset + 1)
			if m.end != b.meta.BaseOffset {
				t.Fatalf("suite bug: model end %d", m.end)
			}
			break
		}
	}
	// Back across at least one segment boundary, at a batch boundary.
	truncate(m.batches[len(m.batches)/3].meta.BaseOffset)
	fill(t, l, &m, newGen(8), 60) // different bytes at the same offsets
	checkLog(t, l, &m)

	// Below the start: refused, nothing changes.
	to := m.batches[10].meta.BaseOffset
	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	wantErr(t, fmt.Sprintf("Truncate(%d) below start %d", to-1, to), l.Truncate(ctx, to-1), engine.ErrOffsetOutOfRange)
	checkLog(t, l, &m)

	v.reopen()
	l = v.openLog(tp0)
	checkLog(t, l, &m)

	// To exactly the start (a batch boundary): empty, then appendable.
	truncate(m.start)
	fill(t, l, &m, newGen(9), 10)
	checkLog(t, l, &m)
	v.reopen()
	checkLog(t, v.openLog(tp0), &m)
}

// testDeleteBefore deletes most of a multi-segment log, in the middle of a
// batch, and checks the new start, reads below it, that whole units were
// freed (Sizer), no-op calls, later appends, and the start after a reopen.
func (s *suite) testDeleteBefore(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	g := newGen(10)
	total := 0
	for i := 0; total < 12*SegmentBytes; i++ {
		if i > 10_000 {
			t.Fatal("suite bug: generator makes no progress")
		}
		b := g.next(m.end)
		appendAll(t, l, &m, b)
		total += len(b.data)
	}
	noErr(t, "Sync", l.Sync(ctx))
	sizer, isSizer := l.(engine.Sizer)
	var size0 int64
	if isSizer {
		size0 = sizer.Size()
	} else {
		t.Logf("%T does not implement engine.Sizer: not checking that storage is freed", l)
	}

	// Pick the first batch past 90% of the bytes, with several records if
	// one is near, and delete to its middle.
	acc, i := 0, 0
	for ; acc < total*9/10; i++ {
		acc += len(m.batches[i].data)
	}
	for j := i; j < min(i+10, len(m.batches)); j++ {
		if b := m.batches[j]; b.meta.LastOffset > b.meta.BaseOffset {
			i = j
			break
		}
	}
	b := m.batches[i]
	to := b.meta.BaseOffset + (b.meta.LastOffset-b.meta.BaseOffset+1)/2
	noErr(t, fmt.Sprintf("DeleteBefore(%d)", to), l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	checkLog(t, l, &m) // includes Read(to-1) → ErrOffsetOutOfRange
	if isSizer {
		if size1 := sizer.Size(); size1 >= size0/2 {
			t.Fatalf("Size() = %d after deleting about 90%% of a %d-byte log of %d-byte segments, was %d: whole segments below the start must be freed", size1, total, SegmentBytes, size0)
		}
	}

	for _, to := range []int64{to - 1, to, 0} {
		noErr(t, fmt.Sprintf("DeleteBefore(%d) at or below start %d", to, m.start), l.DeleteBefore(ctx, to))
		checkLog(t, l, &m)
	}

	fill(t, l, &m, g, 30)
	to = m.batches[len(m.batches)/2].meta.BaseOffset // a batch boundary
	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	checkLog(t, l, &m)

	v.reopen()
	l = v.openLog(tp0)
	checkLog(t, l, &m)
	fill(t, l, &m, g, 5)
	checkLog(t, l, &m)
}

// testDeleteBeforeBeyondEnd deletes to the end and beyond: the log empties,
// both offsets become to, and the next append must start there.
func (s *suite) testDeleteBeforeBeyondEnd(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	g := newGen(11)
	fill(t, l, &m, g, 40)

	// To exactly the end: nothing readable, the end stays.
	to := m.end
	noErr(t, fmt.Sprintf("DeleteBefore(%d = end)", to), l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	checkLog(t, l, &m)
	fill(t, l, &m, g, 40)
	noErr(t, "Sync", l.Sync(ctx))
	var size0 int64
	sizer, isSizer := l.(engine.Sizer)
	if isSizer {
		size0 = sizer.Size()
	}

	// Beyond the end.
	old := m.end
	to = m.end + 1000
	noErr(t, fmt.Sprintf("DeleteBefore(%d) beyond end %d", to, m.end), l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	checkLog(t, l, &m)
	outOfRange(t, l, old-1)
	if isSizer {
		if size1 := sizer.Size(); size1 >= size0 {
			t.Fatalf("Size() = %d after deleting every batch, was %d", size1, size0)
		}
	}
	b := g.next(old)
	wantErr(t, fmt.Sprintf("Append at the old end %d after DeleteBefore(%d)", old, to), l.Append(ctx, b.meta, b.data), engine.ErrNonContiguous)
	fill(t, l, &m, g, 10)
	checkLog(t, l, &m)

	v.reopen()
	l = v.openLog(tp0)
	checkLog(t, l, &m)

	// Beyond the end again, then reopen before appending: the empty log
	// keeps its offsets.
	to = m.end + 7
	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	v.reopen()
	l = v.openLog(tp0)
	checkLog(t, l, &m)
	fill(t, l, &m, g, 3)
	checkLog(t, l, &m)
}

// testOffsetForTime checks OffsetForTime against a brute-force answer over
// batches whose timestamps go up and down, before and after DeleteBefore
// and a reopen.
func (s *suite) testOffsetForTime(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	checkOffsetForTime(t, l, &m, []int64{-1, 0, 1 << 40}) // empty: always EndOffset 0

	// Max timestamps 1000 + 10*((i*17+29) mod 50) + records-1: a
	// permutation, so they rise and fall from batch to batch; the highest
	// is batch 10's.
	for i := range 50 {
		ts := int64(1000 + 10*((i*17+29)%50))
		appendAll(t, l, &m, newBatch(m.end, 1+i%3, 30, ts, byte(i)))
	}
	var queries []int64
	for _, b := range m.batches {
		queries = append(queries, b.meta.MaxTimestamp-1, b.meta.MaxTimestamp, b.meta.MaxTimestamp+1)
	}
	queries = append(queries, math.MinInt64, -1, 0, 999, 1_000_000, math.MaxInt64)
	checkOffsetForTime(t, l, &m, queries)

	// The batch with the highest timestamp goes below the start: queries
	// it answered now find a later batch or EndOffset.
	hi := slices.IndexFunc(m.batches, func(b batch) bool { return b.meta.MaxTimestamp >= 1490 })
	to := m.batches[hi+1].meta.BaseOffset
	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, to))
	m.deleteBefore(to)
	checkOffsetForTime(t, l, &m, queries)

	// Start inside a batch.
	b := m.live()[5]
	if b.meta.LastOffset == b.meta.BaseOffset {
		b = m.live()[6]
	}
	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, b.meta.BaseOffset+1))
	m.deleteBefore(b.meta.BaseOffset + 1)
	checkOffsetForTime(t, l, &m, queries)

	v.reopen()
	l = v.openLog(tp0)
	checkOffsetForTime(t, l, &m, queries)
}

// checkOffsetForTime compares OffsetForTime(ts) for every query with the
// model, including the case where the first qualifying batch begins below
// StartOffset and the answer is StartOffset.
func checkOffsetForTime(t testing.TB, l engine.Log, m *model, queries []int64) {
	t.Helper()
	for _, ts := range queries {
		got, err := l.OffsetForTime(ctx, ts)
		noErr(t, fmt.Sprintf("OffsetForTime(%d)", ts), err)
		if want := m.offsetForTime(ts); got != want {
			t.Fatalf("OffsetForTime(%d) of log [%d, %d) = %d, want %d", ts, m.start, m.end, got, want)
		}
	}
}

// testReopenAndLogs fills several logs (one of them left empty, one not
// synced, one left open for Engine.Close to close), reopens the engine and
// checks Logs and every log's contents.
func (s *suite) testReopenAndLogs(t *testing.T) {
	v := s.newEnv(t)
	tps := []engine.TopicPartition{
		{Topic: "reopen", Partition: 0},
		{Topic: "a.b_c-d", Partition: 7},
		{Topic: "a.b_c-d", Partition: 0},
		{Topic: "x", Partition: 12345},
		{Topic: "empty", Partition: 3},
	}
	models := make([]model, len(tps))
	g := newGen(12)
	for i, tp := range tps {
		l := v.openLog(tp)
		if tp.Topic != "empty" {
			fill(t, l, &models[i], g, 10+60*(i%2))
		}
		switch i {
		case 0:
			noErr(t, "Sync", l.Sync(ctx))
			fill(t, l, &models[i], g, 3) // not synced: Close must sync them
			noErr(t, "Log.Close", l.Close())
		case 1:
			// Left open: Engine.Close closes (and syncs) it.
		default:
			noErr(t, "Sync", l.Sync(ctx))
			noErr(t, "Log.Close", l.Close())
		}
	}
	checkLogs(t, v.e, tps)
	v.reopen()
	checkLogs(t, v.e, tps)
	for i, tp := range tps {
		l := v.openLog(tp)
		checkLog(t, l, &models[i])
		noErr(t, "Log.Close", l.Close())
	}
	v.reopen()
	checkLogs(t, v.e, tps)
}

// checkLogs checks that e.Logs lists exactly tps.
func checkLogs(t testing.TB, e engine.Engine, tps []engine.TopicPartition) {
	t.Helper()
	got, err := e.Logs(ctx)
	noErr(t, "Logs", err)
	cmp := func(a, b engine.TopicPartition) int {
		if c := cmpString(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	}
	got = slices.Clone(got)
	want := slices.Clone(tps)
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("Logs() = %v, want %v", got, want)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// testOpenTwiceAndDelete checks ErrLogOpen for a second OpenLog, reopening
// after Close, and DeleteLog of open and closed logs.
func (s *suite) testOpenTwiceAndDelete(t *testing.T) {
	v := s.newEnv(t)
	a := engine.TopicPartition{Topic: "twice", Partition: 1}
	b := engine.TopicPartition{Topic: "gone", Partition: 2}
	c := engine.TopicPartition{Topic: "kept", Partition: 3}
	g := newGen(13)

	la := v.openLog(a)
	var ma model
	fill(t, la, &ma, g, 5)
	_, err := v.e.OpenLog(ctx, a, engine.LogOptions{})
	wantErr(t, "second OpenLog of an open log", err, engine.ErrLogOpen)
	checkLog(t, la, &ma) // the first handle still works
	noErr(t, "Log.Close", la.Close())
	la = v.openLog(a)
	checkLog(t, la, &ma)

	lb := v.openLog(b)
	var mb model
	fill(t, lb, &mb, g, 70) // a few segments
	lc := v.openLog(c)
	var mc model
	fill(t, lc, &mc, g, 5)
	noErr(t, "Log.Close", lc.Close())
	checkLogs(t, v.e, []engine.TopicPartition{a, b, c})

	// Delete the open log b: its handle is closed, its data gone.
	noErr(t, "DeleteLog of an open log", v.e.DeleteLog(ctx, b))
	x := g.next(mb.end)
	wantErr(t, "Append on the handle of a deleted log", lb.Append(ctx, x.meta, x.data), engine.ErrClosed)
	recs, err := lb.Read(ctx, 0, 1<<20)
	recs.Release()
	wantErr(t, "Read on the handle of a deleted log", err, engine.ErrClosed)
	checkLogs(t, v.e, []engine.TopicPartition{a, c})
	wantErr(t, "DeleteLog of a deleted log", v.e.DeleteLog(ctx, b), engine.ErrLogNotFound)
	wantErr(t, "DeleteLog of a log that never was", v.e.DeleteLog(ctx, engine.TopicPartition{Topic: "never", Partition: 0}), engine.ErrLogNotFound)

	// Delete the closed log c.
	noErr(t, "DeleteLog of a closed log", v.e.DeleteLog(ctx, c))
	checkLogs(t, v.e, []engine.TopicPartition{a})

	v.reopen()
	checkLogs(t, v.e, []engine.TopicPartition{a})
	checkLog(t, v.openLog(a), &ma)
	// A deleted log comes back empty when opened again.
	lb = v.openLog(b)
	checkLog(t, lb, &model{})
	mb = model{}
	fill(t, lb, &mb, g, 3)
	checkLog(t, lb, &mb)
	checkLogs(t, v.e, []engine.TopicPartition{a, b})
}
