package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// The wire driver speaks the protocol itself, with franz-go's kmsg for
// every request and response, and does only what the protocol requires of
// a client: it sends pre-built record batches (their producer id, epoch
// and base sequence patched and the CRC recomputed per request, as an
// idempotent producer must) and reads fetched batches by their headers
// without decoding records. The kgo workloads show what an application
// gets on this machine, where kgo's per-record work takes most of the two
// cores; the wire workloads leave the cores to the broker and so show what
// the broker itself sustains.

// Wire driver versions: the newest both targets serve without topic ids.
const (
	wireProduceVersion = 9
	wireFetchVersion   = 12
	// wireBatchBytes is the size of the record batches the wire producer
	// sends: kgo's default partitioner moves to another partition after
	// 64 KiB of records, so batches under load are at least this big.
	wireBatchBytes = 64 << 10
	// wireInflight is the most produce requests in flight on the
	// connection: the idempotent producer's limit.
	wireInflight = 5
	// wireClients is how many producers or consumers the -x workloads
	// run at once: a broker serves many clients, and one connection's
	// requests are handled in order.
	wireClients = 4
)

// wireConn is one connection that pipelines requests: send writes a
// request, recv reads the oldest outstanding response.
type wireConn struct {
	nc      net.Conn
	br      *bufio.Reader
	f       *kmsg.RequestFormatter
	corr    int32
	pending []int32 // correlation ids sent and not yet received
	wbuf    []byte
	rbuf    []byte
}

func dialWire(ctx context.Context, addr string) (*wireConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	return &wireConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strata-bench-wire"))}, nil
}

func (w *wireConn) close() { w.nc.Close() }

func (w *wireConn) send(req kmsg.Request) error {
	w.corr++
	w.wbuf = w.f.AppendRequest(w.wbuf[:0], req, w.corr)
	if _, err := w.nc.Write(w.wbuf); err != nil {
		return err
	}
	w.pending = append(w.pending, w.corr)
	return nil
}

// recv reads the response to the oldest request sent into resp, whose
// version must be the request's. resp may keep references to the read
// buffer until the next recv.
func (w *wireConn) recv(resp kmsg.Response) error {
	if len(w.pending) == 0 {
		return fmt.Errorf("recv with no request outstanding")
	}
	want := w.pending[0]
	w.pending = w.pending[1:]
	var size [4]byte
	if _, err := io.ReadFull(w.br, size[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 256<<20 {
		return fmt.Errorf("response frame of %d bytes", n)
	}
	if cap(w.rbuf) < n {
		w.rbuf = make([]byte, n)
	}
	frame := w.rbuf[:n]
	if _, err := io.ReadFull(w.br, frame); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != want {
		return fmt.Errorf("response correlation id %d, want %d", corr, want)
	}
	body := frame[4:]
	if resp.IsFlexible() {
		if len(body) == 0 || body[0] != 0 {
			return fmt.Errorf("response header with tagged fields")
		}
		body = body[1:]
	}
	return resp.ReadFrom(body)
}

// wireProducer sends records as pre-built batches, one per partition per
// request, with up to wireInflight requests in flight.
type wireProducer struct {
	topic      string
	partitions int32
	valueSize  int
	perBatch   int      // records in a full batch
	full       [][]byte // a full batch per partition, patched in place per request
	pid        int64
	epoch      int16
	seq        []int32 // next base sequence per partition
	conn       *wireConn
	req        *kmsg.ProduceRequest
	parts      []kmsg.ProduceRequestTopicPartition // one per partition, in order
	resp       *kmsg.ProduceResponse
}

func newWireProducer(ctx context.Context, addr, topic string, partitions int32, valueSize int, idempotent bool) (*wireProducer, error) {
	p := &wireProducer{topic: topic, partitions: partitions, valueSize: valueSize, pid: -1, epoch: -1,
		perBatch: max(1, wireBatchBytes/(valueSize+8)), seq: make([]int32, partitions)}
	conn, err := dialWire(ctx, addr)
	if err != nil {
		return nil, err
	}
	p.conn = conn
	if idempotent {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.Version = 0
		init.TransactionTimeoutMillis = 60000
		if err := conn.send(init); err != nil {
			conn.close()
			return nil, err
		}
		resp := init.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.Version = init.Version
		if err := conn.recv(resp); err != nil {
			conn.close()
			return nil, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			conn.close()
			return nil, fmt.Errorf("InitProducerId: %w", err)
		}
		p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
	}
	for range partitions {
		b, _ := enginetest.NewBatch(0, p.perBatch, valueSize, time.Now().UnixMilli(), 1)
		p.full = append(p.full, b)
	}
	p.req = kmsg.NewPtrProduceRequest()
	p.req.Version = wireProduceVersion
	p.req.Acks = -1
	p.req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	p.req.Topics = append(p.req.Topics, rt)
	for i := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = i
		p.parts = append(p.parts, rp)
	}
	p.resp = p.req.ResponseKind().(*kmsg.ProduceResponse)
	return p, nil
}

func (p *wireProducer) close() { p.conn.close() }

// stamp sets the producer fields of batch b for partition i and the next
// sequence, and recomputes its CRC.
func (p *wireProducer) stamp(b []byte, i int32, records int) {
	be := binary.BigEndian
	be.PutUint64(b[43:], uint64(p.pid))
	be.PutUint16(b[51:], uint16(p.epoch))
	seq := int32(-1)
	if p.pid >= 0 {
		seq = p.seq[i]
		p.seq[i] += int32(records)
	}
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[17:], engine.Checksum(b[engine.CRCStart:]))
}

