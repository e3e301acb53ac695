package local

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func testOptions(dir string) Options {
	return Options{
		Dir:                  dir,
		BrokerID:             -1,
		Advertised:           coordination.Broker{Host: "127.0.0.1", Port: 9092, Rack: "r1"},
		ValidateTopicConfigs: config.ValidateTopicConfigs,
		Logger:               quiet,
	}
}

func open(t *testing.T, opts Options) *Local {
	t.Helper()
	l, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func create(t *testing.T, l *Local, spec coordination.TopicSpec) *coordination.Topic {
	t.Helper()
	topic, err := l.CreateTopic(ctx, spec, false)
	if err != nil {
		t.Fatalf("CreateTopic(%+v): %v", spec, err)
	}
	return topic
}

func TestCreateAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, testOptions(dir))
	snap := l.Snapshot()
	if l.BrokerID() != 0 || snap.ControllerID != 0 || len(snap.ClusterID) != 22 || len(snap.Topics) != 0 {
		t.Fatalf("new cluster: broker %d, snapshot %+v", l.BrokerID(), snap)
	}
	if want := []coordination.Broker{{ID: 0, Host: "127.0.0.1", Port: 9092, Rack: "r1"}}; !reflect.DeepEqual(snap.Brokers, want) {
		t.Errorf("brokers %+v, want %+v", snap.Brokers, want)
	}
	a := create(t, l, coordination.TopicSpec{Name: "a", Partitions: 3, ReplicationFactor: 1})
	b := create(t, l, coordination.TopicSpec{Name: "b", Partitions: -1, ReplicationFactor: -1, Configs: map[string]string{"retention.ms": "1000"}})
	off := create(t, l, coordination.TopicSpec{Name: "__consumer_offsets", Partitions: 2, ReplicationFactor: 1, Internal: true})
	before := l.Snapshot()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	meta, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "version=0\nbroker.id=0\ncluster.id=" + before.ClusterID + "\n"; !strings.Contains(string(meta), want) {
		t.Errorf("meta.properties = %q, want it to hold %q", meta, want)
	}

	l2 := open(t, testOptions(dir))
	after := l2.Snapshot()
	if after.ClusterID != before.ClusterID || l2.BrokerID() != 0 {
		t.Errorf("cluster %s broker %d after reopen, want %s 0", after.ClusterID, l2.BrokerID(), before.ClusterID)
	}
	if after.Version <= before.Version {
		t.Errorf("version %d after reopen, want > %d", after.Version, before.Version)
	}
	for _, want := range []*coordination.Topic{a, b, off} {
		got := after.Topics[want.Name]
		if got == nil {
			t.Fatalf("topic %s lost", want.Name)
		}
		if after.TopicsByID[want.ID] != got {
			t.Errorf("topic %s not indexed by id", want.Name)
		}
		if got.ID != want.ID || got.Internal != want.Internal || !reflect.DeepEqual(got.Configs, want.Configs) || len(got.Partitions) != len(want.Partitions) {
			t.Errorf("topic after reopen %+v, want %+v", got, want)
		}
		for i, p := range got.Partitions {
			w := want.Partitions[i]
			w.LeaderEpoch++ // a restart is a new leadership
			if !reflect.DeepEqual(p, w) {
				t.Errorf("%s partition %d: %+v, want %+v", want.Name, i, p, w)
			}
		}
	}
	if len(after.Topics) != 3 || len(after.TopicsByID) != 3 {
		t.Errorf("%d topics after reopen", len(after.Topics))
	}
}

func TestNewTopicShape(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.DefaultPartitions = 4
	l := open(t, opts)
	topic := create(t, l, coordination.TopicSpec{Name: "t", Partitions: -1, ReplicationFactor: -1})
	if len(topic.Partitions) != 4 {
		t.Fatalf("%d partitions, want the default 4", len(topic.Partitions))
	}
	for i, p := range topic.Partitions {
		want := coordination.Partition{Index: int32(i), Replicas: []int32{0}, ISR: []int32{0}, Leader: 0}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("partition %+v, want %+v", p, want)
		}
	}
	if topic.ID == (coordination.TopicID{}) || topic.ID[6]>>4 != 4 || topic.ID[8]>>6 != 2 {
		t.Errorf("id %x is not a version-4 UUID", topic.ID)
	}
	if l.Snapshot().Topics["t"] != topic {
		t.Error("CreateTopic's result is not the snapshot's topic")
	}
}

