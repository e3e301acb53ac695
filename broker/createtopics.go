package broker

// CreateTopics (key 19): versions 0–7.
//
//   - Served: names checked ([a-zA-Z0-9._-]{1,249}: INVALID_TOPIC_EXCEPTION),
//     a name twice in one request (INVALID_REQUEST), partition counts and
//     replication factors (-1 takes num.partitions /
//     default.replication.factor; 0 or below -1 is INVALID_PARTITIONS /
//     INVALID_REPLICATION_FACTOR; more replicas than brokers is
//     INVALID_REPLICATION_FACTOR, decided by coordination), explicit replica
//     assignments (with counts set too: INVALID_REQUEST; partitions not
//     0..n-1: INVALID_REPLICA_ASSIGNMENT), topic configs resolved against the
//     broker's defaults exactly as the partitions will be (INVALID_CONFIG
//     naming the key, including an unregistered strata.engine), validate_only
//     (v1+: everything checked, nothing created), an existing topic
//     (TOPIC_ALREADY_EXISTS), and the error message (v1+). v5+ answers the
//     partition count and replication factor; v7 the topic id. A created
//     topic's logs are open before the response is sent.
//   - Left out: v5+ lists only the configs the request set (source
//     DYNAMIC_TOPIC_CONFIG), not every topic config with its default;
//     timeout_ms is not needed, creation is synchronous.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/coordination"
)

const configSourceDynamicTopic = 1 // DYNAMIC_TOPIC_CONFIG

func handleCreateTopics(ctx context.Context, c *conn, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	dups := repeated(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	created := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		if dups[i] {
			err = kafkaerr.New(kerr.InvalidRequest.Code, "topic %q is named more than once in the request", rt.Topic)
		} else {
			err = c.b.createTopic(ctx, rt, req.ValidateOnly, &st)
		}
		if err != nil {
			st.ErrorCode = kafkaerr.Code(err)
			st.ErrorMessage = kafkaerr.Message(err)
		} else if !req.ValidateOnly {
			created = true
			c.b.log.Info("created topic", "topic", rt.Topic, "partitions", st.NumPartitions, "replication_factor", st.ReplicationFactor)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if created {
		c.b.parts.Sync(ctx)
	}
	return resp
}

// createTopic validates and creates one topic, filling st on success.
func (b *Broker) createTopic(ctx context.Context, rt *kmsg.CreateTopicsRequestTopic, validateOnly bool, st *kmsg.CreateTopicsResponseTopic) error {
	if err := coordination.ValidateTopicName(rt.Topic); err != nil {
		return err
	}
	configs := map[string]string{}
	for _, rc := range rt.Configs {
		if _, dup := configs[rc.Name]; dup {
			return kafkaerr.New(kerr.InvalidRequest.Code, "config %s is set more than once", rc.Name)
		}
		if rc.Value == nil {
			continue // null: the default
		}
		configs[rc.Name] = *rc.Value
	}
	if _, err := partition.ResolveTopic(&b.cfg, configs); err != nil {
		return err
	}
	spec := coordination.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, Configs: configs}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return kafkaerr.New(kerr.InvalidRequest.Code, "a replica assignment needs num_partitions and replication_factor -1")
		}
		assignment := make([][]int32, len(rt.ReplicaAssignment))
		for _, ra := range rt.ReplicaAssignment {
			if ra.Partition < 0 || int(ra.Partition) >= len(assignment) || assignment[ra.Partition] != nil {
				return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "replica assignment partitions must be 0 to %d, each once", len(assignment)-1)
			}
			if len(ra.Replicas) == 0 {
				return kafkaerr.New(kerr.InvalidReplicaAssignment.Code, "partition %d has no replicas", ra.Partition)
			}
			assignment[ra.Partition] = slices.Clone(ra.Replicas)
		}
		spec.Assignment = assignment
		spec.Partitions, spec.ReplicationFactor = int32(len(assignment)), int16(len(assignment[0]))
	} else {
		if rt.NumPartitions == 0 || rt.NumPartitions < -1 {
			return fmt.Errorf("%w: %d: must be at least 1, or -1 for num.partitions", coordination.ErrInvalidPartitions, rt.NumPartitions)
		}
		if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			return fmt.Errorf("%w: %d: must be at least 1, or -1 for default.replication.factor", coordination.ErrInvalidReplication, rt.ReplicationFactor)
		}
	}

	t, err := b.coord.CreateTopic(ctx, spec, validateOnly)
	if err != nil {
		return err
	}
	st.NumPartitions, st.ReplicationFactor = spec.Partitions, spec.ReplicationFactor
	if st.NumPartitions == -1 {
		st.NumPartitions = b.cfg.NumPartitions
	}
	if st.ReplicationFactor == -1 {
		st.ReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	if t != nil {
		st.TopicID = t.ID
		if len(t.Partitions) > 0 {
			st.NumPartitions = int32(len(t.Partitions))
			st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
		}
	}
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		v := configs[name]
		rc.Name, rc.Value, rc.Source = name, &v, configSourceDynamicTopic
		st.Configs = append(st.Configs, rc)
	}
	return nil
}
