package broker

// CreatePartitions (key 37): versions 0–3.
//
//   - Served: raising a topic's partition count (a count equal to or below
//     the current one is INVALID_PARTITIONS, an unknown topic
//     UNKNOWN_TOPIC_OR_PARTITION, a topic named twice in one request
//     INVALID_REQUEST), explicit assignments of the new partitions, checked
//     as Kafka checks them before coordination sees them (one assignment per
//     new partition, each with the topic's replication factor, distinct
//     replicas, known brokers: otherwise INVALID_REPLICA_ASSIGNMENT),
//     validate_only (everything checked, nothing created) and the error
//     message. The new partitions' logs are open before the response is sent,
//     so they can be produced to and fetched from at once.
//   - Left out: timeout_ms is not needed, creation is synchronous.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
)

func handleCreatePartitions(ctx context.Context, c *conn, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	dups := repeated(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	created := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if dups[i] {
			err = kafkaerr.New(kerr.InvalidRequest.Code, "topic %q is named more than once in the request", rt.Topic)
		} else {
			err = c.b.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode = kafkaerr.Code(err)
			st.ErrorMessage = kafkaerr.Message(err)
		} else if !req.ValidateOnly {
			created = true
			c.b.log.Info("added partitions", "topic", rt.Topic, "partitions", rt.Count)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if created {
		c.b.parts.Sync(ctx)
	}
	return resp
}

// createPartitions validates and applies one topic's request.
func (b *Broker) createPartitions(ctx context.Context, rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	snap := b.coord.Snapshot()
	t := snap.Topics[rt.Topic]
	if t == nil {
		return kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", rt.Topic)
	}
	cur := int32(len(t.Partitions))
	switch {
	case rt.Count == cur:
		return fmt.Errorf("%w: topic %s already has %d partitions", coordination.ErrInvalidPartitions, rt.Topic, cur)
	case rt.Count < cur:
		return fmt.Errorf("%w: topic %s has %d partitions, more than the requested %d; partitions can only be added", coordination.ErrInvalidPartitions, rt.Topic, cur, rt.Count)
	}
	var assignment [][]int32
	if rt.Assignment != nil {
		add := rt.Count - cur
		if int32(len(rt.Assignment)) != add {
			return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "increasing the number of partitions by %d but %d assignments provided", add, len(rt.Assignment))
		}
		rf := 0
		if cur > 0 {
			rf = len(t.Partitions[0].Replicas)
		}
		for i, ra := range rt.Assignment {
			index := cur + int32(i)
			if len(ra.Replicas) == 0 {
				return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "partition %d: empty replica list", index)
			}
			if rf > 0 && len(ra.Replicas) != rf {
				return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "partition %d has %d replicas; the topic's replication factor is %d", index, len(ra.Replicas), rf)
			}
			for j, id := range ra.Replicas {
				if !slices.ContainsFunc(snap.Brokers, func(sb coordination.Broker) bool { return sb.ID == id }) {
					return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "partition %d: unknown broker %d in replica assignment", index, id)
				}
				if slices.Contains(ra.Replicas[:j], id) {
					return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "partition %d: duplicate broker %d in replica assignment", index, id)
				}
			}
			assignment = append(assignment, slices.Clone(ra.Replicas))
		}
	}
	return b.coord.CreatePartitions(ctx, rt.Topic, rt.Count, assignment, validateOnly)
}
