package broker

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

// seqVals returns n values named prefix-i.
func seqVals(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// produceIdem sends the batches as one partition's records of one produce
// request (acks=all) and returns the partition's answer.
func (tb *testBroker) produceIdem(cl *kgo.Client, topic string, partition int32, batches ...[]byte) kmsg.ProduceResponseTopicPartition {
	tb.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = bytes.Join(batches, nil)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(cl, req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

// initPID sends InitProducerId (non-transactional) at the client's version.
func (tb *testBroker) initPID(cl *kgo.Client, id int64, epoch int16) *kmsg.InitProducerIDResponse {
	tb.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.ProducerID, req.ProducerEpoch = id, epoch
	return tb.request(cl, req).(*kmsg.InitProducerIDResponse)
}

// newPID asks for a new producer id and fails the test if there is none.
func (tb *testBroker) newPID(cl *kgo.Client) int64 {
	tb.t.Helper()
	resp := tb.initPID(cl, -1, -1)
	if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
		tb.t.Fatalf("InitProducerId: error %d, id %d, epoch %d", resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch)
	}
	return resp.ProducerID
}

// logBatches returns the headers of every batch in a partition's log.
func (tb *testBroker) logBatches(topic string, partition int32) []engine.BatchHeader {
	tb.t.Helper()
	p := tb.b.parts.Get(context.Background(), engine.TopicPartition{Topic: topic, Partition: partition})
	if p == nil || p.Log() == nil {
		tb.t.Fatalf("no log for %s-%d", topic, partition)
	}
	start, end := p.Log().Offsets()
	var out []engine.BatchHeader
	for pos := start; pos < end; {
		recs, err := p.Log().Read(context.Background(), pos, 1<<20)
		if err != nil {
			tb.t.Fatalf("read %s-%d at %d: %v", topic, partition, pos, err)
		}
		for _, c := range recs.Chunks {
			for len(c) > 0 {
				h, err := engine.ParseBatchHeader(c)
				if err != nil {
					tb.t.Fatal(err)
				}
				out = append(out, h)
				c = c[h.Size():]
			}
		}
		pos = recs.NextOffset
		recs.Release()
	}
	return out
}

// wantProduce checks a produce answer's error code and, for success, its
// base offset.
func wantProduce(t *testing.T, what string, sp kmsg.ProduceResponseTopicPartition, code int16, base int64) {
	t.Helper()
	if sp.ErrorCode != code {
		msg := ""
		if sp.ErrorMessage != nil {
			msg = *sp.ErrorMessage
		}
		t.Fatalf("%s: error %v (%s), want %v", what, kerr.ErrorForCode(sp.ErrorCode), msg, kerr.ErrorForCode(code))
	}
	if code == 0 && sp.BaseOffset != base {
		t.Fatalf("%s: base offset %d, want %d", what, sp.BaseOffset, base)
	}
}

func (tb *testBroker) wantEnd(topic string, partition int32, want int64) {
	tb.t.Helper()
	if _, end := tb.logOffsets(topic, partition); end != want {
		tb.t.Fatalf("log end %d, want %d", end, want)
	}
}

func TestInitProducerID(t *testing.T) {
	tb := startBroker(t)

	// Advertised, so clients turn idempotence on.
	av := tb.request(tb.client(), kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	found := false
	for _, k := range av.ApiKeys {
		if k.ApiKey == 22 {
			found = k.MinVersion == 0 && k.MaxVersion == 5
		}
	}
	if !found {
		t.Fatal("ApiVersions does not list InitProducerId v0-5")
	}

	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		cl := tb.pinned(22, v)
		id := tb.newPID(cl)
		if seen[id] {
			t.Fatalf("v%d: producer id %d handed out twice", v, id)
		}
		seen[id] = true
		// Before v3 the request carries no id: always a new one.
		resp := tb.initPID(cl, id, 0)
		switch {
		case v < 3 && (resp.ErrorCode != 0 || resp.ProducerID == id || seen[resp.ProducerID] || resp.ProducerEpoch != 0):
			t.Fatalf("v%d: got %+v, want a new id at epoch 0", v, resp)
		case v >= 3 && (resp.ErrorCode != 0 || resp.ProducerID != id || resp.ProducerEpoch != 1):
			t.Fatalf("v%d: bump of (%d, 0) answered %+v, want (%d, 1)", v, id, resp, id)
		}
		seen[resp.ProducerID] = true
	}

	cl := tb.pinned(22, 4)
	id := tb.newPID(cl)
	if resp := tb.initPID(cl, id, 41); resp.ErrorCode != 0 || resp.ProducerID != id || resp.ProducerEpoch != 42 {
		t.Fatalf("bump of (%d, 41): %+v", id, resp)
	}
	// The epoch cannot grow past int16: a new id.
	if resp := tb.initPID(cl, id, math.MaxInt16); resp.ErrorCode != 0 || resp.ProducerID == id || seen[resp.ProducerID] || resp.ProducerEpoch != 0 {
		t.Fatalf("bump of (%d, MaxInt16): %+v, want a new id at epoch 0", id, resp)
	}
	for _, bad := range []struct {
		id    int64
		epoch int16
	}{{-1, 0}, {id, -1}, {-5, -5}} {
		if resp := tb.initPID(cl, bad.id, bad.epoch); resp.ErrorCode != kerr.InvalidRequest.Code || resp.ProducerID != -1 {
			t.Fatalf("(%d, %d): %+v, want INVALID_REQUEST", bad.id, bad.epoch, resp)
		}
	}

	// Transactions: refused with an error clients do not retry. kgo
	// would look for a transaction coordinator first; ask the broker
	// straight.
	txn := kmsg.NewPtrInitProducerIDRequest()
	txnID := "tx"
	txn.TransactionalID = &txnID
	txn.TransactionTimeoutMillis = 60000
	kresp, err := tb.client().SeedBrokers()[0].Request(testCtx(t), txn)
	if err != nil {
		t.Fatal(err)
	}
	if resp := kresp.(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || resp.ProducerID != -1 {
		t.Fatalf("transactional: %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", resp)
	}
}

func TestIdempotentProduceKgo(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-kgo"
	tb.createTopic(topic, 3, nil)
	// Idempotence is kgo's default; several requests in flight per
	// broker exercise the sequence checks.
	p := tb.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(64))
	ctx := testCtx(t)
	const n = 2000
	for i := range n {
		p.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("v-%d", i)), Partition: int32(i % 3)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	id, epoch, err := p.ProducerID(ctx)
	if err != nil || id < 0 || epoch != 0 {
		t.Fatalf("ProducerID: %d %d %v", id, epoch, err)
	}
	for part := int32(0); part < 3; part++ {
		var seq int32
		for _, h := range tb.logBatches(topic, part) {
			if h.ProducerID != id || h.ProducerEpoch != 0 || h.BaseSequence != seq {
				t.Fatalf("partition %d: batch (id %d, epoch %d, seq %d), want (%d, 0, %d)", part, h.ProducerID, h.ProducerEpoch, h.BaseSequence, id, seq)
			}
			seq += h.RecordCount
		}
	}
	got := consumeAll(t, tb, topic, n)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("value %s twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
}

func TestIdempotentDuplicate(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-dup"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	pid := tb.newPID(cl)

	b0 := batchtest.Idempotent(t, pid, 0, 0, seqVals("a", 3)...)
	b1 := batchtest.Idempotent(t, pid, 0, 3, seqVals("b", 2)...)
	wantProduce(t, "batch 0", tb.produceIdem(cl, topic, 0, b0), 0, 0)
	// Another producer's records in between, so the original offsets
	// are not simply at the end.
	wantProduce(t, "plain", tb.produceIdem(cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 1, seqVals("x", 4)...)), 0, 3)
	wantProduce(t, "batch 1", tb.produceIdem(cl, topic, 0, b1), 0, 7)
	tb.wantEnd(topic, 0, 9)

	// Retries of either (both within the last 5) get their original
	// offsets, and nothing is appended.
	wantProduce(t, "retry of batch 0", tb.produceIdem(cl, topic, 0, b0), 0, 0)
	wantProduce(t, "retry of batch 1", tb.produceIdem(cl, topic, 0, b1), 0, 7)
	tb.wantEnd(topic, 0, 9)
	if got := len(tb.logBatches(topic, 0)); got != 3 {
		t.Fatalf("%d batches in the log, want 3", got)
	}

	// The producer goes on where it was.
	wantProduce(t, "batch 2", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 5, "c")), 0, 9)

	// Only the last 5 batches are remembered: after 5 more, batch 0 is
	// an old sequence, not a duplicate.
	for i := range 5 {
		wantProduce(t, "more", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, int32(6+i), "d")), 0, int64(10+i))
	}
	wantProduce(t, "forgotten retry", tb.produceIdem(cl, topic, 0, b0), kerr.OutOfOrderSequenceNumber.Code, 0)
	tb.wantEnd(topic, 0, 15)
}

