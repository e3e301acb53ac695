package broker

// AlterConfigs (key 33): versions 0–2.
//
//   - Served: a topic's whole override set is replaced with the entries
//     given (null values dropped, as Kafka does), except that a
//     strata.engine override the new set leaves out is kept, since it
//     cannot change (a tool replacing the set would otherwise always be
//     refused). The result is validated as CreateTopics validates (an
//     unknown key or a bad value is INVALID_CONFIG naming the key; a key
//     twice in one resource INVALID_REQUEST), strata.engine cannot change
//     (INVALID_CONFIG), and it is stored through
//     coordination.AlterTopicConfig unless validate_only.
//   - Behaviour (AlterConfigs and IncrementalAlterConfigs): alterations
//     are serialised in the broker, so concurrent incremental changes are
//     not lost. The partitions pick up the new settings before the
//     response is sent: max.message.bytes, message.timestamp.type and
//     min.insync.replicas apply to the next produce, retention.ms,
//     retention.bytes and cleanup.policy to the next retention pass; the
//     engine options (segment.*, index.*, flush.*) apply when a log is
//     next opened (a restart), as engines take them at OpenLog.
//   - BROKER resources cannot be altered: a request that changes any key
//     is INVALID_REQUEST "Cannot update these configs dynamically", what
//     Kafka answers for a key that is not dynamically updatable
//     (KAFKA-13609); one that changes nothing succeeds. Other resource
//     types are INVALID_REQUEST.
//   - Left out: dynamic broker configs; the config policy plugins
//     (alter.config.policy.class.name).

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/coordination"
)

func handleAlterConfigs(ctx context.Context, c *conn, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	c.b.alterEach(ctx, len(req.Resources), req.ValidateOnly,
		func(i int) (kmsg.ConfigResourceType, string) {
			return req.Resources[i].ResourceType, req.Resources[i].ResourceName
		},
		func(i int) error { return c.b.alterConfigs(ctx, &req.Resources[i], req.ValidateOnly) },
		func(i int, code int16, msg *string) {
			sr := kmsg.NewAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = req.Resources[i].ResourceType, req.Resources[i].ResourceName
			sr.ErrorCode, sr.ErrorMessage = code, msg
			resp.Resources = append(resp.Resources, sr)
		})
	return resp
}

// alterEach runs alter on each of n resources of an AlterConfigs or
// IncrementalAlterConfigs request and answers each with answer: a resource
// named twice gets INVALID_REQUEST; topics altered for real are applied to
// their open partitions before the response.
func (b *Broker) alterEach(ctx context.Context, n int, validateOnly bool,
	at func(i int) (kmsg.ConfigResourceType, string),
	alter func(i int) error,
	answer func(i int, code int16, msg *string)) {
	altered := false
	type resource struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	dups := repeated(n, func(i int) resource {
		typ, name := at(i)
		return resource{typ, name}
	})
	for i := range n {
		typ, name := at(i)
		var err error
		if dups[i] {
			err = kafkaerr.New(kerr.InvalidRequest.Code, "resource %d %q is named more than once in the request", typ, name)
		} else {
			err = alter(i)
		}
		if err != nil {
			answer(i, kafkaerr.Code(err), kafkaerr.Message(err))
			continue
		}
		answer(i, 0, nil)
		if !validateOnly && typ == resourceTopic {
			altered = true
		}
	}
	if altered {
		b.parts.Sync(ctx)
	}
}

// alterConfigs handles one resource of AlterConfigs.
func (b *Broker) alterConfigs(ctx context.Context, rr *kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	set := map[string]string{}
	seen := map[string]bool{}
	for _, rc := range rr.Configs {
		if seen[rc.Name] {
			return kafkaerr.New(kerr.InvalidRequest.Code, "config %s is given more than once", rc.Name)
		}
		seen[rc.Name] = true
		if rc.Value != nil {
			set[rc.Name] = *rc.Value
		}
	}
	switch rr.ResourceType {
	case resourceTopic:
		return b.alterTopicConfig(ctx, rr.ResourceName, validateOnly, func(cur map[string]string) (map[string]string, error) {
			if v, ok := cur[strataEngineKey]; ok {
				if _, given := set[strataEngineKey]; !given {
					set[strataEngineKey] = v // immutable: not dropped by a replacement
				}
			}
			return set, nil
		})
	case resourceBroker:
		return b.alterBrokerConfig(rr.ResourceName, slices.Sorted(maps.Keys(seen)))
	default:
		return kafkaerr.New(kerr.InvalidRequest.Code, "AlterConfigs is only supported for topics (2) and brokers (4), not resource type %d", rr.ResourceType)
	}
}

// alterTopicConfig replaces a topic's overrides with what edit makes of
// the current ones, after validating the result. Alterations are
// serialised, so an edit always starts from the newest overrides.
func (b *Broker) alterTopicConfig(ctx context.Context, name string, validateOnly bool, edit func(cur map[string]string) (map[string]string, error)) error {
	if err := coordination.ValidateTopicName(name); err != nil {
		return err
	}
	b.configMu.Lock()
	defer b.configMu.Unlock()
	t := b.coord.Snapshot().Topics[name]
	if t == nil {
		return kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", name)
	}
	next, err := edit(maps.Clone(t.Configs))
	if err != nil {
		return err
	}
	if _, err := partition.ResolveTopic(&b.cfg, next); err != nil {
		return err
	}
	if was, now := b.topicEngine(t.Configs), b.topicEngine(next); was != now {
		return kafkaerr.New(kerr.InvalidConfig.Code, "strata.engine cannot be changed after the topic is created (topic %s uses %q, asked for %q)", name, was, now)
	}
	if validateOnly {
		return nil
	}
	if err := b.coord.AlterTopicConfig(ctx, name, next); err != nil {
		return err
	}
	b.log.Info("altered topic config", "topic", name, "configs", next)
	return nil
}

// topicEngine is the engine a topic's overrides name: strata.engine, or
// log.engine.
func (b *Broker) topicEngine(overrides map[string]string) string {
	if v, ok := overrides[strataEngineKey]; ok {
		return strings.TrimSpace(v)
	}
	return b.cfg.LogEngine
}

// alterBrokerConfig answers an alteration of a broker resource: Strata
// has no dynamic broker configs, so any change is refused as Kafka refuses
// a key that is not dynamically updatable.
func (b *Broker) alterBrokerConfig(name string, keys []string) error {
	if name != "" {
		if err := b.checkBrokerResource(name); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return kafkaerr.New(kerr.InvalidRequest.Code, "Cannot update these configs dynamically: %v (Strata has no dynamic broker configs: set them in server.properties or with --override and restart)", keys)
}
