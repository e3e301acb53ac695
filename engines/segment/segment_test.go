package segment

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// testConfig returns a Config over the OS in a fresh directory, with small
// sizes so that a few batches make index entries and fill indexes.
func testConfig(t testing.TB) *Config {
	return &Config{
		FS:            engine.OSFS,
		Dir:           t.TempDir(),
		SegmentBytes:  64 << 10,
		IndexBytes:    4 << 10,
		IndexInterval: 300,
	}
}

type batch struct {
	meta engine.BatchMeta
	data []byte
	pos  int64
}

// appendBatches appends n batches of varying sizes and timestamps that go up
// and down, and returns them with their positions.
func appendBatches(t testing.TB, s *Segment, n int) []batch {
	t.Helper()
	var out []batch
	for i := range n {
		ts := int64(1000 + 10*((i*17+5)%23))
		data, meta := enginetest.NewBatch(s.End(), 1+i%4, 20+(i*37)%300, ts, byte(i))
		pos := s.Size()
		if err := s.Append(meta, data); err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		out = append(out, batch{meta, data, pos})
	}
	return out
}

func readFile(t testing.TB, cfg *Config, base int64, suffix string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfg.Dir, FileName(base, suffix)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, cfg *Config, base int64, suffix string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(cfg.Dir, FileName(base, suffix)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readAt reads from offset from and checks that the first batch returned is
// want, byte for byte, as a slice of the mapping.
func readAt(t testing.TB, s *Segment, from int64, maxBytes int, want batch) engine.Records {
	t.Helper()
	c, err := s.Locate(from)
	if err != nil {
		t.Fatalf("Locate(%d): %v", from, err)
	}
	recs, err := c.Read(from, math.MaxInt64, maxBytes)
	if err != nil {
		t.Fatalf("Read(%d): %v", from, err)
	}
	if len(recs.Chunks) != 1 || !bytes.HasPrefix(recs.Chunks[0], want.data) {
		t.Fatalf("Read(%d) does not start with the batch at %d", from, want.meta.BaseOffset)
	}
	return recs
}

func TestFileNames(t *testing.T) {
	for _, base := range []int64{0, 1, 1234, math.MaxInt64} {
		name := FileName(base, LogSuffix)
		if len(name) != 24 {
			t.Fatalf("FileName(%d) = %q", base, name)
		}
		got, suffix, ok := ParseFileName(name)
		if !ok || got != base || suffix != LogSuffix {
			t.Fatalf("ParseFileName(%q) = %d, %q, %v", name, got, suffix, ok)
		}
	}
	for _, name := range []string{"", "0000.log", "0000000000000000000a.log", "00000000000000000000.txt", "00000000000000000000"} {
		if _, _, ok := ParseFileName(name); ok {
			t.Fatalf("ParseFileName(%q) accepted", name)
		}
	}
	if FileName(1234, IndexSuffix) != "00000000000000001234.index" {
		t.Fatal(FileName(1234, IndexSuffix))
	}
}

// TestIndexEntries checks where the appender puts offset-index entries
// (every IndexInterval bytes, never at position 0), that lookups through
// them find every batch from any offset inside it, and that the time index
// has strictly rising timestamps.
func TestIndexEntries(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bs := appendBatches(t, s, 60)

	var want []byte
	var since int64
	for _, b := range bs {
		if since > 0 && since >= cfg.IndexInterval {
			want = be.AppendUint32(want, uint32(b.meta.BaseOffset-100))
			want = be.AppendUint32(want, uint32(b.pos))
			since = 0
		}
		since += int64(len(b.data))
	}
	if got := s.idx.mem[:s.idx.n.Load()*OffsetEntrySize]; !bytes.Equal(got, want) {
		t.Fatalf("offset index\n got % x\nwant % x", got, want)
	}
	if s.idx.n.Load() < 10 {
		t.Fatalf("only %d index entries: the test should make more", s.idx.n.Load())
	}
	for _, b := range bs {
		for off := b.meta.BaseOffset; off <= b.meta.LastOffset; off++ {
			recs := readAt(t, s, off, 1, b)
			if recs.Len() != len(b.data) || recs.NextOffset != b.meta.LastOffset+1 {
				t.Fatalf("Read(%d, 1): %d bytes, next %d", off, recs.Len(), recs.NextOffset)
			}
			recs.Release()
		}
	}
	prev := int64(math.MinInt64)
	for i := range s.tidx.n.Load() {
		ts, _ := s.tidx.timeAt(i)
		if ts <= prev {
			t.Fatalf("time entry %d: %d after %d", i, ts, prev)
		}
		prev = ts
	}
}

// TestOffsetForTime compares OffsetForTime with a brute-force answer over
// timestamps that rise and fall, for every threshold and start offset,
// while active and after a seal and a trusted reload.
func TestOffsetForTime(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	bs := appendBatches(t, s, 80)
	check := func(s *Segment) {
		t.Helper()
		for _, minOff := range []int64{0, bs[3].meta.BaseOffset + 1, bs[40].meta.LastOffset, bs[79].meta.LastOffset + 1} {
			for ts := int64(990); ts <= 1240; ts += 5 {
				want, wantOK := int64(0), false
				for _, b := range bs {
					if b.meta.LastOffset >= minOff && b.meta.MaxTimestamp >= ts {
						want, wantOK = b.meta.BaseOffset, true
						break
					}
				}
				got, ok, err := s.OffsetForTime(ts, minOff)
				if err != nil || ok != wantOK || (ok && got != want) {
					t.Fatalf("OffsetForTime(%d, %d) = %d, %v, %v; want %d, %v", ts, minOff, got, ok, err, want, wantOK)
				}
			}
		}
	}
	check(s)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	check(s)
	maxTs := s.MaxTimestamp()
	s.Close()
	s, rec, err := Load(cfg, 0, math.MaxInt64)
	if err != nil || !rec.Trusted {
		t.Fatalf("Load: %v, %+v", err, rec)
	}
	defer s.Close()
	if s.MaxTimestamp() != maxTs {
		t.Fatalf("MaxTimestamp after reload %d, want %d", s.MaxTimestamp(), maxTs)
	}
	check(s)
}

// TestIndexFull fills the smallest indexes and checks that IndexFull says
// so while the time index still has the slot Seal needs.
func TestIndexFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.IndexBytes = engine.MinSegmentIndexBytes
	cfg.IndexInterval = 0 // an entry for every batch but the first
	s, err := Create(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; !s.IndexFull(); i++ {
		if i > 100 {
			t.Fatal("index never full")
		}
		// Rising timestamps: a time entry with every offset entry.
		data, meta := enginetest.NewBatch(s.End(), 1, 10, int64(i), 0)
		if err := s.Append(meta, data); err != nil {
			t.Fatal(err)
		}
	}
	if n, lim := s.tidx.n.Load(), s.tidx.limit; n != lim-1 {
		t.Fatalf("time index full at %d of %d entries, want one slot left", n, lim)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.tidx.timeAt(s.tidx.n.Load() - 1); ts != s.MaxTimestamp() {
		t.Fatalf("last time entry %d, max timestamp %d", ts, s.MaxTimestamp())
	}
}

// TestRecoveryCutsAtExactByte damages a sealed segment in several ways and
// checks that validation keeps exactly the batches before the damage, cuts
// the file at the first byte of the damaged batch, and rebuilds indexes
// identical to the ones the appender wrote for that prefix.
func TestRecoveryCutsAtExactByte(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 500)
	if err != nil {
		t.Fatal(err)
	}
	bs := appendBatches(t, s, 40)
	s.Close()
	orig := readFile(t, cfg, 500, LogSuffix)

	// The indexes the appender writes for the first k batches.
	wantIndexes := func(k int) (idx, tidx []byte) {
		c := testConfig(t)
		c.IndexInterval = cfg.IndexInterval
		p, err := Create(c, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs[:k] {
			if err := p.Append(b.meta, b.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Seal(); err != nil {
			t.Fatal(err)
		}
		p.Close()
		return readFile(t, c, 500, IndexSuffix), readFile(t, c, 500, TimeIndexSuffix)
	}

	j := 23 // the damaged batch
	cases := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"cut inside the header", func(b []byte) []byte { return b[:bs[j].pos+30] }},
		{"cut one byte short", func(b []byte) []byte { return b[:bs[j].pos+int64(len(bs[j].data))-1] }},
		{"crc flipped", func(b []byte) []byte { b[bs[j].pos+17] ^= 1; return b }},
		{"record byte flipped", func(b []byte) []byte { b[bs[j].pos+70] ^= 0x80; return b }},
		{"magic", func(b []byte) []byte { b[bs[j].pos+16] = 1; return b }},
		{"offset gap", func(b []byte) []byte { be.PutUint64(b[bs[j].pos:], uint64(bs[j].meta.BaseOffset+1)); return b }},
		{"length too long", func(b []byte) []byte { be.PutUint32(b[bs[j].pos+8:], 1<<30); return b }},
		{"garbage after the last batch", func(b []byte) []byte { return append(b[:bs[j].pos], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			writeFile(t, cfg, 500, LogSuffix, c.damage(bytes.Clone(orig)))
			// Past the recovery point: validated batch by batch. (Below
			// it only the header walk runs, which misses a bad CRC.)
			s, rec, err := Load(cfg, 500, math.MinInt64)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if rec.Trusted || rec.Reason == nil {
				t.Fatalf("damaged segment: %+v", rec)
			}
			if s.Size() != bs[j].pos || s.End() != bs[j].meta.BaseOffset {
				t.Fatalf("recovered %d bytes up to offset %d, want %d bytes up to %d", s.Size(), s.End(), bs[j].pos, bs[j].meta.BaseOffset)
			}
			if got := readFile(t, cfg, 500, LogSuffix); !bytes.Equal(got, orig[:bs[j].pos]) {
				t.Fatalf("file is %d bytes, want the first %d unchanged", len(got), bs[j].pos)
			}
			idx, tidx := wantIndexes(j)
			if got := readFile(t, cfg, 500, IndexSuffix); !bytes.Equal(got, idx) {
				t.Fatalf("rebuilt offset index\n got % x\nwant % x", got, idx)
			}
			if got := readFile(t, cfg, 500, TimeIndexSuffix); !bytes.Equal(got, tidx) {
				t.Fatalf("rebuilt time index\n got % x\nwant % x", got, tidx)
			}
			for _, b := range bs[:j] {
				drop(readAt(t, s, b.meta.LastOffset, 0, b))
			}
		})
	}
}

// TestTrustAndSanityChecks reloads a sealed segment below the recovery
// point (trusted without validation), then with damaged index files,
// which must be rebuilt rather than trusted, and at the recovery point.
func TestTrustAndSanityChecks(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	bs := appendBatches(t, s, 50)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	end := s.End()
	s.Close()
	idx, tidx := readFile(t, cfg, 0, IndexSuffix), readFile(t, cfg, 0, TimeIndexSuffix)

	load := func(trustedBelow int64) (*Segment, Recovery) {
		t.Helper()
		s, rec, err := Load(cfg, 0, trustedBelow)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.End() != end {
			t.Fatalf("End %d, want %d", s.End(), end)
		}
		for _, b := range bs {
			drop(readAt(t, s, b.meta.BaseOffset, 0, b))
		}
		return s, rec
	}
	if _, rec := load(end); !rec.Trusted {
		t.Fatalf("intact sealed segment at the recovery point not trusted: %v", rec.Distrust)
	}
	if _, rec := load(end - 1); rec.Trusted {
		t.Fatal("segment past the recovery point trusted")
	}

	for _, c := range []struct {
		name string
		file string
		b    []byte
	}{
		{"index not a multiple of 8", IndexSuffix, idx[:len(idx)-3]},
		{"index entries out of order", IndexSuffix, append(bytes.Clone(idx[8:16]), idx[:8]...)},
		{"index entry past the file", IndexSuffix, append(bytes.Clone(idx), 0, 0, 0x7f, 0xff, 0, 0x7f, 0xff, 0xff)},
		{"index entry mid-batch", IndexSuffix, func() []byte { b := bytes.Clone(idx); b[len(b)-1]++; return b }()},
		{"preallocated index", IndexSuffix, append(bytes.Clone(idx), make([]byte, 800)...)},
		{"time index empty", TimeIndexSuffix, nil},
		{"time index out of order", TimeIndexSuffix, append(bytes.Clone(tidx), tidx[:12]...)},
		{"time index not a multiple of 12", TimeIndexSuffix, tidx[:len(tidx)-1]},
	} {
		t.Run(c.name, func(t *testing.T) {
			writeFile(t, cfg, 0, IndexSuffix, idx)
			writeFile(t, cfg, 0, TimeIndexSuffix, tidx)
			writeFile(t, cfg, 0, c.file, c.b)
			_, rec := load(math.MaxInt64)
			if rec.Trusted || rec.Distrust == nil || rec.Cut != 0 {
				t.Fatalf("%+v", rec)
			}
			if !bytes.Equal(readFile(t, cfg, 0, IndexSuffix), idx) || !bytes.Equal(readFile(t, cfg, 0, TimeIndexSuffix), tidx) {
				t.Fatal("indexes not rebuilt as they were")
			}
		})
	}
}

// TestRecordsOutliveTruncateAndGrowth holds Records across a truncation
// (which cuts the file under the mapping), appends of other bytes over the
// cut, a batch too large for the mapping (a new mapping) and Close, reading
// every byte after each.
func TestRecordsOutliveTruncateAndGrowth(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentBytes = 8 << 10 // a mapping of two pages
	s, err := Create(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	bs := appendBatches(t, s, 30) // past 8 KiB: remapped already
	var held []engine.Records
	var snaps [][]byte
	hold := func(from int64) {
		c, err := s.Locate(from)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Read(from, math.MaxInt64, math.MaxInt32)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
		snaps = append(snaps, bytes.Clone(r.Chunks[0]))
	}
	verify := func(when string) {
		t.Helper()
		for i, r := range held {
			if !bytes.Equal(r.Chunks[0], snaps[i]) {
				t.Fatalf("%s: Records %d changed", when, i)
			}
			if _, _, err := Validate(r.Chunks[0], int64(be.Uint64(r.Chunks[0]))); err != nil {
				t.Fatalf("%s: Records %d: %v", when, i, err)
			}
		}
	}
	hold(0)
	hold(bs[20].meta.BaseOffset)
	f, err := engine.OSFS.OpenFile(filepath.Join(cfg.Dir, FileName(0, LogSuffix)), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	newEnd, err := s.TruncateTo(bs[5].meta.BaseOffset + 1)
	if err != nil || newEnd != bs[5].meta.BaseOffset {
		t.Fatalf("TruncateTo: %d, %v", newEnd, err)
	}
	verify("after TruncateTo")
	for i := range 30 {
		data, meta := enginetest.NewBatch(s.End(), 3, 200, 5, byte(100+i))
		if err := s.Append(meta, data); err != nil {
			t.Fatal(err)
		}
	}
	verify("after appends over the truncated bytes")
	hold(s.End() - 1)
	data, meta := enginetest.NewBatch(s.End(), 4, 12<<10, 5, 7) // larger than the mapping
	if err := s.Append(meta, data); err != nil {
		t.Fatal(err)
	}
	verify("after a remap")
	if n := liveMappings(f); n < 2 {
		t.Fatalf("%d live mappings, want the held ones and the current one", n)
	}
	if _, err := s.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	verify("after truncating everything")
	s.Close()
	verify("after Close")
	for _, r := range held {
		r.Release()
	}
	if n := liveMappings(f); n != 0 {
		t.Fatalf("%d mappings still live after every release and Close", n)
	}
}

// TestTruncateSealed truncates a sealed segment, which must stay sealed
// with indexes matching what is left and be trusted on reload.
func TestTruncateSealed(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	bs := appendBatches(t, s, 50)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TruncateTo(bs[30].meta.BaseOffset); err != nil {
		t.Fatal(err)
	}
	if s.Active() {
		t.Fatal("truncated sealed segment is active")
	}
	var maxTs int64 = math.MinInt64
	for _, b := range bs[:30] {
		maxTs = max(maxTs, b.meta.MaxTimestamp)
	}
	if s.MaxTimestamp() != maxTs {
		t.Fatalf("MaxTimestamp %d after truncation, want %d", s.MaxTimestamp(), maxTs)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	end := s.End()
	s.Close()
	s, rec, err := Load(cfg, 0, math.MaxInt64)
	if err != nil || !rec.Trusted {
		t.Fatalf("reload: %v, %v", err, rec.Distrust)
	}
	defer s.Close()
	if s.End() != end || s.MaxTimestamp() != maxTs {
		t.Fatalf("reloaded [.., %d) max %d", s.End(), s.MaxTimestamp())
	}
	// Activate and append more: the reloaded indexes take new entries.
	if err := s.Activate(); err != nil {
		t.Fatal(err)
	}
	more := appendBatches(t, s, 20)
	for _, b := range append(bs[:30:30], more...) {
		drop(readAt(t, s, b.meta.BaseOffset, 0, b))
	}
}

// TestCheckpointlessCreate checks that Create refuses to overwrite an
// existing segment.
func TestCreateExisting(t *testing.T) {
	cfg := testConfig(t)
	s, err := Create(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Create(cfg, 7); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing segment: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, FileName(7, LogSuffix))); err != nil {
		t.Fatalf("the failed Create removed the existing segment: %v", err)
	}
}

func drop(r engine.Records) { r.Release() }
