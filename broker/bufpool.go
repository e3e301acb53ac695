package broker

import (
	"math/bits"
	"sync"
)

// buffer is a pooled byte slice. Request frames and response encodings
// come from size classes of powers of two from 4 KiB to 16 MiB; larger
// ones are allocated and left to the garbage collector.
type buffer struct {
	b []byte
	// pooled is set while the buffer sits in a pool, so a second
	// putBuffer of it is a no-op rather than handing it to two owners.
	pooled bool
}

const (
	minBufferShift = 12 // 4 KiB
	maxBufferShift = 24 // 16 MiB
)

var bufferPools [maxBufferShift - minBufferShift + 1]sync.Pool

// bufferClass returns the pool index for a buffer of n bytes, or -1 when n
// is too large to pool.
func bufferClass(n int) int {
	if n <= 1<<minBufferShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxBufferShift {
		return -1
	}
	return shift - minBufferShift
}

// getBuffer returns a buffer of length n.
func getBuffer(n int) *buffer {
	c := bufferClass(n)
	if c < 0 {
		return &buffer{b: make([]byte, n)}
	}
	if v := bufferPools[c].Get(); v != nil {
		buf := v.(*buffer)
		buf.pooled = false
		buf.b = buf.b[:n]
		return buf
	}
	return &buffer{b: make([]byte, n, 1<<(c+minBufferShift))}
}

// putBuffer returns buf to its pool. The caller must not use it after.
func putBuffer(buf *buffer) {
	if buf == nil || buf.pooled {
		return
	}
	c := cap(buf.b)
	if c < 1<<minBufferShift || c&(c-1) != 0 || c > 1<<maxBufferShift {
		return // not one of ours (grown by append to an odd size): drop it
	}
	buf.pooled = true
	bufferPools[bufferClass(c)].Put(buf)
}

// Release returns buf to its pool, so a response can hold it as a pin
// (engine.Releaser) until it is on the wire.
func (buf *buffer) Release() { putBuffer(buf) }
