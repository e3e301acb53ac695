package mmap_test

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mmap"
)

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return mmap.Open(context.Background(), dir, opts)
		},
		TearTail: mmap.TearTail,
		Durable:  true,
	})
}
