package group

import "context"

// TopicName is Kafka's internal topic of committed offsets and group
// metadata.
const TopicName = "__consumer_offsets"

// Store persists group metadata and committed offsets. OpenStore returns
// the one over __consumer_offsets.
type Store interface {
	// Partitions is the number of partitions of __consumer_offsets: 0
	// until the topic exists (a cluster creates it at the first
	// FindCoordinator), then fixed.
	Partitions() int32

	// Load replays, in log order, every record of one partition of
	// __consumer_offsets into l, from the log start to its end at the
	// time of the call. Tombstones arrive with Delete set. Nothing l
	// receives refers to the store's memory. A partition this broker
	// has just come to lead can be loaded at once: Load first catches up
	// with the newest metadata. It fails with ctx's error if ctx ends.
	Load(ctx context.Context, partition int32, l Loader) error

	// Write appends recs, all of one group, to the group's partition
	// (PartitionFor) as one batch (all or nothing) and returns once they
	// are committed (acks=all). Offsets of the batch's records are not
	// reported; a record's CommitTimestamp/StateTimestamp is what the
	// caller set. Writing no records does nothing. Its errors carry
	// Kafka codes (kafkaerr.Code), which the coordinator maps to the
	// codes Kafka answers a commit or a rebalance with.
	Write(ctx context.Context, group string, recs []Record) error
}

// Loader receives the records of a partition as Store.Load replays them.
type Loader interface {
	LoadedOffset(r OffsetRecord)
	LoadedGroup(r GroupRecord)
}

// Record is one record of __consumer_offsets: exactly one of Offset and
// Group is set.
type Record struct {
	Offset *OffsetRecord
	Group  *GroupRecord
}

// OffsetRecord is a committed offset (OffsetCommitKey version 1 and
// OffsetCommitValue version 3 on disk), or with Delete its tombstone.
type OffsetRecord struct {
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

// GroupRecord is a group's membership after a rebalance (GroupMetadataKey
// version 2 and GroupMetadataValue version 3 on disk), or with Delete its
// tombstone.
type GroupRecord struct {
	Group          string
	Delete         bool
	ProtocolType   string
	Generation     int32
	Protocol       string // "" when none chosen (empty group)
	Leader         string // "" when none
	StateTimestamp int64  // milliseconds since the epoch
	Members        []MemberRecord
}

// MemberRecord is one member of a GroupRecord.
type MemberRecord struct {
	MemberID         string
	InstanceID       string // "" when not a static member
	ClientID         string
	ClientHost       string
	RebalanceTimeout int32 // milliseconds
	SessionTimeout   int32 // milliseconds
	Subscription     []byte
	Assignment       []byte
}

// PartitionFor returns the partition of __consumer_offsets that holds
// group: Kafka's abs(String.hashCode(group)) % partitions, so a group
// maps to the same partition as on a Kafka cluster of that size.
func PartitionFor(group string, partitions int32) int32 {
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
