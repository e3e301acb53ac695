package partition

// Replication, the follower's side of the log: the fetchers (package
// replication) hand each partition the leader's answers, and the partition
// appends, truncates or starts over under its appendMu, so a follower's
// log changes as a leader's does, by its one appender.
//
// Truncation: when the epoch of a follower's last batch is not one the
// leader's history has up to that offset, the leader answers with a
// diverging epoch (its largest epoch at or below the follower's, and
// where that epoch ends in its log). The follower truncates to the end of
// that epoch in its own log, or to the leader's end of it if smaller, and
// fetches again, which checks again: it never cuts more than where the
// histories part. A follower behind the leader's log start starts over
// there; one ahead of the leader's log with no epoch to compare (a leader
// elected uncleanly) truncates to the leader's high watermark.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

// Position is where a follower's fetch asked to read a partition: the
// leader epoch the follower knew, and its log end.
type Position struct {
	Epoch  int32
	Offset int64
}

// FetchFrom returns where the follower's next fetch of p reads from: its
// log start and end, and the epoch of its last batch (-1: none).
func (p *Partition) FetchFrom() (start, end int64, lastEpoch int32) {
	start, end = p.log.Offsets()
	return start, end, p.epochs.latest()
}

// follows reports whether p still follows leader at the epoch a fetch
// asked with (under appendMu): an answer to an older question is dropped.
func (p *Partition) follows(leader int32, at Position) bool {
	st := p.state.Load()
	return !p.closed && !st.Leader && st.LeaderID == leader && st.LeaderEpoch == at.Epoch
}

// AppendReplica appends the batches a leader sent and takes its high
// watermark and log start offset.
func (p *Partition) AppendReplica(ctx context.Context, leader int32, at Position, data []byte, hw, leaderStart int64, batches []engine.Batch) ([]engine.Batch, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, at) {
		return batches, nil
	}
	start, end := p.log.Offsets()
	if end != at.Offset {
		return batches, nil // the log changed since the fetch was sent
	}
	latest := p.epochs.latest()
	for rest := data; len(rest) > 0; {
		h, err := engine.ParseBatchHeader(rest)
		if err != nil || h.Size() > len(rest) {
			break // a cut batch at the end of the answer: fetched again
		}
		raw := rest[:h.Size()]
		rest = rest[h.Size():]
		if h.LastOffset() < end {
			continue
		}
		if h.BaseOffset != end {
			return batches, fmt.Errorf("leader sent a batch at %d, the log ends at %d", h.BaseOffset, end)
		}
		if _, err := engine.CheckBatch(raw); err != nil {
			return batches, fmt.Errorf("leader sent a corrupt batch at %d: %w", h.BaseOffset, err)
		}
		if h.PartitionLeaderEpoch > latest {
			if err := p.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
				return batches, err
			}
			latest = h.PartitionLeaderEpoch
		}
		batches = append(batches, engine.Batch{Meta: h.Meta(), Data: raw})
		end = h.LastOffset() + 1
	}
	if len(batches) > 0 {
		// The idempotent producers' state is rebuilt from the log when
		// this replica leads.
		p.forgetDerived()
		n, err := engine.AppendBatches(ctx, p.log, batches)
		if err != nil {
			_, e := p.log.Offsets()
			_ = p.epochs.truncateFromEnd(e)
			if n == 0 {
				return batches, err
			}
		}
	}
	if leaderStart > start {
		if _, end := p.log.Offsets(); leaderStart <= end {
			if err := p.log.DeleteBefore(ctx, leaderStart); err != nil {
				return batches, err
			}
			_ = p.epochs.truncateFromStart(leaderStart)
		}
	}
	_, end = p.log.Offsets()
	p.hw.Store(min(max(hw, 0), end))
	if len(batches) > 0 {
		p.wake()
	}
	return batches, nil
}

// TruncateDiverged cuts the log where it parts from the leader's: the
// leader's history has epoch up to endOffset.
func (p *Partition) TruncateDiverged(ctx context.Context, leader int32, at Position, epoch int32, endOffset, hw int64) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, at) {
		return nil
	}
	_, end := p.log.Offsets()
	to := end
	switch {
	case epoch < 0 || endOffset < 0:
		// The leader has no epoch at or below ours: keep what is
		// committed.
		to = min(end, max(hw, 0))
	default:
		e, mine := p.epochs.endOffsetFor(epoch, end)
		if e == epoch {
			to = min(mine, endOffset)
		} else {
			to = min(mine, end) // the next fetch compares again
		}
		if mine < 0 {
			to = min(endOffset, end)
		}
	}
	return p.truncateTo(ctx, to)
}

// ReplicaOutOfRange handles a fetch offset outside the leader's log: below
// its start the follower starts over there; above its end (a leader
// elected without this follower's last records) it truncates to the
// leader's high watermark.
func (p *Partition) ReplicaOutOfRange(ctx context.Context, leader int32, at Position, rp *kmsg.FetchResponseTopicPartition) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, at) {
		return nil
	}
	start, end := p.log.Offsets()
	switch {
	case rp.LogStartOffset >= 0 && end < rp.LogStartOffset:
		if err := p.log.DeleteBefore(ctx, rp.LogStartOffset); err != nil {
			return err
		}
		p.forgetDerived()
		p.hw.Store(rp.LogStartOffset)
		return p.epochs.clearAll()
	case rp.HighWatermark >= 0 && rp.HighWatermark < end && rp.HighWatermark >= start:
		return p.truncateTo(ctx, rp.HighWatermark)
	}
	return fmt.Errorf("offset %d out of the leader's range (start %d, high watermark %d)", end, rp.LogStartOffset, rp.HighWatermark)
}

// truncateTo cuts the log to offset to (under appendMu). Also when it
// cuts nothing, epochs that begin at or past the log end go: a leadership
// of this replica's that wrote no batch leaves an epoch with no records,
// which its next leader does not know and which would otherwise be
// answered with the same divergence again and again.
func (p *Partition) truncateTo(ctx context.Context, to int64) error {
	_, end := p.log.Offsets()
	if to >= end {
		return p.epochs.truncateFromEnd(end)
	}
	if err := p.log.Truncate(ctx, to); err != nil {
		return err
	}
	_, end = p.log.Offsets()
	p.forgetDerived()
	if p.hw.Load() > end {
		p.hw.Store(end)
	}
	p.logger.Info("truncated to where the leader's history parts", "partition", p.tp.String(), "offset", end)
	return p.epochs.truncateFromEnd(end)
}
