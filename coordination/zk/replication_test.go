package zk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/coordination/zk/zktest"
)

// part returns a partition of a snapshot, or a zero one if there is no
// such topic or partition.
func part(s *coordination.Snapshot, topic string, p int32) coordination.Partition {
	t := s.Topics[topic]
	if t == nil || int(p) >= len(t.Partitions) {
		return coordination.Partition{Leader: -2}
	}
	return t.Partitions[p]
}

// createAssigned creates a topic with the given assignment through z.
func createAssigned(t *testing.T, z *ZK, name string, configs map[string]string, assignment ...[]int32) *coordination.Topic {
	t.Helper()
	topic, err := z.CreateTopic(context.Background(), coordination.TopicSpec{Name: name, Assignment: assignment, Configs: configs}, false)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return topic
}

// alterISR calls AlterISR as the leader of topic-p, once z sees itself
// lead it with the members of isr among its replicas.
func alterISR(t *testing.T, z *ZK, topic string, p int32, isr ...int32) {
	t.Helper()
	snap := waitUntil(t, z, fmt.Sprintf("leading %s-%d with replicas %v", topic, p, isr), func(s *coordination.Snapshot) bool {
		got := part(s, topic, p)
		for _, r := range isr {
			if !slices.Contains(got.Replicas, r) {
				return false
			}
		}
		return got.Leader == z.BrokerID()
	})
	cur := part(snap, topic, p)
	if err := z.AlterISR(context.Background(), topic, p, cur.LeaderEpoch, cur.ISR, isr); err != nil {
		t.Fatalf("broker %d: AlterISR %s-%d %v: %v", z.BrokerID(), topic, p, isr, err)
	}
}

// state waits until z sees topic-p with the given leader and ISR, and
// returns it.
func state(t *testing.T, z *ZK, topic string, p int32, leader int32, isr ...int32) coordination.Partition {
	t.Helper()
	s := waitUntil(t, z, fmt.Sprintf("%s-%d led by %d with ISR %v", topic, p, leader, isr), func(s *coordination.Snapshot) bool {
		got := part(s, topic, p)
		return got.Leader == leader && slices.Equal(got.ISR, isr)
	})
	return part(s, topic, p)
}

// TestInitialISR: a new partition's ISR is every live replica, in
// replica order, led by the first of them.
func TestInitialISR(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	topic := createAssigned(t, ms[0].z, "t", nil, []int32{1, 2, 3}, []int32{3, 1, 2})
	for i, want := range [][]int32{{1, 2, 3}, {3, 1, 2}} {
		if p := topic.Partitions[i]; p.Leader != want[0] || !slices.Equal(p.ISR, want) || p.LeaderEpoch != 0 {
			t.Errorf("partition %d: %+v; want leader %d, ISR %v, epoch 0", i, p, want[0], want)
		}
	}
	// A topic assigned (by a tool, in ZooKeeper) to a broker that is
	// gone leaves it out.
	ms[2].z.Close()
	waitUntil(t, ms[0].z, "broker 3 gone", func(s *coordination.Snapshot) bool { return len(s.Brokers) == 2 && s.ControllerID > 0 })
	c := raw(t, s)
	if _, err := c.Create("/brokers/topics/u", encodeTopic(coordination.TopicID{1}, [][]int32{{3, 2, 1}}), 0, acl); err != nil {
		t.Fatal(err)
	}
	if p := state(t, ms[0].z, "u", 0, 2, 2, 1); p.LeaderEpoch != 0 {
		t.Errorf("with broker 3 gone: %+v; want leader 2, ISR [2 1] at epoch 0", p)
	}
}

