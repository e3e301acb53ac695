package group

// DeleteGroups and OffsetDelete: removing groups and committed offsets.
//
// DeleteGroups:
//   - An Empty group (no members; a group of simple commits too) is
//     removed with its offsets: it is Dead at once, and the tombstones of
//     its offsets and of its group record are written through the Store
//     before the response is sent. A failed write is logged and the group
//     still answered as deleted, as Kafka does (the group is gone from
//     memory; it comes back only if the broker restarts before the
//     tombstones are written). A group named twice is answered once.
//   - Errors per group: NON_EMPTY_GROUP (it has members),
//     GROUP_ID_NOT_FOUND, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR
//     while shutting down. An empty group id is allowed, as in Kafka.
//
// OffsetDelete:
//   - The committed offsets of the named partitions are removed and their
//     tombstones written through the Store before the response is sent;
//     deleting an offset that was never committed succeeds. A failed
//     write is logged, as Kafka does.
//   - In an Empty group every partition can go; in a consumer group with
//     members (preparing a rebalance, completing it, or Stable) a topic
//     the members subscribe to (parsed from their consumer protocol
//     metadata; if it does not parse, every topic counts as subscribed)
//     answers GROUP_SUBSCRIBED_TO_TOPIC and the others go.
//   - Per partition: UNKNOWN_TOPIC_OR_PARTITION for a topic or partition
//     that does not exist. Group-level errors (the response then has no
//     topics): INVALID_GROUP_ID (empty group id), GROUP_ID_NOT_FOUND,
//     NON_EMPTY_GROUP (a group with members that is not a consumer group),
//     COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR while shutting down.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups runs a DeleteGroups request. It returns the response, or,
// when tombstones are written, nil and a wait that writes them and then
// returns the response (run it exactly once, off the connection's
// reader).
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, func(context.Context) *kmsg.DeleteGroupsResponse) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
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
		dg.ErrorCode, w = c.deleteGroup(id)
		if w != nil {
			writes = append(writes, w)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	if len(writes) == 0 {
		return resp, nil
	}
	return nil, func(ctx context.Context) *kmsg.DeleteGroupsResponse {
		for _, w := range writes {
			if err := w.run(ctx, nil); err != nil {
				c.log.Warn("writing tombstones of deleted group", "group", w.g.id, "err", err)
			}
		}
		return resp
	}
}

// deleteGroup removes an Empty group and returns the write of its
// tombstones (to be run), or an error code.
func (c *Coordinator) deleteGroup(id string) (int16, *groupWrite) {
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
	recs = append(recs, Record{Group: &GroupRecord{Group: id, Delete: true}})
	c.log.Info("deleted group", "group", id, "offsets", len(recs)-1)
	return 0, c.newWrite(g, recs)
}

// DeleteOffsets runs an OffsetDelete request. It returns the response,
// or, when tombstones are written, nil and a wait that writes them and
// then returns the response (run it exactly once, off the connection's
// reader).
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, func(context.Context) *kmsg.OffsetDeleteResponse) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	snap := c.coord.Snapshot()

	// Partitions of existing topics are asked of the group; the others
	// answer UNKNOWN_TOPIC_OR_PARTITION.
	asked := map[string][]int32{}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		t := snap.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				asked[rt.Topic] = append(asked[rt.Topic], rp.Partition)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	code, subscribed, w := c.deleteOffsets(req.Group, asked)
	if code != 0 {
		resp.ErrorCode, resp.Topics = code, nil
		return resp, nil
	}
	for i := range resp.Topics {
		st := &resp.Topics[i]
		if !subscribed[st.Topic] {
			continue
		}
		for j := range st.Partitions {
			if st.Partitions[j].ErrorCode == 0 {
				st.Partitions[j].ErrorCode = kerr.GroupSubscribedToTopic.Code
			}
		}
	}
	if w == nil {
		return resp, nil
	}
	return nil, func(ctx context.Context) *kmsg.OffsetDeleteResponse {
		if err := w.run(ctx, nil); err != nil {
			c.log.Warn("writing tombstones of deleted offsets", "group", req.Group, "err", err)
		}
		return resp
	}
}

// deleteOffsets removes the offsets asked for that the group does not
// consume: a group-level error, the topics kept because the group
// subscribes to them, and the write of the tombstones (nil: none).
func (c *Coordinator) deleteOffsets(id string, asked map[string][]int32) (int16, map[string]bool, *groupWrite) {
	if id == "" {
		return kerr.InvalidGroupID.Code, nil, nil
	}
	if code := c.check(id); code != 0 {
		return code, nil, nil
	}
	g := c.lookup(id)
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	subscribed := map[string]bool{}
	switch g.state {
	case groupDead:
		return kerr.GroupIDNotFound.Code, nil, nil
	case groupEmpty:
	default:
		if g.protocolType != consumerProtocolType {
			return kerr.NonEmptyGroup.Code, nil, nil
		}
		for topic := range asked {
			if g.subscribedTo(topic) {
				subscribed[topic] = true
				delete(asked, topic)
			}
		}
	}
	recs := g.removeOffsets(false, asked)
	if len(recs) == 0 {
		return 0, subscribed, nil
	}
	return 0, subscribed, c.newWrite(g, recs)
}
