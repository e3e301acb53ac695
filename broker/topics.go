package broker

import (
	"fmt"
	"slices"

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
		log:             tc.LogOptions(),
		maxMessageBytes: tc.MaxMessageBytes,
		logAppendTime:   tc.LogAppendTime(),
		minInsync:       tc.MinInsyncReplicas,
	}, nil
}
