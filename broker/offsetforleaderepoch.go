package broker

// OffsetForLeaderEpoch (key 23): versions 0–4.
//
//   - Served from the partition's leader-epoch cache, as Kafka's leader
//     answers: for the newest epoch the log holds, that epoch and the log
//     end offset; for an epoch above it, or -1, UNDEFINED (-1 epoch, -1
//     offset, no error); for an older epoch, the largest epoch at or below
//     it that the log holds (the requested one if older than every epoch
//     the log holds) and the start offset of the next epoch. v2+'s current
//     leader epoch is checked as Fetch checks it.
//   - Left out: replica_id (v3+) is not looked at: every caller gets the
//     leader's answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
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
			sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset = c.b.endOffsetForEpoch(ctx, tp, currentEpoch, rp.LeaderEpoch)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// endOffsetForEpoch answers one partition.
func (b *Broker) endOffsetForEpoch(ctx context.Context, tp engine.TopicPartition, currentEpoch, epoch int32) (code int16, leaderEpoch int32, endOffset int64) {
	p, _, err := b.parts.Leader(ctx, tp, currentEpoch)
	if err != nil {
		return kafkaerr.Code(err), -1, -1
	}
	leaderEpoch, endOffset = p.EndOffsetForEpoch(epoch)
	return 0, leaderEpoch, endOffset
}
