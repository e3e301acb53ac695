package tiered

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-broker/strata/engine"
)

// Layout of a cold object (see doc.go).
const (
	objectMagic     = "STZ1"
	footerSize      = 24
	frameEntrySize  = 44
	maxFrameDecoded = 1 << 30 // no frame decodes to more (a batch is < 2 GiB, a frame of several < this)
)

var be = binary.BigEndian

// errCorrupt marks damage to a cold object or a manifest.
var errCorrupt = fmt.Errorf("tiered: cold data corrupt: %w", engine.ErrCorrupt)

// frameEntry is one entry of a cold object's frame index.
type frameEntry struct {
	first, last int64 // offsets of the frame's first batch's base and last batch's last offset
	maxTs       int64 // largest MaxTimestamp of its batches
	pos         int64 // where the compressed frame starts in the object
	clen, ulen  uint32
	crc         uint32 // CRC-32C of the compressed frame
}

var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
	codecErr  error
)

// codec returns the shared zstd encoder and decoder; their EncodeAll and
// DecodeAll are safe for concurrent use.
func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		encoder, codecErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if codecErr != nil {
			return
		}
		decoder, codecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(maxFrameDecoded), zstd.WithDecodeAllCapLimit(true))
	})
	return encoder, decoder, codecErr
}

// encodeObject compresses data, whole batches with contiguous offsets (each
// passing engine.CheckBatch), into a cold object of frames of about
// frameBytes uncompressed bytes each. It returns the object and its frame
// index.
func encodeObject(data []byte, frameBytes int) ([]byte, []frameEntry, error) {
	enc, _, err := codec()
	if err != nil {
		return nil, nil, fmt.Errorf("tiered: zstd: %w", err)
	}
	if len(data) == 0 {
		return nil, nil, errors.New("tiered: encode an empty segment")
	}
	var obj []byte
	var idx []frameEntry
	next := int64(-1)
	for p := 0; p < len(data); {
		e := frameEntry{maxTs: math.MinInt64, pos: int64(len(obj))}
		q := p
		for q < len(data) {
			h, err := engine.CheckBatch(data[q:])
			if err != nil {
				return nil, nil, fmt.Errorf("tiered: encode: batch at byte %d: %w", q, err)
			}
			if next >= 0 && h.BaseOffset != next {
				return nil, nil, fmt.Errorf("tiered: encode: batch at byte %d starts at %d, want %d: %w", q, h.BaseOffset, next, engine.ErrCorrupt)
			}
			if q > p && q-p+h.Size() > frameBytes {
				break
			}
			if q == p {
				e.first = h.BaseOffset
			}
			e.last = h.LastOffset()
			e.maxTs = max(e.maxTs, h.MaxTimestamp)
			next = h.LastOffset() + 1
			q += h.Size()
		}
		if q-p > maxFrameDecoded {
			return nil, nil, fmt.Errorf("tiered: encode: batch of %d bytes, too large for a frame", q-p)
		}
		obj = enc.EncodeAll(data[p:q], obj)
		e.clen = uint32(int64(len(obj)) - e.pos)
		e.ulen = uint32(q - p)
		e.crc = engine.Checksum(obj[e.pos:])
		idx = append(idx, e)
		p = q
	}
	indexPos := len(obj)
	for _, e := range idx {
		obj = appendFrameEntry(obj, e)
	}
	indexCRC := engine.Checksum(obj[indexPos:])
	foot := len(obj)
	obj = append(obj, objectMagic...)
	obj = be.AppendUint32(obj, uint32(len(idx)))
	obj = be.AppendUint64(obj, uint64(indexPos))
	obj = be.AppendUint32(obj, indexCRC)
	obj = be.AppendUint32(obj, engine.Checksum(obj[foot:]))
	return obj, idx, nil
}

func appendFrameEntry(b []byte, e frameEntry) []byte {
	b = be.AppendUint64(b, uint64(e.first))
	b = be.AppendUint64(b, uint64(e.last))
	b = be.AppendUint64(b, uint64(e.maxTs))
	b = be.AppendUint64(b, uint64(e.pos))
	b = be.AppendUint32(b, e.clen)
	b = be.AppendUint32(b, e.ulen)
	b = be.AppendUint32(b, e.crc)
	return b
}

// footer is the decoded footer of a cold object.
type footer struct {
	frames   int
	indexPos int64
	indexCRC uint32
}

// parseFooter checks the last footerSize bytes of an object of size bytes.
func parseFooter(b []byte, size int64) (footer, error) {
	var f footer
	if len(b) != footerSize || size < footerSize {
		return f, fmt.Errorf("%w: object of %d bytes, shorter than its footer", errCorrupt, size)
	}
	if string(b[:4]) != objectMagic {
		return f, fmt.Errorf("%w: footer magic % x", errCorrupt, b[:4])
	}
	if got := engine.Checksum(b[:20]); got != be.Uint32(b[20:]) {
		return f, fmt.Errorf("%w: footer crc %08x, footer says %08x", errCorrupt, got, be.Uint32(b[20:]))
	}
	n := int64(be.Uint32(b[4:]))
	pos := be.Uint64(b[8:])
	if n == 0 || pos > uint64(size) || int64(pos)+n*frameEntrySize+footerSize != size {
		return f, fmt.Errorf("%w: footer says %d frames with the index at byte %d of %d", errCorrupt, n, pos, size)
	}
	return footer{frames: int(n), indexPos: int64(pos), indexCRC: be.Uint32(b[16:])}, nil
}

