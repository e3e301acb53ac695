package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSpliceMatchesEncoding: a fetch response sent with its records spliced
// in is byte for byte the response kmsg encodes with the records inline, at
// every Fetch version served (int32 and compact length prefixes), with
// record sets of sizes whose compact prefixes take one to three bytes.
func TestSpliceMatchesEncoding(t *testing.T) {
	sizes := []int{100, 20 << 10, 300 << 10}
	chunksOf := func(n int) [][]byte {
		b := bytes.Repeat([]byte{0xab, 0xcd, 0x01}, n/3+1)[:n]
		return [][]byte{b[:n/2], b[n/2:]} // two chunks, as an engine may return
	}
	for v := int16(4); v <= 13; v++ {
		build := func(records func(k int) []byte) *kmsg.FetchResponse {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = v
			for ti, topic := range []string{"a", "bb"} {
				st := kmsg.NewFetchResponseTopic()
				st.Topic = topic
				for pi := range sizes {
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition = int32(pi)
					sp.HighWatermark = int64(1000 * pi)
					sp.RecordBatches = records(ti*len(sizes) + pi)
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		}
		var parts [][][]byte
		for range 2 {
			for _, n := range sizes {
				parts = append(parts, chunksOf(n))
			}
		}
		inline := build(func(k int) []byte { return bytes.Join(parts[k], nil) })
		placed := build(func(k int) []byte { return placeholder(k) })
		frame := func(resp *kmsg.FetchResponse) []byte {
			s := &slot{hdr: header{corr: 7}, flexible: resp.IsFlexible(), res: result{resp: resp}}
			return appendResponse(nil, s)
		}
		want := frame(inline)
		bufs, ok := splice(frame(placed), placed.IsFlexible(), parts)
		if !ok {
			t.Fatalf("v%d: splice refused its own placeholders", v)
		}
		if got := bytes.Join(bufs, nil); !bytes.Equal(got, want) {
			t.Fatalf("v%d: spliced frame (%d bytes) differs from the inline encoding (%d bytes)", v, len(got), len(want))
		}
		// A placeholder out of order is refused, never sent wrong.
		swapped := build(func(k int) []byte { return placeholder(len(parts) - 1 - k) })
		if _, ok := splice(frame(swapped), swapped.IsFlexible(), parts); ok {
			t.Fatalf("v%d: splice accepted placeholders out of order", v)
		}
	}
}
