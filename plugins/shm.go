package plugins

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// The shared region. Each run of a plugin process gets one, mapped by the
// host and by the plugin, so that an append copies its batches once, into
// the region, and the request names where they lie instead of carrying
// them (see enginepb.AppendRequest). The host allocates one span per
// append call from the region as from a ring: a 64-byte head whose first
// word is the span's state, a record of each batch's metadata, then the
// batches (see enginepb.AppendRequest for the layout). A span is free again when
// its call is over: the plugin answered, or it provably never read the
// span and never will (the host took the state word back). A call the host
// gave up on while the plugin was reading keeps its span until the plugin
// marks the state word done. Appends that find no room send their bytes
// in an Append call, as they do when the region could not be set up.

// shmBytes is the size of a plugin run's shared region: room for a few of
// the largest append calls (appendMessageBytes) in flight at once.
var shmBytes = 8 << 20

const (
	shmSpanHead = 64 // a span's head: the state word and its check words, padded to a cache line
	shmAlign    = 64

	// State word bits, beside the span's tag (below 1<<62).
	shmTaken = 1 << 62 // the plugin is reading the span
	shmDone  = 1 << 63 // the plugin is done with the span
)

// shmWord returns the state word at off of region b.
func shmWord(b []byte, off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&b[off]))
}

// shmRegion is the host's side of a shared region.
type shmRegion struct {
	b     []byte
	unmap func([]byte) error

	mu         sync.Mutex
	head, tail int64      // ring positions (bytes since the ring was last empty): used is head-tail
	spans      []*shmSpan // allocated and not yet free, oldest first
	tags       uint64
	users      int  // spans being filled or waited on by the host
	closed     bool // unmap once users is 0
}

// shmSpan is one append call's part of the region.
type shmSpan struct {
	r         *shmRegion
	end       int64  // the ring position after the span
	off       uint64 // where the head lies in b
	tag       uint64
	data      []byte // the room after the head, for records and batches
	free      bool
	abandoned bool // the host gave up while the plugin held it
}

func newShmRegion(b []byte, unmap func([]byte) error) *shmRegion {
	return &shmRegion{b: b, unmap: unmap}
}

// alloc returns a span with room for n bytes after its head, its state word
// set to its tag, or nil if the region has no room (or is closed).
func (r *shmRegion) alloc(n int) *shmSpan {
	need := int64(shmSpanHead + (n+shmAlign-1)/shmAlign*shmAlign)
	size := int64(len(r.b))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || need > size {
		return nil
	}
	r.reclaim()
	pos := r.head
	if pos%size+need > size { // skip the rest of this lap
		pos += size - pos%size
	}
	if pos+need-r.tail > size {
		return nil
	}
	r.tags++
	s := &shmSpan{r: r, end: pos + need, off: uint64(pos % size), tag: r.tags % shmTaken}
	if s.tag == 0 {
		r.tags++
		s.tag = r.tags % shmTaken
	}
	s.data = r.b[s.off+shmSpanHead : s.off+uint64(need)]
	r.head = s.end
	r.spans = append(r.spans, s)
	r.users++
	// The check words name this span: a late request for a span freed
	// and reused since finds its offset inside another span's bytes,
	// where these three words do not stand.
	shmWord(r.b, s.off+8).Store(s.off ^ shmCheck)
	shmWord(r.b, s.off+16).Store(^s.tag)
	shmWord(r.b, s.off).Store(s.tag)
	return s
}

// shmCheck marks a span's second head word.
const shmCheck = 0x5354524154415350 // "STRATASP"

// release ends s's call. Unless the plugin finished with the span or never
// took it (taking it back makes sure it never will), the span stays out of
// use until the plugin marks it done.
func (s *shmSpan) release() {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	w := shmWord(r.b, s.off)
	if w.CompareAndSwap(s.tag, 0) || w.Load() == s.tag|shmDone {
		s.free = true
	} else {
		s.abandoned = true
	}
	r.users--
	r.reclaim()
	if r.closed && r.users == 0 {
		r.unmapLocked()
	}
}

// reclaim frees the oldest spans that are over, and abandoned ones the
// plugin has finished with since.
func (r *shmRegion) reclaim() {
	if r.b == nil {
		return
	}
	i := 0
	for ; i < len(r.spans); i++ {
		s := r.spans[i]
		if s.abandoned && shmWord(r.b, s.off).Load() == s.tag|shmDone {
			s.free = true
		}
		if !s.free {
			break
		}
		r.tail = s.end
	}
	if i > 0 {
		r.spans = append(r.spans[:0], r.spans[i:]...)
	}
	if len(r.spans) == 0 { // start over at the beginning
		r.head, r.tail = 0, 0
	}
}

