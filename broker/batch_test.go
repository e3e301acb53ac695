package broker

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

// makeBatch builds an uncompressed v2 batch whose records carry values;
// record i has timestamp ts+i.
func makeBatch(t testing.TB, codec kgo.CompressionCodec, ts int64, values ...string) []byte {
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
	binary.BigEndian.PutUint32(raw[17:], engine.Checksum(raw[21:]))
	return raw
}

func TestMakeBatchValid(t *testing.T) {
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.ZstdCompression()} {
		b := makeBatch(t, c, 1000, "a", "bb", "ccc")
		h, err := engine.CheckBatch(b)
		if err != nil || h.Size() != len(b) || h.RecordCount != 3 {
			t.Fatalf("%v %+v", err, h)
		}
		off, ts, ok, err := findRecord(b, 0, func(ts int64) bool { return ts >= 1001 })
		if err != nil || !ok || off != 1 || ts != 1001 {
			t.Fatalf("findRecord: %d %d %v %v", off, ts, ok, err)
		}
	}
}

func TestValidateBatches(t *testing.T) {
	good := makeBatch(t, kgo.NoCompression(), 1, "x", "y")
	two := append(append([]byte(nil), good...), good...)
	if bs, err := validateBatches(two, 1<<20, 9); err != nil || len(bs) != 2 {
		t.Fatalf("two batches: %v %d", err, len(bs))
	}
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 0xff; return b }
	for name, tc := range map[string]struct {
		b    []byte
		max  int32
		code int16
	}{
		"empty":     {nil, 1 << 20, 2},
		"crc":       {flip(17), 1 << 20, 2},
		"payload":   {flip(len(good) - 1), 1 << 20, 2},
		"magic":     {flip(16), 1 << 20, 2},
		"truncated": {good[:len(good)-1], 1 << 20, 2},
		"trailing":  {append(append([]byte(nil), good...), 1, 2, 3), 1 << 20, 2},
		"too large": {good, int32(len(good) - 1), 10},
	} {
		if _, err := validateBatches(tc.b, tc.max, 9); err == nil || err.Code != tc.code {
			t.Errorf("%s: %v, want code %d", name, err, tc.code)
		}
	}
}
