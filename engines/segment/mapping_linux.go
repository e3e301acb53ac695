//go:build linux

package segment

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/strata-broker/strata/engine"
)

// Raw mmap/munmap/mremap rather than syscall.Mmap: syscall.Mmap keeps its
// own table of live mappings keyed by the slice, which breaks as soon as
// part of a mapping is replaced with mremap (see detach), and golang.org/x/sys
// would be a dependency for three system calls.
const (
	mremapMayMove = 0x1
	mremapFixed   = 0x2
)

var pageSize = os.Getpagesize()

func roundUp(n, to int) int { return (n + to - 1) / to * to }

func mmap(fd, length, prot, flags int) ([]byte, error) {
	addr, _, errno := syscall.Syscall6(syscall.SYS_MMAP, 0, uintptr(length), uintptr(prot), uintptr(flags), uintptr(fd), 0)
	if errno != 0 {
		return nil, errno
	}
	// The double indirection turns the address into a pointer without a
	// uintptr-to-Pointer conversion that vet (rightly, for Go memory)
	// flags; this memory is outside the Go heap and never moves.
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return unsafe.Slice((*byte)(p), length), nil
}

func munmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, _, errno := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fileKey identifies a file by device and inode, so that mappings of a file
// are found again however its path was spelled, and a new file created at
// the path of a deleted one is not mistaken for it.
type fileKey struct{ dev, ino uint64 }

func keyOf(f engine.File) (fileKey, int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileKey{}, 0, err
	}
	return fileKey{uint64(st.Dev), st.Ino}, st.Size, nil
}

// Mapping is a reference-counted, read-only shared mapping of a segment's
// log file. Records handed out by reads are slices of a Mapping and keep a
// reference to it, so its memory stays mapped until the last of them is
// released, whatever happens to the segment meanwhile: a removed file lives
// on in its mapping, and a file cut short first has the mapped pages past
// the cut replaced by private copies (see ShrinkFile).
//
// The segment that created a Mapping holds one reference (its "owner"
// reference) for as long as the Mapping is current; readers add theirs with
// tryAcquire. The memory is unmapped when the count drops to zero.
type Mapping struct {
	// vma is the whole mapped range, a multiple of the page size; data is
	// its first len bytes, the capacity asked for.
	vma  []byte
	data []byte
	key  fileKey
	refs atomic.Int64
}

// live lists, for every file with a live Mapping, those mappings, so that
// ShrinkFile can detach them before it cuts the file. Process-wide, because
// Records may outlive the log and engine that made them while another
// engine instance reopens the same file.
var live = struct {
	sync.Mutex
	byFile map[fileKey]map[*Mapping]struct{}
}{byFile: map[fileKey]map[*Mapping]struct{}{}}

// mapFile maps the first length bytes of f read-only and shared. length may
// exceed the file's size (an active segment is mapped with room to grow);
// only bytes below the file's size may ever be touched, since pages past
// the end of the file fault with SIGBUS.
func mapFile(f engine.File, length int) (*Mapping, error) {
	m := &Mapping{}
	m.refs.Store(1)
	if length == 0 {
		return m, nil
	}
	key, _, err := keyOf(f)
	if err != nil {
		return nil, fmt.Errorf("segment: stat %s: %w", f.Name(), err)
	}
	vma, err := mmap(int(f.Fd()), roundUp(length, pageSize), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("segment: mmap %s (%d bytes): %w", f.Name(), length, err)
	}
	m.vma, m.data, m.key = vma, vma[:length], key
	live.Lock()
	set := live.byFile[key]
	if set == nil {
		set = map[*Mapping]struct{}{}
		live.byFile[key] = set
	}
	set[m] = struct{}{}
	live.Unlock()
	return m, nil
}

