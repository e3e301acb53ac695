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

	"github.com/strata-broker/strata/coordination"
)

// controller is this broker's part in the controller election, and its
// duties while it holds /controller.
//
// How brokers learn their roles: through ZooKeeper watches, not requests
// from the controller. Every broker mirrors /brokers/topics and the
// partitions' state znodes (cache.go), so the controller's only job is to
// write those znodes: the initial state of new partitions, new leaders and
// smaller ISRs when brokers leave, restart or shut down, preferred leaders
// back in place (auto.leader.rebalance.enable), the end of reassignments,
// and topic deletion. Leaders write their own ISR changes (AlterISR), with
// a version check, so the controller and a leader never overwrite each
// other's state. Every write the controller makes is checked against the
// version of /controller_epoch it bumped when elected, in the same
// ZooKeeper transaction, so a deposed controller that still thinks it
// leads cannot change anything.
type controller struct {
	once   sync.Once
	kickCh chan struct{}

	mu           sync.Mutex
	active       bool
	epoch        int32
	epochVersion int32 // of /controller_epoch
	// shutting are the brokers in a controlled shutdown, with the broker
	// epoch they had then: none is elected or left in an ISR until it
	// registers again (a new epoch) or is gone.
	shutting map[int32]int64

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
	var rebalance <-chan time.Time
	if z.opts.AutoLeaderRebalance {
		t := time.NewTicker(z.opts.LeaderImbalanceCheckInterval)
		defer t.Stop()
		rebalance = t.C
	}
	rebalanceDue := false // until a rebalance succeeds
	for {
		select {
		case <-z.ctx.Done():
			return
		case <-z.ctl.ch():
		case <-retry.C:
		case <-rebalance:
			rebalanceDue, _, _ = z.ctl.state()
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
		err := z.reconcile(m)
		if err == nil && rebalanceDue {
			if err = z.rebalanceLeaders(m); err == nil {
				rebalanceDue = false
			}
		}
		if err != nil {
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
	z.ctl.shutting = nil     // a new term: brokers ask again
	z.ctl.mu.Unlock()
	z.log.Info("became controller", "controller_epoch", epoch+1)
}

// fenced runs ops in one transaction that fails unless this broker's
// controller epoch is still current. It returns the answers to ops (the
// check of the epoch left out); the error of a failed transaction is that
// of the op that failed (zk.ErrBadVersion for a version check), or one
// wrapping coordination.ErrNotController if the epoch moved on.
func (z *ZK) fenced(ops ...any) ([]zk.MultiResponse, error) {
	active, _, version := z.ctl.state()
	if !active {
		return nil, errNotActive
	}
	resp, err := z.conn.Multi(append([]any{&zk.CheckVersionRequest{Path: z.p(pathControllerEpoch), Version: version}}, ops...)...)
	if err != nil {
		if len(resp) > 0 && errors.Is(resp[0].Error, zk.ErrBadVersion) {
			z.ctl.resign(z, "controller epoch moved on")
			return nil, errNotActive
		}
		if _, st, gerr := z.conn.Get(z.p(pathControllerEpoch)); gerr == nil && st.Version != version {
			z.ctl.resign(z, "controller epoch moved on")
		}
		if len(resp) > 0 {
			resp = resp[1:]
		}
		return nil, multiError(resp, err)
	}
	return resp[1:], nil
}

// errNotActive is the error of a controller write by a broker that is no
// longer (or not yet) the controller.
var errNotActive = fmt.Errorf("coordination/zk: %w", coordination.ErrNotController)

// multiError returns the error of the op that failed a transaction,
// rather than the transaction's. The other ops carry no error, or
// ZooKeeper's "rolled back" (RUNTIMEINCONSISTENCY, -2), which the client
// has no name for.
func multiError(resp []zk.MultiResponse, err error) error {
	for _, r := range resp {
		if r.Error != nil && r.Error.Error() != "unknown error: -2" {
			return r.Error
		}
	}
	return err
}

// reconcile makes the znodes say what the cluster needs: deleted topics
// gone, new partitions with a state, every partition led by a live
// in-sync replica where there is one, ISRs rid of the replicas whose
// brokers left, and reassignments completed once their new replicas are
// in sync.
func (z *ZK) reconcile(m *model) error {
	var errs []error
	for _, name := range m.deleting {
		if err := z.deleteTopicZNodes(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := z.deleteISRChanges(); err != nil {
		errs = append(errs, err)
	}
	if z.ctl.brokerEpochs == nil {
		z.ctl.brokerEpochs = maps.Clone(m.brokerEpochs)
	}
	v := z.brokerView(m, func(id int32) bool {
		seen, ok := z.ctl.brokerEpochs[id]
		return ok && seen != m.brokerEpochs[id]
	}, true)
	// A restart is acted on once: the brokers' new epochs are taken as
	// seen, except those of the replicas of a partition whose change
	// failed, which the next pass looks at again (where a restarted
	// leader was already elected again, that costs one more epoch).
	failed := map[int32]bool{}
	for name, t := range m.topics {
		if slices.Contains(m.deleting, name) {
			continue
		}
		if err := z.reconcileTopic(t, v, failed); err != nil {
			errs = append(errs, err)
		}
	}
	seen := maps.Clone(m.brokerEpochs)
	for id := range failed {
		if epoch, ok := z.ctl.brokerEpochs[id]; ok {
			seen[id] = epoch
		} else {
			delete(seen, id)
		}
	}
	z.ctl.brokerEpochs = seen
	return errors.Join(errs...)
}

// reconcileTopic brings one topic's partitions in line with the brokers
// (reconcile); it adds the replicas of the partitions it failed to change
// to failed.
func (z *ZK) reconcileTopic(t *topicModel, v *brokerView, failed map[int32]bool) error {
	_, epoch, _ := z.ctl.state()
	unclean := z.uncleanElection(t)
	var errs []error
	var completed []int
	var nexts []stateZNode // of the completed partitions
	var ops []any
	for p, replicas := range t.replicas {
		s := t.states[p]
		if s == nil {
			// A new partition has no data yet, so every live replica
			// is in sync; the first leads.
			isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return !v.usable(r) })
			if len(isr) == 0 {
				continue // offline until a replica's broker comes
			}
			if err := z.createState(t.name, int32(p), stateZNode{ControllerEpoch: epoch, Leader: isr[0], ISR: isr}); err != nil {
				errs = append(errs, err)
				fail(failed, replicas)
			}
			continue
		}
		if next, changed := nextState(s.stateZNode, replicas, unclean, v); changed {
			next.ControllerEpoch = epoch
			if _, err := z.fenced(&zk.SetDataRequest{Path: z.p(statePath(t.name, int32(p))), Data: encodeState(next), Version: s.version}); err != nil {
				errs = append(errs, fmt.Errorf("changing the state of %s-%d: %w", t.name, p, err))
				fail(failed, replicas, s.ISR...)
				continue
			}
			z.logState(t.name, p, s.stateZNode, next)
			continue
		}
		if !t.reassigning(p) {
			continue
		}
		// A reassignment whose target replicas are all in sync is
		// complete: the state (led by a target replica) and the
		// assignment change together.
		next, ok := completeReassignment(s.stateZNode, replicas, t.removingOf(p), v)
		if !ok {
			continue
		}
		next.ControllerEpoch = epoch
		ops = append(ops, &zk.SetDataRequest{Path: z.p(statePath(t.name, int32(p))), Data: encodeState(next), Version: s.version})
		completed = append(completed, p)
		nexts = append(nexts, next)
	}
	if len(completed) > 0 {
		a := t.topicAssignment
		a.replicas, a.adding, a.removing = slices.Clone(a.replicas), slices.Clone(a.adding), slices.Clone(a.removing)
		for _, p := range completed {
			a.replicas[p] = without(a.replicas[p], a.removingOf(p))
			if p < len(a.adding) {
				a.adding[p] = nil
			}
			if p < len(a.removing) {
				a.removing[p] = nil
			}
		}
		ops = append(ops, &zk.SetDataRequest{Path: z.p(topicPath(t.name)), Data: encodeAssignment(a), Version: t.version})
		if _, err := z.fenced(ops...); err != nil {
			errs = append(errs, fmt.Errorf("completing the reassignment of %s: %w", t.name, err))
			for _, p := range completed {
				fail(failed, t.replicas[p], t.states[p].ISR...)
			}
		} else {
			for i, p := range completed {
				z.logState(t.name, p, t.states[p].stateZNode, nexts[i])
				z.log.Info("completed reassignment", "topic", t.name, "partition", p, "replicas", a.replicas[p])
			}
		}
	}
	return errors.Join(errs...)
}

// fail adds brokers to failed.
func fail(failed map[int32]bool, replicas []int32, more ...int32) {
	for _, r := range replicas {
		failed[r] = true
	}
	for _, r := range more {
		failed[r] = true
	}
}

// logState logs a partition's state change by the controller.
func (z *ZK) logState(topic string, p int, prev, next stateZNode) {
	if next.Leader != prev.Leader || next.LeaderEpoch != prev.LeaderEpoch {
		z.log.Info("elected leader", "topic", topic, "partition", p, "leader", next.Leader, "leader_epoch", next.LeaderEpoch, "isr", next.ISR)
		return
	}
	z.log.Info("changed ISR", "topic", topic, "partition", p, "leader", next.Leader, "isr", next.ISR, "was", prev.ISR)
}

// uncleanElection is unclean.leader.election.enable for topic t: its
// config override, else the broker's.
func (z *ZK) uncleanElection(t *topicModel) bool {
	if s, ok := t.configs["unclean.leader.election.enable"]; ok {
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return z.opts.UncleanLeaderElection
}

// maxISRChangesPerPass bounds the ISR change notifications one pass of
// the controller deletes; more are left to the next pass.
const maxISRChangesPerPass = 1000

// deleteISRChanges deletes the notifications leaders write with their ISR
// changes (/isr_change_notification/isr_change_<n>), as Kafka's
// controller does. This controller needs none of them: it watches the
// partitions' states themselves.
func (z *ZK) deleteISRChanges() error {
	kids, _, err := z.conn.Children(z.p(pathISRChange))
	if err != nil {
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return fmt.Errorf("reading %s: %w", pathISRChange, err)
	}
	if len(kids) > maxISRChangesPerPass {
		kids = kids[:maxISRChangesPerPass]
		defer z.ctl.kick()
	}
	for _, k := range kids {
		if err := z.conn.Delete(z.p(pathISRChange+"/"+k), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("deleting %s/%s: %w", pathISRChange, k, err)
		}
	}
	return nil
}

// createState creates a new partition's state znode.
func (z *ZK) createState(topic string, p int32, s stateZNode) error {
	for _, path := range []string{partitionsPath(topic), partitionPath(topic, p)} {
		if err := z.ensure(z.p(path)); err != nil {
			return err
		}
	}
	_, err := z.fenced(&zk.CreateRequest{Path: z.p(statePath(topic, p)), Data: encodeState(s), Acl: acl})
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