// TestAlterISR: the leader sets its ISR without a new leader epoch, and
// sees it when AlterISR returns; a stale leader, epoch or znode version
// changes nothing.
func TestAlterISR(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	c := raw(t, s)
	ctx := context.Background()
	createAssigned(t, ms[0].z, "t", nil, []int32{1, 2, 3})
	leader, follower := ms[0].z, ms[1].z
	p := part(leader.Snapshot(), "t", 0)
	if err := leader.AlterISR(ctx, "t", 0, p.LeaderEpoch, p.ISR, []int32{1, 3}); err != nil {
		t.Fatal(err)
	}
	if got := part(leader.Snapshot(), "t", 0); !slices.Equal(got.ISR, []int32{1, 3}) || got.LeaderEpoch != p.LeaderEpoch || got.Leader != 1 {
		t.Errorf("after AlterISR the leader sees %+v", got)
	}
	state(t, follower, "t", 0, 1, 1, 3)
	var st stateZNode
	getJSON(t, c, "/brokers/topics/t/partitions/0/state", &st)
	if st.LeaderEpoch != p.LeaderEpoch || st.ControllerEpoch != 1 || !slices.Equal(st.ISR, []int32{1, 3}) {
		t.Errorf("state znode %+v", st)
	}
	for _, tc := range []struct {
		name  string
		z     *ZK
		epoch int32
		want  error
		isr   []int32
	}{
		{"wrong epoch", leader, p.LeaderEpoch + 1, coordination.ErrStaleState, []int32{1, 2, 3}},
		{"not the leader", follower, p.LeaderEpoch, coordination.ErrStaleState, []int32{1, 2, 3}},
		{"leader left out", leader, p.LeaderEpoch, coordination.ErrInvalidReplication, []int32{2, 3}},
		{"not a replica", leader, p.LeaderEpoch, coordination.ErrInvalidReplication, []int32{1, 4}},
	} {
		if err := tc.z.AlterISR(ctx, "t", 0, tc.epoch, []int32{1, 3}, tc.isr); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := leader.AlterISR(ctx, "nope", 0, 0, nil, []int32{1}); !errors.Is(err, coordination.ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}
	// Computed from an ISR that has changed since (the controller
	// took a broker out, say): refused, nothing written.
	if err := leader.AlterISR(ctx, "t", 0, p.LeaderEpoch, []int32{1, 2, 3}, []int32{1, 2, 3}); !errors.Is(err, coordination.ErrStaleState) {
		t.Errorf("from an old ISR: %v", err)
	}
	state(t, follower, "t", 0, 1, 1, 3)
	// The znode moved on behind a mirror that trails it: the
	// conditional write fails.
	stale := leader.currentModel()
	st.ISR = []int32{1, 2, 3}
	if _, err := c.Set("/brokers/topics/t/partitions/0/state", encodeState(st), -1); err != nil {
		t.Fatal(err)
	}
	state(t, leader, "t", 0, 1, 1, 2, 3)
	leader.mu.Lock()
	leader.model = stale
	leader.mu.Unlock()
	if err := leader.AlterISR(ctx, "t", 0, p.LeaderEpoch, []int32{1, 3}, []int32{1}); !errors.Is(err, coordination.ErrStaleState) {
		t.Errorf("version moved on: %v", err)
	}
	leader.markDirty()
	if got := state(t, follower, "t", 0, 1, 1, 2, 3); got.LeaderEpoch != p.LeaderEpoch {
		t.Errorf("leader epoch %d, was %d", got.LeaderEpoch, p.LeaderEpoch)
	}
	// The controller deletes the ISR change notifications.
	deadline := time.Now().Add(30 * time.Second)
	for {
		kids, _, err := c.Children("/isr_change_notification")
		if err == nil && len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ISR change notifications left: %v %v", kids, err)
		}
		time.Sleep(50 * time.Millisecond) // polling ZooKeeper, which the brokers do not mirror
	}
}

