package partition

// Idempotent producer state, per partition (KIP-98, as Kafka's
// ProducerStateManager keeps it).
//
// For every producer id that appended to the partition the broker keeps the
// producer's epoch and its last maxProducerBatches batches: first and last
// sequence, base and last offset, and max timestamp. A produced batch with a
// producer id (>= 0) is checked against it before anything is appended, in
// Kafka's order:
//
//   - same epoch, same first and last sequence as one of the remembered
//     batches: a retried duplicate. It is not appended; the answer is
//     success with the original base offset (and, on LogAppendTime topics,
//     the original append time).
//   - an epoch older than the producer's: INVALID_PRODUCER_EPOCH (Kafka
//     answers produce with it since 2.7; PRODUCER_FENCED is for the
//     transaction coordinator's requests).
//   - a newer epoch (the client bumped it, locally as franz-go and the Java
//     client do, or with InitProducerId): the first sequence must be 0,
//     else OUT_OF_ORDER_SEQUENCE_NUMBER; the producer's remembered batches
//     are forgotten.
//   - the same epoch: the first sequence must follow the last one (int32
//     wraps to 0), else OUT_OF_ORDER_SEQUENCE_NUMBER — a gap, or an old
//     batch no longer remembered.
//   - an unknown producer id (never seen, expired, or its batches removed
//     by retention): sequence 0 starts it; any other sequence is
//     UNKNOWN_PRODUCER_ID, as Kafka 1.x brokers answered and as the
//     project's notes ask. franz-go and the Java client answer it by
//     bumping their epoch and resending from sequence 0 (franz-go without
//     losing a record, see TestIdempotentExpirationKgo). Kafka 2.8 and later
//     accept any sequence here instead (ProducerAppendInfo.checkSequence:
//     "accept writes with any sequence number"); switching is this one case
//     of checkSequence.
//   - a producer id with a negative base sequence: INVALID_RECORD, as Kafka.
//
// The errors answer with the log start offset, as Kafka does, which lets
// franz-go tell retention (no loss) from a real gap. Several batches in one
// partition's produce data are checked in order, each against the state
// the earlier ones leave; one failure fails them all and appends nothing.
// Duplicates among them are skipped and the rest appended; the answer's
// base offset is the first batch's (its original offset if a duplicate).
//
// Expiration: a producer idle (no append) for producer.id.expiration.ms is
// forgotten. A lookup treats an expired producer as unknown, so expiry is
// exact without a timer; to free the memory, an idempotent append sweeps
// the partition's whole state once min(producer.id.expiration.ms, 10
// minutes) has passed since the last sweep (10 minutes is Kafka's
// producer.id.expiration.check.interval.ms). No goroutine, no polling: a
// partition nobody appends to keeps its last producers until it closes.
// Producers whose last batch lies below the log start (retention,
// DeleteRecords) are forgotten the same way, so their next batch meets
// UNKNOWN_PRODUCER_ID with a log start offset past what they last had
// acknowledged, which franz-go takes as "no loss".
//
// Restart: the state is not snapshotted; it is rebuilt from the batch
// headers at the log's tail (producer id, epoch, base sequence, last offset
// delta and max timestamp are all in the 61-byte header, so no record is
// decoded). The rebuild runs under the partition's appendMu before the
// first append after the log opened, not when it opens: a broker with
// thousands of partitions starts without reading all their tails, and a
// partition nobody produces to never pays. The scan reads backwards from
// the end in doubling offset windows and stops after producerScanBytes
// (8 MiB) of batches or at the log start, then replays what it read in
// offset order. A producer whose last batch lies further back is unknown
// after a restart: its next batch with a sequence other than 0 gets
// UNKNOWN_PRODUCER_ID and the client starts a new epoch. A retry that
// arrives after a restart is of a batch at the tail, so it is found unless
// more than 8 MiB were appended after it before the crash. Rebuilt
// producers count as seen at the rebuild: the timestamps in the log are the
// clients' clocks, which may say anything.
//
// Left out: transactional state (rejected by validateBatches), a bound on
// the number of producer ids per partition (Kafka has none either before
// KIP-936), and rebuilding after Truncate (no caller yet; replication will
// need one).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

