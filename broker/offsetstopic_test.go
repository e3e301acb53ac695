package broker

import (
	"bytes"
	"context"
	"encoding/binary"
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

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

// recordingLoader keeps what a Load replays, in order.
type recordingLoader struct{ recs []groupRecord }

func (l *recordingLoader) loadedOffset(r offsetRecord) {
	l.recs = append(l.recs, groupRecord{Offset: &r})
}
func (l *recordingLoader) loadedGroup(r groupMetaRecord) {
	l.recs = append(l.recs, groupRecord{Group: &r})
}

func sampleGroup(group string, generation int32) groupMetaRecord {
	return groupMetaRecord{
		Group: group, ProtocolType: "consumer", Generation: generation, Protocol: "cooperative-sticky",
		Leader: "m-1", StateTimestamp: 1700000000123,
		Members: []memberRecord{
			{MemberID: "m-1", InstanceID: "static-1", ClientID: "c1", ClientHost: "/127.0.0.1",
				RebalanceTimeout: 60000, SessionTimeout: 45000, Subscription: []byte{0, 3, 1}, Assignment: []byte{0, 3, 2}},
			{MemberID: "m-2", ClientID: "c2", ClientHost: "/10.0.0.2",
				RebalanceTimeout: 30000, SessionTimeout: 10000, Subscription: []byte{}, Assignment: []byte{}},
		},
	}
}

func sampleOffset(group, topic string, partition int32, offset int64) offsetRecord {
	return offsetRecord{Group: group, Topic: topic, Partition: partition, Offset: offset,
		LeaderEpoch: 7, Metadata: "meta", CommitTimestamp: 1700000000456, ExpireTimestamp: -1}
}

func TestGroupRecordCodec(t *testing.T) {
	expiring := sampleOffset("g", "t", 3, 99)
	expiring.ExpireTimestamp = 1800000000000
	expiringBack := expiring
	expiringBack.LeaderEpoch = -1 // version 1 has no leader epoch
	empty := groupMetaRecord{Group: "g", ProtocolType: "consumer", Generation: 4, StateTimestamp: 5, Members: []memberRecord{}}
	offset := sampleOffset("g", "t", 3, 42)
	group := sampleGroup("g", 9)

	for _, tc := range []struct {
		name      string
		in, want  groupRecord
		valueVers int16 // -1: tombstone
	}{
		{"offset", groupRecord{Offset: &offset}, groupRecord{Offset: &offset}, 3},
		{"offset with expire timestamp", groupRecord{Offset: &expiring}, groupRecord{Offset: &expiringBack}, 1},
		{"offset tombstone", groupRecord{Offset: &offsetRecord{Group: "g", Topic: "t", Partition: 3, Delete: true}},
			groupRecord{Offset: &offsetRecord{Group: "g", Topic: "t", Partition: 3, Delete: true, LeaderEpoch: -1, ExpireTimestamp: -1}}, -1},
		{"group", groupRecord{Group: &group}, groupRecord{Group: &group}, 3},
		{"empty group", groupRecord{Group: &empty}, groupRecord{Group: &empty}, 3},
		{"group tombstone", groupRecord{Group: &groupMetaRecord{Group: "g", Delete: true}}, groupRecord{Group: &groupMetaRecord{Group: "g", Delete: true}}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, value, err := encodeGroupRecord(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if tc.valueVers == -1 {
				if value != nil {
					t.Fatalf("tombstone has value %x", value)
				}
			} else if v := int16(binary.BigEndian.Uint16(value)); v != tc.valueVers {
				t.Fatalf("value version %d, want %d", v, tc.valueVers)
			}
			got, ok, err := decodeGroupRecord(key, value)
			if err != nil || !ok {
				t.Fatalf("decode: ok %v, err %v", ok, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", got.Offset, got.Group, tc.want.Offset, tc.want.Group)
			}
		})
	}

	if _, _, err := encodeGroupRecord(groupRecord{}); err == nil {
		t.Error("a record with neither Offset nor Group encoded")
	}
}

// TestGroupRecordKafkaBytes checks the encodings byte by byte against
// Kafka's schemas (OffsetCommitKey, OffsetCommitValue, GroupMetadataKey
// and GroupMetadataValue in Kafka's group-coordinator resources), built
// here by hand.
func TestGroupRecordKafkaBytes(t *testing.T) {
	be := binary.BigEndian
	str := func(b []byte, s string) []byte { return append(be.AppendUint16(b, uint16(len(s))), s...) }
	i16 := func(b []byte, v int16) []byte { return be.AppendUint16(b, uint16(v)) }
	i32 := func(b []byte, v int32) []byte { return be.AppendUint32(b, uint32(v)) }
	i64 := func(b []byte, v int64) []byte { return be.AppendUint64(b, uint64(v)) }
	byts := func(b []byte, v []byte) []byte { return append(i32(b, int32(len(v))), v...) }

	o := sampleOffset("grp", "orders", 5, 1234)
	key, value, err := encodeGroupRecord(groupRecord{Offset: &o})
	if err != nil {
		t.Fatal(err)
	}
	wantKey := i32(str(str(i16(nil, 1), "grp"), "orders"), 5)
	wantValue := i64(str(i32(i64(i16(nil, 3), 1234), 7), "meta"), 1700000000456)
	if !bytes.Equal(key, wantKey) || !bytes.Equal(value, wantValue) {
		t.Errorf("offset commit:\n key %x\nwant %x\n value %x\n want %x", key, wantKey, value, wantValue)
	}

	o.ExpireTimestamp = 1800000000000
	_, value, _ = encodeGroupRecord(groupRecord{Offset: &o})
	wantValue = i64(i64(str(i64(i16(nil, 1), 1234), "meta"), 1700000000456), 1800000000000)
	if !bytes.Equal(value, wantValue) {
		t.Errorf("offset commit v1:\n value %x\n want %x", value, wantValue)
	}

	g := sampleGroup("grp", 9)
	g.Members = g.Members[:1]
	g.Leader = "" // null
	key, value, err = encodeGroupRecord(groupRecord{Group: &g})
	if err != nil {
		t.Fatal(err)
	}
	wantKey = str(i16(nil, 2), "grp")
	w := str(i16(nil, 3), "consumer")
	w = i32(w, 9)
	w = str(w, "cooperative-sticky")
	w = i16(w, -1) // null leader
	w = i64(w, 1700000000123)
	w = i32(w, 1)
	w = str(w, "m-1")
	w = str(w, "static-1")
	w = str(w, "c1")
	w = str(w, "/127.0.0.1")
	w = i32(w, 60000)
	w = i32(w, 45000)
	w = byts(w, []byte{0, 3, 1})
	w = byts(w, []byte{0, 3, 2})
	if !bytes.Equal(key, wantKey) || !bytes.Equal(value, w) {
		t.Errorf("group metadata:\n key %x\nwant %x\n value %x\n want %x", key, wantKey, value, w)
	}

	// Older versions Kafka wrote still load: offset value v0 (no expire,
	// no epoch), group value v0 (rebalance timeout = session timeout).
	v0 := i64(str(i64(i16(nil, 0), 77), ""), 5)
	got, ok, err := decodeGroupRecord(nil, nil)
	if err == nil {
		t.Errorf("a record without a key decoded: %+v %v", got, ok)
	}
	got, ok, err = decodeGroupRecord(i32(str(str(i16(nil, 0), "g"), "t"), 1), v0)
	if err != nil || !ok || *got.Offset != (offsetRecord{Group: "g", Topic: "t", Partition: 1, Offset: 77, CommitTimestamp: 5, LeaderEpoch: -1, ExpireTimestamp: -1}) {
		t.Errorf("offset value v0: %+v %v %v", got.Offset, ok, err)
	}
	gv0 := str(i16(nil, 0), "consumer")
	gv0 = i32(gv0, 2)
	gv0 = str(gv0, "range")
	gv0 = str(gv0, "m")
	gv0 = i32(gv0, 1)
	gv0 = str(str(str(gv0, "m"), "c"), "h")
	gv0 = i32(gv0, 10000)
	gv0 = byts(byts(gv0, []byte{1}), []byte{2})
	got, ok, err = decodeGroupRecord(str(i16(nil, 2), "g"), gv0)
	if err != nil || !ok {
		t.Fatalf("group value v0: %v %v", ok, err)
	}
	wantG := groupMetaRecord{Group: "g", ProtocolType: "consumer", Generation: 2, Protocol: "range", Leader: "m", StateTimestamp: -1,
		Members: []memberRecord{{MemberID: "m", ClientID: "c", ClientHost: "h", RebalanceTimeout: 10000, SessionTimeout: 10000, Subscription: []byte{1}, Assignment: []byte{2}}}}
	if !reflect.DeepEqual(*got.Group, wantG) {
		t.Errorf("group value v0:\n got %+v\nwant %+v", *got.Group, wantG)
	}

	// Newer key versions (KIP-848 and later records) are skipped.
	if _, ok, err := decodeGroupRecord(str(i16(nil, 3), "g"), []byte{0, 0, 1}); ok || err != nil {
		t.Errorf("key version 3: ok %v err %v, want skipped", ok, err)
	}
	// A value version kmsg does not know is an error, not a guess.
	if _, _, err := decodeGroupRecord(wantKey, i16(nil, 9)); err == nil {
		t.Error("group value version 9 decoded")
	}
	// A truncated value is an error.
	if _, _, err := decodeGroupRecord(i32(str(str(i16(nil, 1), "g"), "t"), 1), v0[:5]); err == nil {
		t.Error("truncated offset value decoded")
	}
}

// TestGroupPartitionJavaHashCode checks groupPartition against Java's
// String.hashCode, s[0]*31^(n-1) + ... + s[n-1] over the UTF-16 code units
// in 32-bit two's complement, then Kafka's Utils.abs (MinValue maps to 0)
// and % partitions. The hash values below were computed from that
// definition independently of the Go code:
//
//	""                   0
//	"ab"                 97*31 + 98 = 3105
//	"test-group"         627841412
//	"my-group"           -1906497762 (abs 1906497762)
//	"grüße"              98768023 (ü U+00FC and ß U+00DF are one unit each)
//	"g😀"                U+1F600 is the surrogate pair D83D DE00:
//	                     (103*31 + 0xD83D)*31 + 0xDE00 = 58550*31 + 56832 = 1871882
//	"消费者组"            871131088
//	"polygenelubricants" -2147483648 (Integer.MIN_VALUE: Utils.abs gives 0)
func TestGroupPartitionJavaHashCode(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int64
	}{
		{"", 0},
		{"ab", 3105},
		{"test-group", 627841412},
		{"my-group", -1906497762},
		{"grüße", 98768023},
		{"g😀", 1871882},
		{"消费者组", 871131088},
		{"polygenelubricants", -2147483648},
	} {
		abs := tc.hash
		if abs == -2147483648 {
			abs = 0
		} else if abs < 0 {
			abs = -abs
		}
		for _, n := range []int32{1, 7, 50} {
			if got, want := groupPartition(tc.group, n), int32(abs%int64(n)); got != want {
				t.Errorf("groupPartition(%q, %d) = %d, want %d", tc.group, n, got, want)
			}
		}
	}
	// Spot values for the default 50 partitions.
	for group, want := range map[string]int32{"test-group": 12, "my-group": 12, "g😀": 32, "grüße": 23} {
		if got := groupPartition(group, 50); got != want {
			t.Errorf("groupPartition(%q, 50) = %d, want %d", group, got, want)
		}
	}
}

func withOffsetsPartitions(n int32) func(*config.Config) {
	return func(c *config.Config) { c.OffsetsTopicNumPartitions = n }
}

func openStore(t *testing.T, tb *testBroker) groupStore {
	t.Helper()
	s, err := tb.b.openGroupStore(testCtx(t))
	if err != nil {
		t.Fatalf("openGroupStore: %v", err)
	}
	return s
}

func loadAll(t *testing.T, s groupStore) map[int32][]groupRecord {
	t.Helper()
	out := map[int32][]groupRecord{}
	for p := range s.Partitions() {
		var l recordingLoader
		if err := s.Load(testCtx(t), p, &l); err != nil {
			t.Fatalf("Load(%d): %v", p, err)
		}
		out[p] = l.recs
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

	want := map[int32][]groupRecord{}
	write := func(group string, recs ...groupRecord) {
		t.Helper()
		if err := s.Write(ctx, group, recs); err != nil {
			t.Fatalf("Write(%s): %v", group, err)
		}
		p := groupPartition(group, 3)
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
	for _, group := range []string{"alpha", "beta", "gamma", "delta"} {
		g := sampleGroup(group, 1)
		o1, o2 := sampleOffset(group, "orders", 0, 10), sampleOffset(group, "orders", 1, 20)
		write(group, groupRecord{Group: &g})
		write(group, groupRecord{Offset: &o1}, groupRecord{Offset: &o2})
		o1.Offset, o1.ExpireTimestamp, o1.LeaderEpoch = 11, 1900000000000, -1
		write(group, groupRecord{Offset: &o1})
	}
	gone := offsetRecord{Group: "beta", Topic: "orders", Partition: 1, Delete: true, LeaderEpoch: -1, ExpireTimestamp: -1}
	write("beta", groupRecord{Offset: &gone})
	dead := groupMetaRecord{Group: "gamma", Delete: true}
	write("gamma", groupRecord{Group: &dead})
	if err := s.Write(ctx, "alpha", nil); err != nil {
		t.Fatalf("empty Write: %v", err)
	}

	check := func(s groupStore) {
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

	o := sampleOffset("readers", "orders", 0, 5)
	if err := s.Write(ctx, "readers", []groupRecord{{Offset: &o}, {Offset: &o}}); err != nil {
		t.Fatal(err)
	}
	p := groupPartition("readers", 4)
	_, end := tb.logOffsets(offsetsTopicName, p)

	// A client may not produce to it.
	batch, err := encodeGroupBatch([]groupRecord{{Offset: &o}}, time.Now().UnixMilli())
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
		gr, ok, err := decodeGroupRecord(r.Key, r.Value)
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
			group := fmt.Sprintf("group-%d", g)
			for i := range writes {
				o := sampleOffset(group, "t", 0, int64(i))
				gm := sampleGroup(group, int32(i))
				if err := s.Write(ctx, group, []groupRecord{{Offset: &o}, {Group: &gm}}); err != nil {
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
			if o == nil || g == nil || o.Group != g.Group || groupPartition(o.Group, 3) != p {
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
	tb := startBroker(t, withOffsetsPartitions(2))
	s := openStore(t, tb).(*offsetsTopicStore)
	ctx := testCtx(t)

	o1, o2 := sampleOffset("g", "t", 0, 1), sampleOffset("g", "t", 1, 2)
	k1, v1, _ := encodeGroupRecord(groupRecord{Offset: &o1})
	k2, v2, _ := encodeGroupRecord(groupRecord{Offset: &o2})
	unknown := [2][]byte{{0, 3, 0, 1, 'g'}, {0, 0, 1, 2, 3}} // a KIP-848 record
	// A control record: key version 0, type 0 (abort).
	control := [2][]byte{{0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}}
	for _, b := range [][]byte{
		testBatch(t, 0, [2][]byte{k1, v1}, unknown),
		testBatch(t, engine.AttrControl|engine.AttrTransactional, control),
		testBatch(t, engine.AttrTransactional, [2][]byte{k2, v2}),
		testBatch(t, 1, unknown, [2][]byte{k2, v2}), // gzip
	} {
		if err := s.appendBatch(ctx, 0, b); err != nil {
			t.Fatal(err)
		}
	}
	var l recordingLoader
	if err := s.Load(ctx, 0, &l); err != nil {
		t.Fatal(err)
	}
	want := []groupRecord{{Offset: &o1}, {Offset: &o2}}
	if !reflect.DeepEqual(l.recs, want) {
		t.Fatalf("loaded %d records, want o1 then o2:", len(l.recs))
	}

	// A record that does not decode fails the load, naming where.
	if err := s.appendBatch(ctx, 1, testBatch(t, 0, [2][]byte{k1, v1})); err != nil {
		t.Fatal(err)
	}
	if err := s.appendBatch(ctx, 1, testBatch(t, 0, [2][]byte{k1, v1}, [2][]byte{k2, v2[:7]})); err != nil {
		t.Fatal(err)
	}
	l = recordingLoader{}
	err := s.Load(ctx, 1, &l)
	if err == nil || !strings.Contains(err.Error(), offsetsTopicName+"-1") || !strings.Contains(err.Error(), "offset 2") {
		t.Fatalf("Load of a corrupt record: %v; want an error naming %s-1 and offset 2", err, offsetsTopicName)
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
