package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-broker/strata/engine"
)

// ConfigType is a key's type as DescribeConfigs (v3+) reports it; the
// values are Kafka's ConfigType codes, so the broker can send them as they
// are.
type ConfigType int8

// Kafka's config types.
const (
	TypeBoolean ConfigType = 1
	TypeString  ConfigType = 2
	TypeInt     ConfigType = 3
	TypeShort   ConfigType = 4
	TypeLong    ConfigType = 5
	TypeDouble  ConfigType = 6
	TypeList    ConfigType = 7
)

// KeyDoc describes one broker key, for --help and DescribeConfigs.
type KeyDoc struct {
	Name    string
	Type    ConfigType
	Default string // as text; "" when Kafka's default is null
	Doc     string // one line
}

// Keys returns every broker key Strata reads, sorted by name. strata.*
// keys that engines read are not listed: each engine documents its own.
func Keys() []KeyDoc {
	docs := make([]KeyDoc, 0, len(brokerKeys))
	for _, k := range brokerKeys {
		def := k.def
		if k.defDoc != "" {
			def = k.defDoc
		}
		docs = append(docs, KeyDoc{Name: k.name, Type: k.typ, Default: def, Doc: k.doc})
	}
	slices.SortFunc(docs, func(a, b KeyDoc) int { return strings.Compare(a.Name, b.Name) })
	return docs
}

// keyDef declares one broker key. Exactly one of field and family parses
// it, or neither for the keys resolved together in resolve (listeners,
// log.dirs, ...), whose get then says how to print them.
type keyDef struct {
	name   string
	typ    ConfigType
	def    string // default as text, parsed by Default()
	defDoc string // shown by Keys instead of def when the default is not a plain value
	doc    string
	field  field
	family *family
	get    func(c *Config) string // for keys without a field
	// ignored keys are accepted (they appear in Kafka's stock
	// server.properties) but have no effect in Strata; setting one logs a
	// warning.
	ignored bool
}

// value returns k's current value in c as text.
func (k *keyDef) value(c *Config) string {
	switch {
	case k.field != nil:
		return k.field.get(c)
	case k.family != nil:
		return k.family.get(c, k.name)
	case k.get != nil:
		return k.get(c)
	}
	return c.raw(k.name, k.def)
}

// raw returns the text some source gave key, or def.
func (c *Config) raw(key, def string) string {
	if o, ok := c.origins[key]; ok {
		return o.value
	}
	return def
}

// field parses a key's text into its Config field and prints it back.
// Errors say what is wrong with the value; the caller names the key and
// the source.
type field interface {
	parse(c *Config, v string) error
	get(c *Config) string
}

// intField is an integer key with an inclusive range.
type intField[T int16 | int32 | int64] struct {
	p        func(*Config) *T
	min, max int64
}

func (f intField[T]) parse(c *Config, v string) error {
	n, err := parseInt(v, f.min, f.max)
	if err != nil {
		return err
	}
	*f.p(c) = T(n)
	return nil
}

func (f intField[T]) get(c *Config) string { return strconv.FormatInt(int64(*f.p(c)), 10) }

func i16(p func(*Config) *int16, min int64) field {
	return intField[int16]{p, min, math.MaxInt16}
}
func i32(p func(*Config) *int32, min int64) field {
	return intField[int32]{p, min, math.MaxInt32}
}
func i64(p func(*Config) *int64, min int64) field {
	return intField[int64]{p, min, math.MaxInt64}
}

// parseInt parses a decimal integer in [min, max], as Kafka does after
// trimming.
func parseInt(v string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	return n, checkRange(n, min, max)
}

func checkRange(n, min, max int64) error {
	switch {
	case n >= min && n <= max:
		return nil
	case n < min && (max == math.MaxInt64 || max == math.MaxInt32 || max == math.MaxInt16):
		return fmt.Errorf("must be >= %d", min) // the upper bound is only the type's
	}
	return fmt.Errorf("must be between %d and %d", min, max)
}

