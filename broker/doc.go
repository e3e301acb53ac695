// Package broker is Strata's Kafka protocol server: it accepts client
// connections, decodes requests with franz-go's kmsg, and hands each to
// the subsystem that serves it, following the cluster metadata of a
// coordination.Coordinator.
//
// The root is the wire layer: the Broker (New, Serve, Shutdown), the
// connections, the table of served APIs (api.go; ApiVersions answers
// exactly it) and one file per Kafka API, named for it, whose handler
// decodes, calls a subsystem and encodes, with a short header saying
// which versions are served and what is left out. The subsystems live in
// packages of their own under broker/internal, which the compiler fences
// and which never import the root:
//
//   - partition: the partition logs and everything done to them (the
//     manager, the append path, reads, producer state, leader epochs,
//     the high watermark, retention); Manager.Leader is the one answer
//     to "a partition I lead".
//   - replication: the follower side (fetchers), ISR changes and the
//     controlled shutdown.
//   - group: the consumer-group coordinator and its store over
//     __consumer_offsets.
//   - kafkaerr: the one mapping of errors to Kafka error codes.
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
// acks=all produce waiting for the in-sync replicas — returns a "later"
// that completes on its own goroutine while the reader goes on. Every
// request that gets a response has a slot in a per-connection queue (at
// most 64 in flight; then the reader stops reading, which pushes back
// through TCP); the writer writes the slots strictly in queue order,
// waiting for each to complete, so responses go out in request order
// however the handlers interleave. acks=0 produce requests get no slot and
// no response; one that fails closes the connection after the earlier
// responses, as Kafka does, so the client notices. The response header is
// v1 for flexible responses, except for ApiVersions, whose header is
// always v0. A panic in a handler is recovered, logged with its stack, and
// closes that connection only. Memory a handler pins (fetched batches) is
// released by the writer after the response is written; large fetched
// record sets go out from where the engine keeps them (splice.go: kmsg
// encodes the response around placeholders, and one writev sends encoding
// and records).
//
// # Metadata changes
//
// Handlers that change the metadata (CreateTopics, DeleteTopics,
// CreatePartitions, auto-creation, config changes) apply the new snapshot
// to the partitions before answering, so a created topic can be produced
// to at once and a deleted one's logs are gone when the client hears back.
//
// # Shutdown
//
// Shutdown (in a cluster, after the controlled shutdown) closes the
// listeners, stops every reader before its next request, wakes parked
// fetches (they answer with what they have) and waiting JoinGroup and
// SyncGroup requests (NOT_COORDINATOR), lets the writers drain, stops the
// group coordinator (timers, loads, background writes) and the
// replication (fetchers, ISR changes), and then syncs and closes every log
// and engine. If its context ends first, connections are closed hard;
// logs are closed anyway.
package broker
