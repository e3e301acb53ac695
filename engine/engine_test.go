package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

func TestCheckBatch(t *testing.T) {
	b, m := enginetest.NewBatch(42, 3, 20, 1000, 7)
	h, err := engine.CheckBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Meta() != m || h.Size() != len(b) {
		t.Fatalf("header %+v, meta %+v, size %d", h, m, len(b))
	}
	// Every byte the CRC covers, and magic and length, is checked.
	for i := range b {
		if i < engine.CRCStart && (i < 8 || i >= 12 && i < 16) {
			continue // base offset and leader epoch: outside the CRC by design
		}
		c := append([]byte(nil), b...)
		c[i] ^= 0xff
		if _, err := engine.CheckBatch(c); !errors.Is(err, engine.ErrInvalidBatch) {
			t.Fatalf("flip at byte %d: err = %v, want ErrInvalidBatch", i, err)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := engine.CheckBatch(b[:n]); !errors.Is(err, engine.ErrInvalidBatch) {
			t.Fatalf("cut at %d: err = %v, want ErrInvalidBatch", n, err)
		}
	}
}

func TestCheckAppend(t *testing.T) {
	b, m := enginetest.NewBatch(10, 2, 5, 1, 1)
	if err := engine.CheckAppend(m, b); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name  string
		meta  engine.BatchMeta
		batch []byte
	}{
		{"base offset", engine.BatchMeta{BaseOffset: 11, LastOffset: 12}, b},
		{"last offset", engine.BatchMeta{BaseOffset: 10, LastOffset: 10}, b},
		{"trailing bytes", m, append(append([]byte(nil), b...), 0)},
		{"short", m, b[:len(b)-1]},
		{"empty", m, nil},
	}
	for _, c := range bad {
		if err := engine.CheckAppend(c.meta, c.batch); !errors.Is(err, engine.ErrInvalidBatch) {
			t.Errorf("%s: err = %v, want ErrInvalidBatch", c.name, err)
		}
	}
}

func TestOptions(t *testing.T) {
	var o engine.Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Log.SegmentBytes != engine.DefaultSegmentBytes || o.Log.IndexIntervalBytes != 4096 || o.FS == nil || o.Logger == nil {
		t.Fatalf("defaults not filled: %+v", o.Log)
	}
	bad := map[string]engine.LogOptions{
		"segment.bytes":        {SegmentBytes: 10},
		"segment.ms":           {SegmentMs: -1},
		"index.interval.bytes": {IndexIntervalBytes: -1},
		"segment.index.bytes":  {SegmentIndexBytes: 8},
		"flush.messages":       {FlushMessages: -5},
		"flush.ms":             {FlushInterval: -1},
	}
	for key, lo := range bad {
		err := lo.WithDefaults(o.Log).Validate()
		if !errors.Is(err, engine.ErrInvalidOptions) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions naming the key", key, err)
		}
	}
	// Per-log overrides win over the engine's defaults.
	lo := engine.LogOptions{SegmentBytes: 1 << 20}.WithDefaults(o.Log)
	if lo.SegmentBytes != 1<<20 || lo.FlushMessages != engine.DefaultFlushMessages {
		t.Fatalf("WithDefaults: %+v", lo)
	}
}

var registryRuns int

