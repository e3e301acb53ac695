//go:build linux

package e2e

// The harness of the cluster tests (cluster_test.go): ZooKeeper, brokers
// started and stopped by id, and the requests and checks they share.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/coordination/zk/zktest"
)

// clusterOverrides are given to every broker of a test cluster: groups
// form at once, and a SIGKILLed broker's session (its registration, and
// /controller if it held it) ends within 6s rather than the default 18s.
// The tests' deadlines allow for the default too.
var clusterOverrides = []string{
	"group.initial.rebalance.delay.ms=0",
	"zookeeper.session.timeout.ms=6000",
}

// clusterSettle bounds how long a cluster may take to show a change
// (a registration, an election, a new topic's leaders) in ZooKeeper and
// in every broker's Metadata: a killed broker's session must time out
// first (up to 18s if zookeeper.session.timeout.ms were not honoured).
const clusterSettle = 60 * time.Second

// cluster is one ZooKeeper and the strata brokers of a test.
type cluster struct {
	t       *testing.T
	zk      *zktest.Server
	chroot  string // "" or "/name"
	connect string // zookeeper.connect
	conn    *zk.Conn
	dirs    map[int32]string  // broker id → log dir, kept across restarts
	ports   map[int32]string  // broker id → the address it served on first, kept across restarts
	brokers map[int32]*broker // the running ones
	// overrides are given to every broker after clusterOverrides (a
	// test's own settings win), then perBroker's for that broker.
	overrides []string
	perBroker map[int32][]string
}

// newCluster starts ZooKeeper and connects the test's own client, which
// reads the layout below chroot as an operator's zkCli would. The brokers
// are started by start; cleanups run in reverse, so they are killed before
// the client closes and ZooKeeper stops.
func newCluster(t *testing.T, chroot string) *cluster {
	t.Helper()
	s := zktest.Start(t)
	c := &cluster{t: t, zk: s, chroot: chroot, connect: s.Connect() + chroot,
		dirs: map[int32]string{}, ports: map[int32]string{}, brokers: map[int32]*broker{}}
	c.reconnect()
	t.Cleanup(func() { c.conn.Close() })
	return c
}

// reconnect gives the test's own client a new connection to ZooKeeper
// (the first, or after ZooKeeper restarted: the old connection's
// reconnect attempts can run past a test's patience on a loaded
// machine, and the test reads the layout, not its session).
func (c *cluster) reconnect() {
	c.t.Helper()
	conn, _, err := zk.Connect([]string{c.zk.Addr()}, 30*time.Second, zk.WithLogger(quietZK{}))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn = conn
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// start starts broker id with its log dir (the same one on every start),
// zookeeper.connect and clusterOverrides, the environment env, and
// broker.id=id unless idFromMeta (then the broker must take its id from
// the meta.properties of its log dir).
func (c *cluster) start(id int32, env []string, idFromMeta bool) *broker {
	c.t.Helper()
	dir, ok := c.dirs[id]
	if !ok {
		dir = filepath.Join(c.t.TempDir(), fmt.Sprintf("broker-%d", id))
		if err := os.Mkdir(dir, 0o755); err != nil {
			c.t.Fatal(err)
		}
		c.dirs[id] = dir
	}
	overrides := append([]string{"zookeeper.connect=" + c.connect}, clusterOverrides...)
	overrides = append(overrides, c.overrides...)
	overrides = append(overrides, c.perBroker[id]...)
	if !idFromMeta {
		overrides = append(overrides, fmt.Sprintf("broker.id=%d", id))
	}
	if addr, ok := c.ports[id]; ok {
		// Back on its port, as a restarted broker is in production:
		// a client that knows the cluster only by addresses it learnt
		// finds it there.
		overrides = append(overrides, "listeners=PLAINTEXT://"+addr)
	}
	b := startBroker(c.t, dir, env, overrides...)
	c.brokers[id] = b
	c.ports[id] = b.Addr
	return b
}

// startAll starts brokers 1, 2 and 3 and waits until all three are
// registered. Only broker 3, started once 1 and 2 are registered, is given
// env: a topic is placed over the brokers registered when it is created,
// so KAFKA_CREATE_TOPICS spreads its topics over all three only if it runs
// last. (TestClusterSeed then restarts 1 and 2 with env too, to see that
// they leave the existing topics alone.)
func (c *cluster) startAll(env []string) {
	c.t.Helper()
	c.start(1, nil, false)
	c.start(2, nil, false)
	c.waitRegistered()
	c.start(3, env, false)
	c.waitRegistered()
}

// stop stops broker id with SIGTERM (a clean exit) and forgets it.
func (c *cluster) stop(id int32) {
	c.t.Helper()
	c.brokers[id].Stop()
	delete(c.brokers, id)
}

// kill kills broker id with SIGKILL and forgets it.
func (c *cluster) kill(id int32) {
	c.t.Helper()
	c.brokers[id].Kill()
	delete(c.brokers, id)
}

// live returns the running brokers' addresses by id.
func (c *cluster) live() map[int32]string {
	m := map[int32]string{}
	for id, b := range c.brokers {
		m[id] = b.Addr
	}
	return m
}

// addrs returns the running brokers' addresses, by id.
func (c *cluster) addrs() []string {
	var as []string
	for _, id := range slices.Sorted(maps.Keys(c.brokers)) {
		as = append(as, c.brokers[id].Addr)
	}
	return as
}

// other returns a running broker other than id (the lowest).
func (c *cluster) other(id int32) int32 {
	c.t.Helper()
	for _, o := range slices.Sorted(maps.Keys(c.brokers)) {
		if o != id {
			return o
		}
	}
	c.t.Fatalf("no running broker other than %d", id)
	return -1
}

// zget reads the znode path below the chroot.
func (c *cluster) zget(path string) ([]byte, error) {
	data, _, err := c.conn.Get(c.chroot + path)
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper get %s%s: %w", c.chroot, path, err)
	}
	return data, nil
}

