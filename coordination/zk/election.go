package zk

import (
	"fmt"
	"slices"

	"github.com/go-zookeeper/zk"
)

// brokerView is what the controller knows of the brokers when it decides
// a partition's leader and ISR.
type brokerView struct {
	live     map[int32]bool // registered
	bounced  func(int32) bool
	shutting map[int32]bool // in a controlled shutdown
}

// usable reports whether broker r may lead, or stay in an ISR: it is
// registered, has not restarted unnoticed, and is not shutting down.
func (v *brokerView) usable(r int32) bool {
	return v.live[r] && !v.bounced(r) && !v.shutting[r]
}

// brokerView returns the controller's view of m's brokers. With prune
// (the controller loop) it forgets the controlled shutdowns of brokers
// that are gone or registered again.
func (z *ZK) brokerView(m *model, bounced func(int32) bool, prune bool) *brokerView {
	v := &brokerView{live: make(map[int32]bool, len(m.brokers)), bounced: bounced, shutting: map[int32]bool{}}
	for id := range m.brokers {
		v.live[id] = true
	}
	z.ctl.mu.Lock()
	defer z.ctl.mu.Unlock()
	for id, epoch := range z.ctl.shutting {
		if prune && m.brokerEpochs[id] != epoch {
			delete(z.ctl.shutting, id)
			continue
		}
		v.shutting[id] = true
	}
	return v
}

func noneBounced(int32) bool { return false }

// nextState returns the state partition s should have, given its replicas
// (during a reassignment, the old and the new) and the brokers; changed
// is false when s is right as it is. The rules:
//
//   - A usable leader keeps leading; followers whose brokers are not
//     usable (gone, restarted, shutting down) or that are no longer
//     replicas leave the ISR. The leader epoch stays.
//   - Otherwise the first usable ISR member in replica order leads, with
//     the ISR's usable members, in a new leader epoch.
//   - With none, a leader shutting down keeps leading (it is the only
//     copy in sync); a leader that restarted and is in the ISR leads
//     again in a new epoch; with unclean election the first usable
//     replica leads alone; else the partition has no leader (-1), and
//     its ISR stays as it was, so that a member coming back leads.
func nextState(s stateZNode, replicas []int32, unclean bool, v *brokerView) (next stateZNode, changed bool) {
	assigned := func(r int32) bool { return slices.Contains(replicas, r) }
	keep := func(r int32) bool { return assigned(r) && v.usable(r) }
	withLeader := func(leader int32) []int32 {
		return slices.DeleteFunc(slices.Clone(s.ISR), func(r int32) bool { return r != leader && !keep(r) })
	}
	next = s
	newEpoch := false
	switch {
	case keep(s.Leader):
		next.ISR = withLeader(s.Leader)
	default:
		leader := int32(-1)
		for _, r := range replicas {
			if r != s.Leader && slices.Contains(s.ISR, r) && keep(r) {
				leader = r
				break
			}
		}
		live := assigned(s.Leader) && v.live[s.Leader] && slices.Contains(s.ISR, s.Leader)
		switch {
		case leader >= 0:
			next.Leader, next.ISR = leader, withLeader(leader)
		case live && v.shutting[s.Leader]:
			next.ISR = withLeader(s.Leader)
		case live:
			// Restarted (a new broker epoch) and alone in sync: a new
			// leadership of the same broker.
			next.ISR, newEpoch = withLeader(s.Leader), true
		case unclean:
			for _, r := range replicas {
				if keep(r) {
					leader = r
					break
				}
			}
			if leader >= 0 {
				next.Leader, next.ISR = leader, []int32{leader}
			} else {
				next.Leader = -1
			}
		default:
			next.Leader = -1
		}
	}
	if next.Leader != s.Leader || newEpoch {
		next.LeaderEpoch = s.LeaderEpoch + 1
	}
	changed = next.Leader != s.Leader || next.LeaderEpoch != s.LeaderEpoch || !slices.Equal(next.ISR, s.ISR)
	return next, changed
}

// completeReassignment returns the state that ends a partition's
// reassignment, if every target replica (replicas without removing) is in
// the ISR: led by a target replica (the first usable one in the ISR if the
// leader is not one, in a new epoch), and the ISR limited to the target.
func completeReassignment(s stateZNode, replicas, removing []int32, v *brokerView) (stateZNode, bool) {
	target := without(replicas, removing)
	for _, r := range target {
		if !slices.Contains(s.ISR, r) {
			return s, false
		}
	}
	next := s
	if !slices.Contains(target, s.Leader) {
		next.Leader = -1
		for _, r := range target {
			if v.usable(r) {
				next.Leader = r
				break
			}
		}
		if next.Leader < 0 {
			return s, false
		}
		next.LeaderEpoch++
	}
	next.ISR = slices.DeleteFunc(slices.Clone(s.ISR), func(r int32) bool { return !slices.Contains(target, r) })
	return next, true
}

// without returns rs less the members of drop, in rs's order.
func without(rs, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(rs), func(r int32) bool { return slices.Contains(drop, r) })
}

// rebalanceLeaders hands leadership back to preferred replicas
// (auto.leader.rebalance.enable): for each broker, the partitions whose
// first replica it is and that another broker leads; if their share is
// above leader.imbalance.per.broker.percentage, each of them whose
// preferred replica is usable and in sync is led by it again, in a new
// leader epoch. Partitions being reassigned are left alone.
func (z *ZK) rebalanceLeaders(m *model) error {
	type share struct{ preferred, elsewhere int }
	shares := map[int32]*share{}
	each := func(f func(t *topicModel, p int, s *partitionState)) {
		for name, t := range m.topics {
			if slices.Contains(m.deleting, name) {
				continue
			}
			for p := range t.replicas {
				if s := t.states[p]; s != nil && !t.reassigning(p) {
					f(t, p, s)
				}
			}
		}
	}
	each(func(t *topicModel, p int, s *partitionState) {
		pref := t.replicas[p][0]
		sh := shares[pref]
		if sh == nil {
			sh = &share{}
			shares[pref] = sh
		}
		sh.preferred++
		if s.Leader != pref {
			sh.elsewhere++
		}
	})
	pct := max(z.opts.LeaderImbalancePerBrokerPercentage, 0)
	v := z.brokerView(m, func(id int32) bool {
		seen, ok := z.ctl.brokerEpochs[id]
		return ok && seen != m.brokerEpochs[id]
	}, false)
	_, epoch, _ := z.ctl.state()
	var errs []error
	each(func(t *topicModel, p int, s *partitionState) {
		pref := t.replicas[p][0]
		sh := shares[pref]
		if s.Leader == pref || sh.elsewhere*100 <= pct*sh.preferred || !v.usable(pref) || !slices.Contains(s.ISR, pref) {
			return
		}
		next := s.stateZNode
		next.ControllerEpoch, next.Leader, next.LeaderEpoch = epoch, pref, s.LeaderEpoch+1
		if _, err := z.fenced(&zk.SetDataRequest{Path: z.p(statePath(t.name, int32(p))), Data: encodeState(next), Version: s.version}); err != nil {
			errs = append(errs, fmt.Errorf("moving %s-%d back to its preferred leader: %w", t.name, p, err))
			return
		}
		z.log.Info("elected preferred leader", "topic", t.name, "partition", p, "leader", pref, "leader_epoch", next.LeaderEpoch, "was", s.Leader)
	})
	if len(errs) > 0 {
		return fmt.Errorf("leader rebalance: %w", errs[0])
	}
	return nil
}