func TestBrokerID(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.BrokerID = 5
	l := open(t, opts)
	if l.BrokerID() != 5 || l.Snapshot().Brokers[0].ID != 5 || l.Snapshot().ControllerID != 5 {
		t.Errorf("broker id %d, want 5", l.BrokerID())
	}
	l.Close()

	opts.BrokerID = -1 // keep the stored id
	l = open(t, opts)
	if l.BrokerID() != 5 {
		t.Errorf("broker id %d after reopen with -1, want the stored 5", l.BrokerID())
	}
	l.Close()

	opts.BrokerID = 6
	_, err := Open(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "broker.id 6") || !strings.Contains(err.Error(), "stored broker.id 5") {
		t.Errorf("mismatched broker.id: %v, want an error naming both", err)
	}

	opts.BrokerID = -2
	if _, err := Open(ctx, opts); err == nil {
		t.Error("broker.id -2 accepted")
	}
}

func TestCreateTopicErrors(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	create(t, l, coordination.TopicSpec{Name: "exists", Partitions: 1, ReplicationFactor: 1})
	create(t, l, coordination.TopicSpec{Name: "metrics.a", Partitions: 1, ReplicationFactor: 1})
	version := l.Snapshot().Version

	spec := func(name string, p int32, rf int16) coordination.TopicSpec {
		return coordination.TopicSpec{Name: name, Partitions: p, ReplicationFactor: rf}
	}
	withAssignment := func(p int32, rf int16, a ...[]int32) coordination.TopicSpec {
		return coordination.TopicSpec{Name: "assigned", Partitions: p, ReplicationFactor: rf, Assignment: a}
	}
	for _, tc := range []struct {
		name string
		spec coordination.TopicSpec
		want error
	}{
		{"empty name", spec("", 1, 1), coordination.ErrInvalidTopic},
		{"dot", spec(".", 1, 1), coordination.ErrInvalidTopic},
		{"dot dot", spec("..", 1, 1), coordination.ErrInvalidTopic},
		{"too long", spec(strings.Repeat("x", 250), 1, 1), coordination.ErrInvalidTopic},
		{"bad character", spec("a b", 1, 1), coordination.ErrInvalidTopic},
		{"slash", spec("a/b", 1, 1), coordination.ErrInvalidTopic},
		{"exists", spec("exists", 1, 1), coordination.ErrTopicExists},
		{"collides", spec("metrics_a", 1, 1), coordination.ErrInvalidTopic},
		{"zero partitions", spec("t", 0, 1), coordination.ErrInvalidPartitions},
		{"negative partitions", spec("t", -2, 1), coordination.ErrInvalidPartitions},
		{"too many partitions", spec("t", MaxPartitions+1, 1), coordination.ErrInvalidPartitions},
		{"zero replicas", spec("t", 1, 0), coordination.ErrInvalidReplication},
		{"negative replicas", spec("t", 1, -2), coordination.ErrInvalidReplication},
		{"more replicas than brokers", spec("t", 1, 2), coordination.ErrInvalidReplication},
		{"unknown broker", withAssignment(-1, -1, []int32{1}), coordination.ErrInvalidReplication},
		{"replica twice", withAssignment(-1, -1, []int32{0, 0}), coordination.ErrInvalidReplication},
		{"no replicas", withAssignment(-1, -1, []int32{}), coordination.ErrInvalidReplication},
		{"uneven replicas", withAssignment(-1, -1, []int32{0}, []int32{0, 0}), coordination.ErrInvalidReplication},
		{"assignment disagrees with count", withAssignment(3, -1, []int32{0}), coordination.ErrInvalidPartitions},
		{"assignment disagrees with factor", withAssignment(-1, 2, []int32{0}), coordination.ErrInvalidReplication},
		{"bad config", coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}}, coordination.ErrInvalidConfig},
		{"unknown config", coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"nope": "1"}}, coordination.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, validateOnly := range []bool{false, true} {
				_, err := l.CreateTopic(ctx, tc.spec, validateOnly)
				if !errors.Is(err, tc.want) {
					t.Errorf("validateOnly=%v: %v, want %v", validateOnly, err, tc.want)
				}
			}
		})
	}
	if _, err := l.CreateTopic(ctx, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "x"}}, false); !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "retention.ms") {
		t.Errorf("bad config error %v: want config.ErrInvalidConfig naming the key", err)
	}
	if l.Snapshot().Version != version || len(l.Snapshot().Topics) != 2 {
		t.Error("a failed CreateTopic changed the metadata")
	}

	// A valid explicit assignment.
	topic := create(t, l, withAssignment(-1, -1, []int32{0}, []int32{0}))
	if len(topic.Partitions) != 2 || topic.Partitions[1].Index != 1 || topic.Partitions[1].Leader != 0 {
		t.Errorf("assigned topic %+v", topic)
	}
	// 249 characters is fine.
	create(t, l, spec(strings.Repeat("x", 249), 1, 1))
}

