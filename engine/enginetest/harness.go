// Package enginetest is the conformance suite of the engine contract: one
// function, Run, that every storage engine calls from its tests to prove it
// meets the contract of package engine, as testing/fstest.TestFS does for
// file systems.
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Harness{
//			Open: func(dir string, opts engine.Options) (engine.Engine, error) {
//				return mmap.Open(context.Background(), dir, opts)
//			},
//			TearTail: mmap.TearTail,
//			Durable:  true,
//		})
//	}
//
// Call Run as the first statement of its test (top-level or subtest), and
// at most once per test: for durable engines the suite re-runs the test
// binary as a child process, selecting that same test with -test.run, and
// the child plays its part from inside Run (it appends until SIGKILLed).
// A test that does anything before Run does it in the child too.
//
// # What the suite checks
//
// Each part is a subtest, named after what it checks: RoundTrip,
// ReadInsideBatch, ReadLimits, AppendRejects, Truncate, DeleteBefore,
// DeleteBeforeBeyondEnd, OffsetForTime, ReopenAndLogs, OpenTwiceAndDelete,
// TearTail, KillChild, ConcurrentReaders, ManyLogs, UseAfterClose,
// StickyWriteError and ReleaseOutlivesChanges; each one's doc comment says
// what it asserts. Every Read result anywhere in the suite is checked
// against the contract: chunks of whole batches that pass
// engine.CheckBatch, contiguous, beginning with the batch that holds the
// offset asked for, within maxBytes unless a single batch, and NextOffset
// one past the last batch.
//
// # What an engine under test must do
//
//   - Do all file access through Options.FS (the suite passes a [FaultFS]),
//     and do not type-assert its Files to *os.File. StickyWriteError arms
//     it and expects an Append or a Sync to fail within a few segments of
//     appends; writes through a memory mapping bypass it, so such an
//     engine's failure shows at File.Sync, and a failed Sync must fail the
//     log (ErrLogFailed) just as a failed Append does.
//   - Take the suite's Options: SegmentBytes 64 KiB, IndexIntervalBytes
//     512, SegmentIndexBytes 16 KiB, every other field the default (no
//     flush policy), Logger discarding.
//   - Give Records' memory a Pin if it can change or go away before
//     Release: ReleaseOutlivesChanges holds Records across Truncate with
//     new appends over the same offsets, DeleteBefore of everything,
//     DeleteLog, and both Closes.
//   - Offer TearTail unless the engine cannot be damaged that way; see
//     [Harness.TearTail].
package enginetest

import (
	"github.com/strata-broker/strata/engine"
)

// Harness tells Run how to drive the engine under test.
type Harness struct {
	// Open opens (or reopens) the engine whose state lives in dir. The
	// suite fills opts: small segments so rolls happen, and FS set to the
	// suite's fault-injecting wrapper of the OS file system, which the
	// engine must use for all its file access.
	Open func(dir string, opts engine.Options) (engine.Engine, error)

	// TearTail rewrites the state left in dir by the closed engine the way
	// a crash in the middle of the last Append to tp would have left it:
	// the bytes of the log's last batch are replaced by tear(last) (which
	// may cut them short or flip bytes inside them), and whatever records
	// that batch as durable (a recovery point, a checkpoint) is rolled back
	// to before it. The suite then reopens the engine and checks that the
	// log is a valid prefix including every earlier batch.
	//
	// Nil means the engine cannot be damaged in place this way; say why in
	// a comment beside the Harness. Such an engine must be Durable, and the
	// suite proves its recovery by killing a child process instead.
	TearTail func(dir string, tp engine.TopicPartition, tear func(last []byte) []byte) error

	// Durable says the engine keeps its state in files under dir, so it
	// survives the process: the suite then also kills a child process
	// (SIGKILL) in the middle of appending and checks what the parent
	// reopens. An engine whose state lives in process memory sets false
	// and must set TearTail.
	Durable bool

	// FailWrites, if set, makes every later write of engine e fail until
	// e is closed. When nil the suite fails writes through the FS it
	// passed in Options.FS.
	FailWrites func(e engine.Engine)

	// HealWrites, if set, undoes FailWrites: later writes of e reach the
	// storage again. The suite uses it to check that a log that failed a
	// write keeps refusing writes (ErrLogFailed) after the fault is gone,
	// until it is reopened. Without it (and with FailWrites set) the suite
	// can check that only while the fault lasts.
	HealWrites func(e engine.Engine)
}
