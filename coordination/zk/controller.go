package zk

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// controller is this broker's part in the controller election, and its
// duties while it holds /controller.
//
// How brokers learn their roles: through ZooKeeper watches, not requests
// from the controller. Every broker mirrors /brokers/topics and the
// partitions' state znodes (cache.go), so the controller's only job is to
// write those znodes: the initial state of new partitions, new leaders
// when a leader's broker is gone, and topic deletion. Every write the
// controller makes is checked against the version of /controller_epoch it
// bumped when elected, in the same ZooKeeper transaction, so a deposed
// controller that still thinks it leads cannot change anything.
type controller struct {
	once   sync.Once
	kickCh chan struct{}

	mu           sync.Mutex
	active       bool
	epoch        int32
	epochVersion int32 // of /controller_epoch

	// brokerEpochs are the broker epochs the controller has acted on
	// (controller loop only): a leader whose epoch changed restarted, and
	// its partitions get a new leader epoch even though it leads again.
	brokerEpochs map[int32]int64
}

func (c *controller) ch() chan struct{} {
	c.once.Do(func() { c.kickCh = make(chan struct{}, 1) })
	return c.kickCh
}

// kick asks the controller loop to look at the cluster again.
func (c *controller) kick() {
	select {
	case c.ch() <- struct{}{}:
	default:
	}
}

func (c *controller) state() (active bool, epoch, epochVersion int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active, c.epoch, c.epochVersion
}

// resign stops acting as controller.
func (c *controller) resign(z *ZK, why string) {
	c.mu.Lock()
	was := c.active
	c.active = false
	c.mu.Unlock()
	if was {
		z.log.Info("no longer controller", "reason", why)
	}
}

// controllerLoop stands for controller when there is none, and acts as
// controller while elected.
func (z *ZK) controllerLoop() {
	defer z.wg.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-z.ctx.Done():
			return
		case <-z.ctl.ch():
		case <-retry.C:
		}
		m := z.currentModel()
		if m == nil {
			continue
		}
		active, _, _ := z.ctl.state()
		if _, live := m.brokers[m.controller]; !live && !active {
			if _, registered := m.brokers[z.brokerID]; !registered {
				continue // only a member of the cluster stands
			}
			z.elect()
			continue // the election's znode write brings a new model
		}
		if m.controller != z.brokerID {
			// A model from before this broker's election names no
			// controller yet; one naming another broker means this
			// one lost the office.
			if m.controller >= 0 {
				z.ctl.resign(z, fmt.Sprintf("broker %d is controller", m.controller))
			}
			continue
		}
		if !active {
			continue
		}
		if err := z.reconcile(m); err != nil {
			if z.ctx.Err() != nil {
				return
			}
			z.log.Warn("controller: applying the cluster's changes; retrying", "err", err)
			retry.Reset(500 * time.Millisecond)
		}
	}
}

// elect tries to become controller: it creates /controller and bumps
// /controller_epoch in one transaction.
func (z *ZK) elect() {
	data, st, err := z.conn.Get(z.p(pathControllerEpoch))
	if errors.Is(err, zk.ErrNoNode) {
		if _, err = z.conn.Create(z.p(pathControllerEpoch), []byte("0"), 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			z.log.Warn("controller election", "err", err)
			return
		}
		data, st, err = z.conn.Get(z.p(pathControllerEpoch))
	}
	if err != nil {
		z.log.Warn("controller election", "err", err)
		return
	}
	epoch, err := strconv.ParseInt(string(data), 10, 32)
	if err != nil {
		z.log.Error("controller election: unreadable /controller_epoch", "data", string(data))
		return
	}
	resp, err := z.conn.Multi(
		&zk.CreateRequest{Path: z.p(pathController), Data: encodeController(z.brokerID, time.Now()), Acl: acl, Flags: zk.FlagEphemeral},
		&zk.SetDataRequest{Path: z.p(pathControllerEpoch), Data: []byte(strconv.Itoa(int(epoch + 1))), Version: st.Version},
	)
	if err != nil {
		// Another broker won (NodeExists) or bumped the epoch first.
		return
	}
	z.ctl.mu.Lock()
	z.ctl.active, z.ctl.epoch, z.ctl.epochVersion = true, int32(epoch+1), resp[1].Stat.Version
	z.ctl.brokerEpochs = nil // taken from the first model it acts on
	z.ctl.mu.Unlock()
	z.log.Info("became controller", "controller_epoch", epoch+1)
}

// fenced runs ops in one transaction that fails unless this broker's
// controller epoch is still current.
func (z *ZK) fenced(ops ...any) error {
	active, _, version := z.ctl.state()
	if !active {
		return errors.New("not controller")
	}
	_, err := z.conn.Multi(append([]any{&zk.CheckVersionRequest{Path: z.p(pathControllerEpoch), Version: version}}, ops...)...)
	if err != nil {
		if _, st, gerr := z.conn.Get(z.p(pathControllerEpoch)); gerr == nil && st.Version != version {
			z.ctl.resign(z, "controller epoch moved on")
		}
	}
	return err
}

