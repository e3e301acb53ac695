package config

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// load runs Load with a properties file holding file (if not empty).
func load(t *testing.T, file string, env, overrides []string) (Config, error) {
	t.Helper()
	src := Source{Env: env, Overrides: overrides, Logger: quiet}
	if file != "" {
		src.PropertiesFile = filepath.Join(t.TempDir(), "server.properties")
		if err := os.WriteFile(src.PropertiesFile, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Load(src)
}

func mustLoad(t *testing.T, file string, env, overrides []string) Config {
	t.Helper()
	c, err := load(t, file, env, overrides)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// wantErr checks err wraps ErrInvalidConfig and mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("error %q does not wrap ErrInvalidConfig", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	want := map[string]any{
		"BrokerID":                      int32(-1),
		"Listeners":                     []Listener{{"PLAINTEXT", "127.0.0.1", 9092}},
		"AdvertisedListeners":           []Listener{{"PLAINTEXT", "127.0.0.1", 9092}},
		"LogDirs":                       []string{"/tmp/strata-logs"},
		"ZookeeperConnect":              "",
		"NumPartitions":                 int32(1),
		"DefaultReplicationFactor":      int16(1),
		"AutoCreateTopics":              true,
		"DeleteTopicEnable":             true,
		"MessageMaxBytes":               int32(1048588),
		"SocketRequestMaxBytes":         int32(104857600),
		"LogSegmentBytes":               int64(1073741824),
		"LogRollMs":                     168 * time.Hour,
		"LogIndexIntervalBytes":         int32(4096),
		"LogIndexSizeMaxBytes":          int32(10485760),
		"LogRetentionMs":                168 * time.Hour,
		"LogRetentionBytes":             int64(-1),
		"LogRetentionCheckMs":           5 * time.Minute,
		"LogFlushIntervalMessages":      int64(math.MaxInt64),
		"LogFlushIntervalMs":            Never,
		"LogMessageTimestampType":       "CreateTime",
		"LogCleanupPolicy":              "delete",
		"MinInsyncReplicas":             int32(1),
		"LogEngine":                     "mmap",
		"ProducerIDExpirationMs":        24 * time.Hour,
		"OffsetsTopicNumPartitions":     int32(50),
		"OffsetsTopicReplicationFactor": int16(1),
		"GroupInitialRebalanceDelayMs":  3 * time.Second,
		"CompressionType":               "producer",
	}
	v := reflect.ValueOf(c)
	for name, w := range want {
		if got := v.FieldByName(name).Interface(); !reflect.DeepEqual(got, w) {
			t.Errorf("Default().%s = %v, want %v", name, got, w)
		}
	}
	// Load with no sources is Default.
	loaded := mustLoad(t, "", nil, nil)
	loaded.origins = nil
	if !reflect.DeepEqual(loaded, c) {
		t.Errorf("Load(nothing) = %+v\nwant Default() = %+v", loaded, c)
	}
}

func TestKeys(t *testing.T) {
	keys := Keys()
	if len(keys) != len(brokerKeys) {
		t.Fatalf("Keys() has %d keys, table %d", len(keys), len(brokerKeys))
	}
	byName := map[string]KeyDoc{}
	for i, k := range keys {
		if i > 0 && keys[i-1].Name >= k.Name {
			t.Errorf("Keys() not sorted at %s", k.Name)
		}
		if k.Doc == "" || k.Type == 0 {
			t.Errorf("key %s has no doc or type", k.Name)
		}
		byName[k.Name] = k
	}
	for name, def := range map[string]string{
		"log.retention.hours": "168", "num.partitions": "1", "message.max.bytes": "1048588",
		"listeners": "PLAINTEXT://127.0.0.1:9092", "log.dirs": "/tmp/strata-logs", "log.engine": "mmap",
		"log.flush.interval.ms": "never", "producer.id.expiration.ms": "86400000",
	} {
		if got := byName[name].Default; got != def {
			t.Errorf("Keys()[%s].Default = %q, want %q", name, got, def)
		}
	}
}

func TestPrecedence(t *testing.T) {
	const file = "num.partitions=2\nlog.segment.bytes=1000000\n"
	env := []string{"KAFKA_NUM_PARTITIONS=3", "KAFKA_LOG_RETENTION_BYTES=5"}
	over := []string{"num.partitions=4"}
	for _, tc := range []struct {
		name       string
		file       string
		env, over  []string
		partitions int32
		origin     string
	}{
		{"defaults", "", nil, nil, 1, ""},
		{"file", file, nil, nil, 2, "server.properties:1"},
		{"env over file", file, env, nil, 3, "environment variable KAFKA_NUM_PARTITIONS"},
		{"override over env", file, env, over, 4, "--override"},
		{"override over file", file, nil, over, 4, "--override"},
		{"env alone", "", env, nil, 3, "environment variable KAFKA_NUM_PARTITIONS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.file, tc.env, tc.over)
			if c.NumPartitions != tc.partitions {
				t.Errorf("NumPartitions = %d, want %d", c.NumPartitions, tc.partitions)
			}
			where, set := c.Origin("num.partitions")
			if where != tc.origin || set != (tc.origin != "") {
				t.Errorf("Origin = %q, %v; want %q", where, set, tc.origin)
			}
			// Keys a stronger source leaves alone keep the weaker one's value.
			if tc.file != "" && c.LogSegmentBytes != 1000000 {
				t.Errorf("LogSegmentBytes = %d, want the file's 1000000", c.LogSegmentBytes)
			}
			if tc.env != nil && c.LogRetentionBytes != 5 {
				t.Errorf("LogRetentionBytes = %d, want the environment's 5", c.LogRetentionBytes)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   []string
		check func(c Config) bool
	}{
		{"log dirs", []string{"KAFKA_LOG_DIRS=/a, /b"}, func(c Config) bool { return reflect.DeepEqual(c.LogDirs, []string{"/a", "/b"}) }},
		{"log dir", []string{"KAFKA_LOG_DIR=/c"}, func(c Config) bool { return reflect.DeepEqual(c.LogDirs, []string{"/c"}) }},
		{"broker id", []string{"KAFKA_BROKER_ID=5"}, func(c Config) bool { return c.BrokerID == 5 }},
		{"zookeeper", []string{"KAFKA_ZOOKEEPER_CONNECT=zk1:2181,zk2:2181/strata"}, func(c Config) bool {
			return c.ZookeeperConnect == "zk1:2181,zk2:2181/strata" && c.OffsetsTopicReplicationFactor == 3
		}},
		{"zookeeper, offsets RF set", []string{"KAFKA_ZOOKEEPER_CONNECT=zk:2181", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1"}, func(c Config) bool {
			return c.OffsetsTopicReplicationFactor == 1
		}},
		{"bool", []string{"KAFKA_AUTO_CREATE_TOPICS_ENABLE=FALSE"}, func(c Config) bool { return !c.AutoCreateTopics }},
		{"hours", []string{"KAFKA_LOG_RETENTION_HOURS=1"}, func(c Config) bool { return c.LogRetentionMs == time.Hour }},
		{"bitnami KAFKA_CFG_", []string{"KAFKA_CFG_NUM_PARTITIONS=7"}, func(c Config) bool { return c.NumPartitions == 7 }},
		{"rack", []string{"KAFKA_BROKER_RACK=r1"}, func(c Config) bool { return c.BrokerRack == "r1" }},
		{"advertised host name", []string{"KAFKA_ADVERTISED_HOST_NAME=kafka"}, func(c Config) bool {
			return reflect.DeepEqual(c.Listeners, []Listener{{"PLAINTEXT", "", 9092}}) &&
				reflect.DeepEqual(c.AdvertisedListeners, []Listener{{"PLAINTEXT", "kafka", 9092}})
		}},
		{"advertised host and port", []string{"KAFKA_ADVERTISED_HOST_NAME=kafka", "KAFKA_ADVERTISED_PORT=32768"}, func(c Config) bool {
			return reflect.DeepEqual(c.Listeners, []Listener{{"PLAINTEXT", "", 9092}}) &&
				reflect.DeepEqual(c.AdvertisedListeners, []Listener{{"PLAINTEXT", "kafka", 32768}})
		}},
		{"advertised host, port from listeners", []string{"KAFKA_ADVERTISED_HOST_NAME=kafka", "KAFKA_LISTENERS=PLAINTEXT://:29092"}, func(c Config) bool {
			return reflect.DeepEqual(c.AdvertisedListeners, []Listener{{"PLAINTEXT", "kafka", 29092}})
		}},
		{"advertised host, legacy port", []string{"KAFKA_ADVERTISED_HOST_NAME=kafka", "KAFKA_PORT=9093"}, func(c Config) bool {
			return reflect.DeepEqual(c.Listeners, []Listener{{"PLAINTEXT", "", 9093}}) &&
				reflect.DeepEqual(c.AdvertisedListeners, []Listener{{"PLAINTEXT", "kafka", 9093}})
		}},
		{"advertised listeners alone bind all interfaces", []string{"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://broker:9092"}, func(c Config) bool {
			return reflect.DeepEqual(c.Listeners, []Listener{{"PLAINTEXT", "", 9092}}) &&
				reflect.DeepEqual(c.AdvertisedListeners, []Listener{{"PLAINTEXT", "broker", 9092}})
		}},
		{"strata keys", []string{"STRATA_PEBBLE_CACHE_SIZE=64MiB"}, func(c Config) bool {
			return reflect.DeepEqual(c.Engine, map[string]string{"strata.pebble.cache.size": "64MiB"})
		}},
		{"create topics", []string{"KAFKA_CREATE_TOPICS=a:1:1"}, func(c Config) bool {
			return reflect.DeepEqual(c.CreateTopics, []TopicSpec{{"a", 1, 1, ""}})
		}},
		{"ignored JVM and image variables", []string{
			"KAFKA_HOME=/opt/kafka", "KAFKA_VERSION=3.6.0", "KAFKA_HEAP_OPTS=-Xmx1G", "KAFKA_OPTS=-Dx=y",
			"KAFKA_JMX_OPTS=-Dcom.sun.management.jmxremote", "KAFKA_LOG4J_OPTS=-Dlog4j.configuration=x",
			"KAFKA_GC_LOG_OPTS=-Xlog:gc", "KAFKA_JVM_PERFORMANCE_OPTS=-server", "KAFKA_DEBUG=y", "KAFKA_JMX_PORT=9999",
			"PATH=/bin", "HOME=/root", "STRATA_ENGINETEST_CHILD=/tmp/x",
		}, isDefault},
		{"kubernetes service links", []string{
			"KAFKA_SERVICE_HOST=10.0.0.1", "KAFKA_SERVICE_PORT=9092", "KAFKA_SERVICE_PORT_BROKER=9092",
			"KAFKA_PORT=tcp://10.0.0.1:9092", "KAFKA_PORT_9092_TCP=tcp://10.0.0.1:9092",
			"KAFKA_PORT_9092_TCP_ADDR=10.0.0.1", "KAFKA_PORT_9092_TCP_PORT=9092", "KAFKA_PORT_9092_TCP_PROTO=tcp",
		}, isDefault},
		{"empty values are unset", []string{"KAFKA_BROKER_ID=", "KAFKA_ADVERTISED_HOST_NAME="}, isDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, "", tc.env, nil)
			if !tc.check(c) {
				t.Errorf("env %q gave %+v", tc.env, c)
			}
		})
	}
}

func isDefault(c Config) bool {
	c.origins = nil
	return reflect.DeepEqual(c, Default())
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env   string
		parts []string
	}{
		{"KAFKA_FOO_BAR=1", []string{"KAFKA_FOO_BAR", "foo.bar"}},
		{"KAFKA_PROCESS_ROLES=broker", []string{"KAFKA_PROCESS_ROLES", "process.roles"}},
		{"KAFKA_NUM_PARTITIONS=abc", []string{"KAFKA_NUM_PARTITIONS", "num.partitions", "abc"}},
		{"KAFKA_ADVERTISED_PORT=x", []string{"KAFKA_ADVERTISED_PORT", "advertised.port"}},
		{"KAFKA_PORT=99999", []string{"KAFKA_PORT", "port"}},
		{"STRATA_ENGINE=mmap", []string{"STRATA_ENGINE", "strata.engine", "log.engine"}},
		{"KAFKA_CREATE_TOPICS=a:1", []string{"KAFKA_CREATE_TOPICS"}},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := load(t, "", []string{tc.env}, nil)
			wantErr(t, err, tc.parts...)
		})
	}
}

