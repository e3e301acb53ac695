// Package kafkaerr is the one mapping of errors to the Kafka error codes
// clients see, and the error type for failures the broker detects itself.
//
// It is a leaf of the broker's internal packages, not part of the broker
// root, because the subsystems answer with Kafka codes too (a producer
// check, the group store) and never import the root.
package kafkaerr

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// Error is an error that carries its Kafka error code.
type Error struct {
	Code int16
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// New returns an *Error with code and a formatted message.
func New(code int16, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrPartitionUnavailable: the partition's log could not be opened (its
// topic config does not resolve, or the engine failed); reported as
// KAFKA_STORAGE_ERROR, as Kafka reports an offline log dir.
var ErrPartitionUnavailable = errors.New("broker: partition log unavailable")

// Code maps an error from an engine, the coordinator or the config to the
// Kafka error code a client sees; nil maps to 0.
func Code(err error) int16 {
	switch e := err.(type) {
	case nil:
		return 0
	case *Error: // the common case, without errors.As's allocations
		return e.Code
	}
	var ke *Error
	var kerrErr *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
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
		errors.Is(err, ErrPartitionUnavailable):
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

// Message returns err's text for the responses that carry one.
func Message(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
