package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// engineKey names one engine instance: an engine name opened on one log
// directory. Its state lives in <log dir>/<engine name>, or in
// <log dir>/plugin-<name> for the plugin engine plugin:<name>.
type engineKey struct {
	dir  string // one of log.dirs
	name string // a registered engine name, or plugin:<name>
}

func (k engineKey) path() string { return filepath.Join(k.dir, engineDir(k.name)) }

// engineDir is the name of the directory of an engine's state.
func engineDir(name string) string {
	if ref, ok := strings.CutPrefix(name, config.PluginScheme); ok {
		// A name after config.Load; a program's path only in a
		// Config assembled by hand.
		return "plugin-" + filepath.Base(ref)
	}
	return name
}

// engineNames returns the engines whose state may be in a log dir: the
// registered ones and the declared plugins.
func (m *Manager) engineNames() []string {
	names := engine.Names()
	for _, p := range m.cfg.PluginNames() {
		names = append(names, config.PluginScheme+p)
	}
	return names
}

// Options configure a Manager.
type Options struct {
	// Config is the broker's configuration: log.dirs, the engine and
	// plugin keys, the topic defaults, producer.id.expiration.ms and
	// log.retention.check.interval.ms are read from it.
	Config config.Config
	// Coordinator holds the cluster metadata the manager follows.
	// Required.
	Coordinator coordination.Coordinator
	// Replication starts and stops the copying of followed partitions
	// and changes ISRs (package replication). Required.
	Replication Replication
	// Logger receives the manager's logs.
	Logger *slog.Logger
	// Context ends the manager's background work (metadata changes are
	// applied with it) when the broker shuts down.
	Context context.Context
}

// Replication is what the partitions need of the replication layer:
// package replication implements it, and the broker wires it in.
type Replication interface {
	// Follow makes p copy from the leader st names; called at every
	// state change of a partition this broker follows.
	Follow(p *Partition, st *State)
	// Unfollow stops copying p.
	Unfollow(p *Partition)
	// ExpandISR writes isr, st's ISR with a follower that caught up
	// added, as p's leader at st's epoch, and then calls p.ISRChanged;
	// it does not block its caller (a fetch).
	ExpandISR(p *Partition, st *State, isr []int32)
}

// Manager is the partition manager: it follows the coordination snapshots
// and keeps open the logs of the partitions this broker holds, deleting the
// logs of deleted topics.
//
// Reconciliation runs on the watch goroutine and, synchronously, in the
// handlers that changed the metadata (CreateTopics, DeleteTopics,
// auto-creation) and in lookups that find a partition the snapshot has but
// the manager has not opened yet — so a client that created a topic can
// produce to it at once. reconcileMu serialises reconciliation; mu guards
// the maps read by the data path.
type Manager struct {
	cfg   config.Config
	coord coordination.Coordinator
	repl  Replication
	log   *slog.Logger
	ctx   context.Context
	// clock is the producer-state clock (SetProducerClock); nil:
	// time.Now.
	clock atomic.Pointer[func() time.Time]
	// retention is the retention loop (retention.go).
	retention *retainer

	reconcileMu sync.Mutex
	applied     int64 // snapshot version reconciled last

	mu      sync.RWMutex
	parts   map[engine.TopicPartition]*Partition
	engines map[engineKey]engine.Engine
	// located is where a log was found on disk at start-up, so a
	// partition reopens where its data is.
	located map[engine.TopicPartition]engineKey
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// Open finds the logs already on disk, opens those of the partitions this
// broker holds, and starts following the metadata and the retention loop.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	m := &Manager{
		cfg:     opts.Config,
		coord:   opts.Coordinator,
		repl:    opts.Replication,
		log:     opts.Logger,
		ctx:     opts.Context,
		applied: -1,
		parts:   map[engine.TopicPartition]*Partition{},
		engines: map[engineKey]engine.Engine{},
		located: map[engine.TopicPartition]engineKey{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := m.scan(ctx); err != nil {
		m.closeEngines()
		return nil, err
	}
	snap := m.coord.Snapshot()
	m.reconcile(ctx, snap)
	_, cluster := m.coord.(coordination.Registrar)
	for tp, key := range m.located {
		if m.parts[tp] != nil {
			continue
		}
		if cluster && !snap.Unreadable[tp.Topic] {
			// The topic was deleted while this broker was away, or
			// deleted and created again on other brokers (a new
			// topic of the same name must never take this log): the
			// cluster has no place for this log here, so it goes, as
			// Kafka deletes stray partitions.
			if err := m.deleteStray(ctx, tp, key); err != nil {
				m.log.Error("deleting a log the cluster does not assign to this broker", "partition", tp.String(), "dir", key.path(), "err", err)
			}
			continue
		}
		m.log.Warn("log on disk that no topic assigned to this broker claims; left alone", "partition", tp.String(), "dir", key.path())
	}
	go m.watch()
	m.retention = m.startRetention()
	return m, nil
}

// scan opens every engine whose directory exists under a log dir and
// records where each log lives.
func (m *Manager) scan(ctx context.Context) error {
	for _, dir := range m.cfg.LogDirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("partition: log dir: %w", err)
		}
		names := m.engineNames()
		if entries, err := os.ReadDir(dir); err == nil {
			for _, ent := range entries {
				if ent.IsDir() && strings.HasPrefix(ent.Name(), "plugin-") &&
					!slices.ContainsFunc(names, func(n string) bool { return engineDir(n) == ent.Name() }) {
					m.log.Warn("log dir holds the state of a plugin engine that no strata.plugins.<name>.path declares; left alone",
						"dir", filepath.Join(dir, ent.Name()))
				}
			}
		}
		for _, name := range names {
			key := engineKey{dir: dir, name: name}
			if fi, err := os.Stat(key.path()); err != nil || !fi.IsDir() {
				continue
			}
			e, err := m.engine(ctx, key)
			if err != nil {
				return err
			}
			tps, err := e.Logs(ctx)
			if err != nil {
				return fmt.Errorf("partition: listing the logs of %s: %w", key.path(), err)
			}
			for _, tp := range tps {
				if prev, dup := m.located[tp]; dup {
					return fmt.Errorf("partition: the log of %s is in both %s and %s", tp, prev.path(), key.path())
				}
				m.located[tp] = key
			}
		}
	}
	return nil
}

