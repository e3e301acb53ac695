//go:build linux

package e2e

// Cluster tests: a real ZooKeeper (zktest, Debian's package) and three
// `strata serve` processes joined by zookeeper.connect, each with its own
// broker.id and log dir, checked with franz-go, kafka-python and the
// ZooKeeper layout read directly (coordination/zk/doc.go).
//
// zktest needs Linux (its JVM dies with the test through Pdeathsig), hence
// the build constraint.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestClusterSeed(t *testing.T) {
	t.Parallel()
	py := python(t, "kafka", "python3-kafka")
	const topicsEnv = "KAFKA_CREATE_TOPICS=Topic1:3:2,Topic2:2:2"
	c := newCluster(t, "/strata")
	// Leadership goes back to the preferred replicas soon after the
	// restarts below moved it away (auto.leader.rebalance.enable).
	c.overrides = []string{"leader.imbalance.check.interval.seconds=1"}
	c.startAll([]string{topicsEnv})
	topics := map[string]int{"Topic1": 3, "Topic2": 2}
	created := c.waitMetadata(topics)

	// Brokers 1 and 2 given KAFKA_CREATE_TOPICS as well: they find the
	// topics there. Their attempt may run in the background (once the
	// membership has settled), so the topics are compared with created
	// again at the end of the test, after the checks below.
	for _, id := range []int32{1, 2} {
		c.stop(id)
		c.start(id, []string{topicsEnv}, false)
	}
	c.waitRegistered()
	// Each stop moved its leaderships to the other replicas (controlled
	// shutdown); the controller hands them back to the preferred ones.
	eventually(t, clusterSettle, "every partition is led by its preferred replica again", func() error {
		v, err := metadataOf(c.addrs()[0], slices.Sorted(maps.Keys(topics)))
		if err != nil {
			return err
		}
		for name := range topics {
			for p, pv := range v.Topics[name].Partitions {
				if len(pv.Replicas) == 0 || pv.Leader != pv.Replicas[0] {
					return fmt.Errorf("%s/%d: leader %d, replicas %v", name, p, pv.Leader, pv.Replicas)
				}
			}
		}
		return nil
	})
	// The restarted brokers catch up and rejoin the ISRs; the view the
	// checks below compare with ZooKeeper is taken once they have.
	for name := range topics {
		c.waitFullISR(name, 2)
	}
	view := c.waitMetadata(topics)

	// Placement: round-robin from a random start over the three brokers
	// registered when broker 3 created the topics.
	if ls := leadersOf(view, "Topic1"); !slices.Equal(slices.Sorted(slices.Values(ls)), []int32{1, 2, 3}) {
		t.Errorf("Topic1's partitions are led by %v, want three distinct leaders (one per broker)", ls)
	}
	if ls := leadersOf(view, "Topic2"); ls[0] == ls[1] {
		t.Errorf("Topic2's partitions are both led by %d, want two distinct leaders", ls[0])
	}
	for name := range topics {
		for p, pv := range view.Topics[name].Partitions {
			if len(pv.Replicas) != 2 || pv.Replicas[0] != pv.Leader || pv.Replicas[0] == pv.Replicas[1] {
				t.Errorf("%s/%d: leader %d replicas %v isr %v, want two replicas, the first leading, both in sync", name, p, pv.Leader, pv.Replicas, pv.ISR)
			}
		}
	}

	// Controller and cluster id, in ZooKeeper and in every broker's
	// Metadata.
	ctl, epoch, err := c.controller()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.brokers[ctl]; !ok {
		t.Errorf("/controller names broker %d, not one of 1, 2, 3", ctl)
	}
	if epoch < 1 {
		t.Errorf("/controller_epoch is %d, want at least 1 (one election)", epoch)
	}
	var cid struct {
		Version string `json:"version"`
		ID      string `json:"id"`
	}
	if err := c.zjson("/cluster/id", &cid); err != nil {
		t.Fatal(err)
	}
	if cid.Version != "1" || cid.ID == "" {
		t.Errorf(`/cluster/id is %+v, want {"version":"1","id":"<cluster id>"}`, cid)
	}
	for id, v := range c.checkController(ctl) {
		if v.ClusterID != cid.ID {
			t.Errorf("broker %d's Metadata has cluster id %q, /cluster/id holds %q", id, v.ClusterID, cid.ID)
		}
	}
	func() { // and as kadm reads it
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		md, err := kadm.NewClient(cl).Metadata(ctx)
		if err != nil {
			t.Fatalf("kadm Metadata: %v", err)
		}
		if md.Cluster != cid.ID {
			t.Errorf("kadm Metadata: cluster %q, /cluster/id holds %q", md.Cluster, cid.ID)
		}
		if len(md.Brokers) != 3 {
			t.Errorf("kadm Metadata: brokers %v, want 1, 2 and 3", md.Brokers.NodeIDs())
		}
	}()

	// The layout, below the chroot only.
	if ok, _, err := c.conn.Exists("/brokers"); err != nil || ok {
		t.Errorf("/brokers exists outside the chroot %s (%v): zookeeper.connect's chroot is not used", c.chroot, err)
	}
	if ids, err := c.registered(); err != nil || !slices.Equal(ids, []int32{1, 2, 3}) {
		t.Errorf("/brokers/ids: %v %v, want 1, 2, 3", ids, err)
	}
	for id, b := range c.brokers {
		var reg struct {
			Version   int      `json:"version"`
			Host      string   `json:"host"`
			Port      int      `json:"port"`
			Endpoints []string `json:"endpoints"`
		}
		path := fmt.Sprintf("/brokers/ids/%d", id)
		if err := c.zjson(path, &reg); err != nil {
			t.Error(err)
			continue
		}
		host, port, _ := net.SplitHostPort(b.Addr)
		if reg.Version != 5 || reg.Host != host || strconv.Itoa(reg.Port) != port || !slices.Equal(reg.Endpoints, []string{"PLAINTEXT://" + b.Addr}) {
			data, _ := c.zget(path)
			t.Errorf("%s is %s; want version 5, host %s, port %s, endpoints [PLAINTEXT://%s] (the address broker %d serves on)", path, data, host, port, b.Addr, id)
		}
	}
	for name, n := range topics {
		var tz struct {
			Version    int                `json:"version"`
			TopicID    string             `json:"topic_id"`
			Partitions map[string][]int32 `json:"partitions"`
		}
		if err := c.zjson("/brokers/topics/"+name, &tz); err != nil {
			t.Error(err)
			continue
		}
		tv := view.Topics[name]
		if id, err := base64.RawURLEncoding.DecodeString(tz.TopicID); err != nil || len(id) != 16 || [16]byte(id) != tv.ID {
			t.Errorf("/brokers/topics/%s: topic_id %q, want Metadata's topic id %x in Kafka's base64 (URL alphabet, no padding)", name, tz.TopicID, tv.ID)
		}
		if tz.Version != 3 || len(tz.Partitions) != n {
			t.Errorf("/brokers/topics/%s: version %d with %d partitions, want version 3 with %d", name, tz.Version, len(tz.Partitions), n)
		}
		for p, pv := range tv.Partitions {
			if r := tz.Partitions[strconv.Itoa(p)]; !slices.Equal(r, pv.Replicas) {
				t.Errorf("/brokers/topics/%s: partition %d assigned %v, Metadata's replicas are %v", name, p, r, pv.Replicas)
			}
			path := fmt.Sprintf("/brokers/topics/%s/partitions/%d/state", name, p)
			var keys map[string]json.RawMessage
			if err := c.zjson(path, &keys); err != nil {
				t.Error(err)
				continue
			}
			for _, k := range []string{"controller_epoch", "leader", "leader_epoch", "isr", "version"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("%s has no %q: %v", path, k, slices.Sorted(maps.Keys(keys)))
				}
			}
			var st struct {
				ControllerEpoch int32   `json:"controller_epoch"`
				Leader          int32   `json:"leader"`
				LeaderEpoch     int32   `json:"leader_epoch"`
				ISR             []int32 `json:"isr"`
				Version         int     `json:"version"`
			}
			if err := c.zjson(path, &st); err != nil {
				t.Error(err)
				continue
			}
			slices.Sort(st.ISR)
			if st.Leader != pv.Leader || st.LeaderEpoch != pv.LeaderEpoch || !slices.Equal(st.ISR, pv.ISR) ||
				st.ControllerEpoch < 1 || st.ControllerEpoch > epoch || st.Version != 1 {
				t.Errorf("%s: %+v; want leader %d, leader_epoch %d, isr %v (as Metadata), controller_epoch in [1, %d], version 1",
					path, st, pv.Leader, pv.LeaderEpoch, pv.ISR, epoch)
			}
		}
	}

	// A broker that does not lead a partition refuses its produce and
	// fetch.
	for p, pv := range view.Topics["Topic1"].Partitions {
		wrong := c.other(pv.Leader)
		addr := c.brokers[wrong].Addr
		if code, err := produceTo(addr, "Topic1", view.Topics["Topic1"].ID, int32(p)); err != nil {
			t.Errorf("Produce to broker %d: %v", wrong, err)
		} else if code != kerr.NotLeaderForPartition.Code {
			t.Errorf("Produce of Topic1/%d (led by %d) to broker %d: error %d (%v), want NOT_LEADER_OR_FOLLOWER (6)", p, pv.Leader, wrong, code, kerr.ErrorForCode(code))
		}
		if code, err := fetchFrom(addr, "Topic1", view.Topics["Topic1"].ID, int32(p)); err != nil {
			t.Errorf("Fetch from broker %d: %v", wrong, err)
		} else if code != kerr.NotLeaderForPartition.Code {
			t.Errorf("Fetch of Topic1/%d (led by %d) from broker %d: error %d (%v), want NOT_LEADER_OR_FOLLOWER (6)", p, pv.Leader, wrong, code, kerr.ErrorForCode(code))
		}
	}

	// kafka-python with the whole cluster as bootstrap servers.
	const count = 30
	out, _ := runTool(t, 90*time.Second, nil, py, "testdata/kafka_python.py", strings.Join(c.addrs(), ","), "Topic1", strconv.Itoa(count))
	for _, p := range checkPartitioned(t, parseScript(t, out, count), kafkaPythonWant(count)) {
		if p < 0 || p > 2 {
			t.Errorf("kafka-python read from partition %d of the 3-partition Topic1", p)
		}
	}

	// Nothing changed the topics while brokers 1 and 2 ran with
	// KAFKA_CREATE_TOPICS.
	after := c.waitMetadata(topics)
	for name, n := range topics {
		if a, v := after.Topics[name], created.Topics[name]; a.ID != v.ID || len(a.Partitions) != n {
			t.Errorf("%s after brokers 1 and 2 ran with KAFKA_CREATE_TOPICS: id %x with %d partitions, before id %x with %d",
				name, a.ID, len(a.Partitions), v.ID, len(v.Partitions))
		}
		for p := range after.Topics[name].Partitions {
			if a, v := after.Topics[name].Partitions[p].Replicas, created.Topics[name].Partitions[p].Replicas; !slices.Equal(a, v) {
				t.Errorf("%s/%d: replicas %v after brokers 1 and 2 ran with KAFKA_CREATE_TOPICS, %v before", name, p, a, v)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		c.stop(id)
	}
}

// javaStringHash is Java's String.hashCode of an ASCII string.
func javaStringHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		h = 31*h + int32(s[i])
	}
	return h
}

