package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/strata-broker/strata/engine"
)

// TopicConfig is a topic's effective configuration: its overrides over the
// broker's defaults. Durations read from *.ms keys hold the value in a
// time.Duration; Kafka's Long.MAX_VALUE ms is Never.
type TopicConfig struct {
	SegmentBytes       int64         // segment.bytes ← log.segment.bytes
	SegmentMs          time.Duration // segment.ms ← log.roll.ms
	SegmentJitterMs    time.Duration // segment.jitter.ms ← log.roll.jitter.ms
	IndexIntervalBytes int32         // index.interval.bytes ← log.index.interval.bytes
	SegmentIndexBytes  int32         // segment.index.bytes ← log.index.size.max.bytes
	RetentionMs        time.Duration // retention.ms ← log.retention.ms; Forever keeps data forever
	RetentionBytes     int64         // retention.bytes ← log.retention.bytes; negative: no limit
	FlushMessages      int64         // flush.messages ← log.flush.interval.messages
	FlushMs            time.Duration // flush.ms ← log.flush.interval.ms; Never by default
	MaxMessageBytes    int32         // max.message.bytes ← message.max.bytes
	TimestampType      string        // message.timestamp.type ← log.message.timestamp.type: CreateTime|LogAppendTime
	CleanupPolicy      string        // cleanup.policy ← log.cleanup.policy: delete, compact or compact,delete
	MinInsyncReplicas  int32         // min.insync.replicas ← min.insync.replicas
	Engine             string        // strata.engine ← log.engine

	// Accepted and stored, so clients that set them work and
	// DescribeConfigs shows them, but not acted on (yet).
	CompressionType                 string        // compression.type ← compression.type
	DeleteRetentionMs               time.Duration // delete.retention.ms ← log.cleaner.delete.retention.ms
	MinCompactionLagMs              time.Duration // min.compaction.lag.ms ← log.cleaner.min.compaction.lag.ms
	MaxCompactionLagMs              time.Duration // max.compaction.lag.ms ← log.cleaner.max.compaction.lag.ms
	MinCleanableDirtyRatio          float64       // min.cleanable.dirty.ratio ← log.cleaner.min.cleanable.ratio
	FileDeleteDelayMs               time.Duration // file.delete.delay.ms ← log.segment.delete.delay.ms
	UncleanLeaderElectionEnable     bool          // unclean.leader.election.enable ← same
	MessageTimestampDifferenceMaxMs time.Duration // message.timestamp.difference.max.ms ← log.message.timestamp.difference.max.ms
	MessageTimestampBeforeMaxMs     time.Duration // message.timestamp.before.max.ms ← log.message.timestamp.before.max.ms
	MessageTimestampAfterMaxMs      time.Duration // message.timestamp.after.max.ms ← log.message.timestamp.after.max.ms
	MessageDownConversionEnable     bool          // message.downconversion.enable ← log.message.downconversion.enable
	Preallocate                     bool          // preallocate ← log.preallocate
	LocalRetentionMs                int64         // local.retention.ms ← log.local.retention.ms (-2: retention.ms)
	LocalRetentionBytes             int64         // local.retention.bytes ← log.local.retention.bytes (-2: retention.bytes)
}

// Compact reports whether cleanup.policy includes compact.
func (t TopicConfig) Compact() bool { return strings.Contains(t.CleanupPolicy, "compact") }

// Delete reports whether cleanup.policy includes delete: whether
// retention.ms and retention.bytes apply.
func (t TopicConfig) Delete() bool { return strings.Contains(t.CleanupPolicy, "delete") }

// LogAppendTime reports whether the broker stamps batches on append.
func (t TopicConfig) LogAppendTime() bool { return t.TimestampType == "LogAppendTime" }

// LogOptions returns the options an engine opens the topic's partition
// logs with.
func (t TopicConfig) LogOptions() engine.LogOptions {
	o := engine.LogOptions{
		SegmentBytes:       t.SegmentBytes,
		SegmentMs:          t.SegmentMs,
		IndexIntervalBytes: t.IndexIntervalBytes,
		SegmentIndexBytes:  t.SegmentIndexBytes,
		FlushMessages:      t.FlushMessages,
		FlushInterval:      t.FlushMs,
	}
	// A zero field means "the engine's default" in engine.LogOptions, but
	// Kafka's 0 means "always": an index entry per batch, a sync as soon
	// as possible. The smallest positive values say the same.
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = 1
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Nanosecond
	}
	return o
}

// EngineOptions returns the options the broker opens its engine with: the
// broker's topic defaults as the logs' defaults and the strata.* engine
// keys as Settings. FS, Logger and Now are left for the caller.
func (c *Config) EngineOptions() engine.Options {
	t, err := c.Topic(nil)
	if err != nil {
		// Only a Config assembled by hand, not by Load or Default, gets
		// here; its log options then stay at the engine's defaults, which
		// engine.Open validates anyway.
		return engine.Options{Settings: maps.Clone(c.Engine)}
	}
	return engine.Options{Log: t.LogOptions(), Settings: maps.Clone(c.Engine)}
}

