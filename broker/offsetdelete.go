package broker

// OffsetDelete (key 47): version 0.
//
// Served: the committed offsets of the named partitions are removed and
// their tombstones written through the group store before the response is
// sent (from a later); deleting an offset that was never committed
// succeeds. In an Empty group every partition can go; in a consumer group
// with members (preparing a rebalance, completing it, or Stable) a topic
// the members subscribe to (parsed from their consumer protocol metadata;
// if it does not parse, every topic counts as subscribed) answers
// GROUP_SUBSCRIBED_TO_TOPIC and the others go. Per partition:
// UNKNOWN_TOPIC_OR_PARTITION for a topic or partition that does not exist.
// Group-level errors (the response then has no topics): INVALID_GROUP_ID
// (empty group id), GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (a group with
// members that is not a consumer group), COORDINATOR_LOAD_IN_PROGRESS,
// NOT_COORDINATOR while shutting down. A failed write is logged, as Kafka
// does.
//
// Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(_ context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	gc := c.b.groups
	snap := c.b.coord.Snapshot()

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
	code, subscribed, w := gc.deleteOffsets(req.Group, asked)
	if code != 0 {
		resp.ErrorCode, resp.Topics = code, nil
		return result{resp: resp}, nil
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
		return result{resp: resp}, nil
	}
	return result{}, func(ctx context.Context) result {
		if err := w.run(ctx, nil); err != nil {
			gc.log.Warn("writing tombstones of deleted offsets", "group", req.Group, "err", err)
		}
		return result{resp: resp}
	}
}

// deleteOffsets removes the offsets asked for that the group does not
// consume: a group-level error, the topics kept because the group
// subscribes to them, and the write of the tombstones (nil: none).
func (c *groupCoordinator) deleteOffsets(id string, asked map[string][]int32) (int16, map[string]bool, *groupWrite) {
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