// deleteStray deletes a log the cluster does not assign to this broker.
func (m *Manager) deleteStray(ctx context.Context, tp engine.TopicPartition, key engineKey) error {
	e, err := m.engine(ctx, key)
	if err != nil {
		return err
	}
	if err := e.DeleteLog(ctx, tp); err != nil && !errors.Is(err, engine.ErrLogNotFound) {
		return err
	}
	delete(m.located, tp)
	if err := removeLeaderEpochs(key.dir, tp); err != nil {
		return err
	}
	m.log.Info("deleted a log the cluster does not assign to this broker (its topic was deleted, or moved, while the broker was away)", "partition", tp.String(), "dir", key.path())
	return nil
}

// engine returns the engine instance of key, opening it on first use.
func (m *Manager) engine(ctx context.Context, key engineKey) (engine.Engine, error) {
	m.mu.RLock()
	e, ok := m.engines[key]
	m.mu.RUnlock()
	if ok {
		return e, nil
	}
	opts := m.cfg.EngineOptions()
	opts.Logger = m.log
	e, err := engine.Open(ctx, key.name, key.path(), opts)
	if err != nil {
		return nil, fmt.Errorf("partition: opening engine %s in %s: %w", key.name, key.path(), err)
	}
	m.mu.Lock()
	m.engines[key] = e
	m.mu.Unlock()
	return e, nil
}

// watch reconciles on every metadata change until close.
func (m *Manager) watch() {
	defer close(m.done)
	for {
		snap := m.coord.Snapshot()
		select {
		case <-m.coord.Changed(snap.Version):
		case <-m.stop:
			return
		}
		m.reconcile(m.ctx, m.coord.Snapshot())
	}
}

// Sync reconciles with the newest snapshot if it is newer than the one
// applied last, and returns the snapshot.
func (m *Manager) Sync(ctx context.Context) *coordination.Snapshot {
	snap := m.coord.Snapshot()
	m.reconcile(ctx, snap)
	return snap
}

// Get returns the partition tp if this broker holds it, reconciling first
// if the newest snapshot has not been applied.
func (m *Manager) Get(ctx context.Context, tp engine.TopicPartition) *Partition {
	m.mu.RLock()
	p := m.parts[tp]
	m.mu.RUnlock()
	if p != nil {
		return p
	}
	m.Sync(ctx)
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.parts[tp]
}

// All returns the open partitions.
func (m *Manager) All() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		out = append(out, p)
	}
	return out
}

