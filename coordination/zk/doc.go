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
//	/brokers/topics/<t>                 {"version":3,"topic_id":"<uuid>","partitions":{"0":[2,3,1]},
//	                                     "adding_replicas":{"0":[3]},"removing_replicas":{"0":[1]}}
//	                                    (partition 0 moving from [1,2] to [2,3]; {} when none moves)
//	/brokers/topics/<t>/partitions/<p>/state
//	                                    {"controller_epoch":..,"leader":..,"leader_epoch":..,"isr":[..],"version":1}
//	/config/topics/<t>                  {"version":1,"config":{"retention.ms":"..."}}
//	/admin/delete_topics/<t>            a topic marked for deletion
//	/latest_producer_id_block           {"version":1,"broker":..,"block_start":"..","block_end":".."}
//	/isr_change_notification/isr_change_<n>
//	                                    {"version":1,"partitions":[{"topic":..,"partition":..}]},
//	                                    written by leaders with their ISR changes, deleted by the controller
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
// creates the state of new partitions (every live replica is in sync, as
// a new partition holds no data yet, and the first of them leads). When a
// broker is gone or restarted (a new broker epoch: the czxid of its
// registration), it leaves the ISR of the partitions it follows (unless
// it is the last member) without a new leader epoch, and each partition it
// led gets a new leader, in a new leader epoch: the first live ISR member
// in replica order; the same broker again if it restarted and is the only
// one in sync; with unclean.leader.election.enable (the topic's override,
// else the broker's) the first live replica, alone in the ISR; else none,
// the ISR left as it was so that its members can lead again when they
// come back. A controlled shutdown (ControlledShutdown, on the
// controller) moves leadership off a broker and takes it out of the ISRs
// where another replica is in sync; the broker is elected nowhere until
// it registers again. With auto.leader.rebalance.enable the controller
// checks every leader.imbalance.check.interval.seconds which brokers lead
// too few of the partitions whose preferred (first) replica they are, and
// moves those back to them when they are in sync. The controller also
// completes reassignments and carries out topic deletions. Each of its
// writes is one ZooKeeper transaction that also checks the version of
// /controller_epoch it set, so a deposed controller changes nothing.
//
// # Replication
//
// A leader changes its partition's ISR itself (AlterISR): it writes the
// state znode with the version of its own mirror and the leader epoch
// unchanged, so a write that raced with the controller's (or with a newer
// leadership) fails and changes nothing; it adds an ISR change
// notification, as Kafka's leaders do. Any broker starts a reassignment
// (Reassign) by writing the topic znode as Kafka's tools do: the replicas
// become the target followed by the old replicas not in it, with
// adding_replicas and removing_replicas. Brokers start the new replicas,
// which their leader adds to the ISR once caught up; when every target
// replica is in sync the controller moves leadership to a target replica
// if needed and, in one transaction, limits the ISR and the replicas to
// the target. A cancellation restores the old replicas, and the
// controller takes the added ones out of the ISR and leadership.
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
