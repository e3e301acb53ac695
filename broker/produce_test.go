package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

// consumeAll reads want records of topic from the start.
func consumeAll(t *testing.T, tb *testBroker, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := tb.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != want {
		t.Fatalf("consumed %d records, want %d", len(out), want)
	}
	return out
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	tb := startBroker(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for _, acks := range []struct {
		name string
		acks kgo.Acks
	}{{"acks0", kgo.NoAck()}, {"acks1", kgo.LeaderAck()}, {"acksall", kgo.AllISRAcks()}} {
		for cname, codec := range codecs {
			t.Run(acks.name+"/"+cname, func(t *testing.T) {
				topic := "rt-" + acks.name + "-" + cname
				tb.createTopic(topic, 3, nil)
				opts := []kgo.Opt{kgo.RequiredAcks(acks.acks), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic)}
				if acks.acks != kgo.AllISRAcks() {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				p := tb.client(opts...)
				const n = 300
				ctx := testCtx(t)
				for i := range n {
					r := &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("value-%d", i)), Partition: int32(i % 3)}
					p.Produce(ctx, r, func(r *kgo.Record, err error) {
						if err != nil {
							t.Errorf("produce: %v", err)
						}
					})
				}
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				got := consumeAll(t, tb, topic, n)
				seen := map[string]bool{}
				next := map[int32]int64{}
				for _, r := range got {
					if r.Offset != next[r.Partition] {
						t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
					}
					next[r.Partition]++
					seen[string(r.Value)] = true
				}
				if len(seen) != n {
					t.Fatalf("%d distinct values, want %d", len(seen), n)
				}
			})
		}
	}
}

func TestProduceUnknownTopic(t *testing.T) {
	tb := startBroker(t)
	cl := tb.pinned(0, 9)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "nope"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batchtest.Make(t, kgo.NoCompression(), time.Now().UnixMilli(), "x")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("error %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
	}
}

