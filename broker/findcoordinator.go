package broker

// FindCoordinator (key 10): versions 0–4 (v4 batches keys).
//
// Served: a group key (key_type 0) or a transactional id (key_type 1) is
// coordinated by this broker, the only one: the answer is this broker as
// the client's listener advertises it, also while the group's partition of
// __consumer_offsets is still loading (the group's own requests answer
// COORDINATOR_LOAD_IN_PROGRESS until it is). An empty group id is
// answered too, as Kafka does (it accepts "" in OffsetCommit, OffsetFetch,
// DescribeGroups and DeleteGroups, and answers JoinGroup's with
// INVALID_GROUP_ID); an empty transactional id or an unknown key type is
// INVALID_REQUEST.
//
// Left out: transactions come later: a transactional producer fails at
// InitProducerId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	coordinatorKeyGroup       = 0
	coordinatorKeyTransaction = 1
)

func handleFindCoordinator(_ context.Context, c *conn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) (code int16, msg string) {
		switch {
		case req.CoordinatorType != coordinatorKeyGroup && req.CoordinatorType != coordinatorKeyTransaction:
			return kerr.InvalidRequest.Code, "unknown coordinator key type"
		case key == "" && req.CoordinatorType == coordinatorKeyTransaction:
			return kerr.InvalidRequest.Code, "empty transactional id"
		}
		return 0, ""
	}
	if req.Version < 4 {
		code, msg := find(req.CoordinatorKey)
		resp.ErrorCode = code
		if code != 0 {
			resp.NodeID, resp.Port = -1, -1
			resp.ErrorMessage = &msg
			return resp
		}
		resp.NodeID, resp.Host, resp.Port = c.self.ID, c.self.Host, c.self.Port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key = key
		if code, msg := find(key); code != 0 {
			sc.ErrorCode, sc.NodeID, sc.Port = code, -1, -1
			sc.ErrorMessage = &msg
		} else {
			sc.NodeID, sc.Host, sc.Port = c.self.ID, c.self.Host, c.self.Port
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	return resp
}
