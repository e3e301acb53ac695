package broker

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func TestCreatePartitions(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("cp", 1, nil)
	adm := tb.admin()
	ctx := testCtx(t)

	// validate_only changes nothing.
	rs, err := adm.ValidateCreatePartitions(ctx, 2, "cp")
	if err != nil || rs.Error() != nil {
		t.Fatalf("validate: %v %v", err, rs.Error())
	}
	if n := len(tb.coord.Snapshot().Topics["cp"].Partitions); n != 1 {
		t.Fatalf("validate_only made %d partitions", n)
	}

	rs, err = adm.CreatePartitions(ctx, 2, "cp")
	if err != nil || rs.Error() != nil {
		t.Fatalf("create partitions: %v %v", err, rs.Error())
	}
	// The new partitions can be used at once.
	cl := tb.client()
	for p := int32(1); p <= 2; p++ {
		if sp := produceRaw(t, tb, cl, "cp", p, batchtest.Make(t, kgo.NoCompression(), 1, "v")); sp.ErrorCode != 0 {
			t.Fatalf("produce to new partition %d: %v", p, kerr.ErrorForCode(sp.ErrorCode))
		}
		if fp := fetchRaw(t, tb, cl, "cp", p, 0, 0, 1); fp.ErrorCode != 0 || fp.HighWatermark != 1 {
			t.Fatalf("fetch new partition %d: %v hw %d", p, kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark)
		}
	}

	for _, set := range []int{3, 2} {
		rs, err = adm.UpdatePartitions(ctx, set, "cp")
		if err != nil || !errors.Is(rs["cp"].Err, kerr.InvalidPartitions) {
			t.Fatalf("set %d of 3: %v %v", set, err, rs["cp"].Err)
		}
	}

	// Raw requests for what kadm does not send.
	assign := func(replicas ...[]int32) []kmsg.CreatePartitionsRequestTopicAssignment {
		var out []kmsg.CreatePartitionsRequestTopicAssignment
		for _, r := range replicas {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			out = append(out, a)
		}
		return out
	}
	topic := func(name string, count int32, a []kmsg.CreatePartitionsRequestTopicAssignment) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count, rt.Assignment = name, count, a
		return rt
	}
	tb.createTopic("cp-a", 1, nil)
	tb.createTopic("cp-b", 1, nil)
	tb.createTopic("cp-c", 1, nil)
	tb.createTopic("cp-ok", 1, nil)
	me := tb.coord.BrokerID()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.CreatePartitionsRequestTopic{
		topic("nope", 2, nil),
		topic("cp-a", 3, assign([]int32{me})),     // one assignment for two partitions
		topic("cp-b", 2, assign([]int32{me + 7})), // unknown broker
		topic("cp-c", 2, assign([]int32{me, me})), // twice, and rf 2 on an rf 1 topic
		topic("cp-ok", 3, assign([]int32{me}, []int32{me})),
		topic("dup", 2, nil),
		topic("dup", 2, nil),
	}
	for _, v := range []int16{0, 3} {
		if v == 0 {
			req.Topics[4].Count = 3
		} else {
			req.Topics[4].Count = 4
			req.Topics[4].Assignment = assign([]int32{me})
		}
		resp := tb.request(tb.pinned(37, v), req).(*kmsg.CreatePartitionsResponse)
		want := map[string]int16{
			"nope":  kerr.UnknownTopicOrPartition.Code,
			"cp-a":  kerr.InvalidReplicaAssignment.Code,
			"cp-b":  kerr.InvalidReplicaAssignment.Code,
			"cp-c":  kerr.InvalidReplicaAssignment.Code,
			"cp-ok": 0,
			"dup":   kerr.InvalidRequest.Code,
		}
		for _, st := range resp.Topics {
			if st.ErrorCode != want[st.Topic] {
				t.Errorf("v%d %s: %v, want %v", v, st.Topic, kerr.ErrorForCode(st.ErrorCode), kerr.ErrorForCode(want[st.Topic]))
			}
			if v >= 1 && st.ErrorCode != 0 && st.ErrorMessage == nil {
				t.Errorf("v%d %s: no message", v, st.Topic)
			}
		}
	}
	if n := len(tb.coord.Snapshot().Topics["cp-ok"].Partitions); n != 4 {
		t.Fatalf("cp-ok has %d partitions, want 4", n)
	}
	tb.logOffsets("cp-ok", 3)
}

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

