package broker

// SyncGroup (key 14): versions 0–5.
//
//   - Served: the leader's assignment is persisted, then every waiting
//     member gets its part (group.Coordinator.SyncGroup); v5 answers the
//     protocol type and name.
//   - A SyncGroup that waits (a follower for the leader's, the leader for
//     its write) returns a later: the connection goes on reading.
//   - Left out: nothing of the classic protocol.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(_ context.Context, c *conn, r *request) (result, later) {
	return groupAnswer(c.b.groups.SyncGroup(r.kreq.(*kmsg.SyncGroupRequest)))
}
