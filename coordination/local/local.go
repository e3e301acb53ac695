package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

var _ coordination.Coordinator = (*Local)(nil)

// DefaultProducerIDBlockSize is how many producer ids NextProducerIDBlock
// hands out at once, as Kafka's controller does.
const DefaultProducerIDBlockSize = 1000

// MaxPartitions is the most partitions a topic may have.
const MaxPartitions = coordination.MaxPartitions

// Options configure Open.
type Options struct {
	// Dir holds the metadata: the broker's first log directory. Created
	// if missing.
	Dir string
	// BrokerID is the configured broker.id; -1 keeps the stored id, or
	// takes 0 for a new directory.
	BrokerID int32
	// Advertised is this broker as clients reach it (host, port, rack);
	// its ID is ignored.
	Advertised coordination.Broker
	// DefaultPartitions (num.partitions) is used for a topic created with
	// Partitions -1. Default 1.
	DefaultPartitions int32
	// DefaultReplicationFactor (default.replication.factor) is used for a
	// topic created with ReplicationFactor -1. Default 1.
	DefaultReplicationFactor int16
	// ProducerIDBlockSize is the size of NextProducerIDBlock's blocks.
	// Default DefaultProducerIDBlockSize.
	ProducerIDBlockSize int64
	// Logger receives the coordinator's logs. Default: slog.Default().
	Logger *slog.Logger
	// FS is where the files are read and written. Default: engine.OSFS.
	// The directory lock is taken only on the operating system's FS.
	FS engine.FS
	// ValidateTopicConfigs checks a topic's config overrides; it is called
	// for every topic creation and config change. Its error is returned
	// wrapped, so that errors.Is matches both coordination.ErrInvalidConfig
	// and its own error. nil: every config is accepted.
	ValidateTopicConfigs func(configs map[string]string) error
}

// EnsureDefaults fills zero fields with defaults.
func (o *Options) EnsureDefaults() {
	if o.DefaultPartitions == 0 {
		o.DefaultPartitions = 1
	}
	if o.DefaultReplicationFactor == 0 {
		o.DefaultReplicationFactor = 1
	}
	if o.ProducerIDBlockSize == 0 {
		o.ProducerIDBlockSize = DefaultProducerIDBlockSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = engine.OSFS
	}
}

// Validate reports the first option out of range.
func (o *Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("coordination/local: Options.Dir is empty")
	case o.BrokerID < -1:
		return fmt.Errorf("coordination/local: broker.id=%d: must be >= 0, or -1", o.BrokerID)
	case o.DefaultPartitions < 1:
		return fmt.Errorf("coordination/local: num.partitions=%d: must be >= 1", o.DefaultPartitions)
	case o.DefaultReplicationFactor < 1:
		return fmt.Errorf("coordination/local: default.replication.factor=%d: must be >= 1", o.DefaultReplicationFactor)
	case o.ProducerIDBlockSize < 1:
		return fmt.Errorf("coordination/local: ProducerIDBlockSize=%d: must be >= 1", o.ProducerIDBlockSize)
	}
	return nil
}

// Local is the coordinator of a broker that runs alone. It is safe for
// concurrent use. Writers are serialised by one mutex and each change is
// durable before it is visible: Snapshot never shows metadata that a crash
// could take back.
type Local struct {
	opts      Options
	fs        engine.FS
	dir       string
	log       *slog.Logger
	brokerID  int32
	clusterID string
	brokers   []coordination.Broker // this broker alone; shared by every Snapshot
	lock      io.Closer

	snap atomic.Pointer[coordination.Snapshot]

	mu       sync.Mutex
	closed   bool
	writeErr error                          // sticky: set when a write failed
	topics   map[string]*coordination.Topic // values are never modified
	nextPID  int64
	version  int64
	changed  chan struct{} // closed by the next change
}

// closedChan is returned by Changed when the caller is already behind.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Open opens (creating on first use) the metadata in opts.Dir.
func Open(ctx context.Context, opts Options) (*Local, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("coordination/local: %w", err)
	}
	l := &Local{
		opts:    opts,
		fs:      opts.FS,
		dir:     dir,
		log:     opts.Logger.With("component", "coordination/local"),
		changed: make(chan struct{}),
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("coordination/local: %w", err)
	}
	if opts.FS == engine.OSFS {
		if l.lock, err = lockDir(filepath.Join(dir, lockFile)); err != nil {
			return nil, fmt.Errorf("coordination/local: %w", err)
		}
	}
	if err := l.load(); err != nil {
		l.unlock()
		return nil, err
	}
	return l, nil
}

func (l *Local) unlock() {
	if l.lock != nil {
		if err := l.lock.Close(); err != nil {
			l.log.Warn("releasing the directory lock", "err", err)
		}
		l.lock = nil
	}
}

