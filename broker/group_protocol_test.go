package broker

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/config"
)

// startGroupBroker starts a broker whose rebalances start at once and
// whose sessions may be short, and waits until its groups are loaded.
func startGroupBroker(t *testing.T, edit ...func(*config.Config)) *testBroker {
	t.Helper()
	tb := startBroker(t, append([]func(*config.Config){func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.GroupMinSessionTimeoutMs = 100 * time.Millisecond
		c.OffsetsTopicNumPartitions = 3
	}}, edit...)...)
	tb.waitGroupsLoaded()
	return tb
}

func (tb *testBroker) waitGroupsLoaded() {
	tb.t.Helper()
	select {
	case <-tb.b.groups.Loaded():
	case <-time.After(10 * time.Second):
		tb.t.Fatal("groups not loaded after 10s")
	}
}

// eventually polls cond (observable broker state) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gmember is a group member driven by raw requests on its own client (a
// waiting JoinGroup holds its connection's later responses).
type gmember struct {
	tb       *testBroker
	cl       *kgo.Client
	group    string
	id       string
	instance string
	gen      int32
	session  int32
	topics   []string
	userData string
}

func newMember(tb *testBroker, group string, topics ...string) *gmember {
	return &gmember{tb: tb, cl: tb.client(), group: group, session: 10000, topics: topics}
}

func (m *gmember) joinReq() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID = m.group, m.id
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = m.session, 10000
	req.ProtocolType = "consumer"
	if m.instance != "" {
		req.InstanceID = kmsg.StringPtr(m.instance)
	}
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics, meta.UserData = m.topics, []byte(m.userData)
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