// Topic resolves a topic's config overrides (as stored by coordination)
// against the broker's defaults. An unknown key or a bad value is an
// error wrapping ErrInvalidConfig that names the key.
func (c *Config) Topic(overrides map[string]string) (TopicConfig, error) {
	var t TopicConfig
	for _, k := range topicKeys {
		v := keyByName[k.brokerKey].value(c)
		if err := k.parse(&t, v); err != nil {
			return TopicConfig{}, fmt.Errorf("%w: broker default %s=%q of %s: %v", ErrInvalidConfig, k.brokerKey, v, k.name, err)
		}
	}
	if err := t.apply(overrides); err != nil {
		return TopicConfig{}, err
	}
	return t, nil
}

// ValidateTopicConfigs checks topic config overrides (CreateTopics,
// AlterConfigs) without a broker: every key must be a topic key and every
// value well-formed. The error wraps ErrInvalidConfig and names the key.
func ValidateTopicConfigs(m map[string]string) error {
	var t TopicConfig
	return t.apply(m)
}

// apply parses overrides into t, in key order so that the first error is
// always the same one.
func (t *TopicConfig) apply(overrides map[string]string) error {
	for _, key := range slices.Sorted(maps.Keys(overrides)) {
		v := overrides[key]
		k, ok := topicKeyByName[key]
		if !ok {
			if _, ok := keyByName[key]; ok {
				return fmt.Errorf("%w: unknown topic config %s (a broker config)", ErrInvalidConfig, key)
			}
			return fmt.Errorf("%w: unknown topic config %s", ErrInvalidConfig, key)
		}
		if err := k.parse(t, v); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, key, v, err)
		}
	}
	return nil
}

// TopicKeyDoc describes one topic key, for DescribeConfigs and --help.
type TopicKeyDoc struct {
	Name      string
	BrokerKey string // the broker key that supplies the default (retention.ms ← log.retention.ms)
	Type      ConfigType
	Default   string // the broker key's default, as text
	Doc       string
}

// TopicConfigKeys returns every topic key Strata accepts, sorted by name.
func TopicConfigKeys() []TopicKeyDoc {
	def := Default()
	docs := make([]TopicKeyDoc, 0, len(topicKeys))
	for _, k := range topicKeys {
		docs = append(docs, TopicKeyDoc{
			Name: k.name, BrokerKey: k.brokerKey, Type: k.typ, Doc: k.doc,
			Default: keyByName[k.brokerKey].value(&def),
		})
	}
	slices.SortFunc(docs, func(a, b TopicKeyDoc) int { return strings.Compare(a.Name, b.Name) })
	return docs
}

// topicKey declares one topic key and the broker key of its default.
type topicKey struct {
	name      string
	brokerKey string
	typ       ConfigType
	doc       string
	parse     func(t *TopicConfig, v string) error
}

func tInt[T int32 | int64](p func(*TopicConfig) *T, min, max int64) func(*TopicConfig, string) error {
	return func(t *TopicConfig, v string) error {
		n, err := parseInt(v, min, max)
		if err != nil {
			return err
		}
		*p(t) = T(n)
		return nil
	}
}

// tMs parses milliseconds; negatives (allowed only when min < 0) become
// Forever.
func tMs(p func(*TopicConfig) *time.Duration, min int64) func(*TopicConfig, string) error {
	return func(t *TopicConfig, v string) error {
		n, err := parseInt(v, min, math.MaxInt64)
		if err != nil {
			return err
		}
		*p(t) = scale(n, time.Millisecond)
		return nil
	}
}

func tBool(p func(*TopicConfig) *bool) func(*TopicConfig, string) error {
	return func(t *TopicConfig, v string) error {
		b, err := parseBool(v)
		*p(t) = b
		return err
	}
}

func tString(p func(*TopicConfig) *string, check func(string) (string, error)) func(*TopicConfig, string) error {
	return func(t *TopicConfig, v string) error {
		v, err := check(strings.TrimSpace(v))
		*p(t) = v
		return err
	}
}

