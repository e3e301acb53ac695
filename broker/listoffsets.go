package broker

// ListOffsets (key 2): versions 0–8.
//
//   - Served: timestamp -1 (latest: the high watermark, also the last
//     stable offset, as there are no transactions), -2 (earliest), -3 (v7+,
//     the largest timestamp), -4 (v8+, earliest local: the log start) and
//     times (partition.Manager.ListOffset). v0 answers in
//     old_style_offsets with at most one offset. v4+ returns the
//     partition's leader epoch and checks the current one
//     (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH).
//   - Left out: v0's list of segment base offsets (max_num_offsets > 1
//     gets one offset); -5 (v9+, remote storage).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/engine"
)

func handleListOffsets(ctx context.Context, c *conn, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	ctx = context.WithoutCancel(ctx)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := engine.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			sp.ErrorCode, sp.Offset, sp.Timestamp, sp.LeaderEpoch = c.b.listOffset(ctx, tp, rp, req.Version)
			if req.Version == 0 {
				sp.OldStyleOffsets = []int64{}
				if sp.ErrorCode == 0 && sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = append(sp.OldStyleOffsets, sp.Offset)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// listOffset answers one partition.
func (b *Broker) listOffset(ctx context.Context, tp engine.TopicPartition, rp *kmsg.ListOffsetsRequestTopicPartition, version int16) (code int16, offset, ts int64, epoch int32) {
	if t := rp.Timestamp; t == partition.ListMaxTimestamp && version < 7 || t == partition.ListEarliestLocal && version < 8 {
		return kerr.UnsupportedVersion.Code, -1, -1, -1
	}
	current := int32(-1)
	if version >= 4 {
		current = rp.CurrentLeaderEpoch
	}
	offset, ts, epoch, err := b.parts.ListOffset(ctx, tp, current, rp.Timestamp)
	if code = kafkaerr.Code(err); code != 0 {
		if code == kerr.KafkaStorageError.Code {
			b.log.Warn("list offsets", "partition", tp.String(), "err", err)
		}
		return code, -1, -1, -1
	}
	return 0, offset, ts, epoch
}
