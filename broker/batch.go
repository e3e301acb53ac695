package broker

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
	batchOffCRC          = 17
	batchOffAttributes   = 21
	batchOffMaxTimestamp = 35

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20

	codecZstd = 4
)

// inBatch is one validated batch of a produce request, still in the
// request's buffer.
type inBatch struct {
	b []byte
	h engine.BatchHeader
}

func corrupt(format string, args ...any) *kafkaerr.Error {
	return &kafkaerr.Error{Code: kerr.CorruptMessage.Code, Msg: fmt.Sprintf(format, args...)}
}

// validateBatches splits the records field of one produce partition into
// its batches and validates each: magic 2, a length that fits the field,
// a matching CRC-32C, a record count that matches the offset range, size
// within max.message.bytes, a codec we know, and nothing a client may not
// send (control batches, transactions we never began). It touches nothing;
// on failure no batch is appended.
// magicOffset is where every Kafka message format keeps its magic byte
// (after the base offset and length, and the leader epoch or CRC).
const magicOffset = 16

func validateBatches(records []byte, maxMessageBytes int32, produceVersion int16) ([]inBatch, *kafkaerr.Error) {
	if len(records) == 0 {
		return nil, corrupt("no record batch")
	}
	var out []inBatch
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
		case h.Attributes&attrControl != 0:
			return nil, &kafkaerr.Error{Code: kerr.InvalidRecord.Code, Msg: "clients may not produce control batches"}
		case h.Attributes&attrTransactional != 0:
			return nil, &kafkaerr.Error{Code: kerr.InvalidTxnState.Code, Msg: "transactions are not supported yet"}
		}
		switch codec := h.Attributes & attrCompressionMask; {
		case codec > codecZstd:
			return nil, corrupt("record batch: unknown compression codec %d", codec)
		case codec == codecZstd && produceVersion < 7:
			return nil, &kafkaerr.Error{Code: kerr.UnsupportedCompressionType.Code, Msg: "zstd needs produce v7+"}
		}
		out = append(out, inBatch{b: rest[:size], h: h})
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
func patchBatch(in *inBatch, base int64, leaderEpoch int32, appendTime int64) engine.BatchMeta {
	b := in.b
	be := binary.BigEndian
	be.PutUint64(b[batchOffBaseOffset:], uint64(base))
	be.PutUint32(b[batchOffLeaderEpoch:], uint32(leaderEpoch))
	in.h.BaseOffset = base
	in.h.PartitionLeaderEpoch = leaderEpoch
	if appendTime >= 0 {
		in.h.Attributes |= attrLogAppendTime
		in.h.MaxTimestamp = appendTime
		be.PutUint16(b[batchOffAttributes:], uint16(in.h.Attributes))
		be.PutUint64(b[batchOffMaxTimestamp:], uint64(appendTime))
		in.h.CRC = engine.Checksum(b[engine.CRCStart:])
		be.PutUint32(b[batchOffCRC:], in.h.CRC)
	}
	return in.h.Meta()
}