// zjson decodes the JSON of the znode path below the chroot into v.
func (c *cluster) zjson(path string, v any) error {
	data, err := c.zget(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s%s is not the JSON expected: %v: %s", c.chroot, path, err, data)
	}
	return nil
}

// zchildren lists the children of path below the chroot, sorted.
func (c *cluster) zchildren(path string) ([]string, error) {
	kids, _, err := c.conn.Children(c.chroot + path)
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper children of %s%s: %w", c.chroot, path, err)
	}
	slices.Sort(kids)
	return kids, nil
}

// registered returns the broker ids in /brokers/ids.
func (c *cluster) registered() ([]int32, error) {
	kids, err := c.zchildren("/brokers/ids")
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, k := range kids {
		id, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("/brokers/ids/%s is not a broker id", k)
		}
		ids = append(ids, int32(id))
	}
	slices.Sort(ids)
	return ids, nil
}

// waitRegistered waits until /brokers/ids holds exactly the running
// brokers.
func (c *cluster) waitRegistered() {
	c.t.Helper()
	want := slices.Sorted(maps.Keys(c.brokers))
	eventually(c.t, clusterSettle, fmt.Sprintf("/brokers/ids lists exactly the running brokers %v", want), func() error {
		ids, err := c.registered()
		if err != nil {
			return err
		}
		if !slices.Equal(ids, want) {
			return fmt.Errorf("/brokers/ids has %v", ids)
		}
		return nil
	})
}

// controller returns /controller's broker id and /controller_epoch.
func (c *cluster) controller() (id, epoch int32, err error) {
	var ctl struct {
		Version  *int   `json:"version"`
		BrokerID *int32 `json:"brokerid"`
	}
	if err := c.zjson("/controller", &ctl); err != nil {
		return -1, -1, err
	}
	if ctl.Version == nil || *ctl.Version != 1 || ctl.BrokerID == nil {
		data, _ := c.zget("/controller")
		return -1, -1, fmt.Errorf(`/controller is %s, want {"version":1,"brokerid":N,"timestamp":"..."}`, data)
	}
	data, err := c.zget("/controller_epoch")
	if err != nil {
		return -1, -1, err
	}
	e, err := strconv.ParseInt(string(data), 10, 32)
	if err != nil {
		return -1, -1, fmt.Errorf("/controller_epoch is %q, want a decimal epoch", data)
	}
	return *ctl.BrokerID, int32(e), nil
}