// TestProduceOldVersions: Produce v0–v2 are served for magic-2 batches
// (librdkafka before 2.11.1 looks for Produce v0 before it compresses with
// gzip or snappy); older message formats are refused, not converted.
func TestProduceOldVersions(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("old", 1, nil)
	cl := tb.client(kgo.MaxVersions(kversion.V0_10_0())) // Produce v2
	if sp := produceRaw(t, tb, cl, "old", 0, batchtest.Make(t, kgo.GzipCompression(), 1, "a", "b")); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("magic 2 over produce v2: error %v, base %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
	// A magic-1 message set: offset, size, crc, magic 1, attributes,
	// timestamp, null key, one-byte value.
	v1 := binary.BigEndian.AppendUint64(nil, 0)
	v1 = binary.BigEndian.AppendUint32(v1, 4+1+1+8+4+4+1)
	v1 = binary.BigEndian.AppendUint32(v1, 0) // crc: never looked at
	v1 = append(v1, 1, 0)
	v1 = binary.BigEndian.AppendUint64(v1, 1)
	v1 = binary.BigEndian.AppendUint32(v1, 0xffffffff)
	v1 = binary.BigEndian.AppendUint32(v1, 1)
	v1 = append(v1, 'x')
	if sp := produceRaw(t, tb, cl, "old", 0, v1); sp.ErrorCode != kerr.UnsupportedForMessageFormat.Code {
		t.Fatalf("magic 1: error %v, want UNSUPPORTED_FOR_MESSAGE_FORMAT", kerr.ErrorForCode(sp.ErrorCode))
	}
	if start, end := tb.logOffsets("old", 0); start != 0 || end != 2 {
		t.Fatalf("log [%d, %d), want [0, 2)", start, end)
	}
}

// TestProduceLargeRequestParallel sends requests large enough for their
// partitions to be appended in parallel: each partition gets its batches
// at the right offsets, the response keeps the request's order (an
// unknown partition in the middle answers in its place), and a partition
// named twice in one request gets its batches in the request's order.
func TestProduceLargeRequestParallel(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("par", 6, nil)
	value := string(make([]byte, 60<<10))
	batch := batchtest.Make(t, kgo.NoCompression(), time.Now().UnixMilli(), value)

	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "par"
	for _, p := range []int32{5, 0, 4, 9, 1, 3, 2} { // 9 does not exist
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	cl := tb.client()
	for round := int64(0); round < 3; round++ {
		resp := tb.request(cl, req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(rt.Partitions) {
			t.Fatalf("round %d: %+v", round, resp.Topics)
		}
		for k, sp := range resp.Topics[0].Partitions {
			want := rt.Partitions[k].Partition
			switch {
			case sp.Partition != want:
				t.Fatalf("round %d: answer %d is for partition %d, want %d", round, k, sp.Partition, want)
			case want == 9 && sp.ErrorCode != kerr.UnknownTopicOrPartition.Code:
				t.Fatalf("round %d: partition 9: %v", round, kerr.ErrorForCode(sp.ErrorCode))
			case want != 9 && (sp.ErrorCode != 0 || sp.BaseOffset != round):
				t.Fatalf("round %d: partition %d: base %d, %v", round, want, sp.BaseOffset, kerr.ErrorForCode(sp.ErrorCode))
			}
		}
	}

	// Partition 0 twice, then 1: the two batches for 0 land in order.
	twice := kmsg.NewPtrProduceRequest()
	twice.Acks = -1
	twice.TimeoutMillis = 10000
	tt := kmsg.NewProduceRequestTopic()
	tt.Topic = "par"
	for _, p := range []int32{0, 0, 1, 0} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch
		tt.Partitions = append(tt.Partitions, rp)
	}
	twice.Topics = append(twice.Topics, tt)
	resp := tb.request(cl, twice).(*kmsg.ProduceResponse)
	var bases []int64
	for _, sp := range resp.Topics[0].Partitions {
		if sp.ErrorCode != 0 {
			t.Fatalf("partition %d: %v", sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
		}
		bases = append(bases, sp.BaseOffset)
	}
	if fmt.Sprint(bases) != "[3 4 3 5]" {
		t.Fatalf("base offsets %v, want [3 4 3 5]", bases)
	}
}

func TestLogAppendTime(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("lat", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	cl := tb.client()
	before := time.Now().UnixMilli()
	sp := produceRaw(t, tb, cl, "lat", 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b"))
	after := time.Now().UnixMilli()
	if sp.ErrorCode != 0 || sp.LogAppendTime < before || sp.LogAppendTime > after {
		t.Fatalf("produce: err %d, log append time %d not in [%d, %d]", sp.ErrorCode, sp.LogAppendTime, before, after)
	}
	recs := consumeAll(t, tb, "lat", 2)
	for _, r := range recs {
		if r.Timestamp.UnixMilli() != sp.LogAppendTime || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record timestamp %d type %d, want %d type 1", r.Timestamp.UnixMilli(), r.Attrs.TimestampType(), sp.LogAppendTime)
		}
	}
	// A CreateTime topic keeps the producer's timestamps.
	tb.createTopic("ct", 1, nil)
	produceRaw(t, tb, cl, "ct", 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b"))
	recs = consumeAll(t, tb, "ct", 2)
	if recs[0].Timestamp.UnixMilli() != 1000 || recs[1].Timestamp.UnixMilli() != 1001 {
		t.Fatalf("create time timestamps %v %v", recs[0].Timestamp, recs[1].Timestamp)
	}
}

func TestProduceCorruptAndTooLarge(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("bad", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("2000")})
	cl := tb.client()
	produceRaw(t, tb, cl, "bad", 0, batchtest.Make(t, kgo.NoCompression(), 1, "ok"))

	b := batchtest.Make(t, kgo.NoCompression(), 1, "flipped")
	b[18] ^= 0x01 // a CRC byte
	if sp := produceRaw(t, tb, cl, "bad", 0, b); sp.ErrorCode != kerr.CorruptMessage.Code || sp.ErrorMessage == nil {
		t.Fatalf("bad crc: error %d", sp.ErrorCode)
	}
	big := batchtest.Make(t, kgo.NoCompression(), 1, string(make([]byte, 3000)))
	if sp := produceRaw(t, tb, cl, "bad", 0, big); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("too large: error %d", sp.ErrorCode)
	}
	if start, end := tb.logOffsets("bad", 0); start != 0 || end != 1 {
		t.Fatalf("log changed by rejected batches: [%d, %d)", start, end)
	}
	if sp := produceRaw(t, tb, cl, "bad", 0, batchtest.Make(t, kgo.NoCompression(), 1, "after")); sp.ErrorCode != 0 || sp.BaseOffset != 1 {
		t.Fatalf("after: error %d, base %d", sp.ErrorCode, sp.BaseOffset)
	}
}

// The one "partition I lead" lookup of the data path, and the mapping of
// its answer to a Kafka code, allocate nothing, for a partition led here
// and for the errors clients are answered with.
func TestLeaderLookupAllocatesNothing(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("led", 1, nil)
	ctx := testCtx(t)
	for _, c := range []struct {
		tp      engine.TopicPartition
		current int32
		code    int16
	}{
		{engine.TopicPartition{Topic: "led"}, -1, 0},
		{engine.TopicPartition{Topic: "led"}, 0, 0},
		{engine.TopicPartition{Topic: "led"}, 7, kerr.UnknownLeaderEpoch.Code},
		{engine.TopicPartition{Topic: "led", Partition: 3}, -1, kerr.UnknownTopicOrPartition.Code},
	} {
		var code int16
		allocs := testing.AllocsPerRun(100, func() {
			_, _, err := tb.b.parts.Leader(ctx, c.tp, c.current)
			code = kafkaerr.Code(err)
		})
		if code != c.code || allocs != 0 {
			t.Errorf("Leader(%s, epoch %d): code %d, %v allocations; want code %d and none", c.tp, c.current, code, allocs, c.code)
		}
	}
}
