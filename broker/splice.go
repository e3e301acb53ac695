package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
)

// Fetched records go to the socket without a copy: a fetch response is
// encoded by kmsg as usual, except that each partition's records field
// holds a placeholder; the writer then sends the encoding around the
// placeholders and the engine's own chunks in their place with one
// vectored write (writev), so record bytes that the engine handed out of
// its mapping are never copied by the broker.
//
// A placeholder is spliceMarker followed by its index (big-endian uint32),
// placeholderSize bytes, so kmsg writes its length prefix as that of
// placeholderSize bytes: an int32 (Fetch v4–v11) or a one-byte uvarint of
// placeholderSize+1 (v12+, compact nullable bytes). The splice checks that
// prefix before replacing it with the records' own, and refuses (the
// response is then sent copied) if anything is not as expected. The marker
// is 16 random bytes drawn at start-up, which no other field of a response
// holds by chance.

// spliceMin is the least record data a partition must have for its
// records to be spliced rather than copied: below it the copy is cheaper
// than another iovec.
const spliceMin = 16 << 10

const placeholderSize = 20

var spliceMarker = func() (m [16]byte) {
	rand.Read(m[:])
	return m
}()

// placeholder returns the records-field stand-in for the k-th spliced
// partition of a response.
func placeholder(k int) []byte {
	b := make([]byte, placeholderSize)
	copy(b, spliceMarker[:])
	binary.BigEndian.PutUint32(b[16:], uint32(k))
	return b
}

// splice turns enc, a size-prefixed response frame whose records fields
// hold placeholders 0..len(parts)-1 in order, into the buffers to write:
// the encoding around each placeholder, the records' length prefix and the
// records themselves. It fixes the frame size in enc. ok is false if a
// placeholder or its prefix is not where and what it must be.
func splice(enc []byte, flexible bool, parts [][][]byte) (bufs net.Buffers, ok bool) {
	prefixLen := 4
	if flexible {
		prefixLen = 1
	}
	prefixes := make([]byte, 0, 5*len(parts))
	bufs = make(net.Buffers, 0, 2*len(parts)+1+len(parts))
	size := len(enc) - 4
	prev := 0
	for k, chunks := range parts {
		i := bytes.Index(enc[prev:], spliceMarker[:])
		if i < 0 {
			return nil, false
		}
		p := prev + i
		if p-prefixLen < prev || p+placeholderSize > len(enc) ||
			binary.BigEndian.Uint32(enc[p+16:]) != uint32(k) {
			return nil, false
		}
		if flexible && enc[p-1] != placeholderSize+1 ||
			!flexible && binary.BigEndian.Uint32(enc[p-4:]) != placeholderSize {
			return nil, false
		}
		n := 0
		for _, c := range chunks {
			n += len(c)
		}
		at := len(prefixes)
		if flexible {
			prefixes = binary.AppendUvarint(prefixes, uint64(n)+1)
		} else {
			prefixes = binary.BigEndian.AppendUint32(prefixes, uint32(n))
		}
		prefix := prefixes[at:len(prefixes):len(prefixes)]
		size += len(prefix) - prefixLen + n - placeholderSize
		bufs = append(bufs, enc[prev:p-prefixLen], prefix)
		bufs = append(bufs, chunks...)
		prev = p + placeholderSize
	}
	bufs = append(bufs, enc[prev:])
	binary.BigEndian.PutUint32(enc, uint32(size))
	return bufs, true
}
