package group

// ListGroups: every group this broker coordinates.
//
//   - With its protocol type ("" for a group of simple commits), v4+ its
//     state, v5+ its type, always "classic". v4's states filter and v5's
//     types filter match case-insensitively; an empty filter matches all,
//     and a types filter without "classic" matches none.
//   - While some partition of __consumer_offsets is still loading the
//     groups loaded so far are listed with COORDINATOR_LOAD_IN_PROGRESS,
//     as Kafka does; NOT_COORDINATOR while shutting down.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// classicGroupType is the type of every group here: the classic protocol.
const classicGroupType = "classic"

// ListGroups answers a ListGroups request.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if c.isInactive() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	if c.loading() {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool {
		return strings.EqualFold(t, classicGroupType)
	}) {
		return resp
	}
	for _, g := range c.all() {
		g.mu.Lock()
		state, ptype := g.state, g.protocolType
		g.mu.Unlock()
		if state == groupDead {
			continue
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool {
			return strings.EqualFold(s, state.String())
		}) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, ptype, state.String(), classicGroupType
		resp.Groups = append(resp.Groups, lg)
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return resp
}
