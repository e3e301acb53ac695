package group

// LeaveGroup: members leave, each with its own answer.
//
//   - v0–v2 name one member id; v3+ a batch of members, each by member id,
//     or by group.instance.id alone (an administrator removing a static
//     member), each with its own error: UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID (an instance id held by another member id).
//     Before v3 the response's error is the member's.
//   - A member leaving a Stable or CompletingRebalance group starts a
//     rebalance; one leaving while the group prepares a rebalance may let
//     it complete; a member id handed out with MEMBER_ID_REQUIRED is simply
//     forgotten.
//   - Group-level errors: INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS,
//     COORDINATOR_NOT_AVAILABLE (the group was just removed),
//     NOT_COORDINATOR while shutting down; an unknown group answers
//     UNKNOWN_MEMBER_ID for every member.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup answers a LeaveGroup request.
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{m}
	}
	code, codes := c.leave(req.Group, leaving)
	resp.ErrorCode = code
	if req.Version < 3 {
		if code == 0 && len(codes) == 1 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	for i, code := range codes {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = leaving[i].MemberID, leaving[i].InstanceID, code
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// leave removes members from a group: a group-level error (then codes is
// nil), or one code per leaving member.
func (c *Coordinator) leave(group string, leaving []kmsg.LeaveGroupRequestMember) (int16, []int16) {
	if group == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	if code := c.check(group); code != 0 {
		return code, nil
	}
	codes := make([]int16, len(leaving))
	g := c.lookup(group)
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0, codes
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == groupDead {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	for i, l := range leaving {
		instanceID := ""
		if l.InstanceID != nil {
			instanceID = *l.InstanceID
		}
		switch {
		case l.MemberID == "":
			id, ok := g.static[instanceID]
			if instanceID == "" || !ok {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
			g.c.log.Info("static member removed by LeaveGroup", "group", g.id, "instance", instanceID, "member", id)
			g.removeAndUpdate(g.members[id])
		case g.pending[l.MemberID] != nil:
			g.dropPending(l.MemberID)
			if g.state == groupPreparingRebalance {
				g.tryCompleteJoin()
			}
		default:
			if codes[i] = g.validateMember(l.MemberID, instanceID); codes[i] == 0 {
				g.c.log.Info("member left group", "group", g.id, "member", l.MemberID)
				g.removeAndUpdate(g.members[l.MemberID])
			}
		}
	}
	return 0, codes
}