func TestDeleteRecords(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("dr", 2, nil)
	tb.createTopic("dr-compact", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")})
	cl := tb.client()
	for i := range 5 {
		produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), int64(1000*i), "a", "b"))
	}
	produceRaw(t, tb, cl, "dr-compact", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a"))
	adm := tb.admin()
	ctx := testCtx(t)

	del := func(topic string, p int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
		rs, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		r, ok := rs.Lookup(topic, p)
		if !ok {
			t.Fatalf("no answer for %s-%d", topic, p)
		}
		return r
	}

	// Mid-batch: the start is 3 even though the batch begins at 2.
	if r := del("dr", 0, 3); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("delete to 3: %+v", r)
	}
	if start, _ := tb.logOffsets("dr", 0); start != 3 {
		t.Fatalf("log start %d", start)
	}
	if fp := fetchRaw(t, tb, cl, "dr", 0, 2, 0, 1); fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 3 {
		t.Fatalf("fetch below the start: %v, log start %d", kerr.ErrorForCode(fp.ErrorCode), fp.LogStartOffset)
	}
	if sp := listOffset(t, tb, 8, "dr", -2); sp.Offset != 3 {
		t.Fatalf("earliest %d", sp.Offset)
	}
	if r := del("dr", 0, 1); r.Err != nil || r.LowWatermark != 3 {
		t.Fatalf("below the start: %+v", r)
	}
	if r := del("dr", 0, 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("past the high watermark: %+v", r)
	}
	if r := del("dr", 0, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("-1: %+v", r)
	}
	if sp := produceRaw(t, tb, cl, "dr", 0, batchtest.Make(t, kgo.NoCompression(), 1, "after")); sp.ErrorCode != 0 || sp.BaseOffset != 10 {
		t.Fatalf("produce after deleting everything: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
	if r := del("dr", 1, 0); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("empty partition: %+v", r)
	}
	if r := del("dr-compact", 0, 1); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("compacted topic: %+v", r)
	}

	// Raw, for what kadm sorts out itself: unknown partitions, v0.
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "dr"
	for _, p := range []int32{0, 9} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, 11
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Straight to the broker: kgo refuses to shard an unknown partition.
	kresp, err := tb.pinned(21, 0).Broker(int(tb.coord.BrokerID())).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DeleteRecordsResponse)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LowWatermark != 11 || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || ps[1].LowWatermark != -1 {
		t.Fatalf("v0: %+v", ps)
	}
}

