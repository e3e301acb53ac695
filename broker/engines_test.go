package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "github.com/strata-broker/strata/engines/lsm"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/tiered"
)

// builtinEngines are the engines Strata ships; TestEngines fails if one of
// them is not linked into the test binary, so none is skipped silently.
var builtinEngines = []string{"mem", "mmap", "pebble", "tiered"}

// TestEngines runs the broker's produce, fetch, offset, retention and
// restart cases once per registered engine, each case on a broker of its
// own whose log.engine is that engine. The cases are the broker's, not the
// engine's: what a client sees must not depend on which engine keeps the
// partition. Most topics have small segments, so every engine rolls
// segments during a case, and no local retention, so that an engine with a
// cold tier moves every sealed segment there when the case settles the
// topic; the reads after that go to the cold tier.
func TestEngines(t *testing.T) {
	names := engine.Names()
	for _, want := range builtinEngines {
		if !slices.Contains(names, want) {
			t.Errorf("engine %q is not linked into the broker tests (registered: %v)", want, names)
		}
	}
	// And mmap out of process, as a plugin.
	names = append(names, builtinPlugin)
	for i, name := range names {
		other := names[(i+1)%len(names)]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := func(t *testing.T) *testBroker {
				return startBroker(t, func(c *config.Config) {
					c.LogEngine = name
					declarePlugin(t, c)
				})
			}
			t.Run("round-trip", func(t *testing.T) { engineRoundTrip(t, start(t)) })
			t.Run("fetch", func(t *testing.T) { engineFetch(t, start(t)) })
			t.Run("list-offsets", func(t *testing.T) { engineListOffsets(t, start(t)) })
			t.Run("delete-records", func(t *testing.T) { engineDeleteRecords(t, start(t)) })
			t.Run("retention", func(t *testing.T) { engineRetention(t, start(t)) })
			t.Run("beside-"+other, func(t *testing.T) { engineBeside(t, start(t), name, other) })
			t.Run("restart", func(t *testing.T) {
				if !enginePersists(t, name) {
					t.Skipf("%s keeps nothing across a restart", name)
				}
				engineRestart(t, start(t))
			})
		})
	}
}

