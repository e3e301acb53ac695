package broker

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	return body
}

func parkedFetch(tb *testBroker, topic string, wait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(wait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestResponsesInRequestOrder: a parked fetch holds back the answer to a
// request sent after it on the same connection, though that one is ready
// first; the produce that wakes the fetch comes from another connection.
func TestResponsesInRequestOrder(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("order", 1, nil)
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	if err := writeFrame(c, requestFrame(parkedFetch(tb, "order", 10*time.Second), 1)); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(c, requestFrame(meta, 2)); err != nil {
		t.Fatal(err)
	}
	got := make(chan int32, 2)
	go func() {
		for range 2 {
			body := readFrame(t, c)
			got <- int32(binary.BigEndian.Uint32(body))
		}
	}()
	select {
	case corr := <-got:
		t.Fatalf("response %d arrived while the fetch was parked", corr)
	case <-time.After(200 * time.Millisecond):
	}
	produceRaw(t, tb, tb.client(), "order", 0, batchtest.Make(t, kgo.NoCompression(), 1, "wake"))
	for want := int32(1); want <= 2; want++ {
		select {
		case corr := <-got:
			if corr != want {
				t.Fatalf("response with correlation id %d, want %d", corr, want)
			}
		case <-time.After(8 * time.Second):
			t.Fatalf("no response %d", want)
		}
	}
}

// TestHandlerPanicClosesOnlyThatConnection swaps in a handler that panics.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("calm", 1, nil)
	p := tb.client(kgo.DefaultProduceTopic("calm"))
	ctx := testCtx(t)
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	hook := func(key int16) {
		if key == 20 { // DeleteTopics: the producer never sends it
			panic("boom")
		}
	}
	testHookHandler.Store(&hook)
	defer testHookHandler.Store(nil)

	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 4
	req.TopicNames = []string{"calm"}
	if err := writeFrame(c, requestFrame(req, 1)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("2")}).FirstErr(); err != nil {
		t.Fatalf("broker unusable after a handler panic: %v", err)
	}
}

// TestShutdownAnswersParkedFetch: Shutdown does not wait out max_wait; the
// parked fetch is answered (empty) before the connection closes.
func TestShutdownAnswersParkedFetch(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("drain", 1, nil)
	parked := make(chan struct{}, 1)
	hook := func() { parked <- struct{}{} }
	testHookFetchParked.Store(&hook)
	defer testHookFetchParked.Store(nil)

	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := writeFrame(c, requestFrame(parkedFetch(tb, "drain", 60*time.Second), 7)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-parked:
	case <-time.After(10 * time.Second):
		t.Fatal("fetch did not park")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Shutdown took %v with a fetch parked", el)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	body := readFrame(t, c)
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if err := resp.ReadFrom(body[5:]); err != nil {
		t.Fatal(err)
	}
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("parked fetch answered with error %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}
	expectClosed(t, c)
	<-tb.done
	tb.b = nil
}
