package broker

// ListPartitionReassignments (key 46): version 0.
//
//   - Served by any broker: the partitions being moved, with their full
//     replica set and the replicas being added and removed; of the topics
//     named, or of all.
//   - Left out: nothing.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/coordination"
)

func handleListPartitionReassignments(_ context.Context, c *conn, req *kmsg.ListPartitionReassignmentsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	snap := c.b.coord.Snapshot()
	list := func(t *coordination.Topic, only []int32) {
		var st *kmsg.ListPartitionReassignmentsResponseTopic
		for _, sp := range t.Partitions {
			if len(sp.AddingReplicas) == 0 && len(sp.RemovingReplicas) == 0 {
				continue
			}
			if only != nil && !slices.Contains(only, sp.Index) {
				continue
			}
			if st == nil {
				resp.Topics = append(resp.Topics, kmsg.NewListPartitionReassignmentsResponseTopic())
				st = &resp.Topics[len(resp.Topics)-1]
				st.Topic = t.Name
			}
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition = sp.Index
			rp.Replicas = slices.Clone(sp.Replicas)
			rp.AddingReplicas = slices.Clone(sp.AddingReplicas)
			rp.RemovingReplicas = slices.Clone(sp.RemovingReplicas)
			st.Partitions = append(st.Partitions, rp)
		}
	}
	if req.Topics == nil {
		names := make([]string, 0, len(snap.Topics))
		for name := range snap.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			list(snap.Topics[name], nil)
		}
		return resp
	}
	for _, rt := range req.Topics {
		if t := snap.Topics[rt.Topic]; t != nil {
			list(t, rt.Partitions)
		}
	}
	return resp
}
