// Package group is the classic consumer-group coordinator, following
// Apache Kafka's GroupCoordinator: the groups of the partitions of
// __consumer_offsets this broker leads, their members, their committed
// offsets, and their persistence through a Store.
//
// The broker's handlers call one Coordinator method per Kafka API, with
// the decoded request, and send the response it returns; a method that
// must wait (a rebalance, a write) returns a wait to run off the
// connection's reader instead.
//
// # States
//
//   - Empty: no members; offsets may remain.
//   - PreparingRebalance: members are asked to rejoin; JoinGroup requests
//     wait.
//   - CompletingRebalance: every member has its JoinGroup answer; the
//     leader's SyncGroup brings the assignment, the others' SyncGroup
//     requests wait.
//   - Stable. A member joining, leaving, timing out or changing its
//     metadata (and the leader rejoining) sends a Stable or
//     CompletingRebalance group back to PreparingRebalance; a rebalance
//     that ends with no members leaves the group Empty.
//   - Dead: removed from the coordinator (deleted, or Empty without
//     offsets at expiry, or its partition moved away): requests that
//     still hold it answer COORDINATOR_NOT_AVAILABLE and the client finds
//     the group again.
//
// # Timers
//
// Each is a time.AfterFunc checked under the group's mutex when it fires,
// so a stopped or replaced timer that fires late does nothing.
//
//   - The join timer ends PreparingRebalance. The first rebalance of an
//     Empty group waits group.initial.rebalance.delay.ms, again while new
//     members keep arriving, in all at most the rebalance timeout; any
//     other rebalance ends when every member (and every member id handed
//     out with MEMBER_ID_REQUIRED) has joined, or after the largest
//     rebalance timeout of the members, when the dynamic members that did
//     not rejoin are removed (static ones stay until their session ends).
//   - The sync timer ends CompletingRebalance for members that never send
//     SyncGroup: after the rebalance timeout they are removed and the
//     group rebalances.
//   - Each member's session timer: a heartbeat, JoinGroup, SyncGroup or
//     OffsetCommit restarts it; when it fires the member is removed,
//     unless it is waiting in JoinGroup or SyncGroup (a new member waiting
//     in JoinGroup is removed after newMemberJoinTimeout instead).
//   - Each pending member id's timer removes it after the session timeout.
//
// Waiting JoinGroup and SyncGroup requests hold a channel (buffered, one
// answer); every path that drops a member's channel answers it first, so
// a waiting request always ends (or its connection's context does).
//
// # Ownership and loading
//
//   - A group lives in one partition of __consumer_offsets (PartitionFor:
//     Kafka's abs(hashCode) % partitions). The coordinator follows the
//     metadata: it serves a group while this broker leads its partition,
//     once the partition is loaded; another broker's partition answers
//     NOT_COORDINATOR, and when a partition moves away its groups are
//     dropped (their waiting members get NOT_COORDINATOR and find the new
//     coordinator).
//   - A partition this broker comes to lead loads on a goroutine of its
//     own (Store.Load). Until it is loaded its groups' requests answer
//     COORDINATOR_LOAD_IN_PROGRESS (SyncGroup: REBALANCE_IN_PROGRESS, a
//     heartbeat: no error, as Kafka does), so no request races a load. A
//     failed load is retried after a second.
//   - A load rebuilds each group from its last group record — its members
//     come back (Stable, or Empty without members) and are removed if they
//     do not heartbeat within their session timeout — and its offsets; a
//     group with offsets but no group record comes back Empty with no
//     protocol type (a group of simple commits).
//
// # Writes
//
//   - Every change that is persisted goes through Store.Write, and the
//     writes of one group are ordered: each waits for the group's previous
//     write before it starts (a chain of channels per group id, so a group
//     deleted and created again also keeps its order), and the change is
//     applied in memory after its write returns, in the same order.
//   - A request that writes (OffsetCommit, the leader's SyncGroup, a static
//     member rejoining while Stable, DeleteGroups, OffsetDelete) writes
//     from its wait; the coordinator's own writes (a group becoming Empty,
//     expiry) run on goroutines Close waits for.
//   - Records written: a group record when the leader's SyncGroup brings a
//     new assignment (answered once written; a failed write answers every
//     member the error and rebalances), when a static member rejoins a
//     Stable group, and when a group becomes Empty; offset records for
//     every OffsetCommit (answered once written); tombstones of offsets
//     and of the group for DeleteGroups, OffsetDelete and expiry.
//
// # Expiry
//
// Every offsets.retention.check.interval.ms, offsets older than
// offsets.retention.minutes go as Kafka decides: an Empty group's
// retention after it became Empty; a simple group's (no protocol type)
// and the unsubscribed topics' of a Stable consumer group retention after
// their commit; an explicit expire timestamp (OffsetCommit v2–v4) wins
// over both. An Empty group left with no offsets is removed (Dead, with a
// tombstone).
//
// # Shutdown and locks
//
//   - StopServing makes every request answer NOT_COORDINATOR; requests
//     waiting in JoinGroup or SyncGroup end with their connection's
//     context (NOT_COORDINATOR). Close then stops every timer, cancels
//     loads and background writes, and waits for them.
//   - Lock order: a group's mutex before the Coordinator's; no lock is
//     held across a Store call.
//
// # __consumer_offsets
//
// The Store over the topic (OpenStore) keeps every change in Kafka's own
// record format, so a log written by Strata reads as Kafka's and the other
// way round:
//
//   - One record batch per Write: magic 2, uncompressed, producer id -1,
//     CreateTime timestamps of the moment of writing, appended to the
//     group's partition by the path produced batches take (Logs.Append:
//     the partition's one appender assigns the offsets, fetch waiters are
//     woken) and committed (acks=all) before Write returns.
//   - Created by OpenStore (alone) or the first FindCoordinator (in a
//     cluster, once offsets.topic.replication.factor brokers are up), with
//     offsets.topic.num.partitions partitions, that many replicas (alone,
//     at most as many as there are brokers) and Kafka's configs for it:
//     cleanup.policy=compact, compression.type=producer,
//     segment.bytes=104857600. An existing topic is used as it is, with
//     the partition count it has, as Kafka does; the count is read once,
//     so partitions added later are not used until a restart (and move
//     groups, as they would in Kafka).
//   - Load replays a partition from its log start to its end at the call,
//     in log order. It reads value versions 0 to 4 of both kinds (what
//     Kafka 0.8.2 to 4.x writes), skips keys of other versions (the
//     records of KIP-848 consumer groups, share groups and the like,
//     versions 3 and up), control batches and transactional batches, and
//     decompresses batches a Kafka tool may have written compressed. A
//     batch that fails its CRC, or a record that does not decode, fails
//     the load with an error naming the partition and offset.
//   - Left out: log compaction. Nothing cleans the topic yet, so it grows
//     with every commit and a load replays it whole; Kafka's log cleaner
//     keeps only the newest record of each key (and drops tombstones after
//     delete.retention.ms), which is what will bound both. Transactional
//     offset commits (TxnOffsetCommit) are neither written nor loaded.
//
// A record's key and value, big-endian; a string is an int16 length and
// its bytes (a nullable one: length -1 for null), bytes an int32 length
// and the bytes; the value is null (the record a tombstone) for a
// deletion:
//
//	OffsetCommitKey v1         int16 version=1, string group, string topic, int32 partition
//	OffsetCommitValue v3       int16 version=3, int64 offset, int32 leader epoch,
//	                           string metadata, int64 commit timestamp
//	OffsetCommitValue v1       int16 version=1, int64 offset, string metadata,
//	                           int64 commit timestamp, int64 expire timestamp
//	                           (written when the commit carries an expire timestamp, as Kafka does)
//	GroupMetadataKey v2        int16 version=2, string group
//	GroupMetadataValue v3      int16 version=3, string protocol type, int32 generation,
//	                           nullable string protocol, nullable string leader,
//	                           int64 state timestamp, int32 member count, then per member:
//	                           string member id, nullable string group instance id,
//	                           string client id, string client host,
//	                           int32 rebalance timeout ms, int32 session timeout ms,
//	                           bytes subscription, bytes assignment
package group
