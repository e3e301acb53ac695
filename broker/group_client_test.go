package broker

// Client-level acceptance tests of the classic consumer group coordinator:
// franz-go group consumers and kadm against an in-process broker, checked
// against what Apache Kafka does. Every test uses its own topics and
// groups; group.initial.rebalance.delay.ms is 0 and
// group.min.session.timeout.ms small, so groups form and expire fast.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strata-broker/strata/config"
)

// gcBroker starts a broker whose groups form at once and may use short
// session timeouts.
func gcBroker(t *testing.T) *testBroker {
	t.Helper()
	return startBroker(t, func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.GroupMinSessionTimeoutMs = 500 * time.Millisecond
	})
}

// gcClient is a client of tb owned by t (closed when t ends).
func gcClient(t *testing.T, tb *testBroker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(tb.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// gcProduce produces records from, from+1, ..., from+n-1 of topic: record
// i goes to partition i%partitions with the value "topic-i", so with
// from a multiple of partitions and nothing else produced, record i lands
// at offset i/partitions.
func gcProduce(t *testing.T, tb *testBroker, topic string, partitions int32, from, n int) {
	t.Helper()
	cl := gcClient(t, tb, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: int32(from+i) % partitions, Value: fmt.Appendf(nil, "%s-%d", topic, from+i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// gcMember is one franz-go group consumer with a poll loop of its own.
// It blocks rebalances while it handles a poll and commits what it
// polled before allowing them again, so partitions change hands only at
// committed offsets: every record is read exactly once by the group.
// The partitions it owns are tracked from its assigned, revoked and lost
// callbacks.
type gcMember struct {
	t    *testing.T
	name string
	cl   *kgo.Client

	mu         sync.Mutex
	owned      map[int32]bool
	callbacks  int // assigned, revoked and lost callbacks so far
	lost       int // lost callbacks so far
	recs       []*kgo.Record
	commitErrs []error
	pollErrs   []error

	stop chan struct{}
	done chan struct{}
}

// gcMemberOpts are the group options of gcMember besides the group and
// topic: a 3s session (1s for a member meant to die), a heartbeat every
// 100ms.
type gcMemberOpts struct {
	balancer kgo.GroupBalancer // nil: cooperative-sticky, kgo's default
	session  time.Duration     // 0: 3s
	pollMax  int               // most records a poll returns; 0: no limit
	// stopAfter stops the poll loop once this many records were read
	// and committed; 0: never.
	stopAfter int
	extra     []kgo.Opt
}

// gcJoin starts a member of group consuming topic.
func gcJoin(t *testing.T, tb *testBroker, name, group, topic string, o gcMemberOpts) *gcMember {
	t.Helper()
	m := &gcMember{t: t, name: name, owned: map[int32]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	session := o.session
	if session == 0 {
		session = 3 * time.Second
	}
	balancer := o.balancer
	if balancer == nil {
		balancer = kgo.CooperativeStickyBalancer()
	}
	opts := []kgo.Opt{
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.callbacks++
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.callbacks++
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.callbacks++
			m.lost++
			for _, p := range l[topic] {
				delete(m.owned, p)
			}
		}),
	}
	m.cl = gcClient(t, tb, append(opts, o.extra...)...)
	go m.loop(o.pollMax, o.stopAfter)
	return m
}

// loop polls until stopped, until it read stopAfter records if that is
// not 0, or for at most 60s.
func (m *gcMember) loop(pollMax, stopAfter int) {
	defer close(m.done)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		var fs kgo.Fetches
		if pollMax > 0 {
			fs = m.cl.PollRecords(ctx, pollMax)
		} else {
			fs = m.cl.PollFetches(ctx)
		}
		cancel()
		if fs.IsClientClosed() {
			return
		}
		var errs []error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, err))
			}
		})
		recs := fs.Records()
		var cerr error
		if len(recs) > 0 {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			cerr = m.cl.CommitUncommittedOffsets(cctx)
			ccancel()
		}
		m.mu.Lock()
		m.recs = append(m.recs, recs...)
		m.pollErrs = append(m.pollErrs, errs...)
		if cerr != nil {
			m.commitErrs = append(m.commitErrs, cerr)
		}
		n := len(m.recs)
		m.mu.Unlock()
		m.cl.AllowRebalance()
		if stopAfter > 0 && n >= stopAfter {
			return
		}
	}
}

// halt stops the poll loop; the client stays open.
func (m *gcMember) halt() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		m.t.Fatalf("%s: poll loop did not stop", m.name)
	}
}

// leave stops the poll loop and closes the client, which sends LeaveGroup
// unless the member is static.
func (m *gcMember) leave() {
	m.halt()
	m.cl.CloseAllowingRebalance()
}

func (m *gcMember) ownedList() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

func (m *gcMember) callbackCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.callbacks
}

func (m *gcMember) records() []*kgo.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// checkErrs fails the test if the member's commits or polls failed.
func (m *gcMember) checkErrs() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.commitErrs) > 0 {
		m.t.Errorf("%s: %d commits failed, first: %v", m.name, len(m.commitErrs), m.commitErrs[0])
	}
	if len(m.pollErrs) > 0 {
		m.t.Errorf("%s: %d poll errors, first: %v", m.name, len(m.pollErrs), m.pollErrs[0])
	}
}

