package broker

// The group coordinator: every consumer group this broker coordinates (a
// single broker coordinates them all), their committed offsets, and their
// persistence through a groupStore (groupstore.go).
//
// Loading: New starts one goroutine that loads the partitions of
// __consumer_offsets in turn (groupStore.Load). A request for a group
// whose partition is not loaded yet is answered
// COORDINATOR_LOAD_IN_PROGRESS (SyncGroup: REBALANCE_IN_PROGRESS, a
// heartbeat: no error, as Kafka does), so no request races a load. A load
// rebuilds each group from its last group record — its members come back
// (Stable, or Empty without members) and are removed if they do not
// heartbeat within their session timeout — and its offsets; a group with
// offsets but no group record comes back Empty with no protocol type (a
// group of simple commits). A failed load is retried after a second.
//
// Writes: every change that is persisted goes through groupStore.Write,
// and the writes of one group are ordered: each waits for the group's
// previous write before it starts (a chain of channels per group id, so a
// group deleted and created again also keeps its order), and the change
// is applied in memory after its write returns, in the same order. A
// request that writes (OffsetCommit, the leader's SyncGroup, a static
// member rejoining while Stable, DeleteGroups, OffsetDelete) writes from
// its later, so the connection goes on reading; writes of the
// coordinator's own (a group becoming Empty, expiry) run on goroutines it
// waits for on close.
//
// Records written: a groupMetaRecord when the leader's SyncGroup brings a
// new assignment (answered once written; a failed write answers every
// member the error and rebalances), when a static member rejoins a Stable
// group, and when a group becomes Empty; offsetRecords for every
// OffsetCommit (answered once written); tombstones of offsets and of the
// group for DeleteGroups, OffsetDelete and expiry.
//
// Expiry: every offsets.retention.check.interval.ms, offsets older than
// offsets.retention.minutes go as Kafka decides (group.expiredOffsets),
// and an Empty group left with no offsets is removed (Dead, with a
// tombstone).
//
// Shutdown: close marks the coordinator inactive (NOT_COORDINATOR), stops
// every timer, cancels loads and background writes, and waits for them.
// Requests waiting in JoinGroup or SyncGroup end with their connection's
// context (NOT_COORDINATOR) before that.
//
// Lock order: group.mu before groupCoordinator.mu; no lock is held across
// a groupStore call.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// groupCoordinator holds the groups and their offsets.
type groupCoordinator struct {
	b     *Broker
	log   *slog.Logger
	store groupStore
	parts int32
	now   func() time.Time

	// ctx is cancelled by close: loads and background writes stop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// stopped is set by close; no timer is armed after it.
	stopped atomic.Bool

	mu     sync.Mutex
	groups map[string]*group
	// owned says, per partition of __consumer_offsets, whether this
	// broker coordinates its groups: it does while it leads the
	// partition, once the partition is loaded. gens count the changes of
	// each, so a load finishing after its partition moved away is
	// dropped.
	owned     []ownership
	gens      []uint64
	allLoaded chan struct{} // closed once every led partition is first loaded
	inactive  bool          // shutting down: requests get NOT_COORDINATOR
	closed    bool          // no background work starts
	tails     map[string]chan struct{}
	expiry    *time.Timer
}

// ownership is what this broker is to one partition's groups.
type ownership uint8

const (
	notLed  ownership = iota // another broker coordinates them
	loading                  // led; its groups load
	loaded                   // led and loaded: served here
)

// newGroupCoordinator starts following the leadership of the partitions of
// __consumer_offsets, loading the groups of those this broker leads in the
// background, and arms the expiry timer.
func newGroupCoordinator(b *Broker, store groupStore) *groupCoordinator {
	c := &groupCoordinator{
		b:         b,
		log:       b.log.With("component", "groups"),
		store:     store,
		now:       time.Now,
		groups:    map[string]*group{},
		allLoaded: make(chan struct{}),
		tails:     map[string]chan struct{}{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.follow(b.coord.Snapshot())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			snap := b.coord.Snapshot()
			select {
			case <-b.coord.Changed(snap.Version):
			case <-c.ctx.Done():
				return
			}
			c.follow(b.coord.Snapshot())
		}
	}()
	c.mu.Lock()
	c.expiry = time.AfterFunc(c.retentionCheckInterval(), c.runExpiry)
	c.mu.Unlock()
	return c
}