// TestBrokerFailure: a follower that leaves drops out of the ISR in the
// same leader epoch; a leader that leaves is replaced by the next ISR
// member in a new epoch; the last ISR member leaving leaves the partition
// without a leader and the ISR as it was, and its return makes it leader
// again.
func TestBrokerFailure(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 4)
	observer := ms[3].z
	p := createAssigned(t, ms[0].z, "t", nil, []int32{1, 2, 3}).Partitions[0]
	epoch := p.LeaderEpoch

	ms[2].z.Close() // follower 3
	if got := state(t, observer, "t", 0, 1, 1, 2); got.LeaderEpoch != epoch {
		t.Errorf("follower gone: leader epoch %d, was %d", got.LeaderEpoch, epoch)
	}
	ms[0].z.Close() // leader 1
	if got := state(t, observer, "t", 0, 2, 2); got.LeaderEpoch != epoch+1 {
		t.Errorf("leader gone: leader epoch %d, want %d", got.LeaderEpoch, epoch+1)
	}
	ms[1].z.Close() // 2, the last in sync
	// The snapshot shows no leader at once (its broker is gone); the
	// controller's write brings the new epoch.
	waitUntil(t, observer, "no leader, ISR [2], a new epoch", func(s *coordination.Snapshot) bool {
		got := part(s, "t", 0)
		return got.Leader == -1 && slices.Equal(got.ISR, []int32{2}) && got.LeaderEpoch == epoch+2
	})
	// Broker 3 coming back does not lead: it is not in sync.
	back3 := openZK(t, ms[2].opts)
	waitUntil(t, back3, "broker 3 back", func(s *coordination.Snapshot) bool { return len(s.Brokers) == 2 })
	back2 := openZK(t, ms[1].opts)
	if got := state(t, back2, "t", 0, 2, 2); got.LeaderEpoch != epoch+3 {
		t.Errorf("2 back: leader epoch %d, want %d", got.LeaderEpoch, epoch+3)
	}
}

// TestUncleanElection: with no live ISR member, a partition whose
// unclean.leader.election.enable is true (the topic's override, else the
// broker's) is led by a live replica out of sync; otherwise it stays
// offline.
func TestUncleanElection(t *testing.T) {
	for _, brokerDefault := range []bool{false, true} {
		t.Run(fmt.Sprintf("default=%v", brokerDefault), func(t *testing.T) {
			s := zktest.Start(t)
			var ms []*member
			for id := range int32(3) {
				o := testOptions(t, s.Connect(), id+1)
				o.UncleanLeaderElection = brokerDefault
				ms = append(ms, &member{z: openZK(t, o), opts: o})
			}
			override := map[string]string{"unclean.leader.election.enable": fmt.Sprint(!brokerDefault)}
			createAssigned(t, ms[0].z, "override", override, []int32{1, 2})
			createAssigned(t, ms[0].z, "default", nil, []int32{1, 2})
			// Broker 2 fell behind: the leader shrinks the ISR to itself.
			alterISR(t, ms[0].z, "override", 0, 1)
			alterISR(t, ms[0].z, "default", 0, 1)
			epoch := part(ms[0].z.Snapshot(), "default", 0).LeaderEpoch
			ms[0].z.Close()
			unclean, clean := "override", "default"
			if brokerDefault {
				unclean, clean = clean, unclean
			}
			if got := state(t, ms[2].z, unclean, 0, 2, 2); got.LeaderEpoch != epoch+1 {
				t.Errorf("%s: leader epoch %d, want %d", unclean, got.LeaderEpoch, epoch+1)
			}
			waitUntil(t, ms[2].z, clean+" offline in a new epoch, ISR [1]", func(s *coordination.Snapshot) bool {
				got := part(s, clean, 0)
				return got.Leader == -1 && slices.Equal(got.ISR, []int32{1}) && got.LeaderEpoch == epoch+1
			})
		})
	}
}

