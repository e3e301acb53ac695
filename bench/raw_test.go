package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// TestRawBaseline checks that the baseline reads back what it wrote and that
// its recovery scan cuts a torn tail: a baseline that cut corners would
// flatter every ratio measured against it.
func TestRawBaseline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := openRaw(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	var next int64
	for i := range 50 {
		bt, m := enginetest.NewBatch(next, 1+i%4, 10+i*37, int64(i), byte(i))
		if err := l.Append(ctx, m, bt); err != nil {
			t.Fatal(err)
		}
		want = append(want, bt)
		next = m.LastOffset + 1
	}
	var got []byte
	for off := int64(0); off < next; {
		rec, err := l.Read(ctx, off, 500)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Empty() {
			t.Fatalf("empty read at %d < end %d", off, next)
		}
		for _, c := range rec.Chunks {
			got = append(got, c...)
		}
		off = rec.NextOffset
		rec.Release()
	}
	if !bytes.Equal(got, bytes.Join(want, nil)) {
		t.Fatal("read back differs from what was appended")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Tear the last batch: the scan must keep exactly the 49 before it.
	path := filepath.Join(dir, tp.String()+".raw")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	l, err = r.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, _ := engine.ParseBatchHeader(want[49])
	if _, end := l.Offsets(); end != h.BaseOffset {
		t.Fatalf("end after torn tail = %d, want %d", end, h.BaseOffset)
	}
}

// TestJSONFixture checks the JSON workload's input: every line is a JSON
// object, the generator repeats itself from the same seed, and every batch
// is a valid v2 batch at the offset after the one before it, the records'
// values being the lines generated.
func TestJSONFixture(t *testing.T) {
	a, b := newJSONLogs(7), newJSONLogs(7)
	for i := range 1000 {
		la, tsa := a.line()
		lb, tsb := b.line()
		if !bytes.Equal(la, lb) || tsa != tsb {
			t.Fatalf("line %d differs between two generators of one seed", i)
		}
		var v map[string]any
		if err := json.Unmarshal(la, &v); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, la)
		}
		if len(v) != 12 {
			t.Fatalf("line %d has %d fields: %s", i, len(v), la)
		}
	}

	fx := newJSONFixture(1<<20, largeBatchBytes)
	g := newJSONLogs(20261125)
	var next int64
	logical := 0
	for i, jb := range append(fx.batches, fx.tail) {
		h, err := engine.CheckBatch(jb.bytes)
		if err != nil || h.Size() != len(jb.bytes) {
			t.Fatalf("batch %d: %v (%d of %d bytes)", i, err, h.Size(), len(jb.bytes))
		}
		if i < len(fx.batches) {
			logical += len(jb.bytes)
			if len(jb.bytes) > largeBatchBytes || len(jb.bytes) < largeBatchBytes-1024 {
				t.Fatalf("batch %d is %d bytes, want just under %d", i, len(jb.bytes), largeBatchBytes)
			}
		}
		if h.BaseOffset != next || jb.meta.BaseOffset != next || jb.meta.LastOffset != h.LastOffset() ||
			jb.meta.RecordCount != h.RecordCount || jb.meta.MaxTimestamp != h.MaxTimestamp {
			t.Fatalf("batch %d: header %+v, meta %+v, want base %d", i, h, jb.meta, next)
		}
		next = jb.meta.LastOffset + 1
		// The records: attributes, timestamp delta, offset delta, null
		// key, value, no headers.
		rest := jb.bytes[engine.BatchHeaderSize:]
		for r := range int(h.RecordCount) {
			n, k := binary.Varint(rest)
			rec := rest[k : k+int(n)]
			rest = rest[k+int(n):]
			rec = rec[1:]
			tsDelta, k := binary.Varint(rec)
			rec = rec[k:]
			offDelta, k := binary.Varint(rec)
			rec = rec[k:]
			key, k := binary.Varint(rec)
			rec = rec[k:]
			vlen, k := binary.Varint(rec)
			value := rec[k : k+int(vlen)]
			line, ms := g.line()
			if offDelta != int64(r) || key != -1 || !bytes.Equal(value, line) || h.BaseTimestamp+tsDelta != ms {
				t.Fatalf("batch %d record %d: offset delta %d, key %d, ts %d, value %q; want %d, -1, %d, %q",
					i, r, offDelta, key, h.BaseTimestamp+tsDelta, value, r, ms, line)
			}
		}
		if len(rest) != 0 {
			t.Fatalf("batch %d: %d bytes after the last record", i, len(rest))
		}
	}
	if logical != fx.logical || logical < 1<<20 || logical > 1<<20+largeBatchBytes {
		t.Fatalf("fixture holds %d bytes, says %d, want about %d", logical, fx.logical, 1<<20)
	}
}
