package partition

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// Settings is what the data path needs of a topic's resolved config.
type Settings struct {
	Engine          string // strata.engine (default log.engine)
	Log             engine.LogOptions
	MaxMessageBytes int32 // max.message.bytes (default message.max.bytes)
	LogAppendTime   bool  // message.timestamp.type=LogAppendTime
	MinInsync       int32 // min.insync.replicas
}

// State is a partition's leadership and settings; replaced whole when the
// metadata or the topic config changes, never changed in place.
type State struct {
	Leader      bool  // this broker leads
	LeaderID    int32 // the leader; -1 for none
	LeaderEpoch int32
	ISR         []int32 // in-sync replicas
	Replicas    []int32
	Settings    Settings
}

// Partition is one partition log this broker holds.
//
// Lock order: appendMu, then replMu, then notifyMu. appendMu serialises
// everything that changes the log (appends, the follower's copies and
// truncations, retention, and the manager's DeleteLog and Close), as the
// engine contract requires one appender per log; reads take no partition
// lock.
type Partition struct {
	tp      engine.TopicPartition
	topicID coordination.TopicID
	log     engine.Log // nil when openErr is set
	openErr error
	key     engineKey // where the log lives

	state  atomic.Pointer[State]
	m      *Manager // the manager that opened it
	me     int32    // this broker
	logger *slog.Logger

	// epochs is the leader-epoch cache (epochs.go); changed under
	// appendMu.
	epochs *leaderEpochs
	// hw is the high watermark (leader.go): the leader's, or as a
	// follower the leader's last told, bounded by the log end.
	hw atomic.Int64
	// replMu guards lead, the followers' positions while this broker
	// leads (leader.go).
	replMu sync.Mutex
	lead   *leadership

	// queueMu guards the group commit of appends (append.go): whether a
	// caller is appending, and the callers queued behind it.
	queueMu   sync.Mutex
	appending bool
	queue     []*appendJob

	appendMu sync.Mutex
	closed   bool // under appendMu: the log was closed or deleted
	// producers is the idempotent producers' state (producers.go), under
	// appendMu; nil until the first append after the log opened rebuilds
	// it from the log's tail.
	producers *producerStates

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every append

	// maxTime caches the batch with the largest timestamp, for
	// ListOffsets -3; computed on first use, kept up to date by appends.
	maxTimeMu sync.Mutex
	maxTime   *maxTimestamp
}

// maxTimestamp is the batch holding the log's largest timestamp.
type maxTimestamp struct {
	ts        int64
	batchBase int64 // the batch's base offset
	end       int64 // the log's end offset when computed
}

func newPartition(tp engine.TopicPartition, id coordination.TopicID, key engineKey, l engine.Log, st *State) *Partition {
	p := &Partition{tp: tp, topicID: id, key: key, log: l, notify: make(chan struct{})}
	p.state.Store(st)
	return p
}

// TP is the partition's topic and index.
func (p *Partition) TP() engine.TopicPartition { return p.tp }

// Log is the partition's log; nil when it failed to open (Manager.Leader
// then answers why).
// Changes go through the partition, which serialises them; readers may
// read it directly.
func (p *Partition) Log() engine.Log { return p.log }

// EngineName is the name of the engine that keeps the log.
func (p *Partition) EngineName() string { return p.key.name }

// LogDir is the log dir the log lives in.
func (p *Partition) LogDir() string { return p.key.dir }

// State is the partition's current leadership and settings.
func (p *Partition) State() *State { return p.state.Load() }

// WaitChan returns a channel that is closed at the next append (or when
// the partition closes). Take it before reading, so an append between the
// read and the wait is not missed.
func (p *Partition) WaitChan() <-chan struct{} {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	return p.notify
}

// wake wakes every waiter of WaitChan.
func (p *Partition) wake() {
	p.notifyMu.Lock()
	close(p.notify)
	p.notify = make(chan struct{})
	p.notifyMu.Unlock()
}

// HighWatermark is the offset below which records are committed (every
// in-sync replica has them) and visible to consumers.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// observeAppend keeps the max-timestamp cache current after an append.
func (p *Partition) observeAppend(meta engine.BatchMeta) {
	p.maxTimeMu.Lock()
	defer p.maxTimeMu.Unlock()
	if p.maxTime == nil || meta.BaseOffset != p.maxTime.end {
		p.maxTime = nil // not computed, or out of step: recompute on use
		return
	}
	if meta.MaxTimestamp > p.maxTime.ts {
		p.maxTime.ts = meta.MaxTimestamp
		p.maxTime.batchBase = meta.BaseOffset
	}
	p.maxTime.end = meta.LastOffset + 1
}

// EngineDir is the directory of the engine instance that keeps the log.
func (p *Partition) EngineDir() string { return p.key.path() }

// QueuedAppends is how many appends wait behind the one under way (group
// commit); for tests and metrics.
func (p *Partition) QueuedAppends() int {
	p.queueMu.Lock()
	defer p.queueMu.Unlock()
	return len(p.queue)
}

// RemembersProducer reports whether the idempotent producers' state holds
// producer id (false before the state is first rebuilt); for tests.
func (p *Partition) RemembersProducer(id int64) bool {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if p.producers == nil {
		return false
	}
	_, ok := p.producers.m[id]
	return ok
}