// async sends req on cl and delivers the response (nil on an error,
// reported) on the channel.
func async(t *testing.T, cl *kgo.Client, req kmsg.Request) <-chan kmsg.Response {
	ch := make(chan kmsg.Response, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := cl.Request(ctx, req)
		if err != nil {
			t.Errorf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		ch <- resp
	}()
	return ch
}

func recv[T kmsg.Response](t *testing.T, ch <-chan kmsg.Response) T {
	t.Helper()
	select {
	case r := <-ch:
		if r == nil {
			t.FailNow()
		}
		return r.(T)
	case <-time.After(15 * time.Second):
		t.Fatal("no response after 15s")
	}
	panic("unreachable")
}

// joinAsync sends a JoinGroup that may wait; takeJoin reads its answer.
func (m *gmember) joinAsync() <-chan kmsg.Response { return async(m.tb.t, m.cl, m.joinReq()) }

func (m *gmember) takeJoin(ch <-chan kmsg.Response) *kmsg.JoinGroupResponse {
	m.tb.t.Helper()
	resp := recv[*kmsg.JoinGroupResponse](m.tb.t, ch)
	if resp.ErrorCode == 0 {
		m.id, m.gen = resp.MemberID, resp.Generation
	}
	return resp
}

// join joins (through MEMBER_ID_REQUIRED for a dynamic member) and waits.
func (m *gmember) join() *kmsg.JoinGroupResponse {
	m.tb.t.Helper()
	resp := m.takeJoin(m.joinAsync())
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		m.id = resp.MemberID
		resp = m.takeJoin(m.joinAsync())
	}
	if resp.ErrorCode != 0 {
		m.tb.t.Fatalf("join %s: %v", m.group, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (m *gmember) syncReq(assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.id, m.gen
	if m.instance != "" {
		req.InstanceID = kmsg.StringPtr(m.instance)
	}
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return req
}

func (m *gmember) sync(assign map[string]string) *kmsg.SyncGroupResponse {
	m.tb.t.Helper()
	return recv[*kmsg.SyncGroupResponse](m.tb.t, async(m.tb.t, m.cl, m.syncReq(assign)))
}

func (m *gmember) heartbeat() int16 {
	m.tb.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.id, m.gen
	if m.instance != "" {
		req.InstanceID = kmsg.StringPtr(m.instance)
	}
	return m.tb.request(m.cl, req).(*kmsg.HeartbeatResponse).ErrorCode
}

func (tb *testBroker) describeGroup(cl *kgo.Client, group string) kmsg.DescribeGroupsResponseGroup {
	tb.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp := tb.request(cl, req).(*kmsg.DescribeGroupsResponse)
	if len(resp.Groups) != 1 {
		tb.t.Fatalf("DescribeGroups: %d groups", len(resp.Groups))
	}
	return resp.Groups[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}

func TestGroupJoinSyncHeartbeat(t *testing.T) {
	tb := startGroupBroker(t)
	a, b, c := newMember(tb, "g", "t"), newMember(tb, "g", "t"), newMember(tb, "g", "t")

	// v4+: a first join gets a member id and must come back with it.
	first := a.takeJoin(a.joinAsync())
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" || first.Generation != -1 {
		t.Fatalf("MEMBER_ID_REQUIRED answer: %+v", first)
	}
	a.id = first.MemberID
	ja := a.takeJoin(a.joinAsync())
	wantCode(t, "join with the member id", ja.ErrorCode, nil)
	if ja.MemberID != first.MemberID || ja.LeaderID != a.id || ja.Generation != 1 ||
		ja.Protocol == nil || *ja.Protocol != "range" || len(ja.Members) != 1 {
		t.Fatalf("leader's join: %+v", ja)
	}
	if s := a.sync(map[string]string{a.id: "a1"}); s.ErrorCode != 0 || string(s.MemberAssignment) != "a1" {
		t.Fatalf("leader's sync: %+v", s)
	}
	wantCode(t, "heartbeat while Stable", a.heartbeat(), nil)

	// A second member: the leader hears of the rebalance by heartbeat,
	// rejoins, and gets both members' metadata.
	jb := b.takeJoin(b.joinAsync())
	wantCode(t, "b's first join", jb.ErrorCode, kerr.MemberIDRequired)
	b.id = jb.MemberID
	bJoin := b.joinAsync()
	eventually(t, "a hears of the rebalance", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	ja = a.join()
	jb = b.takeJoin(bJoin)
	if ja.Generation != 2 || jb.Generation != 2 || ja.LeaderID != a.id || jb.LeaderID != a.id {
		t.Fatalf("generation 2: a %+v, b %+v", ja, jb)
	}
	if len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("the leader gets %d members, the follower %d", len(ja.Members), len(jb.Members))
	}
	for _, jm := range ja.Members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(jm.ProtocolMetadata); err != nil || !slices.Equal(meta.Topics, []string{"t"}) {
			t.Fatalf("member %s metadata: %v %+v", jm.MemberID, err, meta)
		}
	}

	// b syncs on a raw connection (to see the bytes on the wire) and
	// waits for the leader, which assigns it nothing: empty bytes, not
	// null.
	raw, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	bSync := b.syncReq(nil)
	bSync.Version = 0
	if err := writeFrame(raw, requestFrame(bSync, 7)); err != nil {
		t.Fatal(err)
	}
	if s := a.sync(map[string]string{a.id: "a2"}); s.ErrorCode != 0 || string(s.MemberAssignment) != "a2" {
		t.Fatalf("leader's sync: %+v", s)
	}
	body := readFrame(t, raw) // correlation id, error code, assignment
	if len(body) != 10 || binary.BigEndian.Uint32(body) != 7 || binary.BigEndian.Uint16(body[4:]) != 0 || binary.BigEndian.Uint32(body[6:]) != 0 {
		t.Fatalf("b's SyncGroup v0 response on the wire: %x, want no error and a 0-length assignment", body)
	}

	// A heartbeat of the wrong generation, of an unknown member.
	old := *a
	old.gen = 1
	wantCode(t, "heartbeat of generation 1", old.heartbeat(), kerr.IllegalGeneration)
	old.gen, old.id = 2, "nobody"
	wantCode(t, "heartbeat of an unknown member", old.heartbeat(), kerr.UnknownMemberID)
	sync := old.syncReq(nil)
	wantCode(t, "sync of an unknown member", tb.request(a.cl, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.UnknownMemberID)
	sync.MemberID, sync.Generation = b.id, 1
	wantCode(t, "sync of generation 1", tb.request(a.cl, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.IllegalGeneration)

	// A third member: the others hear REBALANCE_IN_PROGRESS. a and b
	// leave in one batched LeaveGroup, which completes the rebalance
	// with c alone.
	cJoin := c.joinAsync()
	jc := c.takeJoin(cJoin)
	wantCode(t, "c's first join", jc.ErrorCode, kerr.MemberIDRequired)
	c.id = jc.MemberID
	cJoin = c.joinAsync()
	eventually(t, "b hears of the rebalance", func() bool { return b.heartbeat() == kerr.RebalanceInProgress.Code })
	wantCode(t, "a's heartbeat", a.heartbeat(), kerr.RebalanceInProgress)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	for _, id := range []string{a.id, b.id, "nobody"} {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = id
		leave.Members = append(leave.Members, lm)
	}
	lr := tb.request(a.cl, leave).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode != 0 || len(lr.Members) != 3 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != 0 ||
		lr.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("LeaveGroup: %+v", lr)
	}
	jc = c.takeJoin(cJoin)
	if jc.ErrorCode != 0 || jc.Generation != 3 || jc.LeaderID != c.id || len(jc.Members) != 1 {
		t.Fatalf("c after the others left: %+v", jc)
	}
	// LeaveGroup v0 names one member; its error is the response's.
	leave0 := kmsg.NewPtrLeaveGroupRequest()
	leave0.Group, leave0.MemberID = "g", a.id
	wantCode(t, "LeaveGroup v0 of a member that left", tb.request(tb.pinned(13, 0), leave0).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
}

// A follower that rejoins a Stable group with new metadata (a cooperative
// client after revoking) gets a normal rebalance.
func TestGroupRejoinWithNewMetadata(t *testing.T) {
	tb := startGroupBroker(t)
	a, b := newMember(tb, "coop", "t"), newMember(tb, "coop", "t")
	a.join()
	bJoin := b.joinAsync()
	jb := b.takeJoin(bJoin)
	b.id = jb.MemberID
	bJoin = b.joinAsync()
	eventually(t, "a hears of b", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	a.join()
	b.takeJoin(bJoin)
	sa := async(t, a.cl, a.syncReq(map[string]string{a.id: "x", b.id: "y"}))
	if s := b.sync(nil); s.ErrorCode != 0 || string(s.MemberAssignment) != "y" {
		t.Fatalf("b's sync: %+v", s)
	}
	recv[*kmsg.SyncGroupResponse](t, sa)
	gen := b.gen

	// The same metadata again: the current generation, no rebalance.
	if j := b.join(); j.Generation != gen {
		t.Fatalf("rejoin with the same metadata: generation %d, want %d", j.Generation, gen)
	}
	wantCode(t, "a's heartbeat", a.heartbeat(), nil)

	// New metadata: a rebalance, which the leader joins.
	b.userData = "owned-nothing"
	bJoin = b.joinAsync()
	eventually(t, "a hears of the rebalance", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	a.join()
	if j := b.takeJoin(bJoin); j.ErrorCode != 0 || j.Generation != gen+1 {
		t.Fatalf("b's rejoin: %+v", j)
	}
}

func TestGroupStaticMember(t *testing.T) {
	tb := startGroupBroker(t)
	s := newMember(tb, "static", "t")
	s.instance = "i-1"
	j := s.join() // no MEMBER_ID_REQUIRED for a static member
	oldID := s.id
	if j.Generation != 1 || j.LeaderID != oldID {
		t.Fatalf("static join: %+v", j)
	}
	if r := s.sync(map[string]string{oldID: "mine"}); r.ErrorCode != 0 || string(r.MemberAssignment) != "mine" {
		t.Fatalf("sync: %+v", r)
	}

	// The client restarts: it joins again with its instance id only. It
	// gets a new member id, the same generation, no rebalance, and the
	// old leader id (so it does not assign).
	restarted := *s
	restarted.cl, restarted.id = tb.client(), ""
	j = restarted.join()
	if j.MemberID == oldID || j.Generation != 1 || j.LeaderID != oldID || len(j.Members) != 0 {
		t.Fatalf("static rejoin: %+v", j)
	}
	if r := restarted.sync(nil); r.ErrorCode != 0 || string(r.MemberAssignment) != "mine" {
		t.Fatalf("sync after the static rejoin: %+v, want the old assignment", r)
	}
	wantCode(t, "heartbeat of the new member id", restarted.heartbeat(), nil)
	wantCode(t, "heartbeat of the old member id", s.heartbeat(), kerr.FencedInstanceID)
	wantCode(t, "sync of the old member id", s.sync(nil).ErrorCode, kerr.FencedInstanceID)
	d := tb.describeGroup(s.cl, "static")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != restarted.id ||
		d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != "i-1" {
		t.Fatalf("described: %+v", d)
	}

	// An administrator removes it by instance id.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "static"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = kmsg.StringPtr("i-1")
	leave.Members = append(leave.Members, lm)
	if lr := tb.request(s.cl, leave).(*kmsg.LeaveGroupResponse); lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("LeaveGroup by instance id: %+v", lr)
	}
	eventually(t, "the group empties", func() bool { return tb.describeGroup(s.cl, "static").State == "Empty" })
}

func TestGroupJoinErrors(t *testing.T) {
	tb := startGroupBroker(t, func(c *config.Config) { c.GroupMaxSize = 1 })
	a := newMember(tb, "errs", "t")
	a.join()
	a.sync(map[string]string{a.id: ""})

	join := func(what string, edit func(*kmsg.JoinGroupRequest), want *kerr.Error) {
		t.Helper()
		req := newMember(tb, "errs", "t").joinReq()
		edit(req)
		wantCode(t, what, tb.request(a.cl, req).(*kmsg.JoinGroupResponse).ErrorCode, want)
	}
	join("a session timeout below the minimum", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 50 }, kerr.InvalidSessionTimeout)
	join("a session timeout above the maximum", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = math.MaxInt32 }, kerr.InvalidSessionTimeout)
	// (A new member would be refused by group.max.size first.)
	join("another protocol type", func(r *kmsg.JoinGroupRequest) { r.MemberID, r.ProtocolType = a.id, "connect" }, kerr.InconsistentGroupProtocol)
	join("no protocol in common", func(r *kmsg.JoinGroupRequest) { r.MemberID, r.Protocols[0].Name = a.id, "sticky" }, kerr.InconsistentGroupProtocol)
	join("no protocols for a new group", func(r *kmsg.JoinGroupRequest) { r.Group, r.Protocols = "fresh", nil }, kerr.InconsistentGroupProtocol)
	join("an unknown group with a member id", func(r *kmsg.JoinGroupRequest) { r.Group, r.MemberID = "nope", "nobody" }, kerr.UnknownMemberID)
	join("a member beyond group.max.size", func(r *kmsg.JoinGroupRequest) {}, kerr.GroupMaxSizeReached)

	// SyncGroup v5 checks the protocol type and name.
	sync := a.syncReq(nil)
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("roundrobin")
	wantCode(t, "SyncGroup v5 with another protocol", tb.request(a.cl, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	sync.Protocol = kmsg.StringPtr("range")
	if r := tb.request(a.cl, sync).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || r.Protocol == nil || *r.Protocol != "range" {
		t.Fatalf("SyncGroup v5: %+v", r)
	}

	// An empty group id, sent straight to the broker.
	send := tb.direct(nil)
	jr := newMember(tb, "", "t").joinReq()
	wantCode(t, "JoinGroup with an empty group id", send(jr).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)
	sr := kmsg.NewPtrSyncGroupRequest()
	wantCode(t, "SyncGroup with an empty group id", send(sr).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InvalidGroupID)
	hr := kmsg.NewPtrHeartbeatRequest()
	wantCode(t, "Heartbeat with an empty group id", send(hr).(*kmsg.HeartbeatResponse).ErrorCode, kerr.InvalidGroupID)
	lr := kmsg.NewPtrLeaveGroupRequest()
	wantCode(t, "LeaveGroup with an empty group id", send(lr).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.InvalidGroupID)
	dr := kmsg.NewPtrOffsetDeleteRequest()
	wantCode(t, "OffsetDelete with an empty group id", send(dr).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.InvalidGroupID)
}

func TestGroupSessionTimeout(t *testing.T) {
	tb := startGroupBroker(t)
	a, b := newMember(tb, "sess", "t"), newMember(tb, "sess", "t")
	a.join()
	a.sync(nil)
	// b asks for a short session and never heartbeats: it is removed and
	// a is told to rejoin.
	b.session = 150
	jb := b.takeJoin(b.joinAsync())
	b.id = jb.MemberID
	bJoin := b.joinAsync()
	eventually(t, "a hears of b", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	a.join()
	b.takeJoin(bJoin)
	sa := async(t, a.cl, a.syncReq(nil))
	b.sync(nil)
	recv[*kmsg.SyncGroupResponse](t, sa)
	eventually(t, "b's session expires", func() bool {
		d := tb.describeGroup(a.cl, "sess")
		return len(d.Members) == 1 && d.Members[0].MemberID == a.id
	})
	wantCode(t, "a's heartbeat after b expired", a.heartbeat(), kerr.RebalanceInProgress)
	wantCode(t, "b's heartbeat after it expired", b.heartbeat(), kerr.UnknownMemberID)

	// A member id handed out with MEMBER_ID_REQUIRED lapses too.
	c := newMember(tb, "sess2", "t")
	c.session = 150
	jc := c.takeJoin(c.joinAsync())
	wantCode(t, "c's first join", jc.ErrorCode, kerr.MemberIDRequired)
	eventually(t, "the pending member id lapses", func() bool {
		g, ok := tb.b.groups.Inspect("sess2")
		return ok && g.PendingMembers == 0
	})
}

func commitReq(group, member string, gen int32, topic string, offsets map[int32]int64, meta string) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range slices.Sorted(mapsKeys(offsets)) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, offsets[p], kmsg.StringPtr(meta)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func commitCodes(resp kmsg.Response) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
		}
	}
	return out
}

func fetchReq(group string, topic string, partitions ...int32) *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	req.Topics = append(req.Topics, rt)
	return req
}

func TestGroupOffsetCommitFetch(t *testing.T) {
	tb := startGroupBroker(t, func(c *config.Config) { c.OffsetMetadataMaxBytes = 8 })
	tb.createTopic("t", 3, nil)
	cl := tb.client()

	// Simple commits: per-partition errors for unknown partitions and
	// metadata over offset.metadata.max.bytes.
	req := commitReq("simple", "", -1, "t", map[int32]int64{0: 10, 1: 20, 7: 1}, "meta")
	tooLong := kmsg.NewOffsetCommitRequestTopicPartition()
	tooLong.Partition, tooLong.Offset, tooLong.Metadata = 2, 30, kmsg.StringPtr("much too long")
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, tooLong)
	nope := kmsg.NewOffsetCommitRequestTopic()
	nope.Topic = "nope"
	nope.Partitions = []kmsg.OffsetCommitRequestTopicPartition{kmsg.NewOffsetCommitRequestTopicPartition()}
	req.Topics = append(req.Topics, nope)
	codes := commitCodes(tb.request(cl, req))
	want := map[string]int16{"t/0": 0, "t/1": 0, "t/7": kerr.UnknownTopicOrPartition.Code,
		"t/2": kerr.OffsetMetadataTooLarge.Code, "nope/0": kerr.UnknownTopicOrPartition.Code}
	for k, w := range want {
		if codes[k] != w {
			t.Fatalf("commit %s: %v, want %v (all: %v)", k, kerr.ErrorForCode(codes[k]), kerr.ErrorForCode(w), codes)
		}
	}

	// v1 (pinned) with an explicit commit timestamp, v0 too.
	v1 := commitReq("simple", "", -1, "t", map[int32]int64{2: 5}, "")
	v1.Topics[0].Partitions[0].Timestamp = 1234
	if c := commitCodes(tb.request(tb.pinned(8, 1), v1)); c["t/2"] != 0 {
		t.Fatalf("v1 commit: %v", c)
	}
	g, _ := tb.b.groups.Inspect("simple")
	ts := g.Offsets["t"][2].CommitTimestamp
	if ts != 1234 {
		t.Fatalf("v1 commit timestamp %d, want 1234", ts)
	}

	// Fetch: committed offsets with their metadata, -1 for the rest.
	fr := tb.request(cl, fetchReq("simple", "t", 0, 1, 2, 9)).(*kmsg.OffsetFetchResponse)
	if fr.ErrorCode != 0 || len(fr.Groups) != 1 {
		t.Fatalf("OffsetFetch: %+v", fr)
	}
	got := map[int32]string{}
	for _, p := range fr.Groups[0].Topics[0].Partitions {
		got[p.Partition] = strings.Join([]string{itoa(p.Offset), *p.Metadata}, ":")
	}
	if got[0] != "10:meta" || got[1] != "20:meta" || got[2] != "5:" || got[9] != "-1:" {
		t.Fatalf("fetched %v", got)
	}
	// v1 (pinned, no top-level error) and v7 with null topics: all.
	v1f := tb.request(tb.pinned(9, 1), fetchReq("simple", "t", 0)).(*kmsg.OffsetFetchResponse)
	if len(v1f.Topics) != 1 || v1f.Topics[0].Partitions[0].Offset != 10 {
		t.Fatalf("OffsetFetch v1: %+v", v1f)
	}
	all := fetchReq("simple", "")
	all.Topics = nil
	v7 := tb.request(tb.pinned(9, 7), all).(*kmsg.OffsetFetchResponse)
	if v7.ErrorCode != 0 || len(v7.Topics) != 1 || len(v7.Topics[0].Partitions) != 3 {
		t.Fatalf("OffsetFetch v7 of all topics: %+v", v7)
	}

	// A group with a member: only the member's commits of its
	// generation count.
	m := newMember(tb, "members", "t")
	m.join()
	m.sync(nil)
	c := commitCodes(tb.request(cl, commitReq("members", "", -1, "t", map[int32]int64{0: 1}, "")))
	wantCode(t, "a simple commit to a group with members", c["t/0"], kerr.UnknownMemberID)
	c = commitCodes(tb.request(cl, commitReq("members", m.id, m.gen+1, "t", map[int32]int64{0: 1}, "")))
	wantCode(t, "a commit of the next generation", c["t/0"], kerr.IllegalGeneration)
	c = commitCodes(tb.request(cl, commitReq("members", "other", m.gen, "t", map[int32]int64{0: 1}, "")))
	wantCode(t, "a commit of an unknown member", c["t/0"], kerr.UnknownMemberID)
	c = commitCodes(tb.request(cl, commitReq("members", m.id, m.gen, "t", map[int32]int64{0: 42}, "x")))
	wantCode(t, "the member's commit", c["t/0"], nil)
	c = commitCodes(tb.request(cl, commitReq("ghost", "m", 3, "t", map[int32]int64{0: 1}, "")))
	wantCode(t, "a generation of a group that does not exist", c["t/0"], kerr.IllegalGeneration)

	// v8+: several groups in one request.
	multi := kmsg.NewPtrOffsetFetchRequest()
	for _, group := range []string{"simple", "members", "ghost"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		rg.Topics = append(rg.Topics, rt)
		multi.Groups = append(multi.Groups, rg)
	}
	mr := tb.request(tb.pinned(9, 8), multi).(*kmsg.OffsetFetchResponse)
	if len(mr.Groups) != 3 {
		t.Fatalf("OffsetFetch v8: %d groups", len(mr.Groups))
	}
	for i, wantOff := range []int64{10, 42, -1} {
		rg := mr.Groups[i]
		if rg.ErrorCode != 0 || len(rg.Topics) != 1 || rg.Topics[0].Partitions[0].Offset != wantOff {
			t.Fatalf("OffsetFetch v8 group %s: %+v, want offset %d", rg.Group, rg, wantOff)
		}
	}
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestGroupListDescribeDelete(t *testing.T) {
	tb := startGroupBroker(t)
	tb.createTopic("t", 1, nil)
	cl := tb.client()
	tb.request(cl, commitReq("only-offsets", "", -1, "t", map[int32]int64{0: 3}, ""))
	m := newMember(tb, "busy", "t")
	m.join()
	m.sync(map[string]string{m.id: "assigned"})

	list := func(states, types []string) []string {
		t.Helper()
		req := kmsg.NewPtrListGroupsRequest()
		req.StatesFilter, req.TypesFilter = states, types
		resp := tb.request(cl, req).(*kmsg.ListGroupsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("ListGroups: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		var out []string
		for _, g := range resp.Groups {
			out = append(out, g.Group+"/"+g.GroupState+"/"+g.ProtocolType+"/"+g.GroupType)
		}
		return out
	}
	if got := list(nil, nil); !slices.Equal(got, []string{"busy/Stable/consumer/classic", "only-offsets/Empty//classic"}) {
		t.Fatalf("ListGroups: %v", got)
	}
	if got := list([]string{"stable"}, nil); !slices.Equal(got, []string{"busy/Stable/consumer/classic"}) {
		t.Fatalf("ListGroups of Stable groups: %v", got)
	}
	if got := list([]string{"Empty", "Dead"}, []string{"Classic"}); !slices.Equal(got, []string{"only-offsets/Empty//classic"}) {
		t.Fatalf("ListGroups of Empty classic groups: %v", got)
	}
	if got := list(nil, []string{"consumer"}); len(got) != 0 {
		t.Fatalf("ListGroups of consumer-protocol groups: %v", got)
	}

	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{"busy", "only-offsets", "unknown"}
	dresp := tb.request(cl, dreq).(*kmsg.DescribeGroupsResponse)
	busy, only, unknown := dresp.Groups[0], dresp.Groups[1], dresp.Groups[2]
	if busy.State != "Stable" || busy.ProtocolType != "consumer" || busy.Protocol != "range" || len(busy.Members) != 1 ||
		busy.AuthorizedOperations != math.MinInt32 {
		t.Fatalf("busy: %+v", busy)
	}
	bm := busy.Members[0]
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(bm.ProtocolMetadata); err != nil || string(bm.MemberAssignment) != "assigned" ||
		bm.MemberID != m.id || bm.ClientHost == "" || bm.ClientID == "" {
		t.Fatalf("busy's member: %+v (%v)", bm, err)
	}
	if only.State != "Empty" || len(only.Members) != 0 || unknown.State != "Dead" || unknown.ErrorCode != 0 {
		t.Fatalf("only-offsets %+v, unknown %+v", only, unknown)
	}

	del := func(groups ...string) []int16 {
		t.Helper()
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = groups
		var codes []int16
		for _, g := range tb.request(cl, req).(*kmsg.DeleteGroupsResponse).Groups {
			codes = append(codes, g.ErrorCode)
		}
		return codes
	}
	if c := del("busy", "only-offsets"); c[0] != kerr.NonEmptyGroup.Code || c[1] != 0 {
		t.Fatalf("DeleteGroups: %v", c)
	}
	if c := del("only-offsets", "never"); c[0] != kerr.GroupIDNotFound.Code || c[1] != kerr.GroupIDNotFound.Code {
		t.Fatalf("DeleteGroups of deleted groups: %v", c)
	}
	fr := tb.request(cl, fetchReq("only-offsets", "t", 0)).(*kmsg.OffsetFetchResponse)
	if off := fr.Groups[0].Topics[0].Partitions[0].Offset; off != -1 {
		t.Fatalf("offset of a deleted group: %d", off)
	}
}

func TestGroupOffsetDelete(t *testing.T) {
	tb := startGroupBroker(t)
	tb.createTopic("t", 2, nil)
	tb.createTopic("u", 1, nil)
	m := newMember(tb, "od", "t")
	m.join()
	m.sync(nil)
	cl := tb.client()
	tb.request(cl, commitReq("od", m.id, m.gen, "t", map[int32]int64{0: 1, 1: 2}, ""))
	tb.request(cl, commitReq("od", m.id, m.gen, "u", map[int32]int64{0: 3}, ""))

	del := func(group string, topics map[string][]int32) *kmsg.OffsetDeleteResponse {
		t.Helper()
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for _, topic := range slices.Sorted(mapsKeys(topics)) {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = topic
			for _, p := range topics[topic] {
				rp := kmsg.NewOffsetDeleteRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return tb.request(cl, req).(*kmsg.OffsetDeleteResponse)
	}
	r := del("od", map[string][]int32{"t": {0}, "u": {0}, "nope": {0}})
	if r.ErrorCode != 0 || len(r.Topics) != 3 {
		t.Fatalf("OffsetDelete: %+v", r)
	}
	want := map[string]int16{"nope": kerr.UnknownTopicOrPartition.Code, "t": kerr.GroupSubscribedToTopic.Code, "u": 0}
	for _, rt := range r.Topics {
		if rt.Partitions[0].ErrorCode != want[rt.Topic] {
			t.Fatalf("OffsetDelete %s: %v, want %v", rt.Topic, kerr.ErrorForCode(rt.Partitions[0].ErrorCode), kerr.ErrorForCode(want[rt.Topic]))
		}
	}
	off := func(topic string) int64 {
		t.Helper()
		fr := tb.request(cl, fetchReq("od", topic, 0)).(*kmsg.OffsetFetchResponse)
		return fr.Groups[0].Topics[0].Partitions[0].Offset
	}
	if off("t") != 1 || off("u") != -1 {
		t.Fatalf("after OffsetDelete: t %d, u %d", off("t"), off("u"))
	}
	wantCode(t, "OffsetDelete of an unknown group", del("never", map[string][]int32{"t": {0}}).ErrorCode, kerr.GroupIDNotFound)

	// Once the member leaves, the group is Empty and everything can go.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "od", m.id
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = m.id
	leave.Members = append(leave.Members, lm)
	tb.request(cl, leave)
	eventually(t, "the group empties", func() bool { return tb.describeGroup(cl, "od").State == "Empty" })
	if r := del("od", map[string][]int32{"t": {0, 1}}); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete of an Empty group: %+v", r)
	}
	if off("t") != -1 {
		t.Fatalf("t still has offset %d", off("t"))
	}
}

func TestGroupOffsetExpiry(t *testing.T) {
	tb := startGroupBroker(t)
	tb.createTopic("t", 1, nil)
	cl := tb.client()
	tb.request(cl, commitReq("old", "", -1, "t", map[int32]int64{0: 7}, ""))
	gc := tb.b.groups
	if n := gc.ExpireOffsets(testCtx(t), time.Now()); n != 0 {
		t.Fatalf("expired %d fresh offsets", n)
	}
	if n := gc.ExpireOffsets(testCtx(t), time.Now().Add(tb.cfg.OffsetsRetentionMs+time.Minute)); n != 1 {
		t.Fatalf("expired %d offsets, want 1", n)
	}
	if _, ok := gc.Inspect("old"); ok {
		t.Fatal("the group left without offsets is still there")
	}
	// The tombstones are in the store: a restart brings nothing back.
	tb.restart()
	tb.waitGroupsLoaded()
	cl = tb.client()
	fr := tb.request(cl, fetchReq("old", "t", 0)).(*kmsg.OffsetFetchResponse)
	if off := fr.Groups[0].Topics[0].Partitions[0].Offset; off != -1 {
		t.Fatalf("expired offset after a restart: %d", off)
	}
}

func TestGroupSurvivesRestart(t *testing.T) {
	tb := startGroupBroker(t)
	tb.createTopic("t", 2, nil)
	m := newMember(tb, "durable", "t")
	m.join()
	m.sync(map[string]string{m.id: "assigned"})
	cl := tb.client()
	tb.request(cl, commitReq("durable", m.id, m.gen, "t", map[int32]int64{0: 11, 1: 12}, "kept"))
	tb.request(cl, commitReq("simple", "", -1, "t", map[int32]int64{0: 99}, ""))

	tb.restart()
	tb.waitGroupsLoaded()
	cl = tb.client()
	m.cl = tb.client()
	fr := tb.request(cl, fetchReq("durable", "t", 0, 1)).(*kmsg.OffsetFetchResponse)
	ps := fr.Groups[0].Topics[0].Partitions
	if ps[0].Offset != 11 || ps[1].Offset != 12 || *ps[0].Metadata != "kept" {
		t.Fatalf("offsets after a restart: %+v", ps)
	}
	fr = tb.request(cl, fetchReq("simple", "t", 0)).(*kmsg.OffsetFetchResponse)
	if off := fr.Groups[0].Topics[0].Partitions[0].Offset; off != 99 {
		t.Fatalf("simple group's offset after a restart: %d", off)
	}
	d := tb.describeGroup(cl, "durable")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != m.id || string(d.Members[0].MemberAssignment) != "assigned" {
		t.Fatalf("group after a restart: %+v", d)
	}
	// The member came back with the group and goes on heartbeating.
	wantCode(t, "heartbeat after a restart", m.heartbeat(), nil)
	if r := m.sync(nil); r.ErrorCode != 0 || string(r.MemberAssignment) != "assigned" {
		t.Fatalf("sync after a restart: %+v", r)
	}
}

// Shutdown answers a waiting JoinGroup NOT_COORDINATOR.
func TestGroupShutdownAnswersWaitingJoin(t *testing.T) {
	tb := startGroupBroker(t)
	a, b := newMember(tb, "sd", "t"), newMember(tb, "sd", "t")
	a.join()
	b.id = b.takeJoin(b.joinAsync()).MemberID
	raw, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	req := b.joinReq()
	req.Version = 5
	if err := writeFrame(raw, requestFrame(req, 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rebalance starts", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	tb.stop()
	body := readFrame(t, raw)
	resp := kmsg.JoinGroupResponse{Version: 5}
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "waiting join at shutdown", resp.ErrorCode, kerr.NotCoordinator)
}

// TestGroupCoordinatorLoadInProgress holds back the load of
// __consumer_offsets after a restart: until the group's partition is
// loaded, its requests answer COORDINATOR_LOAD_IN_PROGRESS (a heartbeat:
// no error), and once it is, the committed offset is there.
func TestGroupCoordinatorLoadInProgress(t *testing.T) {
	dir := t.TempDir()
	tb := startGroupBroker(t, func(c *config.Config) { c.LogDirs = []string{dir} })
	tb.createTopic("lip", 1, nil)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "lip-group"
	commit.Generation = -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "lip"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 42
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	if r := tb.request(tb.client(), commit).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}

	// No other broker runs meanwhile: the test is not parallel.
	release := make(chan struct{})
	hook := func(int32) { <-release }
	group.TestHookLoad.Store(&hook)
	defer group.TestHookLoad.Store(nil)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before the broker stops
	tb.stop()
	tb.coord = reopenTestCoordinator(t, tb.cfg, tb.coord)
	tb.start()

	send := tb.direct(nil)
	fetch := kmsg.NewPtrOffsetFetchRequest() // v8+: groups
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group = "lip-group"
	fetch.Groups = append(fetch.Groups, fg)
	wantCode(t, "OffsetFetch while loading", send(fetch).(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	r := send(commit).(*kmsg.OffsetCommitResponse)
	wantCode(t, "OffsetCommit while loading", r.Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	jr := newMember(tb, "lip-group", "lip").joinReq()
	wantCode(t, "JoinGroup while loading", send(jr).(*kmsg.JoinGroupResponse).ErrorCode, kerr.CoordinatorLoadInProgress)
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Groups = []string{"lip-group"}
	wantCode(t, "DescribeGroups while loading", send(desc).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "lip-group", "m", 1
	wantCode(t, "Heartbeat while loading", send(hb).(*kmsg.HeartbeatResponse).ErrorCode, nil)

	unblock()
	tb.waitGroupsLoaded()
	got := send(fetch).(*kmsg.OffsetFetchResponse).Groups[0]
	if got.ErrorCode != 0 || len(got.Topics) != 1 || got.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("OffsetFetch after the load: %+v", got)
	}
}
