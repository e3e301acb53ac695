package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/config"
)

func createReq(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func createTopicReq(name string, partitions int32, rf int16, configs map[string]string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopics(t *testing.T) {
	tb := startBroker(t)
	cl := tb.pinned(19, 7)

	resp := tb.request(cl, createReq(true, createTopicReq("vo", 4, 1, nil))).(*kmsg.CreateTopicsResponse)
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 4 || st.ReplicationFactor != 1 {
		t.Fatalf("validate only: %+v", st)
	}
	if tb.coord.Snapshot().Topics["vo"] != nil {
		t.Fatal("validate_only created the topic")
	}

	resp = tb.request(cl, createReq(false,
		createTopicReq("ok", 2, 1, map[string]string{"retention.ms": "60000"}),
		createTopicReq("defaults", -1, -1, nil),
		createTopicReq("zero-parts", 0, 1, nil),
		createTopicReq("bad-rf", 1, 0, nil),
		createTopicReq("too-many-rf", 1, 3, nil),
		createTopicReq("bad-config", 1, 1, map[string]string{"no.such.key": "1"}),
		createTopicReq("bad-value", 1, 1, map[string]string{"retention.ms": "soon"}),
		createTopicReq("bad-engine", 1, 1, map[string]string{"strata.engine": "nonesuch"}),
		createTopicReq("bad/name", 1, 1, nil),
		createTopicReq("dup", 1, 1, nil),
		createTopicReq("dup", 1, 1, nil),
	)).(*kmsg.CreateTopicsResponse)
	want := map[string]int16{
		"ok": 0, "defaults": 0,
		"zero-parts":  kerr.InvalidPartitions.Code,
		"bad-rf":      kerr.InvalidReplicationFactor.Code,
		"too-many-rf": kerr.InvalidReplicationFactor.Code,
		"bad-config":  kerr.InvalidConfig.Code,
		"bad-value":   kerr.InvalidConfig.Code,
		"bad-engine":  kerr.InvalidConfig.Code,
		"bad/name":    kerr.InvalidTopicException.Code,
		"dup":         kerr.InvalidRequest.Code,
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: error %v, want %v (%v)", st.Topic, kerr.ErrorForCode(st.ErrorCode), kerr.ErrorForCode(want[st.Topic]), st.ErrorMessage)
		}
		if st.ErrorCode != 0 && st.ErrorMessage == nil {
			t.Errorf("%s: no error message", st.Topic)
		}
		if st.Topic == "ok" {
			if st.TopicID != tb.coord.Snapshot().Topics["ok"].ID || st.NumPartitions != 2 || len(st.Configs) != 1 {
				t.Errorf("ok: %+v", st)
			}
		}
	}
	// The logs are open when the response arrives.
	tb.logOffsets("ok", 1)

	resp = tb.request(cl, createReq(false, createTopicReq("ok", 1, 1, nil))).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("existing: error %d", resp.Topics[0].ErrorCode)
	}
	// v0 shape.
	resp = tb.request(tb.pinned(19, 0), createReq(false, createTopicReq("v0", 1, 1, nil))).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("v0: error %d", resp.Topics[0].ErrorCode)
	}
}

func TestDeleteTopics(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("gone", 2, nil)
	tb.createTopic("by-id", 1, nil)
	cl := tb.client()
	produceRaw(t, tb, cl, "gone", 0, batchtest.Make(t, kgo.NoCompression(), 1, "a"))
	dir := filepath.Join(tb.cfg.LogDirs[0], "mmap", "gone-0")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("log dir: %v", err)
	}

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 5000
	req.TopicNames = []string{"gone", "never-was"}
	resp := tb.request(tb.pinned(20, 5), req).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("by name: %+v", resp.Topics)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("log dir still there after delete: %v", err)
	}

	id := tb.coord.Snapshot().Topics["by-id"].ID
	req = kmsg.NewPtrDeleteTopicsRequest()
	for _, tid := range [][16]byte{id, {7}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = tid
		req.Topics = append(req.Topics, rt)
	}
	resp = tb.request(tb.pinned(20, 6), req).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "by-id" || resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("by id: %+v", resp.Topics)
	}

	// Created again under the same name: a fresh, empty log.
	tb.createTopic("gone", 1, nil)
	if start, end := tb.logOffsets("gone", 0); start != 0 || end != 0 {
		t.Fatalf("recreated topic has offsets [%d, %d)", start, end)
	}
}

func TestDeleteTopicsDisabled(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.DeleteTopicEnable = false })
	tb.createTopic("kept", 1, nil)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"kept"}
	resp := tb.request(tb.pinned(20, 5), req).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != kerr.TopicDeletionDisabled.Code {
		t.Fatalf("error %d", resp.Topics[0].ErrorCode)
	}
}
