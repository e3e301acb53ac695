package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mem"
)

// batchingEngine is mem whose logs are engine.BatchAppenders that record
// how many batches each append call carried, and can be told to fail one
// call after its batches reached the log, as a plugin that dies before it
// answers does.
const batchingEngine = "batching-test"

var batching struct {
	mu    sync.Mutex
	calls []int
	// lose makes the next append call write its batches and then fail.
	lose atomic.Bool
	// gate, if set, holds the next append call until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func init() {
	engine.Register(batchingEngine, func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		e, err := mem.Open(ctx, dir, opts)
		return batchingE{e}, err
	})
}

type batchingE struct{ engine.Engine }

func (e batchingE) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	l, err := e.Engine.OpenLog(ctx, tp, opts)
	if err != nil {
		return nil, err
	}
	return batchingLog{l}, nil
}

type batchingLog struct{ engine.Log }

func (l batchingLog) Append(ctx context.Context, meta engine.BatchMeta, b []byte) error {
	_, err := l.AppendBatches(ctx, []engine.Batch{{Meta: meta, Data: b}})
	return err
}

func (l batchingLog) AppendBatches(ctx context.Context, bs []engine.Batch) (int, error) {
	if g := batching.gate.Swap(nil); g != nil {
		<-*g
	}
	batching.mu.Lock()
	batching.calls = append(batching.calls, len(bs))
	batching.mu.Unlock()
	for i, b := range bs {
		if err := l.Log.Append(ctx, b.Meta, b.Data); err != nil {
			return i, err
		}
	}
	if batching.lose.Swap(false) {
		return 0, errors.New("batching-test: connection lost before the answer")
	}
	return len(bs), nil
}

func batchingCalls() []int {
	batching.mu.Lock()
	defer batching.mu.Unlock()
	return append([]int(nil), batching.calls...)
}

// TestProduceAppendsBatchesAtOnce: the batches of one produce request for
// one partition reach the engine in one AppendBatches call.
func TestProduceAppendsBatchesAtOnce(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.LogEngine = batchingEngine })
	tb.createTopic("multi", 1, nil)
	var records []byte
	for i := range int64(3) {
		b, _ := enginetest.NewBatch(i*2, 2, 20, 1000+i, byte(i))
		records = append(records, b...)
	}
	before := len(batchingCalls())
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "multi"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cl := tb.client()
	resp := tb.request(cl, req).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce: error %d, base offset %d", p.ErrorCode, p.BaseOffset)
	}
	if calls := batchingCalls()[before:]; len(calls) != 1 || calls[0] != 3 {
		t.Errorf("append calls %v for one request of 3 batches, want [3]", calls)
	}
	got := consumeAll(t, tb, "multi", 6)
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Errorf("record %d at offset %d", i, r.Offset)
		}
	}
}

// TestProduceRetryAfterLostAppend: an append that reached the log but
// failed before the engine answered (a plugin dying mid-call) makes the
// idempotent producer retry; the broker rebuilds the producers' state from
// the log, finds the retry a duplicate, and the record is stored once.
func TestProduceRetryAfterLostAppend(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.LogEngine = batchingEngine })
	tb.createTopic("lost", 1, nil)
	cl := tb.client(kgo.DefaultProduceTopic("lost"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx := testCtx(t)
	if err := cl.ProduceSync(ctx, kgo.StringRecord("first")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	batching.lose.Store(true)
	rec := kgo.StringRecord("second")
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce across the lost append: %v", err)
	}
	if batching.lose.Load() {
		t.Fatal("the append was not lost: the test proves nothing")
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("third")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, tb, "lost", 3)
	var values [][]byte
	for _, r := range got {
		values = append(values, r.Value)
	}
	if want := [][]byte{[]byte("first"), []byte("second"), []byte("third")}; len(values) != 3 || !bytes.Equal(values[1], want[1]) || !bytes.Equal(values[2], want[2]) {
		t.Errorf("stored %q, want %q", values, want)
	}
	if _, end := tb.logOffsets("lost", 0); end != 3 {
		t.Errorf("log end %d, want 3 (the retry stored again?)", end)
	}
	if rec.Offset != 1 {
		t.Errorf("the retried record was acknowledged at offset %d, want 1", rec.Offset)
	}
}

// TestProduceGroupCommit: produce requests of several producers that
// arrive while the partition is appending are appended together, in one
// AppendBatches call, each answered with its own offsets.
func TestProduceGroupCommit(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.LogEngine = batchingEngine })
	tb.createTopic("group-commit", 1, nil)
	ctx := testCtx(t)
	gate := make(chan struct{})
	batching.gate.Store(&gate)
	const n = 5
	type result struct {
		rec *kgo.Record
		err error
	}
	results := make(chan result, n+1)
	produce := func(v string) {
		cl := tb.client(kgo.DefaultProduceTopic("group-commit"), kgo.RequiredAcks(kgo.AllISRAcks()))
		defer cl.Close()
		r := kgo.StringRecord(v)
		err := cl.ProduceSync(ctx, r).FirstErr()
		results <- result{r, err}
	}
	go produce("first") // held at the gate
	tp := engine.TopicPartition{Topic: "group-commit"}
	queued := func() int {
		return tb.b.parts.Get(ctx, tp).QueuedAppends()
	}
	eventually(t, "the first append held", func() bool { return batching.gate.Load() == nil })
	before := len(batchingCalls())
	for i := range n {
		go produce(fmt.Sprintf("queued-%d", i))
	}
	eventually(t, "five appends queued", func() bool { return queued() == n })
	close(gate)
	offsets := map[int64]string{}
	for range n + 1 {
		r := <-results
		if r.err != nil {
			t.Fatalf("produce %s: %v", r.rec.Value, r.err)
		}
		if prev, dup := offsets[r.rec.Offset]; dup {
			t.Errorf("%s and %s both at offset %d", prev, r.rec.Value, r.rec.Offset)
		}
		offsets[r.rec.Offset] = string(r.rec.Value)
	}
	calls := batchingCalls()[before:]
	if len(calls) != 2 || calls[1] != n {
		t.Errorf("append calls %v after the held one, want [1 %d]: the queued appends in one call", calls, n)
	}
	got := consumeAll(t, tb, "group-commit", n+1)
	for i, r := range got {
		if r.Offset != int64(i) || offsets[r.Offset] != string(r.Value) {
			t.Errorf("offset %d holds %q; the producer was told %q", r.Offset, r.Value, offsets[r.Offset])
		}
	}
}
