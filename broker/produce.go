package broker

// Produce (key 0): versions 0–10, with magic-2 record batches only.
//
//   - Versions: v3 is the first whose clients must send magic-2 batches,
//     and the one every current client uses. v0–v2 are advertised too,
//     because librdkafka before 2.11.1 (the Debian and confluent-kafka
//     releases among them) decides that a broker can take gzip and snappy
//     batches only if it lists Produce v0; it still produces with v3+ and
//     magic 2. A v0–v2 request carrying magic-0 or magic-1 message sets
//     gets UNSUPPORTED_FOR_MESSAGE_FORMAT: Strata stores only magic-2
//     batches and does not convert old formats.
//   - Served: acks 0, 1 and -1. Each partition through
//     partition.Manager.Leader, partition.ValidateBatches (nothing is
//     appended on any failure) and Partition.Append (offsets patched in
//     place, never re-encoded; idempotent producers checked, a retried
//     duplicate answered with its original offset; group commit with the
//     requests of other connections). The response carries the base
//     offset, log append time and log start offset, and (v8+) an error
//     message.
//   - acks=0 gets no response; if any partition failed, the connection is
//     closed after the earlier responses, as Kafka does, so the client
//     refreshes its metadata.
//   - acks=-1 is refused with NOT_ENOUGH_REPLICAS, before anything is
//     appended, when the ISR is smaller than min.insync.replicas; it
//     answers once the high watermark passed the request's appends,
//     waiting on its own goroutine (a later) up to timeout_ms:
//     REQUEST_TIMED_OUT after it, NOT_LEADER_OR_FOLLOWER if leadership
//     moved meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank
//     below min.insync.replicas.
//   - The partitions of a request of 256 KiB or more are appended in
//     parallel, one goroutine per core (each partition has its own
//     appender); the response keeps the request's order.
//   - Internal topics (__consumer_offsets) are refused with
//     INVALID_TOPIC_EXCEPTION, "Cannot append to internal topic", as Kafka
//     refuses them to every client but its own admin tooling.
//   - Left out: transactions (transactional batches get
//     INVALID_TXN_STATE); KIP-951 leader hints (current_leader,
//     node_endpoints).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/engine"
)

func handleProduce(ctx context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	n, size := 0, 0
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		n += len(rt.Partitions)
		for j := range rt.Partitions {
			size += len(rt.Partitions[j].Records)
		}
	}
	// pend holds the acks=all answers that wait for the in-sync
	// replicas; it is allocated only when one does.
	var pend []pendingAck
	if workers := min(runtime.GOMAXPROCS(0), n); workers > 1 && size >= parallelProduceBytes && distinctPartitions(req) {
		// The closure and its state are allocated only here, off the
		// path of small requests.
		var mu sync.Mutex
		var ppend []pendingAck
		produceParallel(req, workers, func(i, j int) {
			var pa pendingAck
			resp.Topics[i].Partitions[j], pa = c.b.producePartition(ctx, req, req.Topics[i].Topic, &req.Topics[i].Partitions[j])
			if pa.p != nil {
				pa.i, pa.j = i, j
				mu.Lock()
				ppend = append(ppend, pa)
				mu.Unlock()
			}
		})
		pend = ppend
	} else {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				var pa pendingAck
				resp.Topics[i].Partitions[j], pa = c.b.producePartition(ctx, req, req.Topics[i].Topic, &req.Topics[i].Partitions[j])
				if pa.p != nil {
					pa.i, pa.j = i, j
					pend = append(pend, pa)
				}
			}
		}
	}
	failed := false
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			failed = failed || resp.Topics[i].Partitions[j].ErrorCode != 0
		}
	}
	if req.Acks == 0 {
		return result{closeConn: failed}, nil
	}
	if len(pend) > 0 {
		timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
		return result{}, func(ctx context.Context) result {
			awaitAcks(ctx, timeout, resp, pend)
			return result{resp: resp}
		}
	}
	return result{resp: resp}, nil
}

// parallelProduceBytes is the request size from which the partitions of
// one produce request are appended in parallel. Each partition has its own
// log and appender, so the copies into the page cache (and the CRC checks)
// of a large request spread over the cores instead of running one after
// another on the connection's goroutine; below it a goroutine per
// partition costs more than it saves.
const parallelProduceBytes = 256 << 10

// produceParallel runs one(topic, partition) for every partition of req on
// workers goroutines and returns when all are done. The request's order
// is kept in the response, which the caller filled by index.
func produceParallel(req *kmsg.ProduceRequest, workers int, one func(i, j int)) {
	type item struct{ i, j int }
	items := make([]item, 0, 8)
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			items = append(items, item{i, j})
		}
	}
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := int(next.Add(1)) - 1; k < len(items); k = int(next.Add(1)) - 1 {
				one(items[k].i, items[k].j)
			}
		})
	}
	wg.Wait()
}