func TestCreateTopics(t *testing.T) {
	for _, tc := range []struct {
		text, sep string
		want      []TopicSpec
	}{
		{"Topic1:3:2,Topic2:2:2:compact", "", []TopicSpec{{"Topic1", 3, 2, ""}, {"Topic2", 2, 2, "compact"}}},
		{" a:1:1 , , b.c_d-e:10:1:delete ,", "", []TopicSpec{{"a", 1, 1, ""}, {"b.c_d-e", 10, 1, "delete"}}},
		{"a:1:1:compact,delete", "|", []TopicSpec{{"a", 1, 1, "compact,delete"}}},
		{"a:1:1\nb:2:1", `$'\n'`, []TopicSpec{{"a", 1, 1, ""}, {"b", 2, 1, ""}}},
		{"a:1:1\nb:2:1", `\n`, []TopicSpec{{"a", 1, 1, ""}, {"b", 2, 1, ""}}},
	} {
		env := []string{"KAFKA_CREATE_TOPICS=" + tc.text}
		if tc.sep != "" {
			env = append(env, "KAFKA_CREATE_TOPICS_SEPARATOR="+tc.sep)
		}
		c := mustLoad(t, "", env, nil)
		if !reflect.DeepEqual(c.CreateTopics, tc.want) {
			t.Errorf("KAFKA_CREATE_TOPICS=%q (sep %q) = %+v, want %+v", tc.text, tc.sep, c.CreateTopics, tc.want)
		}
	}
	for _, text := range []string{
		"a", "a:1", "a:1:1:compact:x", "a:x:1", "a:0:1", "a:1:0", "a:1:-1", "a:1:40000", "a:1:1:bogus",
		"bad name:1:1", ":1:1", "..:1:1", "a:1:1,a:2:1",
	} {
		_, err := load(t, "", []string{"KAFKA_CREATE_TOPICS=" + text}, nil)
		wantErr(t, err, "KAFKA_CREATE_TOPICS")
	}
}

