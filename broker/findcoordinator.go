package broker

// FindCoordinator (key 10): versions 0–4 (v4 batches keys).
//
// Served: a group key (key_type 0) or a transactional id (key_type 1) is
// coordinated by this broker, the only one: the answer is this broker as
// the client's listener advertises it. An empty key is INVALID_REQUEST, as
// Kafka answers; an unknown key type too.
//
// Left out: the group coordinator itself (JoinGroup, SyncGroup, Heartbeat,
// OffsetCommit, ...) and transactions come later: until then a group
// member fails at JoinGroup and a transactional producer at InitProducerId
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). FindCoordinator is served
// already because librdkafka before 2.11.1 sends lz4-compressed batches
// only to a broker that lists FindCoordinator v0.

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
		case key == "":
			return kerr.InvalidRequest.Code, "empty coordinator key"
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
