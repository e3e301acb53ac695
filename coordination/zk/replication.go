package zk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-zookeeper/zk"

	"github.com/strata-broker/strata/coordination"
)

// isrChangeZNode is a notification under /isr_change_notification, which
// a leader writes with each ISR change of its own.
type isrChangeZNode struct {
	Version    int              `json:"version"`
	Partitions []isrChangeEntry `json:"partitions"`
}

type isrChangeEntry struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// AlterISR implements coordination.Replication. The leader writes the
// partition's state itself, checked against the znode version of this
// broker's mirror, so a change by the controller (or by an earlier
// leadership) in between fails it with coordination.ErrStaleState. With
// the state it creates an ISR change notification, as Kafka's leaders do.
// Once the write is made it returns nil, also if ctx ends before this
// broker's mirror shows it.
func (z *ZK) AlterISR(ctx context.Context, topic string, partition, leaderEpoch int32, from, isr []int32) error {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	m := z.currentModel()
	if m == nil {
		return fmt.Errorf("%w: no metadata yet", coordination.ErrMetadataUnavailable)
	}
	t := m.topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.replicas) {
		return fmt.Errorf("%w: %s-%d", coordination.ErrUnknownTopic, topic, partition)
	}
	s := t.states[partition]
	if s == nil || s.Leader != z.brokerID || s.LeaderEpoch != leaderEpoch {
		got := "no state"
		if s != nil {
			got = fmt.Sprintf("leader %d at epoch %d", s.Leader, s.LeaderEpoch)
		}
		return fmt.Errorf("%w: %s-%d has %s, not leader %d at epoch %d", coordination.ErrStaleState, topic, partition, got, z.brokerID, leaderEpoch)
	}
	if !sameMembers(s.ISR, from) {
		// Computed from an ISR the controller (say) has changed since.
		return fmt.Errorf("%w: %s-%d has ISR %v, the change was made from %v", coordination.ErrStaleState, topic, partition, s.ISR, from)
	}
	replicas := t.replicas[partition]
	for i, r := range isr {
		if !slices.Contains(replicas, r) || slices.Contains(isr[:i], r) {
			return fmt.Errorf("%w: ISR %v of %s-%d: replicas are %v", coordination.ErrInvalidReplication, isr, topic, partition, replicas)
		}
	}
	if !slices.Contains(isr, z.brokerID) {
		return fmt.Errorf("%w: ISR %v of %s-%d leaves out its leader %d", coordination.ErrInvalidReplication, isr, topic, partition, z.brokerID)
	}
	next := s.stateZNode
	next.ISR = slices.Clone(isr)
	note := marshal(isrChangeZNode{Version: 1, Partitions: []isrChangeEntry{{Topic: topic, Partition: partition}}})
	resp, err := z.conn.Multi(
		&zk.SetDataRequest{Path: z.p(statePath(topic, partition)), Data: encodeState(next), Version: s.version},
		&zk.CreateRequest{Path: z.p(pathISRChange + "/isr_change_"), Data: note, Acl: acl, Flags: zk.FlagSequence},
	)
	if err != nil {
		if err := multiError(resp, err); errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("%w: %s-%d changed in ZooKeeper", coordination.ErrStaleState, topic, partition)
		}
		return unavailable(fmt.Sprintf("altering the ISR of %s-%d", topic, partition), err)
	}
	z.log.Info("changed ISR", "topic", topic, "partition", partition, "isr", next.ISR, "was", s.ISR, "leader_epoch", leaderEpoch)
	z.waitState(ctx, map[coordination.PartitionRef]int32{{Topic: topic, Partition: partition}: resp[0].Stat.Version})
	return nil
}

// waitState waits (within ctx) until this broker's mirror holds the given
// versions of the partitions' state znodes, or newer, or the partitions
// are gone.
func (z *ZK) waitState(ctx context.Context, versions map[coordination.PartitionRef]int32) {
	if len(versions) == 0 {
		return
	}
	z.waitFor(ctx, func(*coordination.Snapshot) bool {
		m := z.currentModel()
		for ref, version := range versions {
			t := m.topics[ref.Topic]
			if t == nil || int(ref.Partition) >= len(t.states) {
				continue
			}
			if s := t.states[ref.Partition]; s == nil || s.version < version {
				return false
			}
		}
		return true
	})
}

