package group

// SyncGroup: the leader brings the assignment of the new generation.
//
//   - The leader's assignment is persisted (a group record through the
//     Store) and then every member waiting in SyncGroup gets its part —
//     empty bytes, never null, for a member the leader assigned nothing —
//     and the group is Stable. A failed write answers every waiting member
//     the error (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, ... as Kafka
//     maps it) and rebalances.
//   - A follower's SyncGroup waits for the leader's; in a Stable group it
//     gets its current assignment at once. v5 answers the protocol type
//     and name.
//   - Errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID
//     (v3+), ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL (v5: protocol
//     type or name not the group's), REBALANCE_IN_PROGRESS (a rebalance
//     began, or the group's partition is still loading: the member
//     rejoins), NOT_COORDINATOR while shutting down.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup runs a SyncGroup request. It returns the response, or, when
// the member must wait for the leader's assignment (or the leader for its
// write), nil and a wait, as JoinGroup does.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, func(context.Context) *kmsg.SyncGroupResponse) {
	res, wait := c.sync(req)
	return respond(res, wait, func(res syncResult) *kmsg.SyncGroupResponse { return syncResponse(req, res) })
}

func syncResponse(req *kmsg.SyncGroupRequest, res syncResult) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = res.code
	resp.ProtocolType = res.protocolType
	resp.Protocol = res.protocol
	resp.MemberAssignment = res.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// sync runs a SyncGroup request: the answer, or a wait for it.
func (c *Coordinator) sync(req *kmsg.SyncGroupRequest) (syncResult, func(context.Context) syncResult) {
	if req.Group == "" {
		return syncError(kerr.InvalidGroupID.Code), nil
	}
	switch code := c.check(req.Group); code {
	case 0:
	case kerr.CoordinatorLoadInProgress.Code:
		// The rebalance's state is lost with the load: the member
		// rejoins without looking for the coordinator again.
		return syncError(kerr.RebalanceInProgress.Code), nil
	default:
		return syncError(code), nil
	}
	g := c.lookup(req.Group)
	if g == nil {
		return syncError(kerr.UnknownMemberID.Code), nil
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == groupDead {
		return syncError(kerr.CoordinatorNotAvailable.Code), nil
	}
	if code := g.validateMember(req.MemberID, instanceID); code != 0 {
		return syncError(code), nil
	}
	switch {
	case req.Generation != g.generation:
		return syncError(kerr.IllegalGeneration.Code), nil
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return syncError(kerr.InconsistentGroupProtocol.Code), nil
	}
	m := g.members[req.MemberID]
	switch g.state {
	case groupEmpty:
		return syncError(kerr.UnknownMemberID.Code), nil
	case groupPreparingRebalance:
		return syncError(kerr.RebalanceInProgress.Code), nil
	case groupStable:
		g.synced(m.id)
		g.heartbeat(m)
		return syncResult{protocolType: ptr(g.protocolType), protocol: ptr(g.protocol), assignment: m.assignment}, nil
	}

	// CompletingRebalance: wait for the leader's assignment.
	ch := make(chan syncResult, 1)
	g.setSync(m, ch)
	g.synced(m.id)
	g.heartbeat(m)
	if !g.isLeader(m.id) {
		return syncResult{}, waitSync(ch)
	}
	assignment := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if g.members[a.MemberID] != nil {
			assignment[a.MemberID] = append([]byte{}, a.MemberAssignment...)
		}
	}
	for _, o := range g.order {
		if assignment[o.id] == nil {
			assignment[o.id] = []byte{}
		}
	}
	gen := g.generation
	w := c.newWrite(g, []Record{{Group: ptr(g.metaRecord(assignment))}})
	return syncResult{}, func(ctx context.Context) syncResult {
		w.run(ctx, func(err error) {
			// A member may have joined (or left) while the write was
			// under way: then this assignment is moot.
			if g.state != groupCompletingRebalance || g.generation != gen {
				return
			}
			if err != nil {
				c.log.Warn("persisting group assignment", "group", g.id, "generation", gen, "err", err)
				g.resetAndPropagate(storeErrorCode(err, false))
				g.maybePrepareRebalance()
				return
			}
			g.setAndPropagate(assignment)
			g.transition(groupStable)
		})
		return waitSync(ch)(ctx)
	}
}

// waitSync waits for the answer on ch, or the end of the connection or
// broker (NOT_COORDINATOR).
func waitSync(ch chan syncResult) func(context.Context) syncResult {
	return func(ctx context.Context) syncResult {
		select {
		case res := <-ch:
			return res
		case <-ctx.Done():
			return syncError(kerr.NotCoordinator.Code)
		}
	}
}