// follow starts loading the partitions this broker has come to lead and
// unloads those it no longer leads.
func (c *groupCoordinator) follow(snap *coordination.Snapshot) {
	t := snap.Topics[offsetsTopicName]
	if t == nil {
		return
	}
	if s, ok := c.store.(*offsetsTopicStore); ok {
		s.found(t)
	}
	me := c.b.coord.BrokerID()
	var unloaded []*group
	defer func() {
		// Outside c.mu: the lock order is a group's mutex, then c.mu.
		for _, g := range unloaded {
			g.mu.Lock()
			for _, m := range g.order {
				g.answerJoin(m, joinError(m.id, kerr.NotCoordinator.Code))
				g.answerSync(m, syncError(kerr.NotCoordinator.Code))
			}
			g.stopTimers()
			g.transition(groupDead)
			g.mu.Unlock()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.owned == nil {
		n := c.store.Partitions()
		c.parts = n
		c.owned = make([]ownership, n)
		c.gens = make([]uint64, n)
	}
	for p := range c.parts {
		led := p < int32(len(t.Partitions)) && t.Partitions[p].Leader == me
		switch {
		case led && c.owned[p] == notLed:
			c.owned[p] = loading
			c.gens[p]++
			gen := c.gens[p]
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.load(p, gen)
			}()
		case !led && c.owned[p] != notLed:
			c.owned[p] = notLed
			c.gens[p]++
			unloaded = append(unloaded, c.unloadLocked(p)...)
		}
	}
	c.checkAllLoadedLocked()
}

// checkAllLoadedLocked closes allLoaded once no led partition is loading.
func (c *groupCoordinator) checkAllLoadedLocked() {
	select {
	case <-c.allLoaded:
		return
	default:
	}
	if c.owned == nil {
		return
	}
	for _, o := range c.owned {
		if o == loading {
			return
		}
	}
	close(c.allLoaded)
}

// unloadLocked drops the groups of partition p, which another broker now
// coordinates, and returns them: the caller, without c.mu, answers their
// waiting members NOT_COORDINATOR (they find the new coordinator) and
// stops them.
func (c *groupCoordinator) unloadLocked(p int32) []*group {
	var out []*group
	for id, g := range c.groups {
		if groupPartition(id, c.parts) == p {
			delete(c.groups, id)
			out = append(out, g)
		}
	}
	if len(out) > 0 {
		c.log.Info("unloaded groups: another broker leads their partition", "partition", p, "groups", len(out))
	}
	return out
}

// Config: the values as the config holds them (config.Default has
// Kafka's defaults), guarded only where a zero from a hand-built Config
// would spin.

func (c *groupCoordinator) initialRebalanceDelay() time.Duration {
	return c.b.cfg.GroupInitialRebalanceDelayMs
}

func (c *groupCoordinator) sessionTimeoutBounds() (lo, hi time.Duration) {
	return c.b.cfg.GroupMinSessionTimeoutMs, c.b.cfg.GroupMaxSessionTimeoutMs
}

func (c *groupCoordinator) maxSize() int { return int(c.b.cfg.GroupMaxSize) }

func (c *groupCoordinator) retention() time.Duration { return c.b.cfg.OffsetsRetentionMs }

// retentionCheckInterval is offsets.retention.check.interval.ms; a zero
// (a hand-built Config) would re-arm the expiry timer at once, spinning,
// so it takes the default instead.
func (c *groupCoordinator) retentionCheckInterval() time.Duration {
	if d := c.b.cfg.OffsetsRetentionCheckIntervalMs; d > 0 {
		return d
	}
	return config.Default().OffsetsRetentionCheckIntervalMs
}

// check answers whether a request for group id can be served: 0, or
// NOT_COORDINATOR while shutting down or when another broker leads the
// group's partition, COORDINATOR_LOAD_IN_PROGRESS while it loads, and
// COORDINATOR_NOT_AVAILABLE before __consumer_offsets exists.
func (c *groupCoordinator) check(id string) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked(id)
}

