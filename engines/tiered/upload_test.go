package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// TestSettleAndColdReads moves every sealed segment to the cold tier and
// reads the log back across both tiers, with reads of every size, time
// lookups, a reopen, DeleteBefore and Truncate into the cold tier.
func TestSettleAndColdReads(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS, nil))
	defer func() { e.Close() }()
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 400, 900)
	want := concat(bs)
	if err := Settle(ctx, l); err != nil {
		t.Fatal(err)
	}
	if n := len(hotSegments(t, dir)); n != 1 {
		t.Fatalf("%d hot segments after Settle, want 1", n)
	}
	cb, err := ColdBytes(dir)
	if err != nil || cb <= 0 {
		t.Fatalf("ColdBytes = %d, %v", cb, err)
	}
	cs := l.cold.Load()
	if len(cs.segs) < 5 {
		t.Fatalf("%d cold segments", len(cs.segs))
	}
	checkNoOrphans(t, dir)
	for _, mb := range []int{1, 700, 5000, 1 << 20} {
		if got := readAll(t, l, 0, mb); !bytes.Equal(got, want) {
			t.Fatalf("maxBytes %d: read back %d bytes, want %d", mb, len(got), len(want))
		}
	}
	// Reads inside batches, in every tier.
	for i := 0; i < len(bs); i += 7 {
		b := bs[i]
		recs, err := l.Read(ctx, b.meta.LastOffset, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(recs.Chunks[0], b.data) || recs.NextOffset != b.meta.LastOffset+1 {
			t.Fatalf("Read(%d) = batch of %d bytes, next %d", b.meta.LastOffset, len(recs.Chunks[0]), recs.NextOffset)
		}
		recs.Release()
		off, err := l.OffsetForTime(ctx, b.meta.MaxTimestamp)
		if err != nil || off != b.meta.BaseOffset {
			t.Fatalf("OffsetForTime(%d) = %d, %v; want %d", b.meta.MaxTimestamp, off, err, b.meta.BaseOffset)
		}
	}
	if e.cache.bytes() > e.set.cacheBytes {
		t.Fatalf("frame cache holds %d bytes, limit %d", e.cache.bytes(), e.set.cacheBytes)
	}

	// Reopen: the same log, from both tiers.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir, testOptions(engine.OSFS, nil))
	l = openLog(t, e, engine.LogOptions{})
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
		t.Fatalf("after reopen: read back %d bytes, want %d", len(got), len(want))
	}

	// DeleteBefore inside the third cold segment: the first two objects go.
	cs = l.cold.Load()
	cut := cs.segs[2].base + 1
	if err := l.DeleteBefore(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if start, _ := l.Offsets(); start != cut {
		t.Fatalf("start %d, want %d", start, cut)
	}
	if n := len(l.cold.Load().segs); n != len(cs.segs)-2 {
		t.Fatalf("%d cold segments after DeleteBefore, want %d", n, len(cs.segs)-2)
	}
	checkNoOrphans(t, dir)
	if _, err := l.Read(ctx, cut-2, 100); !errors.Is(err, engine.ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}

	// Truncate into the middle of the fourth cold segment.
	var k int
	for k = range bs {
		if bs[k].meta.BaseOffset > l.cold.Load().segs[1].base+3 {
			break
		}
	}
	to := bs[k].meta.BaseOffset + 1
	if err := l.Truncate(ctx, to); err != nil {
		t.Fatal(err)
	}
	if _, end := l.Offsets(); end != bs[k].meta.BaseOffset {
		t.Fatalf("end %d after Truncate(%d), want %d", end, to, bs[k].meta.BaseOffset)
	}
	checkNoOrphans(t, dir)
	more := fill(t, l, 30, 500)
	start, _ := l.Offsets()
	var wantAfter []byte
	for _, b := range bs[:k] {
		if b.meta.LastOffset >= start {
			wantAfter = append(wantAfter, b.data...)
		}
	}
	wantAfter = append(wantAfter, concat(more)...)
	if got := readAll(t, l, start, 3000); !bytes.Equal(got, wantAfter) {
		t.Fatalf("after Truncate and appends: read back %d bytes, want %d", len(got), len(wantAfter))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir, testOptions(engine.OSFS, nil))
	l = openLog(t, e, engine.LogOptions{})
	if got := readAll(t, l, start, 3000); !bytes.Equal(got, wantAfter) {
		t.Fatalf("after reopen: read back %d bytes, want %d", len(got), len(wantAfter))
	}
	checkNoOrphans(t, dir)
}

