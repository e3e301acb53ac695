// Package partition holds the partition logs this broker keeps and
// everything done to them, one layer below the wire (as Kafka's
// ReplicaManager and Partition are below KafkaApis): the Manager, which
// follows the cluster metadata and opens, closes and deletes logs in
// their engines; and each Partition's append path, reads, idempotent
// producers' state, leader-epoch cache, high watermark and followers'
// positions, and retention. Manager.Leader is the one answer to "is this a
// partition I lead" (missing, offline, led elsewhere, fenced epoch) that
// every handler and the group store ask.
//
// It never imports the broker root or the group coordinator; the
// replication layer reaches it through the Replication interface it is
// given.
//
// # Partitions and engines
//
// The partition manager follows coordination snapshots (Changed) and keeps
// open exactly the logs of the partitions assigned to this broker (alone,
// it holds them all; in a cluster, those it leads or replicates), deleting
// the logs of deleted topics —
// also when a topic is deleted and created again under the same name, told
// apart by topic id. Handlers that change the metadata (CreateTopics,
// DeleteTopics, auto-creation) apply the new snapshot before answering, so
// a created topic can be produced to at once and a deleted one's logs are
// gone when the client hears back.
//
// Each topic's config is resolved against the broker's (config.Topic):
// strata.engine (default log.engine) names the engine, and the topic's
// segment, index and flush keys become its engine.LogOptions. The broker
// opens engines only by name through the engine registry (cmd/strata links
// them in), one instance per (log dir, engine name), whose state lives in
// <log dir>/<engine name> (<log dir>/plugin-<name> for a plugin engine,
// plugin:<name>): the default mmap engine thus keeps Kafka-like
// <log dir>/mmap/<topic>-<partition>/ directories. The subdirectory keeps
// engines that share a log dir out of each other's way (an engine may own
// its whole directory, as an LSM store does) and keeps the log dir itself
// free for coordination/local's files. At start-up the broker opens every
// engine whose directory exists and lists its logs, so a partition reopens
// where its data is even if its topic's engine or the order of log.dirs
// changed; a new partition goes to the log dir holding the fewest. Alone,
// a broker leaves logs on disk that no topic claims alone (logged at
// start-up, not deleted): its metadata is a file it could have lost. In a
// cluster, whose metadata ZooKeeper keeps, a log the cluster does not
// assign to this broker is deleted at start-up (its topic was deleted, or
// deleted and created again elsewhere, while the broker was away), as
// Kafka deletes stray partitions; a topic whose metadata cannot be read
// keeps its logs.
//
// # Produce and fetch
//
//   - Append: batches validated by ValidateBatches (without touching the
//     log) are checked against the idempotent producers' state, assigned
//     offsets by patching the header in place (the CRC does not cover
//     them; LogAppendTime recomputes it) and appended by the partition's
//     one appender, which appends the requests queued meanwhile together
//     (group commit: one engine.AppendBatches).
//   - Fetch hands out the engine's bytes as they are (never decoded),
//     below the high watermark for consumers.
//   - Each partition has a notifier (WaitChan), a channel closed and
//     replaced by every append, on which a parked fetch or an acks=all
//     produce waits: no polling.
//
// # Replication
//
// Leader-based, as Kafka's. The leader tracks each follower's offset
// (FollowerFetched), advances the high watermark to the smallest log end
// of the ISR, and consumers read only below it; acks=all answers once the
// high watermark passes the append (AwaitReplicated). Every partition keeps
// a leader-epoch checkpoint beside its log
// (<log dir>/leader-epoch-checkpoint/<topic>-<partition>): the start
// offset of every leader epoch its batches carry. It answers
// OffsetForLeaderEpoch and tells a follower, through Fetch's diverging
// epoch, where its log parts from the leader's, where it truncates
// (follower.go).
package partition
