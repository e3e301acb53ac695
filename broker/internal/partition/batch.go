package partition

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

// Batch header offsets the broker patches (see engine/batch.go for the
// whole layout).
const (
	batchOffBaseOffset   = 0
	batchOffLeaderEpoch  = 12
	batchOffAttributes   = 21
	batchOffMaxTimestamp = 35

	codecZstd = 4
)

// Batch is one validated batch of a produce request, still in the
// request's buffer, which Append patches in place.
type Batch struct {
	b []byte
	h engine.BatchHeader
}

func corrupt(format string, args ...any) *kafkaerr.Error {
	return &kafkaerr.Error{Code: kerr.CorruptMessage.Code, Msg: fmt.Sprintf(format, args...)}
}

// ValidateBatches splits the records field of one produce partition into
// its batches and validates each: magic 2, a length that fits the field,
// a matching CRC-32C, a record count that matches the offset range, size
// within max.message.bytes, a codec we know, and nothing a client may not
// send (control batches, transactions we never began). It touches nothing;
// on failure no batch is appended.
// magicOffset is where every Kafka message format keeps its magic byte
// (after the base offset and length, and the leader epoch or CRC).
const magicOffset = 16

func ValidateBatches(records []byte, maxMessageBytes int32, produceVersion int16) ([]Batch, *kafkaerr.Error) {
	if len(records) == 0 {
		return nil, corrupt("no record batch")
	}
	var out []Batch
	for rest := records; len(rest) > 0; {
		if len(rest) > magicOffset && rest[magicOffset] != 2 && produceVersion < 3 {
			return nil, &kafkaerr.Error{Code: kerr.UnsupportedForMessageFormat.Code,
				Msg: fmt.Sprintf("message format v%d: only record batches of magic 2 are stored", rest[magicOffset])}
		}
		h, err := engine.ParseBatchHeader(rest)
		if err != nil {
			return nil, corrupt("record batch: %v", err)
		}
		size := h.Size()
		if int64(size) > int64(maxMessageBytes) {
			return nil, &kafkaerr.Error{Code: kerr.MessageTooLarge.Code,
				Msg: fmt.Sprintf("record batch of %d bytes exceeds max.message.bytes %d", size, maxMessageBytes)}
		}
		if size > len(rest) {
			return nil, corrupt("record batch of %d bytes, only %d present", size, len(rest))
		}
		if _, err := engine.CheckBatch(rest[:size]); err != nil {
			return nil, corrupt("record batch: %v", err)
		}
		switch {
		case h.RecordCount < 1:
			return nil, corrupt("record batch holds no records")
		case int64(h.LastOffsetDelta) != int64(h.RecordCount)-1:
			return nil, corrupt("record batch: last offset delta %d does not match record count %d", h.LastOffsetDelta, h.RecordCount)
		case h.Attributes&engine.AttrControl != 0:
			return nil, &kafkaerr.Error{Code: kerr.InvalidRecord.Code, Msg: "clients may not produce control batches"}
		case h.Attributes&engine.AttrTransactional != 0:
			return nil, &kafkaerr.Error{Code: kerr.InvalidTxnState.Code, Msg: "transactions are not supported yet"}
		}
		switch codec := h.Attributes & engine.AttrCompressionMask; {
		case codec > codecZstd:
			return nil, corrupt("record batch: unknown compression codec %d", codec)
		case codec == codecZstd && produceVersion < 7:
			return nil, &kafkaerr.Error{Code: kerr.UnsupportedCompressionType.Code, Msg: "zstd needs produce v7+"}
		}
		out = append(out, Batch{b: rest[:size], h: h})
		rest = rest[size:]
	}
	return out, nil
}

// patchBatch assigns the batch its base offset and leader epoch in place.
// For LogAppendTime topics (appendTime >= 0) it also sets the timestamp
// type bit and the max timestamp and recomputes the CRC, which covers
// them; consumers take every record's time from the max timestamp of such
// a batch, and the base timestamp is left as the producer wrote it, as
// Kafka does. The records are never re-encoded. It returns the batch's
// metadata as appended.
func patchBatch(in *Batch, base int64, leaderEpoch int32, appendTime int64) engine.BatchMeta {
	b := in.b
	be := binary.BigEndian
	be.PutUint64(b[batchOffBaseOffset:], uint64(base))
	be.PutUint32(b[batchOffLeaderEpoch:], uint32(leaderEpoch))
	in.h.BaseOffset = base
	in.h.PartitionLeaderEpoch = leaderEpoch
	if appendTime >= 0 {
		in.h.Attributes |= engine.AttrLogAppendTime
		in.h.MaxTimestamp = appendTime
		be.PutUint16(b[batchOffAttributes:], uint16(in.h.Attributes))
		be.PutUint64(b[batchOffMaxTimestamp:], uint64(appendTime))
		in.h.CRC = engine.PutChecksum(b)
	}
	return in.h.Meta()
}

// NewBatch takes a whole batch the broker encoded itself (a record of an
// internal topic) as Append takes a validated one.
func NewBatch(raw []byte) (Batch, error) {
	h, err := engine.ParseBatchHeader(raw)
	if err != nil {
		return Batch{}, err
	}
	return Batch{b: raw, h: h}, nil
}
