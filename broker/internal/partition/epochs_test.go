package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

var epochsTP = engine.TopicPartition{Topic: "epochs", Partition: 3}

// offsetsLog is a log that only reports its offsets: enough for
// openLeaderEpochs when a checkpoint exists (it then never reads the log).
type offsetsLog struct {
	engine.Log
	start, end int64
}

func (l offsetsLog) Offsets() (int64, int64) { return l.start, l.end }

// noWalk fails the test if openLeaderEpochs rebuilds from the log.
func noWalk(t *testing.T) func(context.Context, int64, int64, func(*engine.BatchHeader) bool) error {
	return func(context.Context, int64, int64, func(*engine.BatchHeader) bool) error {
		t.Error("the log was walked although a checkpoint exists")
		return nil
	}
}

// newEpochs returns an empty cache of epochsTP in log dir dir, holding
// entries (assigned, so also checkpointed).
func newEpochs(t *testing.T, dir string, entries ...epochEntry) *leaderEpochs {
	t.Helper()
	d, name := epochsPath(dir, epochsTP)
	c := &leaderEpochs{dir: d, name: name}
	for _, e := range entries {
		if err := c.assign(e.epoch, e.start); err != nil {
			t.Fatal(err)
		}
	}
	wantEpochs(t, c, entries...)
	return c
}

func checkpointFile(dir string) string {
	d, name := epochsPath(dir, epochsTP)
	return filepath.Join(d, name)
}