const (
	// maxProducerBatches is how many batches per producer are remembered
	// for duplicate detection: clients keep at most 5 requests in flight
	// per partition when idempotent.
	maxProducerBatches = 5
	// producerScanBytes bounds the log tail read to rebuild the state.
	producerScanBytes = 8 << 20
	// maxSweepInterval is the longest time between sweeps of expired
	// producers (Kafka's producer.id.expiration.check.interval.ms).
	maxSweepInterval = 10 * time.Minute
)

// producerBatch is one batch a producer appended.
type producerBatch struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
	maxTimestamp           int64 // as appended (the append time on LogAppendTime topics)
}

// producerEntry is what a partition remembers of one producer id.
type producerEntry struct {
	epoch    int16
	batches  []producerBatch // oldest first; never empty
	lastSeen time.Time       // last append (or the rebuild)
}

// last is the producer's newest batch.
func (e *producerEntry) last() *producerBatch { return &e.batches[len(e.batches)-1] }

// add records an appended batch; a new epoch forgets the old one's batches.
func (e *producerEntry) add(epoch int16, b producerBatch, now time.Time) {
	if epoch != e.epoch {
		e.epoch = epoch
		e.batches = e.batches[:0]
	}
	if len(e.batches) == maxProducerBatches {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:maxProducerBatches-1]
	}
	e.batches = append(e.batches, b)
	e.lastSeen = now
}

func (e *producerEntry) clone() *producerEntry {
	c := *e
	c.batches = append(make([]producerBatch, 0, maxProducerBatches), e.batches...)
	return &c
}

// duplicate returns the remembered batch with the same epoch and sequence
// range, or nil.
func (e *producerEntry) duplicate(epoch int16, first, last int32) *producerBatch {
	if epoch != e.epoch {
		return nil
	}
	for i := range e.batches {
		if b := &e.batches[i]; b.firstSeq == first && b.lastSeq == last {
			return b
		}
	}
	return nil
}

// producerStates is one partition's idempotent-producer state. It is
// guarded by the partition's appendMu.
type producerStates struct {
	m         map[int64]*producerEntry
	lastSweep time.Time
}

func newProducerStates(now time.Time) *producerStates {
	return &producerStates{m: map[int64]*producerEntry{}, lastSweep: now}
}

// producerClock is what the producer checks need of the broker: the time
// and producer.id.expiration.ms.
type producerClock struct {
	now        time.Time
	expiration time.Duration
}

// live reports whether e is still remembered: not idle for the expiration
// time, and with its last batch at or above the log start.
func (e *producerEntry) live(pc producerClock, logStart int64) bool {
	return pc.now.Sub(e.lastSeen) < pc.expiration && e.last().lastOffset >= logStart
}

// lookup returns the live entry of id, forgetting it if it is not.
func (s *producerStates) lookup(id int64, pc producerClock, logStart int64) *producerEntry {
	e := s.m[id]
	if e != nil && !e.live(pc, logStart) {
		delete(s.m, id)
		return nil
	}
	return e
}

// sweep forgets every producer that is not live, at most once per sweep
// interval.
func (s *producerStates) sweep(pc producerClock, logStart int64) {
	if pc.now.Sub(s.lastSweep) < min(pc.expiration, maxSweepInterval) {
		return
	}
	s.lastSweep = pc.now
	for id, e := range s.m {
		if !e.live(pc, logStart) {
			delete(s.m, id)
		}
	}
}

// record remembers a batch that was just appended.
func (s *producerStates) record(h *engine.BatchHeader, meta engine.BatchMeta, now time.Time) {
	e := s.m[h.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch, batches: make([]producerBatch, 0, maxProducerBatches)}
		s.m[h.ProducerID] = e
	}
	e.add(h.ProducerEpoch, producerBatch{
		firstSeq:     h.BaseSequence,
		lastSeq:      lastSequence(h.BaseSequence, h.LastOffsetDelta),
		baseOffset:   meta.BaseOffset,
		lastOffset:   meta.LastOffset,
		maxTimestamp: meta.MaxTimestamp,
	}, now)
}

