package broker

// ControlledShutdown (key 7, v0–3), and the broker's own controlled
// shutdown.
//
// A broker of a cluster that stops gracefully (Shutdown; SIGTERM for
// strata serve) first hands its leaderships over: it stops its fetchers
// (so no leader takes it back into an ISR), asks the controller to move
// the leadership of its partitions to other in-sync replicas and take it
// out of the ISRs (a ControlledShutdown request to the controller, or the
// coordinator directly when it is the controller), and waits until its
// own metadata shows that done. Clients get NOT_LEADER_OR_FOLLOWER from it
// meanwhile and move to the new leaders, so a rolling restart loses
// nothing and stalls producers for a metadata refresh. Partitions with no
// other in-sync replica stay led by it (the controller cannot move them);
// after controlled.shutdown.max.retries attempts,
// controlled.shutdown.retry.backoff.ms apart, it stops anyway, as Kafka
// does. controlled.shutdown.enable=false skips all of it.
//
// Served: the controller answers a ControlledShutdown request with the
// partitions the broker still leads; another broker answers NOT_CONTROLLER.
// The broker epoch (v2+) is not checked.

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

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
)

func handleControlledShutdown(ctx context.Context, c *conn, req *kmsg.ControlledShutdownRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ControlledShutdownResponse)
	r, ok := c.b.coord.(coordination.Replication)
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	remaining, err := r.ControlledShutdown(ctx, req.BrokerID)
	if err != nil {
		resp.ErrorCode = kafkaerr.Code(err)
		return resp
	}
	for _, p := range remaining {
		rp := kmsg.NewControlledShutdownResponsePartitionsRemaining()
		rp.Topic, rp.Partition = p.Topic, p.Partition
		resp.PartitionsRemaining = append(resp.PartitionsRemaining, rp)
	}
	return resp
}

// controlledShutdown moves this broker's leaderships away before it stops
// (see the file comment). It returns when done, when no attempt is left,
// or when ctx ends.
func (b *Broker) controlledShutdown(ctx context.Context) {
	r, ok := b.coord.(coordination.Replication)
	if _, cluster := b.coord.(coordination.Registrar); !ok || !cluster || !b.cfg.ControlledShutdownEnable {
		return
	}
	b.repl.close()
	me := b.coord.BrokerID()
	attempts := int(max(b.cfg.ControlledShutdownMaxRetries, 0)) + 1
	for attempt := 1; attempt <= attempts && ctx.Err() == nil; attempt++ {
		remaining, err := b.askControlledShutdown(ctx, r, me)
		if err == nil {
			b.awaitLeadershipsMoved(ctx, remaining)
			b.log.Info("controlled shutdown: leadership moved", "remaining", len(remaining))
			return
		}
		b.log.Warn("controlled shutdown failed", "attempt", attempt, "of", attempts, "err", err)
		if attempt < attempts {
			t := time.NewTimer(b.cfg.ControlledShutdownRetryBackoffMs)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	b.log.Warn("controlled shutdown did not complete; stopping anyway")
}

// askControlledShutdown asks the controller to move broker me's
// leaderships, and returns the partitions it could not move.
func (b *Broker) askControlledShutdown(ctx context.Context, r coordination.Replication, me int32) ([]coordination.PartitionRef, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	snap := b.coord.Snapshot()
	if snap.ControllerID == me {
		return r.ControlledShutdown(ctx, me)
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
func (b *Broker) awaitLeadershipsMoved(ctx context.Context, remaining []coordination.PartitionRef) {
	me := b.coord.BrokerID()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		snap := b.parts.sync(ctx)
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
		case <-b.coord.Changed(snap.Version):
		}
	}
}