// offsetsPartition is Kafka's partition of __consumer_offsets for group:
// Utils.abs(group.hashCode) % partitions.
func offsetsPartition(group string, partitions int) int {
	h := javaStringHash(group)
	if h == -1<<31 {
		return 0
	}
	if h < 0 {
		h = -h
	}
	return int(h) % partitions
}

// findCoordinator asks the broker at addr alone for group's coordinator.
func findCoordinator(addr, group string) (int32, string, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := ask(addr, req)
	if err != nil {
		return -1, "", err
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	code, node, host, port := r.ErrorCode, r.NodeID, r.Host, r.Port
	if r.Version >= 4 {
		if len(r.Coordinators) != 1 {
			return -1, "", fmt.Errorf("FindCoordinator v%d answered %d coordinators for one key", r.Version, len(r.Coordinators))
		}
		k := r.Coordinators[0]
		code, node, host, port = k.ErrorCode, k.NodeID, k.Host, k.Port
	}
	if code != 0 {
		return -1, "", fmt.Errorf("FindCoordinator %s: %w", group, kerr.ErrorForCode(code))
	}
	return node, net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// groupMember is one franz-go consumer of TestClusterGroup.
type groupMember struct {
	name string
	cl   *kgo.Client

	mu       sync.Mutex
	assigned map[int32]bool // as its callbacks were told
}

func (m *groupMember) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.assigned))
}