// TestLocalRetention checks which segments the background uploader moves:
// none with -2, the old ones by time, the ones beyond the byte cap.
func TestLocalRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		lo   engine.LogOptions
		hot  func(n int) bool // given the number of hot segments left
	}{
		{"AsRetention", engine.LogOptions{LocalRetentionMs: -2 * 1e6, LocalRetentionBytes: -2}, func(n int) bool { return n > 5 }},
		{"Bytes", engine.LogOptions{LocalRetentionMs: -2 * 1e6, LocalRetentionBytes: 100 << 10}, func(n int) bool { return n >= 3 && n <= 5 }},
		{"Zero", engine.LogOptions{}, func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir, testOptions(engine.OSFS, nil))
			defer e.Close()
			l := openLog(t, e, tc.lo)
			bs := fill(t, l, 300, 900)
			if err := Settle(ctx, l); err != nil {
				t.Fatal(err)
			}
			if n := len(hotSegments(t, dir)); !tc.hot(n) {
				t.Fatalf("%d hot segments left", n)
			}
			if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
				t.Fatal("log differs")
			}
			checkNoOrphans(t, dir)
		})
	}
}

var errCrash = errors.New("injected crash")

// TestCrashBetweenUploadSteps cuts an upload short after each of its steps,
// as a crash there would, reopens the engine and checks that the log is
// whole and that no object or hot copy is left over; then uploads again.
func TestCrashBetweenUploadSteps(t *testing.T) {
	for _, step := range []uploadStep{stepStored, stepVerified, stepListed} {
		for _, nth := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/upload%d", step, nth), func(t *testing.T) {
				dir := t.TempDir()
				e := openEngine(t, dir, testOptions(engine.OSFS, nil))
				uploads := 0
				e.hook = func(s uploadStep) error {
					if s == step {
						uploads++
						if uploads == nth {
							return errCrash
						}
					}
					return nil
				}
				l := openLog(t, e, engine.LogOptions{})
				bs := fill(t, l, 250, 900)
				want := concat(bs)
				if err := Settle(ctx, l); !errors.Is(err, errCrash) {
					t.Fatalf("Settle: %v, want the injected crash", err)
				}
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				e = openEngine(t, dir, testOptions(engine.OSFS, nil))
				defer func() { e.Close() }()
				l = openLog(t, e, engine.LogOptions{})
				checkNoOrphans(t, dir)
				if n := len(l.cold.Load().segs); n != nth-1+btoi(step == stepListed) {
					t.Fatalf("%d cold segments after the crash, want %d", n, nth-1+btoi(step == stepListed))
				}
				if start, end := l.Offsets(); start != 0 || end != bs[len(bs)-1].meta.LastOffset+1 {
					t.Fatalf("offsets [%d, %d)", start, end)
				}
				if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
					t.Fatalf("read back %d bytes, want %d", len(got), len(want))
				}
				if err := Settle(ctx, l); err != nil {
					t.Fatal(err)
				}
				checkNoOrphans(t, dir)
				if n := len(hotSegments(t, dir)); n != 1 {
					t.Fatalf("%d hot segments after Settle, want 1", n)
				}
				if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
					t.Fatalf("after Settle: read back %d bytes, want %d", len(got), len(want))
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestUploadWriteFault: a cold store that fails writes leaves the log as
// it was (the upload is retried later); a failed manifest write fails the
// log until reopened.
func TestUploadWriteFault(t *testing.T) {
	dir := t.TempDir()
	fs := enginetest.NewFaultFS(engine.OSFS)
	e := openEngine(t, dir, testOptions(fs, nil))
	defer func() { e.Close() }()
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 200, 900)
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fs.Fail(enginetest.ErrInjected)
	if err := l.settle(ctx, true); err == nil {
		t.Fatal("settle with a failing disk succeeded")
	}
	fs.Fail(nil)
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs after a failed upload")
	}
	e.Close()
	e = openEngine(t, dir, testOptions(engine.OSFS, nil))
	l = openLog(t, e, engine.LogOptions{})
	checkNoOrphans(t, dir)
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs after reopen")
	}
}

