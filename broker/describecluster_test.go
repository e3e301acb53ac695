package broker

import (
	"math"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