func TestValidateOnly(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	version := l.Snapshot().Version
	topic, err := l.CreateTopic(ctx, coordination.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if topic.Name != "t" || len(topic.Partitions) != 2 || topic.ID != (coordination.TopicID{}) || topic.Configs["cleanup.policy"] != "compact" {
		t.Errorf("validateOnly result %+v", topic)
	}
	if s := l.Snapshot(); s.Version != version || len(s.Topics) != 0 {
		t.Error("validateOnly created the topic")
	}
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1})
}

func TestTopicIDs(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	seen := map[coordination.TopicID]bool{}
	for i := range 200 {
		topic := create(t, l, coordination.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 1, ReplicationFactor: 1})
		if seen[topic.ID] || topic.ID == (coordination.TopicID{}) || topic.ID == (coordination.TopicID{15: 1}) || topic.ID.String()[0] == '-' {
			t.Fatalf("bad or repeated id %x", topic.ID)
		}
		seen[topic.ID] = true
	}
}

func TestDeleteTopic(t *testing.T) {
	dir := t.TempDir()
	l := open(t, testOptions(dir))
	old := create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if err := l.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if s := l.Snapshot(); s.Topics["t"] != nil || s.TopicsByID[old.ID] != nil {
		t.Error("deleted topic still in the snapshot")
	}
	if err := l.DeleteTopic(ctx, "t"); !errors.Is(err, coordination.ErrUnknownTopic) {
		t.Errorf("deleting again: %v, want ErrUnknownTopic", err)
	}
	again := create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if again.ID == old.ID {
		t.Error("a re-created topic kept its old id")
	}
	create(t, l, coordination.TopicSpec{Name: "gone", Partitions: 1, ReplicationFactor: 1})
	if err := l.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, testOptions(dir))
	if s := l.Snapshot(); s.Topics["gone"] != nil || s.Topics["t"] == nil || s.Topics["t"].ID != again.ID {
		t.Errorf("after reopen: %v", s.Topics)
	}
}

func TestCreatePartitions(t *testing.T) {
	dir := t.TempDir()
	l := open(t, testOptions(dir))
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
	for _, tc := range []struct {
		name       string
		topic      string
		count      int32
		assignment [][]int32
		want       error
	}{
		{"unknown topic", "nope", 2, nil, coordination.ErrUnknownTopic},
		{"same count", "t", 1, nil, coordination.ErrInvalidPartitions},
		{"fewer", "t", 0, nil, coordination.ErrInvalidPartitions},
		{"too many", "t", MaxPartitions + 1, nil, coordination.ErrInvalidPartitions},
		{"assignment too short", "t", 3, [][]int32{{0}}, coordination.ErrInvalidReplication},
		{"assignment unknown broker", "t", 2, [][]int32{{7}}, coordination.ErrInvalidReplication},
		{"assignment wrong factor", "t", 2, [][]int32{{}}, coordination.ErrInvalidReplication},
	} {
		if err := l.CreatePartitions(ctx, tc.topic, tc.count, tc.assignment, false); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := l.CreatePartitions(ctx, "t", 5, nil, true); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Snapshot().Topics["t"].Partitions); n != 1 {
		t.Fatalf("validateOnly added partitions: %d", n)
	}
	before := l.Snapshot().Topics["t"]
	if err := l.CreatePartitions(ctx, "t", 3, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := l.CreatePartitions(ctx, "t", 4, [][]int32{{0}}, false); err != nil {
		t.Fatal(err)
	}
	after := l.Snapshot().Topics["t"]
	if len(before.Partitions) != 1 {
		t.Error("CreatePartitions modified an earlier snapshot's topic")
	}
	if after.ID != before.ID || len(after.Partitions) != 4 {
		t.Fatalf("after: %+v", after)
	}
	for i, p := range after.Partitions {
		if p.Index != int32(i) || p.Leader != 0 || !reflect.DeepEqual(p.Replicas, []int32{0}) {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	l.Close()
	l = open(t, testOptions(dir))
	if n := len(l.Snapshot().Topics["t"].Partitions); n != 4 {
		t.Errorf("%d partitions after reopen, want 4", n)
	}
}

// TestNoConfigValidator: without Options.ValidateTopicConfigs every config
// is accepted, at creation and on change.
func TestNoConfigValidator(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.ValidateTopicConfigs = nil
	l := open(t, opts)
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}})
	if err := l.AlterTopicConfig(ctx, "t", map[string]string{"nope": "1"}); err != nil {
		t.Errorf("AlterTopicConfig: %v", err)
	}
}

