package partition

// Retention: a background loop raises the start offset of every open
// partition log whose topic's cleanup.policy includes delete, once every
// log.retention.check.interval.ms (a time.Ticker; stopped by Shutdown
// before the logs close).
//
// retention.ms (negative: forever): the batches whose max timestamp is
// older than now - retention.ms go. The new start is OffsetForTime(now -
// retention.ms), the first batch with max timestamp >= the cutoff, so, as
// in Kafka, a batch with an old timestamp after a newer one stays until
// everything before it has gone.
//
// retention.bytes (negative: no limit): the oldest batches go while what
// remains is still at least retention.bytes, Kafka's rule for segments
// (it deletes a segment only if the log stays at or above the limit), here
// applied per batch: afterwards the partition's readable batches take at
// least retention.bytes and less than retention.bytes plus one batch. The
// engine's Sizer (when the log has one) is only a cheap gate — it counts
// what is on disk, including the bytes below the start offset of a unit
// the engine has not freed yet, and index files — so when it reports more
// than the limit the broker measures the readable batches by walking their
// headers from the start offset (a read of the log, no decompression) and
// picks the new start from that. Measuring the readable bytes rather than
// the disk keeps repeated passes from creeping the start forward while an
// engine still holds a partly deleted segment. The engine frees storage
// only in whole units, so the disk usage falls below the limit only when a
// unit lies wholly below the start.
//
// The start never moves past the high watermark. Changes happen under the
// partition's appendMu, as every change of a log does. Tests run a pass
// directly with a chosen clock (Manager.EnforceRetention).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

// retainer runs the retention loop.
type retainer struct {
	stop chan struct{}
	done chan struct{}
}

// startRetention starts the retention loop.
func (m *Manager) startRetention() *retainer {
	r := &retainer{stop: make(chan struct{}), done: make(chan struct{})}
	interval := m.cfg.LogRetentionCheckMs
	go func() {
		defer close(r.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case now := <-tick.C:
				m.EnforceRetention(m.ctx, now)
			}
		}
	}()
	return r
}

// close stops the loop and waits for a pass under way to finish.
func (r *retainer) close() {
	if r == nil {
		return
	}
	close(r.stop)
	<-r.done
}

// EnforceRetention runs one retention pass over every open partition as
// of now, and returns how many partitions' start offsets moved.
func (m *Manager) EnforceRetention(ctx context.Context, now time.Time) int {
	snap := m.coord.Snapshot()
	m.mu.RLock()
	parts := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		if p.log != nil {
			parts = append(parts, p)
		}
	}
	m.mu.RUnlock()

	configs := map[string]*config.TopicConfig{}
	moved := 0
	for _, p := range parts {
		if ctx.Err() != nil {
			break
		}
		tc, ok := configs[p.tp.Topic]
		if !ok {
			if t := snap.Topics[p.tp.Topic]; t != nil && t.ID == p.topicID {
				c, err := m.cfg.Topic(t.Configs)
				if err == nil {
					tc = &c
				}
			}
			configs[p.tp.Topic] = tc
		}
		if tc == nil || !tc.Delete() {
			continue
		}
		before, _ := p.log.Offsets()
		start, err := p.retain(ctx, now, tc.RetentionMs, tc.RetentionBytes)
		switch {
		case err != nil && !errors.Is(err, engine.ErrClosed) && ctx.Err() == nil:
			m.log.Warn("retention", "partition", p.tp.String(), "err", err)
		case err == nil && start > before:
			moved++
			m.log.Info("retention deleted records", "partition", p.tp.String(), "start_offset", start, "was", before)
		}
	}
	return moved
}

// retain applies one partition's retention and returns its start offset.
func (p *Partition) retain(ctx context.Context, now time.Time, retentionMs time.Duration, retentionBytes int64) (int64, error) {
	start, _ := p.log.Offsets()
	hw := p.HighWatermark()
	to := start
	if retentionMs >= 0 {
		off, err := p.log.OffsetForTime(ctx, now.UnixMilli()-retentionMs.Milliseconds())
		if err != nil {
			return start, err
		}
		to = max(to, min(off, hw))
	}
	if retentionBytes >= 0 {
		off, err := p.retainBytes(ctx, to, hw, retentionBytes)
		if err != nil {
			return start, err
		}
		to = max(to, off)
	}
	if to <= start {
		return start, nil
	}
	return p.deleteBefore(ctx, to)
}