// TestClusterGroup: three franz-go consumers in one group, each
// bootstrapped to a different broker, on a 6-partition RF-1 topic spread
// over the three brokers.
//   - The group becomes Stable with every partition assigned once, as
//     each consumer was told.
//   - FindCoordinator asked of each broker names the same coordinator at
//     its address: the leader of the group's partition of
//     __consumer_offsets (Kafka's abs(hashCode) % partitions), a topic of
//     replication factor 3 (the default with zookeeper.connect).
//   - Records produced then are each read once, by the consumer assigned
//     their partition; the consumers commit after every poll, and the
//     commits read back with kadm through each broker once they have left.
func TestClusterGroup(t *testing.T) {
	t.Parallel()
	const (
		topic = "grouped"
		group = "cluster-group"
		parts = 6
		total = 120
	)
	c := newCluster(t, "")
	c.startAll([]string{fmt.Sprintf("KAFKA_CREATE_TOPICS=%s:%d:1", topic, parts)})
	view := c.waitMetadata(map[string]int{topic: parts})
	if ls := leadersOf(view, topic); len(slices.Compact(slices.Sorted(slices.Values(ls)))) != 3 {
		t.Errorf("%s's partitions are led by %v, want all three brokers among the leaders", topic, ls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type read struct {
		member    string
		partition int32
		offset    int64
		value     string
	}
	var (
		mu        sync.Mutex
		reads     []read
		committed int
		errs      []string
		wg        sync.WaitGroup
	)
	var members []*groupMember
	for i, addr := range c.addrs() {
		m := &groupMember{name: fmt.Sprintf("member-%d", i+1), assigned: map[int32]bool{}}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(m.name),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range a[topic] {
					m.assigned[p] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range r[topic] {
					delete(m.assigned, p)
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range r[topic] {
					delete(m.assigned, p)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		m.cl = cl
		members = append(members, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Records read but not committed yet: a failed commit is
			// tried again with the next poll, which returns within a
			// second even when nothing arrives.
			var pending []*kgo.Record
			for ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				fs := cl.PollFetches(pctx)
				pcancel()
				if ctx.Err() != nil {
					return
				}
				fs.EachError(func(tp string, p int32, err error) {
					if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
						return // the poll's own deadline
					}
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s fetching %s/%d: %v", m.name, tp, p, err))
					mu.Unlock()
				})
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					pending = append(pending, r)
					reads = append(reads, read{m.name, r.Partition, r.Offset, string(r.Value)})
				})
				mu.Unlock()
				if len(pending) == 0 {
					continue
				}
				err := cl.CommitRecords(ctx, pending...)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s committing: %v", m.name, err))
				} else {
					committed += len(pending)
					pending = nil
				}
				mu.Unlock()
			}
		}()
	}
	stopMembers := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		for _, m := range members {
			m.cl.Close() // leaves the group
		}
	})
	defer stopMembers()

	// Stable: DescribeGroups shows the three members, their assignments
	// split the partitions, and each member holds what it was given.
	adm := grpAdmin(t, c.brokers[2].Addr)
	stable := map[string][]int32{}
	eventually(t, clusterSettle, fmt.Sprintf("group %s Stable with 3 members holding the %d partitions between them", group, parts), func() error {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		d, err := adm.DescribeGroups(dctx, group)
		if err != nil {
			return err
		}
		g := d[group]
		if g.Err != nil || g.State != "Stable" || len(g.Members) != 3 {
			return fmt.Errorf("state %q with %d members (%v)", g.State, len(g.Members), g.Err)
		}
		clear(stable)
		seen := map[int32]bool{}
		for _, gm := range g.Members {
			a, ok := gm.Assigned.AsConsumer()
			if !ok {
				return fmt.Errorf("member %s has no consumer assignment", gm.ClientID)
			}
			var ps []int32
			for _, at := range a.Topics {
				if at.Topic == topic {
					ps = append(ps, at.Partitions...)
				}
			}
			slices.Sort(ps)
			for _, p := range ps {
				if seen[p] {
					return fmt.Errorf("partition %d assigned twice", p)
				}
				seen[p] = true
			}
			stable[gm.ClientID] = ps
		}
		if len(seen) != parts {
			return fmt.Errorf("%d of %d partitions assigned: %v", len(seen), parts, stable)
		}
		for _, m := range members {
			if got, want := m.assignment(), stable[m.name]; !slices.Equal(got, want) {
				return fmt.Errorf("%s holds %v, DescribeGroups assigns it %v", m.name, got, want)
			}
		}
		return nil
	})

	// One coordinator, whichever broker is asked: the leader of the
	// group's partition of __consumer_offsets.
	var coordinator, firstAsked int32 = -1, -1
	var coordAddr string
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		var node int32
		var addr string
		eventually(t, 30*time.Second, fmt.Sprintf("FindCoordinator %s answered by broker %d", group, id), func() error {
			var err error
			node, addr, err = findCoordinator(c.brokers[id].Addr, group)
			return err
		})
		if firstAsked < 0 {
			firstAsked, coordinator, coordAddr = id, node, addr
		} else if node != coordinator || addr != coordAddr {
			t.Errorf("FindCoordinator %s: broker %d names coordinator %d at %s; broker %d named %d at %s", group, id, node, addr, firstAsked, coordinator, coordAddr)
		}
	}
	if b, ok := c.brokers[coordinator]; !ok || b.Addr != coordAddr {
		t.Errorf("FindCoordinator names broker %d at %s, which is not a running broker at its address (%v)", coordinator, coordAddr, c.live())
	}
	ov, err := metadataOf(c.brokers[1].Addr, []string{"__consumer_offsets"})
	if err != nil {
		t.Fatal(err)
	}
	if tv, ok := ov.Topics["__consumer_offsets"]; !ok || tv.Err != 0 || len(tv.Partitions) == 0 {
		t.Errorf("__consumer_offsets in Metadata: %+v (present %v), want the topic the group's coordinator uses", tv, ok)
	} else {
		p := offsetsPartition(group, len(tv.Partitions))
		if l := tv.Partitions[p].Leader; l != coordinator {
			t.Errorf("the coordinator is broker %d, but __consumer_offsets/%d (the group's partition of %d) is led by %d",
				coordinator, p, len(tv.Partitions), l)
		}
		if !tv.Internal {
			t.Errorf("__consumer_offsets is not marked internal in Metadata")
		}
		for i, pv := range tv.Partitions {
			if len(pv.Replicas) != 3 {
				t.Errorf("__consumer_offsets/%d has replicas %v, want 3 (offsets.topic.replication.factor defaults to 3 with zookeeper.connect)", i, pv.Replicas)
				break
			}
		}
	}

	// Every record read once, by the member holding its partition.
	grpProduce(t, c.brokers[3].Addr, topic, parts, 0, total)
	eventually(t, 30*time.Second, fmt.Sprintf("the members read and commit all %d records", total), func() error {
		mu.Lock()
		defer mu.Unlock()
		if committed < total {
			return fmt.Errorf("%d read, %d committed; errors: %v", len(reads), committed, errs)
		}
		return nil
	})
	stopMembers()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Logf("errors the members saw: %v", errs)
	}
	byMember := map[string][]consumed{}
	for _, r := range reads {
		byMember[r.member] = append(byMember[r.member], consumed{r.partition, r.offset, r.value})
	}
	checkGroupReads(t, topic, parts, total, stable, byMember)

	// The commits, through each broker (kadm finds the coordinator).
	want := map[int32]int64{}
	for p := range int32(parts) {
		want[p] = total / parts
	}
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		if got := grpCommitted(t, grpAdmin(t, c.brokers[id].Addr), group, topic, want); !maps.Equal(got, want) {
			t.Errorf("committed offsets read through broker %d: %v, want %v", id, got, want)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		c.stop(id)
	}
}