func writeCheckpoint(t *testing.T, dir, text string) {
	t.Helper()
	p := checkpointFile(dir)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(checkpointFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantEpochs(t *testing.T, c *leaderEpochs, want ...epochEntry) {
	t.Helper()
	c.mu.Lock()
	got := slices.Clone(c.entries)
	c.mu.Unlock()
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("entries %v, want %v", got, want)
	}
}

// wantPersisted checks that the checkpoint holds want, both by parsing it
// and by reopening the cache over a log that spans want.
func wantPersisted(t *testing.T, dir string, want ...epochEntry) {
	t.Helper()
	got, err := parseEpochs([]byte(readCheckpoint(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("checkpoint %v, want %v", got, want)
	}
	start, end := int64(0), int64(1)
	if len(want) > 0 {
		start, end = want[0].start, want[len(want)-1].start+1
	}
	c, err := openLeaderEpochs(context.Background(), dir, epochsTP, offsetsLog{start: start, end: end}, noWalk(t))
	if err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c, want...)
}

func TestEpochsEndOffsetFor(t *testing.T) {
	const logEnd = 30
	c := newEpochs(t, t.TempDir(), epochEntry{0, 0}, epochEntry{2, 10}, epochEntry{5, 20})
	for _, tc := range []struct {
		name      string
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{"newest", 5, 5, logEnd},
		{"above newest", 6, -1, -1},
		{"far above newest", 1 << 30, -1, -1},
		{"undefined", -1, -1, -1},
		{"negative", -7, -1, -1},
		{"oldest", 0, 0, 10},
		{"gap after oldest", 1, 0, 10},
		{"middle", 2, 2, 20},
		{"gap after middle", 3, 2, 20},
		{"gap just below newest", 4, 2, 20},
	} {
		e, off := c.endOffsetFor(tc.epoch, logEnd)
		if e != tc.wantEpoch || off != tc.wantEnd {
			t.Errorf("%s: endOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.name, tc.epoch, e, off, tc.wantEpoch, tc.wantEnd)
		}
	}

	// Below the oldest epoch: the requested epoch, ending where the
	// oldest begins.
	c = newEpochs(t, t.TempDir(), epochEntry{3, 5}, epochEntry{4, 8}, epochEntry{7, 12})
	for _, tc := range []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{0, 0, 5}, {2, 2, 5}, {3, 3, 8}, {5, 4, 12}, {6, 4, 12}, {7, 7, 40}, {8, -1, -1},
	} {
		e, off := c.endOffsetFor(tc.epoch, 40)
		if e != tc.wantEpoch || off != tc.wantEnd {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.epoch, e, off, tc.wantEpoch, tc.wantEnd)
		}
	}

	// A single epoch: it is the newest.
	c = newEpochs(t, t.TempDir(), epochEntry{4, 7})
	if e, off := c.endOffsetFor(4, 9); e != 4 || off != 9 {
		t.Errorf("single: endOffsetFor(4) = (%d, %d), want (4, 9)", e, off)
	}
	if e, off := c.endOffsetFor(1, 9); e != 1 || off != 7 {
		t.Errorf("single: endOffsetFor(1) = (%d, %d), want (1, 7)", e, off)
	}

	// An empty cache knows nothing.
	c = newEpochs(t, t.TempDir())
	for _, epoch := range []int32{-1, 0, 3} {
		if e, off := c.endOffsetFor(epoch, 10); e != -1 || off != -1 {
			t.Errorf("empty: endOffsetFor(%d) = (%d, %d), want (-1, -1)", epoch, e, off)
		}
	}
}

func TestEpochsLatestStartOf(t *testing.T) {
	c := newEpochs(t, t.TempDir())
	if got := c.latest(); got != -1 {
		t.Errorf("empty latest = %d, want -1", got)
	}
	if got := c.startOf(0); got != -1 {
		t.Errorf("empty startOf(0) = %d, want -1", got)
	}
	c = newEpochs(t, t.TempDir(), epochEntry{0, 0}, epochEntry{2, 10}, epochEntry{5, 20})
	if got := c.latest(); got != 5 {
		t.Errorf("latest = %d, want 5", got)
	}
	for epoch, want := range map[int32]int64{0: 0, 1: -1, 2: 10, 3: -1, 5: 20, 6: -1, -1: -1} {
		if got := c.startOf(epoch); got != want {
			t.Errorf("startOf(%d) = %d, want %d", epoch, got, want)
		}
	}
}

func TestEpochsAssign(t *testing.T) {
	dir := t.TempDir()
	c := newEpochs(t, dir)
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an empty cache wrote a checkpoint: %v", err)
	}

	// Negative epochs (batches of clients that set none) are ignored,
	// and write nothing.
	if err := c.assign(-1, 0); err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c)
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a negative epoch wrote a checkpoint: %v", err)
	}

	for _, e := range []epochEntry{{1, 0}, {3, 10}} {
		if err := c.assign(e.epoch, e.start); err != nil {
			t.Fatal(err)
		}
	}
	want := []epochEntry{{1, 0}, {3, 10}}
	wantEpochs(t, c, want...)
	if got, w := readCheckpoint(t, dir), "0\n2\n1 0\n3 10\n"; got != w {
		t.Fatalf("checkpoint %q, want %q", got, w)
	}

	// An epoch at or below the newest changes nothing, wherever it
	// would begin.
	for _, e := range []epochEntry{{3, 15}, {3, 5}, {2, 12}, {0, 20}, {-1, 30}, {-5, 2}} {
		if err := c.assign(e.epoch, e.start); err != nil {
			t.Fatal(err)
		}
		wantEpochs(t, c, want...)
	}
	wantPersisted(t, dir, want...)

	// A newer epoch at the same offset as the newest (no records in
	// between) and one after it are added.
	if err := c.assign(4, 20); err != nil {
		t.Fatal(err)
	}
	if err := c.assign(6, 25); err != nil {
		t.Fatal(err)
	}
	want = []epochEntry{{1, 0}, {3, 10}, {4, 20}, {6, 25}}
	wantEpochs(t, c, want...)
	wantPersisted(t, dir, want...)

	// A newer epoch that begins below the newest entry's start: the log
	// was cut there without the cache being told, so the entries that
	// begin at or after it go.
	if err := c.assign(7, 20); err != nil {
		t.Fatal(err)
	}
	want = []epochEntry{{1, 0}, {3, 10}, {7, 20}}
	wantEpochs(t, c, want...)
	wantPersisted(t, dir, want...)
	if err := c.assign(9, 4); err != nil {
		t.Fatal(err)
	}
	want = []epochEntry{{1, 0}, {9, 4}}
	wantEpochs(t, c, want...)
	wantPersisted(t, dir, want...)
	if err := c.assign(10, 0); err != nil {
		t.Fatal(err)
	}
	want = []epochEntry{{10, 0}}
	wantEpochs(t, c, want...)
	wantPersisted(t, dir, want...)
	if got := c.latest(); got != 10 {
		t.Errorf("latest = %d, want 10", got)
	}
}

