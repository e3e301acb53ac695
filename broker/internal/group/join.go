package group

// JoinGroup: the classic protocol as Apache Kafka's GroupCoordinator runs
// it.
//
//   - A first join with an empty member id gets MEMBER_ID_REQUIRED and a
//     member id from v4 (the id lapses after the session timeout unless
//     used); before v4 the member is added at once. v0 uses the session
//     timeout as the rebalance timeout.
//   - Static membership (group.instance.id, v5+): a known instance id
//     joining without a member id replaces the old member id (requests
//     that still carry it get FENCED_INSTANCE_ID); in a Stable group it
//     gets its old assignment back with no rebalance — the group is
//     persisted and the answer names the old leader, so the member does
//     not assign — unless the group's protocol would change.
//   - A follower rejoining a Stable group with unchanged metadata gets the
//     current generation; the leader rejoining, or a member with changed
//     metadata (a cooperative client after revoking), starts a rebalance.
//   - A new group waits group.initial.rebalance.delay.ms for more members.
//     The protocol is chosen by vote among those every member supports.
//   - Errors: INVALID_GROUP_ID (empty group id), INVALID_SESSION_TIMEOUT
//     (outside group.min/max.session.timeout.ms),
//     INCONSISTENT_GROUP_PROTOCOL (no empty protocol type or protocol
//     list, else the group's type and a protocol every member has),
//     GROUP_MAX_SIZE_REACHED (group.max.size), UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR
//     while shutting down.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup runs a JoinGroup request of a member whose client has
// clientID and is at clientHost (as DescribeGroups shows it: "/" and the
// address). It returns the response, or, when the join must wait for the
// rebalance, nil and a wait that blocks until the answer comes (run it
// off the connection's reader, which goes on reading); the wait answers
// NOT_COORDINATOR if ctx ends first. Nothing of req's bytes is kept.
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, clientID, clientHost string) (*kmsg.JoinGroupResponse, func(context.Context) *kmsg.JoinGroupResponse) {
	res, wait := c.join(req, clientID, clientHost)
	return respond(res, wait, func(res joinResult) *kmsg.JoinGroupResponse { return joinResponse(req, res) })
}

// respond turns an answer, or the wait for one (when wait is not nil),
// into the response, or the wait for it.
func respond[A any, R kmsg.Response](a A, wait func(context.Context) A, response func(A) R) (R, func(context.Context) R) {
	if wait == nil {
		return response(a), nil
	}
	var none R
	return none, func(ctx context.Context) R { return response(wait(ctx)) }
}

func joinResponse(req *kmsg.JoinGroupRequest, res joinResult) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = res.code
	resp.Generation = res.generation
	resp.ProtocolType = res.protocolType
	resp.Protocol = res.protocol
	resp.LeaderID = res.leader
	resp.MemberID = res.memberID
	resp.Members = res.members
	return resp
}

// joinRequest is a JoinGroup request as the group sees it.
type joinRequest struct {
	memberID         string
	instanceID       string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	requireKnownID   bool
}

