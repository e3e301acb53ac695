package tiered

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/mmap"
)

// uploadStep names the points of an upload at which a test hook may cut it
// short, as a crash there would.
type uploadStep int

const (
	// stepStored: the object is in the cold store, not yet verified.
	stepStored uploadStep = iota
	// stepVerified: the object was read back and checked.
	stepVerified
	// stepListed: the manifest lists it; the hot copy is still there.
	stepListed
)

func (s uploadStep) String() string {
	return [...]string{"stored", "verified", "listed"}[s]
}

// errStale: the hot segment changed (truncated, deleted, or another upload
// took it) while its object was being made; the object is thrown away.
var errStale = errors.New("tiered: segment changed during upload")

// settle moves the sealed segments at the front of the hot log that the
// local retention lets go, one at a time, oldest first. With force (Settle)
// a segment that changed meanwhile is retried rather than left for later.
func (l *Log) settle(ctx context.Context, force bool) error {
	for tries := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.writable("upload"); err != nil {
			return err
		}
		if err := l.dropHotCopies(ctx); err != nil {
			return err
		}
		seg, ok := l.candidate()
		if !ok {
			return nil
		}
		err := l.upload(ctx, seg)
		if errors.Is(err, errStale) && force && tries < 5 {
			tries++
			continue
		}
		if err != nil {
			return err
		}
	}
}

// dropHotCopies removes hot segments that the cold tier already holds,
// left by an upload whose last step failed.
func (l *Log) dropHotCopies(ctx context.Context) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if err := l.writable("upload"); err != nil {
		return err
	}
	if coldEnd := l.cold.Load().end(); coldEnd >= 0 {
		if hs, _ := l.hot.Offsets(); hs < coldEnd {
			return l.hot.DeleteBefore(ctx, coldEnd)
		}
	}
	return nil
}

// candidate returns the first hot segment if it is settled (sealed, synced,
// not the last) and the local retention lets it go.
func (l *Log) candidate() (mmap.SegmentInfo, bool) {
	segs := l.hot.Segments()
	if len(segs) == 0 || !segs[0].Settled {
		return mmap.SegmentInfo{}, false
	}
	s := segs[0]
	if s.End <= s.Base || s.End <= l.start.Load() {
		return mmap.SegmentInfo{}, false
	}
	byTime := false
	switch ms := l.opts.LocalRetentionMs; {
	case ms == 0:
		byTime = true
	case ms > 0:
		byTime = s.MaxTimestamp != math.MinInt64 &&
			l.e.opts.Now().UnixMilli()-s.MaxTimestamp >= ms.Milliseconds()
	}
	byBytes := false
	if limit := l.opts.LocalRetentionBytes; limit >= 0 {
		var total int64
		for _, x := range segs {
			total += x.Size
		}
		byBytes = total > limit
	}
	return s, byTime || byBytes
}

// upload moves hot segment s to the cold tier. In crash order: the object
// is stored (durable), read back and verified, the manifest lists it, and
// only then the hot copy goes. A crash before the manifest write leaves an
// object no manifest lists, which the next open deletes; a crash after it
// leaves a hot copy of a cold segment, which the next open deletes.
func (l *Log) upload(ctx context.Context, s mmap.SegmentInfo) error {
	gen := l.gen.Load()
	from := max(s.Base, l.start.Load())
	recs, err := l.hot.Read(ctx, from, math.MaxInt)
	if err != nil {
		if errors.Is(err, engine.ErrOffsetOutOfRange) {
			return errStale
		}
		return err
	}
	defer recs.Release()
	if recs.NextOffset != s.End || len(recs.Chunks) == 0 {
		return errStale
	}
	var data []byte
	if len(recs.Chunks) == 1 {
		data = recs.Chunks[0]
	} else {
		data = bytes.Join(recs.Chunks, nil)
	}
	seg, err := l.put(ctx, data, l.e.hook)
	if err != nil {
		return err
	}

	l.opMu.Lock()
	defer l.opMu.Unlock()
	cs := l.cold.Load()
	segs := l.hot.Segments()
	switch {
	case l.closed.Load() || l.failed.Load() || l.gen.Load() != gen || len(segs) == 0 ||
		segs[0].Base != s.Base || segs[0].End != s.End || (cs.end() >= 0 && cs.end() != seg.base):
		l.deleteObjects(ctx, []*coldSeg{seg})
		return errStale
	}
	next := &coldState{start: cs.start, segs: append(append([]*coldSeg(nil), cs.segs...), seg)}
	if len(cs.segs) == 0 {
		next.start = l.start.Load()
	}
	if err := l.commit("upload", next); err != nil {
		return err
	}
	if err := l.step(stepListed); err != nil {
		return err
	}
	if err := l.hot.DeleteBefore(ctx, s.End); err != nil {
		// The next open removes the hot copy.
		return err
	}
	l.logger.Debug("segment moved to the cold tier", "base", seg.base, "last", seg.last, "object", seg.name, "bytes", seg.size)
	return nil
}

