package broker

// Metadata (key 3): versions 0–12.
//
//   - Served: brokers (this broker's advertised endpoint as bound, the others
//     from coordination), cluster id (v2+), controller id (v1+), topics with
//     ids (v10+), is_internal (v1+), partitions with leader, leader epoch
//     (v7+), replicas, ISR and offline replicas (v5+, always empty). A null
//     topic list (v1+; an empty one at v0) asks for every topic. Topics may
//     be named by id (v10+); an unknown id is UNKNOWN_TOPIC_ID. A missing
//     topic is created when allow_auto_topic_creation (v4+; before v4 always)
//     and auto.create.topics.enable both say so, with num.partitions and
//     default.replication.factor, and is answered at once with its partitions
//     (the broker opens their logs before answering); otherwise it is
//     UNKNOWN_TOPIC_OR_PARTITION. An illegal name is INVALID_TOPIC_EXCEPTION.
//   - Left out: authorized operations (KIP-430) are reported as "not
//     requested" (the default); racks come from coordination.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

func handleMetadata(ctx context.Context, c *conn, req *kmsg.MetadataRequest) kmsg.Response {
	b := c.b
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	snap := b.parts.Sync(ctx)

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	// Create what is missing first, so the answer comes from one snapshot.
	if !all && autoCreate {
		created := false
		for _, rt := range req.Topics {
			if rt.Topic == nil || snap.Topics[*rt.Topic] != nil || b.declared(*rt.Topic) {
				continue
			}
			_, err := b.coord.CreateTopic(ctx, coordination.TopicSpec{Name: *rt.Topic, Partitions: -1, ReplicationFactor: -1}, false)
			switch {
			case err == nil:
				created = true
				b.log.Info("auto-created topic", "topic", *rt.Topic)
			case kafkaerr.Code(err) == kerr.TopicAlreadyExists.Code:
				created = true // a concurrent request made it
			default:
				b.log.Debug("auto-creating topic", "topic", *rt.Topic, "err", err)
			}
		}
		if created {
			snap = b.parts.Sync(ctx)
		}
	}

	resp.Brokers = metadataBrokers(c.self, snap)
	cluster := snap.ClusterID
	resp.ClusterID = &cluster
	resp.ControllerID = snap.ControllerID

	if all {
		names := make([]string, 0, len(snap.Topics))
		for name := range snap.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			resp.Topics = append(resp.Topics, metadataTopic(snap.Topics[name]))
		}
		return resp
	}
	for _, rt := range req.Topics {
		var t *coordination.Topic
		var missing int16
		if rt.Topic == nil {
			t, missing = snap.TopicsByID[rt.TopicID], kerr.UnknownTopicID.Code
		} else {
			t, missing = snap.Topics[*rt.Topic], kerr.UnknownTopicOrPartition.Code
			switch {
			case t != nil:
			case coordination.ValidateTopicName(*rt.Topic) != nil:
				missing = kerr.InvalidTopicException.Code
			case b.declared(*rt.Topic):
				// Being created with its declared shape: retriable, as
				// Kafka answers a topic it is creating.
				missing = kerr.LeaderNotAvailable.Code
			}
		}
		if t == nil {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			st.ErrorCode = missing
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopic(t))
	}
	return resp
}

// metadataBrokers lists the brokers: this one as the client's listener
// advertises it, the others as coordination holds them.
func metadataBrokers(self coordination.Broker, snap *coordination.Snapshot) []kmsg.MetadataResponseBroker {
	out := []kmsg.MetadataResponseBroker{metadataBroker(self)}
	for _, sb := range snap.Brokers {
		if sb.ID != self.ID {
			out = append(out, metadataBroker(sb))
		}
	}
	return out
}

func metadataBroker(sb coordination.Broker) kmsg.MetadataResponseBroker {
	mb := kmsg.NewMetadataResponseBroker()
	mb.NodeID, mb.Host, mb.Port = sb.ID, sb.Host, sb.Port
	if sb.Rack != "" {
		rack := sb.Rack
		mb.Rack = &rack
	}
	return mb
}

func metadataTopic(t *coordination.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic, st.TopicID, st.IsInternal = &name, t.ID, t.Internal || isInternalTopic(t.Name)
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition, sp.Leader, sp.LeaderEpoch = p.Index, p.Leader, p.LeaderEpoch
		sp.Replicas = slices.Clone(p.Replicas)
		sp.ISR = slices.Clone(p.ISR)
		sp.OfflineReplicas = []int32{}
		if p.Leader < 0 {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	slices.SortFunc(st.Partitions, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
	return st
}

// declared reports whether topic is one of this broker's
// KAFKA_CREATE_TOPICS (config.Config.CreateTopics). Those are created
// with the shape they declare (by strata serve, in a cluster once the
// membership has settled); until then a client asking for one is told
// LEADER_NOT_AVAILABLE, never given a topic auto-created with the
// defaults.
func (b *Broker) declared(topic string) bool {
	return slices.ContainsFunc(b.cfg.CreateTopics, func(s config.TopicSpec) bool { return s.Name == topic })
}
