//go:build linux

package e2e

// Replication across three strata processes and a real ZooKeeper: leaders
// killed with SIGKILL under an acks=all idempotent producer, a rolling
// restart with SIGTERM, min.insync.replicas, and a follower whose log
// diverged from its leader's.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// replicationOverrides make failures show quickly: a SIGKILLed broker's
// session ends within 2 s, and a follower that stops fetching leaves the
// ISR after 3 s.
var replicationOverrides = []string{
	"zookeeper.session.timeout.ms=2000",
	"replica.lag.time.max.ms=3000",
	"controlled.shutdown.retry.backoff.ms=500",
}

// startReplicated starts ZooKeeper and brokers 1, 2 and 3 with the given
// overrides (and perBroker's, if any) and creates topic as
// createReplicated does.
func startReplicated(t *testing.T, overrides []string, perBroker map[int32][]string, topic string, partitions int32, rf int16, configs map[string]*string) *cluster {
	t.Helper()
	c := newCluster(t, "")
	c.overrides, c.perBroker = overrides, perBroker
	c.startAll(nil)
	c.createReplicated(topic, partitions, rf, configs)
	return c
}

// minISR2 is min.insync.replicas=2, as a topic config.
var minISR2 = map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")}

// createReplicated creates topic with partitions and replication factor rf
// and the given configs through kadm, retrying while the cluster cannot
// take it yet, and waits until every partition's ISR holds all replicas.
func (c *cluster) createReplicated(topic string, partitions int32, rf int16, configs map[string]*string) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs()...))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(c.t, clusterSettle, fmt.Sprintf("CreateTopics %s (%d partitions, RF %d) succeeds", topic, partitions, rf), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	})
	c.waitFullISR(topic, int(rf))
}

// waitFullISR waits until every running broker's Metadata shows every
// partition of topic led by a running broker with all rf replicas in
// sync, and returns one broker's view.
func (c *cluster) waitFullISR(topic string, rf int) topicView {
	c.t.Helper()
	var tv topicView
	live := c.live()
	eventually(c.t, clusterSettle, fmt.Sprintf("every partition of %s has a live leader and %d replicas in sync, on every broker", topic, rf), func() error {
		for _, id := range slices.Sorted(maps.Keys(live)) {
			v, err := metadataOf(live[id], []string{topic})
			if err != nil {
				return err
			}
			t, ok := v.Topics[topic]
			if !ok || t.Err != 0 || len(t.Partitions) == 0 {
				return fmt.Errorf("broker %d: topic %s missing or failing: %+v", id, topic, t)
			}
			for p, pv := range t.Partitions {
				if live[pv.Leader] == "" || len(pv.Replicas) != rf || len(pv.ISR) != rf {
					return fmt.Errorf("broker %d: %s/%d leader %d replicas %v isr %v", id, topic, p, pv.Leader, pv.Replicas, pv.ISR)
				}
			}
			tv = t
		}
		return nil
	})
	return tv
}

// leaderOf returns the leader of topic/partition as a running broker's
// Metadata shows it, once it is a running broker.
func (c *cluster) leaderOf(topic string, partition int32) int32 {
	c.t.Helper()
	var leader int32
	live := c.live()
	eventually(c.t, clusterSettle, fmt.Sprintf("%s/%d is led by a running broker", topic, partition), func() error {
		for _, addr := range live {
			v, err := metadataOf(addr, []string{topic})
			if err != nil {
				continue
			}
			if t, ok := v.Topics[topic]; ok && int(partition) < len(t.Partitions) {
				if l := t.Partitions[partition].Leader; live[l] != "" {
					leader = l
					return nil
				}
				return fmt.Errorf("leader %d", t.Partitions[partition].Leader)
			}
		}
		return errors.New("no broker answers")
	})
	return leader
}

// progress waits until n more of p's records have been acknowledged.
// While it waits it reports how the running brokers see p's topic.
func progress(t *testing.T, c *cluster, p *seqProducer, n int64, what string) {
	t.Helper()
	want := p.acks() + n
	eventually(t, clusterSettle, fmt.Sprintf("%d more records acknowledged (%s)", n, what), func() error {
		if got := p.acks(); got < want {
			var views []string
			for id, addr := range c.live() {
				v, err := metadataOf(addr, []string{p.topic})
				if err != nil {
					views = append(views, fmt.Sprintf("broker %d: %v", id, err))
					continue
				}
				views = append(views, fmt.Sprintf("broker %d: %s", id, v))
			}
			p.mu.Lock()
			errs := len(p.errs)
			p.mu.Unlock()
			return fmt.Errorf("%d acknowledged, want %d; %d produce errors; %s", got, want, errs, strings.Join(views, "\n"))
		}
		return nil
	})
}

