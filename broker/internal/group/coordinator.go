package group

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

// Options configure a Coordinator.
type Options struct {
	// Config holds the group keys, read as they are (config.Default has
	// Kafka's defaults): group.initial.rebalance.delay.ms,
	// group.min.session.timeout.ms, group.max.session.timeout.ms,
	// group.max.size, offsets.retention.minutes,
	// offsets.retention.check.interval.ms, offset.metadata.max.bytes,
	// and offsets.topic.num.partitions and
	// offsets.topic.replication.factor for creating __consumer_offsets.
	Config config.Config
	// Coordinator holds the cluster metadata: who leads the partitions
	// of __consumer_offsets (this broker coordinates the groups of those
	// it leads), the topics commits name, and where the topic is
	// created. Required.
	Coordinator coordination.Coordinator
	// Store persists the groups and their offsets (OpenStore). Required.
	Store Store
	// Logger receives the coordinator's logs. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock of commit timestamps, state times and expiry.
	// Default: time.Now.
	Now func() time.Time
}

// EnsureDefaults fills in the defaults of the fields that no config key
// holds, and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Coordinator holds the groups this broker coordinates and their offsets.
type Coordinator struct {
	cfg   config.Config
	coord coordination.Coordinator
	log   *slog.Logger
	store Store
	now   func() time.Time
	parts int32

	// ctx is cancelled by Close: loads and background writes stop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// stopped is set by Close; no timer is armed after it.
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

// New starts a coordinator: it follows the leadership of the partitions
// of __consumer_offsets, loading the groups of those this broker leads in
// the background (until a group's partition is loaded its requests answer
// COORDINATOR_LOAD_IN_PROGRESS), and arms the expiry timer. Close stops
// it.
func New(opts Options) *Coordinator {
	opts.EnsureDefaults()
	c := &Coordinator{
		cfg:       opts.Config,
		coord:     opts.Coordinator,
		log:       opts.Logger,
		store:     opts.Store,
		now:       opts.Now,
		groups:    map[string]*group{},
		allLoaded: make(chan struct{}),
		tails:     map[string]chan struct{}{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.follow(c.coord.Snapshot())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			snap := c.coord.Snapshot()
			select {
			case <-c.coord.Changed(snap.Version):
			case <-c.ctx.Done():
				return
			}
			c.follow(c.coord.Snapshot())
		}
	}()
	c.mu.Lock()
	c.expiry = time.AfterFunc(c.retentionCheckInterval(), c.runExpiry)
	c.mu.Unlock()
	return c
}

// follow starts loading the partitions this broker has come to lead and
// unloads those it no longer leads.
func (c *Coordinator) follow(snap *coordination.Snapshot) {
	t := snap.Topics[TopicName]
	if t == nil {
		return
	}
	if s, ok := c.store.(*offsetStore); ok {
		s.found(t)
	}
	me := c.coord.BrokerID()
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
func (c *Coordinator) checkAllLoadedLocked() {
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
func (c *Coordinator) unloadLocked(p int32) []*group {
	var out []*group
	for id, g := range c.groups {
		if PartitionFor(id, c.parts) == p {
			delete(c.groups, id)
			out = append(out, g)
		}
	}
	if len(out) > 0 {
		c.log.Info("unloaded groups: another broker leads their partition", "partition", p, "groups", len(out))
	}
	return out
}

// Loaded returns a channel that is closed the first time every partition
// of __consumer_offsets this broker leads has been loaded.
func (c *Coordinator) Loaded() <-chan struct{} { return c.allLoaded }

// retentionCheckInterval is offsets.retention.check.interval.ms; a zero
// (a hand-built Config) would re-arm the expiry timer at once, spinning,
// so it takes the default instead.
func (c *Coordinator) retentionCheckInterval() time.Duration {
	if d := c.cfg.OffsetsRetentionCheckIntervalMs; d > 0 {
		return d
	}
	return config.Default().OffsetsRetentionCheckIntervalMs
}

// check answers whether a request for group id can be served: 0, or
// NOT_COORDINATOR while shutting down or when another broker leads the
// group's partition, COORDINATOR_LOAD_IN_PROGRESS while it loads, and
// COORDINATOR_NOT_AVAILABLE before __consumer_offsets exists.
func (c *Coordinator) check(id string) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked(id)
}

func (c *Coordinator) checkLocked(id string) int16 {
	switch {
	case c.inactive:
		return kerr.NotCoordinator.Code
	case c.parts == 0:
		return kerr.CoordinatorNotAvailable.Code
	}
	switch c.owned[PartitionFor(id, c.parts)] {
	case notLed:
		return kerr.NotCoordinator.Code
	case loading:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// loading reports whether any partition is still loading.
func (c *Coordinator) loading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.owned, loading)
}

func (c *Coordinator) isInactive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inactive
}

func (c *Coordinator) lookup(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

// getOrCreate returns group id, created if new, or, when this broker does
// not (or no longer) serve it, nil and the code check answers: the
// ownership is checked again under the lock the unloading takes.
func (c *Coordinator) getOrCreate(id string) (*group, int16) {
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
func (c *Coordinator) removeGroup(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
}

// all returns every group.
func (c *Coordinator) all() []*group {
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
	c    *Coordinator
	g    *group
	recs []Record
	prev chan struct{} // nil: no earlier write in flight
	done chan struct{}
}

// newWrite queues a write of recs for g; called with g.mu held.
func (c *Coordinator) newWrite(g *group, recs []Record) *groupWrite {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newWriteLocked(g, recs)
}

func (c *Coordinator) newWriteLocked(g *group, recs []Record) *groupWrite {
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

// writeInBackground writes recs for g on a goroutine Close waits for,
// logging a failure (a group becoming Empty: Kafka only warns too, since
// the previous generation has no live members either). Called with g.mu
// held.
func (c *Coordinator) writeInBackground(g *group, recs []Record) {
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

// storeErrorCode maps a failed Store.Write to the code Kafka answers:
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

// StopServing makes every request answer NOT_COORDINATOR (the broker is
// shutting down).
func (c *Coordinator) StopServing() {
	c.mu.Lock()
	c.inactive = true
	c.mu.Unlock()
}

// Close stops the coordinator: timers, loads and background writes. No
// request may be running (none writes any more): the waits JoinGroup,
// SyncGroup and the writing requests return must have ended.
func (c *Coordinator) Close() {
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