func TestIdempotentLogAppendTimeDuplicate(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-lat"
	tb.createTopic(topic, 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	cl := tb.client()
	pid := tb.newPID(cl)
	b0 := batchtest.Idempotent(t, pid, 0, 0, "a")
	first := tb.produceIdem(cl, topic, 0, b0)
	wantProduce(t, "batch 0", first, 0, 0)
	if first.LogAppendTime < 0 {
		t.Fatalf("log append time %d", first.LogAppendTime)
	}
	retry := tb.produceIdem(cl, topic, 0, b0)
	wantProduce(t, "retry", retry, 0, 0)
	if retry.LogAppendTime != first.LogAppendTime {
		t.Fatalf("retry's log append time %d, want the original %d", retry.LogAppendTime, first.LogAppendTime)
	}
}

func TestIdempotentOutOfOrder(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-gap"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	pid := tb.newPID(cl)
	wantProduce(t, "batch 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 0, seqVals("a", 3)...)), 0, 0)

	for _, c := range []struct {
		name string
		seq  int32
	}{{"gap", 5}, {"overlap", 2}, {"behind", 1}} {
		sp := tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, c.seq, "x", "y"))
		wantProduce(t, c.name, sp, kerr.OutOfOrderSequenceNumber.Code, 0)
		if sp.LogStartOffset != 0 {
			t.Fatalf("%s: log start offset %d, want 0", c.name, sp.LogStartOffset)
		}
	}
	tb.wantEnd(topic, 0, 3)

	// A producer id with no sequence is not a valid idempotent batch.
	wantProduce(t, "no sequence", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, -1, "x")), kerr.InvalidRecord.Code, 0)
	wantProduce(t, "next", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 3, "z")), 0, 3)
}

