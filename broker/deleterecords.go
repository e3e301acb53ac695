package broker

// DeleteRecords (key 21): versions 0–2.
//
//   - Served: each partition's start offset is raised to the offset asked
//     for (-1: the high watermark) by partition.Manager.DeleteRecords; the
//     answer's low_watermark is the new start offset. Below the start
//     changes nothing; above the high watermark, or negative other than
//     -1, is OFFSET_OUT_OF_RANGE; a topic whose cleanup.policy lacks
//     delete is POLICY_VIOLATION; an internal topic (__consumer_offsets)
//     INVALID_TOPIC_EXCEPTION. Afterwards a fetch below the new start is
//     OFFSET_OUT_OF_RANGE and ListOffsets earliest answers it.
//   - Left out: timeout_ms is not waited on, and the low watermark does
//     not wait for the followers' log starts (they take the leader's from
//     fetch answers).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

func handleDeleteRecords(ctx context.Context, c *conn, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx = context.WithoutCancel(ctx) // a deletion under way is finished
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			tp := engine.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			low, err := c.b.deleteRecords(ctx, tp, rp.Offset)
			if err != nil {
				sp.ErrorCode = kafkaerr.Code(err)
				if sp.ErrorCode == kerr.KafkaStorageError.Code {
					c.b.log.Warn("delete records", "partition", tp.String(), "err", err)
				}
			} else {
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteRecords raises one partition's start offset and returns it.
func (b *Broker) deleteRecords(ctx context.Context, tp engine.TopicPartition, offset int64) (int64, error) {
	if t := b.coord.Snapshot().Topics[tp.Topic]; t != nil && (t.Internal || isInternalTopic(tp.Topic)) {
		// A partition this broker does not lead answers that first, as
		// for every other topic (the client then asks its leader).
		if _, _, err := b.parts.Leader(ctx, tp, -1); err != nil {
			return -1, err
		}
		return -1, kafkaerr.New(kerr.InvalidTopicException.Code, "cannot delete records of internal topic %s", tp.Topic)
	}
	return b.parts.DeleteRecords(ctx, tp, offset)
}
