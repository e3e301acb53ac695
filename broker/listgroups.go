package broker

// ListGroups (key 16): versions 0–5.
//
//   - Served: every group this broker coordinates, with its protocol
//     type, v4+ its state, v5+ its type ("classic"), filtered by v4's
//     states and v5's types (group.Coordinator.ListGroups);
//     COORDINATOR_LOAD_IN_PROGRESS with the groups loaded so far.
//   - Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(_ context.Context, c *conn, req *kmsg.ListGroupsRequest) kmsg.Response {
	return c.b.groups.ListGroups(req)
}