func TestIdempotentUnknownProducer(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-unknown"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	pid := tb.newPID(cl)
	wantProduce(t, "mid-sequence", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 7, "a")), kerr.UnknownProducerID.Code, 0)
	tb.wantEnd(topic, 0, 0)
	wantProduce(t, "sequence 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 0, "a")), 0, 0)
}

func TestIdempotentEpochs(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-epoch"
	tb.createTopic(topic, 1, nil)
	cl := tb.pinned(22, 4)
	pid := tb.newPID(cl)
	old := batchtest.Idempotent(t, pid, 0, 0, seqVals("a", 2)...)
	wantProduce(t, "epoch 0", tb.produceIdem(cl, topic, 0, old), 0, 0)

	// KIP-360: the client bumps its epoch and starts over at 0.
	resp := tb.initPID(cl, pid, 0)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != 1 {
		t.Fatalf("bump: %+v", resp)
	}
	wantProduce(t, "new epoch not at 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 1, 2, "b")), kerr.OutOfOrderSequenceNumber.Code, 0)
	wantProduce(t, "new epoch at 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 1, 0, "b")), 0, 2)

	// The old epoch is fenced, continuing or retrying.
	wantProduce(t, "old epoch", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 2, "c")), kerr.InvalidProducerEpoch.Code, 0)
	wantProduce(t, "old epoch retry", tb.produceIdem(cl, topic, 0, old), kerr.InvalidProducerEpoch.Code, 0)
	tb.wantEnd(topic, 0, 3)
	wantProduce(t, "new epoch goes on", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 1, 1, "d")), 0, 3)
}

