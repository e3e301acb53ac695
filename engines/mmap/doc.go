// Package mmap is Strata's Kafka-style storage engine, registered as
// "mmap": each partition log is a directory of segment files holding record
// batches exactly as the broker appended them, with a sparse offset index
// and a time index per segment, as Kafka lays out a log directory. Reads are
// served straight from memory mappings of the segment files, without
// copying. The segment code (files, indexes, recovery scan) lives in
// engines/segment, shared with other file-based engines; this package adds
// the log: rolling, flushing, checkpoints, truncation, retention and
// recovery of a whole directory. engines/tiered keeps its hot tier in an
// Engine of this package, through Log's Segments, Reset and Failed.
//
// This comment describes the on-disk format byte by byte, so that the data
// can be read back with a hex dump. All integers are big-endian.
//
// # Directory layout
//
//	<engine dir>/
//	  <topic>-<partition>/                   one directory per log; topic is [a-zA-Z0-9._-]{1,249}
//	    00000000000000000000.log             segment files, named by base offset, 20 digits
//	    00000000000000000000.index
//	    00000000000000000000.timeindex
//	    00000000000000001234.log             the next segment's base offset is 1234 ...
//	    ...
//	    recovery-point.checkpoint            16 bytes, see Checkpoints
//	    log-start-offset.checkpoint          16 bytes, absent until the first DeleteBefore
//	  <topic>-<partition>.deleted/           a log being removed by DeleteLog (removed on open)
//
// A segment's base offset is the offset of its first batch. Segments of a
// log are contiguous: each one's base is the offset after the previous
// one's last batch. Files named "*.tmp" are checkpoints whose write was
// interrupted; they are ignored and removed.
//
// # The .log file
//
// The concatenation of whole Kafka v2 record batches, exactly as handed to
// Append, nothing before, between or after them. Batch layout (61-byte
// header, then records), as in engine/batch.go:
//
//	off  size  field
//	  0     8  baseOffset            first offset of the batch
//	  8     4  batchLength           bytes after this field: the batch is batchLength+12 bytes
//	 12     4  partitionLeaderEpoch
//	 16     1  magic                 always 2
//	 17     4  crc                   CRC-32C (Castagnoli) of bytes [21, batchLength+12)
//	 21     2  attributes
//	 23     4  lastOffsetDelta       last offset = baseOffset + lastOffsetDelta
//	 27     8  baseTimestamp
//	 35     8  maxTimestamp
//	 43     8  producerId
//	 51     2  producerEpoch
//	 53     4  baseSequence
//	 57     4  recordCount
//	 61     …  records
//
// To walk a segment: read 12 bytes at position p, the batch is
// int32(bytes 8..11)+12 bytes long, the next batch starts after it. The
// first batch's baseOffset equals the file's base offset and every next
// baseOffset is the previous lastOffset+1. A segment rolls when the next
// batch would take it past segment.bytes (a batch larger than that sits
// alone in its segment), when its first batch is segment.ms old (measured
// with Options.Now), when an index is full, or when an offset would be
// more than 2^31-1 past the base.
//
// # The .index file (sparse offset index)
//
// 8-byte entries, in rising order of both fields:
//
//	off  size  field
//	  0     4  relative offset       baseOffset of an indexed batch minus the segment's base offset
//	  4     4  position              byte position of that batch in the .log file
//
// A batch gets an entry when at least index.interval.bytes of batches lie
// between it and the previous entry (or the start of the file); the first
// batch never gets one (position 0 is implied). To find offset o: take the
// last entry whose relative offset is <= o-base (or position 0) and walk
// the batches from there until one's last offset is >= o.
//
// # The .timeindex file
//
// 12-byte entries:
//
//	off  size  field
//	  0     8  timestamp             the largest maxTimestamp of the batches up to here
//	  8     4  relative offset       baseOffset of the batch holding it, minus the segment's base
//
// An entry is written together with an offset-index entry when the largest
// timestamp so far has risen since the last time entry, and once more when
// the segment is sealed, so a sealed segment's last time entry holds its
// maximum timestamp. Timestamps strictly rise from entry to entry; batch
// timestamps themselves may go up and down. An entry (T, r) says that no
// batch up to the one at base+r has a maxTimestamp above T, which is what
// OffsetForTime(ts) needs: start at the batch holding base+r of the last
// entry with T < ts and walk forward to the first batch with maxTimestamp
// >= ts.
//
// While a segment is active (takes appends) both index files are
// preallocated to segment.index.bytes (zeros past the entries, a sparse
// file) and memory-mapped read-write; the entries in use are counted in
// memory. When the segment is sealed (rolled, or the log closed cleanly),
// both files are cut to exactly their entries, so a sealed index's size is
// a multiple of its entry size and every entry in it is real. An index
// whose next entry would not fit rolls the segment (the time index keeps
// one slot for the entry written on sealing).
//
// # Checkpoints
//
// Both checkpoint files have the same 16-byte layout:
//
//	off  size  field
//	  0     4  magic                 "SRP1" (recovery point) or "SLS1" (log start offset)
//	  4     8  offset                int64
//	 12     4  CRC-32C               of bytes 0..11
//
// A checkpoint is replaced atomically: written to "<name>.tmp", fsynced,
// renamed over "<name>", and the directory fsynced.
//
// log-start-offset.checkpoint holds the log's start offset, written by
// DeleteBefore (and by Truncate into the batch holding the start) before
// any segment is removed. Absent, the start is the first segment's base.
// A damaged one makes OpenLog fail with engine.ErrCorrupt, since data below
// the start could otherwise come back.
//
// recovery-point.checkpoint holds the recovery point R: every segment
// whose offsets all lie below R is sealed (indexes cut to their entries)
// and was fsynced (log and index files) before R was written. R is either
// the base offset of a segment (written after a sync of the segments a
// roll sealed, and lowered to a segment's base before that segment takes
// appends again or is truncated), or the end offset of a cleanly closed
// log. Absent or damaged, it counts as below every offset: every segment
// is validated.
//
// # Recovery (OpenLog)
//
//  1. Remove "*.tmp" files and index files without a .log file.
//  2. Read both checkpoints.
//  3. For each segment in base-offset order: skip (and remove) it if the
//     next segment's base is <= the start offset. Stop, removing it and
//     all later segments, if its base is not the previous segment's end.
//     Otherwise load it, trusted or validated.
//     Trusted, if all its offsets lie below R and it passes the sanity
//     checks: each index file a multiple of its entry size with entries in
//     order and inside the file, a non-empty segment having a time entry,
//     and the batch headers walked from the last offset-index entry's
//     position lead exactly to the end of the file with contiguous offsets.
//     Validated otherwise: every batch from position 0 must pass
//     engine.CheckBatch (length, magic 2, CRC-32C) with contiguous offsets
//     from the base; the file is cut at the first byte that fails, and both
//     indexes are rebuilt as the appender would have written them. A cut
//     leaves the next segment not following on, which removes it.
//  4. If nothing at or past the start offset is left, the log restarts
//     empty at the start offset in a fresh segment; segments wholly below
//     the start are removed.
//  5. Validated segments are synced in the background (they may hold
//     bytes that only ever reached the page cache), after which R moves on.
//     If R lies past the recovered end (synced data lost to damage), R is
//     lowered to the end.
//
// The result is a prefix of what was appended: never a torn or corrupt
// batch, never a gap, and never less than what was synced.
//
// # Memory and mappings
//
// Records returned by Read are slices of a segment's memory mapping
// (read-only, shared), pinned by a reference count: the mapping is
// unmapped when the segment no longer uses it and the last Records holding
// it is released. A deleted file lives on in its mapping. A file cut short
// (Truncate, recovery) first has the mapped pages past the cut replaced by
// private copies in every live mapping of it, so Records keep their bytes
// rather than faulting with SIGBUS (segment.ShrinkFile). An active segment
// is mapped with segment.bytes of room so appends seldom remap; a batch
// that does not fit gets a new, larger mapping, the old one living on for
// its readers. Only bytes below the published size are ever touched.
//
// # Durability
//
// Append writes the batch to the active segment's file with one write
// and publishes it; it is durable after Sync, which fsyncs the segments a
// roll sealed (and their directory), then the active segment's log file.
// flush.messages counts records appended since the last sync; flush.ms is
// enforced by one background flusher per engine, which also syncs rolled
// segments so the recovery point keeps up. A failed write or fsync fails
// the log (engine.ErrLogFailed) until it is reopened. Close seals the last
// segment, syncs everything and checkpoints R at the end offset, so a clean
// restart validates nothing.
//
// The engine is Linux-only: it uses mmap, munmap and mremap directly.
package mmap
