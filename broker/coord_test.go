package broker

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/coordination/local"
)

// newTestCoordinator opens the embedded coordination in the first log dir,
// as cmd/strata does.
func newTestCoordinator(t testing.TB, cfg config.Config) coordination.Coordinator {
	t.Helper()
	c, err := local.Open(context.Background(), local.Options{
		Dir:                      cfg.LogDirs[0],
		BrokerID:                 cfg.BrokerID,
		DefaultPartitions:        cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		ValidateTopicConfigs:     config.ValidateTopicConfigs,
		Logger:                   testLogger(t),
	})
	if err != nil {
		t.Fatalf("local.Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reopenTestCoordinator closes old and opens the coordination again from
// its files, as a restarted process would.
func reopenTestCoordinator(t *testing.T, cfg config.Config, old coordination.Coordinator) coordination.Coordinator {
	t.Helper()
	if err := old.Close(); err != nil {
		t.Fatalf("closing coordination: %v", err)
	}
	return newTestCoordinator(t, cfg)
}
