package group

// Heartbeat: a member of the current generation restarts its session
// timer and is answered at once, never waiting.
//
//   - No error while Stable or CompletingRebalance; REBALANCE_IN_PROGRESS
//     while the group prepares a rebalance (how members learn to rejoin).
//   - While the group's partition loads the heartbeat is answered with no
//     error, as Kafka does.
//   - Errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID (unknown group or
//     member, or an Empty group), FENCED_INSTANCE_ID (v3+: an instance id
//     now held by another member id), ILLEGAL_GENERATION,
//     COORDINATOR_NOT_AVAILABLE (the group was just removed),
//     NOT_COORDINATOR while shutting down.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat answers a Heartbeat request.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	resp.ErrorCode = c.heartbeat(req.Group, req.MemberID, instanceID, req.Generation)
	return resp
}

func (c *Coordinator) heartbeat(group, memberID, instanceID string, generation int32) int16 {
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
