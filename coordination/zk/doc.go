// Package zk is the coordination of a cluster of brokers through
// ZooKeeper (zookeeper.connect), behind the same coordination.Coordinator
// interface as coordination/local. It keeps Kafka's ZooKeeper layout, so an
// operator's habits (zkCli.sh ls /brokers/ids) carry over; every path is
// below the chroot of zookeeper.connect, if it names one.
//
//	/cluster/id                         {"version":"1","id":"<cluster id>"}
//	/brokers/ids/<id>                   ephemeral, version 5: host, port, endpoints, rack
//	/brokers/seqid                      its version numbers generated broker ids
//	/controller                         ephemeral {"version":1,"brokerid":<id>,"timestamp":"<ms>"}
//	/controller_epoch                   "<epoch>", bumped by every election
//	/brokers/topics/<t>                 {"version":3,"topic_id":"<uuid>","partitions":{"0":[1,2]},...}
//	/brokers/topics/<t>/partitions/<p>/state
//	                                    {"controller_epoch":..,"leader":..,"leader_epoch":..,"isr":[..],"version":1}
//	/config/topics/<t>                  {"version":1,"config":{"retention.ms":"..."}}
//	/admin/delete_topics/<t>            a topic marked for deletion
//	/latest_producer_id_block           {"version":1,"broker":..,"block_start":"..","block_end":".."}
//	/isr_change_notification            created for Kafka's tools
//
// # Identity
//
// Each log dir holds meta.properties (Kafka's format, version 0) with the
// cluster id and the broker id. A broker takes broker.id from its config,
// or the one stored there, or (broker.id.generation.enable) generates one
// above reserved.broker.max.id from /brokers/seqid, and stores it, so a
// restarted container keeps its id. A log dir whose cluster id is not the
// one in /cluster/id is refused: it holds another cluster's data. A broker
// id registered by another live broker is refused too.
//
// # Metadata
//
// Every broker mirrors the cluster's znodes through ZooKeeper watches
// (cache.go): a znode read once stays cached while its one-shot watch is
// armed, so after a change only what changed is read again. The broker's
// Snapshot is built from that mirror; a partition whose leader's broker is
// not registered shows no leader, even before the controller has moved it.
//
// # Controller
//
// One broker wins /controller (creating it and bumping /controller_epoch
// in one transaction); when its session ends another wins. The controller
// creates the state of new partitions (the first live replica of the
// assignment leads and is the ISR: followers join it once they have caught
// up, so no failover elects a replica without the data), elects a new leader
// from the in-sync replicas when a leader's broker is gone or restarted (a
// new broker epoch: the czxid of its registration), leaving the partition
// without a leader when no in-sync replica is alive, and carries out topic
// deletions. Each of its writes is one ZooKeeper transaction that also
// checks the version of /controller_epoch it set, so a deposed controller
// changes nothing.
//
// Brokers learn their roles from the watched state znodes, not from
// requests the controller sends (Kafka's LeaderAndIsr and UpdateMetadata).
// The mirror every broker needs anyway already carries every role, and
// ZooKeeper orders the changes; requests would be a second channel to keep
// in step with it, and a second protocol to fence. The cost is watches on
// every partition's state on every broker, which ZooKeeper handles well at
// the scale of thousands of partitions.
//
// # Topic changes
//
// Any broker creates a topic as Kafka's admin client does: its config and
// its assignment (Kafka's placement: round-robin from a random start,
// rack-aware with broker.rack) in one transaction; then it waits, within
// the request's time, until the controller has elected the leaders, so
// clients can use the topic at once. A topic that exists is refused, so
// KAFKA_CREATE_TOPICS given to every broker creates each topic once.
// Deletion marks the topic in /admin/delete_topics; the controller removes
// its znodes, and every broker deletes the topic's logs when it sees the
// topic gone.
//
// # Sessions
//
// While ZooKeeper cannot be reached, the broker serves from its last
// Snapshot and changes fail with coordination.ErrMetadataUnavailable. When
// the session expires, the client opens a new one and the broker registers
// again and stands for controller again, without a restart; the watches of
// the old session are gone, so the mirror is read again in full.
package zk