// topicKeys is the table of topic keys, each with the broker key whose
// value is its default.
var topicKeys = []topicKey{
	{"segment.bytes", "log.segment.bytes", TypeInt, "Size at which a segment rolls.",
		tInt(func(t *TopicConfig) *int64 { return &t.SegmentBytes }, engine.MinSegmentBytes, math.MaxInt32)},
	{"segment.ms", "log.roll.ms", TypeLong, "Age at which the active segment rolls.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.SegmentMs }, 1)},
	{"segment.jitter.ms", "log.roll.jitter.ms", TypeLong, "Most random jitter subtracted from segment.ms; stored, no effect yet.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.SegmentJitterMs }, 0)},
	{"index.interval.bytes", "log.index.interval.bytes", TypeInt, "Bytes of batches between two offset-index entries.",
		tInt(func(t *TopicConfig) *int32 { return &t.IndexIntervalBytes }, 0, math.MaxInt32)},
	{"segment.index.bytes", "log.index.size.max.bytes", TypeInt, "Largest index file of a segment.",
		tInt(func(t *TopicConfig) *int32 { return &t.SegmentIndexBytes }, engine.MinSegmentIndexBytes, math.MaxInt32)},
	{"retention.ms", "log.retention.ms", TypeLong, "Age after which segments are deleted; -1 keeps them forever.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.RetentionMs }, -1)},
	{"retention.bytes", "log.retention.bytes", TypeLong, "Size per partition above which the oldest segments are deleted; -1 for no limit.",
		tInt(func(t *TopicConfig) *int64 { return &t.RetentionBytes }, math.MinInt64, math.MaxInt64)},
	{"flush.messages", "log.flush.interval.messages", TypeLong, "Records appended before a partition is synced to disk.",
		tInt(func(t *TopicConfig) *int64 { return &t.FlushMessages }, 1, math.MaxInt64)},
	{"flush.ms", "log.flush.interval.ms", TypeLong, "Age of the oldest unsynced append at which a partition is synced.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.FlushMs }, 0)},
	{"max.message.bytes", "message.max.bytes", TypeInt, "Largest record batch accepted.",
		tInt(func(t *TopicConfig) *int32 { return &t.MaxMessageBytes }, 0, math.MaxInt32)},
	{"message.timestamp.type", "log.message.timestamp.type", TypeString, "CreateTime or LogAppendTime.",
		tString(func(t *TopicConfig) *string { return &t.TimestampType }, oneOf("CreateTime", "LogAppendTime"))},
	{"cleanup.policy", "log.cleanup.policy", TypeList, "delete, compact or both.",
		tString(func(t *TopicConfig) *string { return &t.CleanupPolicy }, cleanupPolicy)},
	{"min.insync.replicas", "min.insync.replicas", TypeInt, "Replicas that must have a batch before an acks=all produce succeeds.",
		tInt(func(t *TopicConfig) *int32 { return &t.MinInsyncReplicas }, 1, math.MaxInt32)},
	{"strata.engine", "log.engine", TypeString, "The storage engine of this topic's partition logs.",
		tString(func(t *TopicConfig) *string { return &t.Engine }, engineName)},

	{"compression.type", "compression.type", TypeString, "Accepted and stored; Strata keeps batches as produced.",
		tString(func(t *TopicConfig) *string { return &t.CompressionType }, oneOf(compressionTypes...))},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", TypeLong, "How long compaction keeps tombstones; stored, no effect yet.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.DeleteRetentionMs }, 0)},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", TypeLong, "Youngest record compaction may remove; stored, no effect yet.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.MinCompactionLagMs }, 0)},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", TypeLong, "Oldest a record may grow before compaction; stored, no effect yet.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.MaxCompactionLagMs }, 1)},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", TypeDouble, "Dirty ratio at which a log is compacted; stored, no effect yet.",
		func(t *TopicConfig, v string) (err error) {
			t.MinCleanableDirtyRatio, err = parseFloat(v, 0, 1)
			return err
		}},
	{"file.delete.delay.ms", "log.segment.delete.delay.ms", TypeLong, "Delay before a deleted segment's files are removed; stored, no effect yet.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.FileDeleteDelayMs }, 0)},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", TypeBoolean, "Allow a leader from outside the ISR, losing data.",
		tBool(func(t *TopicConfig) *bool { return &t.UncleanLeaderElectionEnable })},
	{"message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms", TypeLong, "Largest difference between a CreateTime timestamp and the broker's clock.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.MessageTimestampDifferenceMaxMs }, 0)},
	{"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", TypeLong, "How far in the past a CreateTime timestamp may be.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.MessageTimestampBeforeMaxMs }, 0)},
	{"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", TypeLong, "How far in the future a CreateTime timestamp may be.",
		tMs(func(t *TopicConfig) *time.Duration { return &t.MessageTimestampAfterMaxMs }, 0)},
	{"message.downconversion.enable", "log.message.downconversion.enable", TypeBoolean, "Down-convert batches for old fetchers; stored, no effect.",
		tBool(func(t *TopicConfig) *bool { return &t.MessageDownConversionEnable })},
	{"preallocate", "log.preallocate", TypeBoolean, "Preallocate segment files; stored, no effect.",
		tBool(func(t *TopicConfig) *bool { return &t.Preallocate })},
	{"local.retention.ms", "log.local.retention.ms", TypeLong, "Tiered storage: local retention age; -2 for retention.ms.",
		tInt(func(t *TopicConfig) *int64 { return &t.LocalRetentionMs }, -2, math.MaxInt64)},
	{"local.retention.bytes", "log.local.retention.bytes", TypeLong, "Tiered storage: local retention size; -2 for retention.bytes.",
		tInt(func(t *TopicConfig) *int64 { return &t.LocalRetentionBytes }, -2, math.MaxInt64)},
}

// topicKeyByName indexes topicKeys, and checks each names a broker key.
var topicKeyByName = func() map[string]*topicKey {
	m := make(map[string]*topicKey, len(topicKeys))
	for i := range topicKeys {
		k := &topicKeys[i]
		if _, ok := keyByName[k.brokerKey]; !ok {
			panic("config: topic key " + k.name + " names unknown broker key " + k.brokerKey)
		}
		m[k.name] = k
	}
	return m
}()
