package partition

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/engine"
)

// ResolveTopic resolves a topic's config overrides against the broker's
// defaults (cfg) into what the data path needs. It fails (wrapping
// config.ErrInvalidConfig, naming the key) for an unknown key, a bad value,
// or a strata.engine that no linked-in engine registered.
func ResolveTopic(cfg *config.Config, overrides map[string]string) (Settings, error) {
	tc, err := cfg.Topic(overrides)
	if err != nil {
		return Settings{}, err
	}
	if err := checkEngine(cfg, tc.Engine); err != nil {
		return Settings{}, err
	}
	return Settings{
		Engine:          tc.Engine,
		Log:             withLocalRetention(tc.LogOptions(), tc),
		MaxMessageBytes: tc.MaxMessageBytes,
		LogAppendTime:   tc.LogAppendTime(),
		MinInsync:       tc.MinInsyncReplicas,
	}, nil
}

// checkEngine accepts a registered engine's name, or plugin:<name> for a
// plugin declared in the broker's config (strata.plugins.<name>.path) when
// plugins are linked in. A topic can never name a program: only the
// broker's operator chooses what the broker runs.
func checkEngine(cfg *config.Config, name string) error {
	if slices.Contains(engine.Names(), name) {
		return nil
	}
	ref, isPlugin := strings.CutPrefix(name, config.PluginScheme)
	if !isPlugin {
		return fmt.Errorf("%w: strata.engine=%q: no such engine (registered: %v)", config.ErrInvalidConfig, name, engine.Names())
	}
	if _, _, linked := engine.HasScheme(name); !linked {
		return fmt.Errorf("%w: strata.engine=%q: this broker was built without plugin support", config.ErrInvalidConfig, name)
	}
	if !config.ValidPluginName(ref) || !slices.Contains(cfg.PluginNames(), ref) {
		return fmt.Errorf("%w: strata.engine=%q: a topic may name only a plugin declared in the broker config (%s; declared: %v)",
			config.ErrInvalidConfig, name, config.PluginPathKey("<name>"), cfg.PluginNames())
	}
	return nil
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
