package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/broker/internal/partition"
)

func TestValidateBatches(t *testing.T) {
	good := batchtest.Make(t, kgo.NoCompression(), 1, "x", "y")
	two := append(append([]byte(nil), good...), good...)
	if bs, err := partition.ValidateBatches(two, 1<<20, 9); err != nil || len(bs) != 2 {
		t.Fatalf("two batches: %v %d", err, len(bs))
	}
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 0xff; return b }
	for name, tc := range map[string]struct {
		b    []byte
		max  int32
		code int16
	}{
		"empty":     {nil, 1 << 20, 2},
		"crc":       {flip(17), 1 << 20, 2},
		"payload":   {flip(len(good) - 1), 1 << 20, 2},
		"magic":     {flip(16), 1 << 20, 2},
		"truncated": {good[:len(good)-1], 1 << 20, 2},
		"trailing":  {append(append([]byte(nil), good...), 1, 2, 3), 1 << 20, 2},
		"too large": {good, int32(len(good) - 1), 10},
	} {
		if _, err := partition.ValidateBatches(tc.b, tc.max, 9); err == nil || err.Code != tc.code {
			t.Errorf("%s: %v, want code %d", name, err, tc.code)
		}
	}
}