// A checkpoint that cannot be written fails assign: the caller must not
// go on as if the epoch were recorded.
func TestEpochsAssignSaveError(t *testing.T) {
	dir := t.TempDir()
	// A file where the checkpoints' directory belongs.
	if err := os.WriteFile(filepath.Join(dir, epochsDir), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newEpochs(t, dir)
	if err := c.assign(1, 0); err == nil {
		t.Fatal("assign succeeded although the checkpoint cannot be written")
	}
}

func TestEpochsTruncateFromEnd(t *testing.T) {
	entries := []epochEntry{{0, 0}, {2, 10}, {5, 20}}
	for _, tc := range []struct {
		offset int64
		want   []epochEntry
	}{
		{30, entries},
		{21, entries},
		{20, entries[:2]}, // an epoch that begins at the new end goes
		{15, entries[:2]},
		{11, entries[:2]},
		{10, entries[:1]},
		{1, entries[:1]},
		{0, nil},
	} {
		dir := t.TempDir()
		c := newEpochs(t, dir, entries...)
		if err := c.truncateFromEnd(tc.offset); err != nil {
			t.Fatal(err)
		}
		wantEpochs(t, c, tc.want...)
		wantPersisted(t, dir, tc.want...)
	}

	// Truncating an empty cache writes nothing.
	dir := t.TempDir()
	c := newEpochs(t, dir)
	if err := c.truncateFromEnd(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("truncating an empty cache wrote a checkpoint: %v", err)
	}
}

func TestEpochsTruncateFromStart(t *testing.T) {
	entries := []epochEntry{{0, 0}, {2, 10}, {5, 20}}
	for _, tc := range []struct {
		offset int64
		want   []epochEntry
	}{
		{0, entries},
		{1, []epochEntry{{0, 1}, {2, 10}, {5, 20}}},
		{9, []epochEntry{{0, 9}, {2, 10}, {5, 20}}},
		{10, []epochEntry{{2, 10}, {5, 20}}}, // an epoch begins there: the older go
		{11, []epochEntry{{2, 11}, {5, 20}}},
		{20, []epochEntry{{5, 20}}},
		{25, []epochEntry{{5, 25}}},
		{100, []epochEntry{{5, 100}}}, // beyond every start: the newest stays
	} {
		dir := t.TempDir()
		c := newEpochs(t, dir, entries...)
		if err := c.truncateFromStart(tc.offset); err != nil {
			t.Fatal(err)
		}
		wantEpochs(t, c, tc.want...)
		wantPersisted(t, dir, tc.want...)
		// The answers follow the moved start.
		if e, off := c.endOffsetFor(tc.want[0].epoch, 200); len(tc.want) > 1 && (e != tc.want[0].epoch || off != tc.want[1].start) {
			t.Errorf("after truncateFromStart(%d): endOffsetFor(%d) = (%d, %d)", tc.offset, tc.want[0].epoch, e, off)
		}
	}

	// Repeated moves of the start.
	dir := t.TempDir()
	c := newEpochs(t, dir, entries...)
	for _, off := range []int64{3, 3, 12, 15} {
		if err := c.truncateFromStart(off); err != nil {
			t.Fatal(err)
		}
	}
	wantEpochs(t, c, epochEntry{2, 15}, epochEntry{5, 20})
	wantPersisted(t, dir, epochEntry{2, 15}, epochEntry{5, 20})

	// An empty cache stays empty, and writes nothing.
	dir = t.TempDir()
	c = newEpochs(t, dir)
	if err := c.truncateFromStart(10); err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c)
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("truncating an empty cache wrote a checkpoint: %v", err)
	}
}

