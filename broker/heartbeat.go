package broker

// Heartbeat (key 12): versions 0–4.
//
// Served: a heartbeat of a member of the current generation restarts its
// session timer and answers at once, never waiting: no error while Stable
// or CompletingRebalance, REBALANCE_IN_PROGRESS while the group prepares a
// rebalance (how members learn to rejoin). Errors: INVALID_GROUP_ID,
// UNKNOWN_MEMBER_ID (unknown group or member, or an Empty group),
// FENCED_INSTANCE_ID (v3+: an instance id now held by another member id),
// ILLEGAL_GENERATION, COORDINATOR_NOT_AVAILABLE (the group was just
// removed), NOT_COORDINATOR while shutting down. While the group's
// partition loads the heartbeat is answered with no error, as Kafka does.
//
// Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(_ context.Context, c *conn, req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	resp.ErrorCode = c.b.groups.heartbeat(req.Group, req.MemberID, instanceID, req.Generation)
	return resp
}

func (c *groupCoordinator) heartbeat(group, memberID, instanceID string, generation int32) int16 {
	if group == "" {
		return kerr.InvalidGroupID.Code
	}
	switch code := c.check(group); code {
	case 0:
	case kerr.CoordinatorLoadInProgress.Code:
		return 0
	default:
		return code
	}
	g := c.lookup(group)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == groupDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code := g.validateMember(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[memberID]
	switch g.state {
	case groupEmpty:
		return kerr.UnknownMemberID.Code
	case groupPreparingRebalance:
		g.heartbeat(m)
		return kerr.RebalanceInProgress.Code
	}
	g.heartbeat(m)
	return 0
}