// checkNoLoss stops p, reads its topic through the cluster and checks
// that every acknowledged record is there once, in order
// (checkSequenced); it logs the counts and the longest wait between two
// acknowledgements.
func checkNoLoss(t *testing.T, c *cluster, p *seqProducer, what string) {
	t.Helper()
	p.finish(t)
	read, lost, dups := checkSequenced(t, p, consumeAll(t, c.addrs()[0], p.topic, p.partitions), nil)
	var gap time.Duration
	ts := p.ackTimes()
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	t.Logf("%s: %d records acknowledged, %d read back, %d lost, %d duplicated; %d produce errors; longest wait between acknowledgements %v",
		what, p.acks(), read, lost, dups, len(p.errs), gap.Round(time.Millisecond))
	if p.acks() == 0 {
		t.Errorf("%s: nothing acknowledged", what)
	}
}

// TestReplicationKills: an acks=all idempotent producer writes sequenced
// records to an RF=3, min.insync.replicas=2 topic while the leader of a
// partition is SIGKILLed, restarted, and rejoins the ISR, ten times; then
// every acknowledged record is there exactly once and in order. Each
// broker keeps its replicas in another engine (mmap, pebble, tiered).
func TestReplicationKills(t *testing.T) {
	t.Parallel()
	const topic, parts, kills = "kills", 3, 10
	c := startReplicated(t, replicationOverrides,
		map[int32][]string{1: {"log.engine=mmap"}, 2: {"log.engine=pebble"}, 3: {"log.engine=tiered"}},
		topic, parts, 3, minISR2)

	sp := startSeqProducer(t, c.addrs()[0], topic, parts)
	progress(t, c, sp, 500, "before the first kill")
	for k := range kills {
		p := int32(k % parts)
		leader := c.leaderOf(topic, p)
		c.kill(leader)
		// A new leader from the ISR, and the producer carries on.
		newLeader := c.leaderOf(topic, p)
		progress(t, c, sp, 300, fmt.Sprintf("kill %d: broker %d, leader of %s/%d, down; %d leads now", k+1, leader, topic, p, newLeader))
		c.start(leader, nil, false)
		// It catches up and rejoins the ISR of every partition.
		c.waitFullISR(topic, 3)
		progress(t, c, sp, 300, fmt.Sprintf("kill %d: broker %d back in the ISR", k+1, leader))
	}
	checkNoLoss(t, c, sp, fmt.Sprintf("%d leader kills", kills))
}

// TestReplicationRollingRestart: every broker in turn stops with SIGTERM
// (a controlled shutdown: its leaderships move first) and comes back,
// under an acks=all producer; nothing acknowledged is lost.
func TestReplicationRollingRestart(t *testing.T) {
	t.Parallel()
	const topic, parts = "rolling", 3
	c := startReplicated(t, replicationOverrides, nil, topic, parts, 3, minISR2)
	sp := startSeqProducer(t, c.addrs()[0], topic, parts)
	progress(t, c, sp, 500, "before the restarts")
	for _, id := range []int32{1, 2, 3} {
		b := c.brokers[id]
		c.stop(id)
		if !strings.Contains(b.Log.String(), "controlled shutdown: leadership moved") {
			t.Errorf("broker %d stopped without a controlled shutdown:\n%s", id, tail(b.Log.String(), 30))
		}
		progress(t, c, sp, 300, fmt.Sprintf("broker %d stopped", id))
		c.start(id, nil, false)
		c.waitFullISR(topic, 3)
		progress(t, c, sp, 300, fmt.Sprintf("broker %d back", id))
	}
	checkNoLoss(t, c, sp, "rolling restart")
}