func TestEpochsClearAll(t *testing.T) {
	dir := t.TempDir()
	c := newEpochs(t, dir, epochEntry{0, 0}, epochEntry{2, 10}, epochEntry{5, 20})
	if err := c.clearAll(); err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c)
	if got, w := readCheckpoint(t, dir), "0\n0\n"; got != w {
		t.Fatalf("checkpoint %q, want %q", got, w)
	}
	if c.latest() != -1 {
		t.Errorf("latest after clearAll = %d", c.latest())
	}
	if e, off := c.endOffsetFor(5, 30); e != -1 || off != -1 {
		t.Errorf("endOffsetFor after clearAll = (%d, %d)", e, off)
	}
	// The empty checkpoint is kept: reopening does not rebuild from the
	// log.
	r, err := openLeaderEpochs(context.Background(), dir, epochsTP, offsetsLog{start: 0, end: 30}, noWalk(t))
	if err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, r)

	// A new epoch after the clear.
	if err := c.assign(7, 40); err != nil {
		t.Fatal(err)
	}
	wantPersisted(t, dir, epochEntry{7, 40})
	// Clearing twice, or an empty cache, is harmless.
	if err := c.clearAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.clearAll(); err != nil {
		t.Fatal(err)
	}
	wantPersisted(t, dir)
}

// epochBatch returns a v2 batch of count records at base written in
// leader epoch epoch.
func epochBatch(base int64, count int, epoch int32) []byte {
	b, _ := enginetest.NewBatch(base, count, 8, 1000+base, byte(base))
	// The CRC begins after the magic byte: the epoch is not covered.
	binary.BigEndian.PutUint32(b[12:16], uint32(epoch))
	return b
}

func appendEpochBatch(t *testing.T, l engine.Log, base int64, count int, epoch int32) {
	t.Helper()
	b := epochBatch(base, count, epoch)
	h, err := engine.ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.PartitionLeaderEpoch != epoch {
		t.Fatalf("batch epoch %d, want %d", h.PartitionLeaderEpoch, epoch)
	}
	if _, err := engine.CheckBatch(b); err != nil {
		t.Fatalf("setting the epoch broke the batch: %v", err)
	}
	if err := l.Append(context.Background(), h.Meta(), b); err != nil {
		t.Fatal(err)
	}
}