// TestClusterControllerFailover: the controller's broker is SIGKILLed;
// another broker wins /controller with a higher /controller_epoch, every
// survivor's Metadata lists the two survivors and names the new
// controller, and a topic created through a survivor (placed over the
// survivors) takes produce and fetch.
func TestClusterControllerFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.startAll(nil)
	c.waitMetadata(nil)
	var old, oldEpoch int32
	eventually(t, clusterSettle, "/controller names a running broker", func() error {
		var err error
		old, oldEpoch, err = c.controller()
		if err == nil && c.brokers[old] == nil {
			err = fmt.Errorf("/controller names broker %d, not running", old)
		}
		return err
	})
	t.Logf("controller: broker %d, epoch %d", old, oldEpoch)

	c.kill(old)
	var ctl, epoch int32
	eventually(t, clusterSettle, fmt.Sprintf("a surviving broker becomes controller after broker %d was killed, with /controller_epoch above %d", old, oldEpoch), func() error {
		var err error
		ctl, epoch, err = c.controller()
		switch {
		case err != nil:
			return err
		case c.brokers[ctl] == nil:
			return fmt.Errorf("/controller names broker %d (epoch %d)", ctl, epoch)
		case epoch <= oldEpoch:
			return fmt.Errorf("/controller names broker %d with /controller_epoch %d", ctl, epoch)
		}
		return nil
	})
	c.waitRegistered()
	c.waitMetadata(nil)
	c.checkController(ctl)

	const (
		topic = "after-failover"
		parts = 4
		n     = 40
	)
	survivor := c.other(-1)
	createClusterTopic(t, c.brokers[survivor].Addr, topic, parts)
	view := c.waitMetadata(map[string]int{topic: parts})
	if ls := leadersOf(view, topic); slices.Contains(ls, old) {
		t.Errorf("%s's leaders %v include the killed broker %d", topic, ls, old)
	}
	grpProduce(t, c.brokers[survivor].Addr, topic, parts, 0, n)
	checkSeqRecords(t, consumeAll(t, c.brokers[c.other(survivor)].Addr, topic, parts), topic, parts, n)
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		c.stop(id)
	}
}