func TestIdempotentSeveralBatches(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-several"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	pid, other := tb.newPID(cl), tb.newPID(cl)

	b0 := batchtest.Idempotent(t, pid, 0, 0, seqVals("a", 2)...)
	b1 := batchtest.Idempotent(t, pid, 0, 2, seqVals("b", 3)...)
	// Checked in order: b1 follows b0 within the request.
	wantProduce(t, "b0+b1", tb.produceIdem(cl, topic, 0, b0, b1), 0, 0)
	tb.wantEnd(topic, 0, 5)

	// A failing batch fails the request: nothing of it is appended.
	wantProduce(t, "ok+gap", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, other, 0, 0, "x"), batchtest.Idempotent(t, pid, 0, 9, "y")),
		kerr.OutOfOrderSequenceNumber.Code, 0)
	tb.wantEnd(topic, 0, 5)
	// ... so other has no state yet: it starts at 0 again.
	wantProduce(t, "other", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, other, 0, 1, "x")), kerr.UnknownProducerID.Code, 0)

	// Duplicates are skipped, new batches appended; the answer is the
	// first batch's original offset.
	b2 := batchtest.Idempotent(t, pid, 0, 5, seqVals("c", 2)...)
	wantProduce(t, "b1 again+b2", tb.produceIdem(cl, topic, 0, b1, b2), 0, 2)
	tb.wantEnd(topic, 0, 7)
	wantProduce(t, "b2 again", tb.produceIdem(cl, topic, 0, b2), 0, 5)
	tb.wantEnd(topic, 0, 7)
}

func TestIdempotentRestart(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-restart"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	pid := tb.newPID(cl)

	b0 := batchtest.Idempotent(t, pid, 0, 0, seqVals("a", 1)...)
	b1 := batchtest.Idempotent(t, pid, 0, 1, seqVals("b", 2)...)
	b2 := batchtest.Idempotent(t, pid, 0, 3, seqVals("c", 3)...)
	b3 := batchtest.Idempotent(t, pid, 0, 6, seqVals("d", 4)...)
	wantProduce(t, "b0", tb.produceIdem(cl, topic, 0, b0), 0, 0)
	wantProduce(t, "b1", tb.produceIdem(cl, topic, 0, b1), 0, 1)
	wantProduce(t, "plain", tb.produceIdem(cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 1, "p")), 0, 3)
	wantProduce(t, "b2", tb.produceIdem(cl, topic, 0, b2), 0, 4)
	wantProduce(t, "b3", tb.produceIdem(cl, topic, 0, b3), 0, 7)
	tb.wantEnd(topic, 0, 11)

	tb.restart()
	cl = tb.client()

	// Retries after the restart get their original offsets and append
	// nothing.
	wantProduce(t, "b3 retried after restart", tb.produceIdem(cl, topic, 0, b3), 0, 7)
	wantProduce(t, "b1 retried after restart", tb.produceIdem(cl, topic, 0, b1), 0, 1)
	wantProduce(t, "b2 retried after restart", tb.produceIdem(cl, topic, 0, b2), 0, 4)
	tb.wantEnd(topic, 0, 11)
	// The sequence is known: a gap is still a gap, an older epoch is
	// still fenced, and the next batch follows on.
	wantProduce(t, "gap after restart", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 11, "g")), kerr.OutOfOrderSequenceNumber.Code, 0)
	wantProduce(t, "old epoch after restart", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, -1, 10, "g")), kerr.InvalidProducerEpoch.Code, 0)
	wantProduce(t, "next after restart", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, pid, 0, 10, "n")), 0, 11)

	// Ids handed out after a restart are new.
	if id := tb.newPID(cl); id == pid {
		t.Fatalf("producer id %d handed out again after restart", id)
	}
}

func TestIdempotentRestartKgo(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-restart-kgo"
	tb.createTopic(topic, 1, nil)
	produce := func(p *kgo.Client, from, n int) {
		t.Helper()
		ctx := testCtx(t)
		for i := from; i < from+n; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	p := tb.client()
	produce(p, 0, 50)
	tb.restart()
	// The same client (same producer id and sequence) goes on against
	// the restarted broker; its state was rebuilt from the log.
	p2 := tb.client()
	produce(p2, 50, 50)
	got := consumeAll(t, tb, topic, 100)
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d is %s", i, r.Value)
		}
	}
}