// gcBalanced reports why ms do not yet split topic's partitions between
// them evenly, with no overlap and no gap, in one generation that
// DescribeGroups reports as Stable with exactly these members and
// assignments; "" when they do.
func gcBalanced(ctx context.Context, adm *kadm.Client, group, topic string, partitions int32, ms []*gcMember) (string, int32) {
	owner := map[int32]string{}
	byID := map[string]*gcMember{}
	gen := int32(-2)
	lo, hi := int(partitions)/len(ms), (int(partitions)+len(ms)-1)/len(ms)
	for _, m := range ms {
		id, g := m.cl.GroupMetadata()
		if id == "" || g < 1 {
			return fmt.Sprintf("%s has no member id or generation yet (%q, %d)", m.name, id, g), 0
		}
		if gen != -2 && g != gen {
			return fmt.Sprintf("members in generations %d and %d", gen, g), 0
		}
		gen = g
		byID[id] = m
		owned := m.ownedList()
		if len(owned) < lo || len(owned) > hi {
			return fmt.Sprintf("%s owns %v, want %d to %d partitions", m.name, owned, lo, hi), 0
		}
		for _, p := range owned {
			if o, ok := owner[p]; ok {
				return fmt.Sprintf("partition %d owned by %s and %s", p, o, m.name), 0
			}
			owner[p] = m.name
		}
	}
	for p := range partitions {
		if _, ok := owner[p]; !ok {
			return fmt.Sprintf("partition %d owned by nobody", p), 0
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(dctx, group)
	if err != nil {
		return fmt.Sprintf("DescribeGroups: %v", err), 0
	}
	d := described[group]
	if d.Err != nil || d.State != "Stable" || len(d.Members) != len(ms) {
		return fmt.Sprintf("DescribeGroups: state %q, %d members, error %v", d.State, len(d.Members), d.Err), 0
	}
	for _, dm := range d.Members {
		m, ok := byID[dm.MemberID]
		if !ok {
			return fmt.Sprintf("DescribeGroups lists member %s (client %s), which is none of ours", dm.MemberID, dm.ClientID), 0
		}
		var assigned []int32
		if a, ok := dm.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic == topic {
					assigned = append(assigned, at.Partitions...)
				}
			}
		}
		slices.Sort(assigned)
		if owned := m.ownedList(); !slices.Equal(assigned, owned) {
			return fmt.Sprintf("DescribeGroups assigns %s %v, it owns %v", m.name, assigned, owned), 0
		}
		if dm.ClientID != m.name {
			return fmt.Sprintf("DescribeGroups gives %s client id %q", m.name, dm.ClientID), 0
		}
	}
	return "", gen
}

// gcWaitBalanced waits up to within for gcBalanced and returns the
// generation.
func gcWaitBalanced(t *testing.T, adm *kadm.Client, group, topic string, partitions int32, within time.Duration, ms ...*gcMember) int32 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why, gen := gcBalanced(context.Background(), adm, group, topic, partitions, ms)
		if why == "" {
			return gen
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not balanced over %d members within %v: %s", group, len(ms), within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gcRead is every record ms read, by partition and offset.
func gcRead(ms []*gcMember) map[int32]map[int64][]string {
	read := map[int32]map[int64][]string{}
	for _, m := range ms {
		for _, r := range m.records() {
			if read[r.Partition] == nil {
				read[r.Partition] = map[int64][]string{}
			}
			read[r.Partition][r.Offset] = append(read[r.Partition][r.Offset], m.name)
		}
	}
	return read
}

// gcWaitRead waits until ms have read records 0 to total-1 of topic
// (produced by gcProduce), each exactly once, and fails the test if
// they do not within 20s or read one twice.
func gcWaitRead(t *testing.T, topic string, partitions int32, total int, ms ...*gcMember) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		read := gcRead(ms)
		n := 0
		for _, offs := range read {
			n += len(offs)
		}
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d records read within 20s", topic, n, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gcCheckRead(t, topic, partitions, total, ms...)
}

// gcCheckRead checks ms read records 0 to total-1 of topic, each once
// and at the offset it was produced at.
func gcCheckRead(t *testing.T, topic string, partitions int32, total int, ms ...*gcMember) {
	t.Helper()
	want := map[int32]int64{} // records per partition
	for i := range total {
		want[int32(i)%partitions]++
	}
	read := gcRead(ms)
	for _, m := range ms {
		for _, r := range m.records() {
			i := int64(r.Offset)*int64(partitions) + int64(r.Partition)
			if v := fmt.Sprintf("%s-%d", topic, i); string(r.Value) != v {
				t.Errorf("%s read %q at %d/%d, want %q", m.name, r.Value, r.Partition, r.Offset, v)
			}
		}
	}
	for p := range partitions {
		for o := range want[p] {
			switch readers := read[p][o]; {
			case len(readers) == 0:
				t.Errorf("%s/%d offset %d: read by nobody", topic, p, o)
			case len(readers) > 1:
				t.Errorf("%s/%d offset %d: read %d times, by %v", topic, p, o, len(readers), readers)
			}
		}
		for o := range read[p] {
			if o >= want[p] {
				t.Errorf("%s/%d offset %d: read, but only %d records were produced there", topic, p, o, want[p])
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// gcCommitted returns the group's committed offsets of topic.
func gcCommitted(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		if o.Err != nil {
			t.Fatalf("FetchOffsets %s %s/%d: %v", group, topic, p, o.Err)
		}
		out[p] = o.At
	}
	return out
}

// gcWaitCommitted waits until the group's committed offsets of topic are
// want.
func gcWaitCommitted(t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := gcCommitted(t, adm, group, topic)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s commits %v on %s, want %v", group, got, topic, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gcEnds is the end offset of each partition after gcProduce of total
// records.
func gcEnds(partitions int32, total int) map[int32]int64 {
	out := map[int32]int64{}
	for i := range total {
		out[int32(i)%partitions]++
	}
	return out
}

// gcOldestGroupVersions are the newest versions of every API but the
// group APIs, which are at the oldest versions clients send.
func gcOldestGroupVersions() *kversion.Versions {
	v := kversion.Stable()
	for key, max := range map[int16]int16{8: 2, 9: 1, 11: 0, 12: 0, 13: 0, 14: 0} {
		v.SetMaxKeyVersion(key, max)
	}
	return v
}

// TestGroupClientBalancers: three franz-go members of a group, with each
// eager balancer and with cooperative-sticky, split a 6-partition topic
// two partitions each, with no overlap and no gap, as their callbacks and
// DescribeGroups agree; records produced before the group formed and
// after are each read exactly once, records produced after by the member
// owning their partition.
func TestGroupClientBalancers(t *testing.T) {
	tb := gcBroker(t)
	for _, bal := range []struct {
		name     string
		b        kgo.GroupBalancer
		versions *kversion.Versions // nil: the newest both sides know
	}{
		{"range", kgo.RangeBalancer(), nil},
		{"roundrobin", kgo.RoundRobinBalancer(), nil},
		{"sticky", kgo.StickyBalancer(), nil},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil},
		// The group APIs at the oldest versions clients send (JoinGroup,
		// SyncGroup, Heartbeat and LeaveGroup v0, OffsetCommit v2,
		// OffsetFetch v1), and at Kafka 2.3's (JoinGroup v5, OffsetCommit
		// v7).
		{"range-oldest", kgo.RangeBalancer(), gcOldestGroupVersions()},
		{"cooperative-sticky-kafka-2.3", kgo.CooperativeStickyBalancer(), kversion.V2_3_0()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			t.Parallel()
			const parts = 6
			topic, group := "bal-"+bal.name, "g-"+bal.name
			tb.createTopic(topic, parts, nil)
			gcProduce(t, tb, topic, parts, 0, 60)
			var ms []*gcMember
			for i := range 3 {
				o := gcMemberOpts{balancer: bal.b}
				if bal.versions != nil {
					o.extra = []kgo.Opt{kgo.MaxVersions(bal.versions)}
				}
				ms = append(ms, gcJoin(t, tb, fmt.Sprintf("%s-%d", bal.name, i), group, topic, o))
			}
			adm := kadm.NewClient(gcClient(t, tb))
			gen := gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
			gcWaitRead(t, topic, parts, 60, ms...)

			owners := map[int32]string{}
			for _, m := range ms {
				for _, p := range m.ownedList() {
					owners[p] = m.name
				}
			}
			before := map[string]int{}
			for _, m := range ms {
				before[m.name] = len(m.records())
			}
			gcProduce(t, tb, topic, parts, 60, 60)
			gcWaitRead(t, topic, parts, 120, ms...)
			for _, m := range ms {
				for _, r := range m.records()[before[m.name]:] {
					if owners[r.Partition] != m.name {
						t.Errorf("%s read %d/%d, owned by %s", m.name, r.Partition, r.Offset, owners[r.Partition])
					}
				}
			}
			if _, g := ms[0].cl.GroupMetadata(); g != gen {
				t.Errorf("generation %d after consuming, %d when balanced: a rebalance with nobody joining or leaving", g, gen)
			}
			d, err := adm.DescribeGroups(testCtx(t), group)
			if err != nil {
				t.Fatal(err)
			}
			if got := d[group]; got.ProtocolType != "consumer" || got.Protocol != bal.b.ProtocolName() {
				t.Errorf("DescribeGroups: protocol type %q, protocol %q; want consumer, %s", got.ProtocolType, got.Protocol, bal.b.ProtocolName())
			}
			gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 120))
			for _, m := range ms {
				m.leave()
				m.checkErrs()
			}
		})
	}
}

