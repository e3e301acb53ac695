package broker

// OffsetCommit (key 8): versions 0–9.
//
//   - Served: commits of a group member and simple commits (generation
//     -1), written through the group store (group.Coordinator.CommitOffsets);
//     v1's commit timestamp, v2–v4's retention time, v6+'s leader epoch.
//   - The response is sent once the write returns, from a later, so the
//     connection goes on reading.
//   - Left out: v10+ (topic ids) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetCommit(_ context.Context, c *conn, r *request) (result, later) {
	return groupAnswer(c.b.groups.CommitOffsets(r.kreq.(*kmsg.OffsetCommitRequest)))
}
