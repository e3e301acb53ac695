package zk

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/strata-broker/strata/coordination"
)

// The cache mirrors the cluster's znodes through one-shot watches: a znode
// read once stays cached while its watch is armed (no change since), so a
// refresh reads again only what changed. A fired watch marks the cache
// dirty, and the refresh loop rebuilds the model and the Snapshot from it.
type cache struct {
	dirty chan struct{} // cap 1

	nodeMu sync.Mutex
	nodes  map[string]*cachedNode // by path under the chroot, while armed

	mu      sync.Mutex
	model   *model
	version int64
	changed chan struct{}
	// modelChanged is closed and replaced whenever a refresh stores a
	// model, also one that leaves the Snapshot as it was.
	modelChanged chan struct{}
	ready        chan struct{} // closed with the first snapshot
	snap         atomic.Pointer[coordination.Snapshot]
}

// cachedNode is a znode's data, or its children, as last read.
type cachedNode struct {
	exists   bool
	data     []byte
	version  int32
	czxid    int64 // the transaction that created it
	children []string
	// stale is set (under nodeMu) when the node's watch fires, even if
	// that happens before the node is stored in the cache.
	stale bool
}

// model is the cluster as the znodes say, with what the controller needs
// beyond the Snapshot (the znodes' versions).
type model struct {
	controller int32
	brokers    map[int32]coordination.Broker
	// brokerEpochs are the brokers' registrations' creating
	// transactions, as Kafka's broker epochs: a broker that restarted
	// has a new one.
	brokerEpochs map[int32]int64
	topics       map[string]*topicModel
	deleting     []string        // /admin/delete_topics
	unreadable   map[string]bool // topics whose znode does not decode
}

type topicModel struct {
	name string
	topicAssignment
	version int32 // of /brokers/topics/<topic>
	configs map[string]string
	states  []*partitionState // nil: no state znode yet
}

type partitionState struct {
	stateZNode
	version int32 // of the state znode
}

func (c *cache) init() {
	c.dirty = make(chan struct{}, 1)
	c.nodes = map[string]*cachedNode{}
	c.changed = make(chan struct{})
	c.modelChanged = make(chan struct{})
	c.ready = make(chan struct{})
}

func (z *ZK) markDirty() {
	select {
	case z.dirty <- struct{}{}:
	default:
	}
}

