package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestFindCoordinator(t *testing.T) {
	tb := startBroker(t)
	self := tb.coord.BrokerID()

	// v4: batched keys, each answered on its own.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = coordinatorKeyGroup
	req.CoordinatorKeys = []string{"g1", "", "g2"}
	resp := tb.request(tb.client(), req).(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 3 {
		t.Fatalf("%d coordinators for 3 keys", len(resp.Coordinators))
	}
	// The empty group id is a group like any other, as in Kafka.
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != self || c.Host == "" || c.Port <= 0 {
			t.Fatalf("key %q: %+v", c.Key, c)
		}
	}

	// An empty transactional id is refused.
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = coordinatorKeyTransaction
	req.CoordinatorKeys = []string{""}
	resp = tb.request(tb.client(), req).(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("empty transactional id: %+v", resp.Coordinators)
	}

	// v0 (one key, no key type), as librdkafka and kafka-python send it.
	old := tb.client(kgo.MaxVersions(kversion.V0_10_0()))
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "group"
	resp = tb.request(old, req).(*kmsg.FindCoordinatorResponse)
	if resp.ErrorCode != 0 || resp.NodeID != self || resp.Port <= 0 {
		t.Fatalf("v0: %+v", resp)
	}

	// An unknown key type is refused.
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = 7
	req.CoordinatorKeys = []string{"x"}
	resp = tb.request(tb.client(), req).(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("key type 7: %+v", resp.Coordinators)
	}
}
