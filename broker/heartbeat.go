package broker

// Heartbeat (key 12): versions 0–4.
//
//   - Served: restarts the member's session timer and answers at once
//     (group.Coordinator.Heartbeat): REBALANCE_IN_PROGRESS while the group
//     prepares a rebalance, no error while its partition loads.
//   - Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(_ context.Context, c *conn, req *kmsg.HeartbeatRequest) kmsg.Response {
	return c.b.groups.Heartbeat(req)
}