// refreshLoop rebuilds the snapshot whenever a watch fired, retrying with
// backoff while ZooKeeper cannot be reached (the last snapshot stays).
func (z *ZK) refreshLoop() {
	defer z.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-z.ctx.Done():
			return
		case <-z.dirty:
		}
		if err := z.refresh(); err != nil {
			if z.ctx.Err() != nil {
				return
			}
			z.log.Warn("reading the cluster metadata from ZooKeeper; retrying", "err", err, "backoff", backoff)
			if !z.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			z.markDirty()
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// watch arms a one-shot watch on path, whose firing forgets the cached
// node and marks the cache dirty.
func (z *ZK) watch(key string, n *cachedNode, ch <-chan zk.Event) {
	go func() {
		select {
		case <-ch:
		case <-z.ctx.Done():
			return
		}
		z.nodeMu.Lock()
		n.stale = true
		if z.nodes[key] == n {
			delete(z.nodes, key)
		}
		z.nodeMu.Unlock()
		z.markDirty()
	}()
}

// cached returns the node cached under key, if its watch has not fired.
func (z *ZK) cached(key string) *cachedNode {
	z.nodeMu.Lock()
	defer z.nodeMu.Unlock()
	if n := z.nodes[key]; n != nil && !n.stale {
		return n
	}
	return nil
}

// store caches n under key and arms its watch.
func (z *ZK) store(key string, n *cachedNode, ch <-chan zk.Event) {
	z.nodeMu.Lock()
	z.nodes[key] = n
	z.nodeMu.Unlock()
	z.watch(key, n, ch)
}

// get returns path's data (exists false if there is no such znode), from
// the cache while its watch is armed, else read with a new watch.
func (z *ZK) get(path string, visited map[string]bool) (*cachedNode, error) {
	key := "n" + path
	visited[key] = true
	if n := z.cached(key); n != nil {
		return n, nil
	}
	var n *cachedNode
	data, st, ch, err := z.conn.GetW(z.p(path))
	switch {
	case err == nil:
		n = &cachedNode{exists: true, data: data, version: st.Version, czxid: st.Czxid}
	case errors.Is(err, zk.ErrNoNode):
		var ok bool
		ok, st, ch, err = z.conn.ExistsW(z.p(path))
		if err != nil {
			return nil, err
		}
		n = &cachedNode{}
		if ok {
			// Created in between: the exists watch covers its
			// changes from here on.
			data, st, err := z.conn.Get(z.p(path))
			switch {
			case err == nil:
				n = &cachedNode{exists: true, data: data, version: st.Version, czxid: st.Czxid}
			case !errors.Is(err, zk.ErrNoNode):
				return nil, err
			}
		}
	default:
		return nil, err
	}
	z.store(key, n, ch)
	return n, nil
}

// children returns path's children, sorted, cached like get.
func (z *ZK) children(path string, visited map[string]bool) ([]string, error) {
	key := "c" + path
	visited[key] = true
	if n := z.cached(key); n != nil {
		return n.children, nil
	}
	kids, _, ch, err := z.conn.ChildrenW(z.p(path))
	if err != nil {
		return nil, err
	}
	slices.Sort(kids)
	z.store(key, &cachedNode{exists: true, children: kids}, ch)
	return kids, nil
}

// refresh rebuilds the model from the znodes (reading only what changed)
// and publishes a new Snapshot if the cluster looks different.
func (z *ZK) refresh() error {
	visited := map[string]bool{}
	m := &model{controller: -1, brokers: map[int32]coordination.Broker{}, brokerEpochs: map[int32]int64{}, topics: map[string]*topicModel{}}
	n, err := z.get(pathController, visited)
	if err != nil {
		return err
	}
	if n.exists {
		if m.controller, err = decodeController(n.data); err != nil {
			z.log.Warn("unreadable controller znode", "err", err)
			m.controller = -1
		}
	}
	ids, err := z.children(pathBrokerIDs, visited)
	if err != nil {
		return err
	}
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			continue
		}
		n, err := z.get(brokerPath(int32(id)), visited)
		if err != nil {
			return err
		}
		if !n.exists {
			continue
		}
		b, err := decodeBroker(int32(id), n.data)
		if err != nil {
			z.log.Warn("unreadable broker registration", "err", err)
			continue
		}
		m.brokers[b.ID] = b
		m.brokerEpochs[b.ID] = n.czxid
	}
	names, err := z.children(pathTopics, visited)
	if err != nil {
		return err
	}
	prev := z.currentModel()
	for _, name := range names {
		t, unreadable, err := z.readTopic(name, visited)
		if err != nil {
			return err
		}
		switch {
		case t != nil:
			m.topics[name] = t
		case unreadable && prev != nil && prev.topics[name] != nil:
			m.topics[name] = prev.topics[name] // as last read
		case unreadable:
			if m.unreadable == nil {
				m.unreadable = map[string]bool{}
			}
			m.unreadable[name] = true
		}
	}
	if m.deleting, err = z.children(pathDeleteTopics, visited); err != nil {
		return err
	}
	// Forget what no longer belongs to the cluster (deleted topics).
	z.nodeMu.Lock()
	for key := range z.nodes {
		if !visited[key] {
			delete(z.nodes, key)
		}
	}
	z.nodeMu.Unlock()
	z.publish(m)
	return nil
}

// readTopic reads a topic's znodes; unreadable reports a topic znode that
// does not decode.
func (z *ZK) readTopic(name string, visited map[string]bool) (t *topicModel, unreadable bool, err error) {
	n, err := z.get(topicPath(name), visited)
	if err != nil || !n.exists {
		return nil, false, err
	}
	a, err := decodeTopic(name, n.data)
	if err != nil {
		z.log.Error("unreadable topic znode; the topic's logs are left alone", "topic", name, "err", err)
		return nil, true, nil
	}
	t = &topicModel{name: name, topicAssignment: a, version: n.version, states: make([]*partitionState, len(a.replicas))}
	cn, err := z.get(configPath(name), visited)
	if err != nil {
		return nil, false, err
	}
	if cn.exists {
		var c configZNode
		if err := json.Unmarshal(cn.data, &c); err != nil {
			z.log.Warn("unreadable topic config znode; using defaults", "topic", name, "err", err)
		} else if len(c.Config) > 0 {
			t.configs = c.Config
		}
	}
	for p := range a.replicas {
		sn, err := z.get(statePath(name, int32(p)), visited)
		if err != nil {
			return nil, false, err
		}
		if !sn.exists {
			continue
		}
		var s stateZNode
		if err := json.Unmarshal(sn.data, &s); err != nil {
			z.log.Warn("unreadable partition state znode", "topic", name, "partition", p, "err", err)
			continue
		}
		t.states[p] = &partitionState{stateZNode: s, version: sn.version}
	}
	return t, false, nil
}