func (c *groupCoordinator) checkLocked(id string) int16 {
	switch {
	case c.inactive:
		return kerr.NotCoordinator.Code
	case c.parts == 0:
		return kerr.CoordinatorNotAvailable.Code
	}
	switch c.owned[groupPartition(id, c.parts)] {
	case notLed:
		return kerr.NotCoordinator.Code
	case loading:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// loading reports whether any partition is still loading.
func (c *groupCoordinator) loading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.owned, loading)
}

func (c *groupCoordinator) isInactive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inactive
}

func (c *groupCoordinator) lookup(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

// getOrCreate returns group id, created if new, or, when this broker does
// not (or no longer) serve it, nil and the code check answers: the
// ownership is checked again under the lock the unloading takes.
func (c *groupCoordinator) getOrCreate(id string) (*group, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.checkLocked(id); code != 0 {
		return nil, code
	}
	g := c.groups[id]
	if g == nil {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	return g, 0
}

// removeGroup drops g from the coordinator (g is Dead); called with g.mu
// held.
func (c *groupCoordinator) removeGroup(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
}

// all returns every group.
func (c *groupCoordinator) all() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// groupWrite is one write of a group's records, ordered after the group's
// earlier writes. Every groupWrite made must be run exactly once.
type groupWrite struct {
	c    *groupCoordinator
	g    *group
	recs []groupRecord
	prev chan struct{} // nil: no earlier write in flight
	done chan struct{}
}

// newWrite queues a write of recs for g; called with g.mu held.
func (c *groupCoordinator) newWrite(g *group, recs []groupRecord) *groupWrite {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newWriteLocked(g, recs)
}

func (c *groupCoordinator) newWriteLocked(g *group, recs []groupRecord) *groupWrite {
	w := &groupWrite{c: c, g: g, recs: recs, prev: c.tails[g.id], done: make(chan struct{})}
	c.tails[g.id] = w.done
	return w
}

// run waits for the group's earlier writes, writes, and then calls apply
// (when not nil) with the group's mutex held and the write's result. The
// earlier writes are waited for whatever ctx does: each of them ends with
// its own context.
func (w *groupWrite) run(ctx context.Context, apply func(err error)) error {
	if w.prev != nil {
		<-w.prev
	}
	err := w.c.store.Write(ctx, w.g.id, w.recs)
	if apply != nil {
		w.g.mu.Lock()
		apply(err)
		w.g.mu.Unlock()
	}
	close(w.done)
	w.c.mu.Lock()
	if w.c.tails[w.g.id] == w.done {
		delete(w.c.tails, w.g.id)
	}
	w.c.mu.Unlock()
	return err
}

// writeInBackground writes recs for g on a goroutine close waits for,
// logging a failure (a group becoming Empty: Kafka only warns too, since
// the previous generation has no live members either). Called with g.mu
// held.
func (c *groupCoordinator) writeInBackground(g *group, recs []groupRecord) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	w := c.newWriteLocked(g, recs)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		if err := w.run(c.ctx, nil); err != nil {
			c.log.Warn("writing group metadata", "group", g.id, "err", err)
		}
	}()
}

// storeErrorCode maps a failed groupStore.Write to the code Kafka answers:
// for an offset commit (commit) or for group metadata.
func storeErrorCode(err error, commit bool) int16 {
	if err == nil {
		return 0
	}
	var code int16
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = kerr.RequestTimedOut.Code
	case errors.Is(err, context.Canceled):
		code = kerr.NotCoordinator.Code
	default:
		code = kafkaerr.Code(err)
	}
	switch code {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.RequestTimedOut.Code:
		if commit {
			return kerr.CoordinatorNotAvailable.Code
		}
		return kerr.RebalanceInProgress.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		if commit {
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	}
	return code
}

