package lsm

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/strata-broker/strata/engine"
)

// SettingsPrefix is the prefix of the engine.Options.Settings keys this
// engine reads. Other strata.* keys belong to other engines and are
// ignored; an unknown key under this prefix is an error.
const SettingsPrefix = "strata.pebble."

// Settings are the Pebble options Strata exposes, parsed from
// engine.Options.Settings. The zero value is not valid; start from
// DefaultSettings.
type Settings struct {
	MemTableSize                int64  // strata.pebble.memtable.size
	MemTableStopWritesThreshold int    // strata.pebble.memtable.stop.writes.threshold
	CacheSize                   int64  // strata.pebble.cache.size
	L0CompactionThreshold       int    // strata.pebble.l0.compaction.threshold
	L0StopWritesThreshold       int    // strata.pebble.l0.stop.writes.threshold
	MaxConcurrentCompactions    int    // strata.pebble.max.concurrent.compactions
	BytesPerSync                int64  // strata.pebble.bytes.per.sync
	WALBytesPerSync             int64  // strata.pebble.wal.bytes.per.sync
	Compression                 string // strata.pebble.compression
	ValueSeparationMinSize      int64  // strata.pebble.value.separation.min.size
}

// DefaultSettings returns the settings used for keys that are not set.
func DefaultSettings() Settings {
	return Settings{
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		CacheSize:                   64 << 20,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		MaxConcurrentCompactions:    min(4, max(1, runtime.NumCPU()/2)),
		BytesPerSync:                512 << 10,
		WALBytesPerSync:             0,
		Compression:                 "none",
		ValueSeparationMinSize:      0,
	}
}

// setting describes one strata.pebble.* key.
type setting struct {
	name string // without SettingsPrefix
	set  func(s *Settings, v string) error
}

func intSetting(name string, lo, hi int64, field func(*Settings) *int64) setting {
	return setting{name: name, set: func(s *Settings, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be in [%d, %d]", lo, hi)
		}
		*field(s) = n
		return nil
	}}
}

func smallIntSetting(name string, lo, hi int, field func(*Settings) *int) setting {
	return setting{name: name, set: func(s *Settings, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be in [%d, %d]", lo, hi)
		}
		*field(s) = n
		return nil
	}}
}

// compressions maps strata.pebble.compression values to Pebble profiles.
var compressions = map[string]*sstable.CompressionProfile{
	"none":   sstable.NoCompression,
	"snappy": sstable.SnappyCompression,
	"zstd":   sstable.ZstdCompression,
}

var settings = []setting{
	intSetting("memtable.size", 256<<10, 4<<30-1, func(s *Settings) *int64 { return &s.MemTableSize }),
	smallIntSetting("memtable.stop.writes.threshold", 2, 64, func(s *Settings) *int { return &s.MemTableStopWritesThreshold }),
	intSetting("cache.size", 1<<20, math.MaxInt64, func(s *Settings) *int64 { return &s.CacheSize }),
	smallIntSetting("l0.compaction.threshold", 1, 1000, func(s *Settings) *int { return &s.L0CompactionThreshold }),
	smallIntSetting("l0.stop.writes.threshold", 1, 1000, func(s *Settings) *int { return &s.L0StopWritesThreshold }),
	smallIntSetting("max.concurrent.compactions", 1, 256, func(s *Settings) *int { return &s.MaxConcurrentCompactions }),
	intSetting("bytes.per.sync", 0, 1<<30, func(s *Settings) *int64 { return &s.BytesPerSync }),
	intSetting("wal.bytes.per.sync", 0, 1<<30, func(s *Settings) *int64 { return &s.WALBytesPerSync }),
	{name: "compression", set: func(s *Settings, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if compressions[v] == nil {
			return fmt.Errorf("must be none, snappy or zstd")
		}
		s.Compression = v
		return nil
	}},
	intSetting("value.separation.min.size", 0, 1<<30, func(s *Settings) *int64 { return &s.ValueSeparationMinSize }),
}

// SettingNames returns every key this engine reads, sorted.
func SettingNames() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = SettingsPrefix + s.name
	}
	slices.Sort(names)
	return names
}

// ParseSettings reads the strata.pebble.* keys of m over DefaultSettings.
// An unknown strata.pebble.* key or a bad value is an error naming the key
// and wrapping engine.ErrInvalidOptions; keys without the prefix are
// ignored.
func ParseSettings(m map[string]string) (Settings, error) {
	s := DefaultSettings()
	// Sorted, so the error names the same key every time.
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.HasPrefix(k, SettingsPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(settings, func(st setting) bool { return SettingsPrefix+st.name == k })
		if i < 0 {
			return s, fmt.Errorf("lsm: %w: unknown key %s (known: %s)", engine.ErrInvalidOptions, k, strings.Join(SettingNames(), ", "))
		}
		if err := settings[i].set(&s, m[k]); err != nil {
			return s, fmt.Errorf("lsm: %w: %s=%q: %v", engine.ErrInvalidOptions, k, m[k], err)
		}
	}
	if s.L0StopWritesThreshold < s.L0CompactionThreshold {
		return s, fmt.Errorf("lsm: %w: %sl0.stop.writes.threshold=%d: must be >= %sl0.compaction.threshold (%d)",
			engine.ErrInvalidOptions, SettingsPrefix, s.L0StopWritesThreshold, SettingsPrefix, s.L0CompactionThreshold)
	}
	return s, nil
}

// apply sets the Pebble options s controls.
func (s Settings) apply(o *pebble.Options) {
	o.CacheSize = s.CacheSize
	o.MemTableSize = uint64(s.MemTableSize)
	o.MemTableStopWritesThreshold = s.MemTableStopWritesThreshold
	o.L0CompactionThreshold = s.L0CompactionThreshold
	o.L0StopWritesThreshold = s.L0StopWritesThreshold
	n := s.MaxConcurrentCompactions
	o.CompactionConcurrencyRange = func() (int, int) { return 1, n }
	o.BytesPerSync = int(s.BytesPerSync)
	o.WALBytesPerSync = int(s.WALBytesPerSync)
	profile := compressions[s.Compression]
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings {
		return pebble.UniformDBCompressionSettings(profile)
	})
	if s.ValueSeparationMinSize > 0 {
		minSize := int(s.ValueSeparationMinSize)
		o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
			return pebble.ValueSeparationPolicy{
				Enabled:               true,
				MinimumSize:           minSize,
				MaxBlobReferenceDepth: 10,
				RewriteMinimumAge:     5 * time.Minute,
				TargetGarbageRatio:    0.2,
			}
		}
	}
}
