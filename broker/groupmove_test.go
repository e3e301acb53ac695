package broker

import (
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// steered is a coordinator whose snapshots can say that another broker
// (99) leads some partitions of __consumer_offsets, as a cluster's would
// when leadership moves.
type steered struct {
	coordination.Coordinator
	mu      sync.Mutex
	moved   map[int32]bool
	bump    int64
	changed chan struct{}
}

var other = coordination.Broker{ID: 99, Host: "127.0.0.1", Port: 1}

func (s *steered) move(p int32, away bool) {
	s.mu.Lock()
	s.moved[p] = away
	s.bump++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *steered) Snapshot() *coordination.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	inner := s.Coordinator.Snapshot()
	snap := *inner
	snap.Version = inner.Version*1000 + s.bump
	snap.Brokers = append(slices.Clone(inner.Brokers), other)
	t := inner.Topics[offsetsTopicName]
	if t == nil {
		return &snap
	}
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions)
	for p, away := range s.moved {
		if away {
			nt.Partitions[p].Leader = other.ID
		}
	}
	snap.Topics = maps.Clone(inner.Topics)
	snap.Topics[offsetsTopicName] = &nt
	return &snap
}

func (s *steered) Changed(version int64) <-chan struct{} {
	s.mu.Lock()
	mine := s.changed
	s.mu.Unlock()
	inner := s.Coordinator.Changed(version / 1000)
	out := make(chan struct{})
	go func() {
		select {
		case <-inner:
		case <-mine:
		}
		close(out)
	}()
	return out
}

// TestGroupsFollowLeadership: when another broker comes to lead a group's
// partition of __consumer_offsets, this broker drops the group (its
// members get NOT_COORDINATOR and FindCoordinator names the other
// broker); when the partition comes back, the group is loaded again with
// its committed offsets.
func TestGroupsFollowLeadership(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.OffsetsTopicNumPartitions = 3
	})
	// Restart on the steered coordinator.
	tb.stop()
	st := &steered{Coordinator: reopenTestCoordinator(t, tb.cfg, tb.coord), moved: map[int32]bool{}, changed: make(chan struct{})}
	tb.coord = st
	tb.start()
	tb.waitGroupsLoaded()
	tb.createTopic("gm", 1, nil)

	const groupID = "moving"
	p := group.PartitionFor(groupID, 3)
	m := newMember(tb, groupID, "gm")
	m.join()
	wantCode(t, "sync", m.sync(map[string]string{m.id: "a"}).ErrorCode, nil)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation, commit.MemberID = groupID, m.gen, m.id
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "gm"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 42
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	r := tb.request(m.cl, commit).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit", r.Topics[0].Partitions[0].ErrorCode, nil)

	// Straight to this broker: a client would follow FindCoordinator to
	// broker 99, which does not exist.
	send := tb.direct(nil)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = groupID, m.gen, m.id
	st.move(p, true)
	eventually(t, "the group unloaded", func() bool {
		return send(hb).(*kmsg.HeartbeatResponse).ErrorCode == kerr.NotCoordinator.Code
	})
	find := kmsg.NewPtrFindCoordinatorRequest() // v4+: keys
	find.CoordinatorKeys = []string{groupID}
	coordinator := func() (int32, int16) {
		c := send(find).(*kmsg.FindCoordinatorResponse).Coordinators[0]
		return c.NodeID, c.ErrorCode
	}
	if node, code := coordinator(); code != 0 || node != other.ID {
		t.Errorf("FindCoordinator while moved: node %d, error %d; want %d", node, code, other.ID)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest() // v8+: groups
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group = groupID
	fetch.Groups = append(fetch.Groups, fg)
	wantCode(t, "OffsetFetch while moved", send(fetch).(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode, kerr.NotCoordinator)

	st.move(p, false)
	eventually(t, "the group loaded again", func() bool {
		g := send(fetch).(*kmsg.OffsetFetchResponse).Groups[0]
		return g.ErrorCode == 0 && len(g.Topics) == 1 && g.Topics[0].Partitions[0].Offset == 42
	})
	if node, code := coordinator(); code != 0 || node != tb.coord.BrokerID() {
		t.Errorf("FindCoordinator after the return: node %d, error %d", node, code)
	}
}
