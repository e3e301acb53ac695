package group_test

import (
	"testing"

	"github.com/strata-broker/strata/broker/internal/group"
)

// TestGroupPartitionJavaHashCode checks PartitionFor against Java's
// String.hashCode, s[0]*31^(n-1) + ... + s[n-1] over the UTF-16 code units
// in 32-bit two's complement, then Kafka's Utils.abs (MinValue maps to 0)
// and % partitions. The hash values below were computed from that
// definition independently of the Go code:
//
//	""                   0
//	"ab"                 97*31 + 98 = 3105
//	"test-group"         627841412
//	"my-group"           -1906497762 (abs 1906497762)
//	"grüße"              98768023 (ü U+00FC and ß U+00DF are one unit each)
//	"g😀"                U+1F600 is the surrogate pair D83D DE00:
//	                     (103*31 + 0xD83D)*31 + 0xDE00 = 58550*31 + 56832 = 1871882
//	"消费者组"            871131088
//	"polygenelubricants" -2147483648 (Integer.MIN_VALUE: Utils.abs gives 0)
func TestGroupPartitionJavaHashCode(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int64
	}{
		{"", 0},
		{"ab", 3105},
		{"test-group", 627841412},
		{"my-group", -1906497762},
		{"grüße", 98768023},
		{"g😀", 1871882},
		{"消费者组", 871131088},
		{"polygenelubricants", -2147483648},
	} {
		abs := tc.hash
		if abs == -2147483648 {
			abs = 0
		} else if abs < 0 {
			abs = -abs
		}
		for _, n := range []int32{1, 7, 50} {
			if got, want := group.PartitionFor(tc.group, n), int32(abs%int64(n)); got != want {
				t.Errorf("PartitionFor(%q, %d) = %d, want %d", tc.group, n, got, want)
			}
		}
	}
	// Spot values for the default 50 partitions.
	for id, want := range map[string]int32{"test-group": 12, "my-group": 12, "g😀": 32, "grüße": 23} {
		if got := group.PartitionFor(id, 50); got != want {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", id, got, want)
		}
	}
}
