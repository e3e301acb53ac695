package bench

import (
	"bytes"
	"context"
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
