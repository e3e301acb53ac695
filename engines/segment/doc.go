// Package segment holds Kafka-style log segments, shared by the file-based
// engines (engines/mmap; engines/tiered reuses it for its hot tier): a
// segment's log file of record batches, its sparse offset index and time
// index (both memory-mapped), reads served as slices of a reference-counted
// memory mapping, and the recovery scan that validates a segment and cuts
// it after its last good batch.
//
// The byte layout of the three files is documented in engines/mmap's
// package comment, which describes a whole log directory. In short:
//
//	<20-digit base offset>.log        record batches (Kafka v2) exactly as appended
//	<20-digit base offset>.index      8-byte entries: relative offset u32, position u32
//	<20-digit base offset>.timeindex  12-byte entries: max timestamp so far i64, relative offset u32
//
// What the package does not know about is the log around a segment: which
// segment is active, when to roll, flush policies, checkpoints. Its owner
// decides those and follows the concurrency rules on Segment.
//
// The package is Linux-only: it calls mmap, munmap and mremap directly.
package segment
