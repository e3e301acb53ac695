// Package engine is the storage contract of Strata: the one interface every
// storage engine implements, so the broker can keep partition logs in
// memory-mapped segment files, an LSM store, a tiered store or an
// out-of-process plugin without knowing which.
//
// # The unit of storage
//
// A [Log] stores the record batches (Kafka message format v2, "magic 2") of
// one topic-partition. The broker has already validated each batch and
// assigned its offsets by patching the batch header; it hands the engine the
// batch bytes together with a [BatchMeta] (base offset, last offset, max
// timestamp, record count), so an engine never parses individual records.
// Engines store the bytes as they came and return them byte for byte.
//
// # Offsets
//
// A log holds the offsets in the half-open range [StartOffset, EndOffset).
// EndOffset is the offset the next appended batch must start at. A new log
// has StartOffset == EndOffset == 0. Batches are contiguous: the base offset
// of every batch is the last offset of the previous one plus one, so the log
// never has a gap in the offsets it holds. StartOffset may point inside a
// batch (after [Log.DeleteBefore]); the whole batch is still returned by reads.
//
// # Concurrency
//
// One goroutine appends to a log at a time (the broker serialises appends,
// truncation and deletion of one partition); any number of goroutines may
// call Read, Offsets and OffsetForTime concurrently with each other and with
// the appender. A reader sees a prefix of what has been appended: once
// Append returns, every later Read sees the batch.
//
// # Durability
//
// Append returns once the batch is in the engine's write path; it is not
// necessarily durable. [Log.Sync] makes everything appended before it durable.
// The flush policy in [LogOptions] (flush.messages, flush.ms) makes the engine
// sync on its own. After a crash (process kill, power loss), reopening yields
// a prefix of what was appended: never a torn or corrupt batch, never a gap,
// and never less than what was synced.
//
// # Errors
//
// Every error an engine returns that has a meaning the broker acts on wraps
// one of the sentinel errors of this package (ErrOffsetOutOfRange, ErrClosed,
// ...) so errors.Is works across wrapping; the broker maps them to Kafka error
// codes in one place. Any other error is an I/O failure and maps to
// KAFKA_STORAGE_ERROR.
//
// # Engines by name
//
// Engines register an [OpenFunc] under a name in an init function
// ([Register]); the broker opens the engine that log.engine names with
// [Open], so it never imports a concrete engine.
package engine

import (
	"context"
	"fmt"
)

// TopicPartition names one partition log.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// BatchMeta describes one record batch handed to [Log.Append]. The broker
// derives it from the batch header, so it always agrees with the bytes; the
// engine keeps it so it can answer offset and time queries without parsing.
type BatchMeta struct {
	// BaseOffset is the offset of the first record (bytes 0..8 of the batch).
	BaseOffset int64
	// LastOffset is BaseOffset + lastOffsetDelta: the offset of the last
	// record. LastOffset >= BaseOffset.
	LastOffset int64
	// MaxTimestamp is the batch's max timestamp in milliseconds since the
	// epoch (the header's maxTimestamp; the append time for LogAppendTime
	// topics).
	MaxTimestamp int64
	// RecordCount is the number of records in the batch. It may be smaller
	// than LastOffset-BaseOffset+1 after compaction.
	RecordCount int32
}

// Engine opens, lists and deletes the logs of the topic-partitions it holds
// under one directory. It is safe for concurrent use.
type Engine interface {
	// OpenLog opens the log of tp, creating an empty one if it does not
	// exist. Zero fields of opts take the engine's defaults (Options.Log).
	// A log is open at most once at a time: opening a log that is already
	// open returns an error wrapping ErrLogOpen. After Close the log can be
	// opened again (which is how a log that failed a write is revived).
	OpenLog(ctx context.Context, tp TopicPartition, opts LogOptions) (Log, error)

	// Logs lists the topic-partitions that have a log, open or not, in no
	// particular order.
	Logs(ctx context.Context) ([]TopicPartition, error)

	// DeleteLog closes the log of tp if it is open and removes it with all
	// its data. Calls on a handle of the deleted log return ErrClosed.
	// Deleting a log that does not exist returns an error wrapping
	// ErrLogNotFound.
	DeleteLog(ctx context.Context, tp TopicPartition) error

	// Close syncs and closes every open log and releases the engine's
	// resources. Calls after Close, on the engine or on any of its logs,
	// return ErrClosed. Close is idempotent: a second call returns nil.
	Close() error
}

