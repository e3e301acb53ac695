package group

// Loading: one goroutine per partition of __consumer_offsets this broker
// comes to lead replays it (Store.Load) and rebuilds its groups.

import (
	"sync/atomic"
	"time"
)

// load loads partition p for its ownership generation gen, retrying a
// failed load until it succeeds or p moves away.
func (c *Coordinator) load(p int32, gen uint64) {
	if hook := TestHookLoad.Load(); hook != nil {
		(*hook)(p)
	}
	for {
		err := c.loadPartition(p, gen)
		if err == nil {
			return
		}
		if c.ctx.Err() != nil || !c.current(p, gen) {
			return
		}
		c.log.Error("loading groups; retrying", "partition", p, "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// current reports whether gen is still partition p's ownership generation.
func (c *Coordinator) current(p int32, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[p] == gen
}

// TestHookLoad, if set, is called on the loading goroutine before each
// partition of __consumer_offsets is loaded, by every Coordinator (tests
// hold a load back with it). Set it only from tests.
var TestHookLoad atomic.Pointer[func(partition int32)]

// partitionLoad collects the records of one partition as they replay.
type partitionLoad struct {
	groups  map[string]*GroupRecord
	offsets map[string]map[string]map[int32]OffsetRecord // group → topic → partition
}

func (l *partitionLoad) LoadedOffset(r OffsetRecord) {
	if r.Delete {
		delete(l.offsets[r.Group][r.Topic], r.Partition)
		if len(l.offsets[r.Group][r.Topic]) == 0 {
			delete(l.offsets[r.Group], r.Topic)
		}
		if len(l.offsets[r.Group]) == 0 {
			delete(l.offsets, r.Group)
		}
		return
	}
	topics := l.offsets[r.Group]
	if topics == nil {
		topics = map[string]map[int32]OffsetRecord{}
		l.offsets[r.Group] = topics
	}
	if topics[r.Topic] == nil {
		topics[r.Topic] = map[int32]OffsetRecord{}
	}
	topics[r.Topic][r.Partition] = r
}

func (l *partitionLoad) LoadedGroup(r GroupRecord) {
	if r.Delete {
		delete(l.groups, r.Group)
		return
	}
	l.groups[r.Group] = &r
}

// loadPartition loads one partition and starts serving its groups, unless
// it moved away meanwhile (gen is no longer its generation).
func (c *Coordinator) loadPartition(p int32, gen uint64) error {
	l := &partitionLoad{groups: map[string]*GroupRecord{}, offsets: map[string]map[string]map[int32]OffsetRecord{}}
	if err := c.store.Load(c.ctx, p, l); err != nil {
		return err
	}
	var groups []*group
	for id, rec := range l.groups {
		groups = append(groups, c.loadedGroup(id, rec, l.offsets[id]))
	}
	for id, offsets := range l.offsets {
		if l.groups[id] == nil {
			groups = append(groups, c.loadedGroup(id, nil, offsets))
		}
	}
	c.mu.Lock()
	if c.closed || c.gens[p] != gen {
		c.mu.Unlock()
		for _, g := range groups {
			g.mu.Lock()
			g.stopTimers()
			g.mu.Unlock()
		}
		return nil
	}
	for _, g := range groups {
		c.groups[g.id] = g
	}
	c.owned[p] = loaded
	c.checkAllLoadedLocked()
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		for _, m := range g.order {
			g.heartbeat(m)
		}
		if len(g.members) > int(c.cfg.GroupMaxSize) {
			g.prepareRebalance()
		}
		g.mu.Unlock()
	}
	if len(groups) > 0 {
		c.log.Info("loaded groups", "partition", p, "groups", len(groups))
	}
	return nil
}

// loadedGroup rebuilds a group from its last record (nil: none) and its
// offsets.
func (c *Coordinator) loadedGroup(id string, rec *GroupRecord, offsets map[string]map[int32]OffsetRecord) *group {
	g := newGroup(c, id)
	for topic, ps := range offsets {
		g.offsets[topic] = map[int32]*committedOffset{}
		for p, o := range ps {
			g.offsets[topic][p] = &committedOffset{
				offset: o.Offset, leaderEpoch: o.LeaderEpoch, metadata: o.Metadata,
				commitTime: o.CommitTimestamp, expireTime: o.ExpireTimestamp,
			}
		}
	}
	if rec == nil {
		return g
	}
	g.protocolType, g.generation = rec.ProtocolType, rec.Generation
	if rec.StateTimestamp > 0 {
		g.stateTime = time.UnixMilli(rec.StateTimestamp)
	}
	for _, mr := range rec.Members {
		m := &member{
			id:               mr.MemberID,
			instanceID:       mr.InstanceID,
			clientID:         mr.ClientID,
			clientHost:       mr.ClientHost,
			protocolType:     rec.ProtocolType,
			protocols:        []protocol{{name: rec.Protocol, metadata: append([]byte{}, mr.Subscription...)}},
			rebalanceTimeout: time.Duration(mr.RebalanceTimeout) * time.Millisecond,
			sessionTimeout:   time.Duration(mr.SessionTimeout) * time.Millisecond,
			assignment:       append([]byte{}, mr.Assignment...),
		}
		g.members[m.id] = m
		g.order = append(g.order, m)
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
	}
	if len(g.members) == 0 {
		g.state = groupEmpty
		return g
	}
	g.state = groupStable
	g.protocol = rec.Protocol
	g.leader = rec.Leader
	if g.members[g.leader] == nil {
		g.leader = g.order[0].id
	}
	g.subscribed = g.computeSubscribed()
	return g
}
