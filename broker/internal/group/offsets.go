package group

// OffsetFetch: a group's committed offsets, whatever the group's state,
// as Kafka answers them.
//
//   - Offset, leader epoch (v5+) and metadata. v8+ asks for several groups
//     in one request, each answered on its own. Null topics (v2+) ask for
//     every committed offset of the group; a partition with no committed
//     offset (an unknown group, topic or partition too) answers offset -1,
//     leader epoch -1 and empty metadata with no error. An empty group id
//     is allowed, as in Kafka.
//   - Errors per group: COORDINATOR_LOAD_IN_PROGRESS while its partition
//     loads, NOT_COORDINATOR while shutting down — in every requested
//     partition for v0–v1, as the top-level error (with no topics) for
//     v2–v7, as the group's error for v8+.

import "github.com/twmb/franz-go/pkg/kmsg"

// FetchOffsets answers an OffsetFetch request.
func (c *Coordinator) FetchOffsets(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for i := range req.Groups {
			rg := &req.Groups[i]
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			var want []offsetFetchTopic
			for _, t := range rg.Topics {
				want = append(want, offsetFetchTopic{topic: t.Topic, partitions: t.Partitions})
			}
			code, topics := c.fetchOffsets(rg.Group, rg.Topics == nil, want)
			sg.ErrorCode = code
			for _, t := range topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t.topic
				for _, o := range t.offsets {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = o.partition, o.offset, o.leaderEpoch, ptr(o.metadata)
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}

	var want []offsetFetchTopic
	for _, t := range req.Topics {
		want = append(want, offsetFetchTopic{topic: t.Topic, partitions: t.Partitions})
	}
	all := req.Topics == nil && req.Version >= 2
	code, topics := c.fetchOffsets(req.Group, all, want)
	if code != 0 {
		if req.Version >= 2 {
			resp.ErrorCode = code
			return resp
		}
		// v0–v1 have no top-level error: every partition carries it.
		_, topics = c.unknownOffsets(want)
	}
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.topic
		for _, o := range t.offsets {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = o.partition, o.offset, o.leaderEpoch, ptr(o.metadata)
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// offsetFetchTopic is a topic and partitions asked for.
type offsetFetchTopic struct {
	topic      string
	partitions []int32
}

// fetchedTopic is a topic's answer.
type fetchedTopic struct {
	topic   string
	offsets []fetchedOffset
}

type fetchedOffset struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
}

// fetchOffsets returns the committed offsets of group for the topics asked
// (all: every committed offset), or a group-level error.
func (c *Coordinator) fetchOffsets(group string, all bool, want []offsetFetchTopic) (int16, []fetchedTopic) {
	if code := c.check(group); code != 0 {
		return code, nil
	}
	g := c.lookup(group)
	if g == nil {
		if all {
			return 0, nil
		}
		return c.unknownOffsets(want)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == groupDead {
		if all {
			return 0, nil
		}
		return c.unknownOffsets(want)
	}
	if all {
		var out []fetchedTopic
		for _, topic := range sortedKeys(g.offsets) {
			ft := fetchedTopic{topic: topic}
			for _, p := range sortedKeys(g.offsets[topic]) {
				o := g.offsets[topic][p]
				ft.offsets = append(ft.offsets, fetchedOffset{p, o.offset, o.leaderEpoch, o.metadata})
			}
			out = append(out, ft)
		}
		return 0, out
	}
	out := make([]fetchedTopic, 0, len(want))
	for _, w := range want {
		ft := fetchedTopic{topic: w.topic}
		for _, p := range w.partitions {
			fo := fetchedOffset{partition: p, offset: -1, leaderEpoch: -1}
			if o := g.offsets[w.topic][p]; o != nil {
				fo = fetchedOffset{p, o.offset, o.leaderEpoch, o.metadata}
			}
			ft.offsets = append(ft.offsets, fo)
		}
		out = append(out, ft)
	}
	return 0, out
}

// unknownOffsets answers "no committed offset" for every partition asked.
func (c *Coordinator) unknownOffsets(want []offsetFetchTopic) (int16, []fetchedTopic) {
	out := make([]fetchedTopic, 0, len(want))
	for _, w := range want {
		ft := fetchedTopic{topic: w.topic}
		for _, p := range w.partitions {
			ft.offsets = append(ft.offsets, fetchedOffset{partition: p, offset: -1, leaderEpoch: -1})
		}
		out = append(out, ft)
	}
	return 0, out
}