// join runs a JoinGroup request: it returns the answer, or a wait that
// blocks (off the connection's reader) until the answer comes.
func (c *Coordinator) join(req *kmsg.JoinGroupRequest, clientID, clientHost string) (joinResult, func(context.Context) joinResult) {
	if req.Group == "" {
		return joinError(req.MemberID, kerr.InvalidGroupID.Code), nil
	}
	if code := c.check(req.Group); code != 0 {
		return joinError(req.MemberID, code), nil
	}
	j := &joinRequest{
		memberID:         req.MemberID,
		clientID:         clientID,
		clientHost:       clientHost,
		protocolType:     req.ProtocolType,
		sessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		requireKnownID:   req.Version >= 4,
	}
	if req.Version == 0 {
		j.rebalanceTimeout = j.sessionTimeout
	}
	if req.InstanceID != nil {
		j.instanceID = *req.InstanceID
	}
	for _, p := range req.Protocols {
		// The request frame is reused once answered: keep copies.
		j.protocols = append(j.protocols, protocol{name: p.Name, metadata: append([]byte{}, p.Metadata...)})
	}
	if j.sessionTimeout < c.cfg.GroupMinSessionTimeoutMs || j.sessionTimeout > c.cfg.GroupMaxSessionTimeoutMs {
		return joinError(req.MemberID, kerr.InvalidSessionTimeout.Code), nil
	}
	var g *group
	if j.memberID == "" {
		var code int16
		if g, code = c.getOrCreate(req.Group); g == nil {
			return joinError(j.memberID, code), nil
		}
	} else if g = c.lookup(req.Group); g == nil {
		return joinError(j.memberID, kerr.UnknownMemberID.Code), nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	res, wait := g.join(j)
	if g.state == groupPreparingRebalance {
		g.tryCompleteJoin()
	}
	return res, wait
}

func (g *group) join(j *joinRequest) (joinResult, func(context.Context) joinResult) {
	if !g.acceptJoining(j.memberID) {
		if m := g.members[j.memberID]; m != nil {
			g.removeAndUpdate(m)
		}
		return joinError("", kerr.GroupMaxSizeReached.Code), nil
	}
	if g.state == groupDead {
		// Deleted meanwhile: the client finds the group again.
		return joinError(j.memberID, kerr.CoordinatorNotAvailable.Code), nil
	}
	if !g.supportsProtocols(j.protocolType, j.protocols) {
		return joinError(j.memberID, kerr.InconsistentGroupProtocol.Code), nil
	}
	if j.memberID == "" {
		return g.joinNew(j)
	}
	return g.joinKnown(j)
}

// acceptJoining applies group.max.size.
func (g *group) acceptJoining(memberID string) bool {
	limit := int(g.c.cfg.GroupMaxSize)
	m := g.members[memberID]
	switch g.state {
	case groupPreparingRebalance:
		return m != nil && m.join != nil || g.awaitingJoin < limit
	case groupCompletingRebalance, groupStable:
		return m != nil || len(g.members) < limit
	}
	return true
}

// joinNew serves a join without a member id.
func (g *group) joinNew(j *joinRequest) (joinResult, func(context.Context) joinResult) {
	if j.instanceID != "" {
		newID := newMemberID(j.instanceID)
		if oldID, ok := g.static[j.instanceID]; ok {
			return g.rejoinStatic(j, oldID, newID)
		}
		return g.addAndRebalance(j, newID)
	}
	newID := newMemberID(j.clientID)
	if j.requireKnownID {
		g.addPending(newID, j.sessionTimeout)
		return joinError(newID, kerr.MemberIDRequired.Code), nil
	}
	return g.addAndRebalance(j, newID)
}

// joinKnown serves a join with a member id.
func (g *group) joinKnown(j *joinRequest) (joinResult, func(context.Context) joinResult) {
	if _, ok := g.pending[j.memberID]; ok {
		if j.instanceID != "" {
			// Member ids of static members are never pending.
			return joinError(j.memberID, kerr.UnknownServerError.Code), nil
		}
		return g.addAndRebalance(j, j.memberID)
	}
	if code := g.validateMember(j.memberID, j.instanceID); code != 0 {
		return joinError(j.memberID, code), nil
	}
	m := g.members[j.memberID]
	switch g.state {
	case groupPreparingRebalance:
		return g.updateAndRebalance(m, j)
	case groupCompletingRebalance:
		if !m.matches(j.protocols) {
			return g.updateAndRebalance(m, j)
		}
		// The same metadata again (the answer was lost): the current
		// generation.
		g.heartbeat(m)
		res := g.joinSuccess(m.id, g.leader)
		if g.isLeader(m.id) {
			res.members = g.memberList()
		}
		return res, nil
	case groupStable:
		if g.isLeader(m.id) || !m.matches(j.protocols) {
			// The leader rejoins to have metadata changes (new topics,
			// partitions) assigned; a member with new metadata needs a
			// new assignment.
			return g.updateAndRebalance(m, j)
		}
		g.heartbeat(m)
		return g.joinSuccess(m.id, g.leader), nil
	}
	return joinError(j.memberID, kerr.UnknownMemberID.Code), nil
}

// validateMember checks that memberID is a member and, for a static
// member, that instanceID maps to it: 0, UNKNOWN_MEMBER_ID or
// FENCED_INSTANCE_ID.
func (g *group) validateMember(memberID, instanceID string) int16 {
	if instanceID != "" {
		current, ok := g.static[instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case current != memberID:
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// addAndRebalance adds a new member, waiting in JoinGroup, and starts a
// rebalance if none is under way.
func (g *group) addAndRebalance(j *joinRequest, id string) (joinResult, func(context.Context) joinResult) {
	m := &member{
		id:               id,
		instanceID:       j.instanceID,
		clientID:         j.clientID,
		clientHost:       j.clientHost,
		protocolType:     j.protocolType,
		protocols:        j.protocols,
		rebalanceTimeout: j.rebalanceTimeout,
		sessionTimeout:   j.sessionTimeout,
		assignment:       []byte{},
		isNew:            true,
	}
	if g.state == groupPreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.dropPending(id)
	ch := make(chan joinResult, 1)
	g.add(m, ch)
	g.expireAfter(m, newMemberJoinTimeout)
	g.maybePrepareRebalance()
	return joinResult{}, waitJoin(ch, id)
}

// updateMember takes a known member's new metadata and waiting request.
func (g *group) updateMember(m *member, j *joinRequest, ch chan joinResult) {
	m.protocols = j.protocols
	m.rebalanceTimeout = j.rebalanceTimeout
	m.sessionTimeout = j.sessionTimeout
	g.setJoin(m, ch)
}

func (g *group) updateAndRebalance(m *member, j *joinRequest) (joinResult, func(context.Context) joinResult) {
	ch := make(chan joinResult, 1)
	g.updateMember(m, j, ch)
	g.maybePrepareRebalance()
	return joinResult{}, waitJoin(ch, m.id)
}

// rejoinStatic serves a known static member joining without its member
// id (a restarted client): the member gets newID, and oldID is fenced.
func (g *group) rejoinStatic(j *joinRequest, oldID, newID string) (joinResult, func(context.Context) joinResult) {
	oldLeader := g.leader
	m := g.replaceStatic(j.instanceID, oldID, newID)
	g.heartbeat(m)
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeout, m.sessionTimeout
	ch := make(chan joinResult, 1)
	g.updateMember(m, j, ch)
	switch g.state {
	case groupStable:
		if g.selectProtocol() != g.protocol {
			g.prepareRebalance()
			break
		}
		// Same protocol: no rebalance. The new member id is persisted,
		// then the member learns the current generation (and SyncGroup
		// gives it its assignment); the old leader id in the answer keeps
		// a rejoining leader from assigning.
		gen := g.generation
		w := g.c.newWrite(g, []Record{{Group: ptr(g.metaRecord(nil))}})
		return joinResult{}, func(ctx context.Context) joinResult {
			w.run(ctx, func(err error) {
				if m.join != ch || g.state != groupStable || g.generation != gen {
					return // a rebalance took the member along, or it was fenced
				}
				if err == nil {
					g.answerJoin(m, g.joinSuccess(newID, oldLeader))
					return
				}
				g.c.log.Warn("persisting rejoined static member", "group", g.id, "member", newID, "err", err)
				res := g.joinSuccess("", oldLeader)
				res.code = storeErrorCode(err, false)
				g.answerJoin(m, res)
				m.protocols, m.rebalanceTimeout, m.sessionTimeout = oldProtocols, oldRebalance, oldSession
				if g.members[newID] == m {
					g.replaceStatic(j.instanceID, newID, oldID)
					g.heartbeat(m)
				}
			})
			return waitJoin(ch, newID)(ctx)
		}
	case groupCompletingRebalance:
		// The leader may already be assigning to the old member id.
		g.prepareRebalance()
	}
	return joinResult{}, waitJoin(ch, newID)
}

// waitJoin waits for the answer on ch; if the connection or the broker
// closes first, the answer (if it is still written) is NOT_COORDINATOR.
func waitJoin(ch chan joinResult, memberID string) func(context.Context) joinResult {
	return func(ctx context.Context) joinResult {
		select {
		case res := <-ch:
			return res
		case <-ctx.Done():
			return joinError(memberID, kerr.NotCoordinator.Code)
		}
	}
}