// retainBytes returns the start offset, at or after from, that leaves the
// batches in [start, hw) at least limit bytes and less than limit plus one
// batch.
func (p *Partition) retainBytes(ctx context.Context, from, hw, limit int64) (int64, error) {
	if s, ok := p.log.(engine.Sizer); ok && s.Size() <= limit {
		return from, nil
	}
	var live int64
	if err := p.walkBatches(ctx, from, hw, func(h *engine.BatchHeader) bool {
		live += int64(h.Size())
		return true
	}); err != nil {
		return from, err
	}
	excess := live - limit
	to := from
	if excess <= 0 {
		return to, nil
	}
	err := p.walkBatches(ctx, from, hw, func(h *engine.BatchHeader) bool {
		if int64(h.Size()) > excess {
			return false
		}
		excess -= int64(h.Size())
		to = h.LastOffset() + 1
		return true
	})
	return min(to, hw), err
}

// walkBatches calls fn with the header of every batch holding offsets in
// [from, to), in offset order (the first may begin before from), until fn
// returns false.
func (p *Partition) walkBatches(ctx context.Context, from, to int64, fn func(h *engine.BatchHeader) bool) error {
	for from < to {
		recs, err := p.log.Read(ctx, from, 1<<20)
		if err != nil {
			return err
		}
		next := recs.NextOffset
		stop := false
		for _, chunk := range recs.Chunks {
			for len(chunk) > 0 && !stop {
				h, err := engine.ParseBatchHeader(chunk)
				if err != nil || h.Size() > len(chunk) {
					recs.Release()
					return errors.Join(fmt.Errorf("partition: reading %s at %d: batch header", p.tp, from), err, engine.ErrCorrupt)
				}
				if h.BaseOffset >= to || !fn(&h) {
					stop = true
				}
				chunk = chunk[h.Size():]
			}
		}
		recs.Release()
		if stop || next <= from {
			return nil
		}
		from = next
	}
	return nil
}

// deleteBefore raises the log's start offset to to (at most the high
// watermark), serialised with appends, and returns the new start offset.
func (p *Partition) deleteBefore(ctx context.Context, to int64) (int64, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if p.closed {
		return 0, fmt.Errorf("partition: deleting records of %s: %w", p.tp, engine.ErrClosed)
	}
	to = min(to, p.HighWatermark())
	if err := p.log.DeleteBefore(ctx, to); err != nil {
		return 0, err
	}
	start, _ := p.log.Offsets()
	return start, p.epochs.truncateFromStart(start)
}

// DeleteRecords raises the start offset of partition tp, which this broker
// must lead (Manager.Leader's errors), to offset (-1: the high watermark)
// and returns the new start offset (DeleteRecords' low watermark). An
// offset below the start changes nothing; one above the high watermark, or
// negative other than -1, is OFFSET_OUT_OF_RANGE; a topic whose
// cleanup.policy does not include delete is POLICY_VIOLATION, as in Kafka.
func (m *Manager) DeleteRecords(ctx context.Context, tp engine.TopicPartition, offset int64) (int64, error) {
	p, _, err := m.Leader(ctx, tp, -1)
	if err != nil {
		return -1, err
	}
	if t := m.coord.Snapshot().Topics[tp.Topic]; t != nil {
		if tc, err := m.cfg.Topic(t.Configs); err == nil && !tc.Delete() {
			return -1, kafkaerr.New(kerr.PolicyViolation.Code, "records of partition %s can not be deleted due to the configured policy (cleanup.policy=%s)", tp, tc.CleanupPolicy)
		}
	}
	hw := p.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, kafkaerr.New(kerr.OffsetOutOfRange.Code, "offset %d of %s is not in [0, %d] (the high watermark)", offset, tp, hw)
	}
	return p.deleteBefore(ctx, offset)
}