// eventually calls check every 50ms until it returns nil, and fails the
// test with what was expected and check's last error if timeout passes
// first.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want: %s; not within %v; last: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ask sends req to the broker at addr and to no other (franz-go's seed
// broker, so the client's view of the cluster does not reroute it). The
// client's options opts apply; note that franz-go sets a Produce
// request's acks from its RequiredAcks option (default all).
func ask(addr string, req kmsg.Request, opts ...kgo.Opt) (kmsg.Response, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTimeout(3 * time.Second)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// clusterView is one broker's Metadata answer.
type clusterView struct {
	ClusterID  string
	Controller int32
	Brokers    map[int32]string // id → host:port
	Topics     map[string]topicView
}

type topicView struct {
	Err        int16
	ID         [16]byte
	Internal   bool
	Partitions []partitionView // by index
}

type partitionView struct {
	Err         int16
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// String renders what every broker must agree on (brokers, topics,
// leaders, replicas, ISR), in a stable order.
func (v clusterView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "brokers")
	for _, id := range slices.Sorted(maps.Keys(v.Brokers)) {
		fmt.Fprintf(&b, " %d@%s", id, v.Brokers[id])
	}
	for _, name := range slices.Sorted(maps.Keys(v.Topics)) {
		t := v.Topics[name]
		fmt.Fprintf(&b, "; %s", name)
		if t.Err != 0 {
			fmt.Fprintf(&b, " error %d", t.Err)
			continue
		}
		fmt.Fprintf(&b, " id %x", t.ID)
		for i, p := range t.Partitions {
			fmt.Fprintf(&b, " [%d: leader %d epoch %d replicas %v isr %v error %d]", i, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.Err)
		}
	}
	return b.String()
}

// metadataOf asks the broker at addr for Metadata of topics (all topics
// if nil).
func metadataOf(addr string, topics []string) (clusterView, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, name := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := ask(addr, req)
	if err != nil {
		return clusterView{}, fmt.Errorf("Metadata from %s: %w", addr, err)
	}
	r := resp.(*kmsg.MetadataResponse)
	v := clusterView{Controller: r.ControllerID, Brokers: map[int32]string{}, Topics: map[string]topicView{}}
	if r.ClusterID != nil {
		v.ClusterID = *r.ClusterID
	}
	for _, b := range r.Brokers {
		v.Brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for _, t := range r.Topics {
		if t.Topic == nil {
			return v, fmt.Errorf("Metadata from %s: a topic without a name", addr)
		}
		tv := topicView{Err: t.ErrorCode, ID: t.TopicID, Internal: t.IsInternal, Partitions: make([]partitionView, len(t.Partitions))}
		for _, p := range t.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(t.Partitions) {
				return v, fmt.Errorf("Metadata from %s: %s has %d partitions, one numbered %d", addr, *t.Topic, len(t.Partitions), p.Partition)
			}
			replicas, isr := slices.Clone(p.Replicas), slices.Clone(p.ISR)
			slices.Sort(isr) // the ISR is a set; replicas keep their order
			tv.Partitions[p.Partition] = partitionView{Err: p.ErrorCode, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: replicas, ISR: isr}
		}
		v.Topics[*t.Topic] = tv
	}
	return v, nil
}

// waitMetadata waits until every running broker's Metadata lists exactly
// the running brokers at their addresses and the topics of want (name →
// partition count), every partition led by a running broker without
// error, and all the brokers agree; it returns the agreed view.
func (c *cluster) waitMetadata(want map[string]int) clusterView {
	c.t.Helper()
	live := c.live()
	names := slices.Sorted(maps.Keys(want))
	if names == nil {
		names = []string{}
	}
	var view clusterView
	what := fmt.Sprintf("every running broker's Metadata lists brokers %v and topics %v (name: partitions) with live leaders, and they agree", live, want)
	eventually(c.t, clusterSettle, what, func() error {
		var first int32 = -1
		for _, id := range slices.Sorted(maps.Keys(live)) {
			v, err := metadataOf(live[id], names)
			if err != nil {
				return fmt.Errorf("broker %d: %w", id, err)
			}
			if !maps.Equal(v.Brokers, live) {
				return fmt.Errorf("broker %d lists brokers %v", id, v.Brokers)
			}
			for _, name := range names {
				tv, ok := v.Topics[name]
				switch {
				case !ok:
					return fmt.Errorf("broker %d: no topic %s", id, name)
				case tv.Err != 0:
					return fmt.Errorf("broker %d: topic %s: %v", id, name, kerr.ErrorForCode(tv.Err))
				case len(tv.Partitions) != want[name]:
					return fmt.Errorf("broker %d: topic %s has %d partitions", id, name, len(tv.Partitions))
				}
				for p, pv := range tv.Partitions {
					if pv.Err != 0 || live[pv.Leader] == "" {
						return fmt.Errorf("broker %d: %s/%d has leader %d, error %d", id, name, p, pv.Leader, pv.Err)
					}
				}
			}
			if first < 0 {
				first, view = id, v
			} else if v.String() != view.String() {
				return fmt.Errorf("brokers disagree:\n  broker %d: %s\n  broker %d: %s", first, view, id, v)
			}
		}
		return nil
	})
	return view
}

// leadersOf returns the leader of each partition of topic in v.
func leadersOf(v clusterView, topic string) []int32 {
	var ls []int32
	for _, p := range v.Topics[topic].Partitions {
		ls = append(ls, p.Leader)
	}
	return ls
}

// createClusterTopic creates topic (partitions, replication factor 1)
// through kadm seeded at addr, retrying while the cluster cannot take it
// yet (a controller being elected, ZooKeeper reconnecting).
func createClusterTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, clusterSettle, fmt.Sprintf("CreateTopics %s (%d partitions, RF 1) through the broker at %s succeeds", topic, partitions, addr), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil // an earlier attempt made it, and timed out
		}
		return err
	})
}

