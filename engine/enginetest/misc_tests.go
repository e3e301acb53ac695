package enginetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/strata-broker/strata/engine"
)

// testConcurrentReaders appends batches while 8 readers follow the tail,
// each reading from its NextOffset until it has seen every batch, checking
// order and bytes. The appender publishes the end after each Append
// returns; a reader that read nothing although the end it saw beforehand was
// past its offset has caught the log hiding an appended batch.
func (s *suite) testConcurrentReaders(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	const n, readers = 800, 8
	want := make([]batch, 0, n)
	g := newGen(20)
	for end := int64(0); len(want) < n; {
		b := g.next(end)
		want = append(want, b)
		end = b.meta.LastOffset + 1
	}

	p := newProgress()
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() { follow(t, l, p, want, r) })
	}
	func() {
		// Readers wait on p: let them go however the appender ends.
		defer p.finish()
		for i, b := range want {
			if err := l.Append(ctx, b.meta, b.data); err != nil {
				t.Errorf("Append at %d: %v", b.meta.BaseOffset, err)
				return
			}
			if i%50 == 49 {
				if err := l.Sync(ctx); err != nil {
					t.Errorf("Sync: %v", err)
					return
				}
			}
			p.publish(b.meta.LastOffset + 1)
		}
	}()
	wg.Wait()
}

// follow is one reader of testConcurrentReaders. It reports with t.Errorf
// (it is not the test's goroutine) and returns on the first problem.
func follow(t *testing.T, l engine.Log, p *progress, want []batch, r int) {
	maxBytes := []int{1, 300, 4096, 1 << 20}[r%4]
	var next int64
	seen := 0
	// Each call either returns a batch or is followed by a wait that only
	// ends once the appender is past next, so 2n+1 calls suffice.
	for calls := 0; seen < len(want); calls++ {
		if calls > 2*len(want)+1 {
			t.Errorf("reader %d: %d batches seen after %d Read calls", r, seen, calls)
			return
		}
		published := p.get()
		recs, err := l.Read(ctx, next, maxBytes)
		if err != nil {
			t.Errorf("reader %d: Read(%d): %v", r, next, err)
			return
		}
		bs, err := parseRecords(recs, next, maxBytes)
		for _, b := range bs {
			if err != nil {
				break
			}
			if seen == len(want) {
				err = fmt.Errorf("batch at %d beyond the %d appended", b.meta.BaseOffset, len(want))
				break
			}
			err = diffBatches([]batch{b}, want[seen:seen+1])
			seen++
		}
		recs.Release()
		if err != nil {
			t.Errorf("reader %d: %v", r, err)
			return
		}
		if len(bs) > 0 {
			next = recs.NextOffset
			continue
		}
		if published > next {
			t.Errorf("reader %d: Read(%d) returned nothing after Append up to %d had returned", r, next, published)
			return
		}
		if !p.wait(next) {
			return // the appender stopped early and said why
		}
	}
}

// progress is how the appender tells readers how far it got.
type progress struct {
	mu   sync.Mutex
	cond *sync.Cond
	end  int64
	done bool
}

func newProgress() *progress {
	p := &progress{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *progress) get() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end
}

func (p *progress) publish(end int64) {
	p.mu.Lock()
	p.end = end
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *progress) finish() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// wait blocks until the end is past off or the appender has finished, and
// reports whether the end is past off.
func (p *progress) wait(off int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.end <= off && !p.done {
		p.cond.Wait()
	}
	return p.end > off
}

// testManyLogs opens 1,000 logs in one engine at once, appends a batch to
// each, reads every one back, closes them all, and checks them after a
// reopen.
func (s *suite) testManyLogs(t *testing.T) {
	const n = 1000
	v := s.newEnv(t)
	tps := make([]engine.TopicPartition, n)
	logs := make([]engine.Log, n)
	bs := make([]batch, n)
	for i := range n {
		tps[i] = engine.TopicPartition{Topic: fmt.Sprintf("many-%d", i%10), Partition: int32(i / 10)}
		logs[i] = v.openLog(tps[i])
		bs[i] = newBatch(0, 1+i%3, 20+i%50, int64(i), byte(i))
		var m model
		appendAll(t, logs[i], &m, bs[i])
	}
	for i, l := range logs {
		sameBatches(t, fmt.Sprintf("log %s", tps[i]), read(t, l, 0, 1<<20), bs[i:i+1])
	}
	checkLogs(t, v.e, tps)
	for i, l := range logs {
		noErr(t, fmt.Sprintf("Close of log %s", tps[i]), l.Close())
	}
	v.reopen()
	checkLogs(t, v.e, tps)
	for i := 0; i < n; i += 37 {
		l := v.openLog(tps[i])
		checkLog(t, l, &model{batches: bs[i : i+1], end: bs[i].meta.LastOffset + 1})
		noErr(t, "Close", l.Close())
	}
}