// produce sends n records and waits for every response, failing on any
// error code.
func (p *wireProducer) produce(n int) error {
	left := n
	for left > 0 || len(p.conn.pending) > 0 {
		if left > 0 && len(p.conn.pending) < wireInflight {
			used := 0
			for i := range p.partitions {
				if left == 0 {
					break
				}
				k := min(left, p.perBatch)
				b := p.full[i]
				if k < p.perBatch {
					b, _ = enginetest.NewBatch(0, k, p.valueSize, time.Now().UnixMilli(), 1)
				}
				p.stamp(b, i, k)
				p.parts[i].Records = b
				used++
				left -= k
			}
			p.req.Topics[0].Partitions = p.parts[:used]
			if err := p.conn.send(p.req); err != nil {
				return err
			}
			continue
		}
		p.resp.Version = p.req.Version
		p.resp.Topics = p.resp.Topics[:0]
		if err := p.conn.recv(p.resp); err != nil {
			return err
		}
		for _, t := range p.resp.Topics {
			for _, rp := range t.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("produce to %s[%d]: %w", t.Topic, rp.Partition, err)
				}
			}
		}
	}
	return nil
}

// benchProduceWire produces b.N records of size bytes to a new topic with
// conns wire producers, each on its own connection with its own producer
// id, producing its share of the records at the same time.
func (r *brokerRun) benchProduceWire(b *testing.B, size, conns int) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	topic := r.newTopic(ctx, b, fmt.Sprintf("wire-produce-%d", size))
	defer r.deleteTopic(ctx, b, topic)
	ps := make([]*wireProducer, conns)
	for i := range ps {
		p, err := newWireProducer(ctx, r.addr, topic, brokerPartitions, size, r.idempotent)
		if err != nil {
			b.Fatalf("%s: %v", r.name, err)
		}
		defer p.close()
		ps[i] = p
	}
	settle()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := r.cpu()
	b.ResetTimer()
	err := shares(b.N, conns, func(i, n int) error { return ps[i].produce(n) })
	b.StopTimer()
	r.reportCPU(b, cpu)
	if err != nil {
		b.Fatalf("%s: produce: %v", r.name, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if got, want := r.endOffsets(ctx, b, topic), int64(b.N); got != want {
		b.Fatalf("%s: %s holds %d records, produced %d", r.name, topic, got, want)
	}
}

// shares splits n into parts as even as can be and runs fn(i, part i) for
// each on its own goroutine, returning the first error.
func shares(n, parts int, fn func(i, n int) error) error {
	errs := make(chan error, parts)
	for i := range parts {
		k := n / parts
		if i < n%parts {
			k++
		}
		go func() { errs <- fn(i, k) }()
	}
	var first error
	for range parts {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// benchConsumeWire reads b.N records of size bytes from the consume
// fixture with conns wire consumers at the same time, each on its own
// connection reading its share.
func (r *brokerRun) benchConsumeWire(b *testing.B, size, conns int) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	f := r.fixture(ctx, b, size)
	cs := make([]*wireConsumer, conns)
	for i := range cs {
		c, err := newWireConsumer(ctx, r.addr, f, size)
		if err != nil {
			b.Fatal(err)
		}
		defer c.close()
		cs[i] = c
	}
	settle()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := r.cpu()
	b.ResetTimer()
	err := shares(b.N, conns, func(i, n int) error { return cs[i].consume(n) })
	b.StopTimer()
	r.reportCPU(b, cpu)
	if err != nil {
		b.Fatalf("%s: consume: %v", r.name, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// wireConsumer reads a fixture with one fetch in flight, as a consumer
// has per broker, with kgo's default limits (50 MiB a response, 1 MiB a
// partition), in passes from offset 0.
type wireConsumer struct {
	f    *fixture
	size int
	conn *wireConn
	req  *kmsg.FetchRequest
	resp *kmsg.FetchResponse
	pass int // records read in the current pass
}

func newWireConsumer(ctx context.Context, addr string, f *fixture, size int) (*wireConsumer, error) {
	conn, err := dialWire(ctx, addr)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = wireFetchVersion
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = f.topic
	for i := range int32(brokerPartitions) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = i
		rp.PartitionMaxBytes = 1 << 20
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return &wireConsumer{f: f, size: size, conn: conn, req: req, resp: req.ResponseKind().(*kmsg.FetchResponse)}, nil
}

func (c *wireConsumer) close() { c.conn.close() }

// consume reads at least n records.
func (c *wireConsumer) consume(n int) error {
	parts := c.req.Topics[0].Partitions
	for got := 0; got < n; {
		if c.pass == c.f.records { // a new pass from the start
			c.pass = 0
			for i := range parts {
				parts[i].FetchOffset = 0
			}
		}
		if err := c.conn.send(c.req); err != nil {
			return err
		}
		c.resp.Version = c.req.Version
		c.resp.Topics = c.resp.Topics[:0]
		if err := c.conn.recv(c.resp); err != nil {
			return err
		}
		for _, t := range c.resp.Topics {
			for _, rp := range t.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("fetch %s[%d]: %w", t.Topic, rp.Partition, err)
				}
				if rp.Partition < 0 || int(rp.Partition) >= len(parts) {
					return fmt.Errorf("fetch answered partition %d", rp.Partition)
				}
				fp := &parts[rp.Partition]
				k, next, err := countBatches(rp.RecordBatches, fp.FetchOffset, c.size)
				if err != nil {
					return fmt.Errorf("fetch %s[%d]@%d: %w", t.Topic, rp.Partition, fp.FetchOffset, err)
				}
				fp.FetchOffset = next
				got += k
				c.pass += k
			}
		}
		if c.pass > c.f.records {
			return fmt.Errorf("a pass returned %d records of a %d-record fixture", c.pass, c.f.records)
		}
	}
	return nil
}

// countBatches walks the record batches of a fetched partition by their
// headers, as a consumer does before decoding records: it counts the
// records at or after from in complete uncompressed batches whose size
// fits size-byte values, and returns the offset to fetch next. A trailing
// partial batch (cut by the byte limits) is left for the next fetch.
func countBatches(data []byte, from int64, size int) (n int, next int64, err error) {
	next = from
	for len(data) >= engine.BatchHeaderSize {
		h, err := engine.ParseBatchHeader(data)
		if err != nil {
			return n, next, err
		}
		total := h.Size()
		if total > len(data) {
			break
		}
		if h.RecordCount <= 0 || total-engine.BatchHeaderSize < int(h.RecordCount)*size {
			return n, next, fmt.Errorf("batch at %d: %d records in %d bytes of %d-byte values", h.BaseOffset, h.RecordCount, total, size)
		}
		last := h.LastOffset()
		if last >= next {
			n += int(last - max(h.BaseOffset, next) + 1)
			next = last + 1
		}
		data = data[total:]
	}
	return n, next, nil
}
