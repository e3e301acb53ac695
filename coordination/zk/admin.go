package zk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/strata-broker/strata/coordination"
)

// settleTimeout bounds how long a topic change waits for the cluster to
// show it (leaders elected, a topic gone) when ctx has no deadline.
const settleTimeout = 30 * time.Second

// begin fails if the coordinator is closed or ctx is done, and gives ctx a
// deadline if it has none.
func (z *ZK) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if z.closed.Load() {
		return nil, nil, coordination.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	return ctx, cancel, nil
}

// unavailable wraps an error of a ZooKeeper call: ZooKeeper could not be
// reached, or the change raced with another (the client retries).
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", coordination.ErrMetadataUnavailable, op, err)
}

// liveBrokers returns the brokers registered now, read from ZooKeeper.
func (z *ZK) liveBrokers() ([]coordination.Broker, error) {
	m := z.currentModel()
	if m == nil || len(m.brokers) == 0 {
		return nil, fmt.Errorf("%w: no broker is registered", coordination.ErrMetadataUnavailable)
	}
	return z.Snapshot().Brokers, nil
}

// CreateTopic implements coordination.Coordinator. It writes the topic's
// config and assignment in one transaction, as Kafka's admin client does,
// and waits (within ctx) until the controller has elected its leaders.
func (z *ZK) CreateTopic(ctx context.Context, spec coordination.TopicSpec, validateOnly bool) (*coordination.Topic, error) {
	if err := coordination.ValidateTopicName(spec.Name); err != nil {
		return nil, err
	}
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	snap := z.Snapshot()
	if err := coordination.CheckNewTopic(spec.Name, snap.Topics); err != nil {
		// This broker's mirror may trail a deletion another broker
		// has just finished: ZooKeeper decides.
		if !errors.Is(err, coordination.ErrTopicExists) {
			return nil, err
		}
		if exists, _, zerr := z.conn.Exists(z.p(topicPath(spec.Name))); zerr != nil || exists {
			return nil, err
		}
	}
	brokers, err := z.liveBrokers()
	if err != nil {
		return nil, err
	}
	assignment, err := coordination.PlanTopic(spec, z.opts.DefaultPartitions, z.opts.DefaultReplicationFactor, brokers)
	if err != nil {
		return nil, err
	}
	if err := coordination.ValidateConfigs(z.opts.ValidateTopicConfigs, spec.Configs); err != nil {
		return nil, err
	}
	t := &coordination.Topic{Name: spec.Name, Internal: spec.Internal, Configs: coordination.CloneConfigs(spec.Configs)}
	for p, replicas := range assignment {
		t.Partitions = append(t.Partitions, coordination.Partition{Index: int32(p), Replicas: replicas, Leader: -1, LeaderEpoch: -1})
	}
	if validateOnly {
		return t, nil
	}
	if t.ID, err = coordination.NewTopicID(); err != nil {
		return nil, err
	}
	// A topic whose deletion is under way keeps its name until the
	// controller is done, as in Kafka.
	if marked, _, err := z.conn.Exists(z.p(deletePath(spec.Name))); err != nil {
		return nil, unavailable("creating topic "+spec.Name, err)
	} else if marked {
		return nil, fmt.Errorf("%w: %s is marked for deletion", coordination.ErrTopicExists, spec.Name)
	}
	ops := []any{
		&zk.CreateRequest{Path: z.p(topicPath(spec.Name)), Data: encodeTopic(t.ID, assignment), Acl: acl},
	}
	// A config left by an interrupted deletion is replaced.
	if exists, st, err := z.conn.Exists(z.p(configPath(spec.Name))); err != nil {
		return nil, unavailable("creating topic "+spec.Name, err)
	} else if exists {
		ops = append([]any{&zk.SetDataRequest{Path: z.p(configPath(spec.Name)), Data: encodeConfig(spec.Configs), Version: st.Version}}, ops...)
	} else {
		ops = append([]any{&zk.CreateRequest{Path: z.p(configPath(spec.Name)), Data: encodeConfig(spec.Configs), Acl: acl}}, ops...)
	}
	if _, err := z.conn.Multi(ops...); err != nil {
		if exists, _, eerr := z.conn.Exists(z.p(topicPath(spec.Name))); eerr == nil && exists {
			return nil, fmt.Errorf("%w: %s", coordination.ErrTopicExists, spec.Name)
		}
		return nil, unavailable("creating topic "+spec.Name, err)
	}
	z.log.Info("created topic", "topic", spec.Name, "partitions", len(assignment), "replication_factor", len(assignment[0]), "configs", spec.Configs)
	// Wait for the controller's leaders, so the topic is usable at once.
	z.waitFor(ctx, func(s *coordination.Snapshot) bool {
		st := s.Topics[spec.Name]
		if st == nil || st.ID != t.ID {
			return false
		}
		for _, p := range st.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
	if st := z.Snapshot().Topics[spec.Name]; st != nil && st.ID == t.ID {
		return st, nil
	}
	return t, nil
}

// DeleteTopic implements coordination.Coordinator: it marks the topic for
// deletion (/admin/delete_topics/<topic>), which the controller carries
// out, and waits (within ctx) until the topic is gone.
func (z *ZK) DeleteTopic(ctx context.Context, name string) error {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	exists, _, err := z.conn.Exists(z.p(topicPath(name)))
	if err != nil {
		return unavailable("deleting topic "+name, err)
	}
	if !exists {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	if _, err := z.conn.Create(z.p(deletePath(name)), nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return unavailable("deleting topic "+name, err)
	}
	z.log.Info("marked topic for deletion", "topic", name)
	// Done when the topic is gone and so is its mark (the name is free).
	z.waitFor(ctx, func(s *coordination.Snapshot) bool {
		m := z.currentModel()
		return s.Topics[name] == nil && m != nil && !slices.Contains(m.deleting, name)
	})
	return nil
}

// CreatePartitions implements coordination.Coordinator: it extends the
// topic's assignment, checked against the version read, and waits (within
// ctx) for the new partitions' leaders.
func (z *ZK) CreatePartitions(ctx context.Context, name string, count int32, assignment [][]int32, validateOnly bool) error {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	data, st, err := z.conn.Get(z.p(topicPath(name)))
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	if err != nil {
		return unavailable("adding partitions to "+name, err)
	}
	a, err := decodeTopic(name, data)
	if err != nil {
		return unavailable("adding partitions to "+name, err)
	}
	cur := a.replicas
	brokers, err := z.liveBrokers()
	if err != nil {
		return err
	}
	// The replication factor is the target's while partition 0 moves.
	added, err := coordination.PlanPartitions(name, int32(len(cur)), count, len(without(cur[0], a.removingOf(0))), assignment, brokers)
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	// A reassignment in progress is kept: the new partitions are not
	// moving.
	a.replicas = append(cur, added...)
	if _, err := z.conn.Set(z.p(topicPath(name)), encodeAssignment(a), st.Version); err != nil {
		return unavailable("adding partitions to "+name, err)
	}
	z.log.Info("added partitions", "topic", name, "partitions", count)
	z.waitFor(ctx, func(s *coordination.Snapshot) bool {
		t := s.Topics[name]
		if t == nil || int32(len(t.Partitions)) < count {
			return false
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
	return nil
}

// AlterTopicConfig implements coordination.Coordinator.
func (z *ZK) AlterTopicConfig(ctx context.Context, name string, configs map[string]string) error {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if exists, _, err := z.conn.Exists(z.p(topicPath(name))); err != nil {
		return unavailable("altering the configs of "+name, err)
	} else if !exists {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	if err := coordination.ValidateConfigs(z.opts.ValidateTopicConfigs, configs); err != nil {
		return err
	}
	_, err = z.conn.Set(z.p(configPath(name)), encodeConfig(configs), -1)
	if errors.Is(err, zk.ErrNoNode) {
		_, err = z.conn.Create(z.p(configPath(name)), encodeConfig(configs), 0, acl)
	}
	if err != nil {
		return unavailable("altering the configs of "+name, err)
	}
	z.log.Info("altered topic configs", "topic", name, "configs", configs)
	want := coordination.CloneConfigs(configs)
	z.waitFor(ctx, func(s *coordination.Snapshot) bool {
		t := s.Topics[name]
		return t == nil || maps.Equal(t.Configs, want)
	})
	return nil
}

// NextProducerIDBlock implements coordination.Coordinator with Kafka's
// /latest_producer_id_block, updated with a version check.
func (z *ZK) NextProducerIDBlock(ctx context.Context) (start, count int64, err error) {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer cancel()
	count = z.opts.ProducerIDBlockSize
	for ctx.Err() == nil {
		data, st, err := z.conn.Get(z.p(pathProducerIDs))
		if errors.Is(err, zk.ErrNoNode) {
			if _, err := z.conn.Create(z.p(pathProducerIDs), nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return 0, 0, unavailable("reserving producer ids", err)
			}
			continue
		}
		if err != nil {
			return 0, 0, unavailable("reserving producer ids", err)
		}
		start = 0
		if len(data) > 0 {
			var n producerIDZNode
			if err := json.Unmarshal(data, &n); err != nil {
				return 0, 0, fmt.Errorf("coordination/zk: %s: %w", pathProducerIDs, err)
			}
			end, err := strconv.ParseInt(n.BlockEnd, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("coordination/zk: %s: block_end %q", pathProducerIDs, n.BlockEnd)
			}
			start = end + 1
		}
		if start > math.MaxInt64-count {
			return 0, 0, errors.New("coordination/zk: producer ids exhausted")
		}
		next := producerIDZNode{Version: 1, Broker: z.brokerID, BlockStart: strconv.FormatInt(start, 10), BlockEnd: strconv.FormatInt(start+count-1, 10)}
		_, err = z.conn.Set(z.p(pathProducerIDs), marshal(next), st.Version)
		if err == nil {
			return start, count, nil
		}
		if !errors.Is(err, zk.ErrBadVersion) {
			return 0, 0, unavailable("reserving producer ids", err)
		}
	}
	return 0, 0, ctx.Err()
}