func TestAlterTopicConfig(t *testing.T) {
	dir := t.TempDir()
	l := open(t, testOptions(dir))
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1"}})
	configs := map[string]string{"cleanup.policy": "compact", "strata.engine": "mem"}
	if err := l.AlterTopicConfig(ctx, "t", configs); err != nil {
		t.Fatal(err)
	}
	configs["cleanup.policy"] = "delete" // the caller's map is not kept
	if got := l.Snapshot().Topics["t"].Configs; !reflect.DeepEqual(got, map[string]string{"cleanup.policy": "compact", "strata.engine": "mem"}) {
		t.Errorf("configs %v", got)
	}
	if err := l.AlterTopicConfig(ctx, "t", map[string]string{"retention.ms": "x"}); !errors.Is(err, coordination.ErrInvalidConfig) {
		t.Errorf("bad value: %v, want ErrInvalidConfig", err)
	}
	if err := l.AlterTopicConfig(ctx, "nope", nil); !errors.Is(err, coordination.ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}
	if got := l.Snapshot().Topics["t"].Configs; got["cleanup.policy"] != "compact" {
		t.Errorf("a failed alter changed configs: %v", got)
	}
	l.Close()
	l = open(t, testOptions(dir))
	if got := l.Snapshot().Topics["t"].Configs; got["strata.engine"] != "mem" {
		t.Errorf("configs after reopen %v", got)
	}
	if err := l.AlterTopicConfig(ctx, "t", map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if got := l.Snapshot().Topics["t"].Configs; got != nil {
		t.Errorf("cleared configs = %v, want nil", got)
	}
}

func TestChanged(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	s := l.Snapshot()
	ch := l.Changed(s.Version)
	select {
	case <-ch:
		t.Fatal("Changed closed with no change")
	default:
	}
	// A producer id block is not metadata a snapshot shows.
	if _, _, err := l.NextProducerIDBlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Changed closed by a producer id block")
	default:
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ch
	}()
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by CreateTopic")
	}
	s2 := l.Snapshot()
	if s2.Version <= s.Version {
		t.Errorf("version %d after change, was %d", s2.Version, s.Version)
	}
	// Asking with an old version answers at once.
	select {
	case <-l.Changed(s.Version):
	default:
		t.Error("Changed(old version) not closed")
	}
	// The old snapshot is untouched.
	if len(s.Topics) != 0 || len(s.TopicsByID) != 0 {
		t.Error("an old snapshot changed")
	}
}

func TestProducerIDBlocks(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	l := open(t, opts)
	var next int64
	for range 3 {
		start, count, err := l.NextProducerIDBlock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if start != next || count != DefaultProducerIDBlockSize {
			t.Fatalf("block [%d, +%d), want start %d size %d", start, count, next, DefaultProducerIDBlockSize)
		}
		next = start + count
	}
	l.Close()
	opts.ProducerIDBlockSize = 10
	l = open(t, opts)
	start, count, err := l.NextProducerIDBlock(ctx)
	if err != nil || start != next || count != 10 {
		t.Errorf("after reopen: [%d, +%d) %v, want start %d size 10", start, count, err, next)
	}
}

