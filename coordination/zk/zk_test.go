package zk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/coordination/zk/zktest"
)

func quiet() *slog.Logger {
	if os.Getenv("ZKTEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// member is one broker's coordinator in a test cluster.
type member struct {
	z    *ZK
	opts Options
}

// testOptions are broker id's options against server connect, with its
// own log dir.
func testOptions(t *testing.T, connect string, id int32) Options {
	return Options{
		Connect: connect, SessionTimeout: 2 * time.Second, ConnectionTimeout: 20 * time.Second,
		BrokerID: id, LogDirs: []string{t.TempDir()},
		Advertised:           coordination.Broker{Host: "127.0.0.1", Port: 9000 + id},
		ValidateTopicConfigs: config.ValidateTopicConfigs,
		Logger:               quiet(),
	}
}

func openZK(t *testing.T, opts Options) *ZK {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	z, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open broker %d: %v", opts.BrokerID, err)
	}
	t.Cleanup(func() { z.Close() })
	return z
}

// cluster opens brokers 1..n.
func cluster(t *testing.T, connect string, n int) []*member {
	var ms []*member
	for id := range int32(n) {
		o := testOptions(t, connect, id+1)
		ms = append(ms, &member{z: openZK(t, o), opts: o})
	}
	return ms
}

// raw connects a plain client, as an operator's zkCli would.
func raw(t *testing.T, s *zktest.Server) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{s.Addr()}, 5*time.Second, zk.WithLogger(zkLogger{quiet()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func getJSON(t *testing.T, c *zk.Conn, path string, v any) {
	t.Helper()
	data, _, err := c.Get(path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, data)
	}
}

// waitUntil polls cond on z's snapshots until it holds, bounded.
func waitUntil(t *testing.T, z *ZK, what string, cond func(*coordination.Snapshot) bool) *coordination.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !z.waitFor(ctx, cond) {
		t.Fatalf("broker %d: %s: not within 30s; snapshot %+v", z.BrokerID(), what, z.Snapshot())
	}
	return z.Snapshot()
}

func controllerOf(ms []*member) *member {
	for _, m := range ms {
		if active, _, _ := m.z.ctl.state(); active {
			return m
		}
	}
	return nil
}

// TestLayout: three brokers register in Kafka's layout, one is
// controller, and each log dir names the cluster and the broker.
func TestLayout(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	c := raw(t, s)
	ids, _, err := c.Children("/brokers/ids")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"1", "2", "3"}) {
		t.Errorf("/brokers/ids = %v", ids)
	}
	var b brokerZNode
	getJSON(t, c, "/brokers/ids/2", &b)
	if b.Version != 5 || b.Host != "127.0.0.1" || b.Port != 9002 || !slices.Equal(b.Endpoints, []string{"PLAINTEXT://127.0.0.1:9002"}) || b.ProtocolMap["PLAINTEXT"] != "PLAINTEXT" {
		t.Errorf("/brokers/ids/2 = %+v", b)
	}
	if _, st, _ := c.Get("/brokers/ids/2"); st.EphemeralOwner == 0 {
		t.Error("/brokers/ids/2 is not ephemeral")
	}
	var cid clusterIDZNode
	getJSON(t, c, "/cluster/id", &cid)
	if cid.Version != "1" || cid.ID != ms[0].z.ClusterID() {
		t.Errorf("/cluster/id = %+v, coordinator says %s", cid, ms[0].z.ClusterID())
	}
	snap := waitUntil(t, ms[0].z, "a controller", func(s *coordination.Snapshot) bool { return s.ControllerID > 0 && len(s.Brokers) == 3 })
	var ctl controllerZNode
	getJSON(t, c, "/controller", &ctl)
	if ctl.Version != 1 || ctl.BrokerID != snap.ControllerID {
		t.Errorf("/controller = %+v, snapshot says %d", ctl, snap.ControllerID)
	}
	if data, _, _ := c.Get("/controller_epoch"); string(data) != "1" {
		t.Errorf("/controller_epoch = %q", data)
	}
	active := 0
	for _, m := range ms {
		if a, _, _ := m.z.ctl.state(); a {
			active++
		}
		data, err := os.ReadFile(filepath.Join(m.opts.LogDirs[0], "meta.properties"))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := coordination.DecodeMetaProperties(data)
		if err != nil || meta.BrokerID != m.z.BrokerID() || meta.ClusterID != cid.ID {
			t.Errorf("meta.properties of broker %d: %+v, %v", m.z.BrokerID(), meta, err)
		}
	}
	if active != 1 {
		t.Errorf("%d brokers act as controller", active)
	}
	for _, path := range []string{"/brokers/topics", "/config/topics", "/admin/delete_topics", "/isr_change_notification"} {
		if ok, _, err := c.Exists(path); !ok || err != nil {
			t.Errorf("%s missing: %v", path, err)
		}
	}
}