// checkSeqRecords checks that recs (by partition, as consumeAll returns
// them) are the n records grpProduce wrote: record i, "topic-i", at
// partition i%parts and offset i/parts.
func checkSeqRecords(t *testing.T, recs [][]*kgo.Record, topic string, parts, n int) {
	t.Helper()
	got := 0
	for p, rs := range recs {
		for _, r := range rs {
			i, err := strconv.Atoi(strings.TrimPrefix(string(r.Value), topic+"-"))
			if err != nil || i%parts != p || int64(i/parts) != r.Offset {
				t.Errorf("%s/%d offset %d holds %q, want %s-%d", topic, p, r.Offset, r.Value, topic, int(r.Offset)*parts+p)
			}
			got++
		}
	}
	if got != n {
		t.Errorf("read %d records of %s, want the %d produced", got, topic, n)
	}
}

// clusterBatch builds an uncompressed v2 record batch of values, without
// a producer id, as broker/batch_test.go's makeBatch does.
func clusterBatch(values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		// AppendTo writes Length as given: measure the body with a
		// one-byte zero length first.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  now,
		MaxTimestamp:    now,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// produceTo sends one Produce of a record to topic/partition to the
// broker at addr alone and returns the partition's error code.
func produceTo(addr, topic string, id [16]byte, partition int32) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = clusterBatch("sent to the wrong broker")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := ask(addr, req)
	if err != nil {
		return 0, err
	}
	r := resp.(*kmsg.ProduceResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("Produce response for %d topics, want one partition of one", len(r.Topics))
	}
	return r.Topics[0].Partitions[0].ErrorCode, nil
}

// fetchFrom sends one Fetch of topic/partition from offset 0 to the broker
// at addr alone and returns the partition's error code.
func fetchFrom(addr, topic string, id [16]byte, partition int32) (int16, error) {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := ask(addr, req)
	if err != nil {
		return 0, err
	}
	r := resp.(*kmsg.FetchResponse)
	if r.ErrorCode != 0 {
		return r.ErrorCode, nil
	}
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("Fetch response for %d topics, want one partition of one", len(r.Topics))
	}
	return r.Topics[0].Partitions[0].ErrorCode, nil
}

// TestClusterSeed: ZooKeeper and three brokers (broker.id 1, 2, 3) under
// the chroot /strata, KAFKA_CREATE_TOPICS="Topic1:3:1,Topic2:2:1".
//   - Topic1 and Topic2 exist with 3 and 2 partitions, their leaders
//     spread over the brokers (Topic1: three distinct leaders), and every
//     broker's Metadata lists all three brokers and the same leaders,
//     replicas and ISR, the controller /controller names and the cluster
//     id /cluster/id holds.
//   - The ZooKeeper layout is Kafka's, below the chroot: /brokers/ids/N
//     (version 5, endpoints at the broker's address), /brokers/topics/T
//     (topic_id as Metadata's, partitions as Metadata's replicas), each
//     partition's state (leader, leader_epoch, isr, controller_epoch as
//     Metadata's), /controller, /controller_epoch, /cluster/id.
//   - A Produce or Fetch sent to a broker that does not lead the
//     partition is answered NOT_LEADER_OR_FOLLOWER.
//   - kafka-python, bootstrapped with all three brokers, produces to
//     Topic1 with acks=all and reads every message back (no group).
//   - Brokers 1 and 2, restarted with KAFKA_CREATE_TOPICS too, leave the
//     existing topics as they are.

// checkController checks that every running broker's Metadata names ctl
// as the controller, and returns what each answered.
func (c *cluster) checkController(ctl int32) map[int32]clusterView {
	c.t.Helper()
	views := map[int32]clusterView{}
	for id, addr := range c.live() {
		v, err := metadataOf(addr, []string{})
		if err != nil {
			c.t.Fatal(err)
		}
		if v.Controller != ctl {
			c.t.Errorf("broker %d's Metadata names controller %d, /controller names %d", id, v.Controller, ctl)
		}
		views[id] = v
	}
	return views
}