// idemClock is a clock tests move by hand.
type idemClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *idemClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *idemClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestIdempotentExpiration(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.ProducerIDExpirationMs = time.Minute })
	clock := &idemClock{t: time.Unix(1_700_000_000, 0)}
	tb.b.parts.SetProducerClock(clock.Now)
	const topic = "idem-expire"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	a, b, c := tb.newPID(cl), tb.newPID(cl), tb.newPID(cl)

	wantProduce(t, "a 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 0, "x")), 0, 0)
	wantProduce(t, "b 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, b, 0, 0, "x")), 0, 1)
	// Appends keep a producer alive.
	clock.Advance(59 * time.Second)
	wantProduce(t, "a 1", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 1, "x")), 0, 2)
	clock.Advance(59 * time.Second)
	wantProduce(t, "a 2", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 2, "x")), 0, 3)
	// b has been idle for 118s: forgotten.
	wantProduce(t, "b 1", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, b, 0, 1, "x")), kerr.UnknownProducerID.Code, 0)

	// The sweep frees the memory of producers nobody asks about: c's
	// append sweeps a away.
	clock.Advance(time.Minute)
	wantProduce(t, "c 0", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, c, 0, 0, "x")), 0, 4)
	p := tb.b.parts.Get(context.Background(), engine.TopicPartition{Topic: topic})
	hasA, hasC := p.RemembersProducer(a), p.RemembersProducer(c)
	if hasA || !hasC {
		t.Fatalf("after the sweep: a remembered %v, c remembered %v", hasA, hasC)
	}
	wantProduce(t, "a 3", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 3, "x")), kerr.UnknownProducerID.Code, 0)
	// An expired producer starts over at sequence 0.
	wantProduce(t, "a restarts", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 0, "y")), 0, 5)
}

// franz-go answers UNKNOWN_PRODUCER_ID by bumping its epoch (locally, as
// the Java client does, KIP-360) and resending from sequence 0:
// a client idle past the expiration goes on without losing or doubling
// records.
func TestIdempotentExpirationKgo(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.ProducerIDExpirationMs = time.Minute })
	clock := &idemClock{t: time.Unix(1_700_000_000, 0)}
	tb.b.parts.SetProducerClock(clock.Now)
	const topic = "idem-expire-kgo"
	tb.createTopic(topic, 1, nil)
	// The retry waits for a metadata refresh: keep that short.
	p := tb.client(kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(50*time.Millisecond))
	ctx := testCtx(t)
	for i := range 20 {
		if i == 10 {
			clock.Advance(2 * time.Minute)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	if _, epoch, err := p.ProducerID(ctx); err != nil || epoch != 1 {
		t.Fatalf("producer epoch %d (%v), want 1 after the reset", epoch, err)
	}
	got := consumeAll(t, tb, topic, 20)
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d is %s", i, r.Value)
		}
	}
}

// Records removed from the log's start take their producers with them, and
// the error carries the new log start offset (franz-go's cue that nothing
// was lost).
func TestIdempotentLogStart(t *testing.T) {
	tb := startBroker(t)
	const topic = "idem-start"
	tb.createTopic(topic, 1, nil)
	cl := tb.client()
	a, b := tb.newPID(cl), tb.newPID(cl)
	wantProduce(t, "a", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 0, "x", "y")), 0, 0)
	wantProduce(t, "b", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, b, 0, 0, "x")), 0, 2)
	p := tb.b.parts.Get(context.Background(), engine.TopicPartition{Topic: topic})
	if _, err := tb.b.parts.DeleteRecords(context.Background(), p.TP(), 2); err != nil {
		t.Fatal(err)
	}
	sp := tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, a, 0, 2, "z"))
	wantProduce(t, "a after delete", sp, kerr.UnknownProducerID.Code, 0)
	if sp.LogStartOffset != 2 {
		t.Fatalf("log start offset %d, want 2", sp.LogStartOffset)
	}
	wantProduce(t, "b after delete", tb.produceIdem(cl, topic, 0, batchtest.Idempotent(t, b, 0, 1, "z")), 0, 3)
}
