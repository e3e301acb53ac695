package broker

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/engine"
)

func produceRaw(t *testing.T, tb *testBroker, cl *kgo.Client, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

func fetchRaw(t *testing.T, tb *testBroker, cl *kgo.Client, topic string, partition int32, offset int64, maxWait time.Duration, minBytes int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes = minBytes
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	if t := tb.coord.Snapshot().Topics[topic]; t != nil {
		rt.TopicID = t.ID
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 10 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: top-level error %d", resp.ErrorCode)
	}
	return resp.Topics[0].Partitions[0]
}

// TestCompressedBatchesPassThrough produces hand-built compressed batches
// and fetches them back: the bytes are those sent, but for the base offset
// and partition leader epoch the broker assigned.
func TestCompressedBatchesPassThrough(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("pass", 1, nil)
	cl := tb.client()
	var sent [][]byte
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		b := batchtest.Make(t, codec, 1000, "one", "two", "three", "four")
		sent = append(sent, append([]byte(nil), b...))
		sp := produceRaw(t, tb, cl, "pass", 0, b)
		if sp.ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(sp.ErrorCode))
		}
		if want := int64(4 * (len(sent) - 1)); sp.BaseOffset != want {
			t.Fatalf("base offset %d, want %d", sp.BaseOffset, want)
		}
	}
	fp := fetchRaw(t, tb, cl, "pass", 0, 0, 0, 1)
	if fp.ErrorCode != 0 || fp.HighWatermark != 20 || fp.LastStableOffset != 20 || fp.LogStartOffset != 0 {
		t.Fatalf("fetch: err %d hw %d lso %d start %d", fp.ErrorCode, fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset)
	}
	got := fp.RecordBatches
	for i, want := range sent {
		h, err := engine.CheckBatch(got)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		b := got[:h.Size()]
		if h.BaseOffset != int64(4*i) {
			t.Fatalf("batch %d: base offset %d", i, h.BaseOffset)
		}
		binary.BigEndian.PutUint64(want[0:], uint64(h.BaseOffset))
		binary.BigEndian.PutUint32(want[12:], uint32(h.PartitionLeaderEpoch))
		if !bytes.Equal(b, want) {
			t.Fatalf("batch %d (codec %d) differs from what was produced", i, h.Attributes&7)
		}
		got = got[h.Size():]
	}
	if len(got) != 0 {
		t.Fatalf("%d bytes after the last batch", len(got))
	}
	// And a real consumer decodes them all.
	recs := consumeAll(t, tb, "pass", 20)
	if string(recs[19].Value) != "four" {
		t.Fatalf("last value %q", recs[19].Value)
	}
}

func TestFetchLongPollWokenByProduce(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("poll", 2, nil)
	cl := tb.client()
	type res struct {
		fp      kmsg.FetchResponseTopicPartition
		elapsed time.Duration
	}
	done := make(chan res, 1)
	started := time.Now()
	go func() {
		fp := fetchRaw(t, tb, tb.client(), "poll", 1, 0, 10*time.Second, 1)
		done <- res{fp, time.Since(started)}
	}()
	// The fetch must be parked: nothing arrives while it waits.
	select {
	case r := <-done:
		t.Fatalf("fetch returned before any produce: %+v", r.fp)
	case <-time.After(200 * time.Millisecond):
	}
	// A produce to the other partition does not satisfy it...
	if sp := produceRaw(t, tb, cl, "poll", 0, batchtest.Make(t, kgo.NoCompression(), 1, "other")); sp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
	}
	// ...one to its partition does, at once.
	if sp := produceRaw(t, tb, cl, "poll", 1, batchtest.Make(t, kgo.NoCompression(), 1, "wake")); sp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
	}
	select {
	case r := <-done:
		if r.fp.ErrorCode != 0 || len(r.fp.RecordBatches) == 0 || r.fp.HighWatermark != 1 {
			t.Fatalf("woken fetch: err %d, %d bytes, hw %d", r.fp.ErrorCode, len(r.fp.RecordBatches), r.fp.HighWatermark)
		}
		if r.elapsed > 5*time.Second {
			t.Fatalf("fetch took %v: it waited out max_wait instead of waking", r.elapsed)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("fetch not woken by the produce")
	}
}

func TestFetchMaxWaitExpires(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("idle", 1, nil)
	start := time.Now()
	fp := fetchRaw(t, tb, tb.client(), "idle", 0, 0, 300*time.Millisecond, 1)
	if fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("answered after %v, before max_wait", el)
	}
}

func TestFetchOutOfRange(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("oor", 1, nil)
	cl := tb.client()
	produceRaw(t, tb, cl, "oor", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a", "b"))
	if fp := fetchRaw(t, tb, cl, "oor", 0, 3, time.Second, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.HighWatermark != 2 {
		t.Fatalf("past the end: err %d hw %d", fp.ErrorCode, fp.HighWatermark)
	}
	if fp := fetchRaw(t, tb, cl, "oor", 0, -1, time.Second, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("below the start: err %d", fp.ErrorCode)
	}
	// Inside a batch: the whole batch comes back.
	if fp := fetchRaw(t, tb, cl, "oor", 0, 1, 0, 1); fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
		t.Fatalf("inside a batch: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	// At the end: empty, no error.
	if fp := fetchRaw(t, tb, cl, "oor", 0, 2, 0, 1); fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("at the end: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
}

func TestFetchUnknownTopicID(t *testing.T) {
	tb := startBroker(t)
	cl := tb.pinned(1, 13)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = [16]byte{1, 2, 3}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.FetchResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicID.Code {
		t.Fatalf("error %d, want UNKNOWN_TOPIC_ID", code)
	}
}

// TestFetchMaxBytes: the first batch comes back even if it is larger than
// the limits (KIP-74), and nothing more.
func TestFetchMaxBytes(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("big", 1, nil)
	cl := tb.client()
	big := string(bytes.Repeat([]byte("x"), 4000))
	for range 3 {
		produceRaw(t, tb, cl, "big", 0, batchtest.Make(t, kgo.NoCompression(), 1, big))
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 100
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "big"
	rt.TopicID = tb.coord.Snapshot().Topics["big"].ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 100
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.FetchResponse)
	fp := resp.Topics[0].Partitions[0]
	h, err := engine.CheckBatch(fp.RecordBatches)
	if err != nil || h.Size() != len(fp.RecordBatches) {
		t.Fatalf("want exactly one whole batch: %v, batch %d of %d bytes", err, h.Size(), len(fp.RecordBatches))
	}
}

func TestConsumerSurvivesTopicCreateDuringWait(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("late", 1, nil)
	cl := tb.client(kgo.ConsumeTopics("late"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	p := tb.client(kgo.DefaultProduceTopic("late"))
	ctx := testCtx(t)
	got := make(chan *kgo.Record, 1)
	go func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if recs := fs.Records(); len(recs) > 0 {
				got <- recs[0]
				return
			}
		}
	}()
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if string(r.Value) != "hello" {
			t.Fatalf("got %q", r.Value)
		}
	case <-ctx.Done():
		t.Fatal("consumer got nothing")
	}
}
