package replication

// ISR changes, as the leader of a partition asks them of the coordinator
// (coordination.Replication.AlterISR, a conditional write): a follower
// that has not caught up for replica.lag.time.max.ms leaves (shrinkLoop,
// looking every half of it), one that caught up returns (ExpandISR, from
// the leader's answer to its fetch). The partition decides who lags or
// caught up (partition.Partition.Laggards, FollowerFetched) and keeps
// counting a follower being added towards the high watermark until the
// change is applied (ISRChanged).

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/coordination"
)

// ExpandISR implements partition.Replication: it writes isr on its own
// goroutine, which Close waits for.
func (r *Replicator) ExpandISR(p *partition.Partition, st *partition.State, isr []int32) {
	r.bg.Go(func() { r.alterISR(p, st, isr) })
}

// alterISR writes a new ISR for the partition as its leader at st's
// epoch, changed from st's, then ends the pending change.
func (r *Replicator) alterISR(p *partition.Partition, st *partition.State, isr []int32) {
	var err error
	defer func() {
		// The new ISR reaches the partition through the snapshot;
		// take it now rather than when the watch gets to it.
		r.parts.Sync(r.ctx)
		definite := errors.Is(err, coordination.ErrStaleState) || errors.Is(err, coordination.ErrInvalidReplication)
		p.ISRChanged(st, isr, definite)
	}()
	c, ok := r.coord.(coordination.Replication)
	if !ok {
		err = coordination.ErrStaleState
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	tp := p.TP()
	err = c.AlterISR(ctx, tp.Topic, tp.Partition, st.LeaderEpoch, st.ISR, isr)
	switch {
	case err == nil:
		r.log.Info("ISR changed", "partition", tp.String(), "leader_epoch", st.LeaderEpoch, "from", st.ISR, "to", isr)
	case errors.Is(err, coordination.ErrStaleState) || r.ctx.Err() != nil:
		r.log.Debug("ISR change not made", "partition", tp.String(), "isr", isr, "err", err)
	default:
		r.log.Warn("ISR change failed", "partition", tp.String(), "isr", isr, "err", err)
	}
}

// shrinkLoop takes followers that fell behind out of the ISR, looking
// every half replica.lag.time.max.ms, until the broker shuts down.
func (r *Replicator) shrinkLoop(done func()) {
	defer done()
	lag := r.cfg.ReplicaLagTimeMaxMs
	t := time.NewTicker(max(lag/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, p := range r.parts.All() {
			st := p.State()
			if !st.Leader || len(st.ISR) <= 1 || p.Log() == nil {
				continue
			}
			if out := p.Laggards(st, now, lag); out != nil {
				isr := slices.DeleteFunc(slices.Clone(st.ISR), func(id int32) bool { return slices.Contains(out, id) })
				r.log.Info("followers fell behind; leaving the ISR", "partition", p.TP().String(), "followers", out, "lag", lag)
				r.alterISR(p, st, isr)
			}
		}
	}
}
