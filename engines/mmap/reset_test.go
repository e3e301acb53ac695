package mmap

import (
	"bytes"
	"testing"

	"github.com/strata-broker/strata/engine"
)

// TestSegmentsAndReset checks the surface engines/tiered builds on:
// Segments reports settled segments once synced, and Reset restarts the log
// empty at any offset, below its start or at a segment's base, durably.
func TestSegmentsAndReset(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS))
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 60, 500)
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	segs = l.Segments()
	for i, s := range segs {
		if s.Settled != (i < len(segs)-1) {
			t.Fatalf("segment %d of %d: settled %v", i, len(segs), s.Settled)
		}
		if i > 0 && s.Base != segs[i-1].End {
			t.Fatalf("segment %d at %d, previous ends at %d", i, s.Base, segs[i-1].End)
		}
	}
	if l.Failed() {
		t.Fatal("log failed")
	}

	// At the base of an existing, non-empty segment.
	at := segs[1].Base
	if err := l.Reset(ctx, at); err != nil {
		t.Fatal(err)
	}
	if start, end := l.Offsets(); start != at || end != at {
		t.Fatalf("offsets [%d, %d) after Reset(%d)", start, end, at)
	}
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments after Reset", n)
	}
	// Below the start.
	if err := l.DeleteBefore(ctx, at+3); err != nil {
		t.Fatal(err)
	}
	if err := l.Reset(ctx, 5); err != nil {
		t.Fatal(err)
	}
	more := fill(t, l, 30, 400)
	want := concat(more)
	if got := readAll(t, l); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes after Reset and appends, want %d", len(got), len(want))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, e, engine.LogOptions{})
	if start, _ := l.Offsets(); start != 5 {
		t.Fatalf("start %d after reopen, want 5", start)
	}
	if got := readAll(t, l); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes after reopen, want %d", len(got), len(want))
	}
	_ = bs
}
