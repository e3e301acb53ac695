// Package config holds a broker's configuration: Kafka's key names and
// defaults, so existing knowledge transfers, plus Strata's own keys
// (log.engine, strata.*). Sources, weakest first: defaults, a
// server.properties file, the environment (KAFKA_* as Kafka's Docker images
// read them, STRATA_* for Strata's keys), then --override key=value. An
// unknown key or a malformed value is an error naming the key and where it
// came from.
//
// Every broker key is declared once, in the table in keys.go, with its
// default, a one-line doc (which [Keys] hands to --help) and how it parses
// into [Config]. Topic-level keys (retention.ms, max.message.bytes,
// strata.engine, ...) have broker-level defaults here (log.retention.ms,
// message.max.bytes, log.engine, ...); [Config.Topic] resolves a topic's
// overrides against them, and [TopicConfigKeys] says which broker key
// supplies each default.
//
// Where Strata departs from Kafka, on purpose:
//   - listeners defaults to PLAINTEXT://127.0.0.1:9092 (loopback), so a
//     broker started with no configuration is not reachable from the
//     network. Configuring an advertised address (advertised.listeners, or
//     the legacy advertised.host.name/advertised.port that
//     KAFKA_ADVERTISED_HOST_NAME sets) without listeners binds all
//     interfaces on the advertised ports instead, as Kafka's Docker images
//     derive listeners.
//   - Unknown keys are errors, not warnings, so a typo is found at start-up.
//     A few keys from Kafka's stock server.properties that mean nothing here
//     (thread counts, socket buffer sizes) are accepted with a warning; see
//     [Keys].
//   - offsets.topic.replication.factor defaults to 1, not 3, when the
//     broker runs alone (no zookeeper.connect), since one broker can hold
//     only one replica and consumer groups would otherwise never work.
//   - A listener bound to all interfaces needs an advertised host: Strata
//     does not guess one from the machine's host name.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"
)

// ErrInvalidConfig is wrapped by every error about a key or a value: an
// unknown key, a malformed value, a value out of range. The broker maps it
// to INVALID_CONFIG for topic configs.
var ErrInvalidConfig = errors.New("config: invalid config")

// Forever is the retention (log.retention.ms, retention.ms) that keeps
// data forever, Kafka's -1. Every negative retention is stored as Forever.
const Forever time.Duration = -1

// Never is the flush interval (log.flush.interval.ms, flush.ms) that never
// syncs by time: the longest duration, as engine.DefaultFlushInterval.
const Never time.Duration = math.MaxInt64

// Listener is one entry of listeners or advertised.listeners:
// NAME://host:port. Only listeners whose security protocol is PLAINTEXT
// are supported (the name is mapped to a protocol by
// listener.security.protocol.map).
type Listener struct {
	Name string // PLAINTEXT, or a name mapped to PLAINTEXT
	Host string // "" binds all interfaces
	Port int32  // 0 in listeners picks a free port
}

// String formats l as NAME://host:port, bracketing IPv6 hosts.
func (l Listener) String() string {
	return l.Name + "://" + net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
}

// TopicSpec is one entry of KAFKA_CREATE_TOPICS:
// name:partitions:replicas[:cleanup.policy].
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	CleanupPolicy     string // "" for the default
}

