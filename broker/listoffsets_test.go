package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func listOffset(t *testing.T, tb *testBroker, version int16, topic string, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rp.MaxNumOffsets = 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.Version = version
	// Straight to the broker: kgo's sharding of ListOffsets is not what
	// is under test here.
	kresp, err := tb.pinned(2, version).Broker(int(tb.coord.BrokerID())).Request(testCtx(t), req)
	if err != nil {
		t.Fatalf("ListOffsets v%d: %v", version, err)
	}
	return kresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
}

func TestListOffsets(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("lo", 1, nil)
	cl := tb.client()

	if sp := listOffset(t, tb, 8, "lo", -3); sp.ErrorCode != 0 || sp.Offset != -1 || sp.Timestamp != -1 {
		t.Fatalf("max timestamp of an empty log: %+v", sp)
	}
	// Batches at offsets 0-2 (ts 1000-1002), 3-4 (ts 5000-5001, gzip),
	// 5 (ts 3000), 6-7 (ts 5001-5002, zstd).
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b", "c"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.GzipCompression(), 5000, "d", "e"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.NoCompression(), 3000, "f"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.ZstdCompression(), 5001, "g", "h"))

	for _, tc := range []struct {
		name       string
		version    int16
		ts         int64
		off, wantT int64
	}{
		{"latest", 8, -1, 8, -1},
		{"earliest", 8, -2, 0, -1},
		{"by time, first record", 8, 0, 0, 1000},
		{"by time, inside a batch", 8, 1001, 1, 1001},
		{"by time, between batches", 8, 1003, 3, 5000},
		{"by time, compressed", 8, 5001, 4, 5001},
		{"by time, later batch", 8, 5002, 7, 5002},
		{"by time, none", 8, 9999, -1, -1},
		{"max timestamp", 8, -3, 7, 5002},
		{"latest v1", 1, -1, 8, -1},
	} {
		sp := listOffset(t, tb, tc.version, "lo", tc.ts)
		if sp.ErrorCode != 0 || sp.Offset != tc.off || sp.Timestamp != tc.wantT {
			t.Errorf("%s: err %d offset %d ts %d, want %d %d", tc.name, sp.ErrorCode, sp.Offset, sp.Timestamp, tc.off, tc.wantT)
		}
	}
	// A later append with a larger timestamp moves the max (the cache
	// follows appends).
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.NoCompression(), 9000, "i"))
	if sp := listOffset(t, tb, 8, "lo", -3); sp.Offset != 8 || sp.Timestamp != 9000 {
		t.Fatalf("max timestamp after append: %+v", sp)
	}
	// v0 answers in old-style offsets.
	if sp := listOffset(t, tb, 0, "lo", -1); sp.ErrorCode != 0 || len(sp.OldStyleOffsets) != 1 || sp.OldStyleOffsets[0] != 9 {
		t.Fatalf("v0 latest: %+v", sp)
	}
	if sp := listOffset(t, tb, 8, "nope", -1); sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", sp)
	}

	// kadm agrees.
	ctx := testCtx(t)
	adm := tb.admin()
	ends, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("lo", 0); o.Offset != 9 {
		t.Fatalf("kadm end offset %d", o.Offset)
	}
}