// TestReplicationNotEnoughReplicas: with two of three brokers down the
// ISR is the leader alone, below min.insync.replicas=2: acks=all produces
// get NOT_ENOUGH_REPLICAS and append nothing, acks=1 still works; with the
// brokers back, acks=all works again.
func TestReplicationNotEnoughReplicas(t *testing.T) {
	t.Parallel()
	const topic = "minisr"
	c := startReplicated(t, replicationOverrides, nil, topic, 1, 3, minISR2)
	leader := c.leaderOf(topic, 0)
	addr := c.brokers[leader].Addr
	produce := func(acks kgo.Acks, value string) int16 {
		t.Helper()
		return produceOne(t, addr, topic, acks, 10000, value)
	}
	if code := produce(kgo.AllISRAcks(), "all three up"); code != 0 {
		t.Fatalf("acks=all with three in sync: %v", kerr.ErrorForCode(code))
	}
	for _, id := range []int32{1, 2, 3} {
		if id != leader {
			c.kill(id)
		}
	}
	eventually(t, clusterSettle, "the ISR shrinks to the leader alone", func() error {
		v, err := metadataOf(addr, []string{topic})
		if err != nil {
			return err
		}
		if isr := v.Topics[topic].Partitions[0].ISR; !slices.Equal(isr, []int32{leader}) {
			return fmt.Errorf("ISR %v", isr)
		}
		return nil
	})
	if code := produce(kgo.AllISRAcks(), "refused"); code != kerr.NotEnoughReplicas.Code {
		t.Errorf("acks=all with one in sync: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if code := produce(kgo.LeaderAck(), "acks=1 while alone"); code != 0 {
		t.Errorf("acks=1 with one in sync: %v, want success", kerr.ErrorForCode(code))
	}
	for _, id := range []int32{1, 2, 3} {
		if id != leader {
			c.start(id, nil, false)
		}
	}
	c.waitFullISR(topic, 3)
	if code := produce(kgo.AllISRAcks(), "all three back"); code != 0 {
		t.Errorf("acks=all with three in sync again: %v", kerr.ErrorForCode(code))
	}
	var got []string
	for _, r := range consumeAll(t, c.addrs()[0], topic, 1)[0] {
		got = append(got, string(r.Value))
	}
	if want := []string{"all three up", "acks=1 while alone", "all three back"}; !slices.Equal(got, want) {
		t.Errorf("the log holds %q, want %q (the refused record never appended)", got, want)
	}
}

// TestReplicationDivergedFollower: a leader that took acks=1 records
// alone, then died, comes back after another replica was elected
// uncleanly and took other records: it truncates its log where the
// histories part (the leader epoch) and copies the new leader's records.
func TestReplicationDivergedFollower(t *testing.T) {
	t.Parallel()
	const topic = "diverged"
	c := newCluster(t, "")
	c.overrides = replicationOverrides
	c.start(1, nil, false)
	c.start(2, nil, false)
	c.waitRegistered()
	c.createReplicated(topic, 1, 2, map[string]*string{"unclean.leader.election.enable": kmsg.StringPtr("true")})
	a := c.leaderOf(topic, 0)
	b := c.other(a)
	ctx, cancel := context.WithTimeout(context.Background(), 3*clusterSettle)
	defer cancel()
	produce := func(acks kgo.Acks, values ...string) {
		t.Helper()
		p, err := kgo.NewClient(kgo.SeedBrokers(c.addrs()...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(), kgo.MetadataMinAge(250*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, v := range values {
			if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("producing %q: %v", v, err)
			}
		}
	}
	produce(kgo.AllISRAcks(), "both-0", "both-1") // both replicas have them
	// b stops; a leads alone and takes records b never sees.
	c.kill(b)
	eventually(t, clusterSettle, fmt.Sprintf("the ISR of %s/0 is broker %d alone", topic, a), func() error {
		v, err := metadataOf(c.brokers[a].Addr, []string{topic})
		if err != nil {
			return err
		}
		if isr := v.Topics[topic].Partitions[0].ISR; !slices.Equal(isr, []int32{a}) {
			return fmt.Errorf("ISR %v", isr)
		}
		return nil
	})
	produce(kgo.LeaderAck(), "a-only-0", "a-only-1", "a-only-2")
	// a dies; b, out of the ISR, is elected uncleanly and takes others.
	c.kill(a)
	c.start(b, nil, false)
	if l := c.leaderOf(topic, 0); l != b {
		t.Fatalf("leader %d, want %d elected uncleanly", l, b)
	}
	produce(kgo.LeaderAck(), "b-0", "b-1")
	// a returns as a follower: it must drop its three records and copy b's.
	c.start(a, nil, false)
	c.waitFullISR(topic, 2)
	if !strings.Contains(c.brokers[a].Log.String(), "truncated to where the leader's history parts") {
		t.Errorf("broker %d did not log a truncation", a)
	}
	// Make a the only replica left: what it holds is what a consumer reads.
	c.kill(b)
	eventually(t, clusterSettle, fmt.Sprintf("broker %d leads %s/0", a, topic), func() error {
		v, err := metadataOf(c.brokers[a].Addr, []string{topic})
		if err != nil {
			return err
		}
		if l := v.Topics[topic].Partitions[0].Leader; l != a {
			return fmt.Errorf("leader %d", l)
		}
		return nil
	})
	var got []string
	for _, r := range consumeAll(t, c.brokers[a].Addr, topic, 1)[0] {
		got = append(got, string(r.Value))
	}
	if want := []string{"both-0", "both-1", "b-0", "b-1"}; !slices.Equal(got, want) {
		t.Errorf("broker %d's log holds %q after rejoining, want %q", a, got, want)
	}
}

// TestReplicationHighWatermark: while a dead follower is still in the
// ISR (until its session expires), the leader's records past the
// follower's offset are not committed: consumers do not see them, the
// high watermark and ListOffsets stay below them, and an acks=all produce
// times out; once the follower leaves the ISR they are committed.
func TestReplicationHighWatermark(t *testing.T) {
	t.Parallel()
	const topic = "hw"
	c := startReplicated(t, []string{"zookeeper.session.timeout.ms=8000"}, nil, topic, 1, 2, nil)
	leader := c.leaderOf(topic, 0)
	v, err := metadataOf(c.brokers[leader].Addr, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	replicas := v.Topics[topic].Partitions[0].Replicas
	follower := replicas[0]
	if follower == leader {
		follower = replicas[1]
	}
	addr := c.brokers[leader].Addr
	produce := func(acks kgo.Acks, timeout int32, value string) int16 {
		t.Helper()
		return produceOne(t, addr, topic, acks, timeout, value)
	}
	// visible fetches as a consumer and returns the high watermark and
	// the values read.
	visible := func() (int64, []string) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := ask(addr, req, kgo.MaxVersions(kversion.V3_0_0()))
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(sp.ErrorCode))
		}
		var values []string
		for _, b := range batchesIn(t, sp.RecordBatches) {
			values = append(values, b...)
		}
		return sp.HighWatermark, values
	}
	latest := func() int64 {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset
	}

	if code := produce(kgo.AllISRAcks(), 10000, "committed"); code != 0 {
		t.Fatalf("acks=all: %v", kerr.ErrorForCode(code))
	}
	c.kill(follower)
	if code := produce(kgo.LeaderAck(), 10000, "pending"); code != 0 {
		t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
	}
	if code := produce(kgo.AllISRAcks(), 500, "timed out"); code != kerr.RequestTimedOut.Code {
		t.Errorf("acks=all with a dead follower in the ISR: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	hw, values := visible()
	if hw != 1 || !slices.Equal(values, []string{"committed"}) {
		t.Errorf("with the follower dead but in the ISR: high watermark %d, a consumer reads %q; want 1 and only the committed record", hw, values)
	}
	if l := latest(); l != 1 {
		t.Errorf("ListOffsets latest %d, want the high watermark 1", l)
	}
	v, err = metadataOf(addr, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if isr := v.Topics[topic].Partitions[0].ISR; len(isr) != 2 {
		t.Fatalf("ISR %v already shrank: the checks above saw nothing", isr)
	}
	eventually(t, clusterSettle, "the dead follower leaves the ISR and the records are committed", func() error {
		hw, values := visible()
		if want := []string{"committed", "pending", "timed out"}; hw != 3 || !slices.Equal(values, want) {
			return fmt.Errorf("high watermark %d, read %q, want 3 and %q", hw, values, want)
		}
		return nil
	})
	if l := latest(); l != 3 {
		t.Errorf("ListOffsets latest %d after the ISR shrank, want 3", l)
	}
}

// batchesIn returns the values of the records of each batch in raw.
func batchesIn(t *testing.T, raw []byte) [][]string {
	t.Helper()
	var out [][]string
	for len(raw) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatalf("record batch: %v", err)
		}
		size := int(b.Length) + 12
		recs := b.Records
		var values []string
		for range b.NumRecords {
			var r kmsg.Record
			n, err := readRecord(recs, &r)
			if err != nil {
				t.Fatalf("record: %v", err)
			}
			values = append(values, string(r.Value))
			recs = recs[n:]
		}
		out = append(out, values)
		raw = raw[size:]
	}
	return out
}

// TestReplicationReassign: kadm's AlterPartitionAssignments moves a
// partition's replicas to another broker online: the new replica copies
// the log and joins the ISR, leadership leaves the replica that goes, the
// old replica's log is deleted, and ListPartitionReassignments shows the
// move while it lasts (held up by stopping the joining broker's process
// for a while) and nothing after.
func TestReplicationReassign(t *testing.T) {
	t.Parallel()
	const topic = "moved"
	// Sessions outlast the pause of the joining broker below.
	c := startReplicated(t, []string{"zookeeper.session.timeout.ms=30000", "controlled.shutdown.retry.backoff.ms=500"}, nil, topic, 1, 2, nil)
	v, err := metadataOf(c.addrs()[0], []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	before := v.Topics[topic].Partitions[0]
	leaving := before.Leader
	var staying, joining int32
	for _, id := range []int32{1, 2, 3} {
		switch {
		case id == leaving:
		case slices.Contains(before.Replicas, id):
			staying = id
		default:
			joining = id
		}
	}
	// kadm sends reassignment requests to the controller, which must
	// not be the broker paused below: if it is, it hands the office on.
	if ctl, _, err := c.controller(); err != nil {
		t.Fatal(err)
	} else if ctl == joining {
		c.stop(joining)
		c.start(joining, nil, false)
		c.waitRegistered()
		eventually(t, clusterSettle, fmt.Sprintf("broker %d is not controller", joining), func() error {
			if ctl, _, err := c.controller(); err != nil || ctl == joining {
				return fmt.Errorf("controller %d (%v)", ctl, err)
			}
			return nil
		})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterSettle)
	defer cancel()
	const n = 200
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("r%03d", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	target := []int32{joining, staying}
	// The joining broker cannot copy anything while stopped: the move
	// waits for it.
	c.brokers[joining].Pause()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, target)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatalf("AlterPartitionAssignments: %v", err)
	}
	// listed is what ListPartitionReassignments answers: for the topic
	// (kadm), and for all topics (a request naming none).
	listed := func() (named, all []string, err error) {
		byName, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return nil, nil, err
		}
		byName.Each(func(r kadm.ListPartitionReassignmentsResponse) {
			named = append(named, fmt.Sprintf("%s/%d replicas %v adding %v removing %v", r.Topic, r.Partition, r.Replicas, r.AddingReplicas, r.RemovingReplicas))
		})
		resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
		if err != nil {
			return nil, nil, err
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				all = append(all, fmt.Sprintf("%s/%d replicas %v adding %v removing %v", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas))
			}
		}
		return named, all, nil
	}
	eventually(t, clusterSettle, "ListPartitionReassignments shows the move", func() error {
		named, all, err := listed()
		if err != nil {
			return err
		}
		want := []string{fmt.Sprintf("%s/0 replicas %v adding [%d] removing [%d]", topic, []int32{joining, staying, leaving}, joining, leaving)}
		if !slices.Equal(named, want) || !slices.Equal(all, want) {
			return fmt.Errorf("listed %q for the topic and %q for all, want %q", named, all, want)
		}
		return nil
	})
	c.brokers[joining].Resume()
	eventually(t, clusterSettle, fmt.Sprintf("%s/0 moves to %v, led by one of them, both in sync, on every broker", topic, target), func() error {
		for id, addr := range c.live() {
			v, err := metadataOf(addr, []string{topic})
			if err != nil {
				return err
			}
			pv := v.Topics[topic].Partitions[0]
			if !slices.Equal(pv.Replicas, target) || !slices.Equal(pv.ISR, slices.Sorted(slices.Values(target))) || !slices.Contains(target, pv.Leader) {
				return fmt.Errorf("broker %d: leader %d replicas %v isr %v", id, pv.Leader, pv.Replicas, pv.ISR)
			}
		}
		named, all, err := listed()
		if err != nil {
			return err
		}
		if len(named)+len(all) != 0 {
			return fmt.Errorf("still listed: %q, %q", named, all)
		}
		return nil
	})
	eventually(t, clusterSettle, fmt.Sprintf("broker %d no longer holds a log of %s/0", leaving, topic), func() error {
		dirs, err := kadm.NewClient(cl).DescribeBrokerLogDirs(ctx, leaving, nil)
		if err != nil {
			return err
		}
		var held error
		dirs.Each(func(d kadm.DescribedLogDir) {
			if _, ok := d.Topics[topic]; ok {
				held = fmt.Errorf("log dir %s holds %s", d.Dir, topic)
			}
		})
		return held
	})
	// The joining replica has every record: with the staying one gone
	// it leads and serves them all.
	c.stop(staying)
	if l := c.leaderOf(topic, 0); l != joining {
		t.Fatalf("leader %d with broker %d down, want %d", l, staying, joining)
	}
	got := consumeAll(t, c.brokers[joining].Addr, topic, 1)[0]
	if len(got) != n {
		t.Fatalf("read %d records from the moved replica, want %d", len(got), n)
	}
	for i, r := range got {
		if want := fmt.Sprintf("r%03d", i); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Value, want)
		}
	}
}

