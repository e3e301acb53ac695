package broker

import (
	"fmt"
	"slices"
	"time"

	"github.com/strata-broker/strata/broker/config"
	"github.com/strata-broker/strata/engine"
)

// resolveTopic resolves a topic's config overrides against the broker's
// defaults into what the data path needs. It fails (wrapping
// config.ErrInvalidConfig, naming the key) for an unknown key, a bad value,
// or a strata.engine that no linked-in engine registered.
func (b *Broker) resolveTopic(overrides map[string]string) (topicSettings, error) {
	tc, err := b.cfg.Topic(overrides)
	if err != nil {
		return topicSettings{}, err
	}
	if !slices.Contains(engine.Names(), tc.Engine) {
		return topicSettings{}, fmt.Errorf("%w: strata.engine=%q: no such engine (registered: %v)", config.ErrInvalidConfig, tc.Engine, engine.Names())
	}
	return topicSettings{
		engine:          tc.Engine,
		log:             withLocalRetention(tc.LogOptions(), tc),
		maxMessageBytes: tc.MaxMessageBytes,
		logAppendTime:   tc.LogAppendTime(),
		minInsync:       tc.MinInsyncReplicas,
	}, nil
}

// withLocalRetention maps the tiered-storage keys local.retention.ms and
// local.retention.bytes into o. Kafka's 0 ("keep no hot copy") would read
// as "the engine's default" in engine.LogOptions, so it becomes the
// smallest positive value, which says the same.
func withLocalRetention(o engine.LogOptions, tc config.TopicConfig) engine.LogOptions {
	o.LocalRetentionMs = time.Duration(tc.LocalRetentionMs) * time.Millisecond
	if tc.LocalRetentionMs > 0 && o.LocalRetentionMs/time.Millisecond != time.Duration(tc.LocalRetentionMs) {
		o.LocalRetentionMs = time.Duration(1<<63 - 1) // overflow: as good as forever
	}
	if o.LocalRetentionMs == 0 {
		o.LocalRetentionMs = time.Nanosecond
	}
	o.LocalRetentionBytes = tc.LocalRetentionBytes
	if o.LocalRetentionBytes == 0 {
		o.LocalRetentionBytes = 1
	}
	return o
}