// ControlledShutdown implements coordination.Replication. The controller
// marks the broker as shutting down (it is elected nowhere and left out
// of new ISRs until it registers again), then moves each partition the
// broker leads or follows in sync, reading each state from ZooKeeper and
// writing it back with a version check (again on a conflict), in the
// controller's fenced transactions.
func (z *ZK) ControlledShutdown(ctx context.Context, id int32) ([]coordination.PartitionRef, error) {
	ctx, cancel, err := z.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if active, _, _ := z.ctl.state(); !active {
		return nil, fmt.Errorf("coordination/zk: %w", coordination.ErrNotController)
	}
	m := z.currentModel()
	if m == nil {
		return nil, fmt.Errorf("%w: no metadata yet", coordination.ErrMetadataUnavailable)
	}
	z.ctl.mu.Lock()
	if epoch, ok := m.brokerEpochs[id]; ok {
		if z.ctl.shutting == nil {
			z.ctl.shutting = map[int32]int64{}
		}
		z.ctl.shutting[id] = epoch
	}
	z.ctl.mu.Unlock()
	z.log.Info("controlled shutdown", "broker", id)
	written := map[coordination.PartitionRef]int32{}
	var remaining []coordination.PartitionRef
	var names []string
	for name := range m.topics {
		if !slices.Contains(m.deleting, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names) // remaining in order: by topic, then partition
	for _, name := range names {
		t := m.topics[name]
		for p, replicas := range t.replicas {
			if !slices.Contains(replicas, id) {
				continue
			}
			ref := coordination.PartitionRef{Topic: name, Partition: int32(p)}
			leads, version, err := z.shutdownPartition(ctx, t, ref, id)
			if err != nil {
				return nil, err
			}
			if version >= 0 {
				written[ref] = version
			}
			if leads {
				remaining = append(remaining, ref)
			}
		}
	}
	z.waitState(ctx, written)
	return remaining, nil
}

// shutdownPartition takes broker id out of one partition's leadership and
// ISR where another replica in sync can take its place. It reports
// whether id still leads, and the version of the state it wrote (-1 for
// none).
func (z *ZK) shutdownPartition(ctx context.Context, t *topicModel, ref coordination.PartitionRef, id int32) (leads bool, version int32, err error) {
	path := z.p(statePath(ref.Topic, ref.Partition))
	for {
		if err := ctx.Err(); err != nil {
			return false, -1, err
		}
		data, st, err := z.conn.Get(path)
		if errors.Is(err, zk.ErrNoNode) {
			return false, -1, nil
		}
		if err != nil {
			return false, -1, unavailable("controlled shutdown", err)
		}
		var s stateZNode
		if err := json.Unmarshal(data, &s); err != nil {
			return false, -1, fmt.Errorf("coordination/zk: state of %s-%d: %w", ref.Topic, ref.Partition, err)
		}
		if s.Leader != id && !slices.Contains(s.ISR, id) {
			return false, -1, nil
		}
		m := z.currentModel()
		next, changed := nextState(s, t.replicas[ref.Partition], z.uncleanElection(t), z.brokerView(m, noneBounced, false))
		if !changed {
			return next.Leader == id, -1, nil
		}
		_, next.ControllerEpoch, _ = z.ctl.state()
		resp, err := z.fenced(&zk.SetDataRequest{Path: path, Data: encodeState(next), Version: st.Version})
		switch {
		case err == nil:
			z.logState(ref.Topic, int(ref.Partition), s, next)
			return next.Leader == id, resp[0].Stat.Version, nil
		case errors.Is(err, zk.ErrBadVersion):
			continue // changed meanwhile: read it again
		case errors.Is(err, coordination.ErrNotController):
			return false, -1, err
		default:
			return false, -1, unavailable(fmt.Sprintf("controlled shutdown of %s-%d", ref.Topic, ref.Partition), err)
		}
	}
}

// Reassign implements coordination.Replication: it writes the
// reassignments into the topics' znodes (Kafka's adding_replicas and
// removing_replicas), checked against the versions read; the controller
// carries them out. The replicas become the target followed by the
// original replicas not in it, so that the target's order (its preferred
// leader) is kept when the original ones leave. A new target for a
// partition being moved replaces the old one, relative to the partition's
// original replicas.
func (z *ZK) Reassign(ctx context.Context, reqs []coordination.Reassignment) []error {
	errs := make([]error, len(reqs))
	ctx, cancel, err := z.begin(ctx)
	if err == nil && z.currentModel() == nil {
		err = fmt.Errorf("%w: no metadata yet", coordination.ErrMetadataUnavailable)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer cancel()
	m := z.currentModel()
	byTopic := map[string][]int{}
	for i, r := range reqs {
		if errs[i] = z.validateReassignment(m, r); errs[i] == nil {
			byTopic[r.Topic] = append(byTopic[r.Topic], i)
		}
	}
	written := map[string]int32{}
	for name, idx := range byTopic {
		if version, ok := z.reassignTopic(ctx, name, reqs, idx, errs); ok {
			written[name] = version
		}
	}
	// This broker's Snapshot shows the reassignments when Reassign
	// returns.
	z.waitFor(ctx, func(*coordination.Snapshot) bool {
		m := z.currentModel()
		for name, version := range written {
			if t := m.topics[name]; t != nil && t.version < version {
				return false
			}
		}
		return true
	})
	return errs
}

// validateReassignment checks a request's replicas; the topic and the
// partition are checked against ZooKeeper when written (this broker's
// mirror may not show a topic just created elsewhere).
func (z *ZK) validateReassignment(m *model, r coordination.Reassignment) error {
	if r.Replicas == nil {
		return nil
	}
	if len(r.Replicas) == 0 {
		return fmt.Errorf("%w: %s-%d: no replicas", coordination.ErrInvalidReplication, r.Topic, r.Partition)
	}
	for i, id := range r.Replicas {
		if slices.Contains(r.Replicas[:i], id) {
			return fmt.Errorf("%w: %s-%d: broker %d named twice in %v", coordination.ErrInvalidReplication, r.Topic, r.Partition, id, r.Replicas)
		}
		if _, ok := m.brokers[id]; ok {
			continue
		}
		if ok, _, err := z.conn.Exists(z.p(brokerPath(id))); err != nil {
			return unavailable("reassigning partitions", err)
		} else if !ok {
			return fmt.Errorf("%w: %s-%d: broker %d is not registered", coordination.ErrInvalidReplication, r.Topic, r.Partition, id)
		}
	}
	return nil
}

// reassignTopic writes the requests idx (of reqs) for topic name, setting
// their errors; it returns the topic znode's version written, if any.
func (z *ZK) reassignTopic(ctx context.Context, name string, reqs []coordination.Reassignment, idx []int, errs []error) (int32, bool) {
	path := z.p(topicPath(name))
	fail := func(err error) (int32, bool) {
		for _, i := range idx {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return 0, false
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		for _, i := range idx {
			errs[i] = nil
		}
		data, st, err := z.conn.Get(path)
		if errors.Is(err, zk.ErrNoNode) {
			return fail(fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name))
		}
		if err != nil {
			return fail(unavailable("reassigning partitions of "+name, err))
		}
		a, err := decodeTopic(name, data)
		if err != nil {
			return fail(unavailable("reassigning partitions of "+name, err))
		}
		n := len(a.replicas)
		a.replicas = slices.Clone(a.replicas)
		a.adding = slices.Grow(slices.Clone(a.adding), n)[:n]
		a.removing = slices.Grow(slices.Clone(a.removing), n)[:n]
		accepted := false
		for _, i := range idx {
			r := reqs[i]
			p := int(r.Partition)
			if p < 0 || p >= n {
				errs[i] = fmt.Errorf("%w: %s-%d", coordination.ErrUnknownTopic, name, p)
				continue
			}
			original := without(a.replicas[p], a.adding[p])
			if r.Replicas == nil {
				if !a.reassigning(p) {
					errs[i] = fmt.Errorf("%w: %s-%d", coordination.ErrNoReassignment, name, p)
					continue
				}
				a.replicas[p], a.adding[p], a.removing[p] = original, nil, nil
			} else {
				target := slices.Clone(r.Replicas)
				a.replicas[p] = append(target, without(original, target)...)
				a.adding[p], a.removing[p] = without(target, original), without(original, target)
			}
			accepted = true
		}
		if !accepted {
			return 0, false
		}
		st2, err := z.conn.Set(path, encodeAssignment(a), st.Version)
		if errors.Is(err, zk.ErrBadVersion) {
			continue // changed meanwhile: apply the requests to the new one
		}
		if err != nil {
			return fail(unavailable("reassigning partitions of "+name, err))
		}
		for _, i := range idx {
			if errs[i] == nil {
				r := reqs[i]
				z.log.Info("reassigning partition", "topic", name, "partition", r.Partition, "replicas", a.replicas[r.Partition],
					"adding", a.adding[r.Partition], "removing", a.removing[r.Partition], "cancel", r.Replicas == nil)
			}
		}
		return st2.Version, true
	}
}

// sameMembers reports whether a and b hold the same brokers, in any order.
func sameMembers(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}