// TestClusterBrokerDown: records are produced to Topic1 (3 partitions,
// RF 1, one per broker); a broker leading a Topic1 partition (not the
// controller, if one is) is stopped with SIGTERM.
//   - It leaves /brokers/ids; the other brokers' Metadata lists two
//     brokers and shows its partitions LEADER_NOT_AVAILABLE (error 5 or
//     leader -1), the rest still led; its partitions' state znodes have
//     leader -1.
//   - Restarted with its log dir and broker.id, it registers at its new
//     address, leads its partitions again (a higher leader epoch) and
//     every record produced before reads back.
//   - Stopped and restarted again without broker.id, it takes its id from
//     the meta.properties of its log dir (which holds broker.id and the
//     cluster id) and leads its partitions again, with the same records.
func TestClusterBrokerDown(t *testing.T) {
	t.Parallel()
	const (
		topic = "Topic1"
		parts = 3
		n     = 30
	)
	c := newCluster(t, "")
	c.startAll([]string{"KAFKA_CREATE_TOPICS=Topic1:3:1"})
	before := c.waitMetadata(map[string]int{topic: parts})
	grpProduce(t, c.brokers[1].Addr, topic, parts, 0, n)

	ctl, _, err := c.controller()
	if err != nil {
		t.Fatal(err)
	}
	leaders := leadersOf(before, topic)
	victim := leaders[0]
	for _, l := range leaders {
		if l != ctl {
			victim = l
			break
		}
	}
	var victimParts []int
	for p, l := range leaders {
		if l == victim {
			victimParts = append(victimParts, p)
		}
	}
	t.Logf("Topic1 leaders %v, controller %d: stopping broker %d (partitions %v)", leaders, ctl, victim, victimParts)

	c.stop(victim)
	c.waitRegistered()
	live := c.live()
	eventually(t, clusterSettle, fmt.Sprintf("the other brokers' Metadata lists brokers %v, with Topic1 partitions %v LEADER_NOT_AVAILABLE and the others led", live, victimParts), func() error {
		for id, addr := range live {
			v, err := metadataOf(addr, []string{topic})
			if err != nil {
				return fmt.Errorf("broker %d: %w", id, err)
			}
			if !maps.Equal(v.Brokers, live) {
				return fmt.Errorf("broker %d lists brokers %v", id, v.Brokers)
			}
			tv := v.Topics[topic]
			if tv.Err != 0 || len(tv.Partitions) != parts {
				return fmt.Errorf("broker %d: Topic1 error %d with %d partitions", id, tv.Err, len(tv.Partitions))
			}
			for p, pv := range tv.Partitions {
				if slices.Contains(victimParts, p) {
					if pv.Err != kerr.LeaderNotAvailable.Code && pv.Leader != -1 {
						return fmt.Errorf("broker %d: Topic1/%d has leader %d, error %d; want LEADER_NOT_AVAILABLE (5) or leader -1", id, p, pv.Leader, pv.Err)
					}
				} else if pv.Err != 0 || live[pv.Leader] == "" {
					return fmt.Errorf("broker %d: Topic1/%d (not the stopped broker's) has leader %d, error %d", id, p, pv.Leader, pv.Err)
				}
			}
		}
		return nil
	})
	eventually(t, clusterSettle, fmt.Sprintf("the state znodes of Topic1 partitions %v have leader -1 (no in-sync replica alive)", victimParts), func() error {
		for _, p := range victimParts {
			var st struct {
				Leader int32 `json:"leader"`
			}
			if err := c.zjson(fmt.Sprintf("/brokers/topics/%s/partitions/%d/state", topic, p), &st); err != nil {
				return err
			}
			if st.Leader != -1 {
				return fmt.Errorf("Topic1/%d: leader %d", p, st.Leader)
			}
		}
		return nil
	})

	// back with its log dir and broker.id, then with its log dir alone.
	for _, fromMeta := range []bool{false, true} {
		how := "broker.id from the config"
		if fromMeta {
			how = "broker.id from meta.properties"
			c.stop(victim)
			c.waitRegistered()
			meta, err := os.ReadFile(filepath.Join(c.dirs[victim], "meta.properties"))
			if err != nil {
				t.Fatalf("meta.properties of broker %d's log dir: %v", victim, err)
			}
			var cid struct {
				ID string `json:"id"`
			}
			if err := c.zjson("/cluster/id", &cid); err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{fmt.Sprintf("broker.id=%d", victim), "cluster.id=" + cid.ID} {
				if !slices.Contains(strings.Split(string(meta), "\n"), line) {
					t.Errorf("meta.properties of broker %d has no line %q:\n%s", victim, line, meta)
				}
			}
		}
		b := c.start(victim, nil, fromMeta)
		c.waitRegistered()
		var reg struct {
			Endpoints []string `json:"endpoints"`
		}
		if err := c.zjson(fmt.Sprintf("/brokers/ids/%d", victim), &reg); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(reg.Endpoints, []string{"PLAINTEXT://" + b.Addr}) {
			t.Errorf("restarted (%s): /brokers/ids/%d has endpoints %v, want [PLAINTEXT://%s]", how, victim, reg.Endpoints, b.Addr)
		}
		after := c.waitMetadata(map[string]int{topic: parts})
		for _, p := range victimParts {
			pv, pb := after.Topics[topic].Partitions[p], before.Topics[topic].Partitions[p]
			if pv.Leader != victim {
				t.Errorf("restarted (%s): Topic1/%d led by %d, want %d again", how, p, pv.Leader, victim)
			}
			if pv.LeaderEpoch <= pb.LeaderEpoch {
				t.Errorf("restarted (%s): Topic1/%d leader epoch %d, was %d before the stop; want a higher one", how, p, pv.LeaderEpoch, pb.LeaderEpoch)
			}
		}
		if after.Topics[topic].ID != before.Topics[topic].ID {
			t.Errorf("restarted (%s): Topic1's id %x, was %x", how, after.Topics[topic].ID, before.Topics[topic].ID)
		}
		checkSeqRecords(t, consumeAll(t, c.brokers[c.other(victim)].Addr, topic, parts), topic, parts, n)
		if t.Failed() {
			t.FailNow()
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		c.stop(id)
	}
}

// produced is what TestClusterZooKeeperRestart's producer saw.
type produced struct {
	mu      sync.Mutex
	acked   map[string]int32 // value → partition, acknowledged
	inPhase map[int64]int    // phase → acks of produces begun and ended in it
	errs    []error
}

func (p *produced) acksIn(phase int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inPhase[phase]
}

func (p *produced) snapshot() (map[string]int32, []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.acked), slices.Clone(p.errs)
}

