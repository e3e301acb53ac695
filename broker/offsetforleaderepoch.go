package broker

// OffsetForLeaderEpoch (key 23): versions 0–4.
//
// Served, as Kafka's leader answers from its leader-epoch cache: for the
// partition's current leader epoch, that epoch and the log end offset; for
// an epoch above it, or -1, UNDEFINED (-1 epoch, -1 offset, no error); for
// an older epoch, the largest epoch at or below it that the log holds
// (the requested one if the log holds none) and the start offset of the
// first later epoch, which is the base offset of the first batch stamped
// with a larger partitionLeaderEpoch, or the log end if the log holds
// none. The epochs are read from the batch headers (the broker stamps them
// on produce) by a walk from the log start: Strata keeps no separate
// epoch cache, so an old epoch costs a read of the log's headers; a
// client only asks for one after a leader change. v2+'s current leader
// epoch is checked as Fetch checks it (older: FENCED_LEADER_EPOCH, newer:
// UNKNOWN_LEADER_EPOCH). Unknown partitions are
// UNKNOWN_TOPIC_OR_PARTITION, partitions led elsewhere
// NOT_LEADER_OR_FOLLOWER.
//
// Left out: replica_id (v3+) is not looked at: every caller gets the
// leader's answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

func handleOffsetForLeaderEpoch(ctx context.Context, c *conn, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	ctx = context.WithoutCancel(ctx)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := engine.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			currentEpoch := int32(-1)
			if req.Version >= 2 {
				currentEpoch = rp.CurrentLeaderEpoch
			}
			var err error
			sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset, err = c.b.endOffsetForEpoch(ctx, tp, currentEpoch, rp.LeaderEpoch)
			if err != nil {
				c.b.log.Warn("offset for leader epoch", "partition", tp.String(), "err", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// endOffsetForEpoch answers one partition.
func (b *Broker) endOffsetForEpoch(ctx context.Context, tp engine.TopicPartition, currentEpoch, epoch int32) (code int16, leaderEpoch int32, endOffset int64, err error) {
	p := b.parts.get(ctx, tp)
	if p == nil {
		return b.missingPartitionCode(tp), -1, -1, nil
	}
	if p.openErr != nil {
		return errorCode(p.openErr), -1, -1, nil
	}
	st := p.state.Load()
	if !st.leader {
		return kerr.NotLeaderForPartition.Code, -1, -1, nil
	}
	if code := leaderEpochCheck(st, currentEpoch); code != 0 {
		return code, -1, -1, nil
	}
	start, end := p.log.Offsets()
	switch {
	case epoch < 0 || epoch > st.leaderEpoch:
		return 0, -1, -1, nil
	case epoch == st.leaderEpoch:
		return 0, epoch, end, nil
	}
	floor, next := int32(-1), end
	err = p.walkBatches(ctx, start, end, func(h *engine.BatchHeader) bool {
		if h.PartitionLeaderEpoch > epoch {
			next = h.BaseOffset
			return false
		}
		floor = max(floor, h.PartitionLeaderEpoch)
		return true
	})
	if err != nil {
		return errorCode(err), -1, -1, err
	}
	if floor < 0 {
		floor = epoch
	}
	return 0, floor, max(next, start), nil
}
