package broker

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/config"
)

func metadataReq(version int16, allowAuto bool, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.AllowAutoTopicCreation = allowAuto
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestMetadataShapes(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("shape", 3, nil)
	host, port, _ := net.SplitHostPort(tb.addr)
	wantPort, _ := strconv.Atoi(port)
	tid := tb.coord.Snapshot().Topics["shape"].ID

	for _, v := range []int16{0, 1, 4, 9, 10, 12} {
		resp := tb.request(tb.pinned(3, v), metadataReq(v, false, "shape")).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != host || resp.Brokers[0].Port != int32(wantPort) || resp.Brokers[0].NodeID != tb.coord.BrokerID() {
			t.Fatalf("v%d: brokers %+v, want %s:%d", v, resp.Brokers, host, wantPort)
		}
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 {
			t.Fatalf("v%d: topics %+v", v, resp.Topics)
		}
		for i, p := range resp.Topics[0].Partitions {
			if p.Partition != int32(i) || p.Leader != tb.coord.BrokerID() || len(p.Replicas) != 1 || len(p.ISR) != 1 {
				t.Fatalf("v%d: partition %+v", v, p)
			}
		}
		if v >= 1 && resp.ControllerID != tb.coord.BrokerID() {
			t.Fatalf("v%d: controller %d", v, resp.ControllerID)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID == "") {
			t.Fatalf("v%d: no cluster id", v)
		}
		if v >= 10 && resp.Topics[0].TopicID != tid {
			t.Fatalf("v%d: topic id %x, want %x", v, resp.Topics[0].TopicID, tid)
		}
	}

	// v0: an empty list means every topic; v1+: null means every topic:
	// the one created and the broker's internal __consumer_offsets.
	allTopics := func(resp *kmsg.MetadataResponse) bool {
		seen := map[string]bool{}
		for _, rt := range resp.Topics { // is_internal is v1+
			seen[*rt.Topic] = resp.Version == 0 || rt.IsInternal == (*rt.Topic == offsetsTopicName)
		}
		return len(resp.Topics) == 2 && seen[offsetsTopicName] && seen["shape"]
	}
	if resp := tb.request(tb.pinned(3, 0), metadataReq(0, false, []string{}...)).(*kmsg.MetadataResponse); !allTopics(resp) {
		t.Fatalf("v0 all topics: %+v", resp.Topics)
	}
	if resp := tb.request(tb.pinned(3, 12), metadataReq(12, false)).(*kmsg.MetadataResponse); !allTopics(resp) {
		t.Fatalf("v12 all topics: %+v", resp.Topics)
	}
	empty := metadataReq(12, false)
	empty.Topics = []kmsg.MetadataRequestTopic{}
	if resp := tb.request(tb.pinned(3, 12), empty).(*kmsg.MetadataResponse); len(resp.Topics) != 0 {
		t.Fatalf("v12 no topics: %d topics", len(resp.Topics))
	}

	// By topic id (v10+).
	byID := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = tid
	byID.Topics = append(byID.Topics, rt)
	rt.TopicID = [16]byte{9}
	byID.Topics = append(byID.Topics, rt)
	resp := tb.request(tb.pinned(3, 12), byID).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "shape" || resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("by id: %+v", resp.Topics)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.NumPartitions = 2 })
	cl := tb.pinned(3, 12)

	// allow_auto_topic_creation=false: consumers must not create topics.
	resp := tb.request(cl, metadataReq(12, false, "consumer-side")).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: error %d", resp.Topics[0].ErrorCode)
	}
	resp = tb.request(cl, metadataReq(12, true, "auto")).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("auto-create: %+v", resp.Topics[0])
	}
	// v0–v3 follow auto.create.topics.enable alone.
	resp = tb.request(tb.pinned(3, 0), metadataReq(0, false, "auto-v0")).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("v0 auto-create: error %d", resp.Topics[0].ErrorCode)
	}
	resp = tb.request(cl, metadataReq(12, true, "bad/name")).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name: error %d", resp.Topics[0].ErrorCode)
	}

	// A producer's first record creates its topic and lands.
	p := tb.client(kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("by-producer"))
	if err := p.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, end0 := tb.logOffsets("by-producer", 0)
	_, end1 := tb.logOffsets("by-producer", 1)
	if end0+end1 != 1 {
		t.Fatalf("end offsets %d and %d after one record", end0, end1)
	}
}

func TestMetadataAutoCreateDisabled(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { c.AutoCreateTopics = false })
	resp := tb.request(tb.pinned(3, 12), metadataReq(12, true, "never")).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("error %d", resp.Topics[0].ErrorCode)
	}
}

func TestAPIVersions(t *testing.T) {
	tb := startBroker(t)
	for _, v := range []int16{0, 3} {
		resp := tb.request(tb.pinned(18, v), kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(apis) {
			t.Fatalf("v%d: error %d, %d keys", v, resp.ErrorCode, len(resp.ApiKeys))
		}
	}
}

// A topic the broker's KAFKA_CREATE_TOPICS declares is never auto-created
// with the defaults while it waits to be created as declared: a client
// asking for it is told LEADER_NOT_AVAILABLE (retriable) until it exists,
// and then sees it with its declared partitions. Other missing topics are
// auto-created as before.
func TestMetadataDeclaredTopicNotAutoCreated(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) {
		c.CreateTopics = []config.TopicSpec{{Name: "declared", Partitions: 3, ReplicationFactor: 1}}
		c.NumPartitions = 1
	})
	direct := tb.direct(nil)
	ask := func(topic string) kmsg.MetadataResponseTopic {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp := direct(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("Metadata for %s: %d topics", topic, len(resp.Topics))
		}
		return resp.Topics[0]
	}
	for range 3 {
		if got := ask("declared"); got.ErrorCode != kerr.LeaderNotAvailable.Code || len(got.Partitions) != 0 {
			t.Fatalf("declared topic before its creation: %v with %d partitions, want LEADER_NOT_AVAILABLE and none", kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
		}
	}
	if tb.coord.Snapshot().Topics["declared"] != nil {
		t.Fatal("the declared topic was auto-created")
	}
	if got := ask("undeclared"); got.ErrorCode != 0 || len(got.Partitions) != 1 {
		t.Fatalf("undeclared topic: %v with %d partitions, want it auto-created with 1", kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
	}
	tb.createTopic("declared", 3, nil)
	if got := ask("declared"); got.ErrorCode != 0 || len(got.Partitions) != 3 {
		t.Fatalf("declared topic once created: %v with %d partitions, want 3", kerr.ErrorForCode(got.ErrorCode), len(got.Partitions))
	}
}
