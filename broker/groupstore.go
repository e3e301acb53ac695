package broker

import "context"

// The group coordinator (group*.go and the handlers of the group APIs)
// keeps groups and committed offsets in memory and persists every change
// through a groupStore: records of Kafka's own key/value format in the
// internal topic __consumer_offsets (offsetstopic.go). A group lives in
// one partition of that topic (groupPartition), and the coordinator serves
// a group only once that partition has been loaded; until then it answers
// COORDINATOR_LOAD_IN_PROGRESS.

// offsetsTopicName is Kafka's internal topic of committed offsets and
// group metadata.
const offsetsTopicName = "__consumer_offsets"

// groupStore persists group metadata and committed offsets.
type groupStore interface {
	// Partitions is the number of partitions of __consumer_offsets.
	Partitions() int32

	// Load replays, in log order, every record of one partition of
	// __consumer_offsets into h, from the log start to its end at the
	// time of the call. Tombstones arrive with Delete set.
	Load(ctx context.Context, partition int32, h groupLoader) error

	// Write appends recs, all of one group, to the group's partition
	// as one batch (all or nothing) and returns once they are
	// committed (acks=all). Offsets of the batch's records are not
	// reported; a record's CommitTimestamp/StateTimestamp is what the
	// caller set.
	Write(ctx context.Context, group string, recs []groupRecord) error
}

// groupLoader receives the records of a partition being loaded.
type groupLoader interface {
	loadedOffset(r offsetRecord)
	loadedGroup(r groupMetaRecord)
}

// groupRecord is one record of __consumer_offsets: exactly one of Offset
// and Group is set.
type groupRecord struct {
	Offset *offsetRecord
	Group  *groupMetaRecord
}

// offsetRecord is a committed offset (OffsetCommitKey version 1 and
// OffsetCommitValue version 3 on disk), or with Delete its tombstone.
type offsetRecord struct {
	Group           string
	Topic           string
	Partition       int32
	Delete          bool
	Offset          int64
	LeaderEpoch     int32 // -1 when unknown
	Metadata        string
	CommitTimestamp int64 // milliseconds since the epoch
	ExpireTimestamp int64 // -1: expiry follows offsets.retention.minutes
}

// groupMetaRecord is a group's membership after a rebalance
// (GroupMetadataKey version 2 and GroupMetadataValue version 3 on disk), or
// with Delete its tombstone.
type groupMetaRecord struct {
	Group          string
	Delete         bool
	ProtocolType   string
	Generation     int32
	Protocol       string // "" when none chosen (empty group)
	Leader         string // "" when none
	StateTimestamp int64  // milliseconds since the epoch
	Members        []memberRecord
}

// memberRecord is one member of a groupMetaRecord.
type memberRecord struct {
	MemberID         string
	InstanceID       string // "" when not a static member
	ClientID         string
	ClientHost       string
	RebalanceTimeout int32 // milliseconds
	SessionTimeout   int32 // milliseconds
	Subscription     []byte
	Assignment       []byte
}

// groupPartition returns the partition of __consumer_offsets that holds
// group: Kafka's abs(String.hashCode(group)) % partitions, so a group
// maps to the same partition as on a Kafka cluster of that size.
func groupPartition(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // a surrogate pair in Java's UTF-16
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -1<<31 { // Kafka's Utils.abs maps MinValue to 0
		h = 0
	}
	if h < 0 {
		h = -h
	}
	return h % partitions
}
