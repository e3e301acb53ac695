package broker

// AlterPartitionAssignments (key 45): version 0.
//
//   - Served by any broker of a cluster (Kafka's controller serves it;
//     here the coordinator writes the reassignment to the cluster
//     metadata, and the controller carries it out): each partition's
//     target replicas join, catch up and enter the ISR, leadership moves
//     if the leader is not among them, and the replicas that leave delete
//     their logs. A null replica list cancels the partition's
//     reassignment (NO_REASSIGNMENT_IN_PROGRESS if there is none).
//   - A single broker without a cluster answers INVALID_REPLICATION_FACTOR
//     for any move off itself.
//   - Left out: allow_replication_factor_change (v1).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
)

func handleAlterPartitionAssignments(ctx context.Context, c *conn, req *kmsg.AlterPartitionAssignmentsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	var reqs []coordination.Reassignment
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			reqs = append(reqs, coordination.Reassignment{
				PartitionRef: coordination.PartitionRef{Topic: rt.Topic, Partition: rp.Partition},
				Replicas:     rp.Replicas,
			})
		}
	}
	var errs []error
	if r, ok := c.b.coord.(coordination.Replication); ok && len(reqs) > 0 {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout(req.TimeoutMillis))
		errs = r.Reassign(ctx, reqs)
		cancel()
	}
	k := 0
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			if k < len(errs) && errs[k] != nil {
				sp.ErrorCode = kafkaerr.Code(errs[k])
				sp.ErrorMessage = kafkaerr.Message(errs[k])
			} else if k >= len(errs) {
				sp.ErrorCode = kerr.UnknownServerError.Code
			}
			k++
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// requestTimeout is a request's timeout_ms as a duration, 30 s if unset.
func requestTimeout(ms int32) time.Duration {
	if ms <= 0 {
		return 30 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}
