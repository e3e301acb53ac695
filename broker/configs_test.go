package broker

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

// configOf finds a key in a DescribeConfigs answer.
func configOf(t *testing.T, rc kadm.ResourceConfig, key string) kadm.Config {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("%s: no config %s", rc.Name, key)
	return kadm.Config{}
}

func describeTopicRaw(t *testing.T, tb *testBroker, version int16, topic string, names ...string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	req.Resources = append(req.Resources, rr)
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	return tb.request(tb.pinned(32, version), req).(*kmsg.DescribeConfigsResponse).Resources[0]
}

func TestDescribeConfigs(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("dc", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	adm := tb.admin()
	ctx := testCtx(t)

	rcs, err := adm.DescribeTopicConfigs(ctx, "dc", "nope")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		switch rc.Name {
		case "nope":
			if !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
				t.Fatalf("unknown topic: %v", rc.Err)
			}
		case "dc":
			if rc.Err != nil {
				t.Fatal(rc.Err)
			}
			rm := configOf(t, rc, "retention.ms")
			if rm.Value == nil || *rm.Value != "60000" || rm.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Fatalf("retention.ms: %+v", rm)
			}
			if len(rm.Synonyms) < 2 || rm.Synonyms[0].Source != kmsg.ConfigSourceDynamicTopicConfig || rm.Synonyms[1].Key != "log.retention.ms" && rm.Synonyms[1].Key != "log.retention.hours" {
				t.Fatalf("retention.ms synonyms: %+v", rm.Synonyms)
			}
			sb := configOf(t, rc, "segment.bytes")
			if sb.Value == nil || *sb.Value != "1073741824" || sb.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("segment.bytes: %+v", sb)
			}
			configOf(t, rc, "strata.engine")
		}
	}

	// v0: is_default; v3: type, documentation, read-only strata.engine;
	// config_names filters.
	r0 := describeTopicRaw(t, tb, 0, "dc", "retention.ms", "segment.bytes")
	if len(r0.Configs) != 2 {
		t.Fatalf("v0 filtered: %d configs", len(r0.Configs))
	}
	for _, c := range r0.Configs {
		if c.IsDefault != (c.Name == "segment.bytes") || c.IsSensitive {
			t.Fatalf("v0 %s: is_default %v", c.Name, c.IsDefault)
		}
	}
	r3 := describeTopicRaw(t, tb, 4, "dc")
	if r3.ErrorCode != 0 || len(r3.Configs) < 20 {
		t.Fatalf("v4: error %d, %d configs", r3.ErrorCode, len(r3.Configs))
	}
	for _, c := range r3.Configs {
		if c.ConfigType == 0 || c.Documentation == nil {
			t.Errorf("v4 %s: type %v doc %v", c.Name, c.ConfigType, c.Documentation)
		}
		if c.ReadOnly != (c.Name == "strata.engine") {
			t.Errorf("v4 %s: read only %v", c.Name, c.ReadOnly)
		}
	}
	if r := describeTopicRaw(t, tb, 4, "bad/name"); r.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// Broker resources: ours lists every key, read-only; "" lists the
	// (absent) dynamic defaults; another id is INVALID_REQUEST.
	me := tb.coord.BrokerID()
	rcs, err = adm.DescribeBrokerConfigs(ctx, me)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("broker configs: %v %+v", err, rcs)
	}
	iv := configOf(t, rcs[0], "log.retention.check.interval.ms")
	if iv.Value == nil || *iv.Value != "300000" || iv.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.retention.check.interval.ms: %+v", iv)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{strconv.Itoa(int(me)), "", "99", "x"} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, rr)
	}
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, strconv.Itoa(int(me))
	req.Resources = append(req.Resources, rr)
	kresp, err := tb.client().Broker(int(me)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res := kresp.(*kmsg.DescribeConfigsResponse).Resources
	if res[0].ErrorCode != 0 || len(res[0].Configs) < 50 {
		t.Fatalf("our broker: error %d, %d configs", res[0].ErrorCode, len(res[0].Configs))
	}
	for _, c := range res[0].Configs {
		if !c.ReadOnly {
			t.Fatalf("broker config %s is not read-only", c.Name)
		}
	}
	if res[1].ErrorCode != 0 || len(res[1].Configs) != 0 {
		t.Fatalf("cluster defaults: error %d, %d configs", res[1].ErrorCode, len(res[1].Configs))
	}
	for _, r := range res[2:] {
		if r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil {
			t.Fatalf("%d %q: %v", r.ResourceType, r.ResourceName, kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// topicOverrides returns a topic's stored overrides.
func (tb *testBroker) topicOverrides(topic string) map[string]string {
	return tb.coord.Snapshot().Topics[topic].Configs
}

func TestIncrementalAlterConfigs(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ia", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	adm := tb.admin()
	ctx := testCtx(t)
	alter := func(ops ...kadm.AlterConfig) kadm.AlterConfigsResponse {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, ops, "ia")
		if err != nil || len(rs) != 1 {
			t.Fatalf("alter: %v %+v", err, rs)
		}
		return rs[0]
	}

	if r := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kmsg.StringPtr("200")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}); r.Err != nil {
		t.Fatalf("alter: %v %s", r.Err, r.ErrMessage)
	}
	want := map[string]string{"max.message.bytes": "200", "cleanup.policy": "delete,compact"}
	if got := tb.topicOverrides("ia"); !mapsEqual(got, want) {
		t.Fatalf("overrides %v, want %v", got, want)
	}
	// In effect for the next produce.
	cl := tb.client()
	if sp := produceRaw(t, tb, cl, "ia", 0, batchtest.Make(t, kgo.NoCompression(), 1, strings.Repeat("x", 300))); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("produce over the new max.message.bytes: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	if r := alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}); r.Err != nil {
		t.Fatalf("subtract: %v", r.Err)
	}
	if got := tb.topicOverrides("ia")["cleanup.policy"]; got != "compact" {
		t.Fatalf("cleanup.policy %q after subtract", got)
	}

	for _, c := range []struct {
		op      kadm.AlterConfig
		want    error
		mention string
	}{
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("soon")}, kerr.InvalidConfig, "retention.ms"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.key", Value: kmsg.StringPtr("1")}, kerr.InvalidConfig, "no.such.key"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kmsg.StringPtr("1")}, kerr.InvalidConfig, "log.retention.ms"},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}, kerr.InvalidConfig, "retention.ms"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "strata.engine", Value: kmsg.StringPtr("mem")}, kerr.InvalidConfig, "strata.engine cannot be changed after the topic is created"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "strata.engine", Value: kmsg.StringPtr("nonesuch")}, kerr.InvalidConfig, "strata.engine"},
	} {
		r := alter(c.op)
		if !errors.Is(r.Err, c.want) || !strings.Contains(r.ErrMessage, c.mention) {
			t.Errorf("%+v: %v %q, want %v mentioning %q", c.op, r.Err, r.ErrMessage, c.want, c.mention)
		}
	}
	// Setting strata.engine to the engine it already uses is no change.
	if r := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "strata.engine", Value: kmsg.StringPtr("mmap")}); r.Err != nil {
		t.Fatalf("same engine: %v %s", r.Err, r.ErrMessage)
	}

	// validate_only checks and changes nothing.
	before := tb.topicOverrides("ia")
	rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5")}}, "ia")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate: %v %v", err, rs[0].Err)
	}
	if got := tb.topicOverrides("ia"); !mapsEqual(got, before) {
		t.Fatalf("validate_only changed %v to %v", before, got)
	}
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5")}}, "nope")
	if err != nil || !errors.Is(rs[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %v", err, rs[0].Err)
	}

	// Raw: a key twice is INVALID_REQUEST; broker resources cannot change.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "ia"
	for range 2 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1")
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp := tb.request(tb.pinned(44, 0), req).(*kmsg.IncrementalAlterConfigsResponse)
	if resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("key twice: %v", kerr.ErrorForCode(resp.Resources[0].ErrorCode))
	}
	brs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kmsg.StringPtr("1")}}, tb.coord.BrokerID())
	if err != nil || !errors.Is(brs[0].Err, kerr.InvalidRequest) || !strings.Contains(brs[0].ErrMessage, "dynamically") {
		t.Fatalf("broker config: %v %+v", err, brs)
	}
}