// TestSettings checks the strata.tiered.* keys: unknown ones are errors
// naming them, other engines' keys are left alone.
func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		wantErr  string
	}{
		{map[string]string{"strata.tiered.bogus": "1"}, "strata.tiered.bogus"},
		{map[string]string{SettingFrameCacheBytes: "-1"}, SettingFrameCacheBytes},
		{map[string]string{SettingFrameBytes: "0"}, SettingFrameBytes},
		{map[string]string{SettingUploadIntervalMs: "x"}, SettingUploadIntervalMs},
		{map[string]string{"strata.pebble.cache.size": "64MiB", SettingFrameCacheBytes: "8MiB"}, ""},
	} {
		dir := t.TempDir()
		e, err := Open(ctx, dir, testOptions(engine.OSFS, tc.settings))
		if tc.wantErr == "" {
			if err != nil {
				t.Fatalf("%v: %v", tc.settings, err)
			}
			e.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, engine.ErrInvalidOptions) {
			if e != nil {
				e.Close()
			}
			t.Fatalf("%v: err %v, want one naming %s", tc.settings, err, tc.wantErr)
		}
	}
	// The cold directory setting.
	dir, cold := t.TempDir(), t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS, map[string]string{SettingColdDir: cold}))
	l := openLog(t, e, engine.LogOptions{})
	fill(t, l, 100, 900)
	if err := Settle(ctx, l); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if n, err := ColdBytes(cold); err != nil || n == 0 {
		t.Fatalf("ColdBytes(cold dir) = %d, %v", n, err)
	}
	if n, _ := ColdBytes(dir); n != 0 {
		t.Fatalf("ColdBytes(engine dir) = %d with the cold tier elsewhere", n)
	}
}

// corruptingStore flips a byte of every object it stores.
type corruptingStore struct{ ColdStore }

func (c corruptingStore) Put(ctx context.Context, name string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b[len(b)/3] ^= 0x5A
	return c.ColdStore.Put(ctx, name, bytes.NewReader(b))
}

// TestVerifyCatchesBadStore: an object that does not read back as written
// is never listed, and is removed; the hot copy stays.
func TestVerifyCatchesBadStore(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS, nil))
	defer func() { e.Close() }()
	e.cold = corruptingStore{e.cold}
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 100, 900)
	if err := Settle(ctx, l); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("Settle over a corrupting store: %v", err)
	}
	if n := len(l.cold.Load().segs); n != 0 {
		t.Fatalf("%d cold segments listed", n)
	}
	checkNoOrphans(t, dir)
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs")
	}
}

// TestDeleteLog removes the cold objects with the log, and Open removes
// those of a log whose deletion a crash interrupted.
func TestDeleteLog(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS, nil))
	l := openLog(t, e, engine.LogOptions{})
	fill(t, l, 100, 900)
	if err := Settle(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteLog(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if n, _ := ColdBytes(dir); n != 0 {
		t.Fatalf("%d cold bytes after DeleteLog", n)
	}
	if _, err := l.Read(ctx, 0, 100); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Read of a deleted log: %v", err)
	}
	// An object of a log that no longer exists.
	if err := e.cold.Put(ctx, "gone-3/00000000000000000000-0000000000000001.cold", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = openEngine(t, dir, testOptions(engine.OSFS, nil))
	defer e.Close()
	if objs, _ := e.cold.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("objects left after reopen: %v", objs)
	}
}