// readRecord decodes the record at the start of b (a varint length, then
// the record) and returns its size.
func readRecord(b []byte, r *kmsg.Record) (int, error) {
	l, n := binary.Varint(b)
	if n <= 0 || l < 0 || int(l) > len(b)-n {
		return 0, errors.New("bad record length")
	}
	size := n + int(l)
	return size, r.ReadFrom(b[:size])
}

// produceOne sends one Produce of a record holding value to partition 0 of
// topic, to the broker at addr alone, with acks and the timeout in
// milliseconds, and returns the partition's error code.
func produceOne(t *testing.T, addr, topic string, acks kgo.Acks, timeout int32, value string) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = timeout
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = clusterBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// franz-go sets the request's acks from its RequiredAcks option.
	resp, err := ask(addr, req, kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// TestReplicationLaggingFollower: a follower that stops fetching (its
// process stopped with SIGSTOP, its ZooKeeper session still alive) leaves
// the ISR after replica.lag.time.max.ms, by its leader's doing, and the
// leader's acks=all produces go on without it; resumed, it catches up and
// the leader takes it back into the ISR.
func TestReplicationLaggingFollower(t *testing.T) {
	t.Parallel()
	const topic = "lagging"
	// The session outlives the lag bound by far: only the leader can
	// take the follower out in time.
	c := startReplicated(t, []string{"zookeeper.session.timeout.ms=30000", "replica.lag.time.max.ms=1500"}, nil, topic, 1, 3, minISR2)
	leader := c.leaderOf(topic, 0)
	follower := c.other(leader)
	addr := c.brokers[leader].Addr
	c.brokers[follower].Pause()
	stopped := time.Now()
	want := []int32{1, 2, 3}
	want = slices.DeleteFunc(want, func(id int32) bool { return id == follower })
	eventually(t, clusterSettle, fmt.Sprintf("broker %d leaves the ISR of %s/0", follower, topic), func() error {
		v, err := metadataOf(addr, []string{topic})
		if err != nil {
			return err
		}
		if isr := v.Topics[topic].Partitions[0].ISR; !slices.Equal(isr, want) {
			return fmt.Errorf("ISR %v", isr)
		}
		return nil
	})
	shrunk := time.Since(stopped)
	if ids, err := c.registered(); err != nil || !slices.Contains(ids, follower) {
		t.Fatalf("broker %d's registration is gone (%v, %v): its session expired, so the controller, not the leader, may have acted", follower, ids, err)
	}
	t.Logf("ISR shrank %v after the follower stopped (replica.lag.time.max.ms=1500)", shrunk.Round(time.Millisecond))
	if code := produceOne(t, addr, topic, kgo.AllISRAcks(), 10000, "without the laggard"); code != 0 {
		t.Errorf("acks=all with the laggard out of the ISR: %v", kerr.ErrorForCode(code))
	}
	c.brokers[follower].Resume()
	c.waitFullISR(topic, 3)
}