// publish stores m and, if the cluster it describes differs from the last
// Snapshot, a new Snapshot.
func (z *ZK) publish(m *model) {
	snap := &coordination.Snapshot{
		ClusterID:    z.clusterID,
		ControllerID: m.controller,
		Topics:       make(map[string]*coordination.Topic, len(m.topics)),
		TopicsByID:   make(map[coordination.TopicID]*coordination.Topic, len(m.topics)),
		Unreadable:   m.unreadable,
	}
	for _, b := range m.brokers {
		snap.Brokers = append(snap.Brokers, b)
	}
	slices.SortFunc(snap.Brokers, func(a, b coordination.Broker) int { return cmp.Compare(a.ID, b.ID) })
	if _, ok := m.brokers[m.controller]; !ok {
		snap.ControllerID = -1
	}
	for name, tm := range m.topics {
		t := &coordination.Topic{Name: name, ID: tm.id, Internal: slices.Contains(internalTopics, name), Configs: tm.configs}
		for p, replicas := range tm.replicas {
			sp := coordination.Partition{Index: int32(p), Replicas: replicas, Leader: -1, LeaderEpoch: -1,
				AddingReplicas: tm.addingOf(p), RemovingReplicas: tm.removingOf(p)}
			if s := tm.states[p]; s != nil {
				sp.ISR, sp.LeaderEpoch = s.ISR, s.LeaderEpoch
				// A leader whose broker is gone leads nothing, even
				// before the controller has elected another.
				if _, live := m.brokers[s.Leader]; live {
					sp.Leader = s.Leader
				}
			}
			t.Partitions = append(t.Partitions, sp)
		}
		snap.Topics[name] = t
		snap.TopicsByID[t.ID] = t
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.model = m
	close(z.modelChanged)
	z.modelChanged = make(chan struct{})
	old := z.snap.Load()
	if old != nil && sameSnapshot(old, snap) {
		z.ctl.kick()
		return
	}
	z.version++
	snap.Version = z.version
	z.snap.Store(snap)
	close(z.changed)
	z.changed = make(chan struct{})
	if old == nil {
		close(z.ready)
	}
	z.ctl.kick()
}

func sameSnapshot(a, b *coordination.Snapshot) bool {
	return a.ControllerID == b.ControllerID && reflect.DeepEqual(a.Brokers, b.Brokers) && maps.Equal(a.Unreadable, b.Unreadable) &&
		maps.EqualFunc(a.Topics, b.Topics, func(x, y *coordination.Topic) bool { return reflect.DeepEqual(x, y) })
}

// currentModel returns the last model read.
func (z *ZK) currentModel() *model {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.model
}

// waitSnapshot waits for the first snapshot.
func (z *ZK) waitSnapshot(ctx context.Context) error {
	t := time.NewTimer(z.opts.ConnectionTimeout)
	defer t.Stop()
	select {
	case <-z.ready:
		return nil
	case <-t.C:
		return fmt.Errorf("coordination/zk: could not read the cluster metadata within %v", z.opts.ConnectionTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor waits until the snapshot (or the model behind it) satisfies
// ok, or ctx ends.
func (z *ZK) waitFor(ctx context.Context, ok func(*coordination.Snapshot) bool) bool {
	for {
		z.mu.Lock()
		changed := z.modelChanged
		z.mu.Unlock()
		if ok(z.Snapshot()) {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-z.ctx.Done():
			return false
		}
	}
}

// Snapshot implements coordination.Coordinator.
func (z *ZK) Snapshot() *coordination.Snapshot { return z.snap.Load() }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Changed implements coordination.Coordinator.
func (z *ZK) Changed(version int64) <-chan struct{} {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.version > version {
		return closedChan
	}
	return z.changed
}
