package replication

// The controlled shutdown: a broker of a cluster that stops gracefully
// first hands its leaderships over. It stops its fetchers (so no leader
// takes it back into an ISR), asks the controller to move the leadership
// of its partitions to other in-sync replicas and take it out of the ISRs
// (a ControlledShutdown request to the controller, or the coordinator
// directly when it is the controller), and waits until its own metadata
// shows that done. Clients get NOT_LEADER_OR_FOLLOWER from it meanwhile
// and move to the new leaders, so a rolling restart loses nothing and
// stalls producers for a metadata refresh. Partitions with no other
// in-sync replica stay led by it (the controller cannot move them); after
// controlled.shutdown.max.retries attempts,
// controlled.shutdown.retry.backoff.ms apart, it stops anyway, as Kafka
// does.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/coordination"
)

// ControlledShutdown moves this broker's leaderships away before it stops
// (see the file comment); in a cluster only, and unless
// controlled.shutdown.enable is false. It returns when done, when no attempt is left,
// or when ctx ends.
func (r *Replicator) ControlledShutdown(ctx context.Context) {
	c, ok := r.coord.(coordination.Replication)
	if _, cluster := r.coord.(coordination.Registrar); !ok || !cluster || !r.cfg.ControlledShutdownEnable {
		return
	}
	r.StopFetchers()
	me := r.coord.BrokerID()
	attempts := int(max(r.cfg.ControlledShutdownMaxRetries, 0)) + 1
	for attempt := 1; attempt <= attempts && ctx.Err() == nil; attempt++ {
		remaining, err := r.askControlledShutdown(ctx, c, me)
		if err == nil {
			r.awaitLeadershipsMoved(ctx, remaining)
			r.log.Info("controlled shutdown: leadership moved", "remaining", len(remaining))
			return
		}
		r.log.Warn("controlled shutdown failed", "attempt", attempt, "of", attempts, "err", err)
		if attempt < attempts {
			t := time.NewTimer(r.cfg.ControlledShutdownRetryBackoffMs)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	r.log.Warn("controlled shutdown did not complete; stopping anyway")
}

// askControlledShutdown asks the controller to move broker me's
// leaderships, and returns the partitions it could not move.
func (r *Replicator) askControlledShutdown(ctx context.Context, c coordination.Replication, me int32) ([]coordination.PartitionRef, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	snap := r.coord.Snapshot()
	if snap.ControllerID == me {
		return c.ControlledShutdown(ctx, me)
	}
	i := slices.IndexFunc(snap.Brokers, func(br coordination.Broker) bool { return br.ID == snap.ControllerID })
	if i < 0 {
		return nil, errors.New("no controller")
	}
	ctl := snap.Brokers[i]
	cl, err := kgo.NewClient(kgo.SeedBrokers(net.JoinHostPort(ctl.Host, strconv.Itoa(int(ctl.Port)))),
		kgo.ClientID(fmt.Sprintf("strata-broker-%d", me)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrControlledShutdownRequest()
	req.BrokerID = me
	req.BrokerEpoch = -1
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.ControlledShutdownResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	var out []coordination.PartitionRef
	for _, p := range resp.PartitionsRemaining {
		out = append(out, coordination.PartitionRef{Topic: p.Topic, Partition: p.Partition})
	}
	return out, nil
}

// awaitLeadershipsMoved waits, at most 10 s, until this broker's metadata
// shows it leading none of its partitions but the remaining ones.
func (r *Replicator) awaitLeadershipsMoved(ctx context.Context, remaining []coordination.PartitionRef) {
	me := r.coord.BrokerID()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		snap := r.parts.Sync(ctx)
		leads := false
		for _, t := range snap.Topics {
			for _, sp := range t.Partitions {
				if sp.Leader == me && !slices.Contains(remaining, coordination.PartitionRef{Topic: t.Name, Partition: sp.Index}) {
					leads = true
				}
			}
		}
		if !leads {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-r.coord.Changed(snap.Version):
		}
	}
}