// TestTopics: a topic created through one broker is seen by all with its
// leaders spread over the brokers, in Kafka's znodes; configs, partitions
// added and deletion go through ZooKeeper too.
func TestTopics(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	c := raw(t, s)
	ctx := context.Background()
	topic, err := ms[1].z.CreateTopic(ctx, coordination.TopicSpec{Name: "Topic1", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "60000"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	for _, p := range topic.Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) != 3 || leaders[-1] {
		t.Errorf("CreateTopic returned leaders %v; want the 3 brokers", topic.Partitions)
	}
	for _, m := range ms {
		snap := waitUntil(t, m.z, "Topic1", func(s *coordination.Snapshot) bool { return s.Topics["Topic1"] != nil })
		got := snap.Topics["Topic1"]
		if got.ID != topic.ID || len(got.Partitions) != 3 || got.Configs["retention.ms"] != "60000" || snap.TopicsByID[topic.ID] != got {
			t.Errorf("broker %d sees %+v", m.z.BrokerID(), got)
		}
	}
	if _, err := ms[2].z.CreateTopic(ctx, coordination.TopicSpec{Name: "Topic1", Partitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, coordination.ErrTopicExists) {
		t.Errorf("second create: %v", err)
	}
	if _, err := ms[2].z.CreateTopic(ctx, coordination.TopicSpec{Name: "big", Partitions: 1, ReplicationFactor: 4}, false); !errors.Is(err, coordination.ErrInvalidReplication) {
		t.Errorf("rf 4 on 3 brokers: %v", err)
	}
	bad := map[string]string{"retention.ms": "soon"}
	if _, err := ms[2].z.CreateTopic(ctx, coordination.TopicSpec{Name: "bad", Partitions: 1, ReplicationFactor: 1, Configs: bad}, false); !errors.Is(err, coordination.ErrInvalidConfig) || !errors.Is(err, config.ErrInvalidConfig) {
		t.Errorf("bad config: %v, want coordination's and config's ErrInvalidConfig", err)
	}
	if err := ms[2].z.AlterTopicConfig(ctx, "Topic1", bad); !errors.Is(err, coordination.ErrInvalidConfig) || !errors.Is(err, config.ErrInvalidConfig) {
		t.Errorf("altering to a bad config: %v, want coordination's and config's ErrInvalidConfig", err)
	}
	var tz topicZNode
	getJSON(t, c, "/brokers/topics/Topic1", &tz)
	if tz.Version != 3 || tz.TopicID != topic.ID.String() || len(tz.Partitions) != 3 || tz.AddingReplicas == nil || tz.RemovingReplicas == nil {
		t.Errorf("/brokers/topics/Topic1 = %+v", tz)
	}
	for p := range 3 {
		var st stateZNode
		getJSON(t, c, fmt.Sprintf("/brokers/topics/Topic1/partitions/%d/state", p), &st)
		if st.Version != 1 || st.ControllerEpoch != 1 || st.Leader != tz.Partitions[strconv.Itoa(p)][0] || !slices.Equal(st.ISR, []int32{st.Leader}) {
			t.Errorf("state of partition %d: %+v", p, st)
		}
	}
	var cz configZNode
	getJSON(t, c, "/config/topics/Topic1", &cz)
	if cz.Version != 1 || cz.Config["retention.ms"] != "60000" {
		t.Errorf("/config/topics/Topic1 = %+v", cz)
	}

	if err := ms[0].z.AlterTopicConfig(ctx, "Topic1", map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ms[2].z, "altered config", func(s *coordination.Snapshot) bool { return s.Topics["Topic1"].Configs["retention.ms"] == "1000" })
	if err := ms[0].z.CreatePartitions(ctx, "Topic1", 5, nil, false); err != nil {
		t.Fatal(err)
	}
	snap := waitUntil(t, ms[2].z, "5 partitions led", func(s *coordination.Snapshot) bool {
		t := s.Topics["Topic1"]
		return len(t.Partitions) == 5 && t.Partitions[4].Leader > 0
	})
	if got := snap.Topics["Topic1"].ID; got != topic.ID {
		t.Errorf("topic id changed to %v with new partitions", got)
	}

	if err := ms[2].z.DeleteTopic(ctx, "Topic1"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitUntil(t, m.z, "Topic1 gone", func(s *coordination.Snapshot) bool { return s.Topics["Topic1"] == nil })
	}
	for _, path := range []string{"/brokers/topics/Topic1", "/config/topics/Topic1", "/admin/delete_topics/Topic1"} {
		if ok, _, _ := c.Exists(path); ok {
			t.Errorf("%s left after deletion", path)
		}
	}
	if err := ms[0].z.DeleteTopic(ctx, "Topic1"); !errors.Is(err, coordination.ErrUnknownTopic) {
		t.Errorf("deleting again: %v", err)
	}
	// Producer id blocks never overlap across brokers.
	seen := map[int64]bool{}
	for i := range 6 {
		start, count, err := ms[i%3].z.NextProducerIDBlock(ctx)
		if err != nil || count != 1000 || seen[start] {
			t.Fatalf("block %d: %d+%d, %v", i, start, count, err)
		}
		seen[start] = true
	}
}

// TestFailover: the controller's broker leaves; another takes over with a
// higher epoch and topic creation still works. A broker that leads a
// partition alone leaves: the partition has no leader until it is back,
// with its id from meta.properties.
func TestFailover(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 3)
	ctx := context.Background()
	waitUntil(t, ms[0].z, "a controller", func(s *coordination.Snapshot) bool { return s.ControllerID > 0 })
	old := controllerOf(ms)
	if old == nil {
		t.Fatal("no controller")
	}
	old.z.Close()
	var rest []*member
	for _, m := range ms {
		if m != old {
			rest = append(rest, m)
		}
	}
	var snap *coordination.Snapshot
	for _, m := range rest {
		snap = waitUntil(t, m.z, "a new controller", func(s *coordination.Snapshot) bool {
			return s.ControllerID > 0 && s.ControllerID != old.z.BrokerID() && len(s.Brokers) == 2
		})
	}
	c := raw(t, s)
	if data, _, _ := c.Get("/controller_epoch"); string(data) != "2" {
		t.Errorf("/controller_epoch after failover = %q", data)
	}
	topic, err := rest[1].z.CreateTopic(ctx, coordination.TopicSpec{Name: "Topic2", Partitions: 2, ReplicationFactor: 1}, false)
	if err != nil {
		t.Fatalf("create after failover: %v", err)
	}
	for _, p := range topic.Partitions {
		if p.Leader < 0 || p.Leader == old.z.BrokerID() {
			t.Fatalf("partition %d led by %d", p.Index, p.Leader)
		}
	}
	t.Logf("controller %d replaced by %d", old.z.BrokerID(), snap.ControllerID)

	// The broker leading partition 0 leaves and comes back.
	const led = 0
	victim := rest[0]
	if topic.Partitions[led].Leader != victim.z.BrokerID() {
		victim = rest[1]
	}
	other := rest[0]
	if other == victim {
		other = rest[1]
	}
	epoch := topic.Partitions[led].LeaderEpoch
	victim.z.Close()
	waitUntil(t, other.z, "a leaderless partition", func(s *coordination.Snapshot) bool {
		return s.Topics["Topic2"].Partitions[led].Leader == -1
	})
	opts := victim.opts
	opts.BrokerID = -1 // from meta.properties
	back := openZK(t, opts)
	if back.BrokerID() != victim.z.BrokerID() {
		t.Fatalf("came back as broker %d, was %d", back.BrokerID(), victim.z.BrokerID())
	}
	snap = waitUntil(t, other.z, "the partition led again", func(s *coordination.Snapshot) bool {
		return s.Topics["Topic2"].Partitions[led].Leader == back.BrokerID()
	})
	if e := snap.Topics["Topic2"].Partitions[led].LeaderEpoch; e <= epoch {
		t.Errorf("leader epoch %d after the return, was %d", e, epoch)
	}
}

// TestIdentity: a log dir of another cluster is refused; a duplicate
// broker id is refused; generated ids are kept in meta.properties; a chroot
// keeps the cluster below it.
func TestIdentity(t *testing.T) {
	s := zktest.Start(t)
	o := testOptions(t, s.Connect()+"/strata/a", 1)
	z := openZK(t, o)
	c := raw(t, s)
	if ok, _, _ := c.Exists("/strata/a/brokers/ids/1"); !ok {
		t.Error("not registered below the chroot")
	}
	if ok, _, _ := c.Exists("/brokers"); ok {
		t.Error("znodes outside the chroot")
	}
	dup := testOptions(t, s.Connect()+"/strata/a", 1)
	if _, err := Open(context.Background(), dup); err == nil || !errIs(err, "registered by another live broker") {
		t.Errorf("duplicate broker id: %v", err)
	}
	// Another cluster (another chroot) refuses broker 1's log dir.
	other := o
	other.Connect = s.Connect() + "/strata/b"
	if _, err := Open(context.Background(), other); err == nil || !errIs(err, "belongs to cluster "+z.ClusterID()) {
		t.Errorf("foreign log dir: %v", err)
	}
	gen := testOptions(t, s.Connect()+"/strata/a", -1)
	gen.GenerateBrokerID = true
	g := openZK(t, gen)
	if g.BrokerID() <= 1000 {
		t.Errorf("generated id %d, want > reserved.broker.max.id", g.BrokerID())
	}
	id := g.BrokerID()
	g.Close()
	again := openZK(t, gen)
	if again.BrokerID() != id {
		t.Errorf("generated id %d came back as %d", id, again.BrokerID())
	}
	none := testOptions(t, s.Connect()+"/strata/a", -1)
	if _, err := Open(context.Background(), none); err == nil {
		t.Error("no broker id and no generation: opened")
	}
}

func errIs(err error, sub string) bool { return err != nil && strings.Contains(err.Error(), sub) }

// TestZooKeeperOutage: ZooKeeper stops for longer than the sessions last;
// the brokers keep their last view, and when it is back they register
// again and a controller is elected, without a restart.
func TestZooKeeperOutage(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 2)
	ctx := context.Background()
	if _, err := ms[0].z.CreateTopic(ctx, coordination.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	before := waitUntil(t, ms[1].z, "t", func(s *coordination.Snapshot) bool { return s.Topics["t"] != nil })
	sessions := []int64{ms[0].z.conn.SessionID(), ms[1].z.conn.SessionID()}
	s.Stop()
	// Longer than the session timeout (2s): the sessions expire when
	// the server is back.
	time.Sleep(3 * time.Second) // the outage itself, not a synchronisation
	if got := ms[1].z.Snapshot(); got.Topics["t"] == nil || len(got.Brokers) != len(before.Brokers) {
		t.Errorf("view during the outage: %+v", got)
	}
	if _, err := ms[0].z.CreateTopic(ctx, coordination.TopicSpec{Name: "u", Partitions: 1, ReplicationFactor: 1}, false); err == nil {
		t.Error("created a topic with ZooKeeper down")
	}
	s.Restart(t)
	c := raw(t, s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids, _, err := c.Children("/brokers/ids")
		if err == nil && len(ids) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokers not registered again: %v %v", ids, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, m := range ms {
		if m.z.conn.SessionID() == sessions[i] {
			t.Logf("broker %d kept its session", m.z.BrokerID())
		}
	}
	waitUntil(t, ms[0].z, "a controller again", func(s *coordination.Snapshot) bool { return s.ControllerID > 0 && len(s.Brokers) == 2 })
	// A broker that kept its session may still be reconnecting (its
	// registration outlived the outage): it answers "metadata
	// unavailable", retriable, until it is back.
	for deadline, retried := time.Now().Add(30*time.Second), false; ; retried = true {
		_, err := ms[1].z.CreateTopic(ctx, coordination.TopicSpec{Name: "u", Partitions: 2, ReplicationFactor: 1}, false)
		if err == nil || retried && errors.Is(err, coordination.ErrTopicExists) {
			break // (an attempt that lost its connection may have made it)
		}
		if !errors.Is(err, coordination.ErrMetadataUnavailable) || time.Now().After(deadline) {
			t.Fatalf("create after the outage: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitUntil(t, ms[0].z, "u led", func(s *coordination.Snapshot) bool {
		u := s.Topics["u"]
		return u != nil && u.Partitions[0].Leader > 0 && u.Partitions[1].Leader > 0
	})
}

// proxy forwards TCP connections to a ZooKeeper server until blocked:
// blocking cuts every connection and refuses new ones, so the server
// expires the sessions behind it while it keeps running.
type proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.block() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			blocked := p.blocked
			p.mu.Unlock()
			if blocked {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) unblock() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}

// TestSessionExpiry: a broker cut off from ZooKeeper longer than its
// session lasts loses its registration (and its controllership); when it
// reaches ZooKeeper again it registers again on a new session and follows
// the cluster again, without a restart.
func TestSessionExpiry(t *testing.T) {
	s := zktest.Start(t)
	px := newProxy(t, s.Addr())
	o := testOptions(t, px.addr(), 1)
	z := openZK(t, o)
	other := openZK(t, testOptions(t, s.Connect(), 2))
	waitUntil(t, other, "broker 1 as controller", func(s *coordination.Snapshot) bool { return s.ControllerID == 1 && len(s.Brokers) == 2 })
	session := z.conn.SessionID()
	px.block()
	// Broker 1's session expires: broker 2 sees it leave and takes over.
	waitUntil(t, other, "broker 1 gone, 2 controller", func(s *coordination.Snapshot) bool {
		return len(s.Brokers) == 1 && s.ControllerID == 2
	})
	if _, err := other.CreateTopic(context.Background(), coordination.TopicSpec{Name: "during", Partitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	px.unblock()
	snap := waitUntil(t, z, "back on a new session, seeing the topic made meanwhile", func(s *coordination.Snapshot) bool {
		return len(s.Brokers) == 2 && s.Topics["during"] != nil && s.ControllerID == 2
	})
	if z.conn.SessionID() == session {
		t.Error("the session did not change")
	}
	if active, _, _ := z.ctl.state(); active {
		t.Error("broker 1 still acts as controller")
	}
	waitUntil(t, other, "broker 1 registered again", func(s *coordination.Snapshot) bool { return len(s.Brokers) == 2 })
	t.Logf("controller %d, brokers %v", snap.ControllerID, snap.Brokers)
}

// TestRegisterLater: a broker whose port is not known at Open (port 0)
// joins the cluster when Register gives its address, and only then
// stands for controller.
func TestRegisterLater(t *testing.T) {
	s := zktest.Start(t)
	o := testOptions(t, s.Connect(), 7)
	o.Advertised.Port = 0
	z := openZK(t, o)
	c := raw(t, s)
	if ok, _, _ := c.Exists("/brokers/ids/7"); ok {
		t.Fatal("registered before Register")
	}
	if ok, _, _ := c.Exists("/controller"); ok {
		t.Fatal("an unregistered broker became controller")
	}
	if err := z.Register(context.Background(), coordination.Broker{Host: "127.0.0.1", Port: 4567}); err != nil {
		t.Fatal(err)
	}
	snap := z.Snapshot()
	if !slices.Contains(snap.Brokers, coordination.Broker{ID: 7, Host: "127.0.0.1", Port: 4567}) {
		t.Errorf("Register returned before the broker saw itself: %v", snap.Brokers)
	}
	waitUntil(t, z, "controller 7", func(s *coordination.Snapshot) bool { return s.ControllerID == 7 })
}

// TestRestartBeforeExpiry: a broker that crashed and restarts before its
// old session expired waits that registration out instead of failing.
func TestRestartBeforeExpiry(t *testing.T) {
	s := zktest.Start(t)
	px := newProxy(t, s.Addr())
	o := testOptions(t, px.addr(), 4)
	openZK(t, o)
	px.block() // the old process is gone; its session lingers
	again := o
	again.Connect = s.Connect()
	start := time.Now()
	z := openZK(t, again)
	waited := time.Since(start)
	if z.BrokerID() != 4 {
		t.Fatalf("broker id %d", z.BrokerID())
	}
	c := raw(t, s)
	_, st, err := c.Get("/brokers/ids/4")
	if err != nil || st.EphemeralOwner != z.conn.SessionID() {
		t.Errorf("/brokers/ids/4 owned by %#x, want the new session %#x (%v)", st.EphemeralOwner, z.conn.SessionID(), err)
	}
	t.Logf("registered after %v", waited)
}

func TestParseConnect(t *testing.T) {
	for _, tc := range []struct {
		in      string
		servers []string
		chroot  string
		bad     bool
	}{
		{in: "h1:2181", servers: []string{"h1:2181"}},
		{in: "h1:2181, h2:2182,h3:2183/strata", servers: []string{"h1:2181", "h2:2182", "h3:2183"}, chroot: "/strata"},
		{in: "h1:2181/a/b", servers: []string{"h1:2181"}, chroot: "/a/b"},
		{in: "h1:2181/", bad: true},
		{in: "h1:2181/a//b", bad: true},
		{in: "/strata", bad: true},
	} {
		servers, chroot, err := ParseConnect(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.in)
			}
			continue
		}
		if err != nil || !slices.Equal(servers, tc.servers) || chroot != tc.chroot {
			t.Errorf("%q: %v %q %v", tc.in, servers, chroot, err)
		}
	}
}

// TestDeleteRecreate: a topic deleted and created again at once is the new
// topic, with its config, everywhere: DeleteTopic returns once the name is
// free, and the controller's deletion never reaches the new topic.
func TestDeleteRecreate(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 2)
	c := raw(t, s)
	ctx := context.Background()
	spec := coordination.TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1234"}}
	for i := range 10 {
		z := ms[i%2].z
		if _, err := z.CreateTopic(ctx, spec, false); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if err := z.DeleteTopic(ctx, "x"); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
		created, err := z.CreateTopic(ctx, spec, false)
		if err != nil {
			t.Fatalf("create again %d, right after the deletion: %v", i, err)
		}
		for _, m := range ms {
			waitUntil(t, m.z, "the new topic", func(s *coordination.Snapshot) bool {
				x := s.Topics["x"]
				return x != nil && x.ID == created.ID && x.Configs["retention.ms"] == "1234" && !slices.Contains(m.z.currentModel().deleting, "x")
			})
		}
		var tz topicZNode
		getJSON(t, c, "/brokers/topics/x", &tz)
		var cz configZNode
		getJSON(t, c, "/config/topics/x", &cz)
		if tz.TopicID != created.ID.String() || cz.Config["retention.ms"] != "1234" {
			t.Fatalf("round %d: znodes say topic %s config %v; want %s with its config", i, tz.TopicID, cz.Config, created.ID)
		}
		if err := z.DeleteTopic(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnreadableTopic: a topic znode that does not decode is reported as
// unreadable, or kept as last read, never taken for a deleted topic.
func TestUnreadableTopic(t *testing.T) {
	s := zktest.Start(t)
	ms := cluster(t, s.Connect(), 1)
	z := ms[0].z
	c := raw(t, s)
	if _, err := c.Create("/brokers/topics/strange", []byte(`{"version":3,"partitions":{"7":[1]}}`), 0, acl); err != nil {
		t.Fatal(err)
	}
	snap := waitUntil(t, z, "strange reported", func(s *coordination.Snapshot) bool { return s.Unreadable["strange"] })
	if snap.Topics["strange"] != nil {
		t.Errorf("an unreadable topic in Topics: %+v", snap.Topics["strange"])
	}
	topic, err := z.CreateTopic(context.Background(), coordination.TopicSpec{Name: "known", Partitions: 1, ReplicationFactor: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set("/brokers/topics/known", []byte("garbage"), -1); err != nil {
		t.Fatal(err)
	}
	// A refresh after the change keeps the topic as last read.
	if _, err := c.Create("/brokers/topics/other", encodeTopic(coordination.TopicID{1}, [][]int32{{1}}), 0, acl); err != nil {
		t.Fatal(err)
	}
	snap = waitUntil(t, z, "other seen", func(s *coordination.Snapshot) bool { return s.Topics["other"] != nil })
	if k := snap.Topics["known"]; k == nil || k.ID != topic.ID || snap.Unreadable["known"] {
		t.Errorf("known after its znode went bad: %+v, unreadable %v", k, snap.Unreadable)
	}
}
