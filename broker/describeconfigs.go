package broker

// DescribeConfigs (key 32): versions 0–4.
//
//   - Served: TOPIC (2) and BROKER (4) resources. A topic lists every
//     topic key with its effective value (config.DescribeTopic): a topic
//     override has source DYNAMIC_TOPIC_CONFIG, a value from the broker
//     STATIC_BROKER_CONFIG when server.properties, the environment or
//     --override set the broker key, DEFAULT_CONFIG otherwise (v0 says
//     is_default instead). A broker named by our id lists every broker
//     key, all read-only (Strata has no dynamic broker configs); the empty
//     broker name (Kafka's cluster-wide dynamic defaults) lists nothing;
//     another broker id, or a name that is not a number, is
//     INVALID_REQUEST, as Kafka answers.
//   - config_names (null or empty: all) filters; synonyms are sent when
//     include_synonyms (v1+), config_type (v3+) always, documentation
//     (v3+) when include_documentation. Nothing is sensitive.
//     strata.engine is read-only on topics.
//   - Errors: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION, an illegal
//     name INVALID_TOPIC_EXCEPTION, any other resource type
//     INVALID_REQUEST.
//   - Left out: BROKER_LOGGER (8) and the other resource types.

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
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
