package broker

// DeleteTopics (key 20): versions 0–6 (v6 names topics by name or id).
//
//   - Served: deletion through coordination; the broker deletes the topic's
//     logs before it answers (the partition manager applies the new metadata
//     synchronously). delete.topic.enable=false answers
//     TOPIC_DELETION_DISABLED; an unknown name UNKNOWN_TOPIC_OR_PARTITION, an
//     unknown id UNKNOWN_TOPIC_ID; the error message from v5, the topic id
//     from v6.
//   - Internal topics (__consumer_offsets) are refused with
//     INVALID_TOPIC_EXCEPTION. Kafka's broker has no such check (only its
//     ACLs, TOPIC_AUTHORIZATION_FAILED, protect the topic, and its old
//     ZooKeeper topic tool refused it client-side, KAFKA-1961); Strata has no
//     ACLs, and deleting the topic would lose every group's committed
//     offsets, so it refuses as Kafka refuses other writes to internal topics
//     (Produce, DeleteRecords: INVALID_TOPIC_EXCEPTION).
//   - Left out: timeout_ms is not needed, deletion is synchronous.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
)

func handleDeleteTopics(ctx context.Context, c *conn, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			targets[i].Topic = &req.TopicNames[i]
		}
	}
	snap := c.b.coord.Snapshot()
	deleted := false
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *coordination.Topic
		if rt.Topic != nil {
			t = snap.Topics[*rt.Topic]
		} else {
			t = snap.TopicsByID[rt.TopicID]
		}
		var err error
		switch {
		case !c.b.cfg.DeleteTopicEnable:
			err = kafkaerr.New(kerr.TopicDeletionDisabled.Code, "topic deletion is disabled (delete.topic.enable=false)")
		case t == nil && rt.Topic == nil:
			err = kafkaerr.New(kerr.UnknownTopicID.Code, "unknown topic id")
		case t == nil:
			err = kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", *rt.Topic)
		case t.Internal || isInternalTopic(t.Name):
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			err = kafkaerr.New(kerr.InvalidTopicException.Code, "Cannot delete internal topic %s", t.Name)
		default:
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			err = c.b.coord.DeleteTopic(ctx, name)
		}
		if err != nil {
			st.ErrorCode = kafkaerr.Code(err)
			st.ErrorMessage = kafkaerr.Message(err)
		} else {
			deleted = true
			c.b.log.Info("deleted topic", "topic", t.Name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if deleted {
		c.b.parts.Sync(ctx)
	}
	return resp
}
