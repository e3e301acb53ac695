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
// Call Run as the first statement of a top-level test: for durable engines
// the suite re-runs the test binary as a child process that it kills
// mid-append, and the child enters the same test to play its part.
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
}
