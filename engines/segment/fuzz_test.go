package segment

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// fuzzBase is the base offset of the fuzzed segment: taken from the first
// batch's base offset field, so that a valid segment at any base is
// accepted, but kept small so offsets stay far from overflow.
func fuzzBase(data []byte) int64 {
	if len(data) < 8 {
		return 0
	}
	return int64(be.Uint64(data) & (1<<40 - 1))
}

// FuzzRecover feeds arbitrary bytes as a segment's log file and index
// files to Load: validated (trusted false: the segment lies past the
// recovery point) or, with trusted true, below the recovery point, where
// Load trusts what passes its sanity checks. It must never panic or fail.
//
// Validated, it must leave a log file that is a prefix of data, whose
// batches all pass engine.CheckBatch with contiguous offsets from the base,
// indexes equal to the ones the appender writes for that prefix, every
// batch readable from each of its offsets, OffsetForTime agreeing with a
// brute-force answer, and a segment that reloads trusted once sealed.
//
// Trusted data is not validated batch by batch (that is the point of the
// recovery point), so bytes damaged below it may go unnoticed; then reads,
// OffsetForTime and truncation over them must fail with errors, never
// panic or touch memory outside the file.
func FuzzRecover(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], false)
		f.Add(s[0], s[1], s[2], true)
	}
	// One directory for every input a worker process runs (they run one
	// at a time), emptied before each: a fresh t.TempDir per input would
	// cost more than the recovery under test.
	scratch := f.TempDir()
	f.Fuzz(func(t *testing.T, data, idx, tidx []byte, trusted bool) {
		for _, d := range []string{"seg", "ref"} {
			if err := os.RemoveAll(filepath.Join(scratch, d)); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(scratch, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cfg := &Config{FS: engine.OSFS, Dir: filepath.Join(scratch, "seg"), SegmentBytes: 64 << 10, IndexBytes: 4 << 10, IndexInterval: 100}
		base := fuzzBase(data)
		writeFile(t, cfg, base, LogSuffix, data)
		writeFile(t, cfg, base, IndexSuffix, idx)
		writeFile(t, cfg, base, TimeIndexSuffix, tidx)
		trustedBelow := int64(math.MinInt64)
		if trusted {
			trustedBelow = math.MaxInt64
		}
		s, rec, err := Load(cfg, base, trustedBelow)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		defer func() { s.Close() }()
		if rec.Trusted && !trusted {
			t.Fatal("trusted past the recovery point")
		}
		if rec.Trusted {
			probeTrusted(t, s)
			return
		}
		got := readFile(t, cfg, base, LogSuffix)
		if int64(len(got)) != s.Size() || !bytes.HasPrefix(data, got) {
			t.Fatalf("log file of %d bytes, Size %d: not a prefix of the %d bytes given", len(got), s.Size(), len(data))
		}
		var bs []batch
		_, next, err := scan(got, 0, base, base, true, func(pos int64, h engine.BatchHeader) {
			bs = append(bs, batch{meta: h.Meta(), data: got[pos : pos+int64(h.Size())], pos: pos})
		})
		if err != nil || next != s.End() {
			t.Fatalf("what Load kept does not check out: %v; next %d, End %d", err, next, s.End())
		}
		if rec.Cut != int64(len(data)-len(got)) {
			t.Fatalf("Cut %d, but %d bytes went", rec.Cut, len(data)-len(got))
		}
		wantIdx, wantTidx := appenderIndexes(t, cfg, filepath.Join(scratch, "ref"), base, bs)
		if !bytes.Equal(readFile(t, cfg, base, IndexSuffix), wantIdx) || !bytes.Equal(readFile(t, cfg, base, TimeIndexSuffix), wantTidx) {
			t.Fatal("rebuilt indexes differ from the appender's")
		}
		checkReads(t, s, bs)
		// Sealed as it is, the segment must reload trusted and the same.
		end := s.End()
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, rec, err = Load(cfg, base, math.MaxInt64)
		if err != nil || !rec.Trusted || s.End() != end {
			t.Fatalf("reload of the recovered segment: %v, %+v, End %d want %d", err, rec, s.End(), end)
		}
		checkReads(t, s, bs)
	})
}

// probeTrusted reads, looks up times in and truncates a trusted segment
// that may hold damage Load did not look for: errors are fine, panics (and
// faults) are not. Anything a read returns lies within the segment.
func probeTrusted(t *testing.T, s *Segment) {
	t.Helper()
	span := s.End() - s.Base()
	for _, off := range []int64{0, 1, span / 3, span / 2, span - 1} {
		if off < 0 || off >= span {
			continue
		}
		c, err := s.Locate(s.Base() + off)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Read(s.Base()+off, math.MaxInt64, 1<<20); err == nil {
			if int64(r.Len()) > s.Size() {
				t.Fatalf("Read returned %d bytes of a %d-byte segment", r.Len(), s.Size())
			}
			r.Release()
		}
	}
	for _, ts := range []int64{math.MinInt64, 0, 100, 150, math.MaxInt64} {
		s.OffsetForTime(ts, s.Base())
	}
	if span > 1 {
		s.TruncateTo(s.Base() + span/2)
	}
}

// checkReads reads every batch of bs from each of its offsets (at most a
// few per batch) and checks OffsetForTime against brute force.
func checkReads(t *testing.T, s *Segment, bs []batch) {
	t.Helper()
	for _, b := range bs {
		for _, off := range []int64{b.meta.BaseOffset, (b.meta.BaseOffset + b.meta.LastOffset) / 2, b.meta.LastOffset} {
			c, err := s.Locate(off)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Read(off, math.MaxInt64, 0)
			if err != nil || r.Len() != len(b.data) || !bytes.Equal(r.Chunks[0], b.data) {
				t.Fatalf("Read(%d): %v", off, err)
			}
			r.Release()
		}
	}
	for _, b := range bs {
		for _, ts := range []int64{b.meta.MaxTimestamp, b.meta.MaxTimestamp + 1} {
			want, wantOK := int64(0), false
			for _, c := range bs {
				if c.meta.MaxTimestamp >= ts {
					want, wantOK = c.meta.BaseOffset, true
					break
				}
			}
			got, ok, err := s.OffsetForTime(ts, s.Base())
			if err != nil || ok != wantOK || got != want {
				t.Fatalf("OffsetForTime(%d) = %d, %v, %v; want %d, %v", ts, got, ok, err, want, wantOK)
			}
		}
	}
}

// appenderIndexes returns the sealed index files an appender writes for bs.
func appenderIndexes(t *testing.T, cfg *Config, dir string, base int64, bs []batch) (idx, tidx []byte) {
	c := *cfg
	c.Dir = dir
	c.IndexBytes = 1 << 20
	s, err := Create(&c, base)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range bs {
		if err := s.Append(b.meta, b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	return readFile(t, &c, base, IndexSuffix), readFile(t, &c, base, TimeIndexSuffix)
}

// fuzzSeeds returns (log, index, time index) triples: valid segments as an
// appender leaves them, sealed and active, and torn and corrupted variants.
func fuzzSeeds(f *testing.F) [][3][]byte {
	var seeds [][3][]byte
	for _, base := range []int64{0, 1000} {
		dir := f.TempDir()
		cfg := &Config{FS: engine.OSFS, Dir: dir, SegmentBytes: 1 << 16, IndexBytes: 1 << 10, IndexInterval: 100}
		s, err := Create(cfg, base)
		if err != nil {
			f.Fatal(err)
		}
		var ends []int64
		for i := range 8 {
			// Timestamps that fall as well as rise.
			data, meta := enginetest.NewBatch(s.End(), 1+i%3, 10+15*i, int64(100+((i*5)%7)*10), byte(i))
			if err := s.Append(meta, data); err != nil {
				f.Fatal(err)
			}
			ends = append(ends, s.Size())
		}
		read := func(suffix string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, FileName(base, suffix)))
			if err != nil {
				f.Fatal(err)
			}
			return b
		}
		active := [3][]byte{read(LogSuffix), read(IndexSuffix), read(TimeIndexSuffix)}
		if err := s.Seal(); err != nil {
			f.Fatal(err)
		}
		s.Close()
		sealed := [3][]byte{read(LogSuffix), read(IndexSuffix), read(TimeIndexSuffix)}
		log := sealed[0]
		seeds = append(seeds, sealed, active)
		last := ends[len(ends)-2] // start of the last batch
		for _, cut := range []int64{0, 7, 61, last, last + 12, last + 61, int64(len(log)) - 1} {
			seeds = append(seeds, [3][]byte{log[:cut], sealed[1], sealed[2]})
		}
		for _, flip := range []int64{0, 8, 16, 17, 23, 40, last + 9, last + 30, int64(len(log)) - 1} {
			b := bytes.Clone(log)
			b[flip] ^= 0x5a
			seeds = append(seeds, [3][]byte{b, sealed[1], sealed[2]})
		}
		seeds = append(seeds,
			[3][]byte{log, nil, nil},
			[3][]byte{log, sealed[2], sealed[1]},
			[3][]byte{append(bytes.Clone(log), log[:100]...), sealed[1], sealed[2]},
			[3][]byte{log, append(bytes.Clone(sealed[1]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), sealed[2]},
		)
	}
	seeds = append(seeds, [3][]byte{nil, nil, nil}, [3][]byte{[]byte("not a segment"), []byte{1, 2, 3}, nil})
	return seeds
}
