package broker

// JoinGroup (key 11): versions 0–9.
//
//   - Served: the classic group protocol as Kafka's GroupCoordinator runs
//     it (group.Coordinator.JoinGroup): member ids (MEMBER_ID_REQUIRED from
//     v4), static membership (v5+), the initial rebalance delay, the
//     protocol vote.
//   - A join that must wait for the rebalance returns a later, so the
//     connection goes on reading (heartbeats and commits of other members
//     on it are answered in order behind it).
//   - Left out: v9 SkipAssignment is always false (a static leader
//     rejoining a Stable group is told the old leader id instead, as
//     before v9); the reason field (v8+) is ignored.

import (
	"context"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleJoinGroup(_ context.Context, c *conn, r *request) (result, later) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	return groupAnswer(c.b.groups.JoinGroup(req, strings.Clone(r.clientID), clientHost(c)))
}

// clientHost is how Kafka shows a member's host: "/" and its address.
func clientHost(c *conn) string {
	addr := c.nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return "/" + addr
}

// groupAnswer is the result of a group coordinator call that answers at
// once (wait is nil) or from a later (JoinGroup, SyncGroup and the calls
// that write to the group store).
func groupAnswer[R kmsg.Response](resp R, wait func(context.Context) R) (result, later) {
	if wait == nil {
		return result{resp: resp}, nil
	}
	return result{}, func(ctx context.Context) result { return result{resp: wait(ctx)} }
}
