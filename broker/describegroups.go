package broker

// DescribeGroups (key 15): versions 0–5.
//
//   - Served: each group's state, protocol type, and when Stable its
//     protocol and members with their metadata and assignments; an
//     unknown group is Dead with no error (group.Coordinator.DescribeGroups).
//   - Authorized operations (v3+) are always -2147483648: not computed,
//     there are no ACLs.
//   - Left out: v6 (GROUP_ID_NOT_FOUND for unknown groups) is not served.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(_ context.Context, c *conn, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := c.b.groups.DescribeGroups(req)
	for i := range resp.Groups {
		resp.Groups[i].AuthorizedOperations = math.MinInt32
	}
	return resp
}
