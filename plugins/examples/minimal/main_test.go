package main

import (
	"fmt"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/plugins"
)

// TestConformance runs the suite on the engine through the plugin
// boundary, in process, where its volumes outlive a reopen.
func TestConformance(t *testing.T) {
	top := t
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return plugins.ServeInProcess(top, Open, dir, opts)
		},
		TearTail: tearTail,
		// The logs live in process memory.
		Durable:    false,
		FailWrites: func(e engine.Engine) { e.(*plugins.Engine).SetFailWrites(t.Context(), true) },
		HealWrites: func(e engine.Engine) { e.(*plugins.Engine).SetFailWrites(t.Context(), false) },
	})
}

// tearTail replaces the last batch of tp's log under dir with tear(last),
// dropping it when what is left is not a whole batch, as a recovery would.
func tearTail(dir string, tp engine.TopicPartition, tear func([]byte) []byte) error {
	volumesMu.Lock()
	v := volumes[dir]
	volumesMu.Unlock()
	if v == nil {
		return fmt.Errorf("no volume %s", dir)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.logs[tp]
	if d == nil || len(d.batches) == 0 {
		return fmt.Errorf("%s: no batch to tear", tp)
	}
	last := d.batches[len(d.batches)-1]
	torn := tear(append([]byte(nil), last.data...))
	if _, err := engine.CheckBatch(torn); err == nil && len(torn) == len(last.data) && engine.CheckAppend(last.meta, torn) == nil {
		d.batches[len(d.batches)-1].data = torn
		return nil
	}
	d.batches = d.batches[: len(d.batches)-1 : len(d.batches)-1]
	d.end = last.meta.BaseOffset
	d.start = min(d.start, d.end)
	return nil
}
