package broker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/group/grouptest"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

func withOffsetsPartitions(n int32) func(*config.Config) {
	return func(c *config.Config) { c.OffsetsTopicNumPartitions = n }
}

// openStore opens a group store over the broker's partitions, beside the
// coordinator's.
func openStore(t *testing.T, tb *testBroker) group.Store {
	t.Helper()
	s, err := group.OpenStore(testCtx(t), group.StoreOptions{Config: tb.b.cfg, Coordinator: tb.b.coord, Logs: offsetsLogs{tb.b}, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func loadAll(t *testing.T, s group.Store) map[int32][]group.Record {
	t.Helper()
	out := map[int32][]group.Record{}
	for p := range s.Partitions() {
		var l grouptest.Loader
		if err := s.Load(testCtx(t), p, &l); err != nil {
			t.Fatalf("Load(%d): %v", p, err)
		}
		out[p] = l.Records
	}
	return out
}

func TestOffsetsTopicWriteLoadRestart(t *testing.T) {
	tb := startBroker(t, withOffsetsPartitions(3))
	s := openStore(t, tb)
	if s.Partitions() != 3 {
		t.Fatalf("Partitions() = %d, want 3", s.Partitions())
	}
	ctx := testCtx(t)

	want := map[int32][]group.Record{}
	write := func(id string, recs ...group.Record) {
		t.Helper()
		if err := s.Write(ctx, id, recs); err != nil {
			t.Fatalf("Write(%s): %v", id, err)
		}
		p := group.PartitionFor(id, 3)
		for _, r := range recs { // copies: the caller reuses its records
			if r.Offset != nil {
				c := *r.Offset
				r.Offset = &c
			}
			if r.Group != nil {
				c := *r.Group
				r.Group = &c
			}
			want[p] = append(want[p], r)
		}
	}
	for _, id := range []string{"alpha", "beta", "gamma", "delta"} {
		g := grouptest.SampleGroup(id, 1)
		o1, o2 := grouptest.SampleOffset(id, "orders", 0, 10), grouptest.SampleOffset(id, "orders", 1, 20)
		write(id, group.Record{Group: &g})
		write(id, group.Record{Offset: &o1}, group.Record{Offset: &o2})
		o1.Offset, o1.ExpireTimestamp, o1.LeaderEpoch = 11, 1900000000000, -1
		write(id, group.Record{Offset: &o1})
	}
	gone := group.OffsetRecord{Group: "beta", Topic: "orders", Partition: 1, Delete: true, LeaderEpoch: -1, ExpireTimestamp: -1}
	write("beta", group.Record{Offset: &gone})
	dead := group.GroupRecord{Group: "gamma", Delete: true}
	write("gamma", group.Record{Group: &dead})
	if err := s.Write(ctx, "alpha", nil); err != nil {
		t.Fatalf("empty Write: %v", err)
	}

	check := func(s group.Store) {
		t.Helper()
		got := loadAll(t, s)
		for p := range int32(3) {
			if len(got[p]) != len(want[p]) {
				t.Fatalf("partition %d: loaded %d records, want %d", p, len(got[p]), len(want[p]))
			}
			for i := range want[p] {
				if !reflect.DeepEqual(got[p][i], want[p][i]) {
					t.Fatalf("partition %d record %d:\n got %+v %+v\nwant %+v %+v", p, i, got[p][i].Offset, got[p][i].Group, want[p][i].Offset, want[p][i].Group)
				}
			}
		}
	}
	check(s)

	// Each Write is one batch.
	batches := 0
	for p := range int32(3) {
		start, end := tb.logOffsets(offsetsTopicName, p)
		if start != 0 {
			t.Fatalf("partition %d starts at %d", p, start)
		}
		batches += countBatches(t, tb, p, end)
	}
	if batches != 14 {
		t.Errorf("%d batches in the topic, want 14 (one per Write)", batches)
	}

	// A restart keeps it all; the existing topic's partition count wins
	// over a changed config.
	tb.cfg.OffsetsTopicNumPartitions = 5
	tb.restart()
	s = openStore(t, tb)
	if s.Partitions() != 3 {
		t.Fatalf("after restart Partitions() = %d, want the existing 3", s.Partitions())
	}
	check(s)
	// A round trip through the restarted broker: the topic is still
	// internal (and Serve is running before the test stops the broker).
	md, err := tb.admin().Metadata(ctx, offsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics[offsetsTopicName]; !td.IsInternal || len(td.Partitions) != 3 {
		t.Errorf("after restart: internal %v, %d partitions", td.IsInternal, len(td.Partitions))
	}
}

// countBatches counts the batches of __consumer_offsets partition p below
// end.
func countBatches(t *testing.T, tb *testBroker, p int32, end int64) int {
	t.Helper()
	part := tb.b.parts.Get(context.Background(), engine.TopicPartition{Topic: offsetsTopicName, Partition: p})
	n := 0
	for pos := int64(0); pos < end; {
		recs, err := part.Log().Read(context.Background(), pos, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range recs.Chunks {
			for len(c) > 0 {
				h, err := engine.CheckBatch(c)
				if err != nil {
					t.Fatal(err)
				}
				if h.ProducerID != -1 || h.Attributes != 0 || h.RecordCount != h.LastOffsetDelta+1 {
					t.Errorf("batch at %d: producer id %d, attributes %#x, %d records, last offset delta %d",
						h.BaseOffset, h.ProducerID, h.Attributes, h.RecordCount, h.LastOffsetDelta)
				}
				c = c[h.Size():]
				n++
			}
		}
		pos = recs.NextOffset
		recs.Release()
	}
	return n
}

func TestOffsetsTopicInternal(t *testing.T) {
	tb := startBroker(t, withOffsetsPartitions(4))
	s := openStore(t, tb)
	ctx := testCtx(t)
	adm := tb.admin()

	md, err := adm.Metadata(ctx, offsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics[offsetsTopicName]
	if td.Err != nil || !td.IsInternal || len(td.Partitions) != 4 {
		t.Fatalf("metadata: err %v, internal %v, %d partitions; want internal with 4", td.Err, td.IsInternal, len(td.Partitions))
	}
	// Listing every topic shows it too, as internal.
	all, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !all.Topics[offsetsTopicName].IsInternal {
		t.Errorf("metadata of all topics: %s not internal", offsetsTopicName)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, offsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(offsetsTopicName, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantConfigs := map[string]string{"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "104857600"}
	for _, c := range rc.Configs {
		if w, ok := wantConfigs[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("config %s = %q, want %q", c.Key, c.MaybeValue(), w)
			}
			delete(wantConfigs, c.Key)
		}
	}
	if len(wantConfigs) > 0 {
		t.Errorf("configs missing: %v", wantConfigs)
	}

	o := grouptest.SampleOffset("readers", "orders", 0, 5)
	if err := s.Write(ctx, "readers", []group.Record{{Offset: &o}, {Offset: &o}}); err != nil {
		t.Fatal(err)
	}
	p := group.PartitionFor("readers", 4)
	_, end := tb.logOffsets(offsetsTopicName, p)

	// A client may not produce to it.
	batch, err := group.EncodeBatch([]group.Record{{Offset: &o}}, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = offsetsTopicName
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(tb.client(), req).(*kmsg.ProduceResponse)
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.InvalidTopicException.Code || sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "Cannot append to internal topic") {
		t.Errorf("raw produce: code %d message %v, want INVALID_TOPIC_EXCEPTION", sp.ErrorCode, sp.ErrorMessage)
	}
	prod := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite())
	err = prod.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopicName, Partition: p, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("franz-go produce: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	if _, after := tb.logOffsets(offsetsTopicName, p); after != end {
		t.Errorf("log end %d after refused produces, want %d", after, end)
	}

	// Nor delete it.
	dr, err := adm.DeleteTopics(ctx, offsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	if err := dr[offsetsTopicName].Err; !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("DeleteTopics: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	if tb.coord.Snapshot().Topics[offsetsTopicName] == nil {
		t.Fatal("the offsets topic is gone")
	}

	// Nor delete its records.
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{offsetsTopicName: {p: {Topic: offsetsTopicName, Partition: p, At: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := del.Lookup(offsetsTopicName, p); !errors.Is(d.Err, kerr.InvalidTopicException) {
		t.Errorf("DeleteRecords: %v, want INVALID_TOPIC_EXCEPTION", d.Err)
	}
	if start, _ := tb.logOffsets(offsetsTopicName, p); start != 0 {
		t.Errorf("log start %d after a refused DeleteRecords", start)
	}

	// But it can read it, in Kafka's format.
	cons := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		offsetsTopicName: {p: kgo.NewOffset().AtStart()},
	}))
	var got []*kgo.Record
	for len(got) < 2 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got = append(got, fs.Records()...)
	}
	for _, r := range got {
		gr, ok, err := group.DecodeRecord(r.Key, r.Value)
		if err != nil || !ok || gr.Offset == nil || *gr.Offset != o {
			t.Errorf("fetched record at %d: %+v %v %v", r.Offset, gr.Offset, ok, err)
		}
	}
}

func TestOffsetsTopicConcurrentWrites(t *testing.T) {
	tb := startBroker(t, withOffsetsPartitions(3))
	s := openStore(t, tb)
	ctx := testCtx(t)
	const groups, writes = 24, 10
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("group-%d", g)
			for i := range writes {
				o := grouptest.SampleOffset(id, "t", 0, int64(i))
				gm := grouptest.SampleGroup(id, int32(i))
				if err := s.Write(ctx, id, []group.Record{{Offset: &o}, {Group: &gm}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := map[string]int64{}
	total := 0
	for p, recs := range loadAll(t, s) {
		for i := 0; i < len(recs); i += 2 {
			o, g := recs[i].Offset, recs[i+1].Group
			if o == nil || g == nil || o.Group != g.Group || group.PartitionFor(o.Group, 3) != p {
				t.Fatalf("partition %d record %d: %+v %+v", p, i, o, g)
			}
			if o.Offset != next[o.Group] || int64(g.Generation) != next[o.Group] {
				t.Fatalf("group %s: write %d/%d out of order, want %d", o.Group, o.Offset, g.Generation, next[o.Group])
			}
			next[o.Group]++
			total += 2
		}
	}
	if total != groups*writes*2 {
		t.Fatalf("loaded %d records, want %d", total, groups*writes*2)
	}
}
