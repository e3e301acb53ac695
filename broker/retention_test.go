package broker

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/config"
)

// TestRetentionByTime runs passes with a chosen clock: batches whose max
// timestamp is older than now - retention.ms go, and the start never
// passes the high watermark.
func TestRetentionByTime(t *testing.T) {
	for _, eng := range []string{"mmap", "mem"} {
		t.Run(eng, func(t *testing.T) {
			tb := startBroker(t)
			tb.createTopic("rt", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000"), "strata.engine": kmsg.StringPtr(eng)})
			tb.createTopic("rt-forever", 1, map[string]*string{"retention.ms": kmsg.StringPtr("-1"), "strata.engine": kmsg.StringPtr(eng)})
			tb.createTopic("rt-compact", 1, map[string]*string{"retention.ms": kmsg.StringPtr("1"), "cleanup.policy": kmsg.StringPtr("compact"), "strata.engine": kmsg.StringPtr(eng)})
			cl := tb.client()
			for _, topic := range []string{"rt", "rt-forever", "rt-compact"} {
				produceRaw(t, tb, cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 1000, "a", "b")) // 0-1, max ts 1001
				produceRaw(t, tb, cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 5000, "c"))      // 2, ts 5000
				produceRaw(t, tb, cl, topic, 0, batchtest.Make(t, kgo.NoCompression(), 100000, "d"))    // 3, ts 100000
			}
			ctx := testCtx(t)

			// Cutoff 1001: nothing is older.
			if n := tb.b.parts.EnforceRetention(ctx, time.UnixMilli(61001)); n != 0 {
				t.Fatalf("pass at cutoff 1001 moved %d partitions", n)
			}
			// Cutoff 2000: the first batch goes.
			if n := tb.b.parts.EnforceRetention(ctx, time.UnixMilli(62000)); n != 1 {
				t.Fatalf("pass at cutoff 2000 moved %d partitions, want 1", n)
			}
			if start, _ := tb.logOffsets("rt", 0); start != 2 {
				t.Fatalf("start %d after cutoff 2000, want 2", start)
			}
			if fp := fetchRaw(t, tb, cl, "rt", 0, 1, 0, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code {
				t.Fatalf("fetch below the start: %v", kerr.ErrorForCode(fp.ErrorCode))
			}
			if sp := listOffset(t, tb, 8, "rt", -2); sp.Offset != 2 {
				t.Fatalf("earliest %d, want 2", sp.Offset)
			}
			// Everything is old: the log empties at the high watermark.
			tb.b.parts.EnforceRetention(ctx, time.UnixMilli(1_000_000))
			if start, end := tb.logOffsets("rt", 0); start != 4 || end != 4 {
				t.Fatalf("offsets [%d, %d) after everything expired, want [4, 4)", start, end)
			}
			for _, topic := range []string{"rt-forever", "rt-compact"} {
				if start, _ := tb.logOffsets(topic, 0); start != 0 {
					t.Fatalf("%s: start %d, want 0", topic, start)
				}
			}
			if sp := produceRaw(t, tb, cl, "rt", 0, batchtest.Make(t, kgo.NoCompression(), 2_000_000, "e")); sp.ErrorCode != 0 || sp.BaseOffset != 4 {
				t.Fatalf("produce after expiry: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
			}
		})
	}
}

// TestRetentionByBytes: the oldest batches go while what remains is still
// at least retention.bytes, as Kafka deletes segments.
func TestRetentionByBytes(t *testing.T) {
	for _, eng := range []string{"mmap", "mem"} {
		t.Run(eng, func(t *testing.T) {
			tb := startBroker(t)
			size := len(batchtest.Make(t, kgo.NoCompression(), 1, "0123456789"))
			limit := 2*size + size/2 // two and a half batches
			tb.createTopic("rb", 1, map[string]*string{
				"retention.bytes": kmsg.StringPtr(strconv.Itoa(limit)),
				"strata.engine":   kmsg.StringPtr(eng),
				"segment.bytes":   kmsg.StringPtr("1048576"),
			})
			cl := tb.client()
			ctx := testCtx(t)
			produce := func(n int) {
				for range n {
					if sp := produceRaw(t, tb, cl, "rb", 0, batchtest.Make(t, kgo.NoCompression(), time.Now().UnixMilli(), "0123456789")); sp.ErrorCode != 0 {
						t.Fatal(kerr.ErrorForCode(sp.ErrorCode))
					}
				}
			}
			produce(2)
			if n := tb.b.parts.EnforceRetention(ctx, time.Now()); n != 0 {
				t.Fatalf("under the limit: moved %d", n)
			}
			produce(4) // six batches, 0-5
			tb.b.parts.EnforceRetention(ctx, time.Now())
			// Three batches stay (three are >= 2.5 batches, two are not).
			if start, end := tb.logOffsets("rb", 0); start != 3 || end != 6 {
				t.Fatalf("offsets [%d, %d), want [3, 6)", start, end)
			}
			// Repeated passes do not creep forward while the engine still
			// holds the bytes of deleted batches in a live segment.
			for range 3 {
				tb.b.parts.EnforceRetention(ctx, time.Now())
			}
			if start, _ := tb.logOffsets("rb", 0); start != 3 {
				t.Fatalf("start crept to %d", start)
			}
			recs := consumeAll(t, tb, "rb", 3)
			if recs[0].Offset != 3 {
				t.Fatalf("first record consumed at %d", recs[0].Offset)
			}

			// Lowering the limit applies at the next pass; 0 keeps
			// nothing.
			rs, err := tb.admin().AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: kmsg.StringPtr("0")}}, "rb")
			if err != nil || rs[0].Err != nil {
				t.Fatalf("alter: %v %+v", err, rs)
			}
			tb.b.parts.EnforceRetention(ctx, time.Now())
			if start, end := tb.logOffsets("rb", 0); start != 6 || end != 6 {
				t.Fatalf("offsets [%d, %d) with retention.bytes=0, want [6, 6)", start, end)
			}
		})
	}
}

// TestRetentionLoop: the background loop runs on its own at
// log.retention.check.interval.ms, and Shutdown stops it.
func TestRetentionLoop(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.LogRetentionCheckMs = 10 * time.Millisecond })
	tb.createTopic("loop", 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")})
	cl := tb.client()
	produceRaw(t, tb, cl, "loop", 0, batchtest.Make(t, kgo.NoCompression(), 1, "old"))
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if start, _ := tb.logOffsets("loop", 0); start == 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the retention loop did not delete an expired batch")
		case <-tick.C:
		}
	}
	tb.stop()
}
