package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/kafkaerr"
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
func (l offsetsLogs) CatchUp(ctx context.Context) { l.b.parts.sync(ctx) }

// led returns the open partition index of the topic, which this broker
// leads.
func (l offsetsLogs) led(ctx context.Context, index int32) (*partition, *partState, error) {
	tp := engine.TopicPartition{Topic: offsetsTopicName, Partition: index}
	p := l.b.parts.get(ctx, tp)
	if p == nil {
		return nil, nil, kafkaerr.New(l.b.missingPartitionCode(tp), "partition %s is not on this broker", tp)
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

// Append implements group.Logs: as a produce request with acks=all would.
func (l offsetsLogs) Append(ctx context.Context, index int32, batch []byte) error {
	p, st, err := l.led(ctx, index)
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
	res, err := p.append(ctx, []inBatch{{b: batch, h: h}}, st.leaderEpoch, appendTime, l.b.producerClock())
	if err != nil {
		return fmt.Errorf("%s: %w", p.tp, err)
	}
	// Committed once the in-sync replicas have it, within Kafka's
	// offsets.commit.timeout.ms (5 s): REQUEST_TIMED_OUT after that.
	ctx, cancel := context.WithTimeout(ctx, offsetsCommitTimeout)
	defer cancel()
	return p.awaitReplicated(ctx, res.last, st.leaderEpoch)
}

// Offsets implements group.Logs.
func (l offsetsLogs) Offsets(ctx context.Context, index int32) (start, end int64, err error) {
	p, _, err := l.led(ctx, index)
	if err != nil {
		return 0, 0, err
	}
	start, end = p.log.Offsets()
	return start, end, nil
}

// Read implements group.Logs.
func (l offsetsLogs) Read(ctx context.Context, index int32, from int64, maxBytes int) (engine.Records, error) {
	p, _, err := l.led(ctx, index)
	if err != nil {
		return engine.Records{}, err
	}
	return p.log.Read(ctx, from, maxBytes)
}
