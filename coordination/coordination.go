// Package coordination is the cluster metadata a broker depends on: who the
// brokers are, which topics exist with their ids, partitions, replica
// assignments, leaders and configs, and the cluster's identity. The broker
// sees only this interface; coordination/local keeps the metadata of a
// single broker on its own disk, and a ZooKeeper implementation keeps a
// cluster's in ZooKeeper's Kafka layout.
//
// Readers take immutable snapshots ([Coordinator.Snapshot]) and learn about
// changes from [Coordinator.Changed]; writers go through the methods that
// create, delete or alter topics. Every method that can block takes a
// context first.
package coordination

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// Sentinel errors, tested with errors.Is; the broker maps them to Kafka
// error codes.
var (
	ErrTopicExists         = errors.New("coordination: topic already exists")          // TOPIC_ALREADY_EXISTS
	ErrUnknownTopic        = errors.New("coordination: unknown topic")                 // UNKNOWN_TOPIC_OR_PARTITION
	ErrInvalidPartitions   = errors.New("coordination: invalid partition count")       // INVALID_PARTITIONS
	ErrInvalidReplication  = errors.New("coordination: invalid replication factor")    // INVALID_REPLICATION_FACTOR
	ErrInvalidConfig       = errors.New("coordination: invalid topic config")          // INVALID_CONFIG
	ErrInvalidTopic        = errors.New("coordination: invalid topic name")            // INVALID_TOPIC_EXCEPTION
	ErrClosed              = errors.New("coordination: closed")                        // KAFKA_STORAGE_ERROR / shutting down
	ErrNotController       = errors.New("coordination: this broker is not controller") // NOT_CONTROLLER
	ErrMetadataUnavailable = errors.New("coordination: metadata unavailable")          // retriable
	// ErrStaleState: a partition's state moved on (another leader or
	// leader epoch, or a concurrent change) before a conditional write;
	// nothing was changed. The caller looks at a newer Snapshot.
	ErrStaleState = errors.New("coordination: partition state changed") // retriable
	// ErrNoReassignment: a cancellation named a partition that is not
	// being reassigned (NO_REASSIGNMENT_IN_PROGRESS).
	ErrNoReassignment = errors.New("coordination: no reassignment in progress")
)

// TopicID is a topic's 16-byte UUID, stable for the topic's life (Kafka
// topic ids, Metadata v10+, Fetch v13+). The zero value means "no id".
type TopicID [16]byte

// Broker is one broker of the cluster as clients reach it.
type Broker struct {
	ID   int32
	Host string // advertised host
	Port int32  // advertised port
	Rack string // broker.rack; "" for none
}

// Partition is one partition's assignment and leadership.
type Partition struct {
	Index       int32
	Replicas    []int32 // assigned brokers, preferred leader first
	ISR         []int32 // in-sync replicas
	Leader      int32   // -1 when no leader
	LeaderEpoch int32
	// AddingReplicas and RemovingReplicas are set while a reassignment
	// moves the partition (Replicas then holds both the old and the new
	// replicas); nil otherwise.
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Topic is a topic's metadata. Configs holds only the topic's overrides
// (keys such as retention.ms, cleanup.policy, strata.engine); the broker
// resolves defaults from its own config.
type Topic struct {
	Name       string
	ID         TopicID
	Internal   bool // __consumer_offsets and other broker-managed topics
	Partitions []Partition
	Configs    map[string]string
}

// Snapshot is an immutable view of the cluster's metadata. A Snapshot is
// never modified after it is returned, so it can be shared without locks.
type Snapshot struct {
	ClusterID    string
	ControllerID int32 // -1 when none
	Brokers      []Broker
	Topics       map[string]*Topic
	TopicsByID   map[TopicID]*Topic
	// Unreadable names topics that exist but whose metadata could not be
	// read (a znode another tool wrote, say); the broker leaves their
	// logs alone rather than take them for deleted.
	Unreadable map[string]bool
	// Version increases with every change, so a reader can tell whether
	// it holds the newest view.
	Version int64
}

// TopicSpec is a request to create a topic. Assignment, when set, gives
// the replicas of each partition explicitly; otherwise Partitions and
// ReplicationFactor are used (-1 for the broker defaults).
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Assignment        [][]int32
	Configs           map[string]string
	Internal          bool
}

