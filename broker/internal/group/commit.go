package group

// OffsetCommit: a member's commits, and simple commits.
//
//   - Commits of a group member (member id and generation of the current
//     generation; v7+ with its group.instance.id), and simple commits
//     (generation -1, empty member id, as admin tools and consumers
//     without group management send them), which a group accepts only
//     while it has no members — a group with members answers
//     UNKNOWN_MEMBER_ID, and a commit naming a generation of a group that
//     does not exist ILLEGAL_GENERATION. A commit creates its group if
//     needed (an empty group id is allowed, as in Kafka). A member's
//     commit also counts as its heartbeat.
//   - Every partition's offsets are written through the Store and the
//     response is sent once the write returns; a failed write answers
//     every partition the error Kafka maps it to
//     (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
//     INVALID_COMMIT_OFFSET_SIZE).
//   - Per partition: UNKNOWN_TOPIC_OR_PARTITION for a topic or partition
//     that does not exist, OFFSET_METADATA_TOO_LARGE for metadata longer
//     than offset.metadata.max.bytes (counted in UTF-16 units, as Java
//     does); the rest are written.
//   - Group-level errors, given to every partition: ILLEGAL_GENERATION,
//     UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS
//     (CompletingRebalance: the member has not synced yet),
//     COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
//     NOT_COORDINATOR while shutting down.
//   - v1's commit timestamp (when not -1) is kept as the commit time;
//     v2–v4's retention_time (when not -1) sets the offset's expire
//     timestamp to now plus it. v6+ keeps the leader epoch.

import (
	"context"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CommitOffsets runs an OffsetCommit request. It returns the response,
// or, when offsets are written, nil and a wait that writes them and
// returns the response once the write is done (run it exactly once, off
// the connection's reader); a wait whose ctx ends answers the code the
// failed write maps to.
func (c *Coordinator) CommitOffsets(req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, func(context.Context) *kmsg.OffsetCommitResponse) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	snap := c.coord.Snapshot()
	now := c.now().UnixMilli()
	maxMeta := int(c.cfg.OffsetMetadataMaxBytes)

	// codes point at the response's partition error codes; toWrite and
	// tooLarge index into them.
	var codes []*int16
	var toWrite []int
	var tooLarge []int
	var recs []Record
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := snap.Topics[rt.Topic]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &resp.Topics[i].Partitions[j]
			*sp = kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			codes = append(codes, &sp.ErrorCode)
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			if javaLen(meta) > maxMeta {
				tooLarge = append(tooLarge, len(codes)-1)
				continue
			}
			o := &OffsetRecord{
				Group:           req.Group,
				Topic:           rt.Topic,
				Partition:       rp.Partition,
				Offset:          rp.Offset,
				LeaderEpoch:     -1,
				Metadata:        meta,
				CommitTimestamp: now,
				ExpireTimestamp: -1,
			}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if req.Version == 1 && rp.Timestamp != -1 {
				o.CommitTimestamp = rp.Timestamp
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
				o.ExpireTimestamp = now + req.RetentionTimeMillis
			}
			toWrite = append(toWrite, len(codes)-1)
			recs = append(recs, Record{Offset: o})
		}
	}
	if len(codes) == 0 {
		return resp, nil
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	code, w := c.commit(req.Group, req.MemberID, instanceID, req.Generation, recs)
	if code != 0 {
		for _, p := range codes {
			*p = code
		}
		return resp, nil
	}
	for _, i := range tooLarge {
		*codes[i] = kerr.OffsetMetadataTooLarge.Code
	}
	if w == nil {
		return resp, nil
	}
	return nil, func(ctx context.Context) *kmsg.OffsetCommitResponse {
		code := storeErrorCode(w(ctx), true)
		for _, i := range toWrite {
			*codes[i] = code
		}
		return resp
	}
}

// javaLen is the length of s as Java counts it (UTF-16 code units).
func javaLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r) // an invalid byte is one U+FFFD: 1
	}
	return n
}

// commit validates an offset commit and, when recs is not empty, returns
// the write that persists them and applies them (run it exactly once,
// from a wait). code is a group-level error for every partition.
func (c *Coordinator) commit(group, memberID, instanceID string, generation int32, recs []Record) (int16, func(context.Context) error) {
	if code := c.check(group); code != 0 {
		return code, nil
	}
	g := c.lookup(group)
	if g == nil {
		if generation >= 0 {
			// A generation of a group that does not exist (any more).
			return kerr.IllegalGeneration.Code, nil
		}
		var code int16
		if g, code = c.getOrCreate(group); g == nil {
			return code, nil
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if code := g.validateCommit(memberID, instanceID, generation); code != 0 {
		return code, nil
	}
	switch g.state {
	case groupCompletingRebalance:
		// The member has its generation but not its assignment yet.
		return kerr.RebalanceInProgress.Code, nil
	case groupStable, groupPreparingRebalance:
		if m := g.members[memberID]; m != nil {
			g.heartbeat(m)
		}
	}
	if len(recs) == 0 {
		return 0, nil
	}
	w := c.newWrite(g, recs)
	return 0, func(ctx context.Context) error {
		return w.run(ctx, func(err error) {
			if err != nil || g.state == groupDead {
				return
			}
			for _, r := range recs {
				o := r.Offset
				if g.offsets[o.Topic] == nil {
					g.offsets[o.Topic] = map[int32]*committedOffset{}
				}
				g.offsets[o.Topic][o.Partition] = &committedOffset{
					offset: o.Offset, leaderEpoch: o.LeaderEpoch, metadata: o.Metadata,
					commitTime: o.CommitTimestamp, expireTime: o.ExpireTimestamp,
				}
			}
		})
	}
}

// validateCommit decides whether a commit is accepted: simple commits
// (generation < 0) while the group is Empty; otherwise the member of the
// current generation, or for a group with members, nothing else.
func (g *group) validateCommit(memberID, instanceID string, generation int32) int16 {
	switch {
	case g.state == groupDead:
		return kerr.CoordinatorNotAvailable.Code
	case generation < 0 && g.state == groupEmpty:
		return 0
	case generation >= 0 || memberID != "" || instanceID != "":
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		return 0
	case g.state != groupEmpty:
		return kerr.UnknownMemberID.Code
	}
	return 0
}