// durField is a duration key counted in unit (ms for *.ms keys).
type durField struct {
	p    func(*Config) *time.Duration
	unit time.Duration
	min  int64 // in unit
}

func ms(p func(*Config) *time.Duration, min int64) field {
	return durField{p, time.Millisecond, min}
}

func (f durField) parse(c *Config, v string) error {
	n, err := parseInt(v, f.min, math.MaxInt64)
	if err != nil {
		return err
	}
	*f.p(c) = scale(n, f.unit)
	return nil
}

func (f durField) get(c *Config) string { return durText(*f.p(c), f.unit) }

// scale returns n units as a Duration, saturating at the longest Duration
// (Kafka's Long.MAX_VALUE ms means "never") and mapping negatives to
// Forever.
func scale(n int64, unit time.Duration) time.Duration {
	switch {
	case n < 0:
		return Forever
	case n > int64(math.MaxInt64/unit):
		return Never
	}
	return time.Duration(n) * unit
}

// durText prints d in unit, the inverse of scale.
func durText(d, unit time.Duration) string {
	switch {
	case d == Never:
		return strconv.FormatInt(math.MaxInt64, 10)
	case d < 0:
		return "-1"
	}
	return strconv.FormatInt(int64(d/unit), 10)
}

type boolField struct{ p func(*Config) *bool }

func (f boolField) parse(c *Config, v string) error {
	b, err := parseBool(v)
	if err != nil {
		return err
	}
	*f.p(c) = b
	return nil
}

func (f boolField) get(c *Config) string { return strconv.FormatBool(*f.p(c)) }

// parseBool accepts true and false in any case, as Kafka does; not 1/0/yes.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false")
}

type floatField struct {
	p        func(*Config) *float64
	min, max float64
}

func (f floatField) parse(c *Config, v string) error {
	x, err := parseFloat(v, f.min, f.max)
	if err != nil {
		return err
	}
	*f.p(c) = x
	return nil
}

func (f floatField) get(c *Config) string { return strconv.FormatFloat(*f.p(c), 'g', -1, 64) }

func parseFloat(v string, min, max float64) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(x) {
		return 0, fmt.Errorf("not a number")
	}
	if x < min || x > max {
		return 0, fmt.Errorf("must be between %g and %g", min, max)
	}
	return x, nil
}

// stringField is a text key; check, if set, validates and may normalise it.
type stringField struct {
	p     func(*Config) *string
	check func(string) (string, error)
}

func (f stringField) parse(c *Config, v string) error {
	v = strings.TrimSpace(v)
	if f.check != nil {
		var err error
		if v, err = f.check(v); err != nil {
			return err
		}
	}
	*f.p(c) = v
	return nil
}

func (f stringField) get(c *Config) string { return *f.p(c) }

// oneOf accepts one of values, case-sensitively as Kafka does.
func oneOf(values ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		if slices.Contains(values, v) {
			return v, nil
		}
		return "", fmt.Errorf("must be one of %s", strings.Join(values, ", "))
	}
}

// cleanupPolicy accepts a comma-separated list of delete and compact and
// normalises it to "delete", "compact" or "compact,delete".
func cleanupPolicy(v string) (string, error) {
	var compact, del bool
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			del = true
		default:
			return "", fmt.Errorf("must be a list of delete and compact")
		}
	}
	switch {
	case compact && del:
		return "compact,delete", nil
	case compact:
		return "compact", nil
	}
	return "delete", nil
}

// engineName accepts a registered engine's name, plugin:<name> or
// plugin:<path>. Which names are registered is known only once cmd has
// linked the engines in, and which plugins are declared only once every
// key is read, so the broker checks those (plugins.go, and the broker's
// topic config resolution).
func engineName(v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("must name an engine (mmap, mem, pebble, tiered, plugin:<name>, plugin:<path>)")
	}
	if ref, ok := strings.CutPrefix(v, PluginScheme); ok && strings.TrimSpace(ref) == "" {
		return "", fmt.Errorf("plugin: needs a plugin's name or a program's path")
	}
	return v, nil
}

