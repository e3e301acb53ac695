package config

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strata-broker/strata/coordination"
)

// Source says where Load reads configuration from. Each source overrides
// the ones before it: defaults, PropertiesFile, Env, Overrides.
type Source struct {
	// PropertiesFile is a server.properties path; "" for none.
	PropertiesFile string
	// Env is the environment in os.Environ() form. KAFKA_<KEY> sets the
	// key with '_' read as '.', lower-cased, as Kafka's Docker images do
	// (KAFKA_LOG_DIRS → log.dirs; the KAFKA_CFG_<KEY> form of Bitnami's
	// images too); STRATA_<KEY> sets strata.<key>. KAFKA_CREATE_TOPICS
	// (and KAFKA_CREATE_TOPICS_SEPARATOR) lists topics to create at
	// start-up. Variables with an empty value count as unset, as the
	// images' scripts treat them. Variables that configure the JVM
	// (KAFKA_HEAP_OPTS, ...) and the service links Kubernetes defines for a
	// service named kafka (KAFKA_SERVICE_HOST, KAFKA_PORT=tcp://...) are
	// ignored.
	Env []string
	// Overrides are key=value pairs from --override.
	Overrides []string
	// Logger receives warnings (keys accepted with no effect). Default:
	// slog.Default().
	Logger *slog.Logger
}

// Load reads the configuration from src over the defaults and validates
// it. An unknown key or a bad value is an error wrapping ErrInvalidConfig
// that names the key and where it was set.
func Load(src Source) (Config, error) {
	l := &loader{
		log:     src.Logger,
		origins: map[string]origin{},
		engine:  map[string]string{},
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if src.PropertiesFile != "" {
		if err := l.file(src.PropertiesFile); err != nil {
			return Config{}, err
		}
	}
	if err := l.env(src.Env); err != nil {
		return Config{}, err
	}
	for _, o := range src.Overrides {
		key, value, ok := strings.Cut(o, "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: --override %q: want key=value", ErrInvalidConfig, o)
		}
		if err := l.set(strings.TrimSpace(key), strings.TrimSpace(value), "--override", rankOverride); err != nil {
			return Config{}, err
		}
	}
	return l.build()
}

// loader gathers every source's text before anything is parsed, so that
// keys that depend on each other (log.retention.ms and .hours, listeners
// and advertised.listeners) are resolved once, over all sources, as Kafka
// resolves them over one merged properties map.
type loader struct {
	log          *slog.Logger
	origins      map[string]origin
	engine       map[string]string
	createTopics string // KAFKA_CREATE_TOPICS
	separator    string // KAFKA_CREATE_TOPICS_SEPARATOR
}

func (l *loader) file(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	props, err := parseProperties(string(data))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, path, err)
	}
	name := filepath.Base(path)
	for _, p := range props {
		if err := l.set(p.key, p.value, fmt.Sprintf("%s:%d", name, p.line), rankFile); err != nil {
			return err
		}
	}
	return nil
}

// set records key=value from where, after checking the key is known.
func (l *loader) set(key, value, where string, rank int) error {
	if key == "" {
		return fmt.Errorf("%w: %s: empty key", ErrInvalidConfig, where)
	}
	if _, ok := keyByName[key]; !ok {
		if strings.HasPrefix(key, "strata.") {
			if tk, ok := topicKeyByName[key]; ok {
				return fmt.Errorf("%w: %s: %s is a topic config; the broker default is %s", ErrInvalidConfig, where, key, tk.brokerKey)
			}
			// Engine keys are validated by the engine that reads them.
			l.engine[key] = value
			return nil
		}
		if tk, ok := topicKeyByName[key]; ok && tk.brokerKey != key {
			return fmt.Errorf("%w: %s: unknown key %s (a topic config; the broker default is %s)", ErrInvalidConfig, where, key, tk.brokerKey)
		}
		return fmt.Errorf("%w: %s: unknown key %s", ErrInvalidConfig, where, key)
	}
	l.origins[key] = origin{value: value, where: where, rank: rank}
	return nil
}

// ignoredEnv are KAFKA_* variables that Kafka's start scripts and Docker
// images read for the JVM, logging or the image itself, not broker keys.
var ignoredEnv = []string{
	"KAFKA_HOME", "KAFKA_VERSION", "KAFKA_DEBUG",
	"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
	"KAFKA_JMX_OPTS", "KAFKA_JMX_PORT", "KAFKA_JMX_HOSTNAME",
	"KAFKA_LOG4J_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL",
}