// readValues reads topic's partitions from the start with a franz-go
// client seeded with addrs until every value of want has been read, and
// returns how often each value was read.
func readValues(addrs []string, topic string, parts int, want map[string]int32, timeout time.Duration) (map[string]int, error) {
	offsets := map[int32]kgo.Offset{}
	for p := range int32(parts) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[string]int{}
	left := len(want)
	var wrong []string
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return seen, fmt.Errorf("%d of %d acknowledged records of %s not read within %v", left, len(want), topic, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			seen[v]++
			if p, ok := want[v]; ok && seen[v] == 1 {
				left--
				if p != r.Partition {
					wrong = append(wrong, fmt.Sprintf("%s at partition %d, produced to %d", v, r.Partition, p))
				}
			}
		})
	}
	if len(wrong) > 0 {
		return seen, fmt.Errorf("records in the wrong partition: %v", wrong)
	}
	return seen, nil
}

// TestClusterZooKeeperRestart: a franz-go producer (idempotent, acks=all)
// keeps producing to the 3-partition topic "live" while ZooKeeper is
// stopped (SIGTERM) and restarted, then killed (SIGKILL) and restarted.
//   - While ZooKeeper is down, produces keep being acknowledged, every
//     broker's Metadata still lists the three brokers with their leaders
//     (cached), and the records acknowledged so far fetch back.
//   - After each restart the three brokers are registered again, a
//     controller is elected, a new topic can be created and used, and the
//     producer's records keep being acknowledged.
//   - At the end every acknowledged record reads back exactly once, in
//     the partition it was produced to.
func TestClusterZooKeeperRestart(t *testing.T) {
	t.Parallel()
	const (
		topic      = "live"
		parts      = 3
		batch      = 10
		maxRecords = 200_000 // the producer's bound; a run makes a few thousand
		outageAcks = 50      // produces acknowledged within each outage before ZooKeeper comes back
	)
	c := newCluster(t, "")
	c.startAll([]string{fmt.Sprintf("KAFKA_CREATE_TOPICS=%s:%d:1", topic, parts)})
	c.waitMetadata(map[string]int{topic: parts})

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// phase: even while ZooKeeper is up, odd while it is down.
	var phase atomic.Int64
	out := &produced{acked: map[string]int32{}, inPhase: map[int64]int{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond) // pace, so the run stays small
		defer tick.Stop()
		for seq := 0; seq < maxRecords; seq += batch {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			began := phase.Load()
			rs := make([]*kgo.Record, batch)
			for i := range rs {
				rs[i] = &kgo.Record{Partition: int32((seq + i) % parts), Value: fmt.Appendf(nil, "%s-%d", topic, seq+i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			results := cl.ProduceSync(ctx, rs...)
			cancel()
			same := phase.Load() == began
			out.mu.Lock()
			for _, r := range results {
				if r.Err != nil {
					out.errs = append(out.errs, fmt.Errorf("phase %d: %s: %w", began, r.Record.Value, r.Err))
					continue
				}
				out.acked[string(r.Record.Value)] = r.Record.Partition
				if same {
					out.inPhase[began]++
				}
			}
			out.mu.Unlock()
		}
	}()
	stopProducer := sync.OnceFunc(func() {
		close(stop)
		<-done
	})
	defer stopProducer()

	waitAcks := func(ph int64, n int, what string) {
		t.Helper()
		eventually(t, 30*time.Second, fmt.Sprintf("%d produces acknowledged %s", n, what), func() error {
			if got := out.acksIn(ph); got < n {
				_, errs := out.snapshot()
				return fmt.Errorf("%d acknowledged; %d produce errors so far, the last: %v", got, len(errs), lastErr(errs))
			}
			return nil
		})
	}
	waitAcks(0, outageAcks, "before ZooKeeper goes down")

	for i, outage := range []struct {
		name string
		down func()
	}{{"stop", c.zk.Stop}, {"kill", c.zk.Kill}} {
		outage.down()
		down := phase.Add(1)
		t.Logf("ZooKeeper down (%s)", outage.name)
		waitAcks(down, outageAcks, fmt.Sprintf("while ZooKeeper is down (%s): metadata is cached, existing partitions keep serving", outage.name))
		for id, addr := range c.live() {
			v, err := metadataOf(addr, []string{topic})
			if err != nil {
				t.Fatalf("ZooKeeper down (%s): broker %d: %v", outage.name, id, err)
			}
			if !maps.Equal(v.Brokers, c.live()) || len(v.Topics[topic].Partitions) != parts || slices.Contains(leadersOf(v, topic), -1) {
				t.Errorf("ZooKeeper down (%s): broker %d answers Metadata %s; want its cached view: brokers %v, %s led", outage.name, id, v, c.live(), topic)
			}
		}
		acked, _ := out.snapshot()
		if _, err := readValues(c.addrs(), topic, parts, acked, 30*time.Second); err != nil {
			t.Fatalf("ZooKeeper down (%s): fetching what was acknowledged: %v", outage.name, err)
		}

		c.zk.Restart(t)
		c.reconnect()
		up := phase.Add(1)
		c.waitRegistered()
		eventually(t, clusterSettle, fmt.Sprintf("a running broker is controller after ZooKeeper's restart (%s)", outage.name), func() error {
			ctl, _, err := c.controller()
			if err == nil && c.brokers[ctl] == nil {
				err = fmt.Errorf("/controller names broker %d", ctl)
			}
			return err
		})
		newTopic := fmt.Sprintf("after-zk-%s", outage.name)
		createClusterTopic(t, c.brokers[int32(i%3+1)].Addr, newTopic, parts)
		c.waitMetadata(map[string]int{topic: parts, newTopic: parts})
		grpProduce(t, c.brokers[3].Addr, newTopic, parts, 0, 30)
		checkSeqRecords(t, consumeAll(t, c.brokers[1].Addr, newTopic, parts), newTopic, parts, 30)
		waitAcks(up, outageAcks, fmt.Sprintf("after ZooKeeper's restart (%s)", outage.name))
	}

	stopProducer()
	acked, errs := out.snapshot()
	t.Logf("%d records acknowledged, %d produce errors (the last: %v)", len(acked), len(errs), lastErr(errs))
	seen, err := readValues(c.addrs(), topic, parts, acked, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var dups []string
	for v := range acked {
		if seen[v] > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", v, seen[v]))
		}
	}
	if len(dups) > 0 {
		slices.Sort(dups)
		t.Errorf("%d acknowledged records read more than once (an idempotent producer's retries must not duplicate): %v", len(dups), dups[:min(len(dups), 20)])
	}
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		c.stop(id)
	}
}

func lastErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[len(errs)-1]
}

// TestClusterDeleteWhileDown: a topic deleted while one of its brokers is
// stopped is gone from that broker's disk too once it is back.
func TestClusterDeleteWhileDown(t *testing.T) {
	c := newCluster(t, "")
	c.startAll(nil)
	createClusterTopic(t, c.brokers[1].Addr, "doomed", 3)
	v := c.waitMetadata(map[string]int{"doomed": 3})
	grpProduce(t, c.brokers[1].Addr, "doomed", 3, 0, 30)
	victim := leadersOf(v, "doomed")[0]
	if len(topicLogDirs(c.dirs[victim], "doomed")) == 0 {
		t.Fatalf("broker %d holds no log of doomed before the deletion", victim)
	}
	c.stop(victim)
	other := c.other(victim)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[other].Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, "doomed")
	if err != nil || resp["doomed"].Err != nil {
		t.Fatalf("DeleteTopics: %v %v", err, resp["doomed"].Err)
	}
	eventually(t, clusterSettle, "/brokers/topics/doomed gone", func() error {
		if _, err := c.zget("/brokers/topics/doomed"); err == nil {
			return errors.New("still there")
		}
		return nil
	})
	for id := range c.brokers {
		for _, d := range topicLogDirs(c.dirs[id], "doomed") {
			eventually(t, clusterSettle, "broker "+strconv.Itoa(int(id))+" deletes "+d, func() error {
				if _, err := os.Stat(d); err == nil {
					return errors.New("still there")
				}
				return nil
			})
		}
	}
	// Created again while the broker is away: a new topic of the same
	// name, on the other brokers.
	createClusterTopic(t, c.brokers[other].Addr, "doomed", 3)
	grpProduce(t, c.brokers[other].Addr, "doomed", 3, 0, 30)
	c.start(victim, nil, false)
	c.waitRegistered()
	if left := topicLogDirs(c.dirs[victim], "doomed"); len(left) != 0 {
		t.Errorf("broker %d kept %v of the deleted topic after its restart", victim, left)
	}
	// The new topic's records are its own (30, not 60).
	checkSeqRecords(t, consumeAll(t, c.brokers[other].Addr, "doomed", 3), "doomed", 3, 30)
}

// topicLogDirs returns the partition directories of topic under a log dir
// (whichever engine keeps them).
func topicLogDirs(dir, topic string) []string {
	var found []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), topic+"-") {
			found = append(found, path)
		}
		return nil
	})
	return found
}