// reconcile makes the znodes say what the cluster needs: deleted topics
// gone, new partitions with a state, every partition led by a live
// in-sync replica where there is one.
func (z *ZK) reconcile(m *model) error {
	var errs []error
	for _, name := range m.deleting {
		if err := z.deleteTopicZNodes(name); err != nil {
			errs = append(errs, err)
		}
	}
	_, epoch, _ := z.ctl.state()
	if z.ctl.brokerEpochs == nil {
		z.ctl.brokerEpochs = maps.Clone(m.brokerEpochs)
	}
	bounced := func(id int32) bool {
		seen, ok := z.ctl.brokerEpochs[id]
		return ok && seen != m.brokerEpochs[id]
	}
	for name, t := range m.topics {
		if slices.Contains(m.deleting, name) {
			continue
		}
		for p, replicas := range t.assignment {
			var live []int32
			for _, r := range replicas {
				if _, ok := m.brokers[r]; ok {
					live = append(live, r)
				}
			}
			s := t.states[p]
			if s == nil {
				if len(live) == 0 {
					continue // offline until a replica's broker comes
				}
				// Only the leader is in sync at first: a follower
				// joins the ISR once it has caught up, so a
				// failover never elects a replica without the data.
				if err := z.createState(name, int32(p), stateZNode{ControllerEpoch: epoch, Leader: live[0], ISR: live[:1]}); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if _, ok := m.brokers[s.Leader]; ok && !bounced(s.Leader) {
				continue
			}
			// The leader's broker is gone, or restarted (a new
			// leadership): the first live replica in the ISR leads,
			// or none.
			leader := int32(-1)
			for _, r := range live {
				if slices.Contains(s.ISR, r) {
					leader = r
					break
				}
			}
			if leader == -1 && s.Leader == -1 {
				continue
			}
			next := stateZNode{ControllerEpoch: epoch, Leader: leader, LeaderEpoch: s.LeaderEpoch + 1, ISR: s.ISR}
			if leader >= 0 {
				next.ISR = slices.DeleteFunc(slices.Clone(s.ISR), func(r int32) bool { _, ok := m.brokers[r]; return !ok })
			}
			err := z.fenced(&zk.SetDataRequest{Path: z.p(statePath(name, int32(p))), Data: encodeState(next), Version: s.version})
			if err != nil {
				errs = append(errs, fmt.Errorf("electing a leader of %s-%d: %w", name, p, err))
				continue
			}
			z.log.Info("elected leader", "topic", name, "partition", p, "leader", leader, "leader_epoch", next.LeaderEpoch, "isr", next.ISR)
		}
	}
	if len(errs) == 0 {
		z.ctl.brokerEpochs = maps.Clone(m.brokerEpochs)
	}
	return errors.Join(errs...)
}

// createState creates a new partition's state znode.
func (z *ZK) createState(topic string, p int32, s stateZNode) error {
	for _, path := range []string{partitionsPath(topic), partitionPath(topic, p)} {
		if err := z.ensure(z.p(path)); err != nil {
			return err
		}
	}
	err := z.fenced(&zk.CreateRequest{Path: z.p(statePath(topic, p)), Data: encodeState(s), Acl: acl})
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("creating the state of %s-%d: %w", topic, p, err)
	}
	return nil
}

// deleteTopicZNodes removes a topic marked for deletion: its partitions'
// states, its assignment, its config, and then the mark. Brokers delete
// the topic's logs when they see it gone.
func (z *ZK) deleteTopicZNodes(name string) error {
	// A model can trail ZooKeeper: only a topic still marked is deleted
	// (its name cannot be taken again before the mark goes, last).
	if marked, _, err := z.conn.Exists(z.p(deletePath(name))); err != nil {
		return fmt.Errorf("deleting topic %s: %w", name, err)
	} else if !marked {
		return nil
	}
	if err := z.deleteTree(z.p(topicPath(name))); err != nil {
		return fmt.Errorf("deleting topic %s: %w", name, err)
	}
	if err := z.conn.Delete(z.p(configPath(name)), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("deleting topic %s: %w", name, err)
	}
	if err := z.conn.Delete(z.p(deletePath(name)), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("deleting topic %s: %w", name, err)
	}
	z.log.Info("deleted topic", "topic", name)
	return nil
}

// deleteTree deletes path and everything below it.
func (z *ZK) deleteTree(path string) error {
	kids, _, err := z.conn.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := z.deleteTree(path + "/" + k); err != nil {
			return err
		}
	}
	if err := z.conn.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}
