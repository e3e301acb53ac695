package enginetest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/strata-broker/strata/engine"
)

// Options the suite opens every engine with (besides FS, a FaultFS over
// engine.OSFS, and a Logger that discards). They are small so that a few
// hundred KiB of batches roll many segments and write many index entries.
const (
	SegmentBytes       = 64 << 10
	IndexIntervalBytes = 512
	SegmentIndexBytes  = 16 << 10
)

// Run runs the conformance suite against the engine h describes, each part
// as a subtest of t (see the package documentation for the list). Call it
// as the first statement of a test: when h.Durable, the suite re-executes
// the test binary to run this same test as a child process that appends
// until killed, and the child plays its part from inside Run. Every engine
// the suite opens lives in its own t.TempDir().
func Run(t *testing.T, h Harness) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		runChild(t, h, dir) // does not return
	}
	if h.Open == nil {
		t.Fatal("enginetest: Harness.Open is nil")
	}
	if h.TearTail == nil && !h.Durable {
		t.Fatal("enginetest: a Harness that is not Durable must set TearTail, or recovery goes untested")
	}
	s := &suite{h: h, name: t.Name()}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("ReadInsideBatch", s.testReadInsideBatch)
	t.Run("ReadLimits", s.testReadLimits)
	t.Run("AppendRejects", s.testAppendRejects)
	t.Run("Truncate", s.testTruncate)
	t.Run("DeleteBefore", s.testDeleteBefore)
	t.Run("DeleteBeforeBeyondEnd", s.testDeleteBeforeBeyondEnd)
	t.Run("OffsetForTime", s.testOffsetForTime)
	t.Run("ReopenAndLogs", s.testReopenAndLogs)
	t.Run("OpenTwiceAndDelete", s.testOpenTwiceAndDelete)
	// Recovery is checked one way or both, never neither (see above):
	// by damaging the tail in place, and by killing a child process.
	if h.TearTail != nil {
		t.Run("TearTail", s.testTearTail)
	}
	if h.Durable {
		t.Run("KillChild", s.testKillChild)
	}
	t.Run("ConcurrentReaders", s.testConcurrentReaders)
	t.Run("ManyLogs", s.testManyLogs)
	t.Run("UseAfterClose", s.testUseAfterClose)
	t.Run("StickyWriteError", s.testStickyWriteError)
	t.Run("ReleaseOutlivesChanges", s.testReleaseOutlivesChanges)
}

type suite struct {
	h Harness
	// name is the test that called Run, which the child process re-enters.
	name string
}

// options returns the Options the suite opens every engine with.
func options(fs engine.FS) engine.Options {
	o := engine.Options{
		FS:     fs,
		Logger: slog.New(slog.DiscardHandler),
		Log: engine.LogOptions{
			SegmentBytes:       SegmentBytes,
			IndexIntervalBytes: IndexIntervalBytes,
			SegmentIndexBytes:  SegmentIndexBytes,
		},
	}
	// Engines get Options as engine.Open would hand them over.
	o.EnsureDefaults()
	return o
}

// env is one engine under test, in its own directory, reopened at will.
type env struct {
	t   testing.TB
	h   Harness
	dir string
	fs  *FaultFS
	e   engine.Engine // nil while closed
}

// newEnv opens an engine in a fresh directory and closes it when the test
// ends.
func (s *suite) newEnv(t testing.TB) *env {
	return s.envAt(t, t.TempDir())
}

func (s *suite) envAt(t testing.TB, dir string) *env {
	v := &env{t: t, h: s.h, dir: dir, fs: NewFaultFS(engine.OSFS)}
	v.open()
	t.Cleanup(func() {
		if v.e != nil {
			v.e.Close()
		}
	})
	return v
}

func (v *env) open() {
	v.t.Helper()
	e, err := v.h.Open(v.dir, options(v.fs))
	if err != nil {
		v.t.Fatalf("opening the engine in %s: %v", v.dir, err)
	}
	v.e = e
}

func (v *env) close() {
	v.t.Helper()
	e := v.e
	v.e = nil
	noErr(v.t, "Engine.Close", e.Close())
}

// reopen closes the engine (which closes its logs) and opens it again.
func (v *env) reopen() {
	v.t.Helper()
	v.close()
	v.open()
}

func (v *env) openLog(tp engine.TopicPartition) engine.Log {
	v.t.Helper()
	l, err := v.e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if err != nil {
		v.t.Fatalf("OpenLog(%s): %v", tp, err)
	}
	return l
}

var tp0 = engine.TopicPartition{Topic: "conformance", Partition: 0}