func TestBadKeysAndValues(t *testing.T) {
	for _, tc := range []struct {
		line  string
		parts []string
	}{
		{"no.such.key=1", []string{"unknown key no.such.key"}},
		{"retention.ms=1", []string{"retention.ms", "log.retention.ms"}},
		{"strata.engine=mem", []string{"strata.engine", "log.engine"}},
		{"num.partitions=0", []string{"num.partitions", ">= 1"}},
		{"num.partitions=1.5", []string{"num.partitions", "not an integer"}},
		{"broker.id=-2", []string{"broker.id"}},
		{"default.replication.factor=40000", []string{"default.replication.factor", "32767"}},
		{"message.max.bytes=-1", []string{"message.max.bytes"}},
		{"log.segment.bytes=10", []string{"log.segment.bytes"}},
		{"log.segment.bytes=4294967296", []string{"log.segment.bytes"}},
		{"log.index.size.max.bytes=4", []string{"log.index.size.max.bytes"}},
		{"auto.create.topics.enable=yes", []string{"auto.create.topics.enable", "true or false"}},
		{"log.message.timestamp.type=Now", []string{"log.message.timestamp.type", "CreateTime"}},
		{"log.cleanup.policy=forever", []string{"log.cleanup.policy"}},
		{"compression.type=brotli", []string{"compression.type"}},
		{"log.cleaner.min.cleanable.ratio=2", []string{"log.cleaner.min.cleanable.ratio"}},
		{"zookeeper.connect=nohost", []string{"zookeeper.connect"}},
		{"zookeeper.connect=zk:2181/", []string{"zookeeper.connect"}},
		{"zookeeper.connect=zk:x", []string{"zookeeper.connect"}},
		{"zookeeper.connection.timeout.ms=x", []string{"zookeeper.connection.timeout.ms"}},
		{"log.engine=", []string{"log.engine"}},
		{"log.engine=plugin:", []string{"log.engine"}},
		{"log.dirs= , ", []string{"log.dirs"}},
		{"log.dirs=/a,/a", []string{"log.dirs", "twice"}},
		{"log.retention.hours=x", []string{"log.retention.hours"}},
		{"num.io.threads=many", []string{"num.io.threads"}},
		{"replica.fetch.wait.max.ms=40000", []string{"replica.fetch.wait.max.ms", "replica.lag.time.max.ms"}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			// In a file: the error names the file and line.
			_, err := load(t, "# comment\n"+tc.line+"\n", nil, nil)
			wantErr(t, err, append(tc.parts, "server.properties:2")...)
			// As an override: the error names --override.
			_, err = load(t, "", nil, []string{tc.line})
			wantErr(t, err, append(tc.parts, "--override")...)
		})
	}
	_, err := load(t, "", nil, []string{"num.partitions"})
	wantErr(t, err, "--override", "num.partitions", "key=value")
	_, err = Load(Source{PropertiesFile: filepath.Join(t.TempDir(), "missing.properties")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestUnitVariants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		overrides []string
		retention time.Duration
		roll      time.Duration
	}{
		{"default", "", nil, 168 * time.Hour, 168 * time.Hour},
		{"hours", "log.retention.hours=1\nlog.roll.hours=2", nil, time.Hour, 2 * time.Hour},
		{"minutes beat hours", "log.retention.minutes=30\nlog.retention.hours=1", nil, 30 * time.Minute, 168 * time.Hour},
		{"ms beat minutes", "log.retention.ms=1000\nlog.retention.minutes=30\nlog.roll.ms=5\nlog.roll.hours=1", nil, time.Second, 5 * time.Millisecond},
		{"finest wins across sources", "log.retention.ms=1000", []string{"log.retention.hours=5"}, time.Second, 168 * time.Hour},
		{"-1 ms is forever", "log.retention.ms=-1", nil, Forever, 168 * time.Hour},
		{"-1 hours is forever", "log.retention.hours=-1", nil, Forever, 168 * time.Hour},
		{"huge saturates", "log.retention.hours=9223372036854775807", nil, Never, 168 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.file, nil, tc.overrides)
			if c.LogRetentionMs != tc.retention || c.LogRollMs != tc.roll {
				t.Errorf("retention %v roll %v, want %v %v", c.LogRetentionMs, c.LogRollMs, tc.retention, tc.roll)
			}
		})
	}
	for _, line := range []string{"log.roll.ms=0", "log.roll.hours=0", "log.roll.jitter.ms=-1", "log.retention.minutes=x\nlog.retention.ms=5"} {
		_, err := load(t, line, nil, nil)
		wantErr(t, err, strings.SplitN(strings.Split(line, "\n")[0], "=", 2)[0])
	}
}