func TestAlterConfigs(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ac", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000"), "max.message.bytes": kmsg.StringPtr("5000")})
	adm := tb.admin()
	ctx := testCtx(t)

	// The whole set is replaced: retention.ms and max.message.bytes go.
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("100000")}, {Name: "flush.ms", Value: nil}}, "ac")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, rs)
	}
	if got, want := tb.topicOverrides("ac"), map[string]string{"segment.ms": "100000"}; !mapsEqual(got, want) {
		t.Fatalf("overrides %v, want %v", got, want)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "ac")
	if err != nil {
		t.Fatal(err)
	}
	if c := configOf(t, rcs[0], "retention.ms"); c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms still an override: %+v", c)
	}

	// A strata.engine override is kept when the new set leaves it out.
	tb.createTopic("ac-mem", 1, map[string]*string{"strata.engine": kmsg.StringPtr("mem")})
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}, "ac-mem")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter ac-mem: %v %+v", err, rs)
	}
	if got, want := tb.topicOverrides("ac-mem"), map[string]string{"retention.ms": "1000", "strata.engine": "mem"}; !mapsEqual(got, want) {
		t.Fatalf("ac-mem overrides %v, want %v", got, want)
	}

	// Errors, over every version.
	tb.createTopic("ac2", 1, nil)
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrAlterConfigsRequest()
		add := func(typ kmsg.ConfigResourceType, name string, kv ...string) {
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = typ, name
			for i := 0; i+1 < len(kv); i += 2 {
				c := kmsg.NewAlterConfigsRequestResourceConfig()
				c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
				rr.Configs = append(rr.Configs, c)
			}
			req.Resources = append(req.Resources, rr)
		}
		add(kmsg.ConfigResourceTypeTopic, "ac", "retention.ms", "-5")
		add(kmsg.ConfigResourceTypeTopic, "nope", "retention.ms", "1")
		add(kmsg.ConfigResourceTypeTopic, "ac2", "strata.engine", "mem")
		add(kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(tb.coord.BrokerID())), "log.retention.ms", "1")
		add(kmsg.ConfigResourceTypeBroker, "") // changes nothing
		add(kmsg.ConfigResourceTypeGroupConfig, "g", "x", "1")
		resp := tb.request(tb.pinned(33, v), req).(*kmsg.AlterConfigsResponse)
		// kgo sends broker resources to their broker and merges the
		// answers, so they come back in another order.
		want := map[string]int16{
			"ac": kerr.InvalidConfig.Code, "nope": kerr.UnknownTopicOrPartition.Code, "ac2": kerr.InvalidConfig.Code,
			strconv.Itoa(int(tb.coord.BrokerID())): kerr.InvalidRequest.Code, "": 0, "g": kerr.InvalidRequest.Code,
		}
		if len(resp.Resources) != len(want) {
			t.Fatalf("v%d: %d resources", v, len(resp.Resources))
		}
		for _, r := range resp.Resources {
			if r.ErrorCode != want[r.ResourceName] {
				t.Errorf("v%d resource %q: %v, want %v (%v)", v, r.ResourceName, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(want[r.ResourceName]), r.ErrorMessage)
			}
		}
	}
	if got := tb.topicOverrides("ac"); got["retention.ms"] != "" {
		t.Fatalf("a failed alteration was stored: %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
