package group_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/group/grouptest"
	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

// openStore opens the store over in-memory logs of a __consumer_offsets
// of n partitions, which this broker leads.
func openStore(t *testing.T, n int32) (*grouptest.Logs, group.Store) {
	t.Helper()
	cfg := config.Default()
	cfg.OffsetsTopicNumPartitions = n
	logs := grouptest.NewLogs(n)
	s, err := group.OpenStore(context.Background(), group.StoreOptions{Config: cfg, Coordinator: grouptest.NewMetadata(n), Logs: logs})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return logs, s
}

// testBatch builds a batch of raw key/value records with the given
// attributes, compressing its records if the attributes name a codec.
func testBatch(t *testing.T, attrs int16, kvs ...[2][]byte) []byte {
	t.Helper()
	var payload []byte
	for i, kv := range kvs {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: kv[0], Value: kv[1]}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		payload = rec.AppendTo(payload)
	}
	if attrs&engine.AttrCompressionMask == 1 {
		c, err := kgo.DefaultCompressor(kgo.GzipCompression())
		if err != nil {
			t.Fatal(err)
		}
		out, codec := c.Compress(new(bytes.Buffer), payload)
		if codec != 1 {
			t.Fatalf("compressed with codec %d", codec)
		}
		payload = bytes.Clone(out)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{Length: int32(49 + len(payload)), PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(len(kvs) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(kvs)), Records: payload}
	b := rb.AppendTo(nil)
	engine.PutChecksum(b)
	return b
}

func TestOffsetsTopicLoadSkipsAndFails(t *testing.T) {
	ctx := context.Background()
	logs, s := openStore(t, 2)

	o1, o2 := grouptest.SampleOffset("g", "t", 0, 1), grouptest.SampleOffset("g", "t", 1, 2)
	k1, v1, _ := group.EncodeRecord(group.Record{Offset: &o1})
	k2, v2, _ := group.EncodeRecord(group.Record{Offset: &o2})
	unknown := [2][]byte{{0, 3, 0, 1, 'g'}, {0, 0, 1, 2, 3}} // a KIP-848 record
	// A control record: key version 0, type 0 (abort).
	control := [2][]byte{{0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}}
	for _, b := range [][]byte{
		testBatch(t, 0, [2][]byte{k1, v1}, unknown),
		testBatch(t, engine.AttrControl|engine.AttrTransactional, control),
		testBatch(t, engine.AttrTransactional, [2][]byte{k2, v2}),
		testBatch(t, 1, unknown, [2][]byte{k2, v2}), // gzip
	} {
		if err := logs.Append(ctx, 0, b); err != nil {
			t.Fatal(err)
		}
	}
	var l grouptest.Loader
	if err := s.Load(ctx, 0, &l); err != nil {
		t.Fatal(err)
	}
	want := []group.Record{{Offset: &o1}, {Offset: &o2}}
	if !reflect.DeepEqual(l.Records, want) {
		t.Fatalf("loaded %d records, want o1 then o2:", len(l.Records))
	}

	// A record that does not decode fails the load, naming where.
	if err := logs.Append(ctx, 1, testBatch(t, 0, [2][]byte{k1, v1})); err != nil {
		t.Fatal(err)
	}
	if err := logs.Append(ctx, 1, testBatch(t, 0, [2][]byte{k1, v1}, [2][]byte{k2, v2[:7]})); err != nil {
		t.Fatal(err)
	}
	l = grouptest.Loader{}
	err := s.Load(ctx, 1, &l)
	if err == nil || !strings.Contains(err.Error(), group.TopicName+"-1") || !strings.Contains(err.Error(), "offset 2") {
		t.Fatalf("Load of a corrupt record: %v; want an error naming %s-1 and offset 2", err, group.TopicName)
	}

	// Partitions out of range, and a cancelled load.
	if err := s.Load(ctx, 2, &l); kafkaerr.Code(err) != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("Load(2): %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Load(cctx, 0, &l); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Load: %v", err)
	}
}
