package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func offsetForEpoch(t *testing.T, tb *testBroker, version int16, current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ole"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(tb.pinned(23, version), req).(*kmsg.OffsetForLeaderEpochResponse)
	return resp.Topics[0].Partitions[0]
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ole", 1, nil)
	cl := tb.client()
	produceRaw(t, tb, cl, "ole", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a", "b", "c"))
	e0 := tb.coord.Snapshot().Topics["ole"].Partitions[0].LeaderEpoch

	if sp := offsetForEpoch(t, tb, 4, e0, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("current epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 0, -1, e0); sp.ErrorCode != 0 || sp.EndOffset != 3 {
		t.Fatalf("v0: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, -1, e0+5); sp.ErrorCode != 0 || sp.LeaderEpoch != -1 || sp.EndOffset != -1 {
		t.Fatalf("unknown epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e0+1, e0); sp.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer current epoch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}

	// A restart bumps the leader epoch; the old epoch ends where the
	// batches of the new one begin.
	tb.restart()
	cl = tb.client()
	e1 := tb.coord.Snapshot().Topics["ole"].Partitions[0].LeaderEpoch
	if e1 <= e0 {
		t.Skipf("leader epoch did not change on restart (%d -> %d)", e0, e1)
	}
	if sp := offsetForEpoch(t, tb, 4, e1, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("old epoch, nothing newer written: %+v", sp)
	}
	produceRaw(t, tb, cl, "ole", 0, batchtest.Make(t, kgo.NoCompression(), 1, "d", "e"))
	if sp := offsetForEpoch(t, tb, 4, e1, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("old epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e1, e1); sp.ErrorCode != 0 || sp.LeaderEpoch != e1 || sp.EndOffset != 5 {
		t.Fatalf("new epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e0, e0); sp.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("older current epoch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}

	// Fetch checks the client's current leader epoch the same way, and
	// answers a last fetched epoch the log's history parts from (e0 up
	// to offset 5: e0 ended at 3) with where it ends.
	for _, tc := range []struct {
		current, last int32
		offset        int64
		code          int16
		diverging     int64
	}{
		{e0, -1, 0, kerr.FencedLeaderEpoch.Code, -1},
		{e1 + 1, -1, 0, kerr.UnknownLeaderEpoch.Code, -1},
		{e1, e0, 3, 0, -1},
		{e1, e0, 5, 0, 3},
		{e1, e1 + 1, 5, kerr.OffsetOutOfRange.Code, -1},
	} {
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "ole"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.FetchOffset = tc.current, tc.last, tc.offset
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		sp := tb.request(tb.pinned(1, 12), req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != tc.code || sp.DivergingEpoch.EndOffset != tc.diverging {
			t.Errorf("fetch at %d, current epoch %d, last fetched epoch %d: %v, diverging %+v; want %v, diverging end %d",
				tc.offset, tc.current, tc.last, kerr.ErrorForCode(sp.ErrorCode), sp.DivergingEpoch, kerr.ErrorForCode(tc.code), tc.diverging)
		}
	}
}
