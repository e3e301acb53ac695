package broker

// DescribeConfigs (key 32): versions 0–4.
// AlterConfigs (key 33): versions 0–2.
// IncrementalAlterConfigs (key 44): versions 0–1.
//
// DescribeConfigs serves TOPIC (2) and BROKER (4) resources. A topic lists
// every topic key with its effective value (config.DescribeTopic): a
// topic override has source DYNAMIC_TOPIC_CONFIG, a value from the broker
// STATIC_BROKER_CONFIG when server.properties, the environment or
// --override set the broker key, DEFAULT_CONFIG otherwise (v0 says
// is_default instead). A broker named by our id lists every broker key,
// all read-only (Strata has no dynamic broker configs); the empty broker
// name (Kafka's cluster-wide dynamic defaults) lists nothing, as there are
// none; another broker id, or a name that is not a number, is
// INVALID_REQUEST, as Kafka answers. config_names (null or empty: all)
// filters; synonyms are sent when include_synonyms (v1+), config_type
// (v3+) always, documentation (v3+) when include_documentation. Nothing is
// sensitive. strata.engine is read-only on topics (it cannot change after
// creation). An unknown topic is UNKNOWN_TOPIC_OR_PARTITION, an illegal
// name INVALID_TOPIC_EXCEPTION, any other resource type INVALID_REQUEST.
//
// AlterConfigs replaces a topic's whole override set with the entries
// given (null values dropped, as Kafka does), except that a strata.engine
// override the new set leaves out is kept, since it cannot change (a tool
// replacing the set would otherwise always be refused); IncrementalAlterConfigs
// applies SET, DELETE, APPEND and SUBTRACT (the last two only to list keys,
// cleanup.policy, otherwise INVALID_CONFIG) to the current overrides, an
// APPEND or SUBTRACT starting from the effective value when the topic has
// no override. The result is validated as CreateTopics validates (an
// unknown key or a bad value is INVALID_CONFIG naming the key; a key twice
// in one resource INVALID_REQUEST), strata.engine cannot change (INVALID_CONFIG
// "strata.engine cannot be changed after the topic is created"), and
// stored through coordination.AlterTopicConfig unless validate_only.
// Alterations are serialised in the broker, so concurrent incremental
// changes are not lost. The partitions pick up the new settings before the
// response is sent: max.message.bytes, message.timestamp.type and
// min.insync.replicas apply to the next produce, retention.ms,
// retention.bytes and cleanup.policy to the next retention pass; the
// engine options (segment.*, index.*, flush.*) apply when a log is next
// opened (a restart), as engines take them at OpenLog.
//
// BROKER resources cannot be altered: a request that changes any key is
// INVALID_REQUEST "Cannot update these configs dynamically", which is what
// Kafka answers for a key that is not dynamically updatable (it maps the
// ConfigException to InvalidRequestException, KAFKA-13609); one that
// changes nothing succeeds. Other resource types are INVALID_REQUEST.
//
// Left out: BROKER_LOGGER (8) and the other resource types; dynamic broker
// configs; the config policy plugins (alter.config.policy.class.name).

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// Kafka's config resource types.
const (
	resourceTopic  = kmsg.ConfigResourceTypeTopic  // 2
	resourceBroker = kmsg.ConfigResourceTypeBroker // 4
)

const strataEngineKey = "strata.engine"

