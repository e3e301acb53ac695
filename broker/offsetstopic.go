package broker

// The group store: consumer group state kept in the internal topic
// __consumer_offsets, in Kafka's own record format, so a log written by
// Strata reads as Kafka's and the other way round.
//
// What is stored: every change the group coordinator persists, one record
// batch per Write (magic 2, uncompressed, producer id -1, CreateTime
// timestamps of the moment of writing), appended to the partition of the
// group (groupPartition: Kafka's abs(hashCode) % partitions) by the same
// path produced batches take: the partition's one appender assigns the
// offsets, fetch waiters are woken, and Write returns once the batch is
// committed (acks=all). A record's key and value are Kafka's:
//
//   - a committed offset: OffsetCommitKey version 1 (group, topic,
//     partition) and OffsetCommitValue version 3 (offset, leader epoch,
//     metadata, commit timestamp); version 1 (offset, metadata, commit
//     timestamp, expire timestamp, no leader epoch) when the commit carries
//     an expire timestamp, as Kafka writes it.
//   - a group's membership: GroupMetadataKey version 2 (group) and
//     GroupMetadataValue version 3 (protocol type, generation, protocol,
//     leader, state timestamp, members with their group instance id).
//   - a deletion: the key with a null value (a tombstone).
//
// Load replays one partition from its log start to its end at the call,
// in log order. It reads value versions 0 to 4 of both kinds (what Kafka
// 0.8.2 to 4.x writes), skips keys of other versions (the records of
// KIP-848 consumer groups, share groups and the like, versions 3 and up),
// control batches and transactional batches, and decompresses batches a
// Kafka tool may have written compressed. A batch that fails its CRC, or a
// record that does not decode, fails the load with an error naming the
// partition and offset.
//
// The topic is created by openGroupStore if it does not exist, with
// offsets.topic.num.partitions partitions, offsets.topic.replication.factor
// replicas (at most as many as there are brokers) and Kafka's configs for
// it: cleanup.policy=compact, compression.type=producer and
// segment.bytes=104857600. An existing topic is used as it is, with the
// partition count it has, as Kafka does; the count is read once, so
// partitions added to it later are not used until a restart (and move
// groups, as they would in Kafka).
//
// Left out: log compaction. Nothing cleans the topic yet, so it grows with
// every commit and a load replays it whole; Kafka's log cleaner keeps only
// the newest record of each key (and drops tombstones after
// delete.retention.ms), which is what will bound both. Transactional offset
// commits (TxnOffsetCommit) are neither written nor loaded.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// The key and value versions written, and the newest value versions read.
const (
	offsetCommitKeyVersion         = 1
	groupMetadataKeyVersion        = 2
	offsetCommitValueVersion       = 3
	offsetCommitValueExpireVersion = 1 // the one version with an expire timestamp
	groupMetadataValueVersion      = 3
	maxOffsetCommitValueVersion    = 4
	maxGroupMetadataValueVersion   = 4
)

const (
	// offsetsTopicSegmentBytes is Kafka's offsets.topic.segment.bytes
	// default.
	offsetsTopicSegmentBytes = 104857600
	// loadReadBytes is how much one read of a load asks for (Kafka's
	// offsets.load.buffer.size default).
	loadReadBytes = 5 << 20
)

// isInternalTopic reports whether name is a topic the broker manages
// itself, which clients may read but not write or delete. Kafka decides
// by the name alone, so a __consumer_offsets created before it was marked
// internal is internal too.
func isInternalTopic(name string) bool { return name == offsetsTopicName }

// offsetsTopicStore is the groupStore over __consumer_offsets.
type offsetsTopicStore struct {
	b *Broker
	// n is the topic's partition count when the store first saw it; 0
	// while a cluster has not created the topic yet.
	n atomic.Int32
}

var _ groupStore = (*offsetsTopicStore)(nil)

// openGroupStore returns the broker's group store, creating
// __consumer_offsets if it does not exist yet, and opens the logs of the
// topic's partitions this broker holds before it returns. In a cluster the
// topic is created later, when the first group needs a coordinator
// (FindCoordinator), as Kafka does, so its partitions spread over the
// brokers up by then.
func (b *Broker) openGroupStore(ctx context.Context) (groupStore, error) {
	s := &offsetsTopicStore{b: b}
	t := b.coord.Snapshot().Topics[offsetsTopicName]
	if _, cluster := b.coord.(coordination.Registrar); t == nil && !cluster {
		var err error
		if t, err = b.ensureOffsetsTopic(ctx); err != nil {
			return nil, err
		}
	}
	if t != nil {
		b.parts.sync(ctx)
		s.found(t)
	}
	return s, nil
}

