package broker

import "github.com/strata-broker/strata/broker/internal/group"

// offsetsTopicName is Kafka's internal topic of committed offsets and
// group metadata, which the group coordinator keeps.
const offsetsTopicName = group.TopicName

// isInternalTopic reports whether name is a topic the broker manages
// itself, which clients may read but not write or delete. Kafka decides
// by the name alone, so a __consumer_offsets created before it was marked
// internal is internal too.
func isInternalTopic(name string) bool { return name == offsetsTopicName }
