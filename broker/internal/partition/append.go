package partition

// The append path of a partition this broker leads: idempotent producers'
// checks (producers.go), offsets assigned by patching the validated
// batches' headers in place (batch.go), and the partition's one appender,
// which appends the requests queued meanwhile together (group commit).

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/engine"
)

// AppendResult is what a partition's append answers.
type AppendResult struct {
	Base       int64 // the first batch's base offset (its original one if a duplicate)
	Last       int64 // the last offset the request's batches hold
	Start      int64 // the log start offset
	AppendTime int64 // LogAppendTime topics: the first batch's append time; else -1
}

// appendJob is one caller's batches for a partition, appended together
// with the jobs of other callers that queued while the partition was busy.
type appendJob struct {
	batches     []Batch
	leaderEpoch int32
	appendTime  int64
	pc          producerClock
	res         AppendResult
	err         error
	appended    bool          // some of its batches reached the log
	wake        chan struct{} // closed when done, or when it leads
	leads       bool          // woken to append the queue
}

// Append checks the batches of idempotent producers, assigns offsets to
// the batches that are not retried duplicates and appends them, as the
// partition's one appender, leading at st's epoch (st is the state the
// caller's checks saw, from Manager.Leader): if leadership moved since,
// the answer is NOT_LEADER_OR_FOLLOWER and nothing is appended. On
// LogAppendTime topics the batches get the append time. If a producer
// check fails it returns a *kafkaerr.Error, with res.Start set, and
// appends nothing.
//
// Appends of concurrent callers are grouped (group commit): while one
// caller appends, the next ones queue, and the first of them appends the
// whole queue at once, in one engine.AppendBatches, so a plugin's log pays
// one round trip for all of them. An append alone takes no queue.
func (p *Partition) Append(ctx context.Context, st *State, batches []Batch) (AppendResult, error) {
	leaderEpoch, appendTime, pc := st.LeaderEpoch, int64(-1), p.m.producerClock()
	if st.Settings.LogAppendTime {
		appendTime = time.Now().UnixMilli()
	}
	// A request whose client went away still appends what it validated:
	// stopping half-way through a request's batches would help no one.
	ctx = context.WithoutCancel(ctx)
	p.queueMu.Lock()
	if !p.appending {
		p.appending = true
		p.queueMu.Unlock()
		j := jobPool.Get().(*appendJob)
		*j = appendJob{batches: batches, leaderEpoch: leaderEpoch, appendTime: appendTime, pc: pc}
		jobs := [1]*appendJob{j}
		p.appendJobs(ctx, jobs[:])
		p.handOff()
		res, err := j.res, j.err
		*j = appendJob{}
		jobPool.Put(j)
		return res, err
	}
	j := &appendJob{batches: batches, leaderEpoch: leaderEpoch, appendTime: appendTime, pc: pc, wake: make(chan struct{})}
	p.queue = append(p.queue, j)
	p.queueMu.Unlock()
	<-j.wake
	if !j.leads {
		return j.res, j.err
	}
	p.queueMu.Lock()
	jobs := p.queue
	p.queue = nil
	p.queueMu.Unlock()
	p.appendJobs(ctx, jobs)
	p.handOff()
	for _, o := range jobs {
		if o != j {
			close(o.wake)
		}
	}
	return j.res, j.err
}

// jobPool holds the jobs of appends that take no queue.
var jobPool = sync.Pool{New: func() any { return new(appendJob) }}

// handOff ends an appender's turn: the first queued caller appends the
// queue next, or the partition is idle.
func (p *Partition) handOff() {
	p.queueMu.Lock()
	defer p.queueMu.Unlock()
	if len(p.queue) == 0 {
		p.appending = false
		return
	}
	next := p.queue[0]
	next.leads = true
	close(next.wake)
}