// found records the partition count of the topic, the first time.
func (s *offsetsTopicStore) found(t *coordination.Topic) {
	n := int32(len(t.Partitions))
	if !s.n.CompareAndSwap(0, n) {
		return
	}
	if want := s.b.cfg.OffsetsTopicNumPartitions; want != n {
		s.b.log.Info("using the existing partition count of the offsets topic",
			"topic", offsetsTopicName, "partitions", n, "offsets.topic.num.partitions", want)
	}
}

// ensureOffsetsTopic returns __consumer_offsets as the newest snapshot
// holds it, creating the topic first if it is missing.
func (b *Broker) ensureOffsetsTopic(ctx context.Context) (*coordination.Topic, error) {
	snap := b.coord.Snapshot()
	if t := snap.Topics[offsetsTopicName]; t != nil {
		return t, nil
	}
	n, rf := b.cfg.OffsetsTopicNumPartitions, b.cfg.OffsetsTopicReplicationFactor
	if brokers := len(snap.Brokers); brokers > 0 && int(rf) > brokers {
		if _, cluster := b.coord.(coordination.Registrar); cluster {
			// As Kafka: the topic waits for enough brokers, and
			// FindCoordinator answers COORDINATOR_NOT_AVAILABLE.
			return nil, kafkaerr.New(kerr.CoordinatorNotAvailable.Code, "%d brokers are up; %s needs offsets.topic.replication.factor=%d", brokers, offsetsTopicName, rf)
		}
		b.log.Warn("fewer brokers than offsets.topic.replication.factor; creating the offsets topic with fewer replicas",
			"topic", offsetsTopicName, "offsets.topic.replication.factor", rf, "brokers", brokers)
		rf = int16(brokers)
	}
	spec := coordination.TopicSpec{
		Name:              offsetsTopicName,
		Partitions:        n,
		ReplicationFactor: rf,
		Internal:          true,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "producer",
			"segment.bytes":    strconv.Itoa(offsetsTopicSegmentBytes),
		},
	}
	_, err := b.coord.CreateTopic(ctx, spec, false)
	switch {
	case err == nil:
		b.log.Info("created topic", "topic", offsetsTopicName, "partitions", n, "replication_factor", rf)
	case errors.Is(err, coordination.ErrTopicExists):
		// Another broker created it meanwhile.
	default:
		return nil, fmt.Errorf("broker: creating %s: %w", offsetsTopicName, err)
	}
	// The snapshot may trail the creation (a cluster's coordination
	// learns of it through a watch): wait until it shows the topic.
	for {
		snap := b.coord.Snapshot()
		if t := snap.Topics[offsetsTopicName]; t != nil {
			return t, nil
		}
		select {
		case <-b.coord.Changed(snap.Version):
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: waiting for %s to appear in the metadata: %w", offsetsTopicName, ctx.Err())
		}
	}
}

// Partitions implements groupStore.
func (s *offsetsTopicStore) Partitions() int32 { return s.n.Load() }

// partition returns the open partition index of the topic that this
// broker leads.
func (s *offsetsTopicStore) partition(ctx context.Context, index int32) (*partition, *partState, error) {
	tp := engine.TopicPartition{Topic: offsetsTopicName, Partition: index}
	if n := s.n.Load(); index < 0 || index >= n {
		return nil, nil, kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "%s has %d partitions, not %d", offsetsTopicName, n, index+1)
	}
	p := s.b.parts.get(ctx, tp)
	if p == nil {
		return nil, nil, kafkaerr.New(s.b.missingPartitionCode(tp), "partition %s is not on this broker", tp)
	}
	if p.openErr != nil {
		return nil, nil, p.openErr
	}
	st := p.state.Load()
	if !st.leader {
		return nil, nil, kafkaerr.New(kerr.NotLeaderForPartition.Code, "this broker does not lead %s", tp)
	}
	return p, st, nil
}

