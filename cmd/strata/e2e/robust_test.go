package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartDurability: with log.flush.interval.messages=1, a franz-go
// producer (acks=all) writes sequenced records to 3 partitions; the broker
// is SIGKILLed mid-production and restarted on the same dirs. Every
// acknowledged record is there at the offset it was acknowledged with;
// each partition holds a prefix of what was sent — in order, exactly once.
func TestRestartDurability(t *testing.T) {
	t.Parallel()
	const (
		topic      = "durable"
		partitions = 3
		total      = 2000 // records sent at most
		killAfter  = 600  // acknowledgements before the kill
	)
	dir := t.TempDir()
	env := []string{fmt.Sprintf("KAFKA_CREATE_TOPICS=%s:%d:1", topic, partitions)}
	b := startBroker(t, dir, env, "log.flush.interval.messages=1")

	// The producer is not idempotent (that is TestConfluentIdempotent's
	// business) and has one request in flight per broker, so its retries
	// cannot reorder; it is closed before the restart, so none can land
	// twice.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(60), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	type ack struct {
		seq    int
		offset int64
	}
	var (
		mu                  sync.Mutex
		acked               [partitions][]ack
		errs                []error // errors before the kill
		nacked              atomic.Int64
		killed              atomic.Bool
		sent                atomic.Int64
		wg                  sync.WaitGroup
		enough              = make(chan struct{})
		once                sync.Once
		pctx, stopProducing = context.WithCancel(context.Background())
	)
	defer stopProducing()
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		var seq [partitions]int
		for i := range total {
			p := int32(i % partitions)
			r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "p%d-%06d", p, seq[p])}
			s := seq[p]
			seq[p]++
			wg.Add(1)
			cl.Produce(pctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if !killed.Load() {
						errs = append(errs, err)
					}
					return
				}
				acked[r.Partition] = append(acked[r.Partition], ack{s, r.Offset})
				if nacked.Add(1) >= killAfter {
					once.Do(func() { close(enough) })
				}
			})
			sent.Add(1)
			if pctx.Err() != nil {
				return
			}
		}
	}()

	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d acknowledgements in 30s", nacked.Load())
	}
	killed.Store(true)
	b.Kill()
	sentAtKill := sent.Load()
	stopProducing()
	<-prodDone
	cl.Close() // fails whatever is still buffered or in flight
	waitc := make(chan struct{})
	go func() { wg.Wait(); close(waitc) }()
	select {
	case <-waitc:
	case <-time.After(30 * time.Second):
		t.Fatal("producer callbacks not all called 30s after Close")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors before the kill, first: %v", len(errs), errs[0])
	}
	if sentAtKill >= total {
		t.Fatalf("all %d records were handed to the producer before the kill: not mid-production", total)
	}
	t.Logf("killed after %d acks with %d of %d records handed to the producer", nacked.Load(), sentAtKill, total)

	b = startBroker(t, dir, nil)
	got := consumeAll(t, b.Addr, topic, partitions)
	for p := range partitions {
		recs := got[p]
		// A prefix of what was sent: p<p>-000000, p<p>-000001, ... at
		// offsets 0, 1, ...
		for i, r := range recs {
			want := fmt.Sprintf("p%d-%06d", p, i)
			if string(r.Value) != want || r.Offset != int64(i) {
				t.Fatalf("partition %d: offset %d holds %q, want %q at offset %d (duplicate, reordered or lost in the middle)",
					p, r.Offset, r.Value, want, i)
			}
		}
		for _, a := range acked[p] {
			if a.offset != int64(a.seq) {
				t.Errorf("partition %d: seq %d acknowledged at offset %d", p, a.seq, a.offset)
			}
			if a.seq >= len(recs) {
				t.Errorf("partition %d: acknowledged record seq %d (offset %d) lost in the crash; the log ends at %d",
					p, a.seq, a.offset, len(recs))
			}
		}
		t.Logf("partition %d: %d acknowledged, %d after the restart", p, len(acked[p]), len(recs))
	}
	b.Stop()
}

// consumeAll reads every record of topic's partitions, up to the end
// offsets ListOffsets gives, with franz-go.
func consumeAll(t *testing.T, addr, topic string, partitions int) [][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	offsets := map[int32]kgo.Offset{}
	end := make([]int64, partitions)
	left := 0
	for p := range partitions {
		o, ok := ends.Lookup(topic, int32(p))
		if !ok || o.Err != nil {
			t.Fatalf("end offset of %s/%d: %+v", topic, p, o)
		}
		end[p] = o.Offset
		left += int(o.Offset)
		offsets[int32(p)] = kgo.NewOffset().AtStart()
	}
	got := make([][]*kgo.Record, partitions)
	if left == 0 {
		return got
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v (%d records still to read)", topic, err, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			if r.Offset < end[r.Partition] {
				left--
			}
		})
	}
	return got
}

