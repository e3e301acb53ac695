package broker

// DescribeGroups (key 15): versions 0–5.
//
// Served: each group's state, protocol type and, when Stable, its protocol
// and every member with its client id, client host, instance id (v4+), its
// metadata for the chosen protocol and its assignment; in other states
// members come with empty metadata and assignment and the protocol is "",
// as Kafka describes them. A group that does not exist is described as
// Dead with no error (as Kafka does before v6). Authorized operations
// (v3+) are always -2147483648 (not computed: there are no ACLs). Errors
// per group: COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR while shutting
// down. An empty group id is allowed, as in Kafka.
//
// Left out: v6 (GROUP_ID_NOT_FOUND for unknown groups) is not served.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(_ context.Context, c *conn, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = math.MinInt32
		c.b.groups.describe(id, &dg)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *groupCoordinator) describe(id string, dg *kmsg.DescribeGroupsResponseGroup) {
	if code := c.check(id); code != 0 {
		dg.ErrorCode = code
		return
	}
	g := c.lookup(id)
	if g == nil {
		dg.State = groupDead.String()
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == groupStable
	if stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.order {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			dm.InstanceID = ptr(m.instanceID)
		}
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadata(g.protocol), m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}