// TestUploadResumesInProcess: an upload whose hot copy was not dropped
// after its manifest write is finished by the next Settle, without a
// reopen.
func TestUploadResumesInProcess(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir, testOptions(engine.OSFS, nil))
	defer func() { e.Close() }()
	failed := false
	e.hook = func(s uploadStep) error {
		if s == stepListed && !failed {
			failed = true
			return errCrash
		}
		return nil
	}
	l := openLog(t, e, engine.LogOptions{})
	bs := fill(t, l, 150, 900)
	if err := Settle(ctx, l); !errors.Is(err, errCrash) {
		t.Fatalf("Settle: %v", err)
	}
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs after the cut-short upload")
	}
	if err := Settle(ctx, l); err != nil {
		t.Fatal(err)
	}
	checkNoOrphans(t, dir)
	if n := len(hotSegments(t, dir)); n != 1 {
		t.Fatalf("%d hot segments", n)
	}
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs")
	}
}

// TestCrashDuringColdTruncate recreates what a crash leaves at each step of
// a Truncate into the cold tier and checks what reopening makes of it: the
// old log, or a prefix of it, with no object left over.
func TestCrashDuringColdTruncate(t *testing.T) {
	for _, step := range []string{"stored", "hot-reset"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir, testOptions(engine.OSFS, nil))
			l := openLog(t, e, engine.LogOptions{})
			bs := fill(t, l, 200, 900)
			if err := Settle(ctx, l); err != nil {
				t.Fatal(err)
			}
			cs := l.cold.Load()
			s := cs.segs[2]
			to := s.base + (s.last-s.base)/2
			keep, newEnd, err := l.prefixBefore(ctx, s, to)
			if err != nil {
				t.Fatal(err)
			}
			// The first step: the kept prefix stored as a new object.
			if _, err := l.put(ctx, keep, nil); err != nil {
				t.Fatal(err)
			}
			if step == "hot-reset" {
				if err := l.hot.Reset(ctx, newEnd); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e = openEngine(t, dir, testOptions(engine.OSFS, nil))
			defer func() { e.Close() }()
			l = openLog(t, e, engine.LogOptions{})
			checkNoOrphans(t, dir)
			want := concat(bs)
			if step == "hot-reset" {
				// The cold tier alone: a prefix of the log.
				end := cs.end()
				want = nil
				for _, b := range bs {
					if b.meta.LastOffset < end {
						want = append(want, b.data...)
					}
				}
			}
			if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(want))
			}
			// The log goes on: a real Truncate now.
			if err := l.Truncate(ctx, to); err != nil {
				t.Fatal(err)
			}
			if _, end := l.Offsets(); end != newEnd {
				t.Fatalf("end %d, want %d", end, newEnd)
			}
			checkNoOrphans(t, dir)
			fill(t, l, 10, 300)
		})
	}
}

// TestLocalRetentionByTime moves the segments whose max timestamp is at
// least local.retention.ms old, by Options.Now, and no newer one.
func TestLocalRetentionByTime(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(engine.OSFS, nil)
	const cutoff = 1_000_600 // batches carry timestamps 1_000_000 + their base offset
	opts.Now = func() time.Time { return time.UnixMilli(cutoff + 1000) }
	e := openEngine(t, dir, opts)
	defer e.Close()
	l := openLog(t, e, engine.LogOptions{LocalRetentionMs: time.Second, LocalRetentionBytes: -2})
	bs := fill(t, l, 300, 900)
	if err := Settle(ctx, l); err != nil {
		t.Fatal(err)
	}
	cs := l.cold.Load()
	if len(cs.segs) == 0 {
		t.Fatal("nothing moved")
	}
	for _, s := range cs.segs {
		if s.maxTs > cutoff {
			t.Fatalf("segment [%d, %d] with max timestamp %d moved, cutoff %d", s.base, s.last, s.maxTs, cutoff)
		}
	}
	if first := l.hot.Segments()[0]; first.Settled && first.MaxTimestamp <= cutoff {
		t.Fatalf("hot segment at %d with max timestamp %d stayed", first.Base, first.MaxTimestamp)
	}
	if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(bs)) {
		t.Fatal("log differs")
	}
}
