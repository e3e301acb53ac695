package broker

// DeleteGroups (key 42): versions 0–2.
//
//   - Served: an Empty group is removed with its offsets; the tombstones
//     are written through the group store before the response is sent,
//     from a later (group.Coordinator.DeleteGroups).
//   - Left out: nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(_ context.Context, c *conn, r *request) (result, later) {
	return groupAnswer(c.b.groups.DeleteGroups(r.kreq.(*kmsg.DeleteGroupsRequest)))
}
