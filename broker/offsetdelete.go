package broker

// OffsetDelete (key 47): version 0.
//
//   - Served: the committed offsets of the named partitions go, except
//     those of topics a consumer group's members subscribe to
//     (GROUP_SUBSCRIBED_TO_TOPIC); the tombstones are written through the
//     group store before the response is sent, from a later
//     (group.Coordinator.DeleteOffsets).
//   - Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(_ context.Context, c *conn, r *request) (result, later) {
	return groupAnswer(c.b.groups.DeleteOffsets(r.kreq.(*kmsg.OffsetDeleteRequest)))
}