// TestControlledShutdown: the controller moves leadership off the broker
// and takes it out of the ISRs; a partition with no other replica in sync
// remains, and the broker is elected nowhere until it registers again.
// Another broker is not the controller.
func TestControlledShutdown(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	ctx := context.Background()
	waitUntil(t, ms[0].z, "a controller", func(s *coordination.Snapshot) bool { return s.ControllerID > 0 })
	ctl := controllerOf(ms)
	if ctl == nil {
		t.Fatal("no controller")
	}
	// x shuts down; y and w are the others, the controller among them.
	var others []*member
	var xm *member
	for _, m := range ms {
		if m != ctl && xm == nil {
			xm = m
		} else {
			others = append(others, m)
		}
	}
	x, y, w := xm.z.BrokerID(), others[0].z.BrokerID(), others[1].z.BrokerID()
	createAssigned(t, ctl.z, "a", nil, []int32{x, y, w}, []int32{y, x, w})
	createAssigned(t, ctl.z, "b", nil, []int32{x, y})
	alterISR(t, xm.z, "b", 0, x)
	snap := ctl.z.Snapshot()
	epochs := []int32{part(snap, "a", 0).LeaderEpoch, part(snap, "a", 1).LeaderEpoch, part(snap, "b", 0).LeaderEpoch}
	if _, err := xm.z.ControlledShutdown(ctx, x); !errors.Is(err, coordination.ErrNotController) {
		t.Errorf("broker %d, not controller: %v", x, err)
	}
	remaining, err := ctl.z.ControlledShutdown(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if want := []coordination.PartitionRef{{Topic: "b", Partition: 0}}; !slices.Equal(remaining, want) {
		t.Errorf("remaining %v, want %v", remaining, want)
	}
	snap = ctl.z.Snapshot()
	for _, tc := range []struct {
		topic  string
		p      int32
		leader int32
		isr    []int32
		epoch  int32
	}{
		{"a", 0, y, []int32{y, w}, epochs[0] + 1},
		{"a", 1, y, []int32{y, w}, epochs[1]},
		{"b", 0, x, []int32{x}, epochs[2]},
	} {
		if got := part(snap, tc.topic, tc.p); got.Leader != tc.leader || !slices.Equal(got.ISR, tc.isr) || got.LeaderEpoch != tc.epoch {
			t.Errorf("%s-%d after the shutdown: %+v; want leader %d, ISR %v, epoch %d", tc.topic, tc.p, got, tc.leader, tc.isr, tc.epoch)
		}
	}
	// The broker shutting down is elected nowhere: a partition created
	// now leaves it out.
	topic := createAssigned(t, ctl.z, "c", nil, []int32{x, y})
	if p := topic.Partitions[0]; p.Leader != y || !slices.Equal(p.ISR, []int32{y}) {
		t.Errorf("new partition during the shutdown: %+v", p)
	}
	// Registered again (a new broker epoch), it is a candidate again.
	xm.z.Close()
	back := openZK(t, xm.opts)
	waitUntil(t, ctl.z, "the broker back", func(s *coordination.Snapshot) bool { return len(s.Brokers) == 3 })
	if active, _, _ := ctl.z.ctl.state(); !active {
		t.Fatal("the controller changed")
	}
	topic = createAssigned(t, back, "d", nil, []int32{x, y})
	if p := topic.Partitions[0]; p.Leader != x || !slices.Equal(p.ISR, []int32{x, y}) {
		t.Errorf("new partition after the restart: %+v", p)
	}
}

// TestAutoRebalance: leadership returns to the preferred replica once it
// is back in sync.
func TestAutoRebalance(t *testing.T) {
	s := zktest.Start(t)
	var ms []*member
	for id := range int32(3) {
		o := testOptions(t, s.Connect(), id+1)
		o.AutoLeaderRebalance = true
		o.LeaderImbalanceCheckInterval = 200 * time.Millisecond
		ms = append(ms, &member{z: openZK(t, o), opts: o})
	}
	p := createAssigned(t, ms[0].z, "t", nil, []int32{1, 2, 3}).Partitions[0]
	ms[0].z.Close()
	moved := state(t, ms[1].z, "t", 0, 2, 2, 3)
	back := openZK(t, ms[0].opts)
	waitUntil(t, back, "broker 1 back", func(s *coordination.Snapshot) bool { return len(s.Brokers) == 3 })
	// Not in sync: it does not lead yet.
	if got := part(back.Snapshot(), "t", 0); got.Leader != 2 {
		t.Fatalf("broker 1 leads before it is in sync: %+v", got)
	}
	// Caught up: the leader adds it to the ISR.
	if err := ms[1].z.AlterISR(context.Background(), "t", 0, moved.LeaderEpoch, moved.ISR, []int32{2, 3, 1}); err != nil {
		t.Fatal(err)
	}
	got := state(t, back, "t", 0, 1, 2, 3, 1)
	if got.LeaderEpoch != p.LeaderEpoch+2 {
		t.Errorf("leader epoch %d, want %d", got.LeaderEpoch, p.LeaderEpoch+2)
	}
}

// TestReassign: a partition moves to new replicas: the snapshot shows the
// reassignment, the new replica joins the ISR, and the controller moves
// leadership (if the leader leaves) and shrinks the replicas to the
// target. A reassignment is cancelled; requests are validated.
func TestReassign(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 4)
	ctx := context.Background()
	z := ms[3].z // any broker may reassign
	createAssigned(t, ms[0].z, "move", nil, []int32{1, 2, 3})
	createAssigned(t, ms[0].z, "keep", nil, []int32{1, 2})
	createAssigned(t, ms[0].z, "cancel", nil, []int32{1, 2})
	epoch := state(t, z, "move", 0, 1, 1, 2, 3).LeaderEpoch
	state(t, z, "keep", 0, 1, 1, 2)
	state(t, z, "cancel", 0, 1, 1, 2)
	ref := func(topic string) coordination.PartitionRef { return coordination.PartitionRef{Topic: topic} }
	errs := z.Reassign(ctx, []coordination.Reassignment{
		{PartitionRef: ref("move"), Replicas: []int32{2, 3, 4}},
		{PartitionRef: ref("keep"), Replicas: []int32{1, 3}},
		{PartitionRef: ref("cancel"), Replicas: []int32{3, 4}},
		{PartitionRef: ref("nope"), Replicas: []int32{1}},
		{PartitionRef: coordination.PartitionRef{Topic: "move", Partition: 1}, Replicas: []int32{1}},
		{PartitionRef: ref("move"), Replicas: []int32{1, 1}},
		{PartitionRef: ref("move"), Replicas: []int32{1, 9}},
		{PartitionRef: ref("move"), Replicas: []int32{}},
	})
	for i, want := range []error{nil, nil, nil, coordination.ErrUnknownTopic, coordination.ErrUnknownTopic,
		coordination.ErrInvalidReplication, coordination.ErrInvalidReplication, coordination.ErrInvalidReplication} {
		if (want == nil) != (errs[i] == nil) || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("request %d: %v, want %v", i, errs[i], want)
		}
	}
	snap := z.Snapshot()
	for _, tc := range []struct {
		topic                      string
		replicas, adding, removing []int32
	}{
		{"move", []int32{2, 3, 4, 1}, []int32{4}, []int32{1}},
		{"keep", []int32{1, 3, 2}, []int32{3}, []int32{2}},
		{"cancel", []int32{3, 4, 1, 2}, []int32{3, 4}, []int32{1, 2}},
	} {
		got := part(snap, tc.topic, 0)
		if !slices.Equal(got.Replicas, tc.replicas) || !slices.Equal(got.AddingReplicas, tc.adding) || !slices.Equal(got.RemovingReplicas, tc.removing) {
			t.Errorf("%s after Reassign: %+v; want replicas %v adding %v removing %v", tc.topic, got, tc.replicas, tc.adding, tc.removing)
		}
	}
	// The new replicas catch up and the leader adds them to the ISR.
	alterISR(t, ms[0].z, "move", 0, 1, 2, 3, 4)
	got := waitUntil(t, z, "move completed", func(s *coordination.Snapshot) bool {
		return slices.Equal(part(s, "move", 0).Replicas, []int32{2, 3, 4})
	})
	if p := part(got, "move", 0); p.Leader != 2 || p.LeaderEpoch != epoch+1 || !slices.Equal(p.ISR, []int32{2, 3, 4}) || p.AddingReplicas != nil || p.RemovingReplicas != nil {
		t.Errorf("move after completion: %+v; want leader 2 at epoch %d, ISR [2 3 4]", p, epoch+1)
	}
	keepEpoch := part(z.Snapshot(), "keep", 0).LeaderEpoch
	alterISR(t, ms[0].z, "keep", 0, 1, 2, 3)
	got = waitUntil(t, z, "keep completed", func(s *coordination.Snapshot) bool {
		return slices.Equal(part(s, "keep", 0).Replicas, []int32{1, 3})
	})
	if p := part(got, "keep", 0); p.Leader != 1 || p.LeaderEpoch != keepEpoch || !slices.Equal(p.ISR, []int32{1, 3}) {
		t.Errorf("keep after completion: %+v; want leader 1 at epoch %d, ISR [1 3]", p, keepEpoch)
	}
	// One of two new replicas catches up; then the move is cancelled.
	alterISR(t, ms[0].z, "cancel", 0, 1, 2, 3)
	if p := part(z.Snapshot(), "cancel", 0); !slices.Equal(p.Replicas, []int32{3, 4, 1, 2}) {
		t.Errorf("cancel completed early: %+v", p)
	}
	errs = z.Reassign(ctx, []coordination.Reassignment{{PartitionRef: ref("cancel")}})
	if errs[0] != nil {
		t.Fatalf("cancel: %v", errs[0])
	}
	if p := part(z.Snapshot(), "cancel", 0); !slices.Equal(p.Replicas, []int32{1, 2}) || p.AddingReplicas != nil || p.RemovingReplicas != nil {
		t.Errorf("after cancelling: %+v", p)
	}
	state(t, z, "cancel", 0, 1, 1, 2)
	errs = z.Reassign(ctx, []coordination.Reassignment{{PartitionRef: ref("cancel")}, {PartitionRef: ref("move")}})
	for i, err := range errs {
		if !errors.Is(err, coordination.ErrNoReassignment) {
			t.Errorf("cancel %d without a reassignment: %v", i, err)
		}
	}
}

