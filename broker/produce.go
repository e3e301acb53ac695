package broker

// Produce (key 0): versions 3–10 (v3 is the first with magic-2 batches).
//
// Served: acks 0, 1 and -1; each partition's record batches are validated
// (batch.go) without touching the log on any failure, assigned offsets by
// patching the header in place (never re-encoded), and appended by the
// partition's one appender; LogAppendTime topics get the append time; the
// response carries the base offset, log append time and log start offset,
// and (v8+) an error message. acks=0 gets no response; if any partition
// failed, the connection is closed after the earlier responses, as Kafka
// does, so the client refreshes its metadata. acks=-1 answers once the
// append returned: with one replica that is the high watermark, and
// partition.awaitReplicated is where replication will wait.
// min.insync.replicas is checked against the ISR size.
//
// Left out: idempotence and transactions. Batches with a producer id are
// accepted as plain appends (no sequence checks or duplicate detection)
// until InitProducerId is served, which the broker does not advertise, so
// clients do not ask for producer ids; transactional batches get
// INVALID_TXN_STATE. timeout_ms is not needed while acks=-1 does not wait.
// KIP-951 leader hints (current_leader, node_endpoints) are not sent.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

func handleProduce(ctx context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	failed := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			sp := c.b.producePartition(ctx, req, rt.Topic, &rt.Partitions[j])
			failed = failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return result{closeConn: failed}, nil
	}
	return result{resp: resp}, nil
}

// producePartition appends the batches of one partition and answers for it.
func (b *Broker) producePartition(ctx context.Context, req *kmsg.ProduceRequest, topic string, rp *kmsg.ProduceRequestTopicPartition) kmsg.ProduceResponseTopicPartition {
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	fail := func(code int16, msg string) kmsg.ProduceResponseTopicPartition {
		sp.ErrorCode = code
		if msg != "" {
			sp.ErrorMessage = &msg
		}
		return sp
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return fail(kerr.InvalidRequiredAcks.Code, "")
	}
	tp := engine.TopicPartition{Topic: topic, Partition: rp.Partition}
	p := b.parts.get(ctx, tp)
	if p == nil {
		return fail(b.missingPartitionCode(tp), "")
	}
	if p.openErr != nil {
		return fail(errorCode(p.openErr), p.openErr.Error())
	}
	st := p.state.Load()
	if !st.leader {
		return fail(kerr.NotLeaderForPartition.Code, "")
	}
	if req.Acks == -1 && int32(st.isr) < st.settings.minInsync {
		return fail(kerr.NotEnoughReplicas.Code, "")
	}
	batches, berr := validateBatches(rp.Records, st.settings.maxMessageBytes, req.Version)
	if berr != nil {
		b.log.Debug("produce rejected", "partition", tp.String(), "code", berr.code, "err", berr.msg)
		return fail(berr.code, berr.msg)
	}

	appendTime := int64(-1)
	if st.settings.logAppendTime {
		appendTime = time.Now().UnixMilli()
	}
	base, start, err := p.append(ctx, batches, st.leaderEpoch, appendTime)
	if err != nil {
		b.log.Warn("append failed", "partition", tp.String(), "err", err)
		return fail(errorCode(err), err.Error())
	}
	if req.Acks == -1 {
		if err := p.awaitReplicated(ctx, base); err != nil {
			return fail(errorCode(err), err.Error())
		}
	}
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = base, appendTime, start
	return sp
}

// append assigns offsets to the validated batches and appends them, as the
// partition's one appender. It returns the first batch's base offset and
// the log start offset.
func (p *partition) append(ctx context.Context, batches []inBatch, leaderEpoch int32, appendTime int64) (base, start int64, err error) {
	// A request whose client went away still appends what it validated:
	// stopping half-way through a request's batches would help no one.
	ctx = context.WithoutCancel(ctx)
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if p.closed {
		return 0, 0, engine.ErrClosed
	}
	_, end := p.log.Offsets()
	base = end
	appended := false
	defer func() {
		if appended {
			p.wake()
		}
	}()
	for i := range batches {
		meta := patchBatch(&batches[i], end, leaderEpoch, appendTime)
		if err := p.log.Append(ctx, meta, batches[i].b); err != nil {
			return 0, 0, err
		}
		appended = true
		p.observeAppend(meta)
		end = meta.LastOffset + 1
	}
	start, _ = p.log.Offsets()
	return base, start, nil
}

// missingPartitionCode is the error for a partition this broker does not
// hold: NOT_LEADER if it exists elsewhere, UNKNOWN_TOPIC_OR_PARTITION if
// not at all.
func (b *Broker) missingPartitionCode(tp engine.TopicPartition) int16 {
	if t := b.coord.Snapshot().Topics[tp.Topic]; t != nil {
		for _, sp := range t.Partitions {
			if sp.Index == tp.Partition {
				return kerr.NotLeaderForPartition.Code
			}
		}
	}
	return kerr.UnknownTopicOrPartition.Code
}
