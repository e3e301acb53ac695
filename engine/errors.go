package engine

import "errors"

// Sentinel errors. Engines wrap them with context (fmt.Errorf("mmap: %s: %w",
// tp, ErrCorrupt)); callers test them with errors.Is. The broker maps them to
// Kafka error codes; any error that wraps none of them is an I/O failure
// (KAFKA_STORAGE_ERROR).
var (
	// ErrOffsetOutOfRange: the offset is below StartOffset or above
	// EndOffset (Kafka OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("engine: offset out of range")

	// ErrClosed: the log or engine was closed (or the log deleted).
	ErrClosed = errors.New("engine: closed")

	// ErrCorrupt: stored data failed validation in a place recovery cannot
	// cut it off (a damaged sealed segment or index, a bad checkpoint).
	// Damage at the unsynced tail is not an error: recovery removes it.
	ErrCorrupt = errors.New("engine: data corrupt")

	// ErrNonContiguous: an appended batch does not start at EndOffset.
	ErrNonContiguous = errors.New("engine: batch not contiguous with the log end")

	// ErrInvalidBatch: the bytes handed to Append are not a whole v2 batch
	// that agrees with its BatchMeta.
	ErrInvalidBatch = errors.New("engine: invalid record batch")

	// ErrLogFailed: an earlier write to the log failed; the log refuses
	// writes until it is closed and opened again.
	ErrLogFailed = errors.New("engine: log failed an earlier write")

	// ErrLogOpen: OpenLog of a log that is already open.
	ErrLogOpen = errors.New("engine: log already open")

	// ErrLogNotFound: the topic-partition has no log.
	ErrLogNotFound = errors.New("engine: log not found")

	// ErrUnknownEngine: no engine is registered under the name.
	ErrUnknownEngine = errors.New("engine: unknown engine")

	// ErrInvalidOptions: an option has a value outside its range.
	ErrInvalidOptions = errors.New("engine: invalid options")
)