// load loads partition p for its ownership generation gen, retrying a
// failed load until it succeeds or p moves away.
func (c *groupCoordinator) load(p int32, gen uint64) {
	if hook := testHookGroupLoad.Load(); hook != nil {
		(*hook)(c.b, p)
	}
	for {
		// The partition manager follows the same snapshots; catch it
		// up, so the partition is open as its leader.
		c.b.parts.sync(c.ctx)
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
func (c *groupCoordinator) current(p int32, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[p] == gen
}

// testHookGroupLoad, if set, is called before each partition of
// __consumer_offsets is loaded (tests hold a load back with it).
var testHookGroupLoad atomic.Pointer[func(b *Broker, partition int32)]

// partitionLoad collects the records of one partition as they replay.
type partitionLoad struct {
	groups  map[string]*groupMetaRecord
	offsets map[string]map[string]map[int32]offsetRecord // group → topic → partition
}

func (l *partitionLoad) loadedOffset(r offsetRecord) {
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
		topics = map[string]map[int32]offsetRecord{}
		l.offsets[r.Group] = topics
	}
	if topics[r.Topic] == nil {
		topics[r.Topic] = map[int32]offsetRecord{}
	}
	topics[r.Topic][r.Partition] = r
}

func (l *partitionLoad) loadedGroup(r groupMetaRecord) {
	if r.Delete {
		delete(l.groups, r.Group)
		return
	}
	l.groups[r.Group] = &r
}

// loadPartition loads one partition and starts serving its groups, unless
// it moved away meanwhile (gen is no longer its generation).
func (c *groupCoordinator) loadPartition(p int32, gen uint64) error {
	l := &partitionLoad{groups: map[string]*groupMetaRecord{}, offsets: map[string]map[string]map[int32]offsetRecord{}}
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
		if len(g.members) > c.maxSize() {
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
func (c *groupCoordinator) loadedGroup(id string, rec *groupMetaRecord, offsets map[string]map[int32]offsetRecord) *group {
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

// runExpiry is the expiry timer's pass; it arms the next one.
func (c *groupCoordinator) runExpiry() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	c.expireOffsets(c.ctx, c.now())
	c.mu.Lock()
	if !c.closed {
		c.expiry = time.AfterFunc(c.retentionCheckInterval(), c.runExpiry)
	}
	c.mu.Unlock()
}

// expireOffsets removes, as of now, the offsets whose retention has
// passed, and the Empty groups left without offsets, writing their
// tombstones. It returns how many offsets it removed.
func (c *groupCoordinator) expireOffsets(ctx context.Context, now time.Time) int {
	removed := 0
	for _, g := range c.all() {
		g.mu.Lock()
		recs := g.expiredOffsets(now, c.retention())
		removed += len(recs)
		if g.state == groupEmpty && !g.hasOffsets() && len(g.pending) == 0 {
			g.transition(groupDead)
			g.stopTimers()
			c.removeGroup(g)
			recs = append(recs, groupRecord{Group: &groupMetaRecord{Group: g.id, Delete: true}})
		}
		var w *groupWrite
		if len(recs) > 0 {
			w = c.newWrite(g, recs)
		}
		g.mu.Unlock()
		if w != nil {
			if err := w.run(ctx, nil); err != nil {
				c.log.Warn("writing expired offsets", "group", g.id, "err", err)
			}
		}
	}
	if removed > 0 {
		c.log.Info("expired offsets", "offsets", removed)
	}
	return removed
}

// stopServing makes every request answer NOT_COORDINATOR (shutdown).
func (c *groupCoordinator) stopServing() {
	c.mu.Lock()
	c.inactive = true
	c.mu.Unlock()
}

// close stops the coordinator: timers, loads and background writes. The
// connections must be done (no request writes any more).
func (c *groupCoordinator) close() {
	c.mu.Lock()
	c.inactive, c.closed = true, true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	c.stopped.Store(true)
	c.cancel()
	for _, g := range c.all() {
		g.mu.Lock()
		g.stopTimers()
		g.mu.Unlock()
	}
	c.wg.Wait()
}
