// Package tiered is Strata's tiered storage engine, registered as "tiered":
// each partition log keeps its newest segments on local disk (the hot
// tier) and moves sealed segments, compressed with zstd into seekable
// frames, to a cold tier, as Kafka's tiered storage (KIP-405) moves them
// to remote storage. Reads, OffsetForTime and Offsets span both tiers.
//
// The hot tier is an engines/mmap engine in the same directory, so a hot
// segment is exactly an mmap segment (engines/segment), with mmap's
// flushing, checkpoints and recovery. The cold tier is a ColdStore: a
// local directory (LocalDir) now, shaped so that an object store can
// follow.
//
// # When a segment moves
//
// A hot segment becomes a candidate once it is sealed, synced and not the
// last one. It moves, oldest first, when the log's local retention lets its
// hot copy go: LocalRetentionMs (local.retention.ms) has passed since its
// max timestamp, or the hot segments' bytes exceed LocalRetentionBytes
// (local.retention.bytes). 0 (the engine default) moves every sealed
// segment; -2 (Kafka's "as retention.*", the broker's default) and -1 keep
// hot copies for as long as the log keeps the data. A background uploader
// looks every strata.tiered.upload.interval.ms; Settle moves what may move
// at once. Retention proper (retention.ms, retention.bytes) stays the
// broker's, through DeleteBefore, which deletes cold objects wholly below
// the new start too.
//
// # Settings (engine.Options.Settings)
//
//	strata.tiered.cold.dir            the cold tier's directory (default <engine dir>/cold)
//	strata.tiered.frame.cache.bytes   decompressed frames kept in memory, LRU by bytes (default 64MiB)
//	strata.tiered.frame.bytes         uncompressed bytes a frame is cut at (default 1MiB)
//	strata.tiered.upload.interval.ms  background uploader period; 0 turns it off (default 1000)
//
// Sizes take a KiB, MiB or GiB suffix. Any other strata.tiered.* key is an
// error naming it; keys of other engines are ignored.
//
// # Directory layout
//
//	<engine dir>/
//	  <topic>-<partition>/                the hot log, laid out as engines/mmap documents
//	    …segment and checkpoint files of engines/mmap…
//	    cold.manifest                     the log's cold segments (see The manifest)
//	  cold/                               the cold tier (strata.tiered.cold.dir)
//	    <topic>-<partition>/
//	      <20-digit base offset>-<16 hex digits>.cold    one cold object per cold segment
//
// The hex digits are a random nonce, so every upload has a new name and an
// object is never replaced by one with other bytes. Files ending in
// ".put-tmp" are Puts a crash interrupted; "cold.manifest.tmp" is a
// manifest write a crash interrupted. Both are removed on open.
//
// # Cold objects
//
// A cold object holds the batches of one sealed segment (from the batch
// holding the log's start offset, if that lies inside the segment),
// exactly as appended, in zstd frames, then a frame index and a footer.
// All integers are big-endian; CRC-32C is the Castagnoli CRC of Kafka's
// batches.
//
//	object := frame[0] … frame[n-1]  index  footer
//
// frame[i] is one standard zstd frame (RFC 8878, with its content size and
// xxhash checksum) that decompresses to whole batches: frames are cut
// before the batch that would take them past strata.tiered.frame.bytes,
// and a batch larger than that sits alone in its frame. frame[0] starts at
// byte 0 and each next one right after the previous one, so a frame is
// read with one range request and decompressed on its own.
//
// index is n entries of 44 bytes, one per frame, in order:
//
//	off  size  field
//	  0     8  firstOffset        base offset of the frame's first batch
//	  8     8  lastOffset         last offset of its last batch; the next frame's firstOffset is this + 1
//	 16     8  maxTimestamp       largest maxTimestamp of its batches
//	 24     8  position           byte at which the compressed frame starts in the object
//	 32     4  compressedLength   bytes of the compressed frame
//	 36     4  uncompressedLength bytes of its batches
//	 40     4  frameCRC           CRC-32C of the compressed frame's bytes
//
// footer is the last 24 bytes of the object:
//
//	off  size  field
//	  0     4  magic              "STZ1"
//	  4     4  frameCount         n, at least 1
//	  8     8  indexPosition      byte at which index starts: the end of the frames
//	 16     4  indexCRC           CRC-32C of the n*44 index bytes
//	 20     4  footerCRC          CRC-32C of footer bytes 0..19
//
// so indexPosition + 44n + 24 is the object's size. To read offset o:
// read the footer (last 24 bytes) and the index, pick the last frame whose
// firstOffset <= o, read compressedLength bytes at position, check
// frameCRC, decompress, check that the result is uncompressedLength bytes
// of whole batches running from firstOffset to lastOffset without a gap,
// and walk the batch headers (engines/mmap's package comment has their
// layout) to the batch whose last offset is >= o. Any check that fails is
// an error wrapping engine.ErrCorrupt. A read decompresses only the frame
// it needs; decompressed frames are kept in an LRU cache bounded by
// strata.tiered.frame.cache.bytes. Records handed out from a frame are
// slices of memory that is never written again and is freed by the
// garbage collector after the last of them, so they stay valid until
// released (their Pin is nil) even after the frame left the cache.
//
// # The manifest
//
// cold.manifest in the hot log's directory lists the log's cold segments,
// contiguous and in offset order:
//
//	off  size  field
//	  0     4  magic              "STM1"
//	  4     8  startOffset        the log's start offset while there is a cold segment
//	 12     4  count              number of entries
//	 16   40k  entries            one per cold segment:
//	                                base i64 (base offset of its first batch)
//	                                last i64 (last offset of its last batch)
//	                                maxTimestamp i64
//	                                objectSize i64 (bytes of the cold object)
//	                                nonce u64 (the name's hex digits)
//	  …     4  crc                CRC-32C of every byte before it
//
// The manifest is replaced whole: a temporary file is written and synced,
// renamed over it, and the directory synced. With no cold segment the hot
// log's start offset is the log's; with some, the cold segments hold
// [startOffset, last+1 of the last entry) and the hot log holds the rest,
// starting exactly there.
//
// # Crash safety
//
// An upload runs in this order: compress; Put the object (durable when Put
// returns); read it back whole and check it (footer, index, every frame's
// CRC and decoded length, every batch's CRC-32C, and the bytes equal to the
// hot segment's); write the manifest that lists it; only then drop the hot
// copy (the hot log's DeleteBefore to the segment's end). Truncate into
// the cold tier stores the kept prefix of the cut segment as a new object,
// restarts the hot log empty at the new end (mmap.Log.Reset), writes the
// manifest, then deletes the objects that left it. DeleteBefore writes the
// manifest first, then deletes objects, then raises the hot log's start.
//
// Opening a log reconciles the three: an object under the log's prefix
// that the manifest does not list is deleted (an upload or truncation cut
// short before its manifest write, or a deletion cut short after it); an
// object the manifest lists must exist with its size, or the open fails
// with engine.ErrCorrupt; hot segments below the cold tier's end are
// deleted (an upload cut short after its manifest write, or a truncation
// cut short after its hot restart, whose log is then the old cold tier
// alone: a prefix of the log). Opening the engine deletes objects of logs
// that no longer exist (a DeleteLog cut short after the hot log went). So
// a crash at any step loses nothing that was synced and leaves nothing
// behind for good.
package tiered