// TestGroupClientMemberLeaves: a member that closes sends LeaveGroup and
// its partitions move to the others at once, long before its session
// timeout; nothing is read twice or skipped.
func TestGroupClientMemberLeaves(t *testing.T) {
	tb := gcBroker(t)
	for _, bal := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()} {
		t.Run(bal.ProtocolName(), func(t *testing.T) {
			t.Parallel()
			const parts = 6
			topic, group := "leave-"+bal.ProtocolName(), "g-leave-"+bal.ProtocolName()
			tb.createTopic(topic, parts, nil)
			var ms []*gcMember
			for i := range 3 {
				// A 30s session: the partitions of a member that left
				// must not wait for it to expire.
				ms = append(ms, gcJoin(t, tb, fmt.Sprintf("leave-%d", i), group, topic,
					gcMemberOpts{balancer: bal, session: 30 * time.Second}))
			}
			adm := kadm.NewClient(gcClient(t, tb))
			gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
			gcProduce(t, tb, topic, parts, 0, 60)
			gcWaitRead(t, topic, parts, 60, ms...)

			ms[1].leave()
			gcWaitBalanced(t, adm, group, topic, parts, 10*time.Second, ms[0], ms[2])
			gcProduce(t, tb, topic, parts, 60, 60)
			gcWaitRead(t, topic, parts, 120, ms...)
			for _, m := range ms {
				m.checkErrs()
			}

			// The last members leave: the group is Empty and keeps its
			// offsets.
			ms[0].leave()
			ms[2].leave()
			d, err := adm.DescribeGroups(testCtx(t), group)
			if err != nil {
				t.Fatal(err)
			}
			if g := d[group]; g.State != "Empty" || len(g.Members) != 0 {
				t.Errorf("after every member left: state %q with %d members, want Empty with none", g.State, len(g.Members))
			}
			if got, want := gcCommitted(t, adm, group, topic), gcEnds(parts, 120); !maps.Equal(got, want) {
				t.Errorf("committed %v after every member left, want %v", got, want)
			}
		})
	}
}