// check runs the producer checks over a partition's batches, in order, as
// if each were appended at the offsets it will get (the first at end).
// It returns, per batch, the original of a duplicate (nil for a batch to
// append; the slice is nil when there is no duplicate), or the error that
// fails them all. It changes nothing but forgetting expired producers.
func (s *producerStates) check(batches []Batch, end, logStart, appendTime int64, pc producerClock) ([]*producerBatch, *kafkaerr.Error) {
	var dups []*producerBatch
	var pending map[int64]*producerEntry // state as the earlier batches leave it
	next := end
	for i := range batches {
		h := &batches[i].h
		base := next
		next += int64(h.LastOffsetDelta) + 1
		if h.ProducerID < 0 {
			continue
		}
		e, ok := pending[h.ProducerID]
		if !ok {
			e = s.lookup(h.ProducerID, pc, logStart)
		}
		dup, err := checkSequence(e, h)
		if err != nil {
			return nil, err
		}
		if dup != nil {
			if dups == nil {
				dups = make([]*producerBatch, len(batches))
			}
			d := *dup
			dups[i] = &d
			next = base // not appended: takes no offsets
			continue
		}
		if i == len(batches)-1 {
			continue // no later batch looks at the state
		}
		if e == nil {
			e = &producerEntry{epoch: h.ProducerEpoch}
		} else {
			e = e.clone()
		}
		ts := h.MaxTimestamp
		if appendTime >= 0 {
			ts = appendTime
		}
		e.add(h.ProducerEpoch, producerBatch{
			firstSeq: h.BaseSequence, lastSeq: lastSequence(h.BaseSequence, h.LastOffsetDelta),
			baseOffset: base, lastOffset: next - 1, maxTimestamp: ts,
		}, pc.now)
		if pending == nil {
			pending = map[int64]*producerEntry{}
		}
		pending[h.ProducerID] = e
	}
	return dups, nil
}

// checkSequence checks one batch of a producer against what is known of it
// (e nil: nothing). It returns the original batch if this one is a
// duplicate.
func checkSequence(e *producerEntry, h *engine.BatchHeader) (*producerBatch, *kafkaerr.Error) {
	first := h.BaseSequence
	if first < 0 {
		return nil, &kafkaerr.Error{Code: kerr.InvalidRecord.Code,
			Msg: fmt.Sprintf("batch of producer %d has base sequence %d", h.ProducerID, first)}
	}
	if e == nil {
		if first != 0 {
			return nil, &kafkaerr.Error{Code: kerr.UnknownProducerID.Code,
				Msg: fmt.Sprintf("no state for producer %d (expired, or removed with the log's old records); sequence %d does not start one", h.ProducerID, first)}
		}
		return nil, nil
	}
	if dup := e.duplicate(h.ProducerEpoch, first, lastSequence(first, h.LastOffsetDelta)); dup != nil {
		return dup, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, &kafkaerr.Error{Code: kerr.InvalidProducerEpoch.Code,
			Msg: fmt.Sprintf("producer %d epoch %d is older than its current epoch %d", h.ProducerID, h.ProducerEpoch, e.epoch)}
	case h.ProducerEpoch > e.epoch:
		if first != 0 {
			return nil, &kafkaerr.Error{Code: kerr.OutOfOrderSequenceNumber.Code,
				Msg: fmt.Sprintf("producer %d new epoch %d starts at sequence %d, not 0", h.ProducerID, h.ProducerEpoch, first)}
		}
	case !inSequence(e.last().lastSeq, first):
		return nil, &kafkaerr.Error{Code: kerr.OutOfOrderSequenceNumber.Code,
			Msg: fmt.Sprintf("producer %d epoch %d: sequence %d does not follow %d", h.ProducerID, h.ProducerEpoch, first, e.last().lastSeq)}
	}
	return nil, nil
}