func TestListeners(t *testing.T) {
	pt := func(host string, port int32) Listener { return Listener{"PLAINTEXT", host, port} }
	for _, tc := range []struct {
		name       string
		file       string
		listeners  []Listener
		advertised []Listener
		inter      string
		err        []string
	}{
		{name: "loopback", file: "listeners=PLAINTEXT://127.0.0.1:9093",
			listeners: []Listener{pt("127.0.0.1", 9093)}, advertised: []Listener{pt("127.0.0.1", 9093)}},
		{name: "lower-case name", file: "listeners=plaintext://localhost:9092",
			listeners: []Listener{pt("localhost", 9092)}, advertised: []Listener{pt("localhost", 9092)}},
		{name: "ipv6", file: "listeners=PLAINTEXT://[::1]:9092",
			listeners: []Listener{pt("::1", 9092)}, advertised: []Listener{pt("::1", 9092)}},
		{name: "free port", file: "listeners=PLAINTEXT://127.0.0.1:0",
			listeners: []Listener{pt("127.0.0.1", 0)}, advertised: []Listener{pt("127.0.0.1", 0)}},
		{name: "all interfaces, advertised", file: "listeners=PLAINTEXT://0.0.0.0:9092\nadvertised.listeners=PLAINTEXT://kafka.example:19092",
			listeners: []Listener{pt("0.0.0.0", 9092)}, advertised: []Listener{pt("kafka.example", 19092)}},
		{name: "all interfaces, no advertised host", file: "listeners=PLAINTEXT://:9092",
			err: []string{"advertised.listeners", "PLAINTEXT"}},
		{name: "0.0.0.0, no advertised host", file: "listeners=PLAINTEXT://0.0.0.0:9092",
			err: []string{"advertised.listeners"}},
		{name: "advertised 0.0.0.0", file: "advertised.listeners=PLAINTEXT://0.0.0.0:9092",
			err: []string{"advertised.listeners"}},
		{name: "named listeners",
			file: "listeners=INTERNAL://:29092,EXTERNAL://127.0.0.1:9092\n" +
				"listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT\n" +
				"advertised.listeners=INTERNAL://kafka:29092\ninter.broker.listener.name=INTERNAL",
			listeners:  []Listener{{"INTERNAL", "", 29092}, {"EXTERNAL", "127.0.0.1", 9092}},
			advertised: []Listener{{"INTERNAL", "kafka", 29092}, {"EXTERNAL", "127.0.0.1", 9092}},
			inter:      "INTERNAL"},
		{name: "inter-broker defaults to the first", file: "listeners=A://h:1\nlistener.security.protocol.map=A:PLAINTEXT",
			listeners: []Listener{{"A", "h", 1}}, advertised: []Listener{{"A", "h", 1}}, inter: "A"},
		{name: "ssl", file: "listeners=SSL://localhost:9093", err: []string{"listeners", "SSL", "PLAINTEXT only"}},
		{name: "unmapped name", file: "listeners=FOO://localhost:9093", err: []string{"listeners", "FOO", "listener.security.protocol.map"}},
		{name: "bad map", file: "listener.security.protocol.map=FOO", err: []string{"listener.security.protocol.map"}},
		{name: "no port", file: "listeners=PLAINTEXT://localhost", err: []string{"listeners"}},
		{name: "port range", file: "listeners=PLAINTEXT://localhost:70000", err: []string{"listeners", "70000"}},
		{name: "garbage", file: "listeners=localhost:9092", err: []string{"listeners", "NAME://host:port"}},
		{name: "empty", file: "listeners= ,", err: []string{"listeners"}},
		{name: "duplicate name", file: "listeners=PLAINTEXT://a:1,PLAINTEXT://b:2", err: []string{"listeners", "twice"}},
		{name: "shared port", file: "listeners=PLAINTEXT://a:1,B://b:1\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,B:PLAINTEXT", err: []string{"listeners", "port 1"}},
		{name: "advertised unknown listener", file: "listeners=PLAINTEXT://a:1\nadvertised.listeners=OTHER://b:1\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
			err: []string{"advertised.listeners", "OTHER"}},
		{name: "unknown inter-broker listener", file: "inter.broker.listener.name=NOPE", err: []string{"inter.broker.listener.name", "NOPE"}},
		{name: "legacy host.name and port", file: "host.name=10.1.2.3\nport=9999",
			listeners: []Listener{pt("10.1.2.3", 9999)}, advertised: []Listener{pt("10.1.2.3", 9999)}},
		{name: "listeners beat legacy port in one file", file: "listeners=PLAINTEXT://127.0.0.1:1\nport=2",
			listeners: []Listener{pt("127.0.0.1", 1)}, advertised: []Listener{pt("127.0.0.1", 1)}},
		{name: "advertised.listeners beat advertised.host.name in one file",
			file:      "advertised.listeners=PLAINTEXT://a:9092\nadvertised.host.name=b",
			listeners: []Listener{pt("", 9092)}, advertised: []Listener{pt("a", 9092)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.file, nil, nil)
			if tc.err != nil {
				wantErr(t, err, tc.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Listeners, tc.listeners) || !reflect.DeepEqual(c.AdvertisedListeners, tc.advertised) {
				t.Errorf("listeners %v advertised %v, want %v %v", c.Listeners, c.AdvertisedListeners, tc.listeners, tc.advertised)
			}
			inter := tc.inter
			if inter == "" {
				inter = "PLAINTEXT"
			}
			if c.InterBrokerListenerName != inter {
				t.Errorf("inter-broker listener %s, want %s", c.InterBrokerListenerName, inter)
			}
		})
	}

	// The environment's legacy advertised host beats a weaker source's
	// advertised.listeners.
	c := mustLoad(t, "advertised.listeners=PLAINTEXT://fromfile:9092", []string{"KAFKA_ADVERTISED_HOST_NAME=fromenv"}, nil)
	if want := []Listener{pt("fromenv", 9092)}; !reflect.DeepEqual(c.AdvertisedListeners, want) {
		t.Errorf("advertised %v, want %v", c.AdvertisedListeners, want)
	}
	if l, ok := c.AdvertisedListener("PLAINTEXT"); !ok || l.String() != "PLAINTEXT://fromenv:9092" {
		t.Errorf("AdvertisedListener(PLAINTEXT) = %v, %v", l, ok)
	}
	if s := (Listener{"PLAINTEXT", "::1", 9092}).String(); s != "PLAINTEXT://[::1]:9092" {
		t.Errorf("String() = %s", s)
	}
}

