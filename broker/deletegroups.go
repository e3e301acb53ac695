package broker

// DeleteGroups (key 42): versions 0–2.
//
// Served: an Empty group (no members; a group of simple commits too) is
// removed with its offsets: it is Dead at once, and the tombstones of its
// offsets and of its group record are written through the group store
// before the response is sent (from a later). A failed write is logged and
// the group still answered as deleted, as Kafka does (the group is gone
// from memory; it comes back only if the broker restarts before the
// tombstones are written). Errors per group: NON_EMPTY_GROUP (it has
// members), GROUP_ID_NOT_FOUND, COORDINATOR_LOAD_IN_PROGRESS,
// NOT_COORDINATOR while shutting down. An empty group id is allowed, as in
// Kafka.
//
// Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(_ context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	gc := c.b.groups
	var writes []*groupWrite
	seen := map[string]bool{}
	for _, id := range req.Groups {
		if seen[id] {
			continue // Kafka answers a group named twice once
		}
		seen[id] = true
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		var w *groupWrite
		dg.ErrorCode, w = gc.deleteGroup(id)
		if w != nil {
			writes = append(writes, w)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	if len(writes) == 0 {
		return result{resp: resp}, nil
	}
	return result{}, func(ctx context.Context) result {
		for _, w := range writes {
			if err := w.run(ctx, nil); err != nil {
				gc.log.Warn("writing tombstones of deleted group", "group", w.g.id, "err", err)
			}
		}
		return result{resp: resp}
	}
}

// deleteGroup removes an Empty group and returns the write of its
// tombstones (to be run), or an error code.
func (c *groupCoordinator) deleteGroup(id string) (int16, *groupWrite) {
	if code := c.check(id); code != 0 {
		return code, nil
	}
	g := c.lookup(id)
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case groupDead:
		return kerr.GroupIDNotFound.Code, nil
	case groupEmpty:
	default:
		return kerr.NonEmptyGroup.Code, nil
	}
	g.transition(groupDead)
	g.stopTimers()
	c.removeGroup(g)
	recs := g.removeOffsets(true, nil)
	recs = append(recs, groupRecord{Group: &groupMetaRecord{Group: id, Delete: true}})
	c.log.Info("deleted group", "group", id, "offsets", len(recs)-1)
	return 0, c.newWrite(g, recs)
}