// testUseAfterClose checks ErrClosed from every log method after Log.Close
// and after Engine.Close, and from every engine method after Engine.Close;
// Offsets keeps answering; both Closes are idempotent.
func (s *suite) testUseAfterClose(t *testing.T) {
	v := s.newEnv(t)
	tp1 := engine.TopicPartition{Topic: "closed", Partition: 1}
	l := v.openLog(tp0)
	var m model
	fill(t, l, &m, newGen(21), 5)
	noErr(t, "Log.Close", l.Close())
	checkClosed(t, "after Log.Close", l, &m)
	noErr(t, "second Log.Close", l.Close())

	l0 := v.openLog(tp0) // a closed log opens again
	checkLog(t, l0, &m)
	l1 := v.openLog(tp1)
	var m1 model
	fill(t, l1, &m1, newGen(22), 3)

	e := v.e
	v.e = nil
	noErr(t, "Engine.Close", e.Close())
	_, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "new", Partition: 0}, engine.LogOptions{})
	wantErr(t, "OpenLog after Engine.Close", err, engine.ErrClosed)
	_, err = e.Logs(ctx)
	wantErr(t, "Logs after Engine.Close", err, engine.ErrClosed)
	wantErr(t, "DeleteLog after Engine.Close", e.DeleteLog(ctx, tp1), engine.ErrClosed)
	checkClosed(t, "after Engine.Close", l0, &m)
	checkClosed(t, "after Engine.Close", l1, &m1)
	noErr(t, "Log.Close after Engine.Close", l0.Close())
	noErr(t, "second Engine.Close", e.Close())

	v.open()
	checkLog(t, v.openLog(tp0), &m)
	checkLog(t, v.openLog(tp1), &m1)
}

// checkClosed checks that every method of the closed log l fails with
// ErrClosed, except Offsets, which returns the last offsets m says.
func checkClosed(t testing.TB, when string, l engine.Log, m *model) {
	t.Helper()
	b := newBatch(m.end, 1, 10, 0, 0)
	wantErr(t, "Append "+when, l.Append(ctx, b.meta, b.data), engine.ErrClosed)
	recs, err := l.Read(ctx, m.start, 1<<20)
	empty := recs.Empty()
	recs.Release()
	wantErr(t, "Read "+when, err, engine.ErrClosed)
	if !empty {
		t.Fatalf("Read %s failed but returned Records", when)
	}
	wantErr(t, "Truncate "+when, l.Truncate(ctx, m.start), engine.ErrClosed)
	wantErr(t, "DeleteBefore "+when, l.DeleteBefore(ctx, m.end), engine.ErrClosed)
	_, err = l.OffsetForTime(ctx, 0)
	wantErr(t, "OffsetForTime "+when, err, engine.ErrClosed)
	wantErr(t, "Sync "+when, l.Sync(ctx), engine.ErrClosed)
	if s, e := l.Offsets(); s != m.start || e != m.end {
		t.Fatalf("Offsets %s = [%d, %d), want the last offsets [%d, %d)", when, s, e, m.start, m.end)
	}
}