// tryAcquire adds a reference unless the count already dropped to zero
// (the mapping is gone or going); the caller then loads the current
// mapping again.
func (m *Mapping) tryAcquire() bool {
	for {
		r := m.refs.Load()
		if r <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference and unmaps the memory with the last one.
func (m *Mapping) release() {
	switch r := m.refs.Add(-1); {
	case r > 0:
		return
	case r < 0:
		panic("segment: mapping released more often than acquired")
	}
	if m.vma == nil {
		return
	}
	live.Lock()
	if set := live.byFile[m.key]; set != nil {
		delete(set, m)
		if len(set) == 0 {
			delete(live.byFile, m.key)
		}
	}
	live.Unlock()
	// munmap of a range we mapped can only fail on a bug; the memory
	// would then leak, which beats crashing a broker over it.
	_ = munmap(m.vma)
	m.vma, m.data = nil, nil
}

// ShrinkFile cuts f to size bytes. Every live Mapping of the file first has
// the pages from the one holding byte size onwards (up to the file's
// current end) replaced, atomically, by private anonymous pages holding the
// same bytes, so that Records still referring to them read what they read
// before instead of faulting with SIGBUS on pages past the new end of the
// file or seeing the zeros the kernel writes past it. The cost is a copy of
// the bytes cut off, which a truncation removes anyway.
//
// The segment's own current mapping is detached like any other, so a
// segment that keeps appending after ShrinkFile must map the file afresh.
func ShrinkFile(f engine.File, size int64) error {
	live.Lock()
	defer live.Unlock()
	key, cur, err := keyOf(f)
	if err != nil {
		return fmt.Errorf("segment: stat %s: %w", f.Name(), err)
	}
	if size < cur {
		for m := range live.byFile[key] {
			if err := m.detach(size, cur); err != nil {
				return fmt.Errorf("segment: detach mapping of %s from byte %d: %w", f.Name(), size, err)
			}
		}
	}
	return f.Truncate(size)
}

// detach replaces the pages of m from the one holding byte from up to the
// end of the file (fileSize) with anonymous copies. Called with live held.
func (m *Mapping) detach(from, fileSize int64) error {
	lo := int(from) / pageSize * pageSize
	hi := min(len(m.vma), roundUp(int(fileSize), pageSize))
	if hi <= lo {
		return nil
	}
	n := hi - lo
	anon, err := mmap(-1, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	// The bytes below fileSize are in the file; the rest of its last page
	// reads as zeros. Nothing past roundUp(fileSize) is touched.
	copy(anon, m.vma[lo:hi])
	// mremap with MREMAP_FIXED unmaps the target range and moves the
	// anonymous pages in under the mm's write lock, so a concurrent reader
	// faults on either the old page or the copy, never on a hole.
	src := uintptr(unsafe.Pointer(unsafe.SliceData(anon)))
	dst := uintptr(unsafe.Pointer(&m.vma[lo]))
	if _, _, errno := syscall.Syscall6(syscall.SYS_MREMAP, src, uintptr(n), uintptr(n), mremapMayMove|mremapFixed, dst, 0); errno != 0 {
		_ = munmap(anon)
		return errno
	}
	return nil
}

// liveMappings reports how many mappings of f are live (for tests).
func liveMappings(f engine.File) int {
	key, _, err := keyOf(f)
	if err != nil {
		return 0
	}
	live.Lock()
	defer live.Unlock()
	return len(live.byFile[key])
}

// pin is the Releaser of one Read: it holds one reference to a Mapping.
// Each read gets its own, so a second Release of the same Records is a
// no-op rather than dropping someone else's reference; the chunk array
// rides along to save an allocation.
type pin struct {
	m      *Mapping
	done   atomic.Bool
	chunks [1][]byte
}

var _ engine.Releaser = (*pin)(nil)

func (p *pin) Release() {
	if p.done.CompareAndSwap(false, true) {
		p.m.release()
	}
}

// indexMap maps an index file read-write (writable) or read-only. Index
// mappings are not reference counted: only the segment reads them, under
// its owner's locks.
func indexMap(f engine.File, length int, writable bool) ([]byte, error) {
	if length == 0 {
		return nil, nil
	}
	prot := syscall.PROT_READ
	if writable {
		prot |= syscall.PROT_WRITE
	}
	b, err := mmap(int(f.Fd()), length, prot, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("segment: mmap %s (%d bytes): %w", f.Name(), length, err)
	}
	return b, nil
}
