package lsm

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

// BenchmarkAppendSettings appends 16 KiB batches (bench's append-16KiB)
// under the settings in $STRATA_PEBBLE_BENCH_SETTINGS ("k=v,k=v", keys
// without the strata.pebble. prefix), to compare Pebble tunings.
func BenchmarkAppendSettings(b *testing.B) {
	settings := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("STRATA_PEBBLE_BENCH_SETTINGS"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			settings[SettingsPrefix+k] = v
		}
	}
	e, err := Open(context.Background(), b.TempDir(), engine.Options{Settings: settings})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	l, err := e.OpenLog(context.Background(), engine.TopicPartition{Topic: "bench", Partition: 0}, engine.LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	const size = 16 << 10
	var batch []byte
	var meta engine.BatchMeta
	for v := size - engine.BatchHeaderSize; v >= 0 && len(batch) != size; v-- {
		batch, meta = enginetest.NewBatch(0, 1, v, time.Now().UnixMilli(), 0x5a)
	}
	syscall.Sync()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	var next int64
	for range b.N {
		binary.BigEndian.PutUint64(batch, uint64(next))
		meta.BaseOffset, meta.LastOffset = next, next
		if err := l.Append(context.Background(), meta, batch); err != nil {
			b.Fatal(err)
		}
		next++
	}
}
