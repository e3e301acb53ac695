package broker

// DescribeLogDirs (key 35): versions 0–4.
//
//   - Served: every directory of log.dirs, each with the partitions whose
//     logs it holds (a null topic list asks for all; otherwise the partitions
//     named), each partition's size from the engine (engine.Sizer: the bytes
//     its log occupies, counted as the engine documents; 0 for a log that
//     does not implement it), offset lag 0 and is_future false (there are no
//     replica moves between dirs). v3 has the top-level error code (always
//     0); v4 the file system's total and usable bytes (statfs(2); -1 where
//     unknown). A partition whose log failed to open is left out.
//   - Left out: v5 (is_cordoned); offline log dirs (KAFKA_STORAGE_ERROR per
//     dir) are not tracked.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/partition"
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

	byDir := map[string][]*partition.Partition{}
	for _, p := range c.b.parts.All() {
		if p.Log() == nil || (want != nil && !want[p.TP()]) {
			continue
		}
		byDir[p.LogDir()] = append(byDir[p.LogDir()], p)
	}

	for _, dir := range c.b.cfg.LogDirs {
		sd := kmsg.NewDescribeLogDirsResponseDir()
		sd.Dir = dir
		sd.TotalBytes, sd.UsableBytes = volumeBytes(dir)
		parts := byDir[dir]
		slices.SortFunc(parts, func(a, b *partition.Partition) int {
			if c := strings.Compare(a.TP().Topic, b.TP().Topic); c != 0 {
				return c
			}
			return int(a.TP().Partition - b.TP().Partition)
		})
		for _, p := range parts {
			tp := p.TP()
			if n := len(sd.Topics); n == 0 || sd.Topics[n-1].Topic != tp.Topic {
				st := kmsg.NewDescribeLogDirsResponseDirTopic()
				st.Topic = tp.Topic
				sd.Topics = append(sd.Topics, st)
			}
			sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			sp.Partition = tp.Partition
			if s, ok := p.Log().(engine.Sizer); ok {
				sp.Size = s.Size()
			}
			st := &sd.Topics[len(sd.Topics)-1]
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Dirs = append(resp.Dirs, sd)
	}
	return resp
}