// enginePersists reports whether engine name keeps an appended, synced
// batch across a close and reopen of its directory.
func enginePersists(t *testing.T, name string) bool {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tp := engine.TopicPartition{Topic: "probe"}
	open := func() (engine.Engine, engine.Log) {
		c := config.Default()
		declarePlugin(t, &c)
		e, err := engine.Open(ctx, name, dir, engine.Options{Settings: c.Engine})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
		if err != nil {
			e.Close()
			t.Fatalf("open log: %v", err)
		}
		return e, l
	}
	e, l := open()
	b, m := enginetest.NewBatch(0, 1, 10, 1, 1)
	if err := l.Append(ctx, m, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, l = open()
	_, end := l.Offsets()
	l.Close()
	e.Close()
	return end == 1
}

// tierConfigs are the topic configs of a case's topics: segment.bytes
// segmentBytes, local.retention.ms and local.retention.bytes 0, and the
// pairs in more.
func tierConfigs(segmentBytes int, more ...string) map[string]*string {
	c := map[string]*string{
		"segment.bytes":         kmsg.StringPtr(strconv.Itoa(segmentBytes)),
		"local.retention.ms":    kmsg.StringPtr("0"),
		"local.retention.bytes": kmsg.StringPtr("0"),
	}
	for i := 0; i+1 < len(more); i += 2 {
		c[more[i]] = kmsg.StringPtr(more[i+1])
	}
	return c
}

// settle moves every sealed segment of topic's partitions to the cold tier
// if their engine has one, and checks that the cold tier then holds
// something; for other engines it does nothing.
func settle(t *testing.T, tb *testBroker, topic string, partitions int32) {
	t.Helper()
	ctx := testCtx(t)
	dirs := map[string]bool{}
	for part := range partitions {
		pt := tb.b.parts.Get(ctx, engine.TopicPartition{Topic: topic, Partition: part})
		if pt == nil || pt.Log() == nil {
			t.Fatalf("no log for %s-%d", topic, part)
		}
		if _, ok := pt.Log().(*tiered.Log); !ok {
			continue
		}
		if err := tiered.Settle(ctx, pt.Log()); err != nil {
			t.Fatalf("settle %s-%d: %v", topic, part, err)
		}
		dirs[pt.EngineDir()] = true
	}
	for dir := range dirs {
		if n, err := tiered.ColdBytes(dir); err != nil || n == 0 {
			t.Fatalf("cold tier empty after settling %s: %d bytes, %v", topic, n, err)
		}
	}
}

// acked is a record the broker acknowledged: where it went and its value.
type acked struct {
	partition int32
	offset    int64
	value     string
}

// produceAcked produces n records to topic through cl, spread over
// partitions, and returns the ones the broker acknowledged. It flushes
// after each fifth of them, so every partition gets several batches.
func produceAcked(t *testing.T, cl *kgo.Client, topic string, partitions int32, n int, prefix string) []acked {
	t.Helper()
	ctx := testCtx(t)
	var (
		mu  sync.Mutex
		out []acked
	)
	for i := range n {
		r := &kgo.Record{
			Topic:     topic,
			Key:       []byte(strconv.Itoa(i % 11)),
			Value:     []byte(fmt.Sprintf("%s-%d-%s", prefix, i, bytes.Repeat([]byte{'v'}, i%97))),
			Partition: int32(i) % partitions,
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", r.Value, err)
				return
			}
			mu.Lock()
			out = append(out, acked{r.Partition, r.Offset, string(r.Value)})
			mu.Unlock()
		})
		if (i+1)%max(n/5, 1) == 0 || i == n-1 {
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// checkConsumed checks that got holds every acked record exactly once, at
// its acknowledged offset, each partition in offset order from first[p].
func checkConsumed(t *testing.T, got []*kgo.Record, want []acked, first map[int32]int64) {
	t.Helper()
	byOffset := map[int32]map[int64]string{}
	for _, a := range want {
		if byOffset[a.partition] == nil {
			byOffset[a.partition] = map[int64]string{}
		}
		byOffset[a.partition][a.offset] = a.value
	}
	next := map[int32]int64{}
	for p, o := range first {
		next[p] = o
	}
	seen := map[string]bool{}
	for _, r := range got {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		if v, ok := byOffset[r.Partition][r.Offset]; ok && v != string(r.Value) {
			t.Fatalf("partition %d offset %d: value %.20q, acked %.20q", r.Partition, r.Offset, r.Value, v)
		}
		if seen[string(r.Value)] {
			t.Fatalf("value %.20q consumed twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
	for _, a := range want {
		if a.offset >= first[a.partition] && !seen[a.value] {
			t.Fatalf("acked record %d/%d (%.20q) not consumed", a.partition, a.offset, a.value)
		}
	}
}

// engineRoundTrip produces with every codec across three partitions and
// consumes everything back, before and after settling.
func engineRoundTrip(t *testing.T, tb *testBroker) {
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	} {
		topic := "rt-" + c.name
		tb.createTopic(topic, 3, tierConfigs(1024))
		p := tb.client(kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
		sent := produceAcked(t, p, topic, 3, 150, c.name)
		if len(sent) != 150 {
			t.Fatalf("%s: %d of 150 records acked", c.name, len(sent))
		}
		checkConsumed(t, consumeAll(t, tb, topic, len(sent)), sent, nil)
		settle(t, tb, topic, 3)
		checkConsumed(t, consumeAll(t, tb, topic, len(sent)), sent, nil)
	}
}

// fetchLimited fetches one partition with the given byte limits and no
// wait.
func fetchLimited(t *testing.T, tb *testBroker, cl *kgo.Client, topic string, offset int64, maxBytes, partitionMaxBytes int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = tb.coord.Snapshot().Topics[topic].ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = partitionMaxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return tb.request(cl, req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

// batchSizes returns the sizes of the whole batches in b.
func batchSizes(t *testing.T, b []byte) []int {
	t.Helper()
	var out []int
	for len(b) > 0 {
		h, err := engine.CheckBatch(b)
		if err != nil {
			t.Fatalf("batch %d: %v", len(out), err)
		}
		out = append(out, h.Size())
		b = b[h.Size():]
	}
	return out
}

// engineFetch: a long poll is woken by an append to its partition only;
// min_bytes holds an answer back until max_wait; max_bytes cuts at whole
// batches but always returns the first; offsets outside the log are out
// of range.
func engineFetch(t *testing.T, tb *testBroker) {
	tb.createTopic("f", 2, nil)
	cl := tb.client()

	// Long poll.
	type res struct {
		fp      kmsg.FetchResponseTopicPartition
		elapsed time.Duration
	}
	done := make(chan res, 1)
	started := time.Now()
	poller := tb.client()
	go func() {
		fp := fetchRaw(t, tb, poller, "f", 1, 0, 10*time.Second, 1)
		done <- res{fp, time.Since(started)}
	}()
	select {
	case r := <-done:
		t.Fatalf("long poll returned before any append: %+v", r.fp)
	case <-time.After(200 * time.Millisecond):
	}
	if sp := produceRaw(t, tb, cl, "f", 0, batchtest.Make(t, kgo.NoCompression(), 1, "other")); sp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
	}
	select {
	case r := <-done:
		t.Fatalf("long poll woken by an append to another partition: %+v", r.fp)
	case <-time.After(100 * time.Millisecond):
	}
	if sp := produceRaw(t, tb, cl, "f", 1, batchtest.Make(t, kgo.NoCompression(), 1, "wake")); sp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
	}
	select {
	case r := <-done:
		if r.fp.ErrorCode != 0 || r.fp.HighWatermark != 1 || len(batchSizes(t, r.fp.RecordBatches)) != 1 {
			t.Fatalf("woken fetch: err %d, hw %d, %d bytes", r.fp.ErrorCode, r.fp.HighWatermark, len(r.fp.RecordBatches))
		}
		if r.elapsed > 5*time.Second {
			t.Fatalf("long poll took %v: it waited out max_wait instead of waking", r.elapsed)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("long poll not woken by the append")
	}

	// min_bytes: one small batch is not enough for 1 MiB, so the answer
	// waits out max_wait and then carries what there is.
	begin := time.Now()
	if fp := fetchRaw(t, tb, cl, "f", 0, 0, 300*time.Millisecond, 1<<20); fp.ErrorCode != 0 || len(batchSizes(t, fp.RecordBatches)) != 1 {
		t.Fatalf("min_bytes unmet: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	if el := time.Since(begin); el < 250*time.Millisecond {
		t.Fatalf("min_bytes unmet but answered after %v, before max_wait", el)
	}
	begin = time.Now()
	if fp := fetchRaw(t, tb, cl, "f", 0, 0, 5*time.Second, 10); fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
		t.Fatalf("min_bytes met: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	if el := time.Since(begin); el > 3*time.Second {
		t.Fatalf("min_bytes met but answered after %v", el)
	}

	// max_bytes: three 4000-byte batches.
	tb.createTopic("big", 1, nil)
	big := string(bytes.Repeat([]byte("x"), 4000))
	for i := range 3 {
		if sp := produceRaw(t, tb, cl, "big", 0, batchtest.Make(t, kgo.NoCompression(), int64(i), big)); sp.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
		}
	}
	one := fetchLimited(t, tb, cl, "big", 0, 100, 100)
	sizes := batchSizes(t, one.RecordBatches)
	if len(sizes) != 1 {
		t.Fatalf("limits below one batch: %d batches, want the first whole", len(sizes))
	}
	if got := batchSizes(t, fetchLimited(t, tb, cl, "big", 0, 50<<20, int32(2*sizes[0]+100)).RecordBatches); len(got) != 2 {
		t.Fatalf("partition limit of two batches: %d batches", len(got))
	}
	if got := batchSizes(t, fetchLimited(t, tb, cl, "big", 0, int32(2*sizes[0]+100), 50<<20).RecordBatches); len(got) != 2 {
		t.Fatalf("response limit of two batches: %d batches", len(got))
	}
	if got := batchSizes(t, fetchLimited(t, tb, cl, "big", 1, 50<<20, 50<<20).RecordBatches); len(got) != 2 {
		t.Fatalf("from offset 1 without limits: %d batches, want 2", len(got))
	}

	// Out of range; inside a batch; at the end.
	tb.createTopic("oor", 1, nil)
	produceRaw(t, tb, cl, "oor", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a", "b"))
	if fp := fetchRaw(t, tb, cl, "oor", 0, 3, time.Second, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.HighWatermark != 2 {
		t.Fatalf("past the end: err %d hw %d", fp.ErrorCode, fp.HighWatermark)
	}
	if fp := fetchRaw(t, tb, cl, "oor", 0, -1, time.Second, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("below the start: err %d", fp.ErrorCode)
	}
	if fp := fetchRaw(t, tb, cl, "oor", 0, 1, 0, 1); fp.ErrorCode != 0 || len(batchSizes(t, fp.RecordBatches)) != 1 {
		t.Fatalf("inside a batch: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	if fp := fetchRaw(t, tb, cl, "oor", 0, 2, 0, 1); fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("at the end: err %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
}

// engineListOffsets: earliest, latest, by timestamp (inside and between
// batches, compressed batches, none) and the max timestamp, over a batch
// a segment.
func engineListOffsets(t *testing.T, tb *testBroker) {
	tb.createTopic("lo", 1, tierConfigs(engine.MinSegmentBytes)) // a segment a batch
	cl := tb.client()
	if sp := listOffset(t, tb, 8, "lo", -1); sp.ErrorCode != 0 || sp.Offset != 0 {
		t.Fatalf("latest of an empty log: %+v", sp)
	}
	// 0-2 at ts 1000-1002, 3-4 at 5000-5001 (gzip), 5 at 3000, 6-7 at
	// 5001-5002 (zstd).
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b", "c"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.GzipCompression(), 5000, "d", "e"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.NoCompression(), 3000, "f"))
	produceRaw(t, tb, cl, "lo", 0, batchtest.Make(t, kgo.ZstdCompression(), 5001, "g", "h"))
	settle(t, tb, "lo", 1)
	for _, tc := range []struct {
		name     string
		ts       int64
		off, wTS int64
	}{
		{"latest", -1, 8, -1},
		{"earliest", -2, 0, -1},
		{"by time, first record", 0, 0, 1000},
		{"by time, inside a batch", 1001, 1, 1001},
		{"by time, between batches", 1003, 3, 5000},
		{"by time, compressed", 5001, 4, 5001},
		{"by time, later batch", 5002, 7, 5002},
		{"by time, none", 9999, -1, -1},
		{"max timestamp", -3, 7, 5002},
	} {
		sp := listOffset(t, tb, 8, "lo", tc.ts)
		if sp.ErrorCode != 0 || sp.Offset != tc.off || sp.Timestamp != tc.wTS {
			t.Errorf("%s: err %d offset %d ts %d, want offset %d ts %d", tc.name, sp.ErrorCode, sp.Offset, sp.Timestamp, tc.off, tc.wTS)
		}
	}
}

// deleteRecords deletes the records of topic's partition p below at.
func deleteRecords(t *testing.T, tb *testBroker, topic string, p int32, at int64) kadm.DeleteRecordsResponse {
	t.Helper()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
	rs, err := tb.admin().DeleteRecords(testCtx(t), offs)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	r, ok := rs.Lookup(topic, p)
	if !ok {
		t.Fatalf("no answer for %s-%d", topic, p)
	}
	return r
}

// engineDeleteRecords: DeleteRecords raises the start offset (inside a
// batch too), fetch and ListOffsets follow it, and deleting everything
// leaves a log that appends at the high watermark.
func engineDeleteRecords(t *testing.T, tb *testBroker) {
	tb.createTopic("dr", 1, tierConfigs(200)) // two batches a segment
	cl := tb.client()
	for i := range 5 {
		produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), int64(1000*i), "a", "b"))
	}
	settle(t, tb, "dr", 1)
	if r := deleteRecords(t, tb, "dr", 0, 3); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("delete to 3: %+v", r)
	}
	if start, end := tb.logOffsets("dr", 0); start != 3 || end != 10 {
		t.Fatalf("log [%d, %d), want [3, 10)", start, end)
	}
	if fp := fetchRaw(t, tb, cl, "dr", 0, 2, 0, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 3 {
		t.Fatalf("fetch below the start: %v, log start %d", kerr.ErrorForCode(fp.ErrorCode), fp.LogStartOffset)
	}
	if sp := listOffset(t, tb, 8, "dr", -2); sp.Offset != 3 {
		t.Fatalf("earliest %d, want 3", sp.Offset)
	}
	if sp := listOffset(t, tb, 8, "dr", 0); sp.Offset != 3 {
		t.Fatalf("by time below the start: %d, want 3", sp.Offset)
	}
	recs := consumeAll(t, tb, "dr", 7)
	if recs[0].Offset != 3 {
		t.Fatalf("first record consumed at %d, want 3", recs[0].Offset)
	}
	if r := deleteRecords(t, tb, "dr", 0, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete to the high watermark: %+v", r)
	}
	if sp := produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), 1, "after")); sp.ErrorCode != 0 || sp.BaseOffset != 10 {
		t.Fatalf("produce after deleting everything: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
}

// engineRetention: a retention pass removes the batches older than
// retention.ms and nothing newer.
func engineRetention(t *testing.T, tb *testBroker) {
	tb.createTopic("rt", 1, tierConfigs(engine.MinSegmentBytes, "retention.ms", "60000")) // a segment a batch
	cl := tb.client()
	produceRaw(t, tb, cl, "rt", 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b")) // 0-1, max ts 1001
	produceRaw(t, tb, cl, "rt", 0, batchtest.Make(t, kgo.NoCompression(), 5000, "c"))      // 2
	produceRaw(t, tb, cl, "rt", 0, batchtest.Make(t, kgo.NoCompression(), 100000, "d"))    // 3
	settle(t, tb, "rt", 1)
	ctx := testCtx(t)
	tb.b.parts.EnforceRetention(ctx, time.UnixMilli(61001))
	if start, _ := tb.logOffsets("rt", 0); start != 0 {
		t.Fatalf("start %d at cutoff 1001, want 0", start)
	}
	tb.b.parts.EnforceRetention(ctx, time.UnixMilli(62000))
	if start, _ := tb.logOffsets("rt", 0); start != 2 {
		t.Fatalf("start %d at cutoff 2000, want 2", start)
	}
	if fp := fetchRaw(t, tb, cl, "rt", 0, 1, 0, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the start: %v", kerr.ErrorForCode(fp.ErrorCode))
	}
	tb.b.parts.EnforceRetention(ctx, time.UnixMilli(1_000_000))
	if start, end := tb.logOffsets("rt", 0); start != 4 || end != 4 {
		t.Fatalf("log [%d, %d) after everything expired, want [4, 4)", start, end)
	}
}

// engineBeside runs a topic kept by the broker's engine and one kept by
// other (strata.engine) in one broker, produced to and consumed from
// together.
func engineBeside(t *testing.T, tb *testBroker, name, other string) {
	tb.createTopic("own", 2, tierConfigs(512))
	tb.createTopic("theirs", 2, tierConfigs(512, "strata.engine", other))
	p := tb.client(kgo.ProducerLinger(2 * time.Millisecond))
	var wg sync.WaitGroup
	sent := map[string][]acked{}
	var mu sync.Mutex
	for _, topic := range []string{"own", "theirs"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := produceAcked(t, p, topic, 2, 100, topic)
			mu.Lock()
			sent[topic] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	settle(t, tb, "own", 2)
	settle(t, tb, "theirs", 2)
	for topic, keeper := range map[string]string{"own": name, "theirs": other} {
		if len(sent[topic]) != 100 {
			t.Fatalf("%s: %d of 100 records acked", topic, len(sent[topic]))
		}
		checkConsumed(t, consumeAll(t, tb, topic, 100), sent[topic], nil)
		for part := range int32(2) {
			pt := tb.b.parts.Get(testCtx(t), engine.TopicPartition{Topic: topic, Partition: part})
			if pt == nil || pt.EngineName() != keeper {
				t.Fatalf("%s-%d is not kept by %s", topic, part, keeper)
			}
		}
	}
}

// engineRestart: after a stop and start on the same dirs every acked
// record is there once and in order, appends continue at the end, and a
// start offset raised by DeleteRecords stays raised.
func engineRestart(t *testing.T, tb *testBroker) {
	tb.createTopic("durable", 3, tierConfigs(512))
	p := tb.client(kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()), kgo.ProducerLinger(2*time.Millisecond))
	sent := produceAcked(t, p, "durable", 3, 300, "before")
	p.Close()
	settle(t, tb, "durable", 3)
	if r := deleteRecords(t, tb, "durable", 2, 5); r.Err != nil || r.LowWatermark != 5 {
		t.Fatalf("delete to 5: %+v", r)
	}
	ends := map[int32]int64{}
	for _, a := range sent {
		ends[a.partition] = max(ends[a.partition], a.offset+1)
	}

	tb.restart()
	for part, end := range ends {
		start, got := tb.logOffsets("durable", part)
		if want := map[int32]int64{2: 5}[part]; start != want || got != end {
			t.Fatalf("partition %d after restart: [%d, %d), want [%d, %d)", part, start, got, want, end)
		}
	}
	checkConsumed(t, consumeAll(t, tb, "durable", len(sent)-5), sent, map[int32]int64{2: 5})

	p = tb.client()
	more := produceAcked(t, p, "durable", 3, 30, "after")
	for _, a := range more {
		if a.offset < ends[a.partition] {
			t.Fatalf("record appended after the restart at %d/%d, below the end %d", a.partition, a.offset, ends[a.partition])
		}
	}
	settle(t, tb, "durable", 3)
	checkConsumed(t, consumeAll(t, tb, "durable", len(sent)-5+len(more)), append(sent, more...), map[int32]int64{2: 5})
}

// TestTopicEngineOverride: strata.engine picks the engine per topic, with
// its state under <log dir>/<engine>.
func TestTopicEngineOverride(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("in-mem", 1, map[string]*string{"strata.engine": kmsg.StringPtr("mem")})
	tb.createTopic("on-disk", 1, nil)
	cl := tb.client()
	for _, topic := range []string{"in-mem", "on-disk"} {
		if sp := produceRaw(t, tb, cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 1, "v")); sp.ErrorCode != 0 {
			t.Fatalf("%s: %v", topic, kerr.ErrorForCode(sp.ErrorCode))
		}
		consumeAll(t, tb, topic, 1)
	}
	if p := tb.b.parts.Get(testCtx(t), engineTP("in-mem")); p.EngineName() != "mem" {
		t.Fatalf("in-mem is kept by %q", p.EngineName())
	}
	if _, err := os.Stat(filepath.Join(tb.cfg.LogDirs[0], "mmap", "in-mem-0")); !os.IsNotExist(err) {
		t.Fatalf("in-mem has an mmap directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tb.cfg.LogDirs[0], "mmap", "on-disk-0")); err != nil {
		t.Fatalf("on-disk: %v", err)
	}
}

func engineTP(topic string) engine.TopicPartition { return engine.TopicPartition{Topic: topic} }
