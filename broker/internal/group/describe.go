package group

// DescribeGroups: each group's state, protocol and members.
//
//   - When Stable, its protocol and every member with its client id,
//     client host, instance id (v4+), its metadata for the chosen protocol
//     and its assignment; in other states members come with empty
//     metadata and assignment and the protocol is "", as Kafka describes
//     them.
//   - A group that does not exist is described as Dead with no error (as
//     Kafka does before v6). An empty group id is allowed, as in Kafka.
//   - Errors per group: COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR
//     while shutting down.

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeGroups answers a DescribeGroups request; the authorized
// operations (v3+) are left for the caller to fill in.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, 0, len(req.Groups))
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		c.describe(id, &dg)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) describe(id string, dg *kmsg.DescribeGroupsResponseGroup) {
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

// GroupInfo is a group as Inspect finds it.
type GroupInfo struct {
	// State is Empty, PreparingRebalance, CompletingRebalance, Stable or
	// Dead.
	State string
	// PendingMembers counts the member ids handed out with
	// MEMBER_ID_REQUIRED and not used to join yet.
	PendingMembers int
	// Offsets are the committed offsets by topic and partition, as they
	// would be written.
	Offsets map[string]map[int32]OffsetRecord
}

// Inspect returns what the coordinator holds of group id, or false if it
// holds no such group. It is for tests and tools; clients use the Kafka
// APIs.
func (c *Coordinator) Inspect(id string) (GroupInfo, bool) {
	g := c.lookup(id)
	if g == nil {
		return GroupInfo{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	info := GroupInfo{State: g.state.String(), PendingMembers: len(g.pending), Offsets: map[string]map[int32]OffsetRecord{}}
	for topic, ps := range g.offsets {
		info.Offsets[topic] = map[int32]OffsetRecord{}
		for p, o := range ps {
			info.Offsets[topic][p] = OffsetRecord{
				Group: id, Topic: topic, Partition: p, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
				Metadata: o.metadata, CommitTimestamp: o.commitTime, ExpireTimestamp: o.expireTime,
			}
		}
	}
	return info, true
}
