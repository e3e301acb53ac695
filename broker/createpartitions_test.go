package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func TestCreatePartitions(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("cp", 1, nil)
	adm := tb.admin()
	ctx := testCtx(t)

	// validate_only changes nothing.
	rs, err := adm.ValidateCreatePartitions(ctx, 2, "cp")
	if err != nil || rs.Error() != nil {
		t.Fatalf("validate: %v %v", err, rs.Error())
	}
	if n := len(tb.coord.Snapshot().Topics["cp"].Partitions); n != 1 {
		t.Fatalf("validate_only made %d partitions", n)
	}

	rs, err = adm.CreatePartitions(ctx, 2, "cp")
	if err != nil || rs.Error() != nil {
		t.Fatalf("create partitions: %v %v", err, rs.Error())
	}
	// The new partitions can be used at once.
	cl := tb.client()
	for p := int32(1); p <= 2; p++ {
		if sp := produceRaw(t, tb, cl, "cp", p, batchtest.Make(t, kgo.NoCompression(), 1, "v")); sp.ErrorCode != 0 {
			t.Fatalf("produce to new partition %d: %v", p, kerr.ErrorForCode(sp.ErrorCode))
		}
		if fp := fetchRaw(t, tb, cl, "cp", p, 0, 0, 1); fp.ErrorCode != 0 || fp.HighWatermark != 1 {
			t.Fatalf("fetch new partition %d: %v hw %d", p, kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark)
		}
	}

	for _, set := range []int{3, 2} {
		rs, err = adm.UpdatePartitions(ctx, set, "cp")
		if err != nil || !errors.Is(rs["cp"].Err, kerr.InvalidPartitions) {
			t.Fatalf("set %d of 3: %v %v", set, err, rs["cp"].Err)
		}
	}

	// Raw requests for what kadm does not send.
	assign := func(replicas ...[]int32) []kmsg.CreatePartitionsRequestTopicAssignment {
		var out []kmsg.CreatePartitionsRequestTopicAssignment
		for _, r := range replicas {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			out = append(out, a)
		}
		return out
	}
	topic := func(name string, count int32, a []kmsg.CreatePartitionsRequestTopicAssignment) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count, rt.Assignment = name, count, a
		return rt
	}
	tb.createTopic("cp-a", 1, nil)
	tb.createTopic("cp-b", 1, nil)
	tb.createTopic("cp-c", 1, nil)
	tb.createTopic("cp-ok", 1, nil)
	me := tb.coord.BrokerID()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.CreatePartitionsRequestTopic{
		topic("nope", 2, nil),
		topic("cp-a", 3, assign([]int32{me})),     // one assignment for two partitions
		topic("cp-b", 2, assign([]int32{me + 7})), // unknown broker
		topic("cp-c", 2, assign([]int32{me, me})), // twice, and rf 2 on an rf 1 topic
		topic("cp-ok", 3, assign([]int32{me}, []int32{me})),
		topic("dup", 2, nil),
		topic("dup", 2, nil),
	}
	for _, v := range []int16{0, 3} {
		if v == 0 {
			req.Topics[4].Count = 3
		} else {
			req.Topics[4].Count = 4
			req.Topics[4].Assignment = assign([]int32{me})
		}
		resp := tb.request(tb.pinned(37, v), req).(*kmsg.CreatePartitionsResponse)
		want := map[string]int16{
			"nope":  kerr.UnknownTopicOrPartition.Code,
			"cp-a":  kerr.InvalidReplicaAssignment.Code,
			"cp-b":  kerr.InvalidReplicaAssignment.Code,
			"cp-c":  kerr.InvalidReplicaAssignment.Code,
			"cp-ok": 0,
			"dup":   kerr.InvalidRequest.Code,
		}
		for _, st := range resp.Topics {
			if st.ErrorCode != want[st.Topic] {
				t.Errorf("v%d %s: %v, want %v", v, st.Topic, kerr.ErrorForCode(st.ErrorCode), kerr.ErrorForCode(want[st.Topic]))
			}
			if v >= 1 && st.ErrorCode != 0 && st.ErrorMessage == nil {
				t.Errorf("v%d %s: no message", v, st.Topic)
			}
		}
	}
	if n := len(tb.coord.Snapshot().Topics["cp-ok"].Partitions); n != 4 {
		t.Fatalf("cp-ok has %d partitions, want 4", n)
	}
	tb.logOffsets("cp-ok", 3)
}
