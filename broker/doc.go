// Package broker is Strata's Kafka protocol server: it accepts client
// connections, decodes requests with franz-go's kmsg, and serves them from
// the partition logs it keeps in storage engines, following the cluster
// metadata of a coordination.Coordinator.
//
// # Files
//
// One file per Kafka API, each with a header saying which versions are
// served and what is left out: apiversions.go, metadata.go, produce.go,
// fetch.go, listoffsets.go, findcoordinator.go, createtopics.go,
// deletetopics.go. api.go is the
// table of served APIs (ApiVersions answers exactly it); conn.go the
// connection; partitions.go the partition manager; partition.go one
// partition; batch.go produce-side batch validation and patching;
// records.go the one place records are looked into (ListOffsets by time);
// errors.go the mapping of engine and coordination errors to Kafka codes.
// The admin APIs: createpartitions.go, configs.go (DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs), deleterecords.go,
// describecluster.go, describelogdirs.go, offsetforleaderepoch.go;
// retention.go is the background retention (retention.ms, retention.bytes)
// of topics whose cleanup.policy includes delete. Idempotent producers:
// initproducerid.go (InitProducerId, producer id blocks) and producers.go
// (per-partition sequence state, rebuilt from the log tail on open).
// Consumer groups: joingroup.go, syncgroup.go, heartbeat.go,
// leavegroup.go, offsetcommit.go, offsetfetch.go, listgroups.go,
// describegroups.go, deletegroups.go, offsetdelete.go call the group
// coordinator (broker/internal/group); offsetslogs.go gives its store
// the partitions of __consumer_offsets (group.Logs).
//
// # Connections
//
// Each connection has a reader and a writer goroutine. The reader reads a
// frame (int32 size, then the request): a size below the smallest header
// or above socket.request.max.bytes closes the connection before anything
// is allocated for it; the frame comes from a pool of power-of-two
// buffers, so an idle client holds only its 4 KiB read buffer. The header
// (v1, or v2 with tagged fields when kmsg says the request is flexible) is
// parsed, and an unknown API key, an unsupported version (except for
// ApiVersions, which is answered with UNSUPPORTED_VERSION and our list in
// a v0 body) or a body kmsg cannot decode closes that connection only.
//
// The reader runs each handler itself, in request order, so pipelined
// produce requests are appended in the order they were sent, as Kafka
// (which handles one request per connection at a time) guarantees. A
// handler that must wait — a fetch parked for min_bytes, a JoinGroup or
// SyncGroup waiting for the rebalance, a write to the group store, and an
// acks=all produce waiting for the in-sync replicas — returns a "later" that completes on
// its own goroutine while the reader goes on. Every request that gets a response
// has a slot in a per-connection queue (at most 64 in flight; then the
// reader stops reading, which pushes back through TCP); the writer writes
// the slots strictly in queue order, waiting for each to complete, so
// responses go out in request order however the handlers interleave.
// acks=0 produce requests get no slot and no response; one that fails
// closes the connection after the earlier responses, as Kafka does, so the
// client notices. The response header is v1 for flexible responses, except
// for ApiVersions, whose header is always v0. A panic in a handler is
// recovered, logged with its stack, and closes that connection only.
// Memory a handler pins (fetched batches) is released by the writer after
// the response is written.
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
// Consumer groups (broker/internal/group): the broker coordinates the
// groups of the __consumer_offsets partitions it leads, loading them when
// it comes to lead one and dropping them when it stops (their members are
// answered NOT_COORDINATOR and find the new coordinator).
//
// # Produce and fetch
//
// See produce.go and fetch.go. In short: batches are validated without
// touching the log, offsets are assigned by patching the header in place
// (the CRC does not cover them; LogAppendTime recomputes it), and each
// partition has one appender (partition.appendMu), which appends the
// requests queued meanwhile together (group commit). Fetch hands the engine's
// bytes to the response as they are, and the connection writes large ones
// from where the engine keeps them (splice.go: kmsg encodes the response
// around placeholders; one writev sends encoding and records). Each partition has a notifier, a
// channel closed and replaced by every append; a parked fetch selects on
// the channels of the partitions it read (taken before reading, so no
// append is missed), its deadline and its connection's context — no
// polling.
//
// # Replication
//
// Leader-based, as Kafka's (replica.go, fetcher.go, epochs.go). Followers
// fetch from their leaders with Fetch (replica_id set), one fetcher per
// leader broker, and append through their own engine. The leader tracks
// each follower's offset, advances the high watermark to the smallest
// log end of the ISR, and consumers read only below it; acks=all answers
// once the high watermark passes the append (or REQUEST_TIMED_OUT, or
// NOT_LEADER_OR_FOLLOWER when leadership moved), and min.insync.replicas
// refuses it (NOT_ENOUGH_REPLICAS) before anything is appended. The leader
// takes a follower out of the ISR after replica.lag.time.max.ms without
// catching up and back in once it has, through the coordinator's
// conditional write (coordination.Replication.AlterISR). Every partition
// keeps a leader-epoch checkpoint beside its log
// (<log dir>/leader-epoch-checkpoint/<topic>-<partition>): the start
// offset of every leader epoch its batches carry. It answers
// OffsetForLeaderEpoch and tells a follower, through Fetch's diverging
// epoch, where its log parts from the leader's, where it truncates. A
// graceful stop in a cluster is a controlled shutdown
// (controlledshutdown.go): leadership moves to other in-sync replicas
// first. Leaders are elected by the controller (coordination/zk).
//
// # Shutdown
//
// Shutdown (in a cluster, after the controlled shutdown) closes the
// listeners, stops every reader before its next
// request, wakes parked fetches (they answer with what they have) and
// waiting JoinGroup and SyncGroup requests (NOT_COORDINATOR), lets the
// writers drain, stops the group coordinator (timers, loads, background
// writes), and then syncs and closes every log and engine. If its
// context ends first, connections are closed hard; logs are closed anyway.
package broker