// TestReassignReplaced: a new target replaces the one in progress,
// relative to the original replicas; the leader, in the target, keeps
// leading when the move completes.
func TestReassignReplaced(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	ctx := context.Background()
	createAssigned(t, ms[0].z, "t", nil, []int32{1, 2})
	ref := coordination.PartitionRef{Topic: "t"}
	if err := ms[1].z.Reassign(ctx, []coordination.Reassignment{{PartitionRef: ref, Replicas: []int32{3, 2}}})[0]; err != nil {
		t.Fatal(err)
	}
	// A new target, relative to the original replicas [1 2].
	if err := ms[1].z.Reassign(ctx, []coordination.Reassignment{{PartitionRef: ref, Replicas: []int32{3, 1}}})[0]; err != nil {
		t.Fatal(err)
	}
	p := part(ms[1].z.Snapshot(), "t", 0)
	if !slices.Equal(p.Replicas, []int32{3, 1, 2}) || !slices.Equal(p.AddingReplicas, []int32{3}) || !slices.Equal(p.RemovingReplicas, []int32{2}) {
		t.Fatalf("after the second target: %+v", p)
	}
	alterISR(t, ms[0].z, "t", 0, 1, 2, 3)
	got := waitUntil(t, ms[2].z, "completed", func(s *coordination.Snapshot) bool {
		return slices.Equal(part(s, "t", 0).Replicas, []int32{3, 1})
	})
	if p := part(got, "t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1, 3}) {
		t.Errorf("after completion: %+v; want leader 1 (in the target), ISR [1 3]", p)
	}
}