// zkConnect accepts host:port[,host:port...][/chroot].
func zkConnect(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	hosts, chroot, hasChroot := strings.Cut(v, "/")
	if hasChroot && (chroot == "" || strings.HasSuffix(chroot, "/") || strings.Contains(chroot, "//")) {
		return "", fmt.Errorf("chroot %q must be a path such as /strata", "/"+chroot)
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := splitHostPort(strings.TrimSpace(h))
		if err != nil || host == "" {
			return "", fmt.Errorf("%q: want host:port[,host:port...][/chroot]", h)
		}
		if _, err := parseInt(port, 1, 65535); err != nil {
			return "", fmt.Errorf("%q: port %w", h, err)
		}
	}
	return v, nil
}

// ignoredInt accepts an integer key and throws it away.
type ignoredInt struct{}

func (ignoredInt) parse(_ *Config, v string) error {
	_, err := parseInt(v, math.MinInt32, math.MaxInt32)
	return err
}
func (ignoredInt) get(*Config) string { return "" } // value() prints the raw text

// family is a duration with unit variants (log.retention.ms, .minutes,
// .hours): as in Kafka, the finest variant given wins, whatever source
// gave it.
type family struct {
	keys   []string        // finest first
	units  []time.Duration // one per key
	target func(*Config) *time.Duration
	def    time.Duration
	// negForever makes a negative value mean Forever (retention);
	// otherwise values below min are errors.
	negForever bool
	min        time.Duration
}

// get prints key of the family: the finest key prints the effective value,
// the coarser ones what was set, or their default.
func (f *family) get(c *Config, key string) string {
	i := slices.Index(f.keys, key)
	if i == 0 {
		return durText(*f.target(c), f.units[0])
	}
	return c.raw(key, keyByName[key].def)
}

var (
	logRetention = &family{
		keys:       []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
		units:      []time.Duration{time.Millisecond, time.Minute, time.Hour},
		target:     func(c *Config) *time.Duration { return &c.LogRetentionMs },
		def:        168 * time.Hour,
		negForever: true,
	}
	logRoll = &family{
		keys:   []string{"log.roll.ms", "log.roll.hours"},
		units:  []time.Duration{time.Millisecond, time.Hour},
		target: func(c *Config) *time.Duration { return &c.LogRollMs },
		def:    168 * time.Hour,
		min:    time.Millisecond,
	}
	logRollJitter = &family{
		keys:   []string{"log.roll.jitter.ms", "log.roll.jitter.hours"},
		units:  []time.Duration{time.Millisecond, time.Hour},
		target: func(c *Config) *time.Duration { return &c.LogRollJitterMs },
	}
	families = []*family{logRetention, logRoll, logRollJitter}
)

// Defaults that are not plain values.
const (
	defaultListeners   = "PLAINTEXT://127.0.0.1:9092"
	defaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
	defaultLogDir      = "/tmp/strata-logs"
	maxLong            = "9223372036854775807"
)

