package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// errPartitionUnavailable: the partition's log could not be opened (its
// topic config does not resolve, or the engine failed); reported as
// KAFKA_STORAGE_ERROR, as Kafka reports an offline log dir.
var errPartitionUnavailable = errors.New("broker: partition log unavailable")

// errorCode maps an error from an engine, the coordinator or the config to
// the Kafka error code a client sees. It is the one place where that
// mapping lives; nil maps to 0.
func errorCode(err error) int16 {
	var ke *kafkaError
	var kerrErr *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.code
	case errors.As(err, &kerrErr):
		return kerrErr.Code

	// engine
	case errors.Is(err, engine.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrLogNotFound):
		// The log was closed or deleted under the request (the topic is
		// being deleted or the broker is shutting down): the client
		// refreshes its metadata and retries.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, engine.ErrInvalidBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, engine.ErrNonContiguous),
		errors.Is(err, engine.ErrLogFailed),
		errors.Is(err, engine.ErrCorrupt),
		errors.Is(err, engine.ErrLogOpen),
		errors.Is(err, engine.ErrUnknownEngine),
		errors.Is(err, engine.ErrInvalidOptions),
		errors.Is(err, errPartitionUnavailable):
		return kerr.KafkaStorageError.Code

	// coordination
	case errors.Is(err, coordination.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, coordination.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, coordination.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, coordination.ErrInvalidReplication):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, coordination.ErrInvalidConfig), errors.Is(err, config.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, coordination.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, coordination.ErrNotController):
		return kerr.NotController.Code
	case errors.Is(err, coordination.ErrMetadataUnavailable):
		return kerr.LeaderNotAvailable.Code
	case errors.Is(err, coordination.ErrClosed):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, coordination.ErrStaleState):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, coordination.ErrNoReassignment):
		return kerr.NoReassignmentInProgress.Code

	default:
		// Any other error is an I/O failure (engine contract).
		return kerr.KafkaStorageError.Code
	}
}

// errorMessage returns err's text for the responses that carry one.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// repeated marks the entries of a request, n of them, whose key is shared
// with another entry: Kafka answers each of those INVALID_REQUEST (a topic
// or config resource named twice in one request) and serves the rest.
func repeated[K comparable](n int, key func(i int) K) []bool {
	count := make(map[K]int, n)
	for i := range n {
		count[key(i)]++
	}
	dups := make([]bool, n)
	for i := range n {
		dups[i] = count[key(i)] > 1
	}
	return dups
}
