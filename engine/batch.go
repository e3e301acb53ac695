package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Layout of a record batch header (Kafka message format v2). Every field is
// big-endian. The CRC-32C covers the bytes from Attributes to the end of the
// batch, so BaseOffset, BatchLength, PartitionLeaderEpoch and Magic lie
// outside it: the broker patches BaseOffset and PartitionLeaderEpoch without
// recomputing the CRC.
const (
	offBaseOffset      = 0  // int64
	offBatchLength     = 8  // int32: bytes after this field
	offLeaderEpoch     = 12 // int32
	offMagic           = 16 // int8, must be 2
	offCRC             = 17 // uint32, CRC-32C of bytes [21, end)
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32

	// BatchHeaderSize is the size of a v2 batch header, which is also the
	// size of the smallest possible batch (no records).
	BatchHeaderSize = 61
	// BatchLengthOverhead is the number of header bytes that BatchLength
	// does not count (BaseOffset and BatchLength itself).
	BatchLengthOverhead = 12
	// CRCStart is where the bytes the CRC covers begin.
	CRCStart = offAttributes
)

// Bits of BatchHeader.Attributes.
const (
	AttrCompressionMask = 0x07 // the codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	AttrLogAppendTime   = 0x08 // timestamps are the broker's append time
	AttrTransactional   = 0x10
	AttrControl         = 0x20 // a control batch (transaction marker)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the number of bytes of the whole batch.
func (h *BatchHeader) Size() int { return int(h.BatchLength) + BatchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Meta returns the BatchMeta that describes the batch.
func (h *BatchHeader) Meta() BatchMeta {
	return BatchMeta{
		BaseOffset:   h.BaseOffset,
		LastOffset:   h.LastOffset(),
		MaxTimestamp: h.MaxTimestamp,
		RecordCount:  h.RecordCount,
	}
}

// ParseBatchHeader decodes the header at the start of b without checking
// the CRC. It fails (wrapping ErrInvalidBatch) when b is shorter than a
// header, the magic is not 2, or the length fields are impossible; it does
// not require b to hold the whole batch.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, fmt.Errorf("%w: %d bytes, shorter than a batch header", ErrInvalidBatch, len(b))
	}
	be := binary.BigEndian
	h.BaseOffset = int64(be.Uint64(b[offBaseOffset:]))
	h.BatchLength = int32(be.Uint32(b[offBatchLength:]))
	h.PartitionLeaderEpoch = int32(be.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = be.Uint32(b[offCRC:])
	h.Attributes = int16(be.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(be.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(be.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(be.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(be.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(be.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(be.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(be.Uint32(b[offRecordCount:]))
	switch {
	case h.Magic != 2:
		return h, fmt.Errorf("%w: magic %d, want 2", ErrInvalidBatch, h.Magic)
	case h.BatchLength < BatchHeaderSize-BatchLengthOverhead:
		return h, fmt.Errorf("%w: batch length %d shorter than a header", ErrInvalidBatch, h.BatchLength)
	case h.LastOffsetDelta < 0 || h.BaseOffset < 0 || h.BaseOffset > h.BaseOffset+int64(h.LastOffsetDelta):
		return h, fmt.Errorf("%w: offsets %d+%d", ErrInvalidBatch, h.BaseOffset, h.LastOffsetDelta)
	case h.RecordCount < 0:
		return h, fmt.Errorf("%w: record count %d", ErrInvalidBatch, h.RecordCount)
	}
	return h, nil
}

// CheckBatch validates the batch at the start of b: a well-formed header,
// the whole batch present in b, and a matching CRC-32C. It returns the
// header; the batch is b[:h.Size()]. Recovery calls it to find where a log's
// valid prefix ends.
func CheckBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if n := h.Size(); n > len(b) {
		return h, fmt.Errorf("%w: batch of %d bytes, only %d present", ErrInvalidBatch, n, len(b))
	}
	if got := Checksum(b[CRCStart:h.Size()]); got != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, header says %08x", ErrInvalidBatch, got, h.CRC)
	}
	return h, nil
}

// Checksum is the CRC-32C (Castagnoli) that v2 batches carry.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// PutChecksum computes the CRC of the whole batch b (at least a header
// long) and writes it into b's header.
func PutChecksum(b []byte) uint32 {
	crc := Checksum(b[CRCStart:])
	binary.BigEndian.PutUint32(b[offCRC:], crc)
	return crc
}

// CheckAppend makes the cheap checks Append owes its caller: batch is one
// whole batch whose header agrees with meta. It does not verify the CRC (the
// broker did, before assigning offsets).
func CheckAppend(meta BatchMeta, batch []byte) error {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	switch {
	case h.Size() != len(batch):
		return fmt.Errorf("%w: batch length field says %d bytes, got %d", ErrInvalidBatch, h.Size(), len(batch))
	case h.BaseOffset != meta.BaseOffset:
		return fmt.Errorf("%w: header base offset %d, meta says %d", ErrInvalidBatch, h.BaseOffset, meta.BaseOffset)
	case h.LastOffset() != meta.LastOffset:
		return fmt.Errorf("%w: header last offset %d, meta says %d", ErrInvalidBatch, h.LastOffset(), meta.LastOffset)
	}
	return nil
}