// close unmaps the region once the host's last user is done with it; spans
// allocated after fail.
func (r *shmRegion) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if r.users == 0 {
		r.unmapLocked()
	}
}

func (r *shmRegion) unmapLocked() {
	if r.b != nil {
		r.unmap(r.b)
		r.b = nil
	}
}

// inUse returns the bytes of the ring not free, for tests.
func (r *shmRegion) inUse() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reclaim()
	return r.head - r.tail
}

// shmView is the plugin's side of a shared region.
type shmView struct {
	mu sync.RWMutex // read-held while an append reads the region
	b  []byte       // nil when not shared
}

// share maps the region req names in place of the one mapped before.
func (v *shmView) share(req *enginepb.ShareRequest) error {
	b, err := mapShared(req.GetPath(), req.GetSize())
	if err != nil {
		return err
	}
	v.mu.Lock()
	old := v.b
	v.b = b
	v.mu.Unlock()
	if old != nil {
		unmapShared(old)
	}
	return nil
}

// close unmaps the region, once no append reads it.
func (v *shmView) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.b != nil {
		unmapShared(v.b)
		v.b = nil
	}
}

// errAbandoned is returned for an append the host gave up on before the
// plugin read it.
var errAbandoned = fmt.Errorf("plugin append: %w (the host gave up on the call)", context.Canceled)

// shmRecordBytes is the size of a batch's record in a span.
const shmRecordBytes = 32

// shmPut writes batches into span data: their records, then their bytes.
func shmPut(data []byte, batches []engine.Batch) {
	le := binary.LittleEndian
	pos := len(batches) * shmRecordBytes
	for i, b := range batches {
		r := data[i*shmRecordBytes:]
		le.PutUint64(r[0:], uint64(b.Meta.BaseOffset))
		le.PutUint64(r[8:], uint64(b.Meta.LastOffset))
		le.PutUint64(r[16:], uint64(b.Meta.MaxTimestamp))
		le.PutUint32(r[24:], uint32(b.Meta.RecordCount))
		le.PutUint32(r[28:], uint32(len(b.Data)))
		pos += copy(data[pos:], b.Data)
	}
}

// shmBatches walks the batches of a span's data (see shmPut), calling f
// with each until f fails; it returns how many f took and f's error, or an
// error wrapping engine.ErrInvalidBatch if the records overrun the data.
func shmBatches(data []byte, n int, f func(engine.BatchMeta, []byte) error) (int, error) {
	le := binary.LittleEndian
	if n > len(data)/shmRecordBytes {
		return 0, fmt.Errorf("plugin append: %d batch records overrun a span of %d bytes: %w", n, len(data), engine.ErrInvalidBatch)
	}
	pos := n * shmRecordBytes
	for i := range n {
		r := data[i*shmRecordBytes:]
		size := int(le.Uint32(r[28:]))
		if size > len(data)-pos {
			return i, fmt.Errorf("plugin append: batch %d overruns its span: %w", i, engine.ErrInvalidBatch)
		}
		meta := engine.BatchMeta{
			BaseOffset:   int64(le.Uint64(r[0:])),
			LastOffset:   int64(le.Uint64(r[8:])),
			MaxTimestamp: int64(le.Uint64(r[16:])),
			RecordCount:  int32(le.Uint32(r[24:])),
		}
		if err := f(meta, data[pos:pos+size:pos+size]); err != nil {
			return i, err
		}
		pos += size
	}
	return n, nil
}

// take claims req's span for reading and returns its data (records and
// batches) and the function that gives the span back. With the span comes
// v's read lock, which done releases.
func (v *shmView) take(req *enginepb.AppendRequest) (data []byte, done func(), err error) {
	v.mu.RLock()
	b := v.b
	off, n, tag := req.GetShmSpan(), req.GetShmLength(), req.GetShmTag()
	size := uint64(len(b))
	if off%8 != 0 || size < shmSpanHead || off > size-shmSpanHead || n > size-off-shmSpanHead || tag == 0 || tag >= shmTaken {
		v.mu.RUnlock()
		return nil, nil, fmt.Errorf("plugin append: span [%d, +%d) of a shared region of %d bytes: %w", off, n, size, engine.ErrInvalidBatch)
	}
	w := shmWord(b, off)
	if shmWord(b, off+8).Load() != off^shmCheck || shmWord(b, off+16).Load() != ^tag || !w.CompareAndSwap(tag, tag|shmTaken) {
		v.mu.RUnlock()
		return nil, nil, errAbandoned
	}
	data = b[off+shmSpanHead : off+shmSpanHead+n : off+shmSpanHead+n]
	return data, func() { w.Store(tag | shmDone); v.mu.RUnlock() }, nil
}
