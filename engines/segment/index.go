package segment

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/strata-broker/strata/engine"
)

// Entry sizes of the two index files (see the package documentation of
// engines/mmap for the byte layout).
const (
	// OffsetEntrySize: relative offset u32, file position u32.
	OffsetEntrySize = 8
	// TimeEntrySize: max timestamp so far i64, relative offset u32.
	TimeEntrySize = 12
)

var be = binary.BigEndian

// index is a memory-mapped file of fixed-size big-endian entries. Entries
// [0, n) are in use. While the segment is active the file is preallocated
// and mapped writable with room for limit entries; once sealed it is cut to
// the entries in use and mapped read-only (limit 0).
//
// One goroutine appends; lookups may run concurrently with appends (they
// only read entries below n, which is published after the entry's bytes),
// but not with remap, trim or close, which the owner of the segment
// excludes.
type index struct {
	f     engine.File
	es    int
	mem   []byte
	n     atomic.Int64
	limit int64
}

// remap maps the first size bytes of the file. The old mapping goes only
// once the new one exists, so a failure leaves the index readable.
func (x *index) remap(size int, writable bool) error {
	mem, err := indexMap(x.f, size, writable)
	if err != nil {
		return err
	}
	if x.mem != nil {
		_ = munmap(x.mem)
	}
	x.mem = mem
	if writable {
		x.limit = int64(size / x.es)
	} else {
		x.limit = 0
	}
	return nil
}

// grow preallocates the file to hold capBytes of entries (at least one more
// than in use) and maps it writable, making the index appendable.
func (x *index) grow(capBytes int) error {
	n := int(x.n.Load())
	size := max(capBytes/x.es, n+1) * x.es
	if err := x.f.Truncate(int64(size)); err != nil {
		return fmt.Errorf("segment: preallocate %s: %w", x.f.Name(), err)
	}
	return x.remap(size, true)
}

// trim cuts the file to the entries in use and maps them read-only. The
// entries stay mapped throughout (only pages past them leave the file), so
// a failure leaves the index as it was.
func (x *index) trim() error {
	size := int(x.n.Load()) * x.es
	if err := x.f.Truncate(int64(size)); err != nil {
		return fmt.Errorf("segment: trim %s: %w", x.f.Name(), err)
	}
	return x.remap(size, false)
}

// truncate keeps the first n entries, zeroing the others if the mapping is
// writable so that a preallocated file holds no stale entries.
func (x *index) truncate(n int64) {
	old := x.n.Load()
	if n >= old {
		return
	}
	x.n.Store(n)
	if x.limit > 0 {
		clear(x.mem[n*int64(x.es) : old*int64(x.es)])
	}
}

func (x *index) entry(i int64) []byte {
	o := i * int64(x.es)
	return x.mem[o : o+int64(x.es)]
}

func (x *index) close() error {
	if x.mem != nil {
		_ = munmap(x.mem)
		x.mem = nil
	}
	if x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}

// appendOffset adds an offset-index entry. The caller checked room.
func (x *index) appendOffset(rel, pos uint32) {
	n := x.n.Load()
	e := x.entry(n)
	be.PutUint32(e[0:], rel)
	be.PutUint32(e[4:], pos)
	x.n.Store(n + 1)
}

// appendTime adds a time-index entry. The caller checked room.
func (x *index) appendTime(ts int64, rel uint32) {
	n := x.n.Load()
	e := x.entry(n)
	be.PutUint64(e[0:], uint64(ts))
	be.PutUint32(e[8:], rel)
	x.n.Store(n + 1)
}

func (x *index) offsetAt(i int64) (rel, pos uint32) {
	e := x.entry(i)
	return be.Uint32(e[0:]), be.Uint32(e[4:])
}

func (x *index) timeAt(i int64) (ts int64, rel uint32) {
	e := x.entry(i)
	return int64(be.Uint64(e[0:])), be.Uint32(e[8:])
}

