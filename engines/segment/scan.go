package segment

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/strata-broker/strata/engine"
)

// File name suffixes of a segment's three files.
const (
	LogSuffix       = ".log"
	IndexSuffix     = ".index"
	TimeIndexSuffix = ".timeindex"
)

// baseDigits is the width of the zero-padded base offset in file names, as
// in Kafka: wide enough for any non-negative int64, and lexical order is
// offset order.
const baseDigits = 20

// FileName returns the name of the file with the given suffix of the
// segment whose first offset is base: "00000000000000001234.log".
func FileName(base int64, suffix string) string {
	s := strconv.FormatInt(base, 10)
	return strings.Repeat("0", max(0, baseDigits-len(s))) + s + suffix
}

// ParseFileName reverses FileName for names ending in one of the three
// suffixes.
func ParseFileName(name string) (base int64, suffix string, ok bool) {
	if len(name) <= baseDigits {
		return 0, "", false
	}
	suffix = name[baseDigits:]
	switch suffix {
	case LogSuffix, IndexSuffix, TimeIndexSuffix:
	default:
		return 0, "", false
	}
	for _, c := range name[:baseDigits] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	base, err := strconv.ParseInt(name[:baseDigits], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return base, suffix, true
}

// maxRelative bounds how far past its base offset a segment's offsets may
// go, as Kafka's LogSegment does: relative offsets are stored as u32, and
// keeping them within int32 leaves Java-compatible tools happy.
const maxRelative = math.MaxInt32

// maxPosition bounds the file position at which a batch may start, since
// positions are stored as u32 in the offset index.
const maxPosition = math.MaxUint32

// peek reads the header fields the read path needs from the batch at the
// start of b without checking the CRC: its size, base and last offsets and
// max timestamp. ok is false if b does not start with a plausible whole
// batch. It is the hot loop of reads, so it parses only what it must.
func peek(b []byte) (size int64, base, last, maxTs int64, ok bool) {
	if len(b) < engine.BatchHeaderSize || b[16] != 2 {
		return 0, 0, 0, 0, false
	}
	blen := int32(be.Uint32(b[8:]))
	delta := int32(be.Uint32(b[23:]))
	if blen < engine.BatchHeaderSize-engine.BatchLengthOverhead || delta < 0 {
		return 0, 0, 0, 0, false
	}
	size = int64(blen) + engine.BatchLengthOverhead
	if size > int64(len(b)) {
		return 0, 0, 0, 0, false
	}
	base = int64(be.Uint64(b[0:]))
	return size, base, base + int64(delta), int64(be.Uint64(b[35:])), true
}

// scan walks the batches of data from byte pos, where a batch starting at
// offset next is expected, in a segment whose base offset is base. With
// verify each batch must pass engine.CheckBatch (length, magic, CRC-32C);
// without, only its header is checked (a walk over trusted data). Either
// way offsets must be contiguous, batch positions must fit the offset
// index, and offsets must stay within maxRelative of base.
//
// It calls visit, if not nil, for every good batch and returns where the
// good batches end, the offset after them, and why it stopped before the
// end of data (nil if it reached the end exactly).
func scan(data []byte, pos, next, base int64, verify bool, visit func(pos int64, h engine.BatchHeader)) (end, nextOff int64, err error) {
	for pos < int64(len(data)) {
		var h engine.BatchHeader
		if verify {
			h, err = engine.CheckBatch(data[pos:])
		} else {
			h, err = engine.ParseBatchHeader(data[pos:])
			if err == nil && int64(h.Size()) > int64(len(data))-pos {
				err = fmt.Errorf("%w: batch of %d bytes, only %d present", engine.ErrInvalidBatch, h.Size(), int64(len(data))-pos)
			}
		}
		switch {
		case err != nil:
		case pos > maxPosition:
			err = fmt.Errorf("segment: batch at byte %d, past the %d an index can point at", pos, int64(maxPosition))
		case h.BaseOffset != next:
			err = fmt.Errorf("segment: batch at byte %d starts at offset %d, want %d", pos, h.BaseOffset, next)
		case h.LastOffset()-base > maxRelative || h.LastOffset() == math.MaxInt64:
			err = fmt.Errorf("segment: batch at byte %d ends at offset %d, too far past the segment base %d", pos, h.LastOffset(), base)
		}
		if err != nil {
			return pos, next, fmt.Errorf("byte %d: %w", pos, err)
		}
		if visit != nil {
			visit(pos, h)
		}
		pos += int64(h.Size())
		next = h.LastOffset() + 1
	}
	return pos, next, nil
}

// Validate checks data as recovery checks a segment file whose base offset
// is base: it returns the length of the longest prefix of whole batches that
// each pass engine.CheckBatch with contiguous offsets from base, the offset
// after them, and why the prefix ends before data does (nil if it does not).
func Validate(data []byte, base int64) (valid, next int64, err error) {
	return scan(data, 0, base, base, true, nil)
}

// LastBatch returns the position and size of the last batch in data, the
// bytes of a segment file, walking the batch headers (no CRC check) from
// the start. ok is false if data holds no batch; the walk stops at the
// first header that does not parse.
func LastBatch(data []byte) (pos, size int64, ok bool) {
	for p := int64(0); p < int64(len(data)); {
		h, err := engine.ParseBatchHeader(data[p:])
		if err != nil || int64(h.Size()) > int64(len(data))-p {
			break
		}
		pos, size, ok = p, int64(h.Size()), true
		p += size
	}
	return pos, size, ok
}