func TestRegistry(t *testing.T) {
	registryRuns++ // a name per run, so -count=N registers afresh
	name := fmt.Sprintf("registry-test-%d", registryRuns)
	opened := ""
	engine.Register(name, func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		opened = dir
		return nil, errors.New("not really")
	})
	if _, err := engine.Open(context.Background(), name, "d", engine.Options{}); err == nil || opened != "d" {
		t.Fatalf("Open did not reach the registered func: %v", err)
	}
	if _, err := engine.Open(context.Background(), "no-such", "d", engine.Options{}); !errors.Is(err, engine.ErrUnknownEngine) {
		t.Fatalf("unknown engine: err = %v", err)
	}
	if _, err := engine.Open(context.Background(), name, "d", engine.Options{Log: engine.LogOptions{SegmentBytes: 1}}); !errors.Is(err, engine.ErrInvalidOptions) {
		t.Fatalf("bad options reached the engine: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	engine.Register(name, func(context.Context, string, engine.Options) (engine.Engine, error) { return nil, nil })
}

func TestRegistryScheme(t *testing.T) {
	registryRuns++
	scheme := fmt.Sprintf("scheme-test-%d", registryRuns)
	var gotRef, gotDir string
	engine.RegisterScheme(scheme, func(ctx context.Context, ref, dir string, opts engine.Options) (engine.Engine, error) {
		gotRef, gotDir = ref, dir
		return nil, errors.New("not really")
	})
	if _, err := engine.Open(context.Background(), scheme+":a/b:c", "d", engine.Options{}); err == nil || gotRef != "a/b:c" || gotDir != "d" {
		t.Fatalf("Open did not reach the scheme's func with the ref: %v, ref %q, dir %q", err, gotRef, gotDir)
	}
	if s, ref, ok := engine.HasScheme(scheme + ":x"); !ok || s != scheme || ref != "x" {
		t.Errorf("HasScheme = %q, %q, %v", s, ref, ok)
	}
	if _, _, ok := engine.HasScheme("nope:x"); ok {
		t.Error("HasScheme of an unregistered scheme")
	}
	if _, err := engine.Open(context.Background(), "nope:x", "d", engine.Options{}); !errors.Is(err, engine.ErrUnknownEngine) {
		t.Errorf("unregistered scheme: %v", err)
	}
	for _, n := range engine.Names() {
		if strings.HasPrefix(n, scheme) {
			t.Errorf("Names lists the scheme: %v", engine.Names())
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a scheme twice did not panic")
		}
	}()
	engine.RegisterScheme(scheme, func(context.Context, string, string, engine.Options) (engine.Engine, error) { return nil, nil })
}

// failingLog appends until its limit, then fails.
type failingLog struct {
	engine.Log
	appended []engine.BatchMeta
	limit    int
}

func (l *failingLog) Append(_ context.Context, meta engine.BatchMeta, _ []byte) error {
	if len(l.appended) == l.limit {
		return errors.New("full")
	}
	l.appended = append(l.appended, meta)
	return nil
}

// TestAppendBatches: without a BatchAppender, AppendBatches appends one
// by one, in order, and stops at the first failure.
func TestAppendBatches(t *testing.T) {
	var batches []engine.Batch
	for i := range int64(5) {
		b, meta := enginetest.NewBatch(i, 1, 10, 0, 0)
		batches = append(batches, engine.Batch{Meta: meta, Data: b})
	}
	l := &failingLog{limit: 3}
	n, err := engine.AppendBatches(context.Background(), l, batches)
	if n != 3 || err == nil {
		t.Fatalf("AppendBatches = %d, %v; want 3 and the failure", n, err)
	}
	for i, m := range l.appended {
		if m.BaseOffset != int64(i) {
			t.Errorf("batch %d appended with base %d", i, m.BaseOffset)
		}
	}
	l = &failingLog{limit: 10}
	if n, err := engine.AppendBatches(context.Background(), l, batches); n != 5 || err != nil {
		t.Errorf("AppendBatches = %d, %v; want 5, nil", n, err)
	}
}

// FuzzCheckBatch: arbitrary bytes never panic the batch decoder, and what it
// accepts is self-consistent.
func FuzzCheckBatch(f *testing.F) {
	b, _ := enginetest.NewBatch(0, 2, 10, 5, 3)
	f.Add(b)
	f.Add(b[:30])
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := engine.CheckBatch(data)
		if err != nil {
			return
		}
		if h.Size() > len(data) || h.Magic != 2 || h.LastOffset() < h.BaseOffset {
			t.Fatalf("accepted inconsistent batch %+v of %d bytes", h, len(data))
		}
		if err := engine.CheckAppend(h.Meta(), data[:h.Size()]); err != nil {
			t.Fatalf("CheckAppend rejects what CheckBatch accepted: %v", err)
		}
	})
}
