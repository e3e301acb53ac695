package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/engine"
)

// offsetsLogs is group.Logs over this broker's partitions of
// __consumer_offsets: the group store appends and reads them as the
// partition's leader, by the path produced batches take.
type offsetsLogs struct{ b *Broker }

var _ group.Logs = offsetsLogs{}

// offsetsCommitTimeout is how long a write to __consumer_offsets waits for
// its in-sync replicas (Kafka's offsets.commit.timeout.ms default).
const offsetsCommitTimeout = 5 * time.Second

// CatchUp implements group.Logs.
func (l offsetsLogs) CatchUp(ctx context.Context) { l.b.parts.Sync(ctx) }

// led returns the open partition index of the topic, which this broker
// leads.
func (l offsetsLogs) led(ctx context.Context, index int32) (*partition.Partition, *partition.State, error) {
	tp := engine.TopicPartition{Topic: offsetsTopicName, Partition: index}
	p, st, err := l.b.parts.Leader(ctx, tp, -1)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", tp, err)
	}
	return p, st, nil
}

// Append implements group.Logs: as a produce request with acks=all would.
func (l offsetsLogs) Append(ctx context.Context, index int32, batch []byte) error {
	p, st, err := l.led(ctx, index)
	if err != nil {
		return err
	}
	if int64(len(batch)) > int64(st.Settings.MaxMessageBytes) {
		return kafkaerr.New(kerr.MessageTooLarge.Code, "record batch of %d bytes exceeds max.message.bytes %d of %s", len(batch), st.Settings.MaxMessageBytes, p.TP())
	}
	if int32(len(st.ISR)) < st.Settings.MinInsync {
		return kafkaerr.New(kerr.NotEnoughReplicas.Code, "%s has %d in-sync replicas, min.insync.replicas is %d", p.TP(), len(st.ISR), st.Settings.MinInsync)
	}
	pb, err := partition.NewBatch(batch)
	if err != nil {
		return err
	}
	res, err := p.Append(ctx, st, []partition.Batch{pb})
	if err != nil {
		return fmt.Errorf("%s: %w", p.TP(), err)
	}
	// Committed once the in-sync replicas have it, within Kafka's
	// offsets.commit.timeout.ms (5 s): REQUEST_TIMED_OUT after that.
	ctx, cancel := context.WithTimeout(ctx, offsetsCommitTimeout)
	defer cancel()
	return p.AwaitReplicated(ctx, res.Last, st.LeaderEpoch)
}

// Offsets implements group.Logs.
func (l offsetsLogs) Offsets(ctx context.Context, index int32) (start, end int64, err error) {
	p, _, err := l.led(ctx, index)
	if err != nil {
		return 0, 0, err
	}
	start, end = p.Log().Offsets()
	return start, end, nil
}

// Read implements group.Logs.
func (l offsetsLogs) Read(ctx context.Context, index int32, from int64, maxBytes int) (engine.Records, error) {
	p, _, err := l.led(ctx, index)
	if err != nil {
		return engine.Records{}, err
	}
	return p.Log().Read(ctx, from, maxBytes)
}