// Write implements groupStore. Its errors carry the Kafka code errorCode
// finds: NOT_LEADER_OR_FOLLOWER and UNKNOWN_TOPIC_OR_PARTITION when this
// broker does not lead the partition, NOT_ENOUGH_REPLICAS below
// min.insync.replicas, MESSAGE_TOO_LARGE above max.message.bytes,
// KAFKA_STORAGE_ERROR when the log fails.
func (s *offsetsTopicStore) Write(ctx context.Context, group string, recs []groupRecord) error {
	if len(recs) == 0 {
		return nil
	}
	batch, err := encodeGroupBatch(recs, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("broker: group %q: %w", group, err)
	}
	n := s.n.Load()
	if n == 0 {
		return kafkaerr.New(kerr.CoordinatorNotAvailable.Code, "%s does not exist yet", offsetsTopicName)
	}
	if err := s.appendBatch(ctx, groupPartition(group, n), batch); err != nil {
		return fmt.Errorf("broker: writing group %q: %w", group, err)
	}
	return nil
}

// appendBatch appends one encoded batch to partition index as a produce
// request with acks=all would, and returns once it is committed.
func (s *offsetsTopicStore) appendBatch(ctx context.Context, index int32, batch []byte) error {
	p, st, err := s.partition(ctx, index)
	if err != nil {
		return err
	}
	if int64(len(batch)) > int64(st.settings.maxMessageBytes) {
		return kafkaerr.New(kerr.MessageTooLarge.Code, "record batch of %d bytes exceeds max.message.bytes %d of %s", len(batch), st.settings.maxMessageBytes, p.tp)
	}
	if int32(len(st.isr)) < st.settings.minInsync {
		return kafkaerr.New(kerr.NotEnoughReplicas.Code, "%s has %d in-sync replicas, min.insync.replicas is %d", p.tp, len(st.isr), st.settings.minInsync)
	}
	h, err := engine.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	appendTime := int64(-1)
	if st.settings.logAppendTime {
		appendTime = time.Now().UnixMilli()
	}
	res, err := p.append(ctx, []inBatch{{b: batch, h: h}}, st.leaderEpoch, appendTime, s.b.producerClock())
	if err != nil {
		return fmt.Errorf("%s: %w", p.tp, err)
	}
	// Committed once the in-sync replicas have it, within Kafka's
	// offsets.commit.timeout.ms (5 s): REQUEST_TIMED_OUT after that.
	ctx, cancel := context.WithTimeout(ctx, offsetsCommitTimeout)
	defer cancel()
	return p.awaitReplicated(ctx, res.last, st.leaderEpoch)
}

// offsetsCommitTimeout is how long a write to __consumer_offsets waits for
// its in-sync replicas (Kafka's offsets.commit.timeout.ms default).
const offsetsCommitTimeout = 5 * time.Second

// Load implements groupStore.
func (s *offsetsTopicStore) Load(ctx context.Context, index int32, h groupLoader) error {
	p, _, err := s.partition(ctx, index)
	if err != nil {
		return err
	}
	start, end := p.log.Offsets()
	for pos := start; pos < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := p.log.Read(ctx, pos, loadReadBytes)
		if err != nil {
			return fmt.Errorf("broker: loading %s at offset %d: %w", p.tp, pos, err)
		}
		if recs.Empty() {
			recs.Release()
			return fmt.Errorf("broker: loading %s: the log ends at %d, before %d", p.tp, pos, end)
		}
		next := recs.NextOffset
		err = replayChunks(p.tp, recs.Chunks, pos, start, end, h)
		recs.Release()
		if err != nil {
			return err
		}
		pos = next
	}
	return nil
}

