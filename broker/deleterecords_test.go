package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func TestDeleteRecords(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("dr", 2, nil)
	tb.createTopic("dr-compact", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")})
	cl := tb.client()
	for i := range 5 {
		produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), int64(1000*i), "a", "b"))
	}
	produceRaw(t, tb, cl, "dr-compact", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a"))
	adm := tb.admin()
	ctx := testCtx(t)

	del := func(topic string, p int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
		rs, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		r, ok := rs.Lookup(topic, p)
		if !ok {
			t.Fatalf("no answer for %s-%d", topic, p)
		}
		return r
	}

	// Mid-batch: the start is 3 even though the batch begins at 2.
	if r := del("dr", 0, 3); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("delete to 3: %+v", r)
	}
	if start, _ := tb.logOffsets("dr", 0); start != 3 {
		t.Fatalf("log start %d", start)
	}
	if fp := fetchRaw(t, tb, cl, "dr", 0, 2, 0, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 3 {
		t.Fatalf("fetch below the start: %v, log start %d", kerr.ErrorForCode(fp.ErrorCode), fp.LogStartOffset)
	}
	if sp := listOffset(t, tb, 8, "dr", -2); sp.Offset != 3 {
		t.Fatalf("earliest %d", sp.Offset)
	}
	if r := del("dr", 0, 1); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("below the start: %+v", r)
	}
	if r := del("dr", 0, 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("past the high watermark: %+v", r)
	}
	if r := del("dr", 0, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("-1: %+v", r)
	}
	if sp := produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), 1, "after")); sp.ErrorCode != 0 || sp.BaseOffset != 10 {
		t.Fatalf("produce after deleting everything: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
	if r := del("dr", 1, 0); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("empty partition: %+v", r)
	}
	if r := del("dr-compact", 0, 1); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("compacted topic: %+v", r)
	}

	// Raw, for what kadm sorts out itself: unknown partitions, v0.
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "dr"
	for _, p := range []int32{0, 9} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, 11
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Straight to the broker: kgo refuses to shard an unknown partition.
	kresp, err := tb.pinned(21, 0).Broker(int(tb.coord.BrokerID())).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DeleteRecordsResponse)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LowWatermark != 11 || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || ps[1].LowWatermark != -1 {
		t.Fatalf("v0: %+v", ps)
	}
}
