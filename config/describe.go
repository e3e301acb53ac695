package config

import (
	"maps"
	"slices"
	"strings"
)

// ConfigSource says where a value comes from, as DescribeConfigs reports
// it; the values are Kafka's ConfigSource codes.
type ConfigSource int8

// The sources a Strata broker reports. It has no dynamic broker configs:
// its own keys are read-only while it runs.
const (
	SourceTopic        ConfigSource = 1 // TOPIC_CONFIG: a topic's override
	SourceStaticBroker ConfigSource = 4 // STATIC_BROKER_CONFIG: set in the file, environment or --override
	SourceDefault      ConfigSource = 5 // DEFAULT_CONFIG
)

// ConfigValue is one entry of a DescribeConfigs answer.
type ConfigValue struct {
	Name     string
	Value    string // "" for Kafka's null
	Source   ConfigSource
	Type     ConfigType
	Doc      string
	ReadOnly bool
	// Synonyms lists where the value could come from, strongest first,
	// as Kafka's include_synonyms does: the topic override, the broker
	// key if set, the broker key's default.
	Synonyms []Synonym
}

// Synonym is one source of a config value.
type Synonym struct {
	Name   string
	Value  string
	Source ConfigSource
}

// DescribeBroker lists every broker key with its current value, sorted by
// name, for DescribeConfigs on a broker resource; the strata.* engine
// keys follow.
func (c *Config) DescribeBroker() []ConfigValue {
	def := Default()
	var out []ConfigValue
	for _, k := range brokerKeys {
		v := ConfigValue{
			Name: k.name, Value: k.value(c), Source: SourceDefault, Type: k.typ, Doc: k.doc, ReadOnly: true,
			Synonyms: c.brokerSynonyms(k.name, &def),
		}
		if _, set := c.origins[k.name]; set {
			v.Source = SourceStaticBroker
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ConfigValue) int { return strings.Compare(a.Name, b.Name) })
	for _, key := range slices.Sorted(maps.Keys(c.Engine)) {
		out = append(out, ConfigValue{
			Name: key, Value: c.Engine[key], Source: SourceStaticBroker, Type: TypeString, ReadOnly: true,
			Synonyms: []Synonym{{key, c.Engine[key], SourceStaticBroker}},
		})
	}
	return out
}

// DescribeTopic lists every topic key with its effective value for a
// topic with the given overrides, sorted by name, for DescribeConfigs on a
// topic resource.
func (c *Config) DescribeTopic(overrides map[string]string) []ConfigValue {
	def := Default()
	out := make([]ConfigValue, 0, len(topicKeys))
	for _, k := range topicKeys {
		syn := c.brokerSynonyms(k.brokerKey, &def)
		v := ConfigValue{Name: k.name, Value: keyByName[k.brokerKey].value(c), Source: syn[0].Source, Type: k.typ, Doc: k.doc}
		if o, ok := overrides[k.name]; ok {
			v.Value, v.Source = o, SourceTopic
			syn = append([]Synonym{{k.name, o, SourceTopic}}, syn...)
		}
		v.Synonyms = syn
		out = append(out, v)
	}
	// Overrides the table does not know cannot pass validation, but if
	// one is stored, showing it beats hiding it.
	for key, o := range overrides {
		if _, ok := topicKeyByName[key]; !ok {
			out = append(out, ConfigValue{Name: key, Value: o, Source: SourceTopic, Type: TypeString,
				Synonyms: []Synonym{{key, o, SourceTopic}}})
		}
	}
	slices.SortFunc(out, func(a, b ConfigValue) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// brokerSynonyms lists the sources of broker key, strongest first, as
// Kafka does: the key as set (for a duration with unit variants, each
// variant set, finest first, with its own text), then its default.
func (c *Config) brokerSynonyms(key string, def *Config) []Synonym {
	k := keyByName[key]
	var syn []Synonym
	if k.family != nil {
		for _, fk := range k.family.keys {
			if o, ok := c.origins[fk]; ok {
				syn = append(syn, Synonym{fk, o.value, SourceStaticBroker})
			}
		}
		last := k.family.keys[len(k.family.keys)-1]
		return append(syn, Synonym{last, keyByName[last].def, SourceDefault})
	}
	if _, ok := c.origins[key]; ok {
		syn = append(syn, Synonym{key, k.value(c), SourceStaticBroker})
	}
	return append(syn, Synonym{key, k.value(def), SourceDefault})
}