func openEpochsLog(t *testing.T, engineName string) engine.Log {
	t.Helper()
	ctx := context.Background()
	e, err := engine.Open(ctx, engineName, t.TempDir(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	l, err := e.OpenLog(ctx, epochsTP, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestEpochsRebuildFromLog(t *testing.T) {
	for _, name := range []string{"mem", "mmap"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := openEpochsLog(t, name)
			p := &Partition{tp: epochsTP, log: l}
			for _, b := range []struct {
				base  int64
				count int
				epoch int32
			}{
				{0, 5, 0},
				{5, 5, 0},
				{10, 3, 2},
				{13, 2, -1}, // no epoch: ignored
				{15, 5, 2},
				{20, 4, 5},
				{24, 1, 3}, // older than the newest: ignored
				{25, 5, 5},
			} {
				appendEpochBatch(t, l, b.base, b.count, b.epoch)
			}
			if s, e := l.Offsets(); s != 0 || e != 30 {
				t.Fatalf("log offsets %d, %d", s, e)
			}

			dir := t.TempDir()
			c, err := openLeaderEpochs(ctx, dir, epochsTP, l, p.walkBatches)
			if err != nil {
				t.Fatal(err)
			}
			want := []epochEntry{{0, 0}, {2, 10}, {5, 20}}
			wantEpochs(t, c, want...)
			if got, w := readCheckpoint(t, dir), "0\n3\n0 0\n2 10\n5 20\n"; got != w {
				t.Errorf("checkpoint %q, want %q", got, w)
			}
			if e, off := c.endOffsetFor(3, 30); e != 2 || off != 20 {
				t.Errorf("endOffsetFor(3) = (%d, %d), want (2, 20)", e, off)
			}

			// Reopening reads the checkpoint rather than the log.
			r, err := openLeaderEpochs(ctx, dir, epochsTP, l, noWalk(t))
			if err != nil {
				t.Fatal(err)
			}
			wantEpochs(t, r, want...)

			// With the log's start moved into a batch, the rebuilt
			// oldest epoch begins at the log start.
			if err := l.DeleteBefore(ctx, 12); err != nil {
				t.Fatal(err)
			}
			start, _ := l.Offsets()
			if start != 12 {
				t.Fatalf("log start %d after DeleteBefore(12)", start)
			}
			dir = t.TempDir()
			c, err = openLeaderEpochs(ctx, dir, epochsTP, l, p.walkBatches)
			if err != nil {
				t.Fatal(err)
			}
			want = []epochEntry{{2, 12}, {5, 20}}
			wantEpochs(t, c, want...)
			wantPersisted(t, dir, want...)
		})
	}
}

// A log without a checkpoint and without batches of any epoch yields an
// empty cache and writes no checkpoint.
func TestEpochsRebuildEmpty(t *testing.T) {
	ctx := context.Background()
	l := openEpochsLog(t, "mem")
	p := &Partition{tp: epochsTP, log: l}
	dir := t.TempDir()
	c, err := openLeaderEpochs(ctx, dir, epochsTP, l, p.walkBatches)
	if err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c)
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty log wrote a checkpoint: %v", err)
	}

	appendEpochBatch(t, l, 0, 3, -1)
	c, err = openLeaderEpochs(ctx, dir, epochsTP, l, p.walkBatches)
	if err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c)
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a log without epochs wrote a checkpoint: %v", err)
	}
}

func TestEpochsRebuildWalkError(t *testing.T) {
	boom := errors.New("boom")
	walk := func(context.Context, int64, int64, func(*engine.BatchHeader) bool) error { return boom }
	_, err := openLeaderEpochs(context.Background(), t.TempDir(), epochsTP, offsetsLog{start: 0, end: 10}, walk)
	if !errors.Is(err, boom) {
		t.Fatalf("open = %v, want %v", err, boom)
	}
}

