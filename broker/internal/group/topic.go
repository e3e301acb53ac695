package group

// __consumer_offsets in the cluster metadata: creating it, and finding the
// broker that coordinates a group (the leader of the group's partition).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// topicSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const topicSegmentBytes = 104857600

// ensureTopic returns __consumer_offsets as the newest snapshot holds it,
// creating the topic first if it is missing: offsets.topic.num.partitions
// partitions, offsets.topic.replication.factor replicas and Kafka's
// configs for it. Alone, a broker creates it with as many replicas as
// there are brokers if that is fewer; a cluster waits for enough brokers
// (COORDINATOR_NOT_AVAILABLE until then), as Kafka does.
func ensureTopic(ctx context.Context, coord coordination.Coordinator, cfg *config.Config, log *slog.Logger) (*coordination.Topic, error) {
	snap := coord.Snapshot()
	if t := snap.Topics[TopicName]; t != nil {
		return t, nil
	}
	n, rf := cfg.OffsetsTopicNumPartitions, cfg.OffsetsTopicReplicationFactor
	if brokers := len(snap.Brokers); brokers > 0 && int(rf) > brokers {
		if _, cluster := coord.(coordination.Registrar); cluster {
			return nil, kafkaerr.New(kerr.CoordinatorNotAvailable.Code, "%d brokers are up; %s needs offsets.topic.replication.factor=%d", brokers, TopicName, rf)
		}
		log.Warn("fewer brokers than offsets.topic.replication.factor; creating the offsets topic with fewer replicas",
			"topic", TopicName, "offsets.topic.replication.factor", rf, "brokers", brokers)
		rf = int16(brokers)
	}
	spec := coordination.TopicSpec{
		Name:              TopicName,
		Partitions:        n,
		ReplicationFactor: rf,
		Internal:          true,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "producer",
			"segment.bytes":    strconv.Itoa(topicSegmentBytes),
		},
	}
	_, err := coord.CreateTopic(ctx, spec, false)
	switch {
	case err == nil:
		log.Info("created topic", "topic", TopicName, "partitions", n, "replication_factor", rf)
	case errors.Is(err, coordination.ErrTopicExists):
		// Another broker created it meanwhile.
	default:
		return nil, fmt.Errorf("group: creating %s: %w", TopicName, err)
	}
	// The snapshot may trail the creation (a cluster's coordination
	// learns of it through a watch): wait until it shows the topic.
	for {
		snap := coord.Snapshot()
		if t := snap.Topics[TopicName]; t != nil {
			return t, nil
		}
		select {
		case <-coord.Changed(snap.Version):
		case <-ctx.Done():
			return nil, fmt.Errorf("group: waiting for %s to appear in the metadata: %w", TopicName, ctx.Err())
		}
	}
}

// FindCoordinator returns the broker that coordinates group: the leader
// of its partition of __consumer_offsets (self, as the client's listener
// advertises this broker, if it is this one), also while that partition
// still loads. In a cluster the first call creates the topic. It answers
// COORDINATOR_NOT_AVAILABLE, with a message, while the topic cannot be
// created, the partition has no leader or its leader is not up.
func (c *Coordinator) FindCoordinator(ctx context.Context, group string, self coordination.Broker) (coordination.Broker, int16, string) {
	t := c.coord.Snapshot().Topics[TopicName]
	if t == nil {
		var err error
		if t, err = ensureTopic(ctx, c.coord, &c.cfg, c.log); err != nil {
			return coordination.Broker{}, kerr.CoordinatorNotAvailable.Code, err.Error()
		}
	}
	n := c.store.Partitions()
	if n == 0 {
		n = int32(len(t.Partitions))
	}
	p := PartitionFor(group, n)
	if int(p) >= len(t.Partitions) || t.Partitions[p].Leader < 0 {
		return coordination.Broker{}, kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("%s-%d has no leader", TopicName, p)
	}
	leader := t.Partitions[p].Leader
	if leader == self.ID {
		return self, 0, ""
	}
	for _, br := range c.coord.Snapshot().Brokers {
		if br.ID == leader {
			return br, 0, ""
		}
	}
	return coordination.Broker{}, kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("broker %d, the leader of %s-%d, is not available", leader, TopicName, p)
}
