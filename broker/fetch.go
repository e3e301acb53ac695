package broker

// Fetch (key 1): versions 4–13 (v13 names topics by id).
//
//   - Served: each partition through partition.Manager.Leader and
//     Partition.Fetch: whole batches until the partition's and then the
//     response's max bytes, the first batch of the response even if larger
//     (KIP-74), never part of one; consumers below the high watermark
//     (the last stable offset equals it: no transactions), followers
//     (replica_id >= 0) to the log end, their fetch being their position
//     (it may advance the high watermark or bring them back into the ISR).
//     v12+'s last_fetched_epoch, when the log's history does not have it
//     up to the fetch offset, is answered with the diverging epoch and no
//     records. Out of range is OFFSET_OUT_OF_RANGE; an unknown topic id
//     UNKNOWN_TOPIC_ID; a current leader epoch (v9+) other than ours
//     FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH.
//   - Behaviour: the batches go into the response as the engine returned
//     them; a partition with 16 KiB or more of them is sent straight from
//     the engine's memory by one vectored write (splice.go), smaller ones
//     are copied into the encoding; the engine's pins are released once
//     the response is on the wire. If fewer than min_bytes are ready (and
//     nothing failed), the fetch parks on the partitions' notifiers until
//     data arrives, max_wait_ms passes, or the connection or broker
//     closes: no polling.
//   - Fetch sessions (KIP-227, v7+): none are created. Session id 0 is
//     answered with session id 0 ("no session": the client sends full
//     requests); a request naming a session gets
//     FETCH_SESSION_ID_NOT_FOUND; forgotten_topics are ignored.
//   - Left out: preferred read replicas (KIP-392: always -1), aborted
//     transactions (none exist).

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/engine"
)

func handleFetch(ctx context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.FetchRequest)
	if req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return result{resp: resp}, nil
	}
	f := &fetch{b: c.b, req: req}
	f.run(ctx)
	if f.ready() {
		return f.result(), nil
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	if hook := testHookFetchParked.Load(); hook != nil {
		(*hook)()
	}
	return result{}, func(ctx context.Context) result {
		f.park(ctx, deadline)
		return f.result()
	}
}

// testHookFetchParked, if set, is called when a fetch parks (tests).
var testHookFetchParked atomic.Pointer[func()]

// fetch is one fetch request and its latest attempt at an answer.
type fetch struct {
	b   *Broker
	req *kmsg.FetchRequest

	resp   *kmsg.FetchResponse
	pins   []engine.Releaser
	bytes  int
	failed bool
	// spliced holds, per placeholder, the records the writer sends in
	// its place (splice.go); splicedBytes is their total.
	spliced      [][][]byte
	splicedBytes int
	waits        []<-chan struct{} // one per partition read: closed by its next append
}

// ready reports whether the attempt can be the answer now.
func (f *fetch) ready() bool {
	return f.failed || f.bytes >= int(f.req.MinBytes) || f.req.MaxWaitMillis <= 0
}

func (f *fetch) result() result {
	return result{resp: f.resp, pins: f.pins, bulk: f.bytes - f.splicedBytes, spliced: f.spliced}
}

// park waits for an append to any partition read, then tries again, until
// the attempt is ready, the deadline passes or ctx ends.
func (f *fetch) park(ctx context.Context, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	cases := make([]reflect.SelectCase, 0, len(f.waits)+2)
	for !f.ready() {
		cases = cases[:0]
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, w := range f.waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
		}
		if len(f.waits) == 0 {
			cases = cases[:2] // nothing can wake us but time
		}
		if i, _, _ := reflect.Select(cases); i < 2 {
			return // answer with what the last attempt has
		}
		f.release()
		f.run(ctx)
	}
}

// release drops the last attempt's pins (it will not be sent).
func (f *fetch) release() {
	for _, pin := range f.pins {
		pin.Release()
	}
	f.pins = nil
}

// run makes one attempt: it reads every partition and builds the response.
func (f *fetch) run(ctx context.Context) {
	req := f.req
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.resp, f.bytes, f.failed, f.waits = resp, 0, false, f.waits[:0]
	f.spliced, f.splicedBytes = nil, 0
	budget := int(req.MaxBytes)
	snap := f.b.coord.Snapshot()
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, unknownID := rt.Topic, false
		if req.Version >= 13 {
			if t := snap.TopicsByID[rt.TopicID]; t != nil {
				name = t.Name
			} else {
				unknownID = true
			}
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			// Empty, never null: librdkafka fails to parse a null
			// record set (size -1) and retries forever; Kafka always
			// sends an empty one, on errors too.
			sp.RecordBatches = []byte{}
			if unknownID {
				sp.ErrorCode = kerr.UnknownTopicID.Code
			} else {
				f.partition(ctx, engine.TopicPartition{Topic: name, Partition: rp.Partition}, rp, &sp, &budget)
			}
			f.failed = f.failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
}

// partition reads one partition into sp, within its max bytes and what is
// left of the response's budget.
func (f *fetch) partition(ctx context.Context, tp engine.TopicPartition, rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, budget *int) {
	current := int32(-1)
	if f.req.Version >= 9 {
		current = rp.CurrentLeaderEpoch
	}
	p, st, err := f.b.parts.Leader(ctx, tp, current)
	if err != nil {
		sp.ErrorCode = kafkaerr.Code(err)
		return
	}
	f.waits = append(f.waits, p.WaitChan()) // before reading: see appends after the read
	fp := partition.FetchParams{ReplicaID: f.req.ReplicaID, Offset: rp.FetchOffset, LastFetchedEpoch: -1, MaxBytes: int(rp.PartitionMaxBytes)}
	if f.req.Version >= 12 {
		fp.LastFetchedEpoch = rp.LastFetchedEpoch
	}
	res, err := p.Fetch(ctx, st, fp, budget, f.bytes == 0, &f.pins)
	sp.ErrorCode = kafkaerr.Code(err)
	sp.LogStartOffset, sp.HighWatermark, sp.LastStableOffset = res.LogStart, res.HighWatermark, res.HighWatermark
	sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = res.DivergingEpoch, res.DivergingEnd
	f.bytes += res.Bytes
	chunks, total := res.Chunks, res.Bytes
	switch {
	case len(chunks) == 0: // RecordBatches stays empty
	case total >= spliceMin:
		// Sent from the engine's memory by the writer (splice.go).
		sp.RecordBatches = placeholder(len(f.spliced))
		f.spliced = append(f.spliced, chunks)
		f.splicedBytes += total
	case len(chunks) == 1:
		sp.RecordBatches = chunks[0]
	default:
		buf := getBuffer(total)
		buf.b = buf.b[:0]
		for _, c := range chunks {
			buf.b = append(buf.b, c...)
		}
		sp.RecordBatches = buf.b
		f.pins = append(f.pins, buf)
	}
}