// floorOffset returns the index of the last offset entry whose relative
// offset is <= rel, or -1.
func (x *index) floorOffset(rel uint32) int64 {
	lo, hi := int64(0), x.n.Load() // first entry > rel lies in [lo, hi]
	for lo < hi {
		mid := int64(uint64(lo+hi) >> 1)
		if r, _ := x.offsetAt(mid); r <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// belowTime returns the index of the last time entry whose timestamp is
// < ts, or -1. Time entries have strictly rising timestamps.
func (x *index) belowTime(ts int64) int64 {
	lo, hi := int64(0), x.n.Load()
	for lo < hi {
		mid := int64(uint64(lo+hi) >> 1)
		if t, _ := x.timeAt(mid); t < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// indexer decides which batches get index entries, the same way whether a
// segment is being appended to or its indexes rebuilt by recovery, so a
// rebuilt index is the one the appender would have written.
//
// As in Kafka, an offset entry is written for a batch once at least
// interval bytes of batches lie between it and the previous entry (or the
// segment start); the first batch of a segment never gets one, since
// position 0 is implied. With it goes a time entry (max timestamp so far,
// relative base offset of the batch holding it) if that maximum rose since
// the last time entry. Sealing adds a last time entry, so a sealed
// segment's last time entry holds the segment's max timestamp.
type indexer struct {
	base        int64 // segment base offset
	interval    int64
	bytesSince  int64 // bytes of batches since the last offset entry
	maxTs       int64 // max timestamp so far; math.MinInt64 if none
	offsetOfMax int64 // base offset of the batch holding maxTs
	lastTimeTs  int64 // timestamp of the last time entry; math.MinInt64 if none
}

func newIndexer(base, interval int64) indexer {
	return indexer{base: base, interval: interval, maxTs: math.MinInt64, offsetOfMax: base, lastTimeTs: math.MinInt64}
}

// add accounts for a batch of size bytes and reports whether it gets an
// offset entry and a time entry (to be written with ix.maxTs and
// ix.offsetOfMax, then reported with wroteTime). An index that is full
// skips entries: they only speed lookups up, and a time entry left out is
// made up for by the next one, which carries the same maximum.
func (ix *indexer) add(size int64, base, maxTs int64) (offEntry, timeEntry bool) {
	if maxTs > ix.maxTs {
		ix.maxTs, ix.offsetOfMax = maxTs, base
	}
	if ix.bytesSince > 0 && ix.bytesSince >= ix.interval {
		offEntry = true
		ix.bytesSince = 0
		timeEntry = ix.maxTs > ix.lastTimeTs
	}
	ix.bytesSince += size
	return offEntry, timeEntry
}

// wroteTime records that a time entry with ix.maxTs was written.
func (ix *indexer) wroteTime() { ix.lastTimeTs = ix.maxTs }

// final reports whether sealing must add a time entry so that the last
// one holds the segment's max timestamp.
func (ix *indexer) final() bool { return ix.maxTs > ix.lastTimeTs }

// checkOffsetIndex sanity-checks the entries of a sealed offset index
// against a log file of logSize bytes: relative offsets and positions
// strictly rising, positions inside the file, none at position 0.
func checkOffsetIndex(b []byte, logSize int64) error {
	if len(b)%OffsetEntrySize != 0 {
		return fmt.Errorf("%d bytes, not a multiple of %d", len(b), OffsetEntrySize)
	}
	var prevRel, prevPos uint32
	for o := 0; o < len(b); o += OffsetEntrySize {
		rel, pos := be.Uint32(b[o:]), be.Uint32(b[o+4:])
		if rel <= prevRel || pos <= prevPos || int64(pos) >= logSize {
			return fmt.Errorf("entry %d (offset +%d at byte %d) out of order or outside the %d-byte log", o/OffsetEntrySize, rel, pos, logSize)
		}
		prevRel, prevPos = rel, pos
	}
	return nil
}

// checkTimeIndex sanity-checks the entries of a sealed time index for a
// segment holding relative offsets below span: timestamps strictly rising,
// relative offsets not falling and inside the segment.
func checkTimeIndex(b []byte, span int64) error {
	if len(b)%TimeEntrySize != 0 {
		return fmt.Errorf("%d bytes, not a multiple of %d", len(b), TimeEntrySize)
	}
	prevTs, prevRel := int64(math.MinInt64), int64(0)
	for o := 0; o < len(b); o += TimeEntrySize {
		ts, rel := int64(be.Uint64(b[o:])), int64(be.Uint32(b[o+8:]))
		if (o > 0 && ts <= prevTs) || rel < prevRel || rel >= span {
			return fmt.Errorf("entry %d (time %d at offset +%d) out of order or outside the segment", o/TimeEntrySize, ts, rel)
		}
		prevTs, prevRel = ts, rel
	}
	return nil
}
