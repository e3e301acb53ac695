package group_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/group/grouptest"
	"github.com/strata-broker/strata/config"
)

// memCoordinator is a coordinator over in-memory logs of a
// __consumer_offsets of three partitions, with a topic "t" to commit to
// and a clock the test sets.
type memCoordinator struct {
	t    *testing.T
	logs *grouptest.Logs
	now  time.Time
}

// open starts a coordinator over the logs (again, after a Close: a
// restart) and waits until its groups are loaded.
func (mc *memCoordinator) open() *group.Coordinator {
	mc.t.Helper()
	cfg := config.Default()
	cfg.OffsetsTopicNumPartitions = 3
	cfg.GroupInitialRebalanceDelayMs = 0
	meta := grouptest.NewMetadata(3).WithTopic("t", 2)
	log := slog.New(slog.DiscardHandler)
	store, err := group.OpenStore(context.Background(), group.StoreOptions{Config: cfg, Coordinator: meta, Logs: mc.logs, Logger: log})
	if err != nil {
		mc.t.Fatalf("OpenStore: %v", err)
	}
	c := group.New(group.Options{Config: cfg, Coordinator: meta, Store: store, Logger: log, Now: func() time.Time { return mc.now }})
	mc.t.Cleanup(c.Close)
	select {
	case <-c.Loaded():
	case <-time.After(10 * time.Second):
		mc.t.Fatal("groups not loaded after 10s")
	}
	return c
}

// answer is resp, or what wait answers if there is a wait.
func answer[R any](resp R, wait func(context.Context) R) R {
	if wait == nil {
		return resp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return wait(ctx)
}

// wantCode fails the test unless got is the error code want (0: none).
func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// TestCoordinatorRebalanceCommitReload drives one member through the
// coordinator's API over an in-memory store: join (through
// MEMBER_ID_REQUIRED), sync, heartbeat, commit and fetch; a restart
// brings the group back Stable with its assignment and offset; once the
// member leaves, expiry removes the offset and the group, for good.
func TestCoordinatorRebalanceCommitReload(t *testing.T) {
	mc := &memCoordinator{t: t, logs: grouptest.NewLogs(3), now: time.UnixMilli(1700000000000)}
	c := mc.open()

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType = 9, "g", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("sub")
	join.Protocols = append(join.Protocols, p)
	jr := answer(c.JoinGroup(join, "client", "/127.0.0.1"))
	wantCode(t, "first join", jr.ErrorCode, kerr.MemberIDRequired.Code)
	join.MemberID = jr.MemberID
	jr = answer(c.JoinGroup(join, "client", "/127.0.0.1"))
	wantCode(t, "join", jr.ErrorCode, 0)
	if jr.Generation != 1 || jr.LeaderID != join.MemberID || len(jr.Members) != 1 || string(jr.Members[0].ProtocolMetadata) != "sub" {
		t.Fatalf("join: generation %d, leader %q, members %+v", jr.Generation, jr.LeaderID, jr.Members)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation = 5, "g", join.MemberID, jr.Generation
	ga := kmsg.NewSyncGroupRequestGroupAssignment()
	ga.MemberID, ga.MemberAssignment = join.MemberID, []byte("assigned")
	sync.GroupAssignment = append(sync.GroupAssignment, ga)
	sr := answer(c.SyncGroup(sync))
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assigned" || sr.Protocol == nil || *sr.Protocol != "range" {
		t.Fatalf("sync: %v %q %v", kerr.ErrorForCode(sr.ErrorCode), sr.MemberAssignment, sr.Protocol)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", join.MemberID, jr.Generation
	wantCode(t, "heartbeat", c.Heartbeat(hb).ErrorCode, 0)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.MemberID, commit.Generation = 9, "g", join.MemberID, jr.Generation
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	for _, part := range []int32{1, 5} {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = part, 42, 3
		ct.Partitions = append(ct.Partitions, cp)
	}
	commit.Topics = append(commit.Topics, ct)
	cr := answer(c.CommitOffsets(commit))
	wantCode(t, "commit", cr.Topics[0].Partitions[0].ErrorCode, 0)
	wantCode(t, "commit to a partition that does not exist", cr.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition.Code)

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 9
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group = "g"
	fetch.Groups = append(fetch.Groups, fg)
	offset := func(c *group.Coordinator) int64 {
		t.Helper()
		g := c.FetchOffsets(fetch).Groups[0]
		if g.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(g.ErrorCode))
		}
		if len(g.Topics) == 0 {
			return -1
		}
		return g.Topics[0].Partitions[0].Offset
	}
	if o := offset(c); o != 42 {
		t.Fatalf("fetched offset %d, want 42", o)
	}

	// A restart loads the group back from the store.
	c.Close()
	c = mc.open()
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	d := c.DescribeGroups(describe).Groups[0]
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != join.MemberID || string(d.Members[0].MemberAssignment) != "assigned" {
		t.Fatalf("after a restart: %+v", d)
	}
	if o := offset(c); o != 42 {
		t.Fatalf("fetched offset %d after a restart, want 42", o)
	}
	info, ok := c.Inspect("g")
	if got := info.Offsets["t"][1]; !ok || got.CommitTimestamp != mc.now.UnixMilli() || got.LeaderEpoch != 3 {
		t.Fatalf("inspected offset %+v (found %v), want commit time %d and leader epoch 3", got, ok, mc.now.UnixMilli())
	}

	// Once the member leaves, the group is Empty: its offset expires after
	// offsets.retention.minutes, and the group with it.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = join.MemberID
	leave.Members = append(leave.Members, lm)
	if lr := c.LeaveGroup(leave); lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", lr)
	}
	if n := c.ExpireOffsets(context.Background(), mc.now); n != 0 {
		t.Fatalf("expired %d fresh offsets", n)
	}
	if n := c.ExpireOffsets(context.Background(), mc.now.Add(config.Default().OffsetsRetentionMs+time.Minute)); n != 1 {
		t.Fatalf("expired %d offsets, want 1", n)
	}
	if _, ok := c.Inspect("g"); ok {
		t.Fatal("the group left without offsets is still there")
	}
	c.Close()
	c = mc.open()
	if _, ok := c.Inspect("g"); ok {
		t.Fatal("the expired group came back after a restart")
	}
	if o := offset(c); o != -1 {
		t.Fatalf("expired offset after a restart: %d", o)
	}
}
