package partition

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/engine"
)

func TestMakeBatchValid(t *testing.T) {
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.ZstdCompression()} {
		b := batchtest.Make(t, c, 1000, "a", "bb", "ccc")
		h, err := engine.CheckBatch(b)
		if err != nil || h.Size() != len(b) || h.RecordCount != 3 {
			t.Fatalf("%v %+v", err, h)
		}
		off, ts, ok, err := findRecord(b, 0, func(ts int64) bool { return ts >= 1001 })
		if err != nil || !ok || off != 1 || ts != 1001 {
			t.Fatalf("findRecord: %d %d %v %v", off, ts, ok, err)
		}
	}
}