// reconcile opens, updates, closes and deletes logs so that the open
// partitions are exactly those snap assigns to this broker.
func (m *Manager) reconcile(ctx context.Context, snap *coordination.Snapshot) {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	if snap.Version <= m.applied {
		return
	}
	m.mu.RLock()
	closed := m.closed
	current := maps.Clone(m.parts)
	m.mu.RUnlock()
	if closed {
		return
	}
	me := m.coord.BrokerID()

	want := map[engine.TopicPartition]struct{}{}
	for _, t := range snap.Topics {
		var settings Settings
		var settingsErr error
		resolved := false
		for _, sp := range t.Partitions {
			if sp.Leader != me && !slices.Contains(sp.Replicas, me) {
				continue
			}
			tp := engine.TopicPartition{Topic: t.Name, Partition: sp.Index}
			want[tp] = struct{}{}
			if !resolved {
				settings, settingsErr = ResolveTopic(&m.cfg, t.Configs)
				resolved = true
			}
			st := newPartState(me, &sp, settings)
			if p := current[tp]; p != nil {
				switch {
				case p.topicID == t.ID && p.openErr == nil:
					m.stateChanged(p, p.state.Swap(st), st)
					continue
				case p.topicID == t.ID:
					// Its log failed to open: try again with the new
					// metadata (a corrected config, say).
					m.drop(ctx, p, false)
				default:
					// The topic was deleted and created again under the
					// same name: the old log goes with the old topic.
					m.drop(ctx, p, true)
				}
			}
			p := m.open(ctx, t, tp, st, settingsErr)
			m.mu.Lock()
			m.parts[tp] = p
			m.mu.Unlock()
			m.stateChanged(p, nil, st)
		}
	}
	for tp, p := range current {
		if _, ok := want[tp]; ok {
			continue
		}
		if snap.Unreadable[tp.Topic] {
			continue // the topic exists; what it says is unknown
		}
		// The topic was deleted, or this broker is no longer one of
		// the partition's replicas (it was reassigned): the log goes.
		m.drop(ctx, p, true)
	}
	m.applied = snap.Version
}

// open opens the log of tp, or returns a partition that reports the
// failure to clients.
func (m *Manager) open(ctx context.Context, t *coordination.Topic, tp engine.TopicPartition, st *State, settingsErr error) *Partition {
	fail := func(err error) *Partition {
		m.log.Error("partition unavailable", "partition", tp.String(), "err", err)
		p := newPartition(tp, t.ID, engineKey{}, nil, st)
		p.openErr = fmt.Errorf("%w: %w", kafkaerr.ErrPartitionUnavailable, err)
		return p
	}
	if settingsErr != nil {
		return fail(settingsErr)
	}
	key, found := m.located[tp]
	if found && key.name != st.Settings.Engine {
		m.log.Warn("partition log is kept by another engine than its topic config names; using the existing log",
			"partition", tp.String(), "engine", key.name, "configured", st.Settings.Engine)
	}
	if !found {
		key = m.place(st.Settings.Engine)
	}
	e, err := m.engine(ctx, key)
	if err != nil {
		return fail(err)
	}
	l, err := e.OpenLog(ctx, tp, st.Settings.Log)
	if err != nil {
		return fail(err)
	}
	m.located[tp] = key
	p := newPartition(tp, t.ID, key, l, st)
	p.m, p.me, p.logger = m, m.coord.BrokerID(), m.log
	if p.epochs, err = openLeaderEpochs(ctx, key.dir, tp, l, p.walkBatches); err != nil {
		l.Close()
		return fail(err)
	}
	// The high watermark starts at the log start; it moves up when this
	// replica leads (to what its in-sync replicas hold) or hears from its
	// leader.
	start, _ := l.Offsets()
	p.hw.Store(start)
	return p
}

// place picks the log dir for a new log: the one holding the fewest
// partitions, as Kafka does.
func (m *Manager) place(engineName string) engineKey {
	count := map[string]int{}
	for _, key := range m.located {
		count[key.dir]++
	}
	best := m.cfg.LogDirs[0]
	for _, dir := range m.cfg.LogDirs[1:] {
		if count[dir] < count[best] {
			best = dir
		}
	}
	return engineKey{dir: best, name: engineName}
}

// drop closes a partition's log, deleting its data if del.
func (m *Manager) drop(ctx context.Context, p *Partition, del bool) {
	m.mu.Lock()
	if m.parts[p.tp] == p {
		delete(m.parts, p.tp)
	}
	m.mu.Unlock()
	if p.log == nil {
		return
	}
	m.repl.Unfollow(p)
	p.endLeadership()
	p.appendMu.Lock()
	p.closed = true
	var err error
	if del {
		var e engine.Engine
		if e, err = m.engine(ctx, p.key); err == nil {
			err = e.DeleteLog(ctx, p.tp)
		}
		err = errors.Join(err, removeLeaderEpochs(p.key.dir, p.tp))
		delete(m.located, p.tp)
		m.log.Info("deleted partition log", "partition", p.tp.String(), "err", err)
	} else {
		err = p.log.Close()
	}
	p.appendMu.Unlock()
	p.wake()
	if err != nil && !errors.Is(err, engine.ErrLogNotFound) {
		m.log.Error("closing partition log", "partition", p.tp.String(), "delete", del, "err", err)
	}
}