func TestConcurrent(t *testing.T) {
	l := open(t, testOptions(t.TempDir()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	starts := map[int64]bool{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := l.CreateTopic(ctx, coordination.TopicSpec{Name: fmt.Sprintf("g%d-%d", g, i), Partitions: 2, ReplicationFactor: 1}, false); err != nil {
					t.Error(err)
				}
				start, _, err := l.NextProducerIDBlock(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				if starts[start] {
					t.Errorf("producer id block %d handed out twice", start)
				}
				starts[start] = true
				mu.Unlock()
				s := l.Snapshot()
				for _, topic := range s.Topics {
					if s.TopicsByID[topic.ID] != topic {
						t.Error("inconsistent snapshot")
					}
				}
				<-l.Changed(s.Version - 1)
			}
		}()
	}
	wg.Wait()
	if n := len(l.Snapshot().Topics); n != 80 {
		t.Errorf("%d topics, want 80", n)
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	l := open(t, testOptions(dir))
	create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})

	// The directory is locked while open.
	if _, err := Open(ctx, testOptions(dir)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open: %v, want a lock error", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.CreateTopic(ctx, coordination.TopicSpec{Name: "u", Partitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, coordination.ErrClosed) {
		t.Errorf("CreateTopic after Close: %v", err)
	}
	if err := l.DeleteTopic(ctx, "t"); !errors.Is(err, coordination.ErrClosed) {
		t.Errorf("DeleteTopic after Close: %v", err)
	}
	if _, _, err := l.NextProducerIDBlock(ctx); !errors.Is(err, coordination.ErrClosed) {
		t.Errorf("NextProducerIDBlock after Close: %v", err)
	}
	if l.Snapshot().Topics["t"] == nil {
		t.Error("Snapshot after Close lost the metadata")
	}
	open(t, testOptions(dir)) // the lock is released

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	l2 := open(t, testOptions(t.TempDir()))
	if _, err := l2.CreateTopic(cancelled, coordination.TopicSpec{Name: "u", Partitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestCrashSafety covers the metadata files as a crash or damage leaves
// them.
func TestCrashSafety(t *testing.T) {
	// setup makes a directory with one topic and returns it.
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		l := open(t, testOptions(dir))
		create(t, l, coordination.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
		l.Close()
		return dir
	}
	metadata := func(dir string) string { return filepath.Join(dir, metadataFile) }
	meta := func(dir string) string { return filepath.Join(dir, metaPropertiesFile) }
	write := func(t *testing.T, path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustFail := func(t *testing.T, dir string, parts ...string) {
		t.Helper()
		_, err := Open(ctx, testOptions(dir))
		if err == nil {
			t.Fatal("Open succeeded")
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not mention %q", err, p)
			}
		}
	}

	t.Run("leftover temp files", func(t *testing.T) {
		dir := setup(t)
		write(t, metadata(dir)+tmpSuffix, "half a write")
		write(t, meta(dir)+tmpSuffix, "half")
		l := open(t, testOptions(dir))
		if l.Snapshot().Topics["t"] == nil {
			t.Error("topic lost")
		}
		for _, p := range []string{metadata(dir) + tmpSuffix, meta(dir) + tmpSuffix} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s not removed: %v", p, err)
			}
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		dir := setup(t)
		data, _ := os.ReadFile(metadata(dir))
		i := strings.Index(string(data), `"name": "t"`) + len(`"name": "`)
		data[i] = 'u'
		write(t, metadata(dir), string(data))
		mustFail(t, dir, metadataFile, "corrupt", "CRC")
	})
	t.Run("truncated", func(t *testing.T) {
		dir := setup(t)
		data, _ := os.ReadFile(metadata(dir))
		write(t, metadata(dir), string(data[:len(data)/2]))
		mustFail(t, dir, metadataFile, "corrupt")
	})
	t.Run("empty file", func(t *testing.T) {
		dir := setup(t)
		write(t, metadata(dir), "")
		mustFail(t, dir, metadataFile, "corrupt")
	})
	t.Run("no header", func(t *testing.T) {
		dir := setup(t)
		write(t, metadata(dir), "{}\n")
		mustFail(t, dir, "corrupt", "header")
	})
	t.Run("future format", func(t *testing.T) {
		dir := setup(t)
		data, _ := os.ReadFile(metadata(dir))
		write(t, metadata(dir), strings.Replace(string(data), "metadata v1", "metadata v2", 1))
		mustFail(t, dir, "format version 2")
	})
	// Bodies with a valid CRC but invalid content.
	for name, body := range map[string]string{
		"not json":        "nonsense",
		"unknown field":   `{"cluster_id":"%s","broker_id":0,"surprise":1}`,
		"bad topic name":  `{"cluster_id":"%s","broker_id":0,"topics":[{"name":"a b","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":[{"replicas":[0]}]}]}`,
		"zero id":         `{"cluster_id":"%s","broker_id":0,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAA","partitions":[{"replicas":[0]}]}]}`,
		"no partitions":   `{"cluster_id":"%s","broker_id":0,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":[]}]}`,
		"no replicas":     `{"cluster_id":"%s","broker_id":0,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":[{"replicas":[]}]}]}`,
		"duplicate id":    `{"cluster_id":"%s","broker_id":0,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":[{"replicas":[0]}]},{"name":"b","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":[{"replicas":[0]}]}]}`,
		"other cluster":   `{"cluster_id":"someoneelse","broker_id":0}`,
		"other broker id": `{"cluster_id":"%s","broker_id":3}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := setup(t)
			l := open(t, testOptions(dir))
			cluster := l.ClusterID()
			l.Close()
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, cluster)
			}
			sum := crcOf([]byte(body))
			write(t, metadata(dir), fmt.Sprintf("# strata cluster metadata v1 crc32c=%08x\n%s", sum, body))
			mustFail(t, dir, metadataFile)
		})
	}
	t.Run("meta.properties without metadata", func(t *testing.T) {
		dir := setup(t)
		os.Remove(metadata(dir))
		mustFail(t, dir, metaPropertiesFile, metadataFile)
	})
	t.Run("metadata without meta.properties", func(t *testing.T) {
		dir := setup(t)
		os.Remove(meta(dir))
		l := open(t, testOptions(dir))
		if l.Snapshot().Topics["t"] == nil {
			t.Error("topic lost")
		}
		if _, err := os.Stat(meta(dir)); err != nil {
			t.Errorf("meta.properties not rewritten: %v", err)
		}
	})
	t.Run("meta.properties of another cluster", func(t *testing.T) {
		dir := setup(t)
		write(t, meta(dir), "version=0\nbroker.id=0\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n")
		mustFail(t, dir, "disagrees")
	})
	t.Run("KRaft meta.properties", func(t *testing.T) {
		dir := setup(t)
		write(t, meta(dir), "version=1\nnode.id=1\ncluster.id=x\n")
		mustFail(t, dir, metaPropertiesFile, "version")
	})
	t.Run("Kafka's log dir", func(t *testing.T) {
		dir := t.TempDir()
		write(t, meta(dir), "#\n#Tue Jan 02 00:00:00 UTC 2024\nbroker.id=0\nversion=0\ncluster.id=abc\n")
		mustFail(t, dir, "Kafka")
	})
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// faultFS fails renames when told to: a write that cannot complete.
type faultFS struct {
	engine.FS
	failRename atomic.Bool
}

func (f *faultFS) Rename(oldname, newname string) error {
	if f.failRename.Load() {
		return errors.New("injected rename failure")
	}
	return f.FS.Rename(oldname, newname)
}

func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	fsys := &faultFS{FS: engine.OSFS}
	opts := testOptions(dir)
	opts.FS = fsys
	l := open(t, opts)
	create(t, l, coordination.TopicSpec{Name: "kept", Partitions: 1, ReplicationFactor: 1})
	before := l.Snapshot()

	fsys.failRename.Store(true)
	if _, err := l.CreateTopic(ctx, coordination.TopicSpec{Name: "lost", Partitions: 1, ReplicationFactor: 1}, false); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("CreateTopic with a failing disk: %v", err)
	}
	if l.Snapshot() != before {
		t.Error("a failed write changed the snapshot")
	}
	if _, err := os.Stat(filepath.Join(dir, metadataFile+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left behind: %v", err)
	}
	// The failure is sticky, even once the disk recovers.
	fsys.failRename.Store(false)
	if _, _, err := l.NextProducerIDBlock(ctx); err == nil {
		t.Error("a change after a failed write succeeded")
	}
	l.Close()

	l = open(t, testOptions(dir))
	if s := l.Snapshot(); s.Topics["kept"] == nil || s.Topics["lost"] != nil {
		t.Errorf("after reopen: %v", s.Topics)
	}
}
