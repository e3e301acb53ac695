package tiered

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// TestConformanceEagerCold runs the suite over logs that move every sealed
// segment to the cold tier as soon as an Append rolls one (Settle from the
// appender), so that every part of the suite, the killed child included,
// meets a log that lives mostly in the cold tier.
func TestConformanceEagerCold(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			opts.Settings = map[string]string{SettingUploadIntervalMs: "0", SettingFrameBytes: "4KiB"}
			e, err := Open(context.Background(), dir, opts)
			if err != nil {
				return nil, err
			}
			return eagerEngine{e}, nil
		},
		// TearTail's log is a few batches in one segment, which never
		// leaves the hot tier: TestConformance covers it.
		Durable: true,
	})
}

type eagerEngine struct{ *Engine }

func (e eagerEngine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	l, err := e.Engine.OpenLog(ctx, tp, opts)
	if err != nil {
		return nil, err
	}
	return eagerLog{l.(*Log)}, nil
}

type eagerLog struct{ *Log }

func (l eagerLog) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	if err := l.Log.Append(ctx, meta, batch); err != nil {
		return err
	}
	if len(l.hot.Segments()) > 1 {
		// Errors show at the next Append or Sync, as they would from
		// the background uploader.
		_ = Settle(ctx, l.Log)
	}
	return nil
}
