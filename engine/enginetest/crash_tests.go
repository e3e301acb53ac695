package enginetest

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
)

// testTearTail damages the last batch of a synced, closed log through
// Harness.TearTail, once for every way of cutting it short and once for
// every byte flipped, and checks what a reopen recovers (checkTorn).
func (s *suite) testTearTail(t *testing.T) {
	// A few small batches (the last one 142 bytes), so that the hundreds
	// of cases stay fast.
	var bs []batch
	var end int64
	for i, rv := range [][2]int{{2, 40}, {1, 80}, {3, 30}, {3, 20}} {
		b := newBatch(end, rv[0], rv[1], 5000+end, byte(i))
		bs = append(bs, b)
		end = b.meta.LastOffset + 1
	}
	last := bs[len(bs)-1].data
	t.Run("Cut", func(t *testing.T) {
		for k := 0; k <= len(last); k++ {
			s.checkTorn(t, bs, fmt.Sprintf("last batch cut to %d of %d bytes", k, len(last)),
				func(b []byte) []byte { return b[:k] })
		}
	})
	t.Run("Flip", func(t *testing.T) {
		for k := range last {
			// Bytes 12..15 hold partitionLeaderEpoch, which Kafka's
			// CRC-32C does not cover (the broker patches it after
			// the producer computed the CRC). An engine that stores
			// batches as they came has no way to tell a flipped
			// epoch from a real one, so the suite does not ask it to.
			if 12 <= k && k < 16 {
				continue
			}
			s.checkTorn(t, bs, fmt.Sprintf("byte %d of the %d-byte last batch flipped", k, len(last)),
				func(b []byte) []byte { b[k] ^= 0xFF; return b })
		}
	})
}

// checkTorn writes bs to a fresh log, syncs and closes it, damages the last
// batch with tear, reopens, and checks that the log holds every earlier
// batch byte for byte and the last one either whole and identical or not
// at all (no gap, no corrupt batch), and that it takes an append at its
// new end.
func (s *suite) checkTorn(t *testing.T, bs []batch, what string, tear func([]byte) []byte) {
	t.Helper()
	v := s.newEnv(t)
	l := v.openLog(tp0)
	var m model
	appendAll(t, l, &m, bs...)
	noErr(t, "Sync", l.Sync(ctx))
	v.close()
	noErr(t, "TearTail ("+what+")", s.h.TearTail(v.dir, tp0, tear))
	v.open()
	l, err := v.e.OpenLog(ctx, tp0, engine.LogOptions{})
	if err != nil {
		t.Fatalf("%s: OpenLog after TearTail: %v", what, err)
	}
	start, end := l.Offsets()
	lastBatch := bs[len(bs)-1].meta
	if start != 0 || (end != lastBatch.BaseOffset && end != lastBatch.LastOffset+1) {
		t.Fatalf("%s: recovered offsets [%d, %d), want [0, %d) or [0, %d)", what, start, end, lastBatch.BaseOffset, lastBatch.LastOffset+1)
	}
	got := readAll(t, l, 0, 1<<20) // checks every batch is whole and valid
	want := bs
	if end == lastBatch.BaseOffset {
		want = bs[:len(bs)-1]
	}
	if err := diffBatches(got, want); err != nil {
		t.Fatalf("%s: recovered log: %v", what, err)
	}
	m = model{batches: slices.Clone(want), end: end} // appends must not write into bs
	appendAll(t, l, &m, newBatch(end, 2, 17, 9000, 0xEE))
	checkLog(t, l, &m)
	v.close()
}

// Environment of the child process of KillChild.
const (
	childDirEnv  = "STRATA_ENGINETEST_CHILD"      // the engine directory
	childTestEnv = "STRATA_ENGINETEST_CHILD_TEST" // the test (t.Name()) that calls Run
)

// Bounds of the child's append loop, in case nobody kills it.
const (
	childMaxBatches = 1_000_000
	childMaxTime    = 60 * time.Second
)

var crashTP = engine.TopicPartition{Topic: "crash", Partition: 0}

// crashBatch is the batch the child appends at base: a pure function of
// base, so the parent can tell what every recovered batch must hold. Sizes
// vary from about a hundred bytes to several KiB, so segments roll.
func crashBatch(base int64) batch {
	r := rand.New(rand.NewPCG(uint64(base), 0xc0ffee))
	records, value := 1+r.IntN(8), 20+r.IntN(400)
	if r.IntN(10) == 0 {
		value = 1000 + r.IntN(2000)
	}
	return newBatch(base, records, value, 1_700_000_000_000+base, byte(base))
}