// Close stops following the metadata and the retention loop, and syncs
// and closes every log and engine.
func (m *Manager) Close() error {
	m.retention.close()
	close(m.stop)
	<-m.done
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	m.mu.Lock()
	m.closed = true
	parts := m.parts
	m.parts = map[engine.TopicPartition]*Partition{}
	m.mu.Unlock()
	var errs []error
	for _, p := range parts {
		if p.log == nil {
			continue
		}
		p.appendMu.Lock()
		p.closed = true
		if err := p.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("partition: closing %s: %w", p.tp, err))
		}
		p.appendMu.Unlock()
		p.wake()
	}
	errs = append(errs, m.closeEngines())
	return errors.Join(errs...)
}

func (m *Manager) closeEngines() error {
	m.mu.Lock()
	engines := m.engines
	m.engines = map[engineKey]engine.Engine{}
	m.mu.Unlock()
	var errs []error
	for key, e := range engines {
		if err := e.Close(); err != nil {
			errs = append(errs, fmt.Errorf("partition: closing engine %s: %w", key.path(), err))
		}
	}
	return errors.Join(errs...)
}

// SetProducerClock makes the producer checks take the time from now
// instead of time.Now (tests drive producer expiration with it).
func (m *Manager) SetProducerClock(now func() time.Time) { m.clock.Store(&now) }

// producerClock is the time and expiration the producer checks use.
func (m *Manager) producerClock() producerClock {
	now := time.Now
	if f := m.clock.Load(); f != nil {
		now = *f
	}
	return producerClock{now: now(), expiration: m.cfg.ProducerIDExpirationMs}
}

// Errors of Leader, without allocation.
var (
	errNotLeader = &kafkaerr.Error{Code: kerr.NotLeaderForPartition.Code,
		Msg: "NOT_LEADER_OR_FOLLOWER: this broker does not lead the partition"}
	errUnknownPartition = &kafkaerr.Error{Code: kerr.UnknownTopicOrPartition.Code,
		Msg: "UNKNOWN_TOPIC_OR_PARTITION: no such topic or partition"}
	errFencedEpoch = &kafkaerr.Error{Code: kerr.FencedLeaderEpoch.Code,
		Msg: "FENCED_LEADER_EPOCH: the request's leader epoch is older than the partition's"}
	errUnknownEpoch = &kafkaerr.Error{Code: kerr.UnknownLeaderEpoch.Code,
		Msg: "UNKNOWN_LEADER_EPOCH: the request's leader epoch is newer than the partition's"}
)

// Leader is the one answer to "is tp a partition I lead": the partition
// and its state when this broker leads it and currentEpoch (a client's
// current leader epoch; -1: not given) is the partition's. Otherwise an
// error with its Kafka code (kafkaerr.Code): UNKNOWN_TOPIC_OR_PARTITION if
// no such partition exists, NOT_LEADER_OR_FOLLOWER if another broker leads
// it (or holds it), KAFKA_STORAGE_ERROR if its log failed to open (wrapping
// kafkaerr.ErrPartitionUnavailable), FENCED_LEADER_EPOCH or
// UNKNOWN_LEADER_EPOCH for an older or newer currentEpoch. It reconciles
// with the newest metadata first when the manager does not hold tp yet.
// The returned state is the one the answer was decided on; it allocates
// nothing.
func (m *Manager) Leader(ctx context.Context, tp engine.TopicPartition, currentEpoch int32) (*Partition, *State, error) {
	p := m.Get(ctx, tp)
	if p == nil {
		return nil, nil, m.missing(tp)
	}
	if p.openErr != nil {
		return nil, nil, p.openErr
	}
	st := p.state.Load()
	switch {
	case !st.Leader:
		return nil, nil, errNotLeader
	case currentEpoch < 0 || currentEpoch == st.LeaderEpoch:
		return p, st, nil
	case currentEpoch < st.LeaderEpoch:
		return nil, nil, errFencedEpoch
	default:
		return nil, nil, errUnknownEpoch
	}
}

// missing is the error for a partition this broker does not hold:
// NOT_LEADER if it exists elsewhere, UNKNOWN_TOPIC_OR_PARTITION if not at
// all.
func (m *Manager) missing(tp engine.TopicPartition) error {
	if t := m.coord.Snapshot().Topics[tp.Topic]; t != nil {
		for _, sp := range t.Partitions {
			if sp.Index == tp.Partition {
				return errNotLeader
			}
		}
	}
	return errUnknownPartition
}
