package broker

// Replication, the leader's side: it tracks how far each follower has
// fetched, advances the high watermark to the smallest log end offset of
// the in-sync replicas, and changes the ISR through the coordinator
// (coordination.Replication.AlterISR, a conditional write) when a follower
// falls behind for replica.lag.time.max.ms or catches up again. The
// followers' side, the fetchers, is fetcher.go.
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
	"errors"
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

// becomeLeader starts a leadership at st.leaderEpoch: the epoch begins at
// the log end, every follower's position is unknown until it fetches, and
// each gets replica.lag.time.max.ms from now to fetch before it counts as
// behind.
func (p *partition) becomeLeader(st *partState) error {
	p.appendMu.Lock()
	_, end := p.log.Offsets()
	err := p.epochs.assign(st.leaderEpoch, end)
	p.appendMu.Unlock()
	now := time.Now()
	l := &leadership{epoch: st.leaderEpoch, followers: map[int32]*follower{}, adding: -1}
	for _, r := range st.replicas {
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
func (p *partition) endLeadership() {
	p.replMu.Lock()
	p.lead = nil
	p.replMu.Unlock()
}

// updateHW advances the high watermark as far as the in-sync replicas
// allow, and wakes the waiters of the partition if it moved.
func (p *partition) updateHW() {
	if p.advanceHW() {
		p.wake()
	}
}

// advanceHW advances the high watermark as far as the in-sync replicas
// allow and reports whether it moved.
func (p *partition) advanceHW() bool {
	st := p.state.Load()
	if !st.leader {
		return false
	}
	_, hw := p.log.Offsets()
	p.replMu.Lock()
	l := p.lead
	if l == nil || l.epoch != st.leaderEpoch {
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
	for _, r := range st.isr {
		bound(r)
	}
	if l.adding >= 0 && slices.Contains(st.isr, l.adding) && !l.altering {
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

// followerFetched records a fetch from follower id at offset, at time now,
// and reports whether the follower should join the ISR.
func (p *partition) followerFetched(st *partState, id int32, offset int64, now time.Time) (join bool) {
	_, end := p.log.Offsets()
	p.replMu.Lock()
	l := p.lead
	if l == nil || l.epoch != st.leaderEpoch || !slices.Contains(st.replicas, id) {
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
	if !slices.Contains(st.isr, id) && !l.altering && f.leo >= p.hw.Load() {
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

// laggards returns the ISR members that have not caught up within lag of
// now; nil if none (or an ISR change is being written).
func (p *partition) laggards(st *partState, now time.Time, lag time.Duration) []int32 {
	p.replMu.Lock()
	defer p.replMu.Unlock()
	l := p.lead
	if l == nil || l.epoch != st.leaderEpoch || l.altering {
		return nil
	}
	var out []int32
	for _, r := range st.isr {
		if f := l.followers[r]; r != p.me && f != nil && now.Sub(f.caughtUp) > lag {
			out = append(out, r)
		}
	}
	if out != nil {
		l.altering = true
	}
	return out
}

// alterISR writes a new ISR for the partition as its leader at st's
// epoch, changed from st's, then ends the pending change.
//
// A follower being added keeps counting towards the high watermark
// (leadership.adding) until the partition's applied state holds it, or the
// change failed for certain, or another change replaced it: from the
// moment ZooKeeper may hold it in the ISR, the watermark must not pass it.
func (b *Broker) alterISR(p *partition, st *partState, isr []int32) {
	var err error
	defer func() {
		// The new ISR reaches the partition through the snapshot;
		// take it now rather than when the watch gets to it.
		b.parts.sync(b.serveCtx)
		definite := errors.Is(err, coordination.ErrStaleState) || errors.Is(err, coordination.ErrInvalidReplication)
		p.replMu.Lock()
		if l := p.lead; l != nil && l.epoch == st.leaderEpoch {
			l.altering = false
			if l.adding >= 0 && (definite || !slices.Contains(isr, l.adding) || slices.Contains(p.state.Load().isr, l.adding)) {
				l.adding = -1
			}
		}
		p.replMu.Unlock()
		p.updateHW()
		p.wake()
	}()
	r, ok := b.coord.(coordination.Replication)
	if !ok {
		err = coordination.ErrStaleState
		return
	}
	ctx, cancel := context.WithTimeout(b.serveCtx, 30*time.Second)
	defer cancel()
	err = r.AlterISR(ctx, p.tp.Topic, p.tp.Partition, st.leaderEpoch, st.isr, isr)
	switch {
	case err == nil:
		b.log.Info("ISR changed", "partition", p.tp.String(), "leader_epoch", st.leaderEpoch, "from", st.isr, "to", isr)
	case errors.Is(err, coordination.ErrStaleState) || b.serveCtx.Err() != nil:
		b.log.Debug("ISR change not made", "partition", p.tp.String(), "isr", isr, "err", err)
	default:
		b.log.Warn("ISR change failed", "partition", p.tp.String(), "isr", isr, "err", err)
	}
}

// shrinkLoop takes followers that fell behind out of the ISR, looking
// every half replica.lag.time.max.ms, until the broker shuts down.
func (b *Broker) shrinkLoop(done func()) {
	defer done()
	lag := b.cfg.ReplicaLagTimeMaxMs
	if lag <= 0 {
		lag = 30 * time.Second
	}
	t := time.NewTicker(max(lag/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.serveCtx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, p := range b.parts.all() {
			st := p.state.Load()
			if !st.leader || len(st.isr) <= 1 || p.log == nil {
				continue
			}
			if out := p.laggards(st, now, lag); out != nil {
				isr := slices.DeleteFunc(slices.Clone(st.isr), func(r int32) bool { return slices.Contains(out, r) })
				b.log.Info("followers fell behind; leaving the ISR", "partition", p.tp.String(), "followers", out, "lag", lag)
				b.alterISR(p, st, isr)
			}
		}
	}
}

// ackState reports whether an acks=all produce whose last offset is last,
// appended at leader epoch epoch, can be answered, and with what error.
func (p *partition) ackState(last int64, epoch int32) (done bool, code int16) {
	st := p.state.Load()
	switch {
	case !st.leader || st.leaderEpoch != epoch:
		return true, kerr.NotLeaderForPartition.Code
	case p.hw.Load() <= last:
		return false, 0
	case int32(len(st.isr)) < st.settings.minInsync:
		return true, kerr.NotEnoughReplicasAfterAppend.Code
	}
	return true, 0
}

// awaitReplicated waits until the high watermark passes last, the offset
// of an append made at leader epoch epoch (acks=all), or ctx ends.
func (p *partition) awaitReplicated(ctx context.Context, last int64, epoch int32) error {
	for {
		ch := p.waitChan()
		if done, code := p.ackState(last, epoch); done {
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
func (b *Broker) stateChanged(p *partition, old, st *partState) {
	if p.log == nil {
		return
	}
	lead := st.leader && (old == nil || !old.leader || old.leaderEpoch != st.leaderEpoch)
	switch {
	case lead:
		b.repl.unfollow(p)
		if err := p.becomeLeader(st); err != nil {
			b.log.Error("recording the leader epoch", "partition", p.tp.String(), "err", err)
		}
		b.log.Debug("leading", "partition", p.tp.String(), "leader_epoch", st.leaderEpoch, "isr", st.isr)
	case st.leader:
		p.updateHW() // the ISR may have changed
	case st.leaderID >= 0:
		p.endLeadership()
		b.repl.follow(p, st)
	default:
		p.endLeadership()
		b.repl.unfollow(p)
	}
	p.wake()
}

// newPartState is the state of partition sp as broker me sees it.
func newPartState(me int32, sp *coordination.Partition, settings topicSettings) *partState {
	return &partState{
		leader:      sp.Leader == me,
		leaderID:    sp.Leader,
		leaderEpoch: sp.LeaderEpoch,
		isr:         sp.ISR,
		replicas:    sp.Replicas,
		settings:    settings,
	}
}
