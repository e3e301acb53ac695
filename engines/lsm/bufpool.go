package lsm

import (
	"math/bits"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Read copies batches out of Pebble (whose values are valid only while its
// iterator stays where it is) into buffers the Records own until Release.
// The buffers come from per-size-class pools, so a steady stream of reads
// allocates nothing.

const (
	minClassShift = 12 // 4 KiB
	maxClassShift = 24 // 16 MiB; larger buffers are not pooled
	// slabSize is the most a chunk holds when it is filled from several
	// batches: a read of maxBytes is a list of chunks of up to slabSize
	// (a larger batch gets a chunk of its own), so a buffer never has to
	// grow by copying.
	slabSize = 256 << 10
)

// buf is a pooled buffer.
type buf struct{ b []byte }

var classPools [maxClassShift + 1]sync.Pool

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return minClassShift
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a buffer of capacity at least n and length 0.
func getBuf(n int) *buf {
	c := classOf(n)
	if c > maxClassShift {
		return &buf{b: make([]byte, 0, n)}
	}
	if v := classPools[c].Get(); v != nil {
		b := v.(*buf)
		b.b = b.b[:0]
		return b
	}
	return &buf{b: make([]byte, 0, 1<<c)}
}

func putBuf(b *buf) {
	c := bits.Len(uint(cap(b.b))) - 1
	if cap(b.b) != 1<<c || c < minClassShift || c > maxClassShift {
		return
	}
	classPools[c].Put(b)
}

// readPin owns the memory of one Records: its buffers, and the scratch a
// Read needs (keys, iterator options), pooled together.
type readPin struct {
	bufs      []*buf
	chunks    [][]byte
	bufsArr   [4]*buf
	chunksArr [4][]byte

	lower, upper, seek [offsetKeyLen]byte
	iterOpts           pebble.IterOptions
}

var pinPool = sync.Pool{New: func() any { return new(readPin) }}

func getPin() *readPin {
	p := pinPool.Get().(*readPin)
	p.bufs = p.bufsArr[:0]
	p.chunks = p.chunksArr[:0]
	return p
}

// Release implements engine.Releaser: the buffers go back to their pools.
func (p *readPin) Release() {
	for i, b := range p.bufs {
		putBuf(b)
		p.bufs[i] = nil
	}
	for i := range p.chunks {
		p.chunks[i] = nil
	}
	p.bufs, p.chunks = nil, nil
	p.iterOpts = pebble.IterOptions{}
	pinPool.Put(p)
}

// add copies batch v into the pin's chunks. budget is how many more bytes
// the read may return, which sizes a new chunk.
func (p *readPin) add(v []byte, budget int) {
	if n := len(p.chunks); n > 0 {
		last := p.chunks[n-1]
		if len(last)+len(v) <= cap(last) {
			p.chunks[n-1] = append(last, v...)
			return
		}
	}
	want := max(len(v), min(budget, slabSize))
	b := getBuf(want)
	p.bufs = append(p.bufs, b)
	p.chunks = append(p.chunks, append(b.b[:0:cap(b.b)], v...))
}