// lastSequence is the sequence of a batch's last record; sequences wrap
// from MaxInt32 to 0, as Kafka's DefaultRecordBatch.incrementSequence.
func lastSequence(first, lastOffsetDelta int32) int32 {
	if first > math.MaxInt32-lastOffsetDelta {
		return lastOffsetDelta - (math.MaxInt32 - first) - 1
	}
	return first + lastOffsetDelta
}

// inSequence reports whether next follows last.
func inSequence(last, next int32) bool {
	if last == math.MaxInt32 {
		return next == 0
	}
	return next == last+1
}

// loadProducers rebuilds a partition's producer state from its log's tail
// (see the file comment).
func loadProducers(ctx context.Context, l engine.Log, now time.Time) (*producerStates, error) {
	s := newProducerStates(now)
	start, end := l.Offsets()
	var windows [][]scannedBatch // newest window first
	budget := producerScanBytes
	step := int64(1024)
	for to := end; to > start && budget > 0; {
		from := max(start, to-step)
		got, n, complete, err := scanWindow(ctx, l, from, to, budget)
		if errors.Is(err, engine.ErrOffsetOutOfRange) {
			break // the start moved up meanwhile: what was read is the newest
		}
		if err != nil {
			return nil, fmt.Errorf("broker: rebuilding producer state: %w", err)
		}
		if !complete {
			if to-from <= 1 {
				break // one batch larger than what is left of the budget
			}
			step = max(1, (to-from)/2)
			continue
		}
		windows = append(windows, got)
		budget -= n
		to = from
		step = min(2*step, 1<<40)
	}
	for i := len(windows) - 1; i >= 0; i-- {
		for _, b := range windows[i] {
			e := s.m[b.producerID]
			if e == nil {
				e = &producerEntry{epoch: b.epoch, batches: make([]producerBatch, 0, maxProducerBatches)}
				s.m[b.producerID] = e
			}
			e.add(b.epoch, b.producerBatch, now)
		}
	}
	return s, nil
}

// scannedBatch is a producer's batch found by the rebuild scan.
type scannedBatch struct {
	producerID int64
	epoch      int16
	producerBatch
}

// scanWindow reads the batches whose base offset is in [from, to) and
// returns those with a producer id, in offset order, and the bytes read.
// complete is false if the window holds more than budget bytes.
func scanWindow(ctx context.Context, l engine.Log, from, to int64, budget int) (got []scannedBatch, n int, complete bool, err error) {
	for pos := from; pos < to; {
		at := pos
		recs, err := l.Read(ctx, at, budget-n)
		if err != nil {
			return nil, 0, false, err
		}
		if recs.Empty() {
			recs.Release()
			break
		}
		pos = recs.NextOffset
		for _, c := range recs.Chunks {
			for len(c) > 0 {
				h, err := engine.ParseBatchHeader(c)
				if err == nil && h.Size() > len(c) {
					err = fmt.Errorf("batch of %d bytes, %d in the chunk", h.Size(), len(c))
				}
				if err != nil {
					recs.Release()
					// Stored data: a storage error, not the client's.
					return nil, 0, false, fmt.Errorf("%w: reading from offset %d: %v", engine.ErrCorrupt, at, err)
				}
				c = c[h.Size():]
				if h.BaseOffset >= to {
					pos = to
					break
				}
				n += h.Size()
				if h.BaseOffset >= from && h.ProducerID >= 0 {
					got = append(got, scannedBatch{producerID: h.ProducerID, epoch: h.ProducerEpoch, producerBatch: producerBatch{
						firstSeq: h.BaseSequence, lastSeq: lastSequence(h.BaseSequence, h.LastOffsetDelta),
						baseOffset: h.BaseOffset, lastOffset: h.LastOffset(), maxTimestamp: h.MaxTimestamp,
					}})
				}
			}
		}
		recs.Release()
		if n > budget {
			return nil, n, false, nil
		}
	}
	return got, n, true, nil
}
