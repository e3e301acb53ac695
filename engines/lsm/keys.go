package lsm

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/strata-broker/strata/engine"
)

// Key layout; see the package documentation for the byte-by-byte format.
const (
	// Engine-wide keys begin with tagEngine, partition keys with
	// tagPartition, so every engine-wide key sorts before every log's keys.
	tagEngine    = 0x00
	tagPartition = 0x01

	// Engine-wide key kinds (byte 1).
	kindNextID  = 'i' // 0x69: the next partition id to hand out
	kindCatalog = 'c' // 0x63: topic-partition → partition id

	// Partition key kinds (byte 5).
	kindStart = 's' // 0x73: start offset and the bytes below its batch
	kindData  = 'd' // 0x64: base offset → batch bytes
	kindTime  = 't' // 0x74: base offset → time and byte index entry

	// partitionPrefixLen is tagPartition plus the 4-byte partition id.
	partitionPrefixLen = 5
	// offsetKeyLen is the length of a data or time key.
	offsetKeyLen = partitionPrefixLen + 1 + 8
	// startValueLen and timeValueLen are the lengths of those values.
	startValueLen = 16
	timeValueLen  = 16
)

var (
	nextIDKey = []byte{tagEngine, kindNextID}
	// catalogLower and catalogUpper bound the catalog keys.
	catalogLower = []byte{tagEngine, kindCatalog}
	catalogUpper = []byte{tagEngine, kindCatalog + 1}
)

// catalogKey is 0x00 'c' <topic> 0x00 <partition int32>. Topic names never
// hold a 0x00 byte, so the key parses back unambiguously.
func catalogKey(tp engine.TopicPartition) []byte {
	k := make([]byte, 0, 2+len(tp.Topic)+1+4)
	k = append(k, tagEngine, kindCatalog)
	k = append(k, tp.Topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(tp.Partition))
}

// parseCatalogKey reverses catalogKey.
func parseCatalogKey(k []byte) (engine.TopicPartition, error) {
	if len(k) < 2+1+1+4 || k[0] != tagEngine || k[1] != kindCatalog || k[len(k)-5] != 0 {
		return engine.TopicPartition{}, fmt.Errorf("lsm: catalog key %x: %w", k, engine.ErrCorrupt)
	}
	return engine.TopicPartition{
		Topic:     string(k[2 : len(k)-5]),
		Partition: int32(binary.BigEndian.Uint32(k[len(k)-4:])),
	}, nil
}

// partitionPrefix is the prefix every key of partition id shares.
func partitionPrefix(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{tagPartition}, id)
}

// partitionUpper is the first key after every key of partition id.
func partitionUpper(id uint32) []byte {
	if id == math.MaxUint32 {
		return []byte{tagPartition + 1}
	}
	return partitionPrefix(id + 1)
}

// startKey is the key of a partition's start-offset record.
func startKey(id uint32) []byte { return append(partitionPrefix(id), kindStart) }

// offsetKey is the data or time key of the batch at base in partition id,
// appended to dst.
func offsetKey(dst []byte, id uint32, kind byte, base int64) []byte {
	dst = append(dst, tagPartition)
	dst = binary.BigEndian.AppendUint32(dst, id)
	dst = append(dst, kind)
	return binary.BigEndian.AppendUint64(dst, uint64(base))
}

// kindUpper is the first key after every key of the given kind in
// partition id.
func kindUpper(id uint32, kind byte) []byte { return append(partitionPrefix(id), kind+1) }

// kindLower is the first key of the given kind in partition id.
func kindLower(id uint32, kind byte) []byte { return append(partitionPrefix(id), kind) }

// keyOffset returns the offset of a data or time key.
func keyOffset(k []byte) int64 { return int64(binary.BigEndian.Uint64(k[partitionPrefixLen+1:])) }

// encodeStart encodes a start record: the start offset, then the bytes of
// every batch the log ever held below the batch that holds the start.
func encodeStart(start, bytesBelow int64) []byte {
	v := make([]byte, startValueLen)
	binary.BigEndian.PutUint64(v, uint64(start))
	binary.BigEndian.PutUint64(v[8:], uint64(bytesBelow))
	return v
}

func decodeStart(v []byte) (start, bytesBelow int64, err error) {
	if len(v) != startValueLen {
		return 0, 0, fmt.Errorf("lsm: start record of %d bytes: %w", len(v), engine.ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// timeEntry is a time index entry: every batch up to and including the one
// the entry's key names has a max timestamp <= maxTs, and the log's batches
// up to and including it add up to bytes (counted from the log's creation,
// or its last emptying by DeleteBefore).
type timeEntry struct {
	maxTs int64
	bytes int64
}

func (t timeEntry) appendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.maxTs))
	return binary.BigEndian.AppendUint64(dst, uint64(t.bytes))
}

func decodeTime(v []byte) (timeEntry, error) {
	if len(v) != timeValueLen {
		return timeEntry{}, fmt.Errorf("lsm: time index entry of %d bytes: %w", len(v), engine.ErrCorrupt)
	}
	return timeEntry{maxTs: int64(binary.BigEndian.Uint64(v)), bytes: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

// Fields of a stored batch's header that the engine reads (engine/batch.go
// has the full layout).
const (
	offLastOffsetDelta = 23
	offMaxTimestamp    = 35
)

// batchLast returns the last offset of the stored batch v at base.
func batchLast(base int64, v []byte) (int64, error) {
	if len(v) < engine.BatchHeaderSize {
		return 0, fmt.Errorf("lsm: stored batch at %d of %d bytes: %w", base, len(v), engine.ErrCorrupt)
	}
	return base + int64(int32(binary.BigEndian.Uint32(v[offLastOffsetDelta:]))), nil
}

// batchMaxTimestamp returns the max timestamp of a stored batch, whose
// header batchLast has checked.
func batchMaxTimestamp(v []byte) int64 { return int64(binary.BigEndian.Uint64(v[offMaxTimestamp:])) }