func TestLogDirs(t *testing.T) {
	for _, tc := range []struct {
		file      string
		overrides []string
		want      []string
	}{
		{"log.dir=/x", nil, []string{"/x"}},
		{"log.dir=/x\nlog.dirs=/y,/z", nil, []string{"/y", "/z"}},
		{"log.dirs=/y", []string{"log.dir=/x"}, []string{"/x"}}, // a stronger source wins
		{"log.dirs=/a/b/../c/", nil, []string{"/a/c"}},
	} {
		c := mustLoad(t, tc.file, nil, tc.overrides)
		if !reflect.DeepEqual(c.LogDirs, tc.want) {
			t.Errorf("%q %q: LogDirs %v, want %v", tc.file, tc.overrides, c.LogDirs, tc.want)
		}
	}
}

// TestKafkaStockFile loads the keys of the server.properties that Kafka
// ships (ZooKeeper mode): it must work unchanged.
func TestKafkaStockFile(t *testing.T) {
	const stock = `# Licensed to the Apache Software Foundation (ASF)...
############################# Server Basics #############################
broker.id=0
############################# Socket Server Settings #############################
#listeners=PLAINTEXT://:9092
#advertised.listeners=PLAINTEXT://your.host.name:9092
#listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
############################# Log Basics #############################
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
group.initial.rebalance.delay.ms=0
`
	c := mustLoad(t, stock, nil, nil)
	if c.BrokerID != 0 || c.ZookeeperConnect != "localhost:2181" || c.OffsetsTopicReplicationFactor != 1 ||
		c.GroupInitialRebalanceDelayMs != 0 || !reflect.DeepEqual(c.LogDirs, []string{"/tmp/kafka-logs"}) {
		t.Errorf("stock file gave %+v", c)
	}
}

func TestIgnoredKeysWarn(t *testing.T) {
	var buf strings.Builder
	path := filepath.Join(t.TempDir(), "s.properties")
	if err := os.WriteFile(path, []byte("num.io.threads=16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Source{PropertiesFile: path, Logger: slog.New(slog.NewTextHandler(&buf, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "num.io.threads") || !strings.Contains(buf.String(), "s.properties:1") {
		t.Errorf("no warning naming the ignored key and its source: %q", buf.String())
	}
}
