package partition

// Replication, the leader's side: the partition tracks how far each
// follower has fetched (FollowerFetched) and advances the high watermark
// to the smallest log end offset of the in-sync replicas. It tells the
// replication layer who fell behind for replica.lag.time.max.ms
// (Laggards) or caught up again (Replication.ExpandISR), and the
// replication layer changes the ISR through the coordinator.
//
// A follower's log end offset is what it asks to fetch from: a fetch at
// offset o says it holds everything below o. A follower is caught up at a
// fetch if it asked for the leader's log end, or for at least the log end
// the leader had at its previous fetch (then it was caught up at the time
// of that fetch), as Kafka judges it.
//
// The high watermark counts the ISR the coordinator holds plus a follower
// whose addition is being written: a member leaves only once the write
// succeeded, so the watermark never passes what a replica that may still
// be elected lacks. It never moves back while this broker leads.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/coordination"
)

// follower is the leader's view of one follower.
type follower struct {
	leo          int64     // its log end offset; -1 until it fetches in this leadership
	lastFetch    time.Time // when it fetched last
	lastFetchLEO int64     // the leader's log end offset then
	caughtUp     time.Time // the last time it had all the leader had
}

// leadership is a partition's replication state while this broker leads
// it, at one leader epoch; under partition.replMu.
type leadership struct {
	epoch     int32
	followers map[int32]*follower
	// altering is set while an ISR change is being written; adding is
	// the follower it adds (-1 for none).
	altering bool
	adding   int32
}

// becomeLeader starts a leadership at st.LeaderEpoch: the epoch begins at
// the log end, every follower's position is unknown until it fetches, and
// each gets replica.lag.time.max.ms from now to fetch before it counts as
// behind.
func (p *Partition) becomeLeader(st *State) error {
	p.appendMu.Lock()
	_, end := p.log.Offsets()
	err := p.epochs.assign(st.LeaderEpoch, end)
	p.appendMu.Unlock()
	now := time.Now()
	l := &leadership{epoch: st.LeaderEpoch, followers: map[int32]*follower{}, adding: -1}
	for _, r := range st.Replicas {
		if r != p.me {
			l.followers[r] = &follower{leo: -1, caughtUp: now, lastFetch: now}
		}
	}
	p.replMu.Lock()
	p.lead = l
	p.replMu.Unlock()
	if p.hw.Load() > end {
		p.hw.Store(end)
	}
	p.updateHW()
	return err
}

// endLeadership forgets the followers (this broker no longer leads).
func (p *Partition) endLeadership() {
	p.replMu.Lock()
	p.lead = nil
	p.replMu.Unlock()
}

// updateHW advances the high watermark as far as the in-sync replicas
// allow, and wakes the waiters of the partition if it moved.
func (p *Partition) updateHW() {
	if p.advanceHW() {
		p.wake()
	}
}

// advanceHW advances the high watermark as far as the in-sync replicas
// allow and reports whether it moved.
func (p *Partition) advanceHW() bool {
	st := p.state.Load()
	if !st.Leader {
		return false
	}
	_, hw := p.log.Offsets()
	p.replMu.Lock()
	l := p.lead
	if l == nil || l.epoch != st.LeaderEpoch {
		p.replMu.Unlock()
		return false
	}
	bound := func(r int32) {
		if r == p.me {
			return
		}
		if f := l.followers[r]; f != nil && f.leo >= 0 {
			hw = min(hw, f.leo)
		} else {
			hw = -1 // not heard from: the watermark waits
		}
	}
	for _, r := range st.ISR {
		bound(r)
	}
	if l.adding >= 0 && slices.Contains(st.ISR, l.adding) && !l.altering {
		l.adding = -1 // the addition is applied
	}
	if l.adding >= 0 {
		bound(l.adding)
	}
	p.replMu.Unlock()
	for {
		old := p.hw.Load()
		if hw <= old {
			return false
		}
		if p.hw.CompareAndSwap(old, hw) {
			return true
		}
	}
}

// FollowerFetched records a fetch from follower id at offset, at time now:
// it may advance the high watermark, and a follower that caught up is
// added to the ISR (through Replication.ExpandISR, which does not block).
func (p *Partition) FollowerFetched(st *State, id int32, offset int64, now time.Time) {
	if p.followerFetched(st, id, offset, now) {
		p.m.repl.ExpandISR(p, st, append(slices.Clone(st.ISR), id))
	}
}