// Coordinator holds the cluster metadata for one broker.
type Coordinator interface {
	// BrokerID returns this broker's id.
	BrokerID() int32

	// Snapshot returns the newest view of the cluster. It never blocks on
	// the network: an implementation returns its latest cached view.
	Snapshot() *Snapshot

	// Changed returns a channel that is closed when the metadata changes
	// after the Snapshot with the given version; the caller then takes a
	// new Snapshot and asks again. It returns an already closed channel if
	// the current version is newer.
	Changed(version int64) <-chan struct{}

	// CreateTopic creates a topic with a new TopicID and returns it. With
	// validateOnly it checks the spec (name, counts, assignment) and
	// creates nothing.
	CreateTopic(ctx context.Context, spec TopicSpec, validateOnly bool) (*Topic, error)

	// DeleteTopic removes a topic from the metadata. Brokers delete its
	// data when they see it gone.
	DeleteTopic(ctx context.Context, name string) error

	// CreatePartitions raises a topic's partition count to count, with the
	// given assignment of the new partitions (nil: the implementation
	// assigns them).
	CreatePartitions(ctx context.Context, name string, count int32, assignment [][]int32, validateOnly bool) error

	// AlterTopicConfig replaces a topic's config overrides.
	AlterTopicConfig(ctx context.Context, name string, configs map[string]string) error

	// NextProducerIDBlock reserves a block of producer ids for this broker
	// (InitProducerId): [start, start+count). Blocks never overlap, across
	// restarts and across brokers.
	NextProducerIDBlock(ctx context.Context) (start, count int64, err error)

	// Close releases the coordinator; later calls return ErrClosed.
	Close() error
}

// Registrar is implemented by the coordination of a cluster, where other
// brokers learn how to reach this one: the broker calls Register once its
// listeners are bound, with itself as clients reach it, and becomes a live
// member of the cluster (a candidate for leadership and controller).
type Registrar interface {
	Register(ctx context.Context, self Broker) error
}

// Replication is implemented by the coordination of a cluster whose
// partitions have several replicas: the leader's changes to its ISR, the
// controlled shutdown of a broker, and the reassignment of replicas.
type Replication interface {
	// AlterISR changes the in-sync replicas of a partition this broker
	// leads, as its leader at leaderEpoch, from the ISR from (the one the
	// change was computed from) to isr, which holds the leader. It is a
	// conditional write: if the partition's state names another leader
	// or leader epoch, holds another ISR than from, or changed since this
	// broker's Snapshot, it returns an error wrapping ErrStaleState and
	// changes nothing. On success it returns once this broker's Snapshot
	// shows the new ISR. The leader epoch is not changed.
	AlterISR(ctx context.Context, topic string, partition, leaderEpoch int32, from, isr []int32) error

	// ControlledShutdown prepares broker id to stop: leadership of every
	// partition it leads moves to another live in-sync replica (a new
	// leader epoch), and it leaves the ISR of every partition that has
	// another in-sync replica. The controller does it (ErrNotController
	// on another broker) and stops electing the broker until it
	// registers again. It returns the partitions the broker still leads
	// (no other replica in sync): it cannot move those.
	ControlledShutdown(ctx context.Context, id int32) (remaining []PartitionRef, err error)

	// Reassign starts moving each partition to the replicas it names,
	// online: the new replicas join, catch up and enter the ISR, then
	// leadership moves if the leader is not among them, and the old
	// replicas leave. A nil Replicas cancels the partition's
	// reassignment in progress (ErrNoReassignment if none). The result
	// has one error (nil for accepted) per request, in order.
	Reassign(ctx context.Context, reqs []Reassignment) []error
}

// PartitionRef names one partition.
type PartitionRef struct {
	Topic     string
	Partition int32
}

// Reassignment is a request to move a partition to Replicas (nil: cancel).
type Reassignment struct {
	PartitionRef
	Replicas []int32
}

// MaxTopicNameLength is the longest topic name Kafka allows: 249, so that
// a partition's directory name (name-partition) fits in 255 bytes.
const MaxTopicNameLength = 249

// ValidateTopicName checks a topic name as Kafka does: 1 to 249 characters
// of [a-zA-Z0-9._-], and not "." or "..". The error wraps ErrInvalidTopic.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > MaxTopicNameLength:
		return fmt.Errorf("%w: %d characters, the most is %d", ErrInvalidTopic, len(name), MaxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q; allowed are [a-zA-Z0-9._-]", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// TopicCollisionName is name with '.' replaced by '_': two topics whose
// collision names are equal would collide in metric names, so Kafka refuses
// to create the second.
func TopicCollisionName(name string) string { return strings.ReplaceAll(name, ".", "_") }

// CheckNewTopic checks that a topic named name may be created beside
// topics: it must not exist, and must not collide with one in metric
// names ('.' and '_').
func CheckNewTopic(name string, topics map[string]*Topic) error {
	if _, ok := topics[name]; ok {
		return fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	collision := TopicCollisionName(name)
	for other := range topics {
		if TopicCollisionName(other) == collision {
			return fmt.Errorf("%w: %s collides with existing topic %s ('.' and '_' could collide in metric names)", ErrInvalidTopic, name, other)
		}
	}
	return nil
}

// ValidateConfigs checks a topic's config overrides with validate, an
// implementation's Options.ValidateTopicConfigs; nil accepts every config.
// The error wraps both ErrInvalidConfig and validate's own error.
func ValidateConfigs(validate func(configs map[string]string) error, configs map[string]string) error {
	if validate == nil {
		return nil
	}
	if err := validate(configs); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// CloneConfigs returns a copy of a topic's config overrides that the
// caller's map cannot change; nil when there are none, so a topic without
// overrides always has nil Configs.
func CloneConfigs(configs map[string]string) map[string]string {
	if len(configs) == 0 {
		return nil
	}
	return maps.Clone(configs)
}