// ignoredStrataEnv are prefixes of STRATA_* variables that are not
// configuration: the engine test suite's crash-test harness.
var ignoredStrataEnv = []string{"STRATA_ENGINETEST_"}

// k8sServiceLink matches the variables Kubernetes defines in every pod for
// a service named "kafka" (KAFKA_SERVICE_HOST, KAFKA_PORT_9092_TCP_ADDR,
// ...). KAFKA_PORT itself is one when its value is a URL.
var k8sServiceLink = regexp.MustCompile(`^KAFKA_(SERVICE_HOST|SERVICE_PORT(_.*)?|PORT_[0-9]+_(TCP|UDP|SCTP)(_.*)?)$`)

func (l *loader) env(environ []string) error {
	// Sorted, so that which of two spellings of one key wins does not
	// depend on the environment's order.
	environ = slices.Sorted(slices.Values(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" {
			continue
		}
		where := "environment variable " + name
		switch {
		case name == "KAFKA_CREATE_TOPICS":
			l.createTopics = value
		case name == "KAFKA_CREATE_TOPICS_SEPARATOR":
			l.separator = value
		case slices.Contains(ignoredEnv, name), k8sServiceLink.MatchString(name),
			name == "KAFKA_PORT" && strings.Contains(value, "://"):
		case strings.HasPrefix(name, "KAFKA_"):
			key := envKey(strings.TrimPrefix(strings.TrimPrefix(name, "KAFKA_"), "CFG_"))
			if _, ok := keyByName[key]; !ok {
				return fmt.Errorf("%w: %s names unknown key %s", ErrInvalidConfig, where, key)
			}
			if err := l.set(key, strings.TrimSpace(value), where, rankEnv); err != nil {
				return err
			}
		case strings.HasPrefix(name, "STRATA_"):
			if slices.ContainsFunc(ignoredStrataEnv, func(p string) bool { return strings.HasPrefix(name, p) }) {
				continue
			}
			if err := l.set("strata."+envKey(strings.TrimPrefix(name, "STRATA_")), strings.TrimSpace(value), where, rankEnv); err != nil {
				return err
			}
		}
	}
	return nil
}