// Config is a broker's configuration. Field comments name the key and its
// default. Durations read from *.ms keys hold the value in a
// time.Duration; a Kafka "Long.MAX_VALUE ms" default is the longest
// Duration.
type Config struct {
	BrokerID            int32      // broker.id (-1: the stored id, or 0 when alone, or generated)
	BrokerIDGeneration  bool       // broker.id.generation.enable (true)
	ReservedBrokerMaxID int32      // reserved.broker.max.id (1000)
	BrokerRack          string     // broker.rack ("")
	Listeners           []Listener // listeners (PLAINTEXT://127.0.0.1:9092)
	AdvertisedListeners []Listener // advertised.listeners: one per listener, same order
	// InterBrokerListenerName (inter.broker.listener.name) names the
	// listener other brokers reach this one on: PLAINTEXT if there is such
	// a listener, else the first.
	InterBrokerListenerName string
	LogDirs                 []string // log.dirs (log.dir; /tmp/strata-logs)
	ZookeeperConnect        string   // zookeeper.connect ("" runs alone)

	ZookeeperSessionTimeoutMs    time.Duration // zookeeper.session.timeout.ms (18s)
	ZookeeperConnectionTimeoutMs time.Duration // zookeeper.connection.timeout.ms (the session timeout)

	NumPartitions            int32 // num.partitions (1)
	DefaultReplicationFactor int16 // default.replication.factor (1)
	AutoCreateTopics         bool  // auto.create.topics.enable (true)
	DeleteTopicEnable        bool  // delete.topic.enable (true)

	MessageMaxBytes       int32         // message.max.bytes (1048588)
	SocketRequestMaxBytes int32         // socket.request.max.bytes (104857600)
	ConnectionsMaxIdleMs  time.Duration // connections.max.idle.ms (10 min)

	LogSegmentBytes          int64         // log.segment.bytes (1 GiB)
	LogRollMs                time.Duration // log.roll.ms / log.roll.hours (168h)
	LogRollJitterMs          time.Duration // log.roll.jitter.ms / log.roll.jitter.hours (0)
	LogIndexIntervalBytes    int32         // log.index.interval.bytes (4096)
	LogIndexSizeMaxBytes     int32         // log.index.size.max.bytes (10 MiB)
	LogRetentionMs           time.Duration // log.retention.ms / .minutes / .hours (168h; Forever)
	LogRetentionBytes        int64         // log.retention.bytes (-1: no limit)
	LogRetentionCheckMs      time.Duration // log.retention.check.interval.ms (5 min)
	LogFlushIntervalMessages int64         // log.flush.interval.messages (MaxInt64)
	LogFlushIntervalMs       time.Duration // log.flush.interval.ms (Never)
	LogMessageTimestampType  string        // log.message.timestamp.type (CreateTime)
	LogCleanupPolicy         string        // log.cleanup.policy (delete)
	MinInsyncReplicas        int32         // min.insync.replicas (1)

	// Broker defaults of topic keys that Strata accepts and stores, so
	// clients that set them and DescribeConfigs work, but does not act on
	// (yet): the cleaner, preallocation, tiered-storage retention.
	CompressionType                    string        // compression.type (producer: batches are kept as produced)
	LogCleanerDeleteRetentionMs        time.Duration // log.cleaner.delete.retention.ms (1 day)
	LogCleanerMinCompactionLagMs       time.Duration // log.cleaner.min.compaction.lag.ms (0)
	LogCleanerMaxCompactionLagMs       time.Duration // log.cleaner.max.compaction.lag.ms (MaxInt64 ms)
	LogCleanerMinCleanableRatio        float64       // log.cleaner.min.cleanable.ratio (0.5)
	LogSegmentDeleteDelayMs            time.Duration // log.segment.delete.delay.ms (1 min)
	UncleanLeaderElectionEnable        bool          // unclean.leader.election.enable (false)
	LogMessageTimestampDifferenceMaxMs time.Duration // log.message.timestamp.difference.max.ms (MaxInt64 ms)
	LogMessageTimestampBeforeMaxMs     time.Duration // log.message.timestamp.before.max.ms (MaxInt64 ms)
	LogMessageTimestampAfterMaxMs      time.Duration // log.message.timestamp.after.max.ms (MaxInt64 ms)
	LogMessageDownConversionEnable     bool          // log.message.downconversion.enable (true)
	LogPreallocate                     bool          // log.preallocate (false)
	LogLocalRetentionMs                int64         // log.local.retention.ms (-2: as log.retention.ms)
	LogLocalRetentionBytes             int64         // log.local.retention.bytes (-2: as log.retention.bytes)

	LogEngine string // log.engine (mmap)

	ProducerIDExpirationMs time.Duration // producer.id.expiration.ms (1 day)

	// Consumer groups and their offsets topic.
	OffsetsTopicNumPartitions       int32         // offsets.topic.num.partitions (50)
	OffsetsTopicReplicationFactor   int16         // offsets.topic.replication.factor (1 alone; 3 with zookeeper.connect)
	OffsetsRetentionMs              time.Duration // offsets.retention.minutes (7 days)
	OffsetsRetentionCheckIntervalMs time.Duration // offsets.retention.check.interval.ms (10 min)
	OffsetMetadataMaxBytes          int32         // offset.metadata.max.bytes (4096)
	GroupInitialRebalanceDelayMs    time.Duration // group.initial.rebalance.delay.ms (3s)
	GroupMinSessionTimeoutMs        time.Duration // group.min.session.timeout.ms (6s)
	GroupMaxSessionTimeoutMs        time.Duration // group.max.session.timeout.ms (30 min)
	GroupMaxSize                    int32         // group.max.size (MaxInt32)

	// Replication.
	ReplicaLagTimeMaxMs    time.Duration // replica.lag.time.max.ms (30s)
	ReplicaFetchMaxBytes   int32         // replica.fetch.max.bytes (1 MiB)
	ReplicaFetchWaitMaxMs  time.Duration // replica.fetch.wait.max.ms (500ms)
	ReplicaFetchMinBytes   int32         // replica.fetch.min.bytes (1)
	ReplicaSocketTimeoutMs time.Duration // replica.socket.timeout.ms (30s)

	// Leadership.
	ControlledShutdownEnable            bool          // controlled.shutdown.enable (true)
	ControlledShutdownMaxRetries        int32         // controlled.shutdown.max.retries (3)
	ControlledShutdownRetryBackoffMs    time.Duration // controlled.shutdown.retry.backoff.ms (5s)
	AutoLeaderRebalanceEnable           bool          // auto.leader.rebalance.enable (true)
	LeaderImbalanceCheckIntervalSeconds time.Duration // leader.imbalance.check.interval.seconds (300s)
	LeaderImbalancePerBrokerPercentage  int32         // leader.imbalance.per.broker.percentage (10)

	// CreateTopics are created at start-up if missing (KAFKA_CREATE_TOPICS).
	CreateTopics []TopicSpec

	// Engine holds strata.* keys meant for engines (strata.pebble.*, ...),
	// passed through to engine.Options.Settings and validated by the
	// engine that reads them.
	Engine map[string]string

	// origins records, for each key some source set, its text and where it
	// came from, for DescribeConfigs and for error messages. Nil in
	// Default(): nothing was set.
	origins map[string]origin
}

