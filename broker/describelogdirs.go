package broker

// DescribeLogDirs (key 35): versions 0–4.
//
// Served: every directory of log.dirs, each with the partitions whose logs
// it holds (a null topic list asks for all; otherwise the partitions
// named), each partition's size from the engine (engine.Sizer: the bytes
// its log occupies, counted as the engine documents; 0 for a log that does
// not implement it), offset lag 0 and is_future false (there are no
// replica moves between dirs). v3 has the top-level error code (always
// 0); v4 the file system's total and usable bytes (statfs(2); -1 where
// unknown). A partition whose log failed to open is left out.
//
// Left out: v5 (is_cordoned); offline log dirs (KAFKA_STORAGE_ERROR per
// dir) are not tracked.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

func handleDescribeLogDirs(_ context.Context, c *conn, req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	var want map[engine.TopicPartition]bool
	if req.Topics != nil {
		want = map[engine.TopicPartition]bool{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				want[engine.TopicPartition{Topic: rt.Topic, Partition: p}] = true
			}
		}
	}

	m := c.b.parts
	m.mu.RLock()
	byDir := map[string][]*partition{}
	for tp, p := range m.parts {
		if p.log == nil || (want != nil && !want[tp]) {
			continue
		}
		byDir[p.key.dir] = append(byDir[p.key.dir], p)
	}
	m.mu.RUnlock()

	for _, dir := range c.b.cfg.LogDirs {
		sd := kmsg.NewDescribeLogDirsResponseDir()
		sd.Dir = dir
		sd.TotalBytes, sd.UsableBytes = volumeBytes(dir)
		parts := byDir[dir]
		slices.SortFunc(parts, func(a, b *partition) int {
			if c := strings.Compare(a.tp.Topic, b.tp.Topic); c != 0 {
				return c
			}
			return int(a.tp.Partition - b.tp.Partition)
		})
		for _, p := range parts {
			if n := len(sd.Topics); n == 0 || sd.Topics[n-1].Topic != p.tp.Topic {
				st := kmsg.NewDescribeLogDirsResponseDirTopic()
				st.Topic = p.tp.Topic
				sd.Topics = append(sd.Topics, st)
			}
			sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			sp.Partition = p.tp.Partition
			if s, ok := p.log.(engine.Sizer); ok {
				sp.Size = s.Size()
			}
			st := &sd.Topics[len(sd.Topics)-1]
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Dirs = append(resp.Dirs, sd)
	}
	return resp
}
