package broker

// IncrementalAlterConfigs (key 44): versions 0–1.
//
//   - Served: SET, DELETE, APPEND and SUBTRACT (the last two only on list
//     keys, cleanup.policy, otherwise INVALID_CONFIG) applied to a topic's
//     current overrides, an APPEND or SUBTRACT starting from the effective
//     value when the topic has no override; then validated and stored as
//     AlterConfigs does (alterconfigs.go, which also says when the
//     partitions take the change). BROKER resources as AlterConfigs.
//   - Left out: as AlterConfigs.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
)

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
