package lsm

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// TestConformance runs the engine contract's suite. Faults reach Pebble
// through the suite's FaultFS, which the engine adapts to Pebble's vfs.FS.
//
// TearTail is nil: the engine does not keep batches in files of its own
// but in Pebble's WAL and sstables, whose recovery (checksummed WAL
// chunks, a torn WAL tail cut at the last whole record) owns torn tails;
// the suite proves recovery by SIGKILLing a child mid-append (KillChild)
// and by a torn WAL write (StickyWriteError).
func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return Open(context.Background(), dir, opts)
		},
		Durable: true,
	})
}
