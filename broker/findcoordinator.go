package broker

// FindCoordinator (key 10): versions 0–4 (v4 batches keys).
//
//   - Served: a group key (key_type 0) is coordinated by the leader of the
//     group's partition of __consumer_offsets, also while it still loads;
//     in a cluster the first group key creates the topic, and until it
//     has offsets.topic.replication.factor brokers, or while the partition
//     has no leader, the answer is COORDINATOR_NOT_AVAILABLE
//     (group.Coordinator.FindCoordinator).
//   - A transactional id (key_type 1) is answered with this broker. An
//     empty group id is answered too, as Kafka does (it accepts "" in
//     OffsetCommit, OffsetFetch, DescribeGroups and DeleteGroups, and
//     answers JoinGroup's with INVALID_GROUP_ID); an empty transactional
//     id or an unknown key type is INVALID_REQUEST.
//   - Left out: transactions come later: a transactional producer fails
//     at InitProducerId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/coordination"
)

const (
	coordinatorKeyGroup       = 0
	coordinatorKeyTransaction = 1
)

func handleFindCoordinator(ctx context.Context, c *conn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) (coordination.Broker, int16, string) {
		switch {
		case req.CoordinatorType != coordinatorKeyGroup && req.CoordinatorType != coordinatorKeyTransaction:
			return coordination.Broker{}, kerr.InvalidRequest.Code, "unknown coordinator key type"
		case key == "" && req.CoordinatorType == coordinatorKeyTransaction:
			return coordination.Broker{}, kerr.InvalidRequest.Code, "empty transactional id"
		case req.CoordinatorType == coordinatorKeyTransaction:
			return c.self, 0, ""
		}
		return c.b.groups.FindCoordinator(ctx, key, c.self)
	}
	if req.Version < 4 {
		b, code, msg := find(req.CoordinatorKey)
		resp.ErrorCode = code
		if code != 0 {
			resp.NodeID, resp.Port = -1, -1
			resp.ErrorMessage = &msg
			return resp
		}
		resp.NodeID, resp.Host, resp.Port = b.ID, b.Host, b.Port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key = key
		if b, code, msg := find(key); code != 0 {
			sc.ErrorCode, sc.NodeID, sc.Port = code, -1, -1
			sc.ErrorMessage = &msg
		} else {
			sc.NodeID, sc.Host, sc.Port = b.ID, b.Host, b.Port
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	return resp
}