// origin is where a key's value came from.
type origin struct {
	value string
	where string // "server.properties:12", "environment variable KAFKA_X", "--override"
	rank  int    // rankFile < rankEnv < rankOverride
}

// Source ranks, weakest first.
const (
	rankDefault = iota
	rankFile
	rankEnv
	rankOverride
)

// Default returns the configuration with every key at its default: Kafka's
// defaults, except where the package doc says otherwise.
func Default() Config {
	var c Config
	for _, k := range brokerKeys {
		if k.field == nil || k.family != nil {
			continue
		}
		if err := k.field.parse(&c, k.def); err != nil {
			panic(fmt.Sprintf("config: default of %s does not parse: %v", k.name, err))
		}
	}
	for _, f := range families {
		*f.target(&c) = f.def
	}
	c.LogFlushIntervalMs = Never
	c.ZookeeperConnectionTimeoutMs = c.ZookeeperSessionTimeoutMs
	c.Listeners = []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
	c.AdvertisedListeners = []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
	c.InterBrokerListenerName = "PLAINTEXT"
	c.LogDirs = []string{defaultLogDir}
	c.Engine = map[string]string{}
	return c
}

// AdvertisedListener returns the advertised address of the listener named
// name: what Metadata returns to a client connected on that listener.
func (c *Config) AdvertisedListener(name string) (Listener, bool) {
	for _, l := range c.AdvertisedListeners {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}

// Origin reports where key's value came from ("server.properties:12",
// "environment variable KAFKA_LOG_DIRS", "--override") and whether any
// source set it; false means the key is at its default.
func (c *Config) Origin(key string) (where string, set bool) {
	o, ok := c.origins[key]
	return o.where, ok
}