// gcDialer dials for one client and can kill it: close every connection
// at once with a reset, and refuse every later dial, as if the process
// had died.
type gcDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *gcDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("test: this client is dead")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *gcDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// TestGroupClientMemberDies: a member whose connections drop and which
// never comes back (no LeaveGroup) is removed when its session times out,
// not before, and its partitions move to the others, which resume from
// its commits.
func TestGroupClientMemberDies(t *testing.T) {
	tb := gcBroker(t)
	for _, bal := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()} {
		t.Run(bal.ProtocolName(), func(t *testing.T) {
			t.Parallel()
			const (
				parts   = 6
				session = 1500 * time.Millisecond
			)
			topic, group := "die-"+bal.ProtocolName(), "g-die-"+bal.ProtocolName()
			tb.createTopic(topic, parts, nil)
			d := &gcDialer{}
			var ms []*gcMember
			for i := range 3 {
				o := gcMemberOpts{balancer: bal, session: session}
				if i == 1 {
					o.extra = []kgo.Opt{kgo.Dialer(d.dial)}
				}
				ms = append(ms, gcJoin(t, tb, fmt.Sprintf("die-%d", i), group, topic, o))
			}
			adm := kadm.NewClient(gcClient(t, tb))
			gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
			gcProduce(t, tb, topic, parts, 0, 60)
			gcWaitRead(t, topic, parts, 60, ms...)
			gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 60))
			deadID, gen := ms[1].cl.GroupMetadata()
			ms[1].halt()

			d.kill()
			killed := time.Now()
			gcWaitBalanced(t, adm, group, topic, parts, 10*time.Second, ms[0], ms[2])
			// The dead member's last heartbeat was at most a heartbeat
			// interval (100ms) before the kill: Kafka removes a member
			// for silence, not for a closed connection.
			if took := time.Since(killed); took < session/2 {
				t.Errorf("the dead member's partitions moved %v after its connections closed, before its %v session timed out", took, session)
			}
			if _, g := ms[0].cl.GroupMetadata(); g <= gen {
				t.Errorf("generation %d after the member died, %d before", g, gen)
			}
			// Its member id is gone for good: Kafka answers
			// UNKNOWN_MEMBER_ID.
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = group, deadID, gen
			if resp := tb.request(gcClient(t, tb), hb).(*kmsg.HeartbeatResponse); resp.ErrorCode != kerr.UnknownMemberID.Code {
				t.Errorf("heartbeat of the expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
			}

			gcProduce(t, tb, topic, parts, 60, 60)
			gcWaitRead(t, topic, parts, 120, ms...)
			ms[0].checkErrs()
			ms[2].checkErrs()
			// The dead client's close cannot reach the broker: leave with
			// a canceled context, so Close does not wait for LeaveGroup.
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			ms[1].cl.LeaveGroupContext(canceled)
			ms[1].cl.Close()
		})
	}
}

// TestGroupClientStaticMember: static members (group.instance.id) that
// restart within their session timeout — franz-go sends no LeaveGroup for
// them on close — get their partitions back in the same generation: no
// rebalance, and the other members' callbacks do not fire. The restart
// fences the old member id (FENCED_INSTANCE_ID). A follower restarts,
// then the leader.
func TestGroupClientStaticMember(t *testing.T) {
	tb := gcBroker(t)
	const parts = 6
	topic, group := "static", "g-static"
	tb.createTopic(topic, parts, nil)
	join := func(i int) *gcMember {
		return gcJoin(t, tb, fmt.Sprintf("static-%d", i), group, topic, gcMemberOpts{
			balancer: kgo.RangeBalancer(), session: 20 * time.Second,
			extra: []kgo.Opt{kgo.InstanceID(fmt.Sprintf("instance-%d", i))}})
	}
	adm := kadm.NewClient(gcClient(t, tb))
	// static-0 joins first and alone, so it leads the group.
	ms := []*gcMember{join(0)}
	gcWaitBalanced(t, adm, group, topic, parts, 10*time.Second, ms...)
	ms = append(ms, join(1), join(2))
	gen := gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
	gcProduce(t, tb, topic, parts, 0, 60)
	gcWaitRead(t, topic, parts, 60, ms...)
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 60))

	all := slices.Clone(ms) // every incarnation, for what they read
	for round, i := range []int{2, 0} {
		old := ms[i]
		oldID, _ := old.cl.GroupMetadata()
		owned := old.ownedList()
		calls := map[string]int{}
		for _, m := range ms {
			calls[m.name] = m.callbackCount()
		}
		old.leave()
		// No LeaveGroup: the group still has three members.
		dg, err := adm.DescribeGroups(testCtx(t), group)
		if err != nil {
			t.Fatal(err)
		}
		if g := dg[group]; len(g.Members) != 3 || g.State != "Stable" {
			t.Fatalf("after static %s closed: %d members, state %q; want 3, Stable", old.name, len(g.Members), g.State)
		}

		ms[i] = join(i)
		all = append(all, ms[i])
		if got := gcWaitBalanced(t, adm, group, topic, parts, 10*time.Second, ms...); got != gen {
			t.Errorf("restart of %s: generation %d, want %d (no rebalance)", old.name, got, gen)
		}
		if got := ms[i].ownedList(); !slices.Equal(got, owned) {
			t.Errorf("restarted %s owns %v, owned %v before", old.name, got, owned)
		}
		for j, m := range ms {
			if j != i && m.callbackCount() != calls[m.name] {
				t.Errorf("restart of %s: %s's partition callbacks fired", old.name, m.name)
			}
		}
		newID, _ := ms[i].cl.GroupMetadata()
		if newID == oldID {
			t.Errorf("restarted %s kept member id %s; Kafka gives a static member a new id when it rejoins", old.name, oldID)
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = group, oldID, gen
		hb.InstanceID = kmsg.StringPtr(fmt.Sprintf("instance-%d", i))
		if resp := tb.request(gcClient(t, tb), hb).(*kmsg.HeartbeatResponse); resp.ErrorCode != kerr.FencedInstanceID.Code {
			t.Errorf("heartbeat with the replaced member id of instance-%d: %v, want FENCED_INSTANCE_ID", i, kerr.ErrorForCode(resp.ErrorCode))
		}

		// The restarted member resumes from the old one's commits.
		from := 60 * (round + 1)
		gcProduce(t, tb, topic, parts, from, 60)
		gcWaitRead(t, topic, parts, from+60, all...)
	}
	for _, m := range ms {
		m.checkErrs()
	}
}

// TestGroupClientTwoGroups: two groups consuming one topic each read every
// record once, independently.
func TestGroupClientTwoGroups(t *testing.T) {
	tb := gcBroker(t)
	const parts = 4
	topic := "shared"
	tb.createTopic(topic, parts, nil)
	a := []*gcMember{
		gcJoin(t, tb, "a-0", "g-a", topic, gcMemberOpts{}),
		gcJoin(t, tb, "a-1", "g-a", topic, gcMemberOpts{}),
	}
	b := []*gcMember{gcJoin(t, tb, "b-0", "g-b", topic, gcMemberOpts{balancer: kgo.RangeBalancer()})}
	adm := kadm.NewClient(gcClient(t, tb))
	gcWaitBalanced(t, adm, "g-a", topic, parts, 15*time.Second, a...)
	gcWaitBalanced(t, adm, "g-b", topic, parts, 15*time.Second, b...)
	gcProduce(t, tb, topic, parts, 0, 100)
	gcWaitRead(t, topic, parts, 100, a...)
	gcWaitRead(t, topic, parts, 100, b...)
	gcWaitCommitted(t, adm, "g-a", topic, gcEnds(parts, 100))
	gcWaitCommitted(t, adm, "g-b", topic, gcEnds(parts, 100))
	for _, m := range append(a, b...) {
		m.checkErrs()
	}
}

