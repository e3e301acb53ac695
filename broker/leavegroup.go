package broker

// LeaveGroup (key 13): versions 0–5.
//
//   - Served: v0–v2 one member id, v3+ a batch of members by member id or
//     by group.instance.id alone, each with its own error
//     (group.Coordinator.LeaveGroup).
//   - Left out: the reason field (v5) is ignored.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(_ context.Context, c *conn, req *kmsg.LeaveGroupRequest) kmsg.Response {
	return c.b.groups.LeaveGroup(req)
}
