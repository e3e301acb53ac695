package enginetest

import (
	"encoding/binary"

	"github.com/strata-broker/strata/engine"
)

// NewBatch builds a valid Kafka v2 record batch with offsets already
// assigned, as the broker hands batches to Log.Append: records records with
// values of valueSize bytes (filled from seed, so batches differ), timestamps
// ts, ts+1, ... and the CRC-32C set. It returns the bytes and their metadata.
func NewBatch(base int64, records, valueSize int, ts int64, seed byte) ([]byte, engine.BatchMeta) {
	if records < 1 {
		records = 1
	}
	values := make([][]byte, records)
	stamps := make([]int64, records)
	for i := range values {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = seed + byte(i*7+j)
		}
		values[i], stamps[i] = v, ts+int64(i)
	}
	return NewBatchOf(base, values, stamps)
}

// NewBatchOf builds an uncompressed Kafka v2 record batch at base holding
// one record per value (null key, no headers) with timestamps ts, with the
// CRC-32C set. values and ts must have the same, non-zero length.
func NewBatchOf(base int64, values [][]byte, ts []int64) ([]byte, engine.BatchMeta) {
	n := engine.BatchHeaderSize
	for _, v := range values {
		n += len(v) + 24
	}
	b := make([]byte, engine.BatchHeaderSize, n)
	first, maxTS := ts[0], ts[0]
	var rec []byte
	for i, v := range values {
		maxTS = max(maxTS, ts[i])
		rec = append(rec[:0], 0)                      // attributes
		rec = binary.AppendVarint(rec, ts[i]-first)   // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))      // offset delta
		rec = binary.AppendVarint(rec, -1)            // null key
		rec = binary.AppendVarint(rec, int64(len(v))) // value length
		rec = append(rec, v...)                       // value
		rec = binary.AppendVarint(rec, 0)             // no headers
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	be := binary.BigEndian
	last := int32(len(values) - 1)
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], uint32(len(b)-engine.BatchLengthOverhead))
	be.PutUint32(b[12:], 0) // partition leader epoch
	b[16] = 2               // magic
	be.PutUint16(b[21:], 0) // attributes: no compression, CreateTime
	be.PutUint32(b[23:], uint32(last))
	be.PutUint64(b[27:], uint64(first))
	be.PutUint64(b[35:], uint64(maxTS))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], ^uint16(0)) // producer epoch -1
	be.PutUint32(b[53:], ^uint32(0)) // base sequence -1
	be.PutUint32(b[57:], uint32(len(values)))
	be.PutUint32(b[17:], engine.Checksum(b[engine.CRCStart:]))
	return b, engine.BatchMeta{
		BaseOffset:   base,
		LastOffset:   base + int64(last),
		MaxTimestamp: maxTS,
		RecordCount:  int32(len(values)),
	}
}
