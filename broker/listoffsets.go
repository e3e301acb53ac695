package broker

// ListOffsets (key 2): versions 0–8.
//
// Served: timestamp -1 (latest: the high watermark, which is also the last
// stable offset, as there are no transactions), -2 (earliest: the log
// start), -3 (v7+, KIP-734: the record with the largest timestamp and that
// timestamp), -4 (v8, KIP-405 earliest local: the log start, as nothing is
// tiered) and a timestamp >= 0: the first record whose timestamp is >= it,
// found with the engine's OffsetForTime and then a scan of that batch's
// records (decompressed if needed; in a LogAppendTime batch every record
// has the batch's max timestamp). No such record: offset and timestamp -1.
// v0 answers in old_style_offsets with at most one offset. The leader
// epoch returned (v4+) is the partition's current one; a current leader
// epoch other than ours is FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH.
//
// Left out: v0's list of segment base offsets (max_num_offsets > 1 gets
// one offset); -5 (v9+, remote storage) is not served.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
)

func handleListOffsets(ctx context.Context, c *conn, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	ctx = context.WithoutCancel(ctx)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := engine.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			var err error
			sp.ErrorCode, sp.Offset, sp.Timestamp, sp.LeaderEpoch, err = c.b.listOffset(ctx, tp, rp, req.Version)
			if err != nil {
				c.b.log.Warn("list offsets", "partition", tp.String(), "err", err)
			}
			if req.Version == 0 {
				sp.OldStyleOffsets = []int64{}
				if sp.ErrorCode == 0 && sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = append(sp.OldStyleOffsets, sp.Offset)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// listOffset answers one partition.
func (b *Broker) listOffset(ctx context.Context, tp engine.TopicPartition, rp *kmsg.ListOffsetsRequestTopicPartition, version int16) (code int16, offset, ts int64, epoch int32, err error) {
	p := b.parts.get(ctx, tp)
	if p == nil {
		return b.missingPartitionCode(tp), -1, -1, -1, nil
	}
	if p.openErr != nil {
		return kafkaerr.Code(p.openErr), -1, -1, -1, nil
	}
	st := p.state.Load()
	if !st.leader {
		return kerr.NotLeaderForPartition.Code, -1, -1, -1, nil
	}
	if version >= 4 {
		if code := leaderEpochCheck(st, rp.CurrentLeaderEpoch); code != 0 {
			return code, -1, -1, -1, nil
		}
	}
	epoch = st.leaderEpoch
	// A client finds only committed records, below the high watermark.
	start, _ := p.log.Offsets()
	hw := p.highWatermark()
	switch t := rp.Timestamp; {
	case t == listLatest:
		return 0, hw, -1, epoch, nil
	case t == listEarliest, t == listEarliestLocal && version >= 8:
		return 0, start, -1, epoch, nil
	case t == listMaxTimestamp && version >= 7:
		offset, ts, err = p.offsetOfMaxTimestamp(ctx)
	case t < 0:
		return kerr.UnsupportedVersion.Code, -1, -1, -1, nil
	default:
		offset, ts, err = p.offsetForTime(ctx, t, start, hw)
	}
	if err != nil {
		return kafkaerr.Code(err), -1, -1, -1, err
	}
	if offset >= hw {
		offset, ts = -1, -1
	}
	return 0, offset, ts, epoch, nil
}

// offsetForTime returns the first record at or after the log start whose
// timestamp is >= ts, or -1, -1.
func (p *partition) offsetForTime(ctx context.Context, ts, start, end int64) (int64, int64, error) {
	from, err := p.log.OffsetForTime(ctx, ts)
	if err != nil {
		return -1, -1, err
	}
	// OffsetForTime found the first batch whose max timestamp qualifies,
	// so a record in it does; the loop only goes on if the batch is
	// malformed in a way that hid it, and stops at the end.
	for from < end {
		off, rts, next, ok, err := p.scanFrom(ctx, from, max(from, start), func(rts int64) bool { return rts >= ts })
		if err != nil || ok {
			return off, rts, err
		}
		if next <= from {
			break
		}
		from = next
	}
	return -1, -1, nil
}

// scanFrom reads the batches returned by one Read at from and looks for the
// first record at or after minOffset that matches. next is where to read
// on.
func (p *partition) scanFrom(ctx context.Context, from, minOffset int64, match func(int64) bool) (off, ts, next int64, ok bool, err error) {
	recs, err := p.log.Read(ctx, from, 1)
	if err != nil {
		return -1, -1, from, false, err
	}
	defer recs.Release()
	if recs.Empty() {
		return -1, -1, recs.NextOffset, false, nil
	}
	for _, chunk := range recs.Chunks {
		for len(chunk) > 0 {
			h, err := engine.ParseBatchHeader(chunk)
			if err != nil || h.Size() > len(chunk) {
				return -1, -1, from, false, errors.Join(err, engine.ErrCorrupt)
			}
			off, ts, ok, err = findRecord(chunk[:h.Size()], minOffset, match)
			if err != nil || ok {
				return off, ts, 0, ok, err
			}
			chunk = chunk[h.Size():]
		}
	}
	return -1, -1, recs.NextOffset, false, nil
}

// offsetOfMaxTimestamp returns the first record holding the log's largest
// timestamp, or -1, -1 for an empty log. The batch holding it is found by a
// scan of the batch headers on first use and kept current by appends.
func (p *partition) offsetOfMaxTimestamp(ctx context.Context) (int64, int64, error) {
	start, end := p.log.Offsets()
	if start == end {
		return -1, -1, nil
	}
	p.maxTimeMu.Lock()
	mt := p.maxTime
	p.maxTimeMu.Unlock()
	if mt == nil || mt.end != end || mt.batchBase < start {
		var err error
		if mt, err = p.scanMaxTimestamp(ctx, start); err != nil {
			return -1, -1, err
		}
		p.maxTimeMu.Lock()
		if _, e := p.log.Offsets(); e == mt.end {
			p.maxTime = mt
		}
		p.maxTimeMu.Unlock()
	}
	if mt.ts < 0 {
		return -1, -1, nil
	}
	off, ts, _, ok, err := p.scanFrom(ctx, mt.batchBase, start, func(rts int64) bool { return rts == mt.ts })
	if err != nil || !ok {
		return -1, -1, err
	}
	return off, ts, nil
}

// scanMaxTimestamp walks every batch header from start to the end.
func (p *partition) scanMaxTimestamp(ctx context.Context, start int64) (*maxTimestamp, error) {
	mt := &maxTimestamp{ts: -1, batchBase: -1}
	from := start
	for {
		_, end := p.log.Offsets()
		if from >= end {
			mt.end = from
			return mt, nil
		}
		recs, err := p.log.Read(ctx, from, 1<<20)
		if err != nil {
			return nil, err
		}
		for _, chunk := range recs.Chunks {
			for len(chunk) >= engine.BatchHeaderSize {
				h, err := engine.ParseBatchHeader(chunk)
				if err != nil || h.Size() > len(chunk) {
					recs.Release()
					return nil, errors.Join(err, engine.ErrCorrupt)
				}
				if h.MaxTimestamp > mt.ts {
					mt.ts, mt.batchBase = h.MaxTimestamp, h.BaseOffset
				}
				chunk = chunk[h.Size():]
			}
		}
		next := recs.NextOffset
		recs.Release()
		if next <= from {
			mt.end = from
			return mt, nil
		}
		from = next
	}
}