func handleDescribeConfigs(_ context.Context, c *conn, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for i := range req.Resources {
		rr := &req.Resources[i]
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		values, err := c.b.describeConfigs(rr)
		if err != nil {
			sr.ErrorCode = kafkaerr.Code(err)
			sr.ErrorMessage = kafkaerr.Message(err)
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, v := range values {
			if len(rr.ConfigNames) > 0 && !slices.Contains(rr.ConfigNames, v.Name) {
				continue
			}
			sr.Configs = append(sr.Configs, describeConfig(v, req))
		}
		if sr.Configs == nil {
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// describeConfigs lists a resource's config values.
func (b *Broker) describeConfigs(rr *kmsg.DescribeConfigsRequestResource) ([]config.ConfigValue, error) {
	switch rr.ResourceType {
	case resourceTopic:
		if err := coordination.ValidateTopicName(rr.ResourceName); err != nil {
			return nil, err
		}
		t := b.coord.Snapshot().Topics[rr.ResourceName]
		if t == nil {
			return nil, kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", rr.ResourceName)
		}
		values := b.cfg.DescribeTopic(t.Configs)
		for i := range values {
			if values[i].Name == strataEngineKey {
				values[i].ReadOnly = true
			}
		}
		return values, nil
	case resourceBroker:
		if rr.ResourceName == "" {
			return nil, nil // no dynamic cluster-wide defaults
		}
		if err := b.checkBrokerResource(rr.ResourceName); err != nil {
			return nil, err
		}
		return b.cfg.DescribeBroker(), nil
	default:
		return nil, kafkaerr.New(kerr.InvalidRequest.Code, "unsupported resource type %d; Strata describes topics (2) and brokers (4)", rr.ResourceType)
	}
}

// checkBrokerResource accepts a broker resource name that is this
// broker's id, with Kafka's error otherwise.
func (b *Broker) checkBrokerResource(name string) error {
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return kafkaerr.New(kerr.InvalidRequest.Code, "broker id must be an integer, but it is %q", name)
	}
	if me := b.coord.BrokerID(); int32(id) != me {
		return kafkaerr.New(kerr.InvalidRequest.Code, "unexpected broker id, expected %d or empty string, but received %s", me, name)
	}
	return nil
}

// describeConfig converts one value to the response's shape for the
// request's version and flags.
func describeConfig(v config.ConfigValue, req *kmsg.DescribeConfigsRequest) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name = v.Name
	rc.Value = nullable(v.Value)
	rc.ReadOnly = v.ReadOnly
	rc.IsDefault = v.Source == config.SourceDefault
	rc.Source = kmsg.ConfigSource(v.Source)
	rc.IsSensitive = false
	if req.IncludeSynonyms {
		for _, s := range v.Synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = s.Name, nullable(s.Value), kmsg.ConfigSource(s.Source)
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
		}
	}
	rc.ConfigType = kmsg.ConfigType(v.Type)
	if req.IncludeDocumentation && v.Doc != "" {
		rc.Documentation = kmsg.StringPtr(v.Doc)
	}
	return rc
}

// nullable is Kafka's null for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

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

func handleIncrementalAlterConfigs(ctx context.Context, c *conn, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	c.b.alterEach(ctx, len(req.Resources), req.ValidateOnly,
		func(i int) (kmsg.ConfigResourceType, string) {
			return req.Resources[i].ResourceType, req.Resources[i].ResourceName
		},
		func(i int) error { return c.b.incrementalAlterConfigs(ctx, &req.Resources[i], req.ValidateOnly) },
		func(i int, code int16, msg *string) {
			sr := kmsg.NewIncrementalAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = req.Resources[i].ResourceType, req.Resources[i].ResourceName
			sr.ErrorCode, sr.ErrorMessage = code, msg
			resp.Resources = append(resp.Resources, sr)
		})
	return resp
}

// Kafka's IncrementalAlterConfigs operations.
const (
	opSet      = kmsg.IncrementalAlterConfigOpSet
	opDelete   = kmsg.IncrementalAlterConfigOpDelete
	opAppend   = kmsg.IncrementalAlterConfigOpAppend
	opSubtract = kmsg.IncrementalAlterConfigOpSubtract
)

// incrementalAlterConfigs handles one resource of IncrementalAlterConfigs.
func (b *Broker) incrementalAlterConfigs(ctx context.Context, rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	seen := map[string]bool{}
	for _, rc := range rr.Configs {
		if seen[rc.Name] {
			return kafkaerr.New(kerr.InvalidRequest.Code, "config %s is given more than once", rc.Name)
		}
		seen[rc.Name] = true
		switch rc.Op {
		case opSet, opAppend, opSubtract:
			if rc.Value == nil {
				return kafkaerr.New(kerr.InvalidRequest.Code, "config %s: operation %v needs a value", rc.Name, rc.Op)
			}
		case opDelete:
		default:
			return kafkaerr.New(kerr.InvalidRequest.Code, "config %s: unknown operation %d", rc.Name, rc.Op)
		}
	}
	switch rr.ResourceType {
	case resourceTopic:
		return b.alterTopicConfig(ctx, rr.ResourceName, validateOnly, func(cur map[string]string) (map[string]string, error) {
			return b.applyConfigOps(cur, rr.Configs)
		})
	case resourceBroker:
		return b.alterBrokerConfig(rr.ResourceName, slices.Sorted(maps.Keys(seen)))
	default:
		return kafkaerr.New(kerr.InvalidRequest.Code, "IncrementalAlterConfigs is only supported for topics (2) and brokers (4), not resource type %d", rr.ResourceType)
	}
}

// topicKeyTypes maps each topic key to its type, for APPEND and SUBTRACT.
var topicKeyTypes = sync.OnceValue(func() map[string]config.ConfigType {
	m := map[string]config.ConfigType{}
	for _, k := range config.TopicConfigKeys() {
		m[k.Name] = k.Type
	}
	return m
})

// applyConfigOps applies incremental operations to a copy of a topic's
// overrides.
func (b *Broker) applyConfigOps(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	var effective []config.ConfigValue // the topic's values, for APPEND and SUBTRACT without an override
	for _, op := range ops {
		switch op.Op {
		case opSet:
			next[op.Name] = *op.Value
		case opDelete:
			if _, ok := topicKeyTypes()[op.Name]; !ok {
				return nil, fmt.Errorf("%w: unknown topic config %s", config.ErrInvalidConfig, op.Name)
			}
			delete(next, op.Name)
		case opAppend, opSubtract:
			typ, ok := topicKeyTypes()[op.Name]
			if !ok {
				return nil, fmt.Errorf("%w: unknown topic config %s", config.ErrInvalidConfig, op.Name)
			}
			if typ != config.TypeList {
				verb := map[kmsg.IncrementalAlterConfigOp]string{opAppend: "append", opSubtract: "subtract"}[op.Op]
				return nil, fmt.Errorf("%w: config value %s is not allowed for config key %s: it is not a list", config.ErrInvalidConfig, verb, op.Name)
			}
			v, ok := next[op.Name]
			if !ok {
				if effective == nil {
					effective = b.cfg.DescribeTopic(nil)
				}
				for _, e := range effective {
					if e.Name == op.Name {
						v = e.Value
					}
				}
			}
			list := splitList(v)
			for _, item := range splitList(*op.Value) {
				has := slices.Contains(list, item)
				switch {
				case op.Op == opAppend && !has:
					list = append(list, item)
				case op.Op == opSubtract && has:
					list = slices.DeleteFunc(list, func(s string) bool { return s == item })
				}
			}
			next[op.Name] = strings.Join(list, ",")
		}
	}
	return next, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
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