func TestDescribeCluster(t *testing.T) {
	tb := startBroker(t)
	snap := tb.coord.Snapshot()
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp := tb.request(tb.pinned(60, v), req).(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != 0 || resp.ClusterID != snap.ClusterID || resp.ControllerID != snap.ControllerID || resp.ClusterAuthorizedOperations != math.MinInt32 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != tb.coord.BrokerID() || tb.addr != "127.0.0.1:"+strconv.Itoa(int(resp.Brokers[0].Port)) {
			t.Fatalf("v%d brokers: %+v (listening on %s)", v, resp.Brokers, tb.addr)
		}
		req.IncludeClusterAuthorizedOperations = true
		resp = tb.request(tb.pinned(60, v), req).(*kmsg.DescribeClusterResponse)
		ops := kadm.DecodeACLOperations(resp.ClusterAuthorizedOperations)
		if len(ops) != 7 {
			t.Fatalf("v%d authorized operations: %v", v, ops)
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	if resp := tb.request(tb.pinned(60, 1), req).(*kmsg.DescribeClusterResponse); resp.ErrorCode != kerr.MismatchedEndpointType.Code {
		t.Fatalf("controller endpoint: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestDescribeLogDirs(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ld", 2, nil)
	tb.createTopic("ld-mem", 1, map[string]*string{"strata.engine": kmsg.StringPtr("mem")})
	cl := tb.client()
	produceRaw(t, tb, cl, "ld", 1, batchtest.Make(t, kgo.NoCompression(), 1, "some", "data"))
	produceRaw(t, tb, cl, "ld-mem", 0, batchtest.Make(t, kgo.NoCompression(), 1, "x"))
	adm := tb.admin()
	ctx := testCtx(t)

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[tb.coord.BrokerID()]
	d, ok := dirs[tb.cfg.LogDirs[0]]
	if !ok || d.Err != nil || len(dirs) != 1 {
		t.Fatalf("dirs: %+v", dirs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("volume: total %d usable %d", d.TotalBytes, d.UsableBytes)
	}
	p1, ok1 := d.Topics.Lookup("ld", 1)
	p0, ok0 := d.Topics.Lookup("ld", 0)
	pm, okm := d.Topics.Lookup("ld-mem", 0)
	if !ok0 || !ok1 || !okm || p1.Size <= p0.Size || pm.Size != int64(len(batchtest.Make(t, kgo.NoCompression(), 1, "x"))) {
		t.Fatalf("partitions: %+v %+v %+v", p0, p1, pm)
	}

	// Only what is asked for.
	some, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"ld": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	got := some[tb.coord.BrokerID()][tb.cfg.LogDirs[0]].Topics
	if _, ok := got.Lookup("ld", 1); !ok || len(got) != 1 || len(got["ld"]) != 1 {
		t.Fatalf("filtered: %+v", got)
	}
	for v := int16(0); v <= 4; v++ {
		resp := tb.request(tb.pinned(35, v), kmsg.NewPtrDescribeLogDirsRequest()).(*kmsg.DescribeLogDirsResponse)
		// ld, ld-mem and the internal __consumer_offsets.
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
}

func offsetForEpoch(t *testing.T, tb *testBroker, version int16, current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ole"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := tb.request(tb.pinned(23, version), req).(*kmsg.OffsetForLeaderEpochResponse)
	return resp.Topics[0].Partitions[0]
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ole", 1, nil)
	cl := tb.client()
	produceRaw(t, tb, cl, "ole", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a", "b", "c"))
	e0 := tb.coord.Snapshot().Topics["ole"].Partitions[0].LeaderEpoch

	if sp := offsetForEpoch(t, tb, 4, e0, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("current epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 0, -1, e0); sp.ErrorCode != 0 || sp.EndOffset != 3 {
		t.Fatalf("v0: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, -1, e0+5); sp.ErrorCode != 0 || sp.LeaderEpoch != -1 || sp.EndOffset != -1 {
		t.Fatalf("unknown epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e0+1, e0); sp.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer current epoch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}

	// A restart bumps the leader epoch; the old epoch ends where the
	// batches of the new one begin.
	tb.restart()
	cl = tb.client()
	e1 := tb.coord.Snapshot().Topics["ole"].Partitions[0].LeaderEpoch
	if e1 <= e0 {
		t.Skipf("leader epoch did not change on restart (%d -> %d)", e0, e1)
	}
	if sp := offsetForEpoch(t, tb, 4, e1, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("old epoch, nothing newer written: %+v", sp)
	}
	produceRaw(t, tb, cl, "ole", 0, batchtest.Make(t, kgo.NoCompression(), 1, "d", "e"))
	if sp := offsetForEpoch(t, tb, 4, e1, e0); sp.ErrorCode != 0 || sp.LeaderEpoch != e0 || sp.EndOffset != 3 {
		t.Fatalf("old epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e1, e1); sp.ErrorCode != 0 || sp.LeaderEpoch != e1 || sp.EndOffset != 5 {
		t.Fatalf("new epoch: %+v", sp)
	}
	if sp := offsetForEpoch(t, tb, 4, e0, e0); sp.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("older current epoch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}

	// Fetch checks the client's current leader epoch the same way, and
	// answers a last fetched epoch the log's history parts from (e0 up
	// to offset 5: e0 ended at 3) with where it ends.
	for _, tc := range []struct {
		current, last int32
		offset        int64
		code          int16
		diverging     int64
	}{
		{e0, -1, 0, kerr.FencedLeaderEpoch.Code, -1},
		{e1 + 1, -1, 0, kerr.UnknownLeaderEpoch.Code, -1},
		{e1, e0, 3, 0, -1},
		{e1, e0, 5, 0, 3},
		{e1, e1 + 1, 5, kerr.OffsetOutOfRange.Code, -1},
	} {
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "ole"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.FetchOffset = tc.current, tc.last, tc.offset
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		sp := tb.request(tb.pinned(1, 12), req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != tc.code || sp.DivergingEpoch.EndOffset != tc.diverging {
			t.Errorf("fetch at %d, current epoch %d, last fetched epoch %d: %v, diverging %+v; want %v, diverging end %d",
				tc.offset, tc.current, tc.last, kerr.ErrorForCode(sp.ErrorCode), sp.DivergingEpoch, kerr.ErrorForCode(tc.code), tc.diverging)
		}
	}
}
