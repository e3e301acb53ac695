package local

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/strata-broker/strata/coordination"
)

// A broker that runs alone replicates nothing: every partition has this
// broker as its one replica, leader and ISR. Replication is implemented
// so the broker needs no special case: the only ISR a leader may set is
// itself, a controlled shutdown moves nothing, and the only reassignment
// accepted is to this broker.
var _ coordination.Replication = (*Local)(nil)

// AlterISR implements coordination.Replication: it accepts an ISR of this
// broker alone, for a partition it leads at leaderEpoch; the metadata is
// already so, and nothing is written.
func (l *Local) AlterISR(ctx context.Context, topic string, partition, leaderEpoch int32, from, isr []int32) error {
	if err := l.begin(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	p, err := l.partition(topic, partition)
	if err != nil {
		return err
	}
	if p.Leader != l.brokerID || p.LeaderEpoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d is led by %d at epoch %d, not by %d at epoch %d",
			coordination.ErrStaleState, topic, partition, p.Leader, p.LeaderEpoch, l.brokerID, leaderEpoch)
	}
	if !slices.Equal(isr, []int32{l.brokerID}) || !slices.Equal(from, p.ISR) {
		return fmt.Errorf("%w: %s-%d: ISR %v; broker %d is the only replica", coordination.ErrStaleState, topic, partition, isr, l.brokerID)
	}
	return nil
}

// ControlledShutdown implements coordination.Replication: no other broker
// can take a partition over, so every partition this broker leads remains
// (none for another id).
func (l *Local) ControlledShutdown(ctx context.Context, id int32) ([]coordination.PartitionRef, error) {
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	var remaining []coordination.PartitionRef
	for name, t := range l.topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				remaining = append(remaining, coordination.PartitionRef{Topic: name, Partition: p.Index})
			}
		}
	}
	slices.SortFunc(remaining, func(a, b coordination.PartitionRef) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return remaining, nil
}

// Reassign implements coordination.Replication: a partition may only be
// "moved" to this broker, where it is already (nothing changes); no
// reassignment is ever in progress, so a cancellation finds none.
func (l *Local) Reassign(ctx context.Context, reqs []coordination.Reassignment) []error {
	errs := make([]error, len(reqs))
	if err := l.begin(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer l.mu.Unlock()
	for i, r := range reqs {
		if _, err := l.partition(r.Topic, r.Partition); err != nil {
			errs[i] = err
			continue
		}
		switch {
		case r.Replicas == nil:
			errs[i] = fmt.Errorf("%w: %s-%d", coordination.ErrNoReassignment, r.Topic, r.Partition)
		case !slices.Equal(r.Replicas, []int32{l.brokerID}):
			errs[i] = fmt.Errorf("%w: %s-%d: replicas %v; the cluster is broker %d alone",
				coordination.ErrInvalidReplication, r.Topic, r.Partition, r.Replicas, l.brokerID)
		}
	}
	return errs
}

// partition returns a partition's metadata (l.mu held).
func (l *Local) partition(topic string, partition int32) (coordination.Partition, error) {
	t, ok := l.topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return coordination.Partition{}, fmt.Errorf("%w: %s-%d", coordination.ErrUnknownTopic, topic, partition)
	}
	return t.Partitions[partition], nil
}