// replayChunks hands h the records of the batches in chunks, read from
// offset at, whose offsets are in [from, to), in order. Nothing h receives
// refers to chunks.
func replayChunks(tp engine.TopicPartition, chunks [][]byte, at, from, to int64, h groupLoader) error {
	for _, c := range chunks {
		for len(c) > 0 {
			bh, err := engine.CheckBatch(c)
			if err != nil {
				return fmt.Errorf("broker: loading %s: the batch at offset %d: %w", tp, at, err)
			}
			at = bh.LastOffset() + 1
			batch := c[:bh.Size()]
			c = c[bh.Size():]
			if bh.BaseOffset >= to {
				return nil
			}
			if bh.LastOffset() < from || bh.Attributes&(engine.AttrControl|engine.AttrTransactional) != 0 {
				continue
			}
			err = eachRecord(batch, bh, func(offset int64, rec *kmsg.Record) error {
				if offset < from || offset >= to {
					return nil
				}
				gr, ok, err := decodeGroupRecord(rec.Key, rec.Value)
				switch {
				case err != nil:
					return fmt.Errorf("broker: loading %s: the record at offset %d: %w", tp, offset, err)
				case !ok:
					return nil
				case gr.Offset != nil:
					h.loadedOffset(*gr.Offset)
				default:
					h.loadedGroup(*gr.Group)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// eachRecord calls fn with every record of a whole, checked batch and its
// offset, decompressing the batch first if it is compressed. The records
// may refer to batch.
func eachRecord(batch []byte, h engine.BatchHeader, fn func(offset int64, rec *kmsg.Record) error) error {
	payload := batch[engine.BatchHeaderSize:]
	if codec := h.Attributes & engine.AttrCompressionMask; codec != 0 {
		var err error
		if payload, err = decompressor.Decompress(payload, kgo.CompressionCodecType(codec)); err != nil {
			return fmt.Errorf("broker: decompressing the batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := kbin.Varint(payload)
		if n == 0 || length < 0 || int(length) > len(payload)-n {
			return fmt.Errorf("%w: record %d of the batch at offset %d is malformed", engine.ErrInvalidBatch, i, h.BaseOffset)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(payload[:n+int(length)]); err != nil {
			return fmt.Errorf("%w: record %d of the batch at offset %d: %v", engine.ErrInvalidBatch, i, h.BaseOffset, err)
		}
		payload = payload[n+int(length):]
		if err := fn(h.BaseOffset+int64(rec.OffsetDelta), &rec); err != nil {
			return err
		}
	}
	return nil
}

// encodeGroupBatch encodes recs as one v2 record batch: offsets from 0
// (the appender assigns the real ones), every timestamp now, no producer
// id, no compression, and the CRC-32C over attributes to the end.
func encodeGroupBatch(recs []groupRecord, now int64) ([]byte, error) {
	var payload, scratch []byte
	for i, r := range recs {
		key, value, err := encodeGroupRecord(r)
		if err != nil {
			return nil, err
		}
		rec := kmsg.Record{OffsetDelta: int32(i), Key: key, Value: value}
		// Length counts what follows it: encode once with a length of 0
		// (one varint byte) to learn it.
		scratch = rec.AppendTo(scratch[:0])
		rec.Length = int32(len(scratch) - 1)
		payload = rec.AppendTo(payload)
	}
	rb := kmsg.RecordBatch{
		Length:               int32(engine.BatchHeaderSize - engine.BatchLengthOverhead + len(payload)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              payload,
	}
	b := rb.AppendTo(make([]byte, 0, engine.BatchHeaderSize+len(payload)))
	engine.PutChecksum(b)
	return b, nil
}

// encodeGroupRecord returns the key and value of one record of
// __consumer_offsets; the value is nil for a tombstone.
func encodeGroupRecord(r groupRecord) (key, value []byte, err error) {
	switch {
	case r.Offset != nil && r.Group == nil:
		o := r.Offset
		k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: o.Group, Topic: o.Topic, Partition: o.Partition}
		key = k.AppendTo(nil)
		if o.Delete {
			return key, nil, nil
		}
		v := kmsg.OffsetCommitValue{
			Version:         offsetCommitValueVersion,
			Offset:          o.Offset,
			LeaderEpoch:     o.LeaderEpoch,
			Metadata:        o.Metadata,
			CommitTimestamp: o.CommitTimestamp,
		}
		if o.ExpireTimestamp != -1 {
			v.Version, v.ExpireTimestamp = offsetCommitValueExpireVersion, o.ExpireTimestamp
		}
		return key, v.AppendTo(nil), nil

	case r.Group != nil && r.Offset == nil:
		g := r.Group
		k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: g.Group}
		key = k.AppendTo(nil)
		if g.Delete {
			return key, nil, nil
		}
		v := kmsg.GroupMetadataValue{
			Version:               groupMetadataValueVersion,
			ProtocolType:          g.ProtocolType,
			Generation:            g.Generation,
			Protocol:              storeNullable(g.Protocol),
			Leader:                storeNullable(g.Leader),
			CurrentStateTimestamp: g.StateTimestamp,
			Members:               make([]kmsg.GroupMetadataValueMember, len(g.Members)),
		}
		for i, m := range g.Members {
			v.Members[i] = kmsg.GroupMetadataValueMember{
				MemberID:               m.MemberID,
				InstanceID:             storeNullable(m.InstanceID),
				ClientID:               m.ClientID,
				ClientHost:             m.ClientHost,
				RebalanceTimeoutMillis: m.RebalanceTimeout,
				SessionTimeoutMillis:   m.SessionTimeout,
				Subscription:           m.Subscription,
				Assignment:             m.Assignment,
			}
		}
		return key, v.AppendTo(nil), nil

	default:
		return nil, nil, errors.New("a group record needs exactly one of Offset and Group")
	}
}

// decodeGroupRecord decodes one record of __consumer_offsets. ok is false
// for a key version this broker does not know, which is skipped. The
// result shares no memory with key and value.
func decodeGroupRecord(key, value []byte) (r groupRecord, ok bool, err error) {
	if key == nil {
		return r, false, errors.New("record without a key")
	}
	if len(key) < 2 {
		return r, false, fmt.Errorf("key of %d bytes, too short for a version", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return r, false, fmt.Errorf("offset commit key: %w", err)
		}
		o := &offsetRecord{Group: k.Group, Topic: k.Topic, Partition: k.Partition, LeaderEpoch: -1, ExpireTimestamp: -1}
		r.Offset = o
		if value == nil {
			o.Delete = true
			return r, true, nil
		}
		if err := checkValueVersion(value, maxOffsetCommitValueVersion); err != nil {
			return r, false, fmt.Errorf("offset commit value: %w", err)
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return r, false, fmt.Errorf("offset commit value version %d: %w", v.Version, err)
		}
		o.Offset, o.Metadata, o.CommitTimestamp = v.Offset, v.Metadata, v.CommitTimestamp
		if v.Version >= 3 {
			o.LeaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			o.ExpireTimestamp = v.ExpireTimestamp
		}
		return r, true, nil

	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return r, false, fmt.Errorf("group metadata key: %w", err)
		}
		g := &groupMetaRecord{Group: k.Group}
		r.Group = g
		if value == nil {
			g.Delete = true
			return r, true, nil
		}
		if err := checkValueVersion(value, maxGroupMetadataValueVersion); err != nil {
			return r, false, fmt.Errorf("group metadata value: %w", err)
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return r, false, fmt.Errorf("group metadata value version %d: %w", v.Version, err)
		}
		g.ProtocolType, g.Generation = v.ProtocolType, v.Generation
		g.Protocol, g.Leader = storeString(v.Protocol), storeString(v.Leader)
		g.StateTimestamp = -1
		if v.Version >= 2 {
			g.StateTimestamp = v.CurrentStateTimestamp
		}
		g.Members = make([]memberRecord, len(v.Members))
		for i, m := range v.Members {
			rebalance := m.RebalanceTimeoutMillis
			if v.Version == 0 {
				rebalance = m.SessionTimeoutMillis // Kafka's reading of version 0
			}
			g.Members[i] = memberRecord{
				MemberID:         m.MemberID,
				InstanceID:       storeString(m.InstanceID),
				ClientID:         m.ClientID,
				ClientHost:       m.ClientHost,
				RebalanceTimeout: rebalance,
				SessionTimeout:   m.SessionTimeoutMillis,
				// kmsg's bytes alias the input; the input is the
				// engine's memory, released after the load.
				Subscription: slices.Clone(m.Subscription),
				Assignment:   slices.Clone(m.Assignment),
			}
		}
		return r, true, nil

	default:
		return r, false, nil
	}
}

// checkValueVersion checks that a value's leading version is one kmsg
// decodes as Kafka wrote it.
func checkValueVersion(value []byte, newest int16) error {
	if len(value) < 2 {
		return fmt.Errorf("%d bytes, too short for a version", len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 || v > newest {
		return fmt.Errorf("unknown version %d (known: 0 to %d)", v, newest)
	}
	return nil
}

func storeNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func storeString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