// A crash may cut the log below epochs the checkpoint holds, and the
// log's start may have moved past epochs since it was written: opening
// cuts the checkpoint to the log.
func TestEpochsOpenCutsToLog(t *testing.T) {
	ctx := context.Background()
	const text = "0\n4\n0 0\n2 10\n5 20\n6 30\n"
	for _, tc := range []struct {
		name       string
		start, end int64
		want       []epochEntry
	}{
		{"whole", 0, 31, []epochEntry{{0, 0}, {2, 10}, {5, 20}, {6, 30}}},
		{"end cut at newest start", 0, 30, []epochEntry{{0, 0}, {2, 10}, {5, 20}}},
		{"end cut", 0, 25, []epochEntry{{0, 0}, {2, 10}, {5, 20}}},
		{"end cut deep", 0, 10, []epochEntry{{0, 0}}},
		{"start moved", 15, 40, []epochEntry{{2, 15}, {5, 20}, {6, 30}}},
		{"start at an epoch", 20, 40, []epochEntry{{5, 20}, {6, 30}}},
		{"both", 12, 22, []epochEntry{{2, 12}, {5, 20}}},
		{"empty log", 0, 0, nil},
		// Records all deleted: the newest epoch stays, at the log start
		// (as in Kafka), so the next leader's epoch still follows it.
		{"log past every epoch", 35, 35, []epochEntry{{6, 35}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCheckpoint(t, dir, text)
			c, err := openLeaderEpochs(ctx, dir, epochsTP, offsetsLog{start: tc.start, end: tc.end}, noWalk(t))
			if err != nil {
				t.Fatal(err)
			}
			wantEpochs(t, c, tc.want...)
			got, err := parseEpochs([]byte(readCheckpoint(t, dir)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Errorf("checkpoint %v, want %v", got, tc.want)
			}
		})
	}

	// The same with a real log that a crash cut: the checkpoint was
	// written for epochs whose batches never reached the log.
	l := openEpochsLog(t, "mmap")
	p := &Partition{tp: epochsTP, log: l}
	appendEpochBatch(t, l, 0, 10, 0)
	appendEpochBatch(t, l, 10, 5, 2)
	dir := t.TempDir()
	writeCheckpoint(t, dir, text)
	c, err := openLeaderEpochs(ctx, dir, epochsTP, l, p.walkBatches)
	if err != nil {
		t.Fatal(err)
	}
	wantEpochs(t, c, epochEntry{0, 0}, epochEntry{2, 10})
	if got, w := readCheckpoint(t, dir), "0\n2\n0 0\n2 10\n"; got != w {
		t.Errorf("checkpoint %q, want %q", got, w)
	}
}

func TestEpochsParse(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []epochEntry
	}{
		{"0\n0\n", nil},
		{"0\n1\n3 7\n", []epochEntry{{3, 7}}},
		{"0\n3\n0 0\n2 10\n5 20\n", []epochEntry{{0, 0}, {2, 10}, {5, 20}}},
		{"0\n2\n1 5\n2 5\n", []epochEntry{{1, 5}, {2, 5}}}, // an epoch without records
		{"0\r\n1\r\n3 7\r\n", []epochEntry{{3, 7}}},
		{"0\n1\n3 7", []epochEntry{{3, 7}}},           // no final newline
		{"\n0\n\n1\n\n3 7\n\n", []epochEntry{{3, 7}}}, // blank lines
		{"0\n1\n2147483647 9223372036854775807\n", []epochEntry{{2147483647, 9223372036854775807}}},
	} {
		got, err := parseEpochs([]byte(tc.text))
		if err != nil {
			t.Errorf("parseEpochs(%q): %v", tc.text, err)
			continue
		}
		if !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
			t.Errorf("parseEpochs(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}

	for _, text := range []string{
		"",
		"0\n",
		"1\n0\n",                  // wrong version
		"1\n1\n3 7\n",             // wrong version
		"x\n1\n3 7\n",             // wrong version
		"0\n2\n3 7\n",             // fewer entries than counted
		"0\n1\n3 7\n4 8\n",        // more entries than counted
		"0\n-1\n",                 // negative count
		"0\nx\n3 7\n",             // non-numeric count
		"0\n1\nx 7\n",             // non-numeric epoch
		"0\n1\n3 x\n",             // non-numeric offset
		"0\n1\n37\n",              // one field
		"0\n1\n3  7\n",            // two spaces
		"0\n1\n3 7 9\n",           // three fields
		"0\n1\n-1 7\n",            // negative epoch
		"0\n1\n3 -7\n",            // negative offset
		"0\n1\n2147483648 7\n",    // epoch beyond int32
		"0\n2\n3 7\n2 9\n",        // decreasing epoch
		"0\n2\n3 7\n3 9\n",        // repeated epoch
		"0\n2\n3 7\n4 6\n",        // decreasing offset
		"0\n3\n0 0\n5 20\n2 10\n", // out of order
	} {
		if got, err := parseEpochs([]byte(text)); err == nil {
			t.Errorf("parseEpochs(%q) = %v, want an error", text, got)
		}
	}
}

func TestEpochsOpenBadCheckpoint(t *testing.T) {
	ctx := context.Background()
	log := offsetsLog{start: 0, end: 30}
	for _, text := range []string{"1\n0\n", "0\n2\n1 0\n", "0\n1\nx 0\n", "0\n2\n3 0\n1 5\n"} {
		dir := t.TempDir()
		writeCheckpoint(t, dir, text)
		if _, err := openLeaderEpochs(ctx, dir, epochsTP, log, noWalk(t)); err == nil || !strings.Contains(err.Error(), epochsTP.String()) {
			t.Errorf("open with checkpoint %q: %v, want an error naming the partition", text, err)
		}
		// The bad checkpoint is left for an operator to look at.
		if got := readCheckpoint(t, dir); got != text {
			t.Errorf("checkpoint rewritten to %q", got)
		}
	}

	// A checkpoint that cannot be read (here a directory) fails the
	// open rather than being rebuilt over.
	dir := t.TempDir()
	if err := os.MkdirAll(checkpointFile(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openLeaderEpochs(ctx, dir, epochsTP, log, noWalk(t)); err == nil {
		t.Error("open with an unreadable checkpoint succeeded")
	}
}

func TestEpochsRemove(t *testing.T) {
	dir := t.TempDir()
	// Nothing yet: neither the directory nor the file.
	if err := removeLeaderEpochs(dir, epochsTP); err != nil {
		t.Fatalf("remove without a checkpoint: %v", err)
	}
	newEpochs(t, dir, epochEntry{1, 0})
	other := engine.TopicPartition{Topic: epochsTP.Topic, Partition: epochsTP.Partition + 1}
	d, name := epochsPath(dir, other)
	if err := (&leaderEpochs{dir: d, name: name, entries: []epochEntry{{2, 4}}}).save(); err != nil {
		t.Fatal(err)
	}
	if err := removeLeaderEpochs(dir, epochsTP); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(checkpointFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint still there: %v", err)
	}
	// Another partition's checkpoint stays.
	if _, err := os.Stat(filepath.Join(d, name)); err != nil {
		t.Errorf("other partition's checkpoint: %v", err)
	}
	// Removing again is harmless.
	if err := removeLeaderEpochs(dir, epochsTP); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	// A checkpoint path that cannot be removed (a non-empty directory)
	// is an error.
	if err := os.MkdirAll(filepath.Join(checkpointFile(dir), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeLeaderEpochs(dir, epochsTP); err == nil {
		t.Error("removing a non-empty directory succeeded")
	}
}

func TestEpochsPath(t *testing.T) {
	d, name := epochsPath("/data/logs", epochsTP)
	if d != filepath.Join("/data/logs", "leader-epoch-checkpoint") || name != "epochs-3" {
		t.Errorf("epochsPath = %q, %q", d, name)
	}
	// Every save leaves only the checkpoint in its directory: no
	// temporary files.
	dir := t.TempDir()
	c := newEpochs(t, dir, epochEntry{0, 0}, epochEntry{1, 5})
	if err := c.truncateFromStart(2); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, epochsDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "epochs-3" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("checkpoint dir holds %v", names)
	}
}

// The cache is shared by the append path, the fetcher and the request
// handlers: its methods may run concurrently (run with -race).
func TestEpochsConcurrent(t *testing.T) {
	dir := t.TempDir()
	c := newEpochs(t, dir, epochEntry{0, 0})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := int32(1); i <= 50; i++ {
			if err := c.assign(i, int64(i)*10); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			latest := c.latest()
			if e, off := c.endOffsetFor(latest, 1000); latest >= 0 && (e < 0 || off < 0) {
				t.Errorf("endOffsetFor(latest %d) = (%d, %d)", latest, e, off)
			}
			_ = c.startOf(int32(i % 50))
		}
	}()
	wg.Wait()
	if err := c.truncateFromStart(105); err != nil {
		t.Fatal(err)
	}
	if err := c.truncateFromEnd(300); err != nil {
		t.Fatal(err)
	}
	want := []epochEntry{{10, 105}}
	for i := int32(11); i < 30; i++ {
		want = append(want, epochEntry{i, int64(i) * 10})
	}
	wantEpochs(t, c, want...)
	wantPersisted(t, dir, want...)
}
