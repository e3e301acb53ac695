// Package grouptest holds what the tests of the group coordinator and of
// the broker share: Logs, an in-memory group.Logs (the Logs contract in
// its simplest form); Metadata, a cluster of one broker that leads every
// partition of __consumer_offsets; a Loader that records what a load
// replays; and sample records.
package grouptest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// Logs is an in-memory group.Logs: the partitions of __consumer_offsets
// as lists of batches, all led by this broker, none replicated (Append
// returns at once). The zero value has no partitions; NewLogs makes some.
type Logs struct {
	mu    sync.Mutex
	parts []memLog
}

type memLog struct {
	batches [][]byte // offsets assigned, in order
	end     int64
}

var _ group.Logs = (*Logs)(nil)

// NewLogs returns Logs with the given number of empty partitions.
func NewLogs(partitions int32) *Logs { return &Logs{parts: make([]memLog, partitions)} }

func (l *Logs) log(partition int32) (*memLog, error) {
	if partition < 0 || int(partition) >= len(l.parts) {
		return nil, kafkaerr.New(kerr.UnknownTopicOrPartition.Code, "%s-%d does not exist", group.TopicName, partition)
	}
	return &l.parts[partition], nil
}

// CatchUp implements group.Logs: there is nothing to catch up with.
func (l *Logs) CatchUp(context.Context) {}

// Append implements group.Logs: it assigns the batch its base offset and
// keeps it.
func (l *Logs) Append(_ context.Context, partition int32, batch []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.log(partition)
	if err != nil {
		return err
	}
	h, err := engine.CheckBatch(batch)
	if err != nil {
		return fmt.Errorf("grouptest: append to %s-%d: %w", group.TopicName, partition, err)
	}
	binary.BigEndian.PutUint64(batch, uint64(m.end))
	m.batches = append(m.batches, batch[:h.Size()])
	m.end += int64(h.LastOffsetDelta) + 1
	return nil
}

// Offsets implements group.Logs; every log starts at 0.
func (l *Logs) Offsets(_ context.Context, partition int32) (start, end int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.log(partition)
	if err != nil {
		return 0, 0, err
	}
	return 0, m.end, nil
}

// Read implements group.Logs, one batch a chunk. The chunks are the log's
// own memory: read-only, valid for good.
func (l *Logs) Read(_ context.Context, partition int32, from int64, maxBytes int) (engine.Records, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.log(partition)
	if err != nil {
		return engine.Records{}, err
	}
	if from < 0 {
		return engine.Records{}, engine.ErrOffsetOutOfRange
	}
	recs := engine.Records{NextOffset: from}
	size := 0
	for _, b := range m.batches {
		h, _ := engine.ParseBatchHeader(b)
		if h.LastOffset() < from {
			continue
		}
		if len(recs.Chunks) > 0 && size+len(b) > maxBytes {
			break
		}
		recs.Chunks = append(recs.Chunks, b)
		recs.NextOffset = h.LastOffset() + 1
		size += len(b)
	}
	return recs, nil
}

// Metadata is the cluster metadata of one broker (id 0) that leads every
// partition of __consumer_offsets, which exists from the start: what
// group.OpenStore and group.New need of a coordination.Coordinator. Its
// other methods are not implemented.
type Metadata struct {
	coordination.Coordinator
	snap *coordination.Snapshot
}

// NewMetadata returns the metadata of a __consumer_offsets of the given
// number of partitions.
func NewMetadata(partitions int32) *Metadata {
	snap := &coordination.Snapshot{ControllerID: 0, Brokers: []coordination.Broker{{ID: 0, Host: "localhost", Port: 9092}},
		Topics: map[string]*coordination.Topic{}, Version: 1}
	m := (&Metadata{snap: snap}).WithTopic(group.TopicName, partitions)
	m.snap.Topics[group.TopicName].Internal = true
	return m
}

// WithTopic adds a topic of the given number of partitions, led by this
// broker, for the commits to name; call it before the metadata is used.
func (m *Metadata) WithTopic(name string, partitions int32) *Metadata {
	t := &coordination.Topic{Name: name}
	for p := range partitions {
		t.Partitions = append(t.Partitions, coordination.Partition{Index: p, Leader: 0, Replicas: []int32{0}, ISR: []int32{0}})
	}
	m.snap.Topics[name] = t
	return m
}

// BrokerID implements coordination.Coordinator.
func (m *Metadata) BrokerID() int32 { return 0 }

// Snapshot implements coordination.Coordinator: the metadata never
// changes.
func (m *Metadata) Snapshot() *coordination.Snapshot { return m.snap }

// Changed implements coordination.Coordinator: nothing changes after the
// first snapshot.
func (m *Metadata) Changed(version int64) <-chan struct{} {
	if version < m.snap.Version {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return nil // blocks forever in a select
}

// Loader is a group.Loader that keeps what a load replays, in order.
type Loader struct{ Records []group.Record }

// LoadedOffset implements group.Loader.
func (l *Loader) LoadedOffset(r group.OffsetRecord) {
	l.Records = append(l.Records, group.Record{Offset: &r})
}

// LoadedGroup implements group.Loader.
func (l *Loader) LoadedGroup(r group.GroupRecord) {
	l.Records = append(l.Records, group.Record{Group: &r})
}

// SampleGroup is a group record of two members, one of them static.
func SampleGroup(id string, generation int32) group.GroupRecord {
	return group.GroupRecord{
		Group: id, ProtocolType: "consumer", Generation: generation, Protocol: "cooperative-sticky",
		Leader: "m-1", StateTimestamp: 1700000000123,
		Members: []group.MemberRecord{
			{MemberID: "m-1", InstanceID: "static-1", ClientID: "c1", ClientHost: "/127.0.0.1",
				RebalanceTimeout: 60000, SessionTimeout: 45000, Subscription: []byte{0, 3, 1}, Assignment: []byte{0, 3, 2}},
			{MemberID: "m-2", ClientID: "c2", ClientHost: "/10.0.0.2",
				RebalanceTimeout: 30000, SessionTimeout: 10000, Subscription: []byte{}, Assignment: []byte{}},
		},
	}
}

// SampleOffset is an offset record with a leader epoch and metadata.
func SampleOffset(id, topic string, partition int32, offset int64) group.OffsetRecord {
	return group.OffsetRecord{Group: id, Topic: topic, Partition: partition, Offset: offset,
		LeaderEpoch: 7, Metadata: "meta", CommitTimestamp: 1700000000456, ExpireTimestamp: -1}
}