// load reads meta.properties and the metadata file, reconciles them with
// the options, bumps every leader epoch and writes the result back.
func (l *Local) load() error {
	for _, name := range []string{metadataFile, metaPropertiesFile} {
		tmp := filepath.Join(l.dir, name+tmpSuffix)
		// A leftover is a write that a crash interrupted before its
		// rename: the file it was replacing is still intact.
		if removed, err := removeIfExists(l.fs, tmp); err != nil {
			return fmt.Errorf("coordination/local: removing %s: %w", tmp, err)
		} else if removed {
			l.log.Info("removed an interrupted write", "file", tmp)
		}
	}
	metaPath := filepath.Join(l.dir, metaPropertiesFile)
	statePath := filepath.Join(l.dir, metadataFile)

	var meta *coordination.MetaProperties
	switch data, err := readFile(l.fs, metaPath); {
	case err == nil:
		m, err := coordination.DecodeMetaProperties(data)
		if err != nil {
			return fmt.Errorf("coordination/local: %s: %w", metaPath, err)
		}
		meta = &m
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("coordination/local: %w", err)
	}
	var state *diskState
	switch data, err := readFile(l.fs, statePath); {
	case err == nil:
		if state, err = decodeState(data); err != nil {
			return fmt.Errorf("coordination/local: %s: %w; the topics' data is untouched, but the broker cannot tell which topics exist without this file: restore it from a backup", statePath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("coordination/local: %w", err)
	}

	writeMeta := false
	switch {
	case meta == nil && state == nil:
		id, err := coordination.NewTopicID()
		if err != nil {
			return fmt.Errorf("coordination/local: %w", err)
		}
		state = &diskState{ClusterID: id.String(), BrokerID: max(l.opts.BrokerID, 0)}
		writeMeta = true
		l.log.Info("new cluster", "cluster_id", state.ClusterID, "broker_id", state.BrokerID, "dir", l.dir)
	case state == nil:
		return fmt.Errorf("coordination/local: %s exists but %s does not: the cluster metadata was lost, or %s belongs to a Kafka broker (Strata cannot read Kafka's metadata)", metaPath, statePath, l.dir)
	case meta == nil:
		l.log.Warn("meta.properties missing; rewriting it from the cluster metadata", "path", metaPath)
		writeMeta = true
	case meta.ClusterID != state.ClusterID || meta.BrokerID != state.BrokerID:
		return fmt.Errorf("coordination/local: %s (cluster.id=%s, broker.id=%d) disagrees with %s (cluster %s, broker %d)",
			metaPath, meta.ClusterID, meta.BrokerID, statePath, state.ClusterID, state.BrokerID)
	}
	if l.opts.BrokerID >= 0 && l.opts.BrokerID != state.BrokerID {
		return fmt.Errorf("coordination/local: configured broker.id %d doesn't match stored broker.id %d in %s; if you moved your data, configure broker.id=%d; to start a new broker, empty %s",
			l.opts.BrokerID, state.BrokerID, metaPath, state.BrokerID, l.dir)
	}
	l.brokerID, l.clusterID = state.BrokerID, state.ClusterID
	self := l.opts.Advertised
	self.ID = l.brokerID
	l.brokers = []coordination.Broker{self}

	topics, err := l.topicsFromDisk(state)
	if err != nil {
		return fmt.Errorf("coordination/local: %s: %w", statePath, err)
	}
	// The broker coming back is a new leadership of every partition.
	for name, t := range topics {
		nt := *t
		nt.Partitions = slices.Clone(t.Partitions)
		for i := range nt.Partitions {
			nt.Partitions[i].LeaderEpoch++
		}
		topics[name] = &nt
	}
	l.nextPID = state.NextProducerID
	l.version = state.MetadataVersion
	// Files are created metadata first, so meta.properties never exists
	// without it (see the package doc).
	if err := l.commit(topics, l.nextPID); err != nil {
		return err
	}
	if writeMeta {
		if err := coordination.WriteAtomic(l.fs, l.dir, metaPropertiesFile, coordination.MetaProperties{BrokerID: l.brokerID, ClusterID: l.clusterID}.Encode()); err != nil {
			return fmt.Errorf("coordination/local: writing %s: %w", metaPath, err)
		}
	}
	return nil
}

// topicsFromDisk checks and converts the stored topics.
func (l *Local) topicsFromDisk(s *diskState) (map[string]*coordination.Topic, error) {
	topics := make(map[string]*coordination.Topic, len(s.Topics))
	ids := map[coordination.TopicID]string{}
	for _, dt := range s.Topics {
		if err := coordination.ValidateTopicName(dt.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if _, dup := topics[dt.Name]; dup {
			return nil, fmt.Errorf("%w: topic %s stored twice", errCorrupt, dt.Name)
		}
		id, err := coordination.ParseTopicID(dt.ID)
		if err != nil || id == (coordination.TopicID{}) {
			return nil, fmt.Errorf("%w: topic %s: bad id %q", errCorrupt, dt.Name, dt.ID)
		}
		if other, dup := ids[id]; dup {
			return nil, fmt.Errorf("%w: topics %s and %s share id %s", errCorrupt, other, dt.Name, dt.ID)
		}
		ids[id] = dt.Name
		if len(dt.Partitions) == 0 {
			return nil, fmt.Errorf("%w: topic %s has no partitions", errCorrupt, dt.Name)
		}
		t := &coordination.Topic{Name: dt.Name, ID: id, Internal: dt.Internal, Configs: dt.Configs}
		if len(t.Configs) == 0 {
			t.Configs = nil
		}
		for i, dp := range dt.Partitions {
			if len(dp.Replicas) == 0 {
				return nil, fmt.Errorf("%w: topic %s partition %d has no replicas", errCorrupt, dt.Name, i)
			}
			t.Partitions = append(t.Partitions, coordination.Partition{
				Index: int32(i), Replicas: dp.Replicas, ISR: dp.ISR, Leader: dp.Leader, LeaderEpoch: dp.LeaderEpoch,
			})
		}
		topics[dt.Name] = t
	}
	return topics, nil
}

// commit makes topics and nextPID the durable state, then the visible
// one, as a new metadata version; l.mu must be held (or l unpublished).
// A failed write is sticky: later changes fail too, since the file may
// hold either the old or the new state.
func (l *Local) commit(topics map[string]*coordination.Topic, nextPID int64) error {
	return l.write(topics, nextPID, true)
}

// write persists topics and nextPID; with publish it also makes them a new
// metadata version and wakes Changed's waiters. Producer id blocks are not
// part of a Snapshot, so reserving one publishes nothing.
func (l *Local) write(topics map[string]*coordination.Topic, nextPID int64, publish bool) error {
	if l.writeErr != nil {
		return l.writeErr
	}
	version := l.version
	if publish {
		version++
	}
	data, err := encodeState(&diskState{
		ClusterID: l.clusterID, BrokerID: l.brokerID, MetadataVersion: version,
		NextProducerID: nextPID, Topics: sortedTopics(topics),
	})
	if err == nil {
		err = coordination.WriteAtomic(l.fs, l.dir, metadataFile, data)
	}
	if err != nil {
		l.writeErr = fmt.Errorf("coordination/local: writing %s: %w (later changes are refused until the broker restarts)",
			filepath.Join(l.dir, metadataFile), err)
		return l.writeErr
	}
	l.topics, l.nextPID, l.version = topics, nextPID, version
	if !publish {
		return nil
	}
	snap := &coordination.Snapshot{
		ClusterID:    l.clusterID,
		ControllerID: l.brokerID,
		Brokers:      l.brokers,
		Topics:       make(map[string]*coordination.Topic, len(topics)),
		TopicsByID:   make(map[coordination.TopicID]*coordination.Topic, len(topics)),
		Version:      version,
	}
	for name, t := range topics {
		snap.Topics[name] = t
		snap.TopicsByID[t.ID] = t
	}
	l.snap.Store(snap)
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// begin takes l.mu for a change and checks l is usable; on error the lock
// is not held.
func (l *Local) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return coordination.ErrClosed
	}
	return nil
}

// BrokerID implements coordination.Coordinator.
func (l *Local) BrokerID() int32 { return l.brokerID }

// ClusterID returns the cluster id stored in meta.properties.
func (l *Local) ClusterID() string { return l.clusterID }

// Snapshot implements coordination.Coordinator. It stays readable after
// Close.
func (l *Local) Snapshot() *coordination.Snapshot { return l.snap.Load() }

// Changed implements coordination.Coordinator. Close does not close the
// channel: a waiter also watches its own context.
func (l *Local) Changed(version int64) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.version > version {
		return closedChan
	}
	return l.changed
}

// CreateTopic implements coordination.Coordinator. Checks run in Kafka's
// order: the name, whether the topic exists, a name that collides with an
// existing one once '.' and '_' are treated alike, the counts or the
// assignment, then the configs. A validateOnly result has a zero ID.
func (l *Local) CreateTopic(ctx context.Context, spec coordination.TopicSpec, validateOnly bool) (*coordination.Topic, error) {
	if err := coordination.ValidateTopicName(spec.Name); err != nil {
		return nil, err
	}
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	if err := coordination.CheckNewTopic(spec.Name, l.topics); err != nil {
		return nil, err
	}
	parts, err := l.newPartitions(spec)
	if err != nil {
		return nil, err
	}
	if err := coordination.ValidateConfigs(l.opts.ValidateTopicConfigs, spec.Configs); err != nil {
		return nil, err
	}
	t := &coordination.Topic{Name: spec.Name, Internal: spec.Internal, Partitions: parts, Configs: coordination.CloneConfigs(spec.Configs)}
	if validateOnly {
		return t, nil
	}
	for {
		if t.ID, err = coordination.NewTopicID(); err != nil {
			return nil, fmt.Errorf("coordination/local: %w", err)
		}
		if _, taken := l.snap.Load().TopicsByID[t.ID]; !taken {
			break
		}
	}
	topics := maps.Clone(l.topics)
	topics[t.Name] = t
	if err := l.commit(topics, l.nextPID); err != nil {
		return nil, err
	}
	l.log.Info("created topic", "topic", t.Name, "partitions", len(parts), "configs", t.Configs)
	return t, nil
}

// newPartitions returns the partitions of a new topic.
func (l *Local) newPartitions(spec coordination.TopicSpec) ([]coordination.Partition, error) {
	assignment, err := coordination.PlanTopic(spec, l.opts.DefaultPartitions, l.opts.DefaultReplicationFactor, l.brokers)
	if err != nil {
		return nil, err
	}
	return partitionsOf(0, assignment), nil
}

// partitionsOf builds partitions first, first+1, ... from an assignment.
// Every replica is on a live broker (this one), so all are in sync, and
// the preferred replica leads.
func partitionsOf(first int32, assignment [][]int32) []coordination.Partition {
	parts := make([]coordination.Partition, len(assignment))
	for i, replicas := range assignment {
		parts[i] = coordination.Partition{
			Index:    first + int32(i),
			Replicas: slices.Clone(replicas),
			ISR:      slices.Clone(replicas),
			Leader:   replicas[0],
		}
	}
	return parts
}

// DeleteTopic implements coordination.Coordinator. Whether a topic may be
// deleted (delete.topic.enable, internal topics) is the broker's policy.
func (l *Local) DeleteTopic(ctx context.Context, name string) error {
	if err := l.begin(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if _, ok := l.topics[name]; !ok {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	topics := maps.Clone(l.topics)
	delete(topics, name)
	if err := l.commit(topics, l.nextPID); err != nil {
		return err
	}
	l.log.Info("deleted topic", "topic", name)
	return nil
}

// CreatePartitions implements coordination.Coordinator. The count may
// only grow; new partitions get the topic's replication factor.
func (l *Local) CreatePartitions(ctx context.Context, name string, count int32, assignment [][]int32, validateOnly bool) error {
	if err := l.begin(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	cur := int32(len(t.Partitions))
	assignment, err := coordination.PlanPartitions(name, cur, count, len(t.Partitions[0].Replicas), assignment, l.brokers)
	if err != nil {
		return err
	}
	added := partitionsOf(cur, assignment)
	if validateOnly {
		return nil
	}
	nt := *t
	nt.Partitions = append(slices.Clip(t.Partitions), added...)
	topics := maps.Clone(l.topics)
	topics[name] = &nt
	if err := l.commit(topics, l.nextPID); err != nil {
		return err
	}
	l.log.Info("added partitions", "topic", name, "partitions", count)
	return nil
}

// AlterTopicConfig implements coordination.Coordinator.
func (l *Local) AlterTopicConfig(ctx context.Context, name string, configs map[string]string) error {
	if err := l.begin(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", coordination.ErrUnknownTopic, name)
	}
	if err := coordination.ValidateConfigs(l.opts.ValidateTopicConfigs, configs); err != nil {
		return err
	}
	nt := *t
	nt.Configs = coordination.CloneConfigs(configs)
	topics := maps.Clone(l.topics)
	topics[name] = &nt
	if err := l.commit(topics, l.nextPID); err != nil {
		return err
	}
	l.log.Info("altered topic configs", "topic", name, "configs", nt.Configs)
	return nil
}

// NextProducerIDBlock implements coordination.Coordinator. The block is
// durable before it is returned, so no id is handed out twice, even
// across a crash; a crash may skip the rest of a block.
func (l *Local) NextProducerIDBlock(ctx context.Context) (start, count int64, err error) {
	if err := l.begin(ctx); err != nil {
		return 0, 0, err
	}
	defer l.mu.Unlock()
	start, count = l.nextPID, l.opts.ProducerIDBlockSize
	if start > math.MaxInt64-count {
		return 0, 0, fmt.Errorf("coordination/local: producer ids exhausted")
	}
	if err := l.write(l.topics, start+count, false); err != nil {
		return 0, 0, err
	}
	return start, count, nil
}

// Close implements coordination.Coordinator: it releases the directory
// lock; later changes return ErrClosed.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.unlock()
	return nil
}
