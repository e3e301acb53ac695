package broker

// DescribeCluster (key 60): versions 0–1.
//
//   - Served: the cluster id, the controller id and the brokers from the
//     coordination snapshot (this broker as the client's listener advertises
//     it, as Metadata answers), and the cluster's authorized operations when
//     include_cluster_authorized_operations asks (with no authorizer every
//     operation Kafka supports on the CLUSTER resource is allowed; otherwise
//     -2147483648, "not requested"). v1's endpoint_type: a broker answers for
//     brokers (1); asking it for controllers (2) is MISMATCHED_ENDPOINT_TYPE,
//     as Kafka's brokers answer.
//   - Left out: v2 (include_fenced_brokers: no broker is ever fenced here).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's AclOperation codes.
const (
	aclCreate          = 5
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12
)

// clusterOperations is the bit set of the operations Kafka supports on the
// CLUSTER resource, all allowed without an authorizer.
const clusterOperations int32 = 1<<aclCreate | 1<<aclAlter | 1<<aclDescribe | 1<<aclClusterAction |
	1<<aclDescribeConfigs | 1<<aclAlterConfigs | 1<<aclIdempotentWrite

const endpointTypeController = 2

func handleDescribeCluster(_ context.Context, c *conn, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1 // brokers
	if req.Version >= 1 && req.EndpointType == endpointTypeController {
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		msg := "the request was sent to a broker endpoint; Strata has no controller endpoints"
		resp.ErrorMessage = &msg
		return resp
	}
	snap := c.b.coord.Snapshot()
	resp.ClusterID = snap.ClusterID
	resp.ControllerID = snap.ControllerID
	for _, mb := range metadataBrokers(c.self, snap) {
		sb := kmsg.NewDescribeClusterResponseBroker()
		sb.NodeID, sb.Host, sb.Port, sb.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, sb)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return resp
}