// TestBadInput: while a franz-go producer keeps producing, raw connections
// send garbage, a frame of size 2^31-1, one just over
// socket.request.max.bytes, negative and tiny sizes, a truncated frame and
// a frame whose body does not decode. The broker closes each of those
// connections; the producer never sees an error; the broker is still
// serving at the end and shuts down cleanly.
func TestBadInput(t *testing.T) {
	t.Parallel()
	const maxRequest = 1 << 20
	b := startBroker(t, t.TempDir(), []string{"KAFKA_CREATE_TOPICS=steady:2:1"},
		"socket.request.max.bytes="+strconv.Itoa(maxRequest))

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("steady"),
		kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	attacksDone := make(chan struct{})
	type result struct {
		produced, after int
		err             error
	}
	resc := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		// Bounded: at most 20000 rounds of 5 records or 60s, stopping 20
		// rounds after the bad connections are done.
		var res result
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for round := 0; round < 20000 && res.after < 20; round++ {
			if round == 1 {
				close(started)
			}
			select {
			case <-attacksDone:
				res.after++
			default:
			}
			var rs []*kgo.Record
			for i := range 5 {
				rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "r%d-%d", round, i)})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				res.err = err
				break
			}
			res.produced += len(rs)
		}
		resc <- res
	}()

	frame := func(size int32, rest ...[]byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(size))
		for _, r := range rest {
			out = append(out, r...)
		}
		return out
	}
	// A request header v1: api key, version, correlation id, null client id.
	header := func(key, version int16) []byte {
		h := binary.BigEndian.AppendUint16(nil, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(version))
		h = binary.BigEndian.AppendUint32(h, 7)
		return binary.BigEndian.AppendUint16(h, 0xffff)
	}
	// Metadata v1 whose topic array claims 5 entries and has none.
	badBody := append(header(3, 1), 0, 0, 0, 5)
	cases := []struct {
		name      string
		data      []byte
		closeSend bool // half-close after sending: the broker sees EOF mid-frame
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: strata\r\n\r\n"), false},
		{"size 2^31-1", frame(1<<31-1, []byte("garbage")), false},
		{"just over socket.request.max.bytes", frame(maxRequest+1, header(0, 3)), false},
		{"negative size", frame(-1), false},
		{"size below a header", frame(3, []byte{0, 3, 0}), false},
		{"unknown api key", frame(10, header(0x7f00, 0)), false},
		{"undecodable body", frame(int32(len(badBody)), badBody), false},
		{"truncated frame", frame(100, header(3, 1)), true},
		{"garbage", frame(24, []byte("\xde\xad\xbe\xef\x01\x02\x03\x04not kafka at all")), false},
	}
	select {
	case <-started:
	case res := <-resc:
		t.Fatalf("producer failed at once: %v", res.err)
	}
	for _, c := range cases {
		if err := closedByBroker(b.Addr, c.data, c.closeSend); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	close(attacksDone)

	var res result
	select {
	case res = <-resc:
	case <-time.After(90 * time.Second):
		t.Fatal("producer did not finish")
	}
	if res.err != nil {
		t.Errorf("producer error after %d records: %v", res.produced, res.err)
	}
	if res.after < 20 {
		t.Errorf("producer stopped after %d rounds once the bad connections were done", res.after)
	}
	if !b.Running() {
		t.Fatalf("broker exited: %v", b.err)
	}
	if !dialOK(b.Addr) {
		t.Fatal("broker does not accept connections any more")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "steady")
	if err != nil {
		t.Fatalf("ListEndOffsets after the bad input: %v", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != int64(res.produced) {
		t.Errorf("end offsets sum to %d, %d records were acknowledged", n, res.produced)
	}
	if l := b.Log.String(); strings.Contains(l, "panic") {
		t.Errorf("broker log mentions a panic")
	}
	cl.Close()
	b.Stop()
}

// closedByBroker writes data on a new connection and reports an error
// unless the broker closes the connection, without answering, within 10s.
func closedByBroker(addr string, data []byte, closeSend bool) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(data); err != nil && !isClosed(err) {
		return fmt.Errorf("write: %v", err)
	}
	if closeSend {
		c.(*net.TCPConn).CloseWrite()
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	switch {
	case n > 0:
		return fmt.Errorf("broker answered %d bytes %x instead of closing", n, buf[:n])
	case isClosed(err):
		return nil
	case isTimeout(err):
		return errors.New("connection still open after 10s")
	default:
		return fmt.Errorf("read: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isClosed reports whether err says the peer closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
