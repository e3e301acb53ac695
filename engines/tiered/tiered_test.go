package tiered_test

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mmap"
	"github.com/strata-broker/strata/engines/tiered"
)

// TestConformance runs the suite with the engine's default local retention
// (0: a segment moves to the cold tier as soon as it is sealed and synced)
// and an uploader that runs every few milliseconds, so that reads,
// truncations, deletions and the kill of the child process meet cold
// segments and uploads in flight. The hot tier is an mmap log, so mmap's
// TearTail damages it.
func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			opts.Settings = map[string]string{
				tiered.SettingUploadIntervalMs: "5",
				tiered.SettingFrameBytes:       "8KiB",
			}
			return tiered.Open(context.Background(), dir, opts)
		},
		TearTail: mmap.TearTail,
		Durable:  true,
	})
}
