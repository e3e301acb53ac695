// Package lsm is Strata's LSM storage engine, registered as "pebble": every
// partition log of an engine lives in one Pebble DB (cockroachdb/pebble), so
// a broker can hold thousands of partitions in a handful of files instead
// of a directory of segment files per partition. The package is named lsm
// so that it does not clash with the pebble import.
//
// The broker opens the engine on <log dir>/pebble; that directory is the
// Pebble DB (WAL files "*.log", sstables "*.sst", blob files "*.blob",
// MANIFEST, OPTIONS, LOCK, marker files), all opened through
// engine.Options.FS (adapted to Pebble's vfs.FS), so tests inject faults
// into Pebble's own writes.
//
// This comment describes the keys byte by byte, so that the data can be
// read back with Pebble's tools (pebble db scan) and a hex dump. All
// integers are big-endian; Pebble's default bytewise comparer orders the
// keys.
//
// # Engine-wide keys (first byte 0x00)
//
//	key                                            value
//	00 69                                          next partition id: uint32
//	00 63 <topic> 00 <partition: int32>            partition id of the log: uint32
//
// 0x69 is 'i', 0x63 is 'c'. A topic name never holds a 0x00 byte, so a
// catalog key (the second line) parses back from both ends. Partition ids
// start at 1 and are handed out in order; the next id is committed with
// the catalog entry, so an id is never used twice while the DB lives, not
// even by a log created again after DeleteLog.
//
// # Partition keys (first byte 0x01)
//
// Every key of a log begins with 01 <id: uint32>, so a log's keys are one
// contiguous range and DeleteLog drops them with one range deletion:
//
//	key                                            value
//	01 <id> 73                                     start record: 16 bytes
//	01 <id> 64 <base offset: int64>                the batch at base offset, byte for byte as appended
//	01 <id> 74 <base offset: int64>                time index entry: 16 bytes
//
// 0x73 is 's', 0x64 'd', 0x74 't'; data and time keys are 14 bytes.
//
// The start record:
//
//	off  size  field
//	  0     8  start offset          the log's StartOffset (may lie inside a batch)
//	  8     8  bytes below           bytes of every batch the log held below the batch that holds the start
//
// A data key's value is a whole Kafka v2 record batch (layout in
// engine/batch.go; the engine reads bytes 23..26, lastOffsetDelta, and
// 35..42, maxTimestamp). Batches are contiguous: each base offset is the
// previous batch's last offset plus one, and the first data key is the
// batch that holds the start offset.
//
// A time index entry under a batch's base offset r:
//
//	off  size  field
//	  0     8  max timestamp T       no batch of the log up to and including r has a maxTimestamp above T
//	  8     8  bytes                 bytes of every batch the log held up to and including r
//
// The appender writes an entry with a batch once index.interval.bytes of
// batches have accumulated since the last entry (every batch when it is 0).
// T never falls from entry to entry, so OffsetForTime(ts) binary-searches
// the entries (O(log n) seeks) for the last one with T < ts at or above the
// start's batch, then walks the batches after it, reading maxTimestamp from
// each header, to the first with maxTimestamp >= ts; at most about
// index.interval.bytes of batches are walked. The byte counts make Size
// (engine.Sizer) exact without reading the log: the log holds the bytes
// counted up to its end minus those of the start record; the count up to
// the end comes from the last entry plus the batches after it.
//
// # Offsets and recovery
//
// The end offset is not stored: OpenLog derives it from the last data key
// (its base offset plus the lastOffsetDelta in its header), or takes the
// start offset when the log has no batch. Every change of a log is one
// Pebble batch (an atomic commit), and Pebble's WAL replay recovers a
// prefix of the commits, so after a crash a log is a prefix of what was
// appended: no torn batch (WAL records carry checksums; replay stops at a
// torn tail), no gap, and the start record agrees with the data.
//
// # Operations
//
//   - Append commits the data key (and perhaps a time entry) in one Pebble
//     batch, without a WAL sync unless flush.messages asks for one.
//   - Sync syncs the WAL once (DB.LogData with Sync). The WAL is shared,
//     so one sync makes every log durable; logs that sync at the same time
//     share it, and a log whose appends a sync already covered does not
//     sync again. flush.ms is enforced by one background flusher per
//     engine, as in the mmap engine.
//   - Truncate(to) range-deletes the data and time keys from the base of
//     the batch holding to onward, and rewrites the start record if that
//     batch held the start (the log empties at its base); one synced commit.
//   - DeleteBefore(to) range-deletes the data and time keys below the
//     batch holding to (all of them if to >= end) and rewrites the start
//     record; one synced commit. The space comes back when Pebble compacts.
//   - DeleteLog deletes the catalog key and range-deletes the log's keys;
//     one synced commit.
//   - Read copies whole batches out of a Pebble iterator into pooled
//     buffers the Records own (chunks of up to 256 KiB, a larger batch in
//     a chunk of its own), so Records stay valid across Truncate,
//     DeleteBefore, DeleteLog and Close until Release.
//
// # Write failures
//
// Pebble treats a failed WAL write or sync, or a failed MANIFEST write, as
// fatal (Logger.Fatalf, after which its commit pipeline cannot go on). The
// engine's logger records the failure instead of exiting: every log of the
// engine then fails (engine.ErrLogFailed) and refuses writes, reads keep
// working, and reopening the engine recovers from the WAL.
//
// # Settings
//
// Keys strata.pebble.* of engine.Options.Settings (from the broker's
// strata.* config keys) tune Pebble; an unknown strata.pebble.* key or a
// bad value fails Open with an error naming the key and wrapping
// engine.ErrInvalidOptions. Sizes are plain byte counts.
//
//	key                                            default      meaning
//	strata.pebble.memtable.size                    67108864     bytes of one memtable (256 KiB .. 4 GiB)
//	strata.pebble.memtable.stop.writes.threshold   4            memtables (full and flushing) before writes stall
//	strata.pebble.cache.size                       67108864     block cache bytes (>= 1 MiB)
//	strata.pebble.l0.compaction.threshold          4            L0 read amplification that starts a compaction
//	strata.pebble.l0.stop.writes.threshold         24           L0 read amplification at which writes stall
//	strata.pebble.max.concurrent.compactions       NumCPU/2     compactions at once (1 .. 4 by default)
//	strata.pebble.bytes.per.sync                   524288       sstable bytes between background syncs
//	strata.pebble.wal.bytes.per.sync               0            WAL bytes between background syncs (0: none)
//	strata.pebble.compression                      none         sstable block compression: none, snappy or zstd
//	strata.pebble.value.separation.min.size        0            values at least this large go to blob files (0: off)
//
// Compression is off by default because producers usually compress their
// batches already. Pebble needs about memtable.size times
// memtable.stop.writes.threshold of memory for memtables, plus the cache.
package lsm