// TestGroupClientRestart: a member reads and commits part of a topic and
// leaves; the broker restarts on the same dirs; the committed offsets are
// still there, and a new member of the group resumes from them: nothing
// skipped, nothing read again.
func TestGroupClientRestart(t *testing.T) {
	tb := gcBroker(t)
	const parts = 3
	topic, group := "restart", "g-restart"
	tb.createTopic(topic, parts, nil)
	gcProduce(t, tb, topic, parts, 0, 90)

	first := gcJoin(t, tb, "before", group, topic, gcMemberOpts{pollMax: 5, stopAfter: 40, balancer: kgo.RangeBalancer()})
	select {
	case <-first.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("read %d records in 15s, want 40", len(first.records()))
	}
	adm := kadm.NewClient(gcClient(t, tb))
	read := first.records()
	if len(read) != 40 {
		t.Fatalf("read %d records before the restart, want 40", len(read))
	}
	next := map[int32]int64{}
	for _, r := range read {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	gcWaitCommitted(t, adm, group, topic, next)
	first.leave()
	first.checkErrs()

	tb.restart()
	adm = kadm.NewClient(gcClient(t, tb))
	if got := gcCommitted(t, adm, group, topic); !maps.Equal(got, next) {
		t.Fatalf("committed %v after the restart, %v before", got, next)
	}
	gcProduce(t, tb, topic, parts, 90, 30)
	second := gcJoin(t, tb, "after", group, topic, gcMemberOpts{})
	gcWaitRead(t, topic, parts, 120, first, second)
	for _, r := range second.records() {
		if r.Offset < next[r.Partition] {
			t.Errorf("after the restart read %d/%d, below the committed %d", r.Partition, r.Offset, next[r.Partition])
		}
	}
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 120))
	second.checkErrs()
}

