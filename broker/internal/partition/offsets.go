package partition

// ListOffsets' answers: by position and by time, the one place the broker
// looks into records (a batch found by time is scanned for its first
// matching record, decompressed if needed).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

// decompressor decompresses batch payloads where the broker must look at
// records (ListOffsets by time); the data path never does.
var decompressor = kgo.DefaultDecompressor()

// findRecord returns the offset and timestamp of the first record of the
// batch, at or after minOffset, whose timestamp satisfies match. In a
// LogAppendTime batch every record has the batch's max timestamp.
func findRecord(batch []byte, minOffset int64, match func(ts int64) bool) (offset, ts int64, ok bool, err error) {
	h, err := engine.ParseBatchHeader(batch)
	if err != nil {
		return 0, 0, false, err
	}
	if len(batch) < h.Size() {
		return 0, 0, false, fmt.Errorf("%w: batch truncated", engine.ErrInvalidBatch)
	}
	if h.Attributes&engine.AttrLogAppendTime != 0 {
		if !match(h.MaxTimestamp) || h.LastOffset() < minOffset {
			return 0, 0, false, nil
		}
		return max(h.BaseOffset, minOffset), h.MaxTimestamp, true, nil
	}
	payload := batch[engine.BatchHeaderSize:h.Size()]
	if codec := h.Attributes & engine.AttrCompressionMask; codec != 0 {
		payload, err = decompressor.Decompress(payload, kgo.CompressionCodecType(codec))
		if err != nil {
			return 0, 0, false, fmt.Errorf("broker: decompressing a batch at %d: %w", h.BaseOffset, err)
		}
	}
	for i := int32(0); i < h.RecordCount && len(payload) > 0; i++ {
		length, n := kbin.Varint(payload)
		if n == 0 || length < 0 || int(length) > len(payload)-n {
			return 0, 0, false, fmt.Errorf("%w: record %d of the batch at %d is malformed", engine.ErrInvalidBatch, i, h.BaseOffset)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(payload[:n+int(length)]); err != nil {
			return 0, 0, false, fmt.Errorf("%w: record %d of the batch at %d: %v", engine.ErrInvalidBatch, i, h.BaseOffset, err)
		}
		payload = payload[n+int(length):]
		off := h.BaseOffset + int64(rec.OffsetDelta)
		rts := h.BaseTimestamp + rec.TimestampDelta64
		if off >= minOffset && match(rts) {
			return off, rts, true, nil
		}
	}
	return 0, 0, false, nil
}

// Timestamps of ListOffsets that ask for a position rather than a time.
const (
	ListLatest        = -1 // the high watermark
	ListEarliest      = -2 // the log start
	ListMaxTimestamp  = -3 // the record with the largest timestamp (KIP-734)
	ListEarliestLocal = -4 // the log start, as nothing is tiered away (KIP-405)
)

// ListOffset answers ListOffsets for partition tp, which this broker must
// lead at currentEpoch (Manager.Leader's errors): for a timestamp >= 0 the
// first record whose timestamp is >= it, else the position the constant
// names. A client finds only committed records, below the high watermark;
// none found is offset and timestamp -1. epoch is the partition's leader
// epoch. Any other negative timestamp is UNSUPPORTED_VERSION.
func (m *Manager) ListOffset(ctx context.Context, tp engine.TopicPartition, currentEpoch int32, timestamp int64) (offset, ts int64, epoch int32, err error) {
	p, st, err := m.Leader(ctx, tp, currentEpoch)
	if err != nil {
		return -1, -1, -1, err
	}
	epoch = st.LeaderEpoch
	start, _ := p.log.Offsets()
	hw := p.HighWatermark()
	switch t := timestamp; {
	case t == ListLatest:
		return hw, -1, epoch, nil
	case t == ListEarliest, t == ListEarliestLocal:
		return start, -1, epoch, nil
	case t == ListMaxTimestamp:
		offset, ts, err = p.offsetOfMaxTimestamp(ctx)
	case t < 0:
		return -1, -1, -1, errUnsupportedTimestamp
	default:
		offset, ts, err = p.offsetForTime(ctx, t, start, hw)
	}
	if err != nil {
		return -1, -1, -1, err
	}
	if offset >= hw {
		offset, ts = -1, -1
	}
	return offset, ts, epoch, nil
}

var errUnsupportedTimestamp = &kafkaerr.Error{Code: kerr.UnsupportedVersion.Code, Msg: "UNSUPPORTED_VERSION: no such special timestamp"}

// offsetForTime returns the first record at or after the log start whose
// timestamp is >= ts, or -1, -1.
func (p *Partition) offsetForTime(ctx context.Context, ts, start, end int64) (int64, int64, error) {
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
func (p *Partition) scanFrom(ctx context.Context, from, minOffset int64, match func(int64) bool) (off, ts, next int64, ok bool, err error) {
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
func (p *Partition) offsetOfMaxTimestamp(ctx context.Context) (int64, int64, error) {
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
func (p *Partition) scanMaxTimestamp(ctx context.Context, start int64) (*maxTimestamp, error) {
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