// followerFetched records the fetch and reports whether the follower
// should join the ISR.
func (p *Partition) followerFetched(st *State, id int32, offset int64, now time.Time) (join bool) {
	_, end := p.log.Offsets()
	p.replMu.Lock()
	l := p.lead
	if l == nil || l.epoch != st.LeaderEpoch || !slices.Contains(st.Replicas, id) {
		p.replMu.Unlock()
		return false
	}
	f := l.followers[id]
	if f == nil {
		f = &follower{leo: -1, caughtUp: now, lastFetch: now}
		l.followers[id] = f
	}
	f.leo = min(offset, end)
	switch {
	case offset >= end:
		f.caughtUp = now
	case offset >= f.lastFetchLEO && f.lastFetch.After(f.caughtUp):
		f.caughtUp = f.lastFetch
	}
	f.lastFetch, f.lastFetchLEO = now, end
	if !slices.Contains(st.ISR, id) && !l.altering && f.leo >= p.hw.Load() {
		// In sync again: it holds everything committed, and at least
		// the start of this leadership (so it has truncated where it
		// had to).
		if start := p.epochs.startOf(l.epoch); start >= 0 && f.leo >= start {
			l.altering, l.adding = true, id
			join = true
		}
	}
	p.replMu.Unlock()
	p.updateHW()
	return join
}

// Laggards returns the ISR members that have not caught up within lag of
// now; nil if none (or an ISR change is being written). A non-nil answer
// starts an ISR change, which ISRChanged ends.
func (p *Partition) Laggards(st *State, now time.Time, lag time.Duration) []int32 {
	p.replMu.Lock()
	defer p.replMu.Unlock()
	l := p.lead
	if l == nil || l.epoch != st.LeaderEpoch || l.altering {
		return nil
	}
	var out []int32
	for _, r := range st.ISR {
		if f := l.followers[r]; r != p.me && f != nil && now.Sub(f.caughtUp) > lag {
			out = append(out, r)
		}
	}
	if out != nil {
		l.altering = true
	}
	return out
}

// ISRChanged ends an ISR change that a leader at st's epoch wrote (isr,
// and err the write's result: nil, or with definite set, a change the
// coordinator refused for certain), once the partition's state holds
// whatever the coordinator now says.
//
// A follower being added keeps counting towards the high watermark
// (leadership.adding) until the partition's applied state holds it, or the
// change failed for certain, or another change replaced it: from the
// moment the coordinator may hold it in the ISR, the watermark must not
// pass it.
func (p *Partition) ISRChanged(st *State, isr []int32, definite bool) {
	p.replMu.Lock()
	if l := p.lead; l != nil && l.epoch == st.LeaderEpoch {
		l.altering = false
		if l.adding >= 0 && (definite || !slices.Contains(isr, l.adding) || slices.Contains(p.state.Load().ISR, l.adding)) {
			l.adding = -1
		}
	}
	p.replMu.Unlock()
	p.updateHW()
	p.wake()
}

// AckState reports whether an acks=all produce whose last offset is last,
// appended at leader epoch epoch, can be answered, and with what error.
func (p *Partition) AckState(last int64, epoch int32) (done bool, code int16) {
	st := p.state.Load()
	switch {
	case !st.Leader || st.LeaderEpoch != epoch:
		return true, kerr.NotLeaderForPartition.Code
	case p.hw.Load() <= last:
		return false, 0
	case int32(len(st.ISR)) < st.Settings.MinInsync:
		return true, kerr.NotEnoughReplicasAfterAppend.Code
	}
	return true, 0
}

// AwaitReplicated waits until the high watermark passes last, the offset
// of an append made at leader epoch epoch (acks=all), or ctx ends.
func (p *Partition) AwaitReplicated(ctx context.Context, last int64, epoch int32) error {
	for {
		ch := p.WaitChan()
		if done, code := p.AckState(last, epoch); done {
			if code != 0 {
				return kerr.ErrorForCode(code)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
}

// stateChanged applies a new leadership state of an open partition: it
// starts or ends the leadership or the following, and wakes the waiters
// (acks=all answers NOT_LEADER when leadership moved).
func (m *Manager) stateChanged(p *Partition, old, st *State) {
	if p.log == nil {
		return
	}
	lead := st.Leader && (old == nil || !old.Leader || old.LeaderEpoch != st.LeaderEpoch)
	switch {
	case lead:
		m.repl.Unfollow(p)
		if err := p.becomeLeader(st); err != nil {
			m.log.Error("recording the leader epoch", "partition", p.tp.String(), "err", err)
		}
		m.log.Debug("leading", "partition", p.tp.String(), "leader_epoch", st.LeaderEpoch, "isr", st.ISR)
	case st.Leader:
		p.updateHW() // the ISR may have changed
	case st.LeaderID >= 0:
		p.endLeadership()
		m.repl.Follow(p, st)
	default:
		p.endLeadership()
		m.repl.Unfollow(p)
	}
	p.wake()
}

// newPartState is the state of partition sp as broker me sees it.
func newPartState(me int32, sp *coordination.Partition, settings Settings) *State {
	return &State{
		Leader:      sp.Leader == me,
		LeaderID:    sp.Leader,
		LeaderEpoch: sp.LeaderEpoch,
		ISR:         sp.ISR,
		Replicas:    sp.Replicas,
		Settings:    settings,
	}
}