// TestGroupClientAdmin: kadm against groups with and without members —
// simple commits to a group with no members, FetchOffsets with metadata,
// lag as end offset minus commit, ListGroups and DescribeGroups states,
// OffsetDelete and DeleteGroups with Kafka's errors for groups in use.
func TestGroupClientAdmin(t *testing.T) {
	tb := gcBroker(t)
	const parts = 3
	topic, other := "adm", "adm-other"
	tb.createTopic(topic, parts, nil)
	tb.createTopic(other, 1, nil)
	gcProduce(t, tb, topic, parts, 0, 30) // 10 a partition
	gcProduce(t, tb, other, 1, 0, 4)
	adm := kadm.NewClient(gcClient(t, tb))
	ctx := testCtx(t)

	// Simple commits: generation -1, no member id, no group running.
	simple := "adm-simple"
	offs := kadm.Offsets{}
	for p, at := range []int64{3, 5, 10} {
		offs.Add(kadm.Offset{Topic: topic, Partition: int32(p), At: at, LeaderEpoch: -1, Metadata: fmt.Sprintf("meta %d", p)})
	}
	offs.Add(kadm.Offset{Topic: other, Partition: 0, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, simple, offs); err != nil {
		t.Fatalf("CommitOffsets to a group with no members: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, simple)
	if err != nil || fetched.Error() != nil {
		t.Fatalf("FetchOffsets: %v %v", err, fetched.Error())
	}
	for p, at := range []int64{3, 5, 10} {
		o, ok := fetched.Lookup(topic, int32(p))
		if !ok || o.At != at || o.Metadata != fmt.Sprintf("meta %d", p) {
			t.Errorf("FetchOffsets %s/%d: %+v (found %v), want %d with metadata %q", topic, p, o.Offset, ok, at, fmt.Sprintf("meta %d", p))
		}
	}

	// Lag is the end offset minus the commit.
	lags, err := adm.Lag(ctx, simple)
	if err != nil {
		t.Fatalf("Lag: %v", err)
	}
	l := lags[simple]
	if err := l.Error(); err != nil {
		t.Fatalf("Lag of %s: %v", simple, err)
	}
	if l.State != "Empty" {
		t.Errorf("Lag: group state %q, want Empty", l.State)
	}
	for p, want := range []int64{7, 5, 0} {
		if ml := l.Lag[topic][int32(p)]; ml.Err != nil || ml.Lag != want || ml.End.Offset != 10 {
			t.Errorf("lag of %s/%d: %d (end %d, error %v), want %d", topic, p, ml.Lag, ml.End.Offset, ml.Err, want)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic, other)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := adm.DescribeGroups(ctx, simple)
	if err != nil {
		t.Fatal(err)
	}
	calc := kadm.CalculateGroupLag(dg[simple], fetched, ends)
	if got := calc[other][0]; got.Lag != 3 {
		t.Errorf("CalculateGroupLag %s/0: %d, want 3", other, got.Lag)
	}
	if got := calc.Total(); got != 7+5+0+3 {
		t.Errorf("CalculateGroupLag total %d, want 15", got)
	}

	// A group with a member.
	live := "adm-live"
	m := gcJoin(t, tb, "adm-member", live, topic, gcMemberOpts{balancer: kgo.RangeBalancer()})
	gcWaitBalanced(t, adm, live, topic, parts, 10*time.Second, m)
	gcWaitRead(t, topic, parts, 30, m)
	gcWaitCommitted(t, adm, live, topic, gcEnds(parts, 30))

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if g, ok := listed[simple]; !ok || g.State != "Empty" || g.ProtocolType != "" {
		t.Errorf("ListGroups %s: %+v (listed %v), want state Empty, no protocol type", simple, g, ok)
	}
	if g, ok := listed[live]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Errorf("ListGroups %s: %+v (listed %v), want state Stable, protocol type consumer", live, g, ok)
	}
	if stable, err := adm.ListGroups(ctx, "Stable"); err != nil || len(stable) != 1 || stable[live].Group != live {
		t.Errorf("ListGroups filtered by Stable: %v %v, want only %s", stable.Groups(), err, live)
	}

	dg, err = adm.DescribeGroups(ctx, simple, live)
	if err != nil {
		t.Fatal(err)
	}
	if g := dg[simple]; g.Err != nil || g.State != "Empty" || len(g.Members) != 0 || g.ProtocolType != "" {
		t.Errorf("DescribeGroups %s: %+v, want Empty with no members and no protocol type", simple, g)
	}
	g := dg[live]
	if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 {
		t.Fatalf("DescribeGroups %s: %+v, want Stable, consumer, range, one member", live, g)
	}
	id, _ := m.cl.GroupMetadata()
	if dm := g.Members[0]; dm.MemberID != id || dm.ClientID != "adm-member" || dm.ClientHost == "" {
		t.Errorf("DescribeGroups member %+v, want id %s, client adm-member, a client host", dm, id)
	}
	if md, ok := g.Members[0].Join.AsConsumer(); !ok || !slices.Equal(md.Topics, []string{topic}) {
		t.Errorf("DescribeGroups member subscription %+v, want [%s]", md, topic)
	}

	// OffsetDelete: an empty group's offsets go; a live group's offsets
	// of a topic it consumes stay, with GROUP_SUBSCRIBED_TO_TOPIC.
	del, err := adm.DeleteOffsets(ctx, simple, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("DeleteOffsets of an empty group: %v %v", err, del.Error())
	}
	fetched, err = adm.FetchOffsets(ctx, simple)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(topic, 0); ok && o.At >= 0 {
		t.Errorf("offset of %s/0 still %d after DeleteOffsets", topic, o.At)
	}
	if o, ok := fetched.Lookup(topic, 1); !ok || o.At != 5 {
		t.Errorf("offset of %s/1 %+v after deleting only partition 0's, want 5", topic, o)
	}
	// The live group commits to a topic it does not consume.
	commitOther := kadm.Offsets{}
	commitOther.Add(kadm.Offset{Topic: other, Partition: 0, At: 2, LeaderEpoch: -1})
	live2, err := adm.CommitOffsets(ctx, live, commitOther)
	if err == nil && live2.Error() == nil {
		t.Errorf("simple commit to %s while it has a member: success, want UNKNOWN_MEMBER_ID", live)
	} else if e := live2.Error(); !errors.Is(e, kerr.UnknownMemberID) && !errors.Is(err, kerr.UnknownMemberID) {
		t.Errorf("simple commit to %s while it has a member: %v %v, want UNKNOWN_MEMBER_ID", live, err, e)
	}
	del, err = adm.DeleteOffsets(ctx, live, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatalf("DeleteOffsets of a live group: %v", err)
	}
	for p := range int32(2) {
		if e := del[topic][p]; !errors.Is(e, kerr.GroupSubscribedToTopic) {
			t.Errorf("DeleteOffsets %s/%d of a group consuming it: %v, want GROUP_SUBSCRIBED_TO_TOPIC", topic, p, e)
		}
	}
	if got := gcCommitted(t, adm, live, topic); !maps.Equal(got, gcEnds(parts, 30)) {
		t.Errorf("live group's offsets %v after a refused OffsetDelete", got)
	}
	if _, err := adm.DeleteOffsets(ctx, "adm-nobody", kadm.TopicsSet{topic: {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteOffsets of an unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}

	// DeleteGroups: refused while the group has members, unknown groups
	// are GROUP_ID_NOT_FOUND, an empty group goes with its offsets.
	dr, err := adm.DeleteGroups(ctx, live, simple, "adm-nobody")
	if err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	if e := dr[live].Err; !errors.Is(e, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of a group with a member: %v, want NON_EMPTY_GROUP", e)
	}
	if e := dr["adm-nobody"].Err; !errors.Is(e, kerr.GroupIDNotFound) {
		t.Errorf("DeleteGroups of an unknown group: %v, want GROUP_ID_NOT_FOUND", e)
	}
	if e := dr[simple].Err; e != nil {
		t.Errorf("DeleteGroups of an empty group: %v", e)
	}
	if got := gcCommitted(t, adm, simple, topic); len(got) != 0 {
		t.Errorf("deleted group %s still has offsets %v", simple, got)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[simple]; ok {
		t.Errorf("ListGroups lists deleted group %s", simple)
	}

	// Once its member leaves, the live group can be deleted too.
	m.leave()
	m.checkErrs()
	if r, err := adm.DeleteGroup(ctx, live); err != nil {
		t.Errorf("DeleteGroups of %s after its member left: %v %v", live, err, r.Err)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Errorf("ListGroups after deleting every group: %v", listed.Groups())
	}
	if got := gcCommitted(t, adm, live, topic); len(got) != 0 {
		t.Errorf("deleted group %s still has offsets %v", live, got)
	}
}

// TestGroupClientBadInput: with a group running, requests with a wrong
// generation, an unknown member id, unknown topics and partitions,
// oversized offset metadata, bad session timeouts, foreign protocols and a
// 10 KB group id each get Kafka's answer, and the group's member keeps
// consuming and committing in the same generation.
func TestGroupClientBadInput(t *testing.T) {
	tb := gcBroker(t)
	const parts = 2
	topic, group := "bad", "g-bad"
	tb.createTopic(topic, parts, nil)
	adm := kadm.NewClient(gcClient(t, tb))
	m := gcJoin(t, tb, "steady", group, topic, gcMemberOpts{balancer: kgo.RangeBalancer()})
	gen := gcWaitBalanced(t, adm, group, topic, parts, 10*time.Second, m)
	gcProduce(t, tb, topic, parts, 0, 20)
	gcWaitRead(t, topic, parts, 20, m)
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 20))
	id, _ := m.cl.GroupMetadata()
	cl := gcClient(t, tb)

	// commit sends an OffsetCommit of offset 1 to topic/partition for
	// each of parts and returns each partition's error code.
	commit := func(group string, gen int32, member string, metadata string, tps ...string) map[string]int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, gen, member
		for _, tp := range tps {
			name, p, _ := strings.Cut(tp, "/")
			var part int32
			fmt.Sscan(p, &part)
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = name
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = part, 1, -1, kmsg.StringPtr(metadata)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp := tb.request(cl, req).(*kmsg.OffsetCommitResponse)
		out := map[string]int16{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)] = rp.ErrorCode
			}
		}
		if len(out) != len(tps) {
			t.Errorf("OffsetCommit of %v answered %v", tps, out)
		}
		return out
	}
	want := func(what string, got map[string]int16, tp string, code *kerr.Error) {
		t.Helper()
		var c int16
		if code != nil {
			c = code.Code
		}
		if got[tp] != c {
			t.Errorf("%s: %s answered %v, want %v", what, tp, kerr.ErrorForCode(got[tp]), kerr.ErrorForCode(c))
		}
	}

	for _, c := range []struct {
		what   string
		gen    int32
		member string
		code   *kerr.Error
	}{
		{"the next generation", gen + 1, id, kerr.IllegalGeneration},
		{"the previous generation", gen - 1, id, kerr.IllegalGeneration},
		{"generation -1 with a member id", -1, id, kerr.IllegalGeneration},
		{"an unknown member", gen, "no-such-member", kerr.UnknownMemberID},
		{"no member id in a group with members", -1, "", kerr.UnknownMemberID},
	} {
		want("commit with "+c.what, commit(group, c.gen, c.member, "", topic+"/0"), topic+"/0", c.code)
	}

	// Per partition: unknown topics and partitions and oversized
	// metadata fail, the rest of the request succeeds.
	got := commit(group, gen, id, "", topic+"/1", "no-such-topic/0", topic+"/7")
	want("commit with an unknown topic", got, "no-such-topic/0", kerr.UnknownTopicOrPartition)
	want("commit with an unknown partition", got, topic+"/7", kerr.UnknownTopicOrPartition)
	want("commit beside unknown ones", got, topic+"/1", nil)
	got = commit(group, gen, id, strings.Repeat("m", 4097), topic+"/0")
	want("commit with 4097 bytes of metadata", got, topic+"/0", kerr.OffsetMetadataTooLarge)
	got = commit(group, gen, id, strings.Repeat("m", 4096), topic+"/0")
	want("commit with 4096 bytes of metadata", got, topic+"/0", nil)
	if o := gcCommitted(t, adm, group, topic); o[0] != 1 || o[1] != 1 {
		t.Errorf("committed %v, want 1 on both partitions", o)
	}

	hb := func(gen int32, member string) int16 {
		t.Helper()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = group, gen, member
		return tb.request(cl, req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	if c := hb(gen+1, id); c != kerr.IllegalGeneration.Code {
		t.Errorf("heartbeat of the next generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(c))
	}
	if c := hb(gen, "no-such-member"); c != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(c))
	}
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.Generation, sg.MemberID = group, gen, "no-such-member"
	if c := tb.request(cl, sg).(*kmsg.SyncGroupResponse).ErrorCode; c != kerr.UnknownMemberID.Code {
		t.Errorf("SyncGroup of an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(c))
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = group, "no-such-member"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "no-such-member"
	leave.Members = append(leave.Members, lm)
	lr := tb.request(cl, leave).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode == 0 && (len(lr.Members) != 1 || lr.Members[0].ErrorCode != kerr.UnknownMemberID.Code) || lr.ErrorCode != 0 && lr.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("LeaveGroup of an unknown member: %+v, want UNKNOWN_MEMBER_ID", lr)
	}

	// JoinGroup requests refused before they touch the group.
	join := func(what, group string, session int32, protocolType, protocol string) int16 {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, session, 5000
		req.ProtocolType = protocolType
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = protocol
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{topic}
		p.Metadata = meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		resp, err := cl.Request(testCtx(t), req)
		if err != nil {
			t.Fatalf("JoinGroup with %s: %v", what, err)
		}
		return resp.(*kmsg.JoinGroupResponse).ErrorCode
	}
	for _, c := range []struct {
		what         string
		group        string
		session      int32
		ptype, proto string
		code         *kerr.Error
	}{
		{what: "a session timeout below group.min.session.timeout.ms", group: group, session: 100, ptype: "consumer", proto: "range", code: kerr.InvalidSessionTimeout},
		{what: "a session timeout above group.max.session.timeout.ms", group: group, session: 1<<31 - 1, ptype: "consumer", proto: "range", code: kerr.InvalidSessionTimeout},
		{what: "another protocol type", group: group, session: 3000, ptype: "connect", proto: "range", code: kerr.InconsistentGroupProtocol},
		{what: "no protocol in common", group: group, session: 3000, ptype: "consumer", proto: "no-such-assignor", code: kerr.InconsistentGroupProtocol},
	} {
		if got := join(c.what, c.group, c.session, c.ptype, c.proto); got != c.code.Code {
			t.Errorf("JoinGroup with %s: %v, want %v", c.what, kerr.ErrorForCode(got), c.code)
		}
	}
	// A 10 KB group id is a group like any other.
	long := strings.Repeat("g", 10<<10)
	lm0 := gcJoin(t, tb, "long", long, topic, gcMemberOpts{balancer: kgo.RangeBalancer()})
	gcWaitBalanced(t, adm, long, topic, parts, 10*time.Second, lm0)
	gcWaitRead(t, topic, parts, 20, lm0)
	gcWaitCommitted(t, adm, long, topic, gcEnds(parts, 20))
	lm0.leave()
	lm0.checkErrs()
	if listed, err := adm.ListGroups(testCtx(t)); err != nil || listed[long].Group != long {
		t.Errorf("ListGroups does not list the 10 KB group id: %v", err)
	}

	// The running member was not disturbed: same generation, and it
	// reads and commits what comes next.
	if _, g := m.cl.GroupMetadata(); g != gen {
		t.Errorf("generation %d after the bad requests, %d before", g, gen)
	}
	gcProduce(t, tb, topic, parts, 20, 20)
	deadline := time.Now().Add(15 * time.Second)
	for len(m.records()) < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("the member read %d records after the bad requests, want 40 in all", len(m.records()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 40))
	if _, g := m.cl.GroupMetadata(); g != gen {
		t.Errorf("generation %d after the bad requests, %d before", g, gen)
	}
	m.checkErrs()
}

// TestGroupClientRestartLiveMember: members keep running while the broker
// restarts on the same dirs and port, as through a coordinator failover:
// once it is back, they go on reading what is produced next, each record
// once, and commit it.
func TestGroupClientRestartLiveMember(t *testing.T) {
	tb := gcBroker(t)
	// Restart on the same port, so the clients find the broker again.
	_, port, err := net.SplitHostPort(tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	var p int32
	fmt.Sscan(port, &p)
	tb.cfg.Listeners[0].Port, tb.cfg.AdvertisedListeners[0].Port = p, p

	const parts = 4
	topic, group := "live", "g-live"
	tb.createTopic(topic, parts, nil)
	ms := []*gcMember{
		gcJoin(t, tb, "live-0", group, topic, gcMemberOpts{}),
		gcJoin(t, tb, "live-1", group, topic, gcMemberOpts{}),
	}
	adm := kadm.NewClient(gcClient(t, tb))
	gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
	gcProduce(t, tb, topic, parts, 0, 40)
	gcWaitRead(t, topic, parts, 40, ms...)
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 40))

	tb.restart()
	if tb.addr != net.JoinHostPort("127.0.0.1", port) {
		t.Fatalf("restarted broker serves on %s, not on port %s", tb.addr, port)
	}
	gcProduce(t, tb, topic, parts, 40, 40)
	gcWaitRead(t, topic, parts, 80, ms...)
	gcWaitBalanced(t, adm, group, topic, parts, 15*time.Second, ms...)
	gcWaitCommitted(t, adm, group, topic, gcEnds(parts, 80))
	for _, m := range ms {
		m.mu.Lock()
		if len(m.commitErrs) > 0 {
			t.Errorf("%s: %d commits failed, first: %v", m.name, len(m.commitErrs), m.commitErrs[0])
		}
		m.mu.Unlock()
	}
}

// TestGroupClientEmptyGroupID: the empty group id, as Kafka treats it.
// FindCoordinator answers for it like for any key (Kafka has no check);
// the group membership APIs refuse it with INVALID_GROUP_ID; the offset
// APIs accept it, for compatibility with old clients, as a group that
// only stores offsets. The requests go straight to the broker, so each
// answer is the API's own, not FindCoordinator's.
func TestGroupClientEmptyGroupID(t *testing.T) {
	tb := gcBroker(t)
	topic := "empty-id"
	tb.createTopic(topic, 1, nil)
	cl := gcClient(t, tb)
	direct := tb.direct(cl)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{""}
	r := direct(fc).(*kmsg.FindCoordinatorResponse)
	if len(r.Coordinators) != 1 {
		t.Fatalf("FindCoordinator of one key: %d answers", len(r.Coordinators))
	}
	if c := r.Coordinators[0]; c.ErrorCode != 0 || c.NodeID != tb.coord.BrokerID() {
		t.Errorf("FindCoordinator for the group id \"\": node %d, error %v; want this broker (%d), no error",
			c.NodeID, kerr.ErrorForCode(c.ErrorCode), tb.coord.BrokerID())
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = 3000, 5000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	join.Protocols = append(join.Protocols, p)
	if c := direct(join).(*kmsg.JoinGroupResponse).ErrorCode; c != kerr.InvalidGroupID.Code {
		t.Errorf("JoinGroup with the group id \"\": %v, want INVALID_GROUP_ID", kerr.ErrorForCode(c))
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Generation, hb.MemberID = 1, "x"
	if c := direct(hb).(*kmsg.HeartbeatResponse).ErrorCode; c != kerr.InvalidGroupID.Code {
		t.Errorf("Heartbeat with the group id \"\": %v, want INVALID_GROUP_ID", kerr.ErrorForCode(c))
	}
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Generation, sg.MemberID = 1, "x"
	sg.ProtocolType, sg.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	if c := direct(sg).(*kmsg.SyncGroupResponse).ErrorCode; c != kerr.InvalidGroupID.Code {
		t.Errorf("SyncGroup with the group id \"\": %v, want INVALID_GROUP_ID", kerr.ErrorForCode(c))
	}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Generation = -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = topic
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset, cp.LeaderEpoch = 7, -1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	cr := direct(commit).(*kmsg.OffsetCommitResponse)
	if len(cr.Topics) != 1 || len(cr.Topics[0].Partitions) != 1 || cr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("simple OffsetCommit to the group id \"\": %+v, want success", cr.Topics)
	}
	// Before v8 the request names one group, from v8 a list of them.
	fetch := kmsg.NewPtrOffsetFetchRequest()
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = topic, []int32{0}
	fetch.Topics = append(fetch.Topics, ft)
	fg := kmsg.NewOffsetFetchRequestGroup()
	fgt := kmsg.NewOffsetFetchRequestGroupTopic()
	fgt.Topic, fgt.Partitions = topic, []int32{0}
	fg.Topics = append(fg.Topics, fgt)
	fetch.Groups = append(fetch.Groups, fg)
	fr := direct(fetch).(*kmsg.OffsetFetchResponse)
	var got []string
	for _, g := range fr.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				got = append(got, fmt.Sprintf("%s/%d at %d error %d (group error %d)", t.Topic, p.Partition, p.Offset, p.ErrorCode, g.ErrorCode))
			}
		}
	}
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			got = append(got, fmt.Sprintf("%s/%d at %d error %d (error %d)", t.Topic, p.Partition, p.Offset, p.ErrorCode, fr.ErrorCode))
		}
	}
	if want := fmt.Sprintf("%s/0 at 7 error 0", topic); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("OffsetFetch of the group id \"\": %v, want %s", got, want)
	}
}