// Log is the storage of one topic-partition: an ordered sequence of record
// batches holding the offsets [StartOffset, EndOffset).
//
// Every method returns an error wrapping ErrClosed once the log or its
// engine is closed.
type Log interface {
	// Append adds one batch at the end of the log. meta.BaseOffset must equal
	// EndOffset, otherwise Append returns an error wrapping ErrNonContiguous
	// and writes nothing; batch must be the whole v2 batch whose header
	// agrees with meta (base offset, length, last offset delta), otherwise
	// Append returns an error wrapping ErrInvalidBatch and writes nothing.
	// On success EndOffset becomes meta.LastOffset+1.
	//
	// Append does not retain batch: the caller may reuse it after return.
	// The batch is not durable until Sync (or the flush policy) says so.
	//
	// If writing fails part-way, Append returns an error wrapping
	// ErrLogFailed and the log refuses every later Append, Truncate and
	// DeleteBefore with ErrLogFailed until it is closed and opened again,
	// when recovery cuts whatever was half-written. Reads of what was
	// appended before the failure keep working.
	Append(ctx context.Context, meta BatchMeta, batch []byte) error

	// Read returns whole batches in offset order, beginning with the batch
	// that contains offset from:
	//
	//   - from < StartOffset or from > EndOffset: an error wrapping
	//     ErrOffsetOutOfRange and empty Records.
	//   - from == EndOffset: empty Records and a nil error.
	//   - otherwise at least one batch, even if that batch alone is larger
	//     than maxBytes, and then only batches that keep the total within
	//     maxBytes. Read may return fewer batches than would fit (for
	//     example, it may stop at an internal boundary such as a segment
	//     end); callers read again from Records.NextOffset.
	//
	// The first batch may begin before from (when from is inside it or
	// inside a batch cut by DeleteBefore); callers skip records they did not
	// ask for. The returned memory belongs to the engine and stays valid and
	// unchanged until Records.Release is called, even if the log is
	// truncated, deleted or closed meanwhile; the caller must not modify it
	// and must call Release exactly once.
	Read(ctx context.Context, from int64, maxBytes int) (Records, error)

	// Offsets returns StartOffset and EndOffset: the log holds offsets in
	// [start, end). It never blocks and never fails; after Close it returns
	// the last values.
	Offsets() (start, end int64)

	// Truncate removes every batch holding an offset >= to, so a batch that
	// contains to is removed whole, and EndOffset becomes the base offset of
	// the first removed batch. Truncate to an offset >= EndOffset changes
	// nothing. Truncate to an offset < StartOffset returns an error wrapping
	// ErrOffsetOutOfRange and changes nothing. If the batch removed first
	// also holds StartOffset (to fell inside the batch a DeleteBefore cut
	// into), the log becomes empty with StartOffset lowered to the new
	// EndOffset, which is where a follower resumes fetching. Truncation is durable when
	// Truncate returns: a crash never brings removed batches back.
	Truncate(ctx context.Context, to int64) error

	// DeleteBefore raises StartOffset to to: reads below to fail with
	// ErrOffsetOutOfRange from now on. The engine frees storage in whole
	// units (segments, files, key ranges) that lie entirely below to, so
	// the bytes of some batches below to may stay on disk for a while. If
	// to <= StartOffset nothing changes. If to > EndOffset every batch is
	// removed and both offsets become to: the next Append must start at to
	// (a follower starting over where its leader's log begins). The new
	// StartOffset is durable when DeleteBefore returns.
	DeleteBefore(ctx context.Context, to int64) error

	// OffsetForTime returns the base offset of the first batch, in offset
	// order, whose MaxTimestamp is >= ts, considering only batches that hold
	// offsets >= StartOffset; if that batch begins below StartOffset (a
	// DeleteBefore cut into it) it returns StartOffset, so the answer is
	// always readable. If no batch qualifies it returns EndOffset.
	OffsetForTime(ctx context.Context, ts int64) (int64, error)

	// Sync makes every batch appended before the call durable, so it
	// survives a crash. A failed Sync fails the log as a failed Append
	// does (ErrLogFailed until reopened): after a failed fsync the kernel
	// may have dropped dirty pages, so appending on would risk a gap.
	Sync(ctx context.Context) error

	// Close syncs the log and releases its resources. Records returned
	// earlier stay valid until released. Close is idempotent. Close of a
	// log that failed a write still releases everything; it may return the
	// failure.
	Close() error
}