// distinctPartitions reports whether no partition appears twice in req:
// batches for one partition must be appended in the request's order, so
// such a request is appended sequentially.
func distinctPartitions(req *kmsg.ProduceRequest) bool {
	seen := make(map[engine.TopicPartition]struct{}, 8)
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			tp := engine.TopicPartition{Topic: req.Topics[i].Topic, Partition: req.Topics[i].Partitions[j].Partition}
			if _, ok := seen[tp]; ok {
				return false
			}
			seen[tp] = struct{}{}
		}
	}
	return true
}

// producePartition appends the batches of one partition and answers for it.
// An acks=all append the in-sync replicas do not have yet is returned as
// a pendingAck (p set), whose answer awaitAcks completes.
func (b *Broker) producePartition(ctx context.Context, req *kmsg.ProduceRequest, topic string, rp *kmsg.ProduceRequestTopicPartition) (kmsg.ProduceResponseTopicPartition, pendingAck) {
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	fail := func(code int16, msg string) (kmsg.ProduceResponseTopicPartition, pendingAck) {
		sp.ErrorCode = code
		if msg != "" {
			sp.ErrorMessage = &msg
		}
		return sp, pendingAck{}
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return fail(kerr.InvalidRequiredAcks.Code, "")
	}
	if isInternalTopic(topic) {
		// Only the broker writes its internal topics.
		return fail(kerr.InvalidTopicException.Code, "Cannot append to internal topic "+topic)
	}
	tp := engine.TopicPartition{Topic: topic, Partition: rp.Partition}
	p, st, err := b.parts.Leader(ctx, tp, -1)
	if err != nil {
		msg := ""
		if errors.Is(err, kafkaerr.ErrPartitionUnavailable) {
			msg = err.Error()
		}
		return fail(kafkaerr.Code(err), msg)
	}
	if req.Acks == -1 && int32(len(st.ISR)) < st.Settings.MinInsync {
		return fail(kerr.NotEnoughReplicas.Code, fmt.Sprintf("%d in-sync replicas, min.insync.replicas is %d", len(st.ISR), st.Settings.MinInsync))
	}
	batches, berr := partition.ValidateBatches(rp.Records, st.Settings.MaxMessageBytes, req.Version)
	if berr != nil {
		b.log.Debug("produce rejected", "partition", tp.String(), "code", berr.Code, "err", berr.Msg)
		return fail(berr.Code, berr.Msg)
	}
	res, err := p.Append(ctx, st, batches)
	if err != nil {
		var ke *kafkaerr.Error
		if errors.As(err, &ke) {
			// A producer check failed: nothing was appended. The log
			// start offset goes with the error, as Kafka sends it, so
			// franz-go can tell retention from a gap.
			b.log.Debug("produce rejected", "partition", tp.String(), "code", ke.Code, "err", ke.Msg)
			sp, _ = fail(ke.Code, ke.Msg)
			sp.LogStartOffset = res.Start
			return sp, pendingAck{}
		}
		b.log.Warn("append failed", "partition", tp.String(), "err", err)
		return fail(kafkaerr.Code(err), err.Error())
	}
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.Base, res.AppendTime, res.Start
	if req.Acks == -1 {
		if done, code := p.AckState(res.Last, st.LeaderEpoch); !done {
			return sp, pendingAck{p: p, last: res.Last, epoch: st.LeaderEpoch}
		} else if code != 0 {
			return fail(code, "")
		}
	}
	return sp, pendingAck{}
}

// pendingAck is an acks=all answer waiting for the in-sync replicas.
type pendingAck struct {
	p     *partition.Partition
	last  int64 // the last offset appended
	epoch int32 // the leader epoch appended at
	i, j  int   // where its answer is in the response
}

// awaitAcks waits, within the request's timeout, for the in-sync replicas
// to have every pending append, and sets the error of those that failed:
// REQUEST_TIMED_OUT, NOT_LEADER_OR_FOLLOWER if leadership moved, or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
// min.insync.replicas.
func awaitAcks(ctx context.Context, timeout time.Duration, resp *kmsg.ProduceResponse, pend []pendingAck) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, pa := range pend {
		if err := pa.p.AwaitReplicated(ctx, pa.last, pa.epoch); err != nil {
			sp := &resp.Topics[pa.i].Partitions[pa.j]
			sp.ErrorCode = kafkaerr.Code(err)
			sp.BaseOffset, sp.LogAppendTime = -1, -1
		}
	}
}