// testStickyWriteError makes the disk fail under a log (Harness.FailWrites,
// or the suite's FaultFS), appends and syncs until an error shows, and
// checks that:
//
//   - a failing Append returns an error wrapping ErrLogFailed and changes
//     neither the offsets nor what reads return;
//   - once a write failed (in Append or Sync), Append, Truncate and
//     DeleteBefore fail with ErrLogFailed, also after the fault is healed
//     (FaultFS, or Harness.HealWrites);
//   - reads return exactly the batches whose Append succeeded;
//   - after closing and reopening with the fault gone, the log holds the
//     batches synced before the fault, then a prefix of the batches
//     appended after it, the failed batch last and only if whole and
//     identical: B0..Bk followed by A1..Aj (j <= the successful appends
//     after the fault, +1 for the failed one), and it takes appends again.
func (s *suite) testStickyWriteError(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	g := newGen(23)
	fill(t, l, &m, g, 60)
	noErr(t, "Sync", l.Sync(ctx))
	synced := len(m.batches)

	useFS := s.h.FailWrites == nil
	if useFS {
		v.fs.Fail(ErrInjected)
	} else {
		s.h.FailWrites(v.e)
	}
	// Any engine writes to its storage within a few segments of appends,
	// each followed by Sync.
	var failed []batch // the batch whose Append failed, if one did
	appended := 0
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatalf("writes fail, yet %d Appends (%d bytes) and Syncs succeeded", i, appended)
		}
		b := g.next(m.end)
		start, end := l.Offsets()
		if err := l.Append(ctx, b.meta, b.data); err != nil {
			wantErr(t, "Append while writes fail", err, engine.ErrLogFailed)
			if s2, e2 := l.Offsets(); s2 != start || e2 != end {
				t.Fatalf("failed Append moved the offsets from [%d, %d) to [%d, %d)", start, end, s2, e2)
			}
			failed = append(failed, b)
			break
		}
		m.add(b)
		appended += len(b.data)
		if err := l.Sync(ctx); err != nil {
			t.Logf("Sync failed first: %v", err)
			break
		}
	}

	healed := true
	switch {
	case useFS:
		v.fs.Fail(nil)
	case s.h.HealWrites != nil:
		s.h.HealWrites(v.e)
	default:
		healed = false
	}
	b := g.next(m.end)
	wantErr(t, fmt.Sprintf("Append after a failed write (fault healed: %v)", healed), l.Append(ctx, b.meta, b.data), engine.ErrLogFailed)
	wantErr(t, "Truncate after a failed write", l.Truncate(ctx, m.batches[len(m.batches)/2].meta.BaseOffset), engine.ErrLogFailed)
	wantErr(t, "DeleteBefore after a failed write", l.DeleteBefore(ctx, m.batches[1].meta.BaseOffset), engine.ErrLogFailed)
	checkLog(t, l, &m) // reads still work and show every acknowledged Append

	// A failed log may report the failure again when closed; the contract
	// says nothing either way.
	if err := l.Close(); err != nil {
		t.Logf("Log.Close of the failed log: %v", err)
	}
	if err := v.e.Close(); err != nil {
		t.Logf("Engine.Close with a failed log: %v", err)
	}
	v.fs.Fail(nil)
	v.open() // FailWrites lasts until the engine is closed
	l = v.openLog(tp0)
	got := readAll(t, l, 0, 64<<10)
	cand := append(m.batches, failed...)
	if len(got) < synced || len(got) > len(cand) {
		t.Fatalf("after reopening, %d batches: want the %d synced before the fault and at most %d more", len(got), synced, len(cand)-synced)
	}
	if err := diffBatches(got, cand[:len(got)]); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	t.Logf("reopened with %d batches: %d synced before the fault, %d appended after it, %d failed",
		len(got), synced, len(m.batches)-synced, len(failed))
	m = model{batches: got, end: got[len(got)-1].meta.LastOffset + 1}
	fill(t, l, &m, g, 5)
	checkLog(t, l, &m)
}

// testReleaseOutlivesChanges holds Records across Truncate and new appends
// over the same offsets, DeleteBefore of everything, Log.Close, DeleteLog
// and Engine.Close, and checks after each that their bytes are unchanged.
func (s *suite) testReleaseOutlivesChanges(t *testing.T) {
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	fill(t, l, &m, newGen(24), 80) // a few segments
	noErr(t, "Sync", l.Sync(ctx))

	type held struct {
		recs     engine.Records
		from     int64
		snapshot [][]byte
	}
	var all []*held
	hold := func(l engine.Log, from int64) {
		t.Helper()
		recs, err := l.Read(ctx, from, 200<<10)
		noErr(t, fmt.Sprintf("Read(%d)", from), err)
		if _, err := parseRecords(recs, from, 200<<10); err != nil || recs.Empty() {
			t.Fatalf("Read(%d): %v (%d bytes)", from, err, recs.Len())
		}
		h := &held{recs: recs, from: from}
		for _, c := range recs.Chunks {
			h.snapshot = append(h.snapshot, bytes.Clone(c))
		}
		all = append(all, h)
	}
	verify := func(when string) {
		t.Helper()
		for _, h := range all {
			for i, c := range h.recs.Chunks {
				if !bytes.Equal(c, h.snapshot[i]) {
					t.Fatalf("%s: chunk %d of Records read from %d changed before Release", when, i, h.from)
				}
			}
			if _, err := parseRecords(h.recs, h.from, 200<<10); err != nil {
				t.Fatalf("%s: Records read from %d: %v", when, h.from, err)
			}
		}
	}

	mid := m.batches[40].meta.BaseOffset
	hold(l, 0)
	hold(l, mid)
	hold(l, m.batches[len(m.batches)-1].meta.BaseOffset)
	noErr(t, "Truncate", l.Truncate(ctx, mid))
	m.truncate(mid)
	fill(t, l, &m, newGen(25), 40) // other bytes at the same offsets
	noErr(t, "Sync", l.Sync(ctx))
	verify("after Truncate and appends over the truncated offsets")
	hold(l, mid)

	noErr(t, "DeleteBefore", l.DeleteBefore(ctx, m.end))
	m.deleteBefore(m.end)
	fill(t, l, &m, newGen(26), 40)
	noErr(t, "Sync", l.Sync(ctx))
	verify("after DeleteBefore of everything and more appends")
	hold(l, m.start)
	noErr(t, "Log.Close", l.Close())
	verify("after Log.Close")

	tp1 := engine.TopicPartition{Topic: "release", Partition: 1}
	l1 := v.openLog(tp1)
	var m1 model
	fill(t, l1, &m1, newGen(27), 40)
	hold(l1, 0)
	noErr(t, "DeleteLog", v.e.DeleteLog(ctx, tp1))
	verify("after DeleteLog")

	v.close()
	verify("after Engine.Close")
	for _, h := range all {
		h.recs.Release()
	}
}