// Batch is one record batch and its metadata, as [Log.Append] takes them.
type Batch struct {
	Meta BatchMeta
	Data []byte
}

// BatchAppender is implemented by logs that append several batches in one
// step more cheaply than one Append each: a plugin's log sends them in one
// round trip. Callers use [AppendBatches], which falls back to Append.
type BatchAppender interface {
	// AppendBatches appends batches in order, as that many Appends
	// would, stopping at the first that fails. It returns how many were
	// appended; their records are readable as Append's are.
	AppendBatches(ctx context.Context, batches []Batch) (int, error)
}

// AppendBatches appends batches to l in order, in one step if l is a
// [BatchAppender] and one Append each otherwise, stopping at the first
// failure. It returns how many were appended.
func AppendBatches(ctx context.Context, l Log, batches []Batch) (int, error) {
	if ba, ok := l.(BatchAppender); ok {
		return ba.AppendBatches(ctx, batches)
	}
	for i := range batches {
		if err := l.Append(ctx, batches[i].Meta, batches[i].Data); err != nil {
			return i, err
		}
	}
	return len(batches), nil
}

// Sizer is implemented by logs that can report the bytes they occupy on
// disk (or in memory, for an in-memory engine). The broker uses it for
// retention.bytes and the benchmarks for bytes-on-disk.
type Sizer interface {
	// Size returns the number of bytes the log's data occupies, counting
	// files it owns alone; storage shared by many logs is apportioned or
	// left out, as the engine documents.
	Size() int64
}

// Records is the result of [Log.Read]: whole record batches, in offset
// order, split over one or more byte slices. Concatenated, Chunks form the
// bytes of a Kafka fetch response's records field, so a server can write
// them with one vectored write and no copy.
type Records struct {
	// Chunks hold the batches. A chunk holds one or more whole batches; a
	// batch never spans two chunks.
	Chunks [][]byte
	// NextOffset is the offset to read from next: the last offset of the
	// last batch returned plus one. When Chunks is empty it equals the from
	// offset of the Read.
	NextOffset int64
	// Pin keeps the memory of Chunks valid; Release releases it. It is nil
	// when the memory needs no release (it then stays valid for as long as
	// the caller holds it). Either way the memory is read-only.
	Pin Releaser
}

// Releaser releases memory handed out by a Read.
type Releaser interface{ Release() }

// Release returns the memory of r to the engine. After Release the Chunks
// must not be used. Calling Release on empty Records is allowed.
func (r *Records) Release() {
	if r.Pin != nil {
		r.Pin.Release()
		r.Pin = nil
	}
	r.Chunks = nil
}

// Len returns the total number of bytes in Chunks.
func (r *Records) Len() int {
	n := 0
	for _, c := range r.Chunks {
		n += len(c)
	}
	return n
}

// Empty reports whether r holds no batch.
func (r *Records) Empty() bool { return len(r.Chunks) == 0 }
