package zk

import (
	"slices"
	"testing"
)

// TestNextState: the controller's rules for a partition's leader and ISR,
// without ZooKeeper.
func TestNextState(t *testing.T) {
	view := func(live []int32, bounced []int32, shutting []int32) *brokerView {
		v := &brokerView{live: map[int32]bool{}, shutting: map[int32]bool{},
			bounced: func(id int32) bool { return slices.Contains(bounced, id) }}
		for _, id := range live {
			v.live[id] = true
		}
		for _, id := range shutting {
			v.shutting[id] = true
		}
		return v
	}
	st := func(leader, epoch int32, isr ...int32) stateZNode {
		return stateZNode{Leader: leader, LeaderEpoch: epoch, ISR: isr}
	}
	replicas := []int32{1, 2, 3}
	for _, tc := range []struct {
		name    string
		s       stateZNode
		v       *brokerView
		unclean bool
		replica []int32 // default replicas
		want    stateZNode
		changed bool
	}{
		{name: "all well", s: st(1, 5, 1, 2, 3), v: view([]int32{1, 2, 3}, nil, nil), want: st(1, 5, 1, 2, 3)},
		{name: "follower gone", s: st(1, 5, 1, 2, 3), v: view([]int32{1, 2}, nil, nil), want: st(1, 5, 1, 2), changed: true},
		{name: "follower bounced", s: st(1, 5, 1, 2, 3), v: view([]int32{1, 2, 3}, []int32{3}, nil), want: st(1, 5, 1, 2), changed: true},
		{name: "leader gone", s: st(1, 5, 1, 3), v: view([]int32{2, 3}, nil, nil), want: st(3, 6, 3), changed: true},
		{name: "leader bounced", s: st(1, 5, 1, 2), v: view([]int32{1, 2, 3}, []int32{1}, nil), want: st(2, 6, 2), changed: true},
		{name: "leader bounced alone", s: st(1, 5, 1), v: view([]int32{1, 2, 3}, []int32{1}, nil), want: st(1, 6, 1), changed: true},
		{name: "last ISR member gone", s: st(1, 5, 1), v: view([]int32{2, 3}, nil, nil), want: st(-1, 6, 1), changed: true},
		{name: "offline stays", s: st(-1, 6, 1), v: view([]int32{2, 3}, nil, nil), want: st(-1, 6, 1)},
		{name: "ISR member back", s: st(-1, 6, 1, 2), v: view([]int32{2, 3}, nil, nil), want: st(2, 7, 2), changed: true},
		{name: "unclean", s: st(1, 5, 1), v: view([]int32{2, 3}, nil, nil), unclean: true, want: st(2, 6, 2), changed: true},
		{name: "unclean, none live", s: st(1, 5, 1), v: view(nil, nil, nil), unclean: true, want: st(-1, 6, 1), changed: true},
		{name: "leader shutting down", s: st(1, 5, 1, 2, 3), v: view([]int32{1, 2, 3}, nil, []int32{1}), want: st(2, 6, 2, 3), changed: true},
		{name: "leader shutting down alone", s: st(1, 5, 1), v: view([]int32{1, 2, 3}, nil, []int32{1}), want: st(1, 5, 1)},
		{name: "follower shutting down", s: st(1, 5, 1, 2), v: view([]int32{1, 2, 3}, nil, []int32{2}), want: st(1, 5, 1), changed: true},
		{name: "replica order decides", s: st(3, 5, 3, 2, 1), v: view([]int32{1, 2}, nil, nil), want: st(1, 6, 2, 1), changed: true},
		{name: "leader no longer a replica", s: st(4, 5, 4, 1), replica: []int32{1, 2}, v: view([]int32{1, 2, 4}, nil, nil), want: st(1, 6, 1), changed: true},
	} {
		rs := replicas
		if tc.replica != nil {
			rs = tc.replica
		}
		got, changed := nextState(tc.s, rs, tc.unclean, tc.v)
		if changed != tc.changed || got.Leader != tc.want.Leader || got.LeaderEpoch != tc.want.LeaderEpoch || !slices.Equal(got.ISR, tc.want.ISR) {
			t.Errorf("%s: %+v (changed %v), want %+v (changed %v)", tc.name, got, changed, tc.want, tc.changed)
		}
	}
}

// TestCompleteReassignment: a move completes once its target is in sync,
// led by a target replica.
func TestCompleteReassignment(t *testing.T) {
	v := &brokerView{live: map[int32]bool{1: true, 2: true, 3: true, 4: true}, bounced: noneBounced, shutting: map[int32]bool{3: true}}
	replicas, removing := []int32{3, 4, 1, 2}, []int32{1, 2}
	if _, ok := completeReassignment(stateZNode{Leader: 1, LeaderEpoch: 2, ISR: []int32{1, 2, 3}}, replicas, removing, v); ok {
		t.Error("completed with 4 out of sync")
	}
	got, ok := completeReassignment(stateZNode{Leader: 1, LeaderEpoch: 2, ISR: []int32{1, 2, 3, 4}}, replicas, removing, v)
	// 3 is shutting down, so 4 leads.
	if !ok || got.Leader != 4 || got.LeaderEpoch != 3 || !slices.Equal(got.ISR, []int32{3, 4}) {
		t.Errorf("completion: %+v, %v", got, ok)
	}
}