func (l *Log) step(s uploadStep) error {
	if h := l.e.hook; h != nil {
		if err := h(s); err != nil {
			return fmt.Errorf("tiered: upload cut short after step %s: %w", s, err)
		}
	}
	return nil
}

// put compresses data (whole batches) into a new cold object, stores it
// and verifies it: the object read back must decode, frame by frame and
// batch by batch (CRC-32C), to exactly data. hook (tests) may cut it short
// after each step.
func (l *Log) put(ctx context.Context, data []byte, hook func(uploadStep) error) (*coldSeg, error) {
	obj, idx, err := encodeObject(data, l.e.set.frameBytes)
	if err != nil {
		return nil, err
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	c := coldSegment{
		base:  idx[0].first,
		last:  idx[len(idx)-1].last,
		maxTs: math.MinInt64,
		size:  int64(len(obj)),
		nonce: binary.BigEndian.Uint64(nonce[:]),
	}
	for _, e := range idx {
		c.maxTs = max(c.maxTs, e.maxTs)
	}
	seg := &coldSeg{coldSegment: c, name: objectName(l.tp, c), idx: idx}
	if err := l.e.cold.Put(ctx, seg.name, bytes.NewReader(obj)); err != nil {
		return nil, err
	}
	if hook != nil {
		if err := hook(stepStored); err != nil {
			return nil, fmt.Errorf("tiered: upload cut short after step %s: %w", stepStored, err)
		}
	}
	err = l.verify(ctx, seg, data)
	if err != nil {
		l.deleteObjects(ctx, []*coldSeg{seg})
		return nil, fmt.Errorf("tiered: verify %s: %w", seg.name, err)
	}
	if hook != nil {
		if err := hook(stepVerified); err != nil {
			return nil, fmt.Errorf("tiered: upload cut short after step %s: %w", stepVerified, err)
		}
	}
	return seg, nil
}

// verify reads a stored object back, from the store, as a reader would,
// one frame at a time so that memory stays within a frame: its footer and
// index must agree with what was written, and every frame must pass its
// CRC-32C, decode to its length of batches that each pass their CRC-32C,
// and equal the part of data it was made from.
func (l *Log) verify(ctx context.Context, seg *coldSeg, data []byte) error {
	written := seg.idx
	fresh := &coldSeg{coldSegment: seg.coldSegment, name: seg.name}
	idx, err := l.index(ctx, fresh)
	if err != nil {
		return err
	}
	if len(idx) != len(written) {
		return fmt.Errorf("%w: %s reads back with %d frames, %d written", errCorrupt, seg.name, len(idx), len(written))
	}
	p := 0
	for i, e := range idx {
		if e != written[i] {
			return fmt.Errorf("%w: %s: frame %d reads back as %+v, written %+v", errCorrupt, seg.name, i, e, written[i])
		}
		comp, err := l.e.cold.GetRange(ctx, seg.name, e.pos, int64(e.clen))
		if err != nil {
			return err
		}
		got, err := decodeFrame(e, comp, true)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data[p:p+len(got)]) {
			return fmt.Errorf("%w: %s: frame %d reads back other batches than were stored", errCorrupt, seg.name, i)
		}
		p += len(got)
	}
	if p != len(data) {
		return fmt.Errorf("%w: %s reads back %d bytes of batches, %d stored", errCorrupt, seg.name, p, len(data))
	}
	return nil
}
