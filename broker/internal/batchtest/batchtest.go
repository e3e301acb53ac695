// Package batchtest builds Kafka record batches for the broker's tests.
package batchtest

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

// Make builds a v2 batch, compressed with codec, whose records carry
// values; record i has timestamp ts+i. Its base offset is 0.
func Make(t testing.TB, codec kgo.CompressionCodec, ts int64, values ...string) []byte {
	t.Helper()
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.TimestampDelta64 = int64(i)
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		// AppendTo writes Length as given: measure the body with a
		// one-byte zero length first.
		enc := r.AppendTo(nil)
		r.Length = int32(len(enc) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts + int64(len(values)-1),
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	comp, err := kgo.DefaultCompressor(codec)
	if err != nil {
		t.Fatal(err)
	}
	if comp != nil {
		out, typ := comp.Compress(new(bytes.Buffer), recs)
		b.Records = append([]byte(nil), out...)
		b.Attributes = int16(typ)
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	engine.PutChecksum(raw)
	return raw
}

// Idempotent is an uncompressed batch of an idempotent producer: producer
// id pid at epoch, its first record at sequence seq.
func Idempotent(t testing.TB, pid int64, epoch int16, seq int32, values ...string) []byte {
	t.Helper()
	raw := Make(t, kgo.NoCompression(), time.Now().UnixMilli(), values...)
	be := binary.BigEndian
	be.PutUint64(raw[43:], uint64(pid))
	be.PutUint16(raw[51:], uint16(epoch))
	be.PutUint32(raw[53:], uint32(seq))
	engine.PutChecksum(raw)
	return raw
}