// runChild is the child side of KillChild: it opens the engine in dir and
// appends crashBatch batches from the log's end, syncing after every third
// and then printing "synced <end offset>" on stdout, until it is killed (or
// its bounds run out). It never returns.
func runChild(t *testing.T, h Harness, dir string) {
	if want := os.Getenv(childTestEnv); t.Name() != want {
		t.Skipf("enginetest child process for %s, not %s", want, t.Name())
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "enginetest child: "+format+"\n", args...)
		os.Exit(2)
	}
	e, err := h.Open(dir, options(NewFaultFS(engine.OSFS)))
	if err != nil {
		fail("open engine: %v", err)
	}
	l, err := e.OpenLog(ctx, crashTP, engine.LogOptions{})
	if err != nil {
		fail("OpenLog: %v", err)
	}
	_, end := l.Offsets()
	deadline := time.Now().Add(childMaxTime)
	for i := 0; i < childMaxBatches && time.Now().Before(deadline); i++ {
		b := crashBatch(end)
		if err := l.Append(ctx, b.meta, b.data); err != nil {
			fail("Append at %d: %v", end, err)
		}
		end = b.meta.LastOffset + 1
		if i%3 == 2 {
			if err := l.Sync(ctx); err != nil {
				fail("Sync: %v", err)
			}
			// Unbuffered: the line is out before the next Append.
			fmt.Fprintf(os.Stdout, "synced %d\n", end)
		}
	}
	os.Exit(0)
}

// testKillChild runs the test binary again as a child that appends and
// syncs in a loop (runChild), SIGKILLs it once it has reported enough
// syncs, and checks what reopening recovers: everything synced, as a gapless
// prefix of what the child appended. Three rounds on the same directory,
// each child continuing where recovery left the log.
func (s *suite) testKillChild(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		synced := s.runAndKill(t, dir, 50+17*round)
		v := s.envAt(t, dir)
		l := v.openLog(crashTP)
		start, end := l.Offsets()
		if start != 0 || end < synced {
			t.Fatalf("round %d: recovered offsets [%d, %d), though the child reported [0, %d) synced", round, start, end, synced)
		}
		got := readAll(t, l, 0, 256<<10)
		for _, b := range got {
			if want := crashBatch(b.meta.BaseOffset); !bytes.Equal(b.data, want.data) {
				t.Fatalf("round %d: recovered batch at %d differs from the one appended", round, b.meta.BaseOffset)
			}
		}
		b := crashBatch(end)
		noErr(t, "Append after recovery", l.Append(ctx, b.meta, b.data))
		noErr(t, "Sync", l.Sync(ctx))
		v.close()
		t.Logf("round %d: child synced up to %d; recovered [0, %d)", round, synced, end)
	}
}

// runAndKill starts the child in dir, waits until it has reported at least
// syncs syncs, kills it with SIGKILL and returns the highest end offset it
// reported synced.
func (s *suite) runAndKill(t *testing.T, dir string, syncs int) int64 {
	var pattern []string
	for _, part := range strings.Split(s.name, "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childTestEnv+"="+s.name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	noErr(t, "StdoutPipe", err)
	noErr(t, "starting the child", cmd.Start())

	lines := make(chan int64)
	scanErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// Ignore anything but our lines (the testing package
			// might print something of its own).
			if v, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					scanErr <- fmt.Errorf("child printed %q: %v", sc.Text(), err)
					return
				}
				lines <- n
			}
		}
	}()

	var synced int64
	seen := 0
	take := func(n int64) {
		if n < synced {
			t.Errorf("child reported synced end %d after %d", n, synced)
		}
		synced = max(synced, n)
		seen++
	}
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for seen < syncs {
		select {
		case n, ok := <-lines:
			if !ok {
				// The child exited, or printed garbage: stop it
				// either way, it must not outlive the test.
				var serr error
				select {
				case serr = <-scanErr:
				default:
				}
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child stopped reporting after %d syncs (%v)\nstderr:\n%s", seen, serr, stderr.String())
			}
			take(n)
		case <-timeout.C:
			cmd.Process.Kill()
			for range lines {
			}
			cmd.Wait()
			t.Fatalf("child reported only %d syncs in 2 minutes\nstderr:\n%s", seen, stderr.String())
		}
	}
	// SIGKILL: no deferred function, no Close, nothing flushed by the
	// child after this point.
	if err := cmd.Process.Kill(); err != nil {
		for range lines {
		}
		cmd.Wait()
		t.Fatalf("killing the child: %v\nstderr:\n%s", err, stderr.String())
	}
	// Lines the child printed before it died report syncs too. The pipe
	// reaches EOF once the child is gone, which ends this loop.
	for n := range lines {
		take(n)
	}
	cmd.Wait() // "signal: killed"
	return synced
}
