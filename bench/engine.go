package bench

// The engine suite: its targets (raw, every registered engine, and
// plugin-<engine>), the workload sizes, and RunEngines, which runs every op
// over every target.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/tiered"
	"github.com/strata-broker/strata/plugins"
)

// Target is one storage under benchmark: a registered engine or raw.
type Target struct {
	Name string
	Open func(dir string, opts engine.Options) (engine.Engine, error)
	// Cold is set for engines that move sealed segments to a cold tier.
	Cold *ColdTier
	// Plugin is set for an engine served out of process. Options.Now
	// stays in the host (the plugin gets its own clock), so the JSON
	// workloads, which roll segments on a manual clock, leave it out.
	Plugin bool
}

// ColdTier is what the benchmarks need of an engine with a cold tier.
type ColdTier struct {
	// Settle moves every sealed segment of l to the cold tier now and
	// drops the hot copies its local retention allows.
	Settle func(ctx context.Context, l engine.Log) error
	// Bytes returns the bytes the cold tier holds for the engine whose
	// directory is dir.
	Bytes func(dir string) (int64, error)
	// Settings are the engine settings (engine.Options.Settings) of the
	// JSON workloads.
	Settings map[string]string
}

// coldTiers names the registered engines that have a cold tier. The tiered
// engine runs the JSON workloads without its frame cache, so that every
// read of read-cold fetches and decompresses its frame from the cold tier,
// and without its background uploader, so that Settle makes every upload
// (timed, in json-bytes-on-disk) and no upload races it.
var coldTiers = map[string]*ColdTier{
	"tiered": {
		Settle: tiered.Settle,
		Bytes:  tiered.ColdBytes,
		Settings: map[string]string{
			tiered.SettingFrameCacheBytes:  "0",
			tiered.SettingUploadIntervalMs: "0",
		},
	},
}

// pluginEngines are the built-in engines that also run out of process, as
// plugin-<name>, so the cost of the process boundary is measured against
// the same engine in process. tiered is left out: its cold tier is driven
// in process (tiered.Settle), which a plugin cannot be.
var pluginEngines = []string{"mem", "mmap", "pebble"}

// pluginLogger is the Logger of plugin targets: go-plugin logs every
// process start and exit at info, which would interleave with the results.
var pluginLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// BuildBuiltin builds the examples/builtin plugin program into dir and
// returns its path, for Targets and RunEngines.
func BuildBuiltin(dir string) (string, error) {
	const pkg = "github.com/strata-broker/strata/plugins/examples/builtin"
	bin := filepath.Join(dir, "builtin")
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Targets returns the raw baseline, every registered engine, and then
// plugin-<name> for each engine of pluginEngines: that engine served by
// the plugin program builtin (built by BuildBuiltin), one process per
// Open, which the engine's Close ends.
func Targets(builtin string) []Target {
	ts := []Target{{Name: "raw", Open: func(dir string, opts engine.Options) (engine.Engine, error) {
		return openRaw(dir, opts)
	}}}
	for _, name := range engine.Names() {
		ts = append(ts, Target{Name: name, Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return engine.Open(context.Background(), name, dir, opts)
		}, Cold: coldTiers[name]})
	}
	for _, name := range pluginEngines {
		ts = append(ts, Target{Name: "plugin-" + name, Plugin: true, Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			if opts.Logger == nil {
				opts.Logger = pluginLogger
			}
			return plugins.OpenCommand(context.Background(), exec.Command(builtin, name), dir, opts)
		}})
	}
	return ts
}

// Workload sizes. The read fixtures are large enough that one pass is many
// fetches, small enough to build in a second.
const (
	fetchMaxBytes   = 1 << 20   // max.partition.fetch.bytes, Kafka's default
	readFixture     = 64 << 20  // bytes appended before read-seq and read-random
	recoverFixture  = 256 << 20 // bytes appended before recover
	largeBatchBytes = 16 << 10  // batch.size, the producer default
	smallBatchBytes = 1 << 10
	jsonFixtureSize = 64 << 20 // logical bytes of JSON batches for json-bytes-on-disk and read-cold
	jsonSegment     = 16 << 20 // segment.bytes of the JSON workloads
	tinyBatchBytes  = 100      // a batch whose bytes cost next to nothing: what one call costs

	// Groups of batches for one partition handed over in one
	// engine.AppendBatches. produceBurst: 64 producers' 1 KiB batches
	// for one partition that arrived while its previous append ran (64
	// KiB). followerFetch: what a follower appends from one fetch
	// response, replica.fetch.max.bytes (1 MiB, Kafka's default) of
	// 16 KiB batches.
	produceBurst  = 64
	followerFetch = 64
)

var tp = engine.TopicPartition{Topic: "bench", Partition: 0}

// RunEngines runs every op over every target of Targets(builtin) as
// b.Run(<target>/<op>). builtin is the path of the examples/builtin plugin
// program (BuildBuiltin).
func RunEngines(b *testing.B, builtin string) {
	if builtin == "" {
		b.Fatal("bench: no plugin program: build examples/builtin with BuildBuiltin")
	}
	for _, t := range Targets(builtin) {
		b.Run(t.Name, func(b *testing.B) {
			b.Run("append-100B", func(b *testing.B) { benchAppend(b, t, tinyBatchBytes) })
			b.Run("append-1KiB", func(b *testing.B) { benchAppend(b, t, smallBatchBytes) })
			b.Run("append-16KiB", func(b *testing.B) { benchAppend(b, t, largeBatchBytes) })
			b.Run("append-16KiB-durable", func(b *testing.B) { benchAppend(b, t, largeBatchBytes, true) })
			b.Run(fmt.Sprintf("append-1KiB-x%d", produceBurst), func(b *testing.B) {
				benchAppendGroup(b, t, smallBatchBytes, produceBurst)
			})
			b.Run(fmt.Sprintf("append-16KiB-x%d", followerFetch), func(b *testing.B) {
				benchAppendGroup(b, t, largeBatchBytes, followerFetch)
			})
			b.Run("read-seq", func(b *testing.B) { benchReadSeq(b, t) })
			b.Run("read-tail", func(b *testing.B) { benchReadTail(b, t) })
			b.Run("read-random", func(b *testing.B) { benchReadRandom(b, t) })
			if t.persistent(b) {
				b.Run("recover", func(b *testing.B) { benchRecover(b, t) })
			}
			if !t.Plugin {
				b.Run("json-bytes-on-disk", func(b *testing.B) { benchJSONDisk(b, t) })
				b.Run("read-cold", func(b *testing.B) { benchReadCold(b, t) })
			}
		})
	}
}