// envKey turns LOG_DIRS into log.dirs.
func envKey(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", ".")) }

// isSet reports whether a source set key.
func (l *loader) isSet(key string) bool { _, ok := l.origins[key]; return ok }

// wins reports whether key a, set by some source, takes precedence over
// key b: b is unset, or a came from a stronger source. Ties go to b, so
// callers pass the key Kafka prefers as b.
func (l *loader) wins(a, b string) bool {
	oa, okA := l.origins[a]
	ob, okB := l.origins[b]
	return okA && (!okB || oa.rank > ob.rank)
}

// bad wraps a value error with the key, its value and where it was set.
func (l *loader) bad(key string, err error) error {
	o := l.origins[key]
	return fmt.Errorf("%w: %s: %s=%q: %v", ErrInvalidConfig, o.where, key, o.value, err)
}

func (l *loader) build() (Config, error) {
	c := Default()
	c.origins = l.origins
	for _, k := range brokerKeys {
		o, ok := l.origins[k.name]
		if !ok {
			continue
		}
		if k.ignored {
			l.log.Warn("config key has no effect in Strata", "key", k.name, "value", o.value, "source", o.where)
		}
		if k.field == nil {
			continue
		}
		if err := k.field.parse(&c, o.value); err != nil {
			return Config{}, l.bad(k.name, err)
		}
	}
	for _, f := range families {
		if err := l.family(&c, f); err != nil {
			return Config{}, err
		}
	}
	if err := l.logDirs(&c); err != nil {
		return Config{}, err
	}
	if err := l.listeners(&c); err != nil {
		return Config{}, err
	}
	if l.isSet("zookeeper.connection.timeout.ms") {
		if err := ms(func(c *Config) *time.Duration { return &c.ZookeeperConnectionTimeoutMs }, 1).parse(&c, l.origins["zookeeper.connection.timeout.ms"].value); err != nil {
			return Config{}, l.bad("zookeeper.connection.timeout.ms", err)
		}
	} else {
		c.ZookeeperConnectionTimeoutMs = c.ZookeeperSessionTimeoutMs
	}
	if c.ZookeeperConnect != "" && !l.isSet("offsets.topic.replication.factor") {
		c.OffsetsTopicReplicationFactor = 3 // Kafka's default, now that there can be three brokers
	}
	if c.ReplicaFetchWaitMaxMs > c.ReplicaLagTimeMaxMs {
		// A follower waiting longer than the lag limit would drop out of
		// the ISR while idle; Kafka refuses this too.
		key := "replica.fetch.wait.max.ms"
		if !l.isSet(key) {
			key = "replica.lag.time.max.ms"
		}
		return Config{}, l.bad(key, fmt.Errorf("replica.fetch.wait.max.ms must be <= replica.lag.time.max.ms"))
	}
	var err error
	if c.CreateTopics, err = parseCreateTopics(l.createTopics, l.separator); err != nil {
		return Config{}, err
	}
	for k, v := range l.engine {
		c.Engine[k] = v
	}
	if err := checkPlugins(&c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// family resolves a duration with unit variants: the finest variant set
// wins, as Kafka's KafkaConfig resolves log.retention.{ms,minutes,hours}.
func (l *loader) family(c *Config, f *family) error {
	chosen := -1
	for i, key := range f.keys {
		o, ok := l.origins[key]
		if !ok {
			continue
		}
		// Every variant given must be well-formed, even one that loses.
		if _, err := parseInt(o.value, math.MinInt64, math.MaxInt64); err != nil {
			return l.bad(key, err)
		}
		if chosen < 0 {
			chosen = i
		}
	}
	if chosen < 0 {
		*f.target(c) = f.def
		return nil
	}
	key := f.keys[chosen]
	n, _ := parseInt(l.origins[key].value, math.MinInt64, math.MaxInt64)
	switch {
	case n < 0 && f.negForever:
		*f.target(c) = Forever
		return nil
	case n < 0:
		return l.bad(key, fmt.Errorf("must be >= 0"))
	}
	d := scale(n, f.units[chosen])
	if d < f.min {
		return l.bad(key, fmt.Errorf("must be at least %v", f.min))
	}
	*f.target(c) = d
	return nil
}

// logDirs resolves log.dirs and log.dir; log.dirs wins, as in Kafka,
// unless log.dir came from a stronger source.
func (l *loader) logDirs(c *Config) error {
	key := "log.dirs"
	if l.wins("log.dir", "log.dirs") {
		key = "log.dir"
	}
	text := l.origins[key].value
	if !l.isSet(key) {
		text = keyByName[key].def
	}
	var dirs []string
	for _, d := range strings.Split(text, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		d = filepath.Clean(d)
		if slices.Contains(dirs, d) {
			return l.bad(key, fmt.Errorf("%s is listed twice", d))
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		return l.bad(key, fmt.Errorf("needs at least one directory"))
	}
	c.LogDirs = dirs
	return nil
}

// parseCreateTopics parses KAFKA_CREATE_TOPICS:
// name:partitions:replicas[:cleanup.policy], separated by sep (default
// ","; "\n" or $'\n' mean a newline, as wurstmeister's image lets compose
// files write it).
func parseCreateTopics(text, sep string) ([]TopicSpec, error) {
	if text == "" {
		return nil, nil
	}
	switch sep {
	case "":
		sep = ","
	case `\n`, `$'\n'`:
		sep = "\n"
	}
	bad := func(entry, msg string, args ...any) error {
		return fmt.Errorf("%w: KAFKA_CREATE_TOPICS: %q: %s (want name:partitions:replicas[:cleanup.policy])",
			ErrInvalidConfig, entry, fmt.Sprintf(msg, args...))
	}
	var specs []TopicSpec
	for _, entry := range strings.Split(text, sep) {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) < 3 || len(parts) > 4 {
			return nil, bad(entry, "%d fields", len(parts))
		}
		spec := TopicSpec{Name: strings.TrimSpace(parts[0])}
		if err := coordination.ValidateTopicName(spec.Name); err != nil {
			return nil, bad(entry, "%v", err)
		}
		n, err := parseInt(parts[1], 1, math.MaxInt32)
		if err != nil {
			return nil, bad(entry, "partitions %v", err)
		}
		spec.Partitions = int32(n)
		if n, err = parseInt(parts[2], 1, math.MaxInt16); err != nil {
			return nil, bad(entry, "replicas %v", err)
		}
		spec.ReplicationFactor = int16(n)
		if len(parts) == 4 {
			if spec.CleanupPolicy, err = cleanupPolicy(strings.TrimSpace(parts[3])); err != nil {
				return nil, bad(entry, "cleanup.policy %v", err)
			}
		}
		if slices.ContainsFunc(specs, func(s TopicSpec) bool { return s.Name == spec.Name }) {
			return nil, bad(entry, "topic %s is listed twice", spec.Name)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}