// brokerKeys is the table of every broker key: the one place a key is
// declared.
var brokerKeys = []*keyDef{
	// Identity and listeners.
	{name: "broker.id", typ: TypeInt, def: "-1", doc: "This broker's id. -1: the id stored in meta.properties, or 0 for a new broker running alone, or (with zookeeper.connect and broker.id.generation.enable) one generated above reserved.broker.max.id.",
		field: i32(func(c *Config) *int32 { return &c.BrokerID }, -1)},
	{name: "broker.id.generation.enable", typ: TypeBoolean, def: "true", doc: "With zookeeper.connect: a broker without broker.id or a stored one takes a new id from ZooKeeper, above reserved.broker.max.id.",
		field: boolField{func(c *Config) *bool { return &c.BrokerIDGeneration }}},
	{name: "reserved.broker.max.id", typ: TypeInt, def: "1000", doc: "The largest broker.id an operator may configure; generated ids are above it.",
		field: i32(func(c *Config) *int32 { return &c.ReservedBrokerMaxID }, 0)},
	{name: "broker.rack", typ: TypeString, doc: "This broker's rack, returned in Metadata.",
		field: stringField{p: func(c *Config) *string { return &c.BrokerRack }}},
	{name: "listeners", typ: TypeString, def: defaultListeners, doc: "Comma-separated NAME://host:port addresses to listen on; an empty host binds all interfaces, port 0 a free port. Default: all interfaces when only an advertised address is set.",
		get: func(c *Config) string { return joinListeners(c.Listeners) }},
	{name: "advertised.listeners", typ: TypeString, defDoc: "listeners", doc: "NAME://host:port addresses given to clients, by listener name; required for a listener bound to all interfaces.",
		get: func(c *Config) string { return joinListeners(c.AdvertisedListeners) }},
	{name: "listener.security.protocol.map", typ: TypeString, def: defaultProtocolMap, doc: "NAME:PROTOCOL pairs mapping listener names to security protocols; Strata serves PLAINTEXT only."},
	{name: "inter.broker.listener.name", typ: TypeString, defDoc: "PLAINTEXT, or the first listener", doc: "The listener other brokers use to reach this one.",
		get: func(c *Config) string { return c.InterBrokerListenerName }},
	{name: "port", typ: TypeInt, def: "9092", doc: "Legacy (Kafka < 3.0): the port to listen on when listeners is not set."},
	{name: "host.name", typ: TypeString, doc: "Legacy (Kafka < 3.0): the host to listen on when listeners is not set; empty means all interfaces."},
	{name: "advertised.host.name", typ: TypeString, doc: "Legacy (Kafka < 3.0; KAFKA_ADVERTISED_HOST_NAME): the host given to clients when advertised.listeners is not set."},
	{name: "advertised.port", typ: TypeInt, defDoc: "the listener's port", doc: "Legacy (Kafka < 3.0; KAFKA_ADVERTISED_PORT): the port given to clients when advertised.listeners is not set."},

	// Storage.
	{name: "log.dirs", typ: TypeString, def: defaultLogDir, doc: "Comma-separated directories holding the logs and the broker's metadata (the first one); overrides log.dir.",
		get: func(c *Config) string { return strings.Join(c.LogDirs, ",") }},
	{name: "log.dir", typ: TypeString, def: defaultLogDir, doc: "The log directory, when log.dirs is not set."},
	{name: "log.engine", typ: TypeString, def: "mmap", doc: "The storage engine of partition logs: mmap, mem, pebble, tiered, plugin:<name> (a plugin declared with strata.plugins.<name>.path) or plugin:<path to the program>; a topic's strata.engine overrides it.",
		field: stringField{p: func(c *Config) *string { return &c.LogEngine }, check: engineName}},

	// Coordination.
	{name: "zookeeper.connect", typ: TypeString, doc: "host:port[,host:port...][/chroot] of the ZooKeeper ensemble to join; empty runs this broker alone.",
		field: stringField{p: func(c *Config) *string { return &c.ZookeeperConnect }, check: zkConnect}},
	{name: "zookeeper.session.timeout.ms", typ: TypeInt, def: "18000", doc: "ZooKeeper session timeout.",
		field: ms(func(c *Config) *time.Duration { return &c.ZookeeperSessionTimeoutMs }, 1)},
	{name: "zookeeper.connection.timeout.ms", typ: TypeInt, defDoc: "zookeeper.session.timeout.ms", doc: "How long to wait for a ZooKeeper connection.",
		get: func(c *Config) string { return durText(c.ZookeeperConnectionTimeoutMs, time.Millisecond) }},

	// Topics.
	{name: "num.partitions", typ: TypeInt, def: "1", doc: "Partitions of a topic created without a count (auto-created topics included).",
		field: i32(func(c *Config) *int32 { return &c.NumPartitions }, 1)},
	{name: "default.replication.factor", typ: TypeInt, def: "1", doc: "Replication factor of a topic created without one.",
		field: i16(func(c *Config) *int16 { return &c.DefaultReplicationFactor }, 1)},
	{name: "auto.create.topics.enable", typ: TypeBoolean, def: "true", doc: "Create a topic when a client asks for metadata of or produces to one that does not exist.",
		field: boolField{func(c *Config) *bool { return &c.AutoCreateTopics }}},
	{name: "delete.topic.enable", typ: TypeBoolean, def: "true", doc: "Allow DeleteTopics.",
		field: boolField{func(c *Config) *bool { return &c.DeleteTopicEnable }}},
	{name: "min.insync.replicas", typ: TypeInt, def: "1", doc: "Replicas that must have a batch before an acks=all produce succeeds.",
		field: i32(func(c *Config) *int32 { return &c.MinInsyncReplicas }, 1)},

	// Requests.
	{name: "message.max.bytes", typ: TypeInt, def: "1048588", doc: "Largest record batch accepted (topic: max.message.bytes).",
		field: i32(func(c *Config) *int32 { return &c.MessageMaxBytes }, 0)},
	{name: "socket.request.max.bytes", typ: TypeInt, def: "104857600", doc: "Largest request accepted.",
		field: i32(func(c *Config) *int32 { return &c.SocketRequestMaxBytes }, 1)},
	{name: "connections.max.idle.ms", typ: TypeLong, def: "600000", doc: "Idle connections are closed after this long.",
		field: ms(func(c *Config) *time.Duration { return &c.ConnectionsMaxIdleMs }, 1)},

	// Logs.
	{name: "log.segment.bytes", typ: TypeInt, def: "1073741824", doc: "Size at which a log segment rolls (topic: segment.bytes).",
		field: intField[int64]{func(c *Config) *int64 { return &c.LogSegmentBytes }, engine.MinSegmentBytes, math.MaxInt32}},
	{name: "log.roll.ms", typ: TypeLong, defDoc: "log.roll.hours", doc: "Age at which the active segment rolls (topic: segment.ms); wins over log.roll.hours.", family: logRoll},
	{name: "log.roll.hours", typ: TypeInt, def: "168", doc: "Age in hours at which the active segment rolls.", family: logRoll},
	{name: "log.roll.jitter.ms", typ: TypeLong, defDoc: "log.roll.jitter.hours", doc: "Most random jitter subtracted from the roll age (topic: segment.jitter.ms); stored, no effect yet.", family: logRollJitter},
	{name: "log.roll.jitter.hours", typ: TypeInt, def: "0", doc: "Most random jitter in hours subtracted from the roll age.", family: logRollJitter},
	{name: "log.index.interval.bytes", typ: TypeInt, def: "4096", doc: "Bytes of batches between two offset-index entries (topic: index.interval.bytes).",
		field: i32(func(c *Config) *int32 { return &c.LogIndexIntervalBytes }, 0)},
	{name: "log.index.size.max.bytes", typ: TypeInt, def: "10485760", doc: "Largest index file of a segment (topic: segment.index.bytes).",
		field: intField[int32]{func(c *Config) *int32 { return &c.LogIndexSizeMaxBytes }, engine.MinSegmentIndexBytes, math.MaxInt32}},
	{name: "log.retention.ms", typ: TypeLong, defDoc: "log.retention.minutes", doc: "Age after which segments are deleted, -1 for never (topic: retention.ms); wins over .minutes and .hours.", family: logRetention},
	{name: "log.retention.minutes", typ: TypeInt, defDoc: "log.retention.hours", doc: "log.retention.ms in minutes; wins over log.retention.hours.", family: logRetention},
	{name: "log.retention.hours", typ: TypeInt, def: "168", doc: "log.retention.ms in hours.", family: logRetention},
	{name: "log.retention.bytes", typ: TypeLong, def: "-1", doc: "Size per partition above which the oldest segments are deleted, -1 for no limit (topic: retention.bytes).",
		field: intField[int64]{func(c *Config) *int64 { return &c.LogRetentionBytes }, math.MinInt64, math.MaxInt64}},
	{name: "log.retention.check.interval.ms", typ: TypeLong, def: "300000", doc: "How often retention is enforced.",
		field: ms(func(c *Config) *time.Duration { return &c.LogRetentionCheckMs }, 1)},
	{name: "log.flush.interval.messages", typ: TypeLong, def: maxLong, doc: "Records appended to a partition before it is synced to disk (topic: flush.messages).",
		field: i64(func(c *Config) *int64 { return &c.LogFlushIntervalMessages }, 1)},
	{name: "log.flush.interval.ms", typ: TypeLong, def: maxLong, defDoc: "never", doc: "Age of the oldest unsynced append at which a partition is synced (topic: flush.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogFlushIntervalMs }, 0)},
	{name: "log.message.timestamp.type", typ: TypeString, def: "CreateTime", doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append (topic: message.timestamp.type).",
		field: stringField{p: func(c *Config) *string { return &c.LogMessageTimestampType }, check: oneOf("CreateTime", "LogAppendTime")}},
	{name: "log.cleanup.policy", typ: TypeList, def: "delete", doc: "delete, compact or both (topic: cleanup.policy).",
		field: stringField{p: func(c *Config) *string { return &c.LogCleanupPolicy }, check: cleanupPolicy}},

	// Topic defaults accepted and stored, not acted on.
	{name: "compression.type", typ: TypeString, def: "producer", doc: "Compression of stored batches; Strata keeps batches as produced, whatever this says.",
		field: stringField{p: func(c *Config) *string { return &c.CompressionType }, check: oneOf(compressionTypes...)}},
	{name: "log.cleaner.delete.retention.ms", typ: TypeLong, def: "86400000", doc: "How long compaction keeps tombstones (topic: delete.retention.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogCleanerDeleteRetentionMs }, 0)},
	{name: "log.cleaner.min.compaction.lag.ms", typ: TypeLong, def: "0", doc: "Youngest record compaction may remove (topic: min.compaction.lag.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogCleanerMinCompactionLagMs }, 0)},
	{name: "log.cleaner.max.compaction.lag.ms", typ: TypeLong, def: maxLong, doc: "Oldest a record may grow before compaction (topic: max.compaction.lag.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogCleanerMaxCompactionLagMs }, 1)},
	{name: "log.cleaner.min.cleanable.ratio", typ: TypeDouble, def: "0.5", doc: "Dirty ratio at which a log is compacted (topic: min.cleanable.dirty.ratio).",
		field: floatField{func(c *Config) *float64 { return &c.LogCleanerMinCleanableRatio }, 0, 1}},
	{name: "log.segment.delete.delay.ms", typ: TypeLong, def: "60000", doc: "Delay before a deleted segment's files are removed (topic: file.delete.delay.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogSegmentDeleteDelayMs }, 0)},
	{name: "unclean.leader.election.enable", typ: TypeBoolean, def: "false", doc: "Allow a leader from outside the ISR, losing data (topic: same key).",
		field: boolField{func(c *Config) *bool { return &c.UncleanLeaderElectionEnable }}},
	{name: "log.message.timestamp.difference.max.ms", typ: TypeLong, def: maxLong, doc: "Largest difference between a CreateTime timestamp and the broker's clock (topic: message.timestamp.difference.max.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogMessageTimestampDifferenceMaxMs }, 0)},
	{name: "log.message.timestamp.before.max.ms", typ: TypeLong, def: maxLong, doc: "How far in the past a CreateTime timestamp may be (topic: message.timestamp.before.max.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogMessageTimestampBeforeMaxMs }, 0)},
	{name: "log.message.timestamp.after.max.ms", typ: TypeLong, def: maxLong, doc: "How far in the future a CreateTime timestamp may be (topic: message.timestamp.after.max.ms).",
		field: ms(func(c *Config) *time.Duration { return &c.LogMessageTimestampAfterMaxMs }, 0)},
	{name: "log.message.downconversion.enable", typ: TypeBoolean, def: "true", doc: "Down-convert batches for old fetchers (topic: message.downconversion.enable); stored, no effect.",
		field: boolField{func(c *Config) *bool { return &c.LogMessageDownConversionEnable }}},
	{name: "log.preallocate", typ: TypeBoolean, def: "false", doc: "Preallocate segment files (topic: preallocate); stored, no effect.",
		field: boolField{func(c *Config) *bool { return &c.LogPreallocate }}},
	{name: "log.local.retention.ms", typ: TypeLong, def: "-2", doc: "Tiered storage: local retention age, -2 for log.retention.ms (topic: local.retention.ms).",
		field: i64(func(c *Config) *int64 { return &c.LogLocalRetentionMs }, -2)},
	{name: "log.local.retention.bytes", typ: TypeLong, def: "-2", doc: "Tiered storage: local retention size, -2 for log.retention.bytes (topic: local.retention.bytes).",
		field: i64(func(c *Config) *int64 { return &c.LogLocalRetentionBytes }, -2)},

	// Producers.
	{name: "producer.id.expiration.ms", typ: TypeInt, def: "86400000", doc: "How long an idle producer id's state is kept.",
		field: ms(func(c *Config) *time.Duration { return &c.ProducerIDExpirationMs }, 1)},

	// Groups.
	{name: "offsets.topic.num.partitions", typ: TypeInt, def: "50", doc: "Partitions of __consumer_offsets.",
		field: i32(func(c *Config) *int32 { return &c.OffsetsTopicNumPartitions }, 1)},
	{name: "offsets.topic.replication.factor", typ: TypeShort, def: "1", defDoc: "1 alone, 3 with zookeeper.connect", doc: "Replication factor of __consumer_offsets.",
		field: i16(func(c *Config) *int16 { return &c.OffsetsTopicReplicationFactor }, 1)},
	{name: "offsets.retention.minutes", typ: TypeInt, def: "10080", doc: "How long committed offsets of an empty group are kept.",
		field: durField{func(c *Config) *time.Duration { return &c.OffsetsRetentionMs }, time.Minute, 1}},
	{name: "offsets.retention.check.interval.ms", typ: TypeLong, def: "600000", doc: "How often expired committed offsets are removed.",
		field: ms(func(c *Config) *time.Duration { return &c.OffsetsRetentionCheckIntervalMs }, 1)},
	{name: "offset.metadata.max.bytes", typ: TypeInt, def: "4096", doc: "Longest metadata string an offset commit may carry.",
		field: i32(func(c *Config) *int32 { return &c.OffsetMetadataMaxBytes }, 0)},
	{name: "group.initial.rebalance.delay.ms", typ: TypeInt, def: "3000", doc: "How long the first rebalance of a new group waits for more members.",
		field: ms(func(c *Config) *time.Duration { return &c.GroupInitialRebalanceDelayMs }, 0)},
	{name: "group.min.session.timeout.ms", typ: TypeInt, def: "6000", doc: "Smallest session timeout a member may ask for.",
		field: ms(func(c *Config) *time.Duration { return &c.GroupMinSessionTimeoutMs }, 0)},
	{name: "group.max.session.timeout.ms", typ: TypeInt, def: "1800000", doc: "Largest session timeout a member may ask for.",
		field: ms(func(c *Config) *time.Duration { return &c.GroupMaxSessionTimeoutMs }, 0)},
	{name: "group.max.size", typ: TypeInt, def: "2147483647", doc: "Most members of one group.",
		field: i32(func(c *Config) *int32 { return &c.GroupMaxSize }, 1)},

	// Replication.
	{name: "replica.lag.time.max.ms", typ: TypeLong, def: "30000", doc: "A follower that has not caught up for this long leaves the ISR.",
		field: ms(func(c *Config) *time.Duration { return &c.ReplicaLagTimeMaxMs }, 1)},
	{name: "replica.fetch.max.bytes", typ: TypeInt, def: "1048576", doc: "Bytes a follower asks for per partition.",
		field: i32(func(c *Config) *int32 { return &c.ReplicaFetchMaxBytes }, 0)},
	{name: "replica.fetch.min.bytes", typ: TypeInt, def: "1", doc: "Bytes a follower's fetch waits for.",
		field: i32(func(c *Config) *int32 { return &c.ReplicaFetchMinBytes }, 0)},
	{name: "replica.fetch.wait.max.ms", typ: TypeInt, def: "500", doc: "Longest a follower's fetch waits.",
		field: ms(func(c *Config) *time.Duration { return &c.ReplicaFetchWaitMaxMs }, 0)},
	{name: "replica.socket.timeout.ms", typ: TypeInt, def: "30000", doc: "Network timeout of a follower's requests.",
		field: ms(func(c *Config) *time.Duration { return &c.ReplicaSocketTimeoutMs }, 1)},

	// Leadership.
	{name: "controlled.shutdown.enable", typ: TypeBoolean, def: "true", doc: "On a graceful stop, move leadership to other in-sync replicas before exiting.",
		field: boolField{func(c *Config) *bool { return &c.ControlledShutdownEnable }}},
	{name: "controlled.shutdown.max.retries", typ: TypeInt, def: "3", doc: "Attempts at a controlled shutdown before stopping anyway.",
		field: i32(func(c *Config) *int32 { return &c.ControlledShutdownMaxRetries }, 0)},
	{name: "controlled.shutdown.retry.backoff.ms", typ: TypeLong, def: "5000", doc: "Pause between controlled shutdown attempts.",
		field: ms(func(c *Config) *time.Duration { return &c.ControlledShutdownRetryBackoffMs }, 0)},
	{name: "auto.leader.rebalance.enable", typ: TypeBoolean, def: "true", doc: "The controller moves leadership back to preferred replicas.",
		field: boolField{func(c *Config) *bool { return &c.AutoLeaderRebalanceEnable }}},
	{name: "leader.imbalance.check.interval.seconds", typ: TypeLong, def: "300", doc: "How often the controller looks for leadership away from preferred replicas.",
		field: durField{func(c *Config) *time.Duration { return &c.LeaderImbalanceCheckIntervalSeconds }, time.Second, 1}},
	{name: "leader.imbalance.per.broker.percentage", typ: TypeInt, def: "10", doc: "Share of a broker's preferred partitions led elsewhere that triggers a rebalance.",
		field: i32(func(c *Config) *int32 { return &c.LeaderImbalancePerBrokerPercentage }, 0)},

	// Keys of Kafka's stock server.properties that mean nothing to Strata:
	// accepted so that file works unchanged, with a warning when set.
	{name: "num.network.threads", typ: TypeInt, def: "3", doc: "Accepted for Kafka compatibility; no effect (Strata serves each connection on its own goroutine).", field: ignoredInt{}, ignored: true},
	{name: "num.io.threads", typ: TypeInt, def: "8", doc: "Accepted for Kafka compatibility; no effect.", field: ignoredInt{}, ignored: true},
	{name: "socket.send.buffer.bytes", typ: TypeInt, def: "102400", doc: "Accepted for Kafka compatibility; no effect (the OS default is used).", field: ignoredInt{}, ignored: true},
	{name: "socket.receive.buffer.bytes", typ: TypeInt, def: "102400", doc: "Accepted for Kafka compatibility; no effect (the OS default is used).", field: ignoredInt{}, ignored: true},
	{name: "num.recovery.threads.per.data.dir", typ: TypeInt, def: "1", doc: "Accepted for Kafka compatibility; no effect.", field: ignoredInt{}, ignored: true},
	{name: "transaction.state.log.replication.factor", typ: TypeShort, def: "3", doc: "Accepted for Kafka compatibility; no effect (no transactions yet).", field: ignoredInt{}, ignored: true},
	{name: "transaction.state.log.min.isr", typ: TypeInt, def: "2", doc: "Accepted for Kafka compatibility; no effect (no transactions yet).", field: ignoredInt{}, ignored: true},
}

// compressionTypes are compression.type's values.
var compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}

// keyByName indexes brokerKeys.
var keyByName = func() map[string]*keyDef {
	m := make(map[string]*keyDef, len(brokerKeys))
	for _, k := range brokerKeys {
		if _, dup := m[k.name]; dup {
			panic("config: key declared twice: " + k.name)
		}
		m[k.name] = k
	}
	return m
}()

func joinListeners(ls []Listener) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ",")
}
