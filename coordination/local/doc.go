// Package local is the embedded coordination of a broker that runs alone
// (no zookeeper.connect): the cluster is this one broker, which is also the
// controller and the leader of every partition, and the cluster metadata
// lives in files in the broker's first log directory. It implements
// coordination.Replication for a cluster of one: the only ISR and the only
// replica set is this broker, and a controlled shutdown moves nothing.
//
// # Files
//
// meta.properties is Kafka's file of the same name, in Kafka's format, so
// tools that read it (and operators used to it) keep working:
//
//	#Written by Strata; do not edit.
//	version=0
//	broker.id=0
//	cluster.id=<22 characters: a random UUID, base64url without padding>
//
// It is written once, when the directory is first used. Later opens reuse
// its cluster.id and broker.id; a configured broker.id other than the
// stored one is an error, as in Kafka, since the data belongs to that
// broker.
//
// cluster-metadata.json holds everything else. Its first line is a header
// with a format version and the CRC-32C (Castagnoli) of the bytes after
// that line, as eight lower-case hex digits; the rest is JSON:
//
//	# strata cluster metadata v1 crc32c=1b2c3d4e
//	{
//	  "cluster_id": "...",            same as meta.properties
//	  "broker_id": 0,                 same as meta.properties
//	  "metadata_version": 7,          Snapshot.Version when written
//	  "next_producer_id": 2000,       first id of the next producer id block
//	  "topics": [                     sorted by name
//	    {
//	      "name": "orders",
//	      "id": "<22-character base64url UUID>",
//	      "internal": false,
//	      "configs": {"retention.ms": "60000"},   overrides only; omitted when none
//	      "partitions": [                          index = position
//	        {"replicas": [0], "isr": [0], "leader": 0, "leader_epoch": 3}
//	      ]
//	    }
//	  ]
//	}
//
// Every change rewrites the whole file atomically: the new content goes to
// cluster-metadata.json.tmp, which is synced, renamed over the old file,
// and the directory synced. A crash leaves the old or the new file, never a
// mix; a leftover .tmp is removed on open. A file that fails its CRC or
// does not parse is an error on open, never read as an empty cluster.
// Files are created in this order on first use: cluster-metadata.json,
// then meta.properties; so meta.properties without the metadata file means
// the file was lost (or the directory is a Kafka broker's), which is an
// error, while the metadata file without meta.properties (a crash between
// the two) rewrites meta.properties from it.
//
// A .lock file in the directory is held with flock(2) while the
// coordinator is open, so two brokers cannot share a directory; Kafka
// locks the same file.
//
// Leader epochs increase by one on every open: the broker coming back is
// a new leadership, as when Kafka's controller re-elects a restarted
// broker, so clients holding the old epoch refresh their metadata.
package local
