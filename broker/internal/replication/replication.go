// Package replication is the follower's side of replication and the ISR's
// upkeep: the fetchers that copy the partitions this broker follows from
// their leaders, the ISR changes a leader asks of the coordinator (a
// follower that fell behind for replica.lag.time.max.ms leaves, one that
// caught up returns), and the controlled shutdown's handover of
// leadership. The partitions themselves (package partition) hold the logs,
// the followers' positions and the high watermark; this package implements
// partition.Replication for them.
package replication

import (
	"context"
	"log/slog"
	"sync"

	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// Options configure a Replicator.
type Options struct {
	// Config is the broker's configuration: the replica.* and
	// controlled.shutdown.* keys are read from it.
	Config config.Config
	// Coordinator holds the cluster metadata; ISR changes and the
	// controlled shutdown go through its coordination.Replication.
	Coordinator coordination.Coordinator
	// Logger receives the replication's logs.
	Logger *slog.Logger
	// Context ends the fetchers, the ISR loop and ISR changes under way
	// when the broker shuts down.
	Context context.Context
}

// Replicator runs the fetchers and the ISR's upkeep.
type Replicator struct {
	cfg   config.Config
	coord coordination.Coordinator
	log   *slog.Logger
	ctx   context.Context
	// parts is the partition manager, from Start on.
	parts *partition.Manager

	mu        sync.Mutex
	closed    bool
	fetchers  map[int32]*fetcher                // by leader
	following map[*partition.Partition]*fetcher // which fetcher copies a partition
	wg        sync.WaitGroup                    // the fetchers
	// bg waits for the ISR loop and the ISR changes under way.
	bg sync.WaitGroup
}

var _ partition.Replication = (*Replicator)(nil)

// New returns a Replicator; it follows partitions at once, and starts
// looking after the ISRs of the partitions this broker leads at Start.
func New(opts Options) *Replicator {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	return &Replicator{
		cfg: opts.Config, coord: opts.Coordinator, log: opts.Logger, ctx: opts.Context,
		fetchers: map[int32]*fetcher{}, following: map[*partition.Partition]*fetcher{},
	}
}

// Start starts taking followers that fell behind out of the ISRs of parts.
func (r *Replicator) Start(parts *partition.Manager) {
	r.parts = parts
	r.bg.Add(1)
	go r.shrinkLoop(r.bg.Done)
}

// Close stops the fetchers and waits for them, the ISR loop and the ISR
// changes under way; Options.Context must have ended.
func (r *Replicator) Close() {
	r.StopFetchers()
	r.bg.Wait()
}
