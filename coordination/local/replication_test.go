package local

import (
	"errors"
	"slices"
	"testing"

	"github.com/strata-broker/strata/coordination"
)

// TestReplication: a broker alone accepts only itself as ISR and as the
// replicas of a reassignment, and a controlled shutdown moves nothing.
func TestReplication(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	self := l.BrokerID()
	topic := create(t, l, coordination.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1})
	epoch := topic.Partitions[0].LeaderEpoch
	if err := l.AlterISR(ctx, "t", 0, epoch, []int32{self}, []int32{self}); err != nil {
		t.Errorf("AlterISR [self]: %v", err)
	}
	for _, tc := range []struct {
		epoch int32
		isr   []int32
	}{{epoch + 1, []int32{self}}, {epoch, []int32{self, self + 1}}, {epoch, nil}} {
		if err := l.AlterISR(ctx, "t", 0, tc.epoch, []int32{self}, tc.isr); !errors.Is(err, coordination.ErrStaleState) {
			t.Errorf("AlterISR epoch %d isr %v: %v", tc.epoch, tc.isr, err)
		}
	}
	if err := l.AlterISR(ctx, "t", 5, epoch, []int32{self}, []int32{self}); !errors.Is(err, coordination.ErrUnknownTopic) {
		t.Errorf("AlterISR of a missing partition: %v", err)
	}
	remaining, err := l.ControlledShutdown(ctx, self)
	want := []coordination.PartitionRef{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}
	if err != nil || !slices.Equal(remaining, want) {
		t.Errorf("ControlledShutdown = %v, %v; want %v", remaining, err, want)
	}
	errs := l.Reassign(ctx, []coordination.Reassignment{
		{PartitionRef: coordination.PartitionRef{Topic: "t", Partition: 0}, Replicas: []int32{self}},
		{PartitionRef: coordination.PartitionRef{Topic: "t", Partition: 0}, Replicas: []int32{self, self + 1}},
		{PartitionRef: coordination.PartitionRef{Topic: "t", Partition: 1}},
		{PartitionRef: coordination.PartitionRef{Topic: "u", Partition: 0}, Replicas: []int32{self}},
	})
	for i, want := range []error{nil, coordination.ErrInvalidReplication, coordination.ErrNoReassignment, coordination.ErrUnknownTopic} {
		if (want == nil) != (errs[i] == nil) || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("Reassign request %d: %v, want %v", i, errs[i], want)
		}
	}
	if got := l.Snapshot().Topics["t"].Partitions[0]; !slices.Equal(got.Replicas, []int32{self}) || got.LeaderEpoch != epoch {
		t.Errorf("partition after the calls: %+v", got)
	}
}
