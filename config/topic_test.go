package config

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
)

func TestTopicDefaults(t *testing.T) {
	c := Default()
	tc, err := c.Topic(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := TopicConfig{
		SegmentBytes: 1 << 30, SegmentMs: 168 * time.Hour, IndexIntervalBytes: 4096, SegmentIndexBytes: 10 << 20,
		RetentionMs: 168 * time.Hour, RetentionBytes: -1, FlushMessages: math.MaxInt64, FlushMs: Never,
		MaxMessageBytes: 1048588, TimestampType: "CreateTime", CleanupPolicy: "delete", MinInsyncReplicas: 1,
		Engine: "mmap", CompressionType: "producer", DeleteRetentionMs: 24 * time.Hour,
		MaxCompactionLagMs: Never, MinCleanableDirtyRatio: 0.5, FileDeleteDelayMs: time.Minute,
		MessageTimestampDifferenceMaxMs: Never, MessageTimestampBeforeMaxMs: Never, MessageTimestampAfterMaxMs: Never,
		MessageDownConversionEnable: true, LocalRetentionMs: -2, LocalRetentionBytes: -2,
	}
	if tc != want {
		t.Errorf("Topic(nil) =\n%+v\nwant\n%+v", tc, want)
	}
	if !tc.Delete() || tc.Compact() || tc.LogAppendTime() {
		t.Errorf("policy helpers wrong for %+v", tc)
	}
}

func TestTopicResolution(t *testing.T) {
	// Broker keys change the topic defaults...
	c := mustLoad(t, "log.retention.hours=1\nlog.engine=mem\nmessage.max.bytes=100\nlog.flush.interval.ms=0\nlog.cleanup.policy=compact", nil, nil)
	tc, err := c.Topic(nil)
	if err != nil {
		t.Fatal(err)
	}
	if tc.RetentionMs != time.Hour || tc.Engine != "mem" || tc.MaxMessageBytes != 100 || tc.FlushMs != 0 || !tc.Compact() || tc.Delete() {
		t.Errorf("broker defaults not applied: %+v", tc)
	}
	// ... and overrides beat them.
	tc, err = c.Topic(map[string]string{
		"retention.ms": "-1", "strata.engine": "plugin:/bin/x", "max.message.bytes": "200",
		"cleanup.policy": "delete, compact", "message.timestamp.type": "LogAppendTime",
		"segment.bytes": "1048576", "compression.type": "zstd", "preallocate": "true",
		"min.cleanable.dirty.ratio": "0.1", "local.retention.ms": "-2", "flush.messages": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if tc.RetentionMs != Forever || tc.Engine != "plugin:/bin/x" || tc.MaxMessageBytes != 200 ||
		tc.CleanupPolicy != "compact,delete" || !tc.LogAppendTime() || tc.SegmentBytes != 1<<20 ||
		tc.CompressionType != "zstd" || !tc.Preallocate || tc.MinCleanableDirtyRatio != 0.1 || tc.FlushMessages != 1 {
		t.Errorf("overrides not applied: %+v", tc)
	}
}

func TestTopicValidation(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		parts      []string
	}{
		{"no.such.key", "1", []string{"unknown topic config no.such.key"}},
		{"log.retention.ms", "1", []string{"log.retention.ms", "broker config"}},
		{"retention.ms", "x", []string{"retention.ms", "not an integer"}},
		{"retention.ms", "-2", []string{"retention.ms"}},
		{"segment.bytes", "10", []string{"segment.bytes"}},
		{"segment.bytes", "4294967296", []string{"segment.bytes"}},
		{"segment.ms", "0", []string{"segment.ms"}},
		{"segment.index.bytes", "1", []string{"segment.index.bytes"}},
		{"flush.messages", "0", []string{"flush.messages"}},
		{"max.message.bytes", "-1", []string{"max.message.bytes"}},
		{"message.timestamp.type", "createtime", []string{"message.timestamp.type"}},
		{"cleanup.policy", "", []string{"cleanup.policy"}},
		{"min.insync.replicas", "0", []string{"min.insync.replicas"}},
		{"strata.engine", "", []string{"strata.engine"}},
		{"compression.type", "none", []string{"compression.type"}},
		{"unclean.leader.election.enable", "1", []string{"unclean.leader.election.enable"}},
		{"min.cleanable.dirty.ratio", "NaN", []string{"min.cleanable.dirty.ratio"}},
		{"local.retention.bytes", "-3", []string{"local.retention.bytes"}},
	} {
		m := map[string]string{tc.key: tc.value}
		err := ValidateTopicConfigs(m)
		wantErr(t, err, tc.parts...)
		c := Default()
		_, err = c.Topic(m)
		wantErr(t, err, tc.parts...)
	}
	if err := ValidateTopicConfigs(map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"}); err != nil {
		t.Errorf("valid configs: %v", err)
	}
	if err := ValidateTopicConfigs(nil); err != nil {
		t.Errorf("nil configs: %v", err)
	}
	// The first error is always the same one.
	m := map[string]string{"b.bad": "1", "a.bad": "1", "retention.ms": "x"}
	for range 10 {
		if err := ValidateTopicConfigs(m); !strings.Contains(err.Error(), "a.bad") {
			t.Fatalf("first error %v, want the one for a.bad", err)
		}
	}
}

func TestTopicConfigKeys(t *testing.T) {
	keys := TopicConfigKeys()
	if len(keys) != len(topicKeys) {
		t.Fatalf("%d keys, table has %d", len(keys), len(topicKeys))
	}
	want := map[string][2]string{
		"retention.ms":        {"log.retention.ms", "604800000"},
		"max.message.bytes":   {"message.max.bytes", "1048588"},
		"strata.engine":       {"log.engine", "mmap"},
		"segment.ms":          {"log.roll.ms", "604800000"},
		"segment.index.bytes": {"log.index.size.max.bytes", "10485760"},
		"flush.ms":            {"log.flush.interval.ms", "9223372036854775807"},
		"min.insync.replicas": {"min.insync.replicas", "1"},
	}
	for _, k := range keys {
		if w, ok := want[k.Name]; ok && (k.BrokerKey != w[0] || k.Default != w[1]) {
			t.Errorf("%s ← %s (%s), want ← %s (%s)", k.Name, k.BrokerKey, k.Default, w[0], w[1])
		}
		if k.Doc == "" || k.Type == 0 {
			t.Errorf("%s has no doc or type", k.Name)
		}
		// The broker default parses as a topic value.
		if err := ValidateTopicConfigs(map[string]string{k.Name: k.Default}); err != nil {
			t.Errorf("default of %s: %v", k.Name, err)
		}
	}
}

func TestLogOptions(t *testing.T) {
	c := Default()
	o := c.EngineOptions()
	want := engine.LogOptions{
		SegmentBytes: 1 << 30, SegmentMs: 168 * time.Hour, IndexIntervalBytes: 4096,
		SegmentIndexBytes: 10 << 20, FlushMessages: math.MaxInt64, FlushInterval: engine.DefaultFlushInterval,
	}
	if o.Log != want {
		t.Errorf("EngineOptions().Log = %+v, want %+v", o.Log, want)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("default options invalid: %v", err)
	}
	c.Engine = map[string]string{"strata.x": "1"}
	o = c.EngineOptions()
	o.Settings["strata.x"] = "2"
	if c.Engine["strata.x"] != "1" {
		t.Error("EngineOptions().Settings aliases Config.Engine")
	}

	// Kafka's 0 means "always", which engine.LogOptions cannot say with
	// a zero.
	tc, err := c.Topic(map[string]string{"index.interval.bytes": "0", "flush.ms": "0"})
	if err != nil {
		t.Fatal(err)
	}
	lo := tc.LogOptions()
	if lo.IndexIntervalBytes != 1 || lo.FlushInterval != time.Nanosecond {
		t.Errorf("zeros mapped to %+v", lo)
	}
	if err := lo.WithDefaults(engine.LogOptions{}).Validate(); err != nil {
		t.Errorf("mapped options invalid: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	c := mustLoad(t, "num.partitions=3\nlog.retention.hours=1\nstrata.pebble.cache.size=1", nil, nil)
	byName := map[string]ConfigValue{}
	for _, v := range c.DescribeBroker() {
		byName[v.Name] = v
	}
	if v := byName["num.partitions"]; v.Value != "3" || v.Source != SourceStaticBroker || !v.ReadOnly ||
		!reflect.DeepEqual(v.Synonyms, []Synonym{{"num.partitions", "3", SourceStaticBroker}, {"num.partitions", "1", SourceDefault}}) {
		t.Errorf("num.partitions: %+v", v)
	}
	if v := byName["message.max.bytes"]; v.Value != "1048588" || v.Source != SourceDefault {
		t.Errorf("message.max.bytes: %+v", v)
	}
	if v := byName["log.retention.ms"]; v.Value != "3600000" {
		t.Errorf("log.retention.ms: %+v", v)
	}
	if v := byName["strata.pebble.cache.size"]; v.Value != "1" || v.Source != SourceStaticBroker {
		t.Errorf("engine key: %+v", v)
	}
	if v := byName["listeners"]; v.Value != "PLAINTEXT://127.0.0.1:9092" {
		t.Errorf("listeners: %+v", v)
	}

	topic := map[string]ConfigValue{}
	for _, v := range c.DescribeTopic(map[string]string{"max.message.bytes": "10"}) {
		topic[v.Name] = v
	}
	if len(topic) != len(topicKeys) {
		t.Errorf("DescribeTopic has %d keys, want %d", len(topic), len(topicKeys))
	}
	if v := topic["max.message.bytes"]; v.Value != "10" || v.Source != SourceTopic || !reflect.DeepEqual(v.Synonyms, []Synonym{
		{"max.message.bytes", "10", SourceTopic}, {"message.max.bytes", "1048588", SourceDefault}}) {
		t.Errorf("max.message.bytes: %+v", v)
	}
	if v := topic["retention.ms"]; v.Value != "3600000" || v.Source != SourceStaticBroker || !reflect.DeepEqual(v.Synonyms, []Synonym{
		{"log.retention.hours", "1", SourceStaticBroker}, {"log.retention.hours", "168", SourceDefault}}) {
		t.Errorf("retention.ms: %+v", v)
	}
	if v := topic["cleanup.policy"]; v.Value != "delete" || v.Source != SourceDefault {
		t.Errorf("cleanup.policy: %+v", v)
	}
}

func TestErrInvalidConfigDistinct(t *testing.T) {
	// The broker maps config.ErrInvalidConfig to INVALID_CONFIG; it must
	// not be confused with an engine's option error.
	if errors.Is(ErrInvalidConfig, engine.ErrInvalidOptions) {
		t.Fatal("ErrInvalidConfig is engine.ErrInvalidOptions")
	}
}
