package broker

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// topicSettings is what the data path needs of a topic's resolved config.
type topicSettings struct {
	engine          string // strata.engine (default log.engine)
	log             engine.LogOptions
	maxMessageBytes int32 // max.message.bytes (default message.max.bytes)
	logAppendTime   bool  // message.timestamp.type=LogAppendTime
	minInsync       int32 // min.insync.replicas
}

// partState is a partition's leadership and settings; replaced whole when
// the metadata or the topic config changes.
type partState struct {
	leader      bool  // this broker leads
	leaderID    int32 // the leader; -1 for none
	leaderEpoch int32
	isr         []int32 // in-sync replicas
	replicas    []int32
	settings    topicSettings
}

// partition is one partition log this broker holds.
//
// Lock order: appendMu, then notifyMu. appendMu serialises everything that
// changes the log (Append, and the DeleteLog and Close of the partition
// manager), as the engine contract requires one appender per log; reads take
// no broker lock.
type partition struct {
	tp      engine.TopicPartition
	topicID coordination.TopicID
	log     engine.Log // nil when openErr is set
	openErr error
	key     engineKey // where the log lives

	state  atomic.Pointer[partState]
	me     int32 // this broker
	logger *slog.Logger

	// epochs is the leader-epoch cache (epochs.go); changed under
	// appendMu.
	epochs *leaderEpochs
	// hw is the high watermark (replica.go): the leader's, or as a
	// follower the leader's last told, bounded by the log end.
	hw atomic.Int64
	// replMu guards lead, the followers' positions while this broker
	// leads (replica.go).
	replMu sync.Mutex
	lead   *leadership

	// queueMu guards the group commit of appends (produce.go): whether
	// a caller is appending, and the callers queued behind it.
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

func newPartition(tp engine.TopicPartition, id coordination.TopicID, key engineKey, l engine.Log, st *partState) *partition {
	p := &partition{tp: tp, topicID: id, key: key, log: l, notify: make(chan struct{})}
	p.state.Store(st)
	return p
}

// waitChan returns a channel that is closed at the next append (or when
// the partition closes). Take it before reading, so an append between the
// read and the wait is not missed.
func (p *partition) waitChan() <-chan struct{} {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	return p.notify
}

// wake wakes every waiter of waitChan.
func (p *partition) wake() {
	p.notifyMu.Lock()
	close(p.notify)
	p.notify = make(chan struct{})
	p.notifyMu.Unlock()
}

// highWatermark is the offset below which records are committed (every
// in-sync replica has them) and visible to consumers.
func (p *partition) highWatermark() int64 { return p.hw.Load() }

// observeAppend keeps the max-timestamp cache current after an append.
func (p *partition) observeAppend(meta engine.BatchMeta) {
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
