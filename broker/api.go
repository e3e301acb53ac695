package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler runs a request on the connection's reader goroutine, in request
// order. It returns the result, or a later when the answer must wait.
type handler func(ctx context.Context, c *conn, r *request) (result, later)

// api is one served API: its key, the versions served and its handler.
type api struct {
	key      int16
	min, max int16
	handle   handler
}

const apiVersionsKey = 18

// apis lists every API the broker serves, in key order; ApiVersions
// answers with exactly this list. Each handler's file names the versions
// served and what is left out.
var apis []*api

func init() {
	apis = []*api{
		{key: 0, min: 0, max: 10, handle: handleProduce},
		{key: 1, min: 4, max: 13, handle: handleFetch},
		{key: 2, min: 0, max: 8, handle: simple(handleListOffsets)},
		{key: 3, min: 0, max: 12, handle: simple(handleMetadata)},
		{key: 7, min: 0, max: 3, handle: simple(handleControlledShutdown)},
		{key: 8, min: 0, max: 9, handle: handleOffsetCommit},
		{key: 9, min: 0, max: 9, handle: simple(handleOffsetFetch)},
		{key: 10, min: 0, max: 4, handle: simple(handleFindCoordinator)},
		{key: 11, min: 0, max: 9, handle: handleJoinGroup},
		{key: 12, min: 0, max: 4, handle: simple(handleHeartbeat)},
		{key: 13, min: 0, max: 5, handle: simple(handleLeaveGroup)},
		{key: 14, min: 0, max: 5, handle: handleSyncGroup},
		{key: 15, min: 0, max: 5, handle: simple(handleDescribeGroups)},
		{key: 16, min: 0, max: 5, handle: simple(handleListGroups)},
		{key: 18, min: 0, max: 3, handle: simple(handleAPIVersions)},
		{key: 19, min: 0, max: 7, handle: simple(handleCreateTopics)},
		{key: 20, min: 0, max: 6, handle: simple(handleDeleteTopics)},
		{key: 21, min: 0, max: 2, handle: simple(handleDeleteRecords)},
		{key: 22, min: 0, max: 5, handle: simple(handleInitProducerID)},
		{key: 23, min: 0, max: 4, handle: simple(handleOffsetForLeaderEpoch)},
		{key: 32, min: 0, max: 4, handle: simple(handleDescribeConfigs)},
		{key: 33, min: 0, max: 2, handle: simple(handleAlterConfigs)},
		{key: 35, min: 0, max: 4, handle: simple(handleDescribeLogDirs)},
		{key: 37, min: 0, max: 3, handle: simple(handleCreatePartitions)},
		{key: 42, min: 0, max: 2, handle: handleDeleteGroups},
		{key: 44, min: 0, max: 1, handle: simple(handleIncrementalAlterConfigs)},
		{key: 45, min: 0, max: 0, handle: simple(handleAlterPartitionAssignments)},
		{key: 46, min: 0, max: 0, handle: simple(handleListPartitionReassignments)},
		{key: 47, min: 0, max: 0, handle: handleOffsetDelete},
		{key: 60, min: 0, max: 1, handle: simple(handleDescribeCluster)},
	}
	for _, a := range apis {
		apiTable[a.key] = a
	}
}

var apiTable = map[int16]*api{}

func apiFor(key int16) *api { return apiTable[key] }

// simple adapts a handler that always answers at once with a response of
// the request's type.
func simple[Req kmsg.Request](fn func(ctx context.Context, c *conn, req Req) kmsg.Response) handler {
	return func(ctx context.Context, c *conn, r *request) (result, later) {
		return result{resp: fn(ctx, c, r.kreq.(Req))}, nil
	}
}