// parseIndex decodes and checks the frame index b of an object whose
// footer is f: its checksum, frames laid end to end from byte 0 up to the
// index, offsets rising without a gap, plausible lengths.
func parseIndex(b []byte, f footer) ([]frameEntry, error) {
	if len(b) != f.frames*frameEntrySize {
		return nil, fmt.Errorf("%w: frame index of %d bytes, want %d", errCorrupt, len(b), f.frames*frameEntrySize)
	}
	if got := engine.Checksum(b); got != f.indexCRC {
		return nil, fmt.Errorf("%w: frame index crc %08x, footer says %08x", errCorrupt, got, f.indexCRC)
	}
	idx := make([]frameEntry, f.frames)
	pos := int64(0)
	for i := range idx {
		e := b[i*frameEntrySize:]
		x := frameEntry{
			first: int64(be.Uint64(e[0:])),
			last:  int64(be.Uint64(e[8:])),
			maxTs: int64(be.Uint64(e[16:])),
			pos:   int64(be.Uint64(e[24:])),
			clen:  be.Uint32(e[32:]),
			ulen:  be.Uint32(e[36:]),
			crc:   be.Uint32(e[40:]),
		}
		switch {
		case x.pos != pos || x.clen == 0 || pos+int64(x.clen) > f.indexPos:
			return nil, fmt.Errorf("%w: frame %d at byte %d (%d bytes), want byte %d", errCorrupt, i, x.pos, x.clen, pos)
		case x.ulen < engine.BatchHeaderSize || x.ulen > maxFrameDecoded:
			return nil, fmt.Errorf("%w: frame %d decodes to %d bytes", errCorrupt, i, x.ulen)
		case x.first < 0 || x.last < x.first || x.last == math.MaxInt64 || (i > 0 && x.first != idx[i-1].last+1):
			return nil, fmt.Errorf("%w: frame %d holds offsets [%d, %d]", errCorrupt, i, x.first, x.last)
		}
		idx[i] = x
		pos += int64(x.clen)
	}
	if pos != f.indexPos {
		return nil, fmt.Errorf("%w: frames end at byte %d, the index starts at %d", errCorrupt, pos, f.indexPos)
	}
	return idx, nil
}

// decodeFrame checks the compressed frame comp against its index entry e
// and decompresses it: the CRC-32C, the decoded length, and a header walk
// of its batches (magic, lengths, offsets from e.first to e.last without a
// gap, max timestamp). With verify every batch's own CRC-32C is checked
// too.
func decodeFrame(e frameEntry, comp []byte, verify bool) ([]byte, error) {
	if len(comp) != int(e.clen) {
		return nil, fmt.Errorf("%w: frame of %d bytes, index says %d", errCorrupt, len(comp), e.clen)
	}
	if got := engine.Checksum(comp); got != e.crc {
		return nil, fmt.Errorf("%w: frame at byte %d: crc %08x, index says %08x", errCorrupt, e.pos, got, e.crc)
	}
	_, dec, err := codec()
	if err != nil {
		return nil, fmt.Errorf("tiered: zstd: %w", err)
	}
	data, err := dec.DecodeAll(comp, make([]byte, 0, e.ulen))
	if err != nil {
		return nil, fmt.Errorf("%w: frame at byte %d: %v", errCorrupt, e.pos, err)
	}
	if len(data) != int(e.ulen) {
		return nil, fmt.Errorf("%w: frame at byte %d decodes to %d bytes, index says %d", errCorrupt, e.pos, len(data), e.ulen)
	}
	next, maxTs := e.first, int64(math.MinInt64)
	for p := 0; p < len(data); {
		var h engine.BatchHeader
		if verify {
			h, err = engine.CheckBatch(data[p:])
		} else {
			h, err = engine.ParseBatchHeader(data[p:])
			if err == nil && h.Size() > len(data)-p {
				err = fmt.Errorf("batch of %d bytes, %d left", h.Size(), len(data)-p)
			}
		}
		if err == nil && h.BaseOffset != next {
			err = fmt.Errorf("batch starts at offset %d, want %d", h.BaseOffset, next)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: frame at byte %d, batch at byte %d: %v", errCorrupt, e.pos, p, err)
		}
		next = h.LastOffset() + 1
		maxTs = max(maxTs, h.MaxTimestamp)
		p += h.Size()
	}
	if next != e.last+1 || maxTs != e.maxTs {
		return nil, fmt.Errorf("%w: frame at byte %d ends at offset %d with max timestamp %d, index says %d and %d",
			errCorrupt, e.pos, next-1, maxTs, e.last, e.maxTs)
	}
	return data, nil
}

// decodeObject checks a whole cold object held in memory and returns its
// frame index and the concatenation of its decoded frames. It is what an
// upload verifies with, and what FuzzColdFrame feeds arbitrary bytes.
func decodeObject(obj []byte) ([]frameEntry, []byte, error) {
	size := int64(len(obj))
	if size < footerSize {
		return nil, nil, fmt.Errorf("%w: object of %d bytes, shorter than its footer", errCorrupt, size)
	}
	f, err := parseFooter(obj[size-footerSize:], size)
	if err != nil {
		return nil, nil, err
	}
	idx, err := parseIndex(obj[f.indexPos:size-footerSize], f)
	if err != nil {
		return nil, nil, err
	}
	var all bytes.Buffer
	for _, e := range idx {
		data, err := decodeFrame(e, obj[e.pos:e.pos+int64(e.clen)], true)
		if err != nil {
			return nil, nil, err
		}
		all.Write(data)
	}
	return idx, all.Bytes(), nil
}

// findFrame returns the index of the frame holding offset off: the last
// whose first offset is <= off (frames are contiguous).
func findFrame(idx []frameEntry, off int64) int {
	lo, hi := 0, len(idx)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if idx[mid].first <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(lo-1, 0)
}