// appendJobs appends jobs in order, their new batches in one
// AppendBatches, and sets each job's result.
func (p *Partition) appendJobs(ctx context.Context, jobs []*appendJob) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	fail := func(err error) {
		for _, j := range jobs {
			if j.err == nil {
				j.err = err
			}
		}
	}
	if p.closed {
		fail(engine.ErrClosed)
		return
	}
	// Leadership may have moved since the callers looked: a follower's
	// log takes only its leader's batches.
	st := p.state.Load()
	for _, j := range jobs {
		if !st.Leader || st.LeaderEpoch != j.leaderEpoch {
			j.err = &kafkaerr.Error{Code: kerr.NotLeaderForPartition.Code, Msg: "leadership moved"}
		}
	}
	if st.Leader && p.epochs.latest() < st.LeaderEpoch {
		// becomeLeader records the epoch; this covers an append that
		// gets here first.
		_, end := p.log.Offsets()
		if err := p.epochs.assign(st.LeaderEpoch, end); err != nil {
			fail(err)
			return
		}
	}
	if p.producers == nil {
		var err error
		if p.producers, err = loadProducers(ctx, p.log, jobs[0].pc.now); err != nil {
			fail(err)
			return
		}
	}
	start, end := p.log.Offsets()
	defer func() {
		// A leader alone in its ISR commits at once (also what a failed
		// append may have written).
		moved := p.advanceHW()
		for _, j := range jobs {
			moved = moved || j.appended
		}
		if moved {
			p.wake()
		}
	}()
	// One job's single batch, the common case, goes straight to Append.
	single := len(jobs) == 1 && len(jobs[0].batches) == 1
	var pending []engine.Batch
	var pendingJob []*appendJob
	var pendingAt []int
	for _, j := range jobs {
		j.res.Start, j.res.Last = start, -1
		var dups []*producerBatch
		for i := range j.batches {
			if j.batches[i].h.ProducerID >= 0 {
				var perr *kafkaerr.Error
				if dups, perr = p.producers.check(j.batches, end, start, j.appendTime, j.pc); perr != nil {
					j.err = perr
				}
				p.producers.sweep(j.pc, start)
				break
			}
		}
		if j.err != nil {
			continue
		}
		for i := range j.batches {
			if dups != nil && dups[i] != nil {
				d := dups[i]
				if i == 0 {
					j.res.Base, j.res.AppendTime = d.baseOffset, -1
					if j.appendTime >= 0 {
						j.res.AppendTime = d.maxTimestamp
					}
				}
				j.res.Last = max(j.res.Last, d.lastOffset)
				continue
			}
			meta := patchBatch(&j.batches[i], end, j.leaderEpoch, j.appendTime)
			end = meta.LastOffset + 1
			// Recorded before the append, so the next job's checks
			// see this job's batches; a failed append forgets the
			// state (forgetDerived).
			if h := &j.batches[i].h; h.ProducerID >= 0 {
				p.producers.record(h, meta, j.pc.now)
			}
			if single {
				if err := p.log.Append(ctx, meta, j.batches[i].b); err != nil {
					p.forgetDerived()
					j.err = err
					return
				}
				p.appended(j, i, meta)
				continue
			}
			pending = append(pending, engine.Batch{Meta: meta, Data: j.batches[i].b})
			pendingJob = append(pendingJob, j)
			pendingAt = append(pendingAt, i)
		}
	}
	if len(pending) > 0 {
		n, err := engine.AppendBatches(ctx, p.log, pending)
		for k := range n {
			p.appended(pendingJob[k], pendingAt[k], pending[k].Meta)
		}
		if err != nil {
			p.forgetDerived()
			// The job of the failed batch and every job after it
			// fail; the ones before it are whole.
			for _, j := range pendingJob[n:] {
				if j.err == nil {
					j.err = err
				}
			}
		}
	}
	start, _ = p.log.Offsets()
	for _, j := range jobs {
		if j.err == nil {
			j.res.Start = start
		}
	}
}

// appended records batch i of job j, appended with meta.
func (p *Partition) appended(j *appendJob, i int, meta engine.BatchMeta) {
	j.appended = true
	p.observeAppend(meta)
	if i == 0 {
		j.res.Base, j.res.AppendTime = meta.BaseOffset, j.appendTime
	}
	j.res.Last = meta.LastOffset
}

// forgetDerived forgets what the partition derives from its log's tail
// (under appendMu): the idempotent producers' state and the max-timestamp
// cache, rebuilt from the log on next use. After a failed append whether
// the batch reached the log is unknown (a plugin that died mid-call may
// have written it), so a retry of the batch is then found to be a
// duplicate if it is one; a follower's log changes under it by its
// leader's batches and by truncation.
func (p *Partition) forgetDerived() {
	p.producers = nil
	p.maxTimeMu.Lock()
	p.maxTime = nil
	p.maxTimeMu.Unlock()
}
