package tiered

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strata-broker/strata/engine"
)

// sampleObject returns a valid cold object of a few frames and the batches
// it holds.
func sampleObject(t testing.TB, frameBytes int) ([]byte, []byte) {
	var data []byte
	var end int64
	for i := range 12 {
		m, b := makeBatch(end, int32(1+i%3), 100+i*40, 5000+int64(i%4), byte(i))
		data = append(data, b...)
		end = m.LastOffset + 1
	}
	obj, _, err := encodeObject(data, frameBytes)
	if err != nil {
		t.Fatal(err)
	}
	return obj, data
}

// TestObjectRoundTripAndDamage encodes batches into cold objects with
// frames of several sizes, decodes them back, and checks that every byte
// flipped and every cut is caught.
func TestObjectRoundTripAndDamage(t *testing.T) {
	for _, fb := range []int{1, 1500} {
		obj, data := sampleObject(t, fb)
		idx, got, err := decodeObject(obj)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("frame bytes %d: decode: %v (%d of %d bytes)", fb, err, len(got), len(data))
		}
		if fb == 1 && len(idx) != 12 {
			t.Fatalf("frame bytes 1: %d frames, want one per batch", len(idx))
		}
		for i := 0; i < len(obj); i += 1 + fb%3 {
			bad := bytes.Clone(obj)
			bad[i] ^= 0x41
			if _, _, err := decodeObject(bad); !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("frame bytes %d: byte %d of %d flipped: err %v", fb, i, len(obj), err)
			}
		}
		for n := 0; n < len(obj); n += 7 {
			if _, _, err := decodeObject(obj[:n]); !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("frame bytes %d: cut to %d of %d bytes: err %v", fb, n, len(obj), err)
			}
		}
	}
}

// TestManifestDamage checks that a manifest with any byte flipped or cut
// short is refused.
func TestManifestDamage(t *testing.T) {
	m := manifest{start: 3, segs: []coldSegment{
		{base: 0, last: 99, maxTs: 7, size: 1000, nonce: 1},
		{base: 100, last: 150, maxTs: 9, size: 500, nonce: 2},
	}}
	b := encodeManifest(m)
	got, err := decodeManifest(b)
	if err != nil || got.start != 3 || len(got.segs) != 2 || got.segs[1] != m.segs[1] {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		if _, err := decodeManifest(bad); !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for n := range len(b) {
		if _, err := decodeManifest(b[:n]); !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("cut to %d: %v", n, err)
		}
	}
}

// FuzzColdFrame hands arbitrary bytes to the cold object reader (footer,
// frame index, frames): it must never panic, and whatever it accepts must
// be consistent with its index. The second input flips a byte of a valid
// object, which must always be refused.
func FuzzColdFrame(f *testing.F) {
	obj, _ := sampleObject(f, 700)
	f.Add(obj, uint32(0))
	f.Add(obj[:len(obj)-1], uint32(len(obj)/2))
	f.Add([]byte{}, uint32(1))
	f.Add([]byte(objectMagic), uint32(2))
	small, _ := sampleObject(f, 1<<20)
	f.Add(small, uint32(len(small)-3))
	f.Fuzz(func(t *testing.T, data []byte, flip uint32) {
		idx, got, err := decodeObject(data)
		if err == nil {
			var n int
			for _, e := range idx {
				n += int(e.ulen)
			}
			if n != len(got) {
				t.Fatalf("accepted an object whose frames decode to %d bytes, index says %d", len(got), n)
			}
			for p := 0; p < len(got); {
				h, err := engine.CheckBatch(got[p:])
				if err != nil {
					t.Fatalf("accepted an object with a bad batch at byte %d: %v", p, err)
				}
				p += h.Size()
			}
		} else if !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("error not wrapping ErrCorrupt: %v", err)
		}
		// The frame reader on its own, with the first index entry.
		if len(idx) > 0 {
			e := idx[0]
			if _, err := decodeFrame(e, data[e.pos:e.pos+int64(e.clen)], false); err != nil {
				t.Fatalf("frame 0 of an accepted object: %v", err)
			}
		}
		bad := bytes.Clone(obj)
		bad[int(flip%uint32(len(bad)))] ^= 0xFF
		if _, _, err := decodeObject(bad); !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("byte %d of a valid object flipped: err %v", flip%uint32(len(bad)), err)
		}
	})
}
