package group

// The Store over __consumer_offsets: one batch per Write, appended through
// Logs; a Load replays a partition from its start to its end.

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// Logs is how the offsets store reaches the partitions of
// __consumer_offsets on this broker. The broker implements it over its
// partitions; partition is an index of the topic the caller has checked
// against its partition count. Every method may block on I/O and ends
// with ctx.
type Logs interface {
	// CatchUp applies the newest cluster metadata to the broker's
	// partitions: a partition this broker has come to lead is then open
	// as its leader.
	CatchUp(ctx context.Context)

	// Append appends one v2 batch (offsets from 0, whole, with its CRC)
	// to partition as its leader appends an acks=all produce: it assigns
	// the offsets in place (and the leader epoch, and for a
	// LogAppendTime topic the timestamp and CRC), so batch is the
	// caller's no more. It returns once the in-sync replicas have the
	// batch, or REQUEST_TIMED_OUT after offsets.commit.timeout.ms (5 s).
	// Errors carry Kafka codes (kafkaerr.Code): NOT_LEADER_OR_FOLLOWER
	// or UNKNOWN_TOPIC_OR_PARTITION when this broker does not lead the
	// partition (or leadership moves before the batch is committed),
	// NOT_ENOUGH_REPLICAS below min.insync.replicas (nothing appended),
	// MESSAGE_TOO_LARGE above max.message.bytes (nothing appended),
	// KAFKA_STORAGE_ERROR when the log fails, REQUEST_TIMED_OUT.
	Append(ctx context.Context, partition int32, batch []byte) error

	// Offsets returns the log start and end (the next offset to assign)
	// of a partition this broker leads: the records are [start, end).
	// Errors as Append's for a partition it does not lead.
	Offsets(ctx context.Context, partition int32) (start, end int64, err error)

	// Read reads a partition this broker leads as engine.Log.Read does:
	// whole batches from the one holding from, at least one even if it
	// exceeds maxBytes, none at the end, engine.ErrOffsetOutOfRange
	// below the start. The caller owns the Records and releases them.
	Read(ctx context.Context, partition int32, from int64, maxBytes int) (engine.Records, error)
}

// StoreOptions configure the Store over __consumer_offsets (OpenStore).
type StoreOptions struct {
	// Config holds offsets.topic.num.partitions and
	// offsets.topic.replication.factor, which a new __consumer_offsets
	// gets.
	Config config.Config
	// Coordinator holds the cluster metadata, where the topic is found
	// or created.
	Coordinator coordination.Coordinator
	// Logs reaches the topic's partitions on this broker.
	Logs Logs
	// Logger receives the store's logs. Default: slog.Default().
	Logger *slog.Logger
}

// loadReadBytes is how much one read of a load asks for (Kafka's
// offsets.load.buffer.size default).
const loadReadBytes = 5 << 20

// offsetStore is the Store over __consumer_offsets.
type offsetStore struct {
	logs Logs
	log  *slog.Logger
	want int32 // offsets.topic.num.partitions
	// n is the topic's partition count when the store first saw it; 0
	// while a cluster has not created the topic yet.
	n atomic.Int32
}

var _ Store = (*offsetStore)(nil)

// OpenStore returns the Store over __consumer_offsets, creating the topic
// if it does not exist yet, and opens the logs of the topic's partitions
// this broker holds before it returns. In a cluster (the coordinator is a
// coordination.Registrar) the topic is created later, when the first
// group needs a coordinator (FindCoordinator), as Kafka does, so its
// partitions spread over the brokers up by then.
func OpenStore(ctx context.Context, opts StoreOptions) (Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &offsetStore{logs: opts.Logs, log: opts.Logger, want: opts.Config.OffsetsTopicNumPartitions}
	t := opts.Coordinator.Snapshot().Topics[TopicName]
	if _, cluster := opts.Coordinator.(coordination.Registrar); t == nil && !cluster {
		var err error
		if t, err = ensureTopic(ctx, opts.Coordinator, &opts.Config, opts.Logger); err != nil {
			return nil, err
		}
	}
	if t != nil {
		opts.Logs.CatchUp(ctx)
		s.found(t)
	}
	return s, nil
}

// found records the partition count of the topic, the first time.
func (s *offsetStore) found(t *coordination.Topic) {
	n := int32(len(t.Partitions))
	if !s.n.CompareAndSwap(0, n) {
		return
	}
	if s.want != n {
		s.log.Info("using the existing partition count of the offsets topic",
			"topic", TopicName, "partitions", n, "offsets.topic.num.partitions", s.want)
	}
}

// Partitions implements Store.
func (s *offsetStore) Partitions() int32 { return s.n.Load() }

// topicPartition checks index against the partition count.
func (s *offsetStore) topicPartition(index int32) (engine.TopicPartition, error) {
	tp := engine.TopicPartition{Topic: TopicName, Partition: index}
	if n := s.n.Load(); index < 0 || index >= n {
		return tp, kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "%s has %d partitions, not %d", TopicName, n, index+1)
	}
	return tp, nil
}

// Write implements Store.
func (s *offsetStore) Write(ctx context.Context, group string, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	batch, err := EncodeBatch(recs, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("group: group %q: %w", group, err)
	}
	n := s.n.Load()
	if n == 0 {
		return kafkaerr.New(kerr.CoordinatorNotAvailable.Code, "%s does not exist yet", TopicName)
	}
	if err := s.logs.Append(ctx, PartitionFor(group, n), batch); err != nil {
		return fmt.Errorf("group: writing group %q: %w", group, err)
	}
	return nil
}

// Load implements Store.
func (s *offsetStore) Load(ctx context.Context, index int32, l Loader) error {
	tp, err := s.topicPartition(index)
	if err != nil {
		return err
	}
	s.logs.CatchUp(ctx)
	start, end, err := s.logs.Offsets(ctx, index)
	if err != nil {
		return err
	}
	for pos := start; pos < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := s.logs.Read(ctx, index, pos, loadReadBytes)
		if err != nil {
			return fmt.Errorf("group: loading %s at offset %d: %w", tp, pos, err)
		}
		if recs.Empty() {
			recs.Release()
			return fmt.Errorf("group: loading %s: the log ends at %d, before %d", tp, pos, end)
		}
		next := recs.NextOffset
		err = replayChunks(tp, recs.Chunks, pos, start, end, l)
		recs.Release()
		if err != nil {
			return err
		}
		pos = next
	}
	return nil
}
