package broker

// OffsetFetch (key 9): versions 0–9.
//
//   - Served: a group's committed offsets whatever its state; null topics
//     (v2+) for all of them; several groups per request (v8+)
//     (group.Coordinator.FetchOffsets).
//   - Left out: require_stable (v7+) is accepted and ignored: there are no
//     transactional commits, so no offset is ever pending. v9's member id
//     and epoch (the new consumer protocol) are ignored. v10+ (topic ids)
//     is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetFetch(_ context.Context, c *conn, req *kmsg.OffsetFetchRequest) kmsg.Response {
	return c.b.groups.FetchOffsets(req)
}
