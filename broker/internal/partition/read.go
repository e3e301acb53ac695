package partition

// Reads of a partition this broker leads, for Fetch: a consumer reads
// below the high watermark, a follower to the log end, and a follower's
// fetch offset, checked against the leader-epoch history, is its log end
// (FollowerFetched).

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

// FetchParams is one partition of a fetch request.
type FetchParams struct {
	ReplicaID        int32 // the fetching follower; -1 for a consumer
	Offset           int64 // where to read from
	LastFetchedEpoch int32 // the epoch of the fetcher's last batch (v12+); -1: none
	MaxBytes         int   // partition_max_bytes
}

// FetchResult is what Fetch read of one partition.
type FetchResult struct {
	HighWatermark int64 // taken after the reads
	LogStart      int64
	// DivergingEpoch and DivergingEnd are set (>= 0) when the fetcher's
	// last epoch is not one this log has up to its offset: it truncates
	// there, and nothing is read.
	DivergingEpoch int32
	DivergingEnd   int64
	Chunks         [][]byte // the batches read, whole
	Bytes          int      // their size
}

var errOffsetOutOfRange = &kafkaerr.Error{Code: kerr.OffsetOutOfRange.Code, Msg: "OFFSET_OUT_OF_RANGE: the fetch offset is outside the log"}

// Fetch reads p (led at st, Manager.Leader's answer) for one partition of
// a fetch: whole batches from fp.Offset until fp.MaxBytes or what is left
// of the response's *budget, at least one batch if first (nothing is in
// the response yet, KIP-74), never part of a batch. Consumers read only
// below the high watermark (batches past it are cut from the read); a
// follower's fetch is its position (FollowerFetched). An offset outside
// the log, or a last fetched epoch newer than any this log has, is
// OFFSET_OUT_OF_RANGE; a read error fails the partition if nothing was
// read yet. The engine's pins of what was read are appended to *pins, to
// be released once the response is written.
func (p *Partition) Fetch(ctx context.Context, st *State, fp FetchParams, budget *int, first bool, pins *[]engine.Releaser) (FetchResult, error) {
	start, end := p.log.Offsets()
	res := FetchResult{HighWatermark: p.HighWatermark(), LogStart: start, DivergingEpoch: -1, DivergingEnd: -1}
	if fp.LastFetchedEpoch >= 0 {
		// The epoch of the fetcher's last batch must be one this log
		// has up to the fetch offset; else say where they part.
		e, off := p.epochs.endOffsetFor(fp.LastFetchedEpoch, end)
		switch {
		case e < 0:
			// An epoch newer than any this log has: nothing to
			// compare, so the fetcher is out of range (a follower
			// then truncates to the high watermark), as Kafka answers.
			return res, errOffsetOutOfRange
		case e != fp.LastFetchedEpoch || off < fp.Offset:
			res.DivergingEpoch, res.DivergingEnd = e, off
			return res, nil
		}
	}
	if fp.Offset < start || fp.Offset > end {
		return res, errOffsetOutOfRange
	}
	// A follower's fetch offset is its log end, now known to agree
	// with this log: it may advance the high watermark, or the ISR.
	replica := fp.ReplicaID >= 0
	if replica {
		p.FollowerFetched(st, fp.ReplicaID, fp.Offset, time.Now())
	} else {
		// Followers read to the log end; consumers only what is
		// committed.
		end = min(end, res.HighWatermark)
	}

	rctx := context.WithoutCancel(ctx) // reads are short; finish them
	from, pmax := fp.Offset, fp.MaxBytes
	var err error
	for from < end && pmax > 0 && (*budget > 0 || first) {
		limit := min(pmax, max(*budget, 0))
		recs, rerr := p.log.Read(rctx, from, limit)
		if rerr != nil {
			if len(res.Chunks) == 0 {
				err = rerr
			}
			break
		}
		if recs.Empty() {
			break
		}
		if recs.NextOffset > end {
			// Batches past the high watermark are not the
			// consumer's yet.
			cutRecords(&recs, end)
			if recs.Empty() {
				recs.Release()
				break
			}
		}
		n := recs.Len()
		if n > limit && !first {
			// Only the response's first batch may exceed the limits.
			recs.Release()
			break
		}
		res.Chunks = append(res.Chunks, recs.Chunks...)
		if recs.Pin != nil { // nil: the memory needs no release
			*pins = append(*pins, recs.Pin)
		}
		first = false
		res.Bytes += n
		pmax -= n
		*budget -= n
		from = recs.NextOffset
	}
	// Taken after the reads: it can only have moved up, and a consumer's
	// reads stopped at the earlier one.
	res.HighWatermark = p.HighWatermark()
	return res, err
}

// cutRecords drops from recs the batches that begin at or after offset to
// (a batch boundary: the high watermark always is one).
func cutRecords(recs *engine.Records, to int64) {
	for i, chunk := range recs.Chunks {
		for pos := 0; pos < len(chunk); {
			h, err := engine.ParseBatchHeader(chunk[pos:])
			if err != nil {
				return // not a batch: leave it to the reader
			}
			if h.BaseOffset >= to {
				// A new slice: the engine's is not ours to change.
				kept := slices.Clone(recs.Chunks[:i])
				if pos > 0 {
					kept = append(kept, chunk[:pos])
				}
				recs.Chunks, recs.NextOffset = kept, to
				return
			}
			pos += h.Size()
		}
	}
}
