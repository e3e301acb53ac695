package broker

// Replication, the followers' side: one fetcher per leader broker copies
// the partitions this broker follows from that leader. It sends Fetch
// requests as a replica (replica_id set, v12, so each partition carries
// the epoch of the follower's last batch), appends the batches through
// the partition's own engine (replicas of one partition may use different
// engines), and keeps the leader's high watermark. Its next fetch tells
// the leader how far it got.
//
// Truncation: when the epoch of a follower's last batch is not one the
// leader's history has up to that offset, the leader answers with a
// diverging epoch (its largest epoch at or below the follower's, and
// where that epoch ends in its log). The follower truncates to the end of
// that epoch in its own log, or to the leader's end of it if smaller, and
// fetches again, which checks again: it never cuts more than where the
// histories part. A follower behind the leader's log start starts over
// there; one ahead of the leader's log with no epoch to compare (a leader
// elected uncleanly) truncates to the leader's high watermark.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strata-broker/strata/engine"
)

// replicaFetchVersion is the Fetch version followers send: v12 carries
// last_fetched_epoch and answers diverging_epoch, and names topics (v13
// names them by id).
const replicaFetchVersion = 12

// replication runs the fetchers.
type replication struct {
	b *Broker

	mu        sync.Mutex
	closed    bool
	fetchers  map[int32]*fetcher      // by leader
	following map[*partition]*fetcher // which fetcher copies a partition
	wg        sync.WaitGroup
}

func newReplication(b *Broker) *replication {
	return &replication{b: b, fetchers: map[int32]*fetcher{}, following: map[*partition]*fetcher{}}
}

// follow makes p fetch from the leader st names (a new leader epoch of
// the same leader is taken at the fetcher's next request).
func (r *replication) follow(p *partition, st *partState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if f := r.following[p]; f != nil {
		if f.leader == st.leaderID {
			f.add(p) // clears a delay: the state it waited for came
			return
		}
		r.removeLocked(p, f)
	}
	f := r.fetchers[st.leaderID]
	if f == nil {
		f = newFetcher(r, st.leaderID)
		r.fetchers[st.leaderID] = f
		r.wg.Add(1)
		go f.run()
	}
	f.add(p)
	r.following[p] = f
}

// unfollow stops fetching p.
func (r *replication) unfollow(p *partition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.following[p]; f != nil {
		r.removeLocked(p, f)
	}
}

func (r *replication) removeLocked(p *partition, f *fetcher) {
	delete(r.following, p)
	if f.remove(p) == 0 {
		delete(r.fetchers, f.leader)
		f.stop()
	}
}

// close stops every fetcher and waits for them.
func (r *replication) close() {
	r.mu.Lock()
	r.closed = true
	for _, f := range r.fetchers {
		f.stop()
	}
	r.fetchers, r.following = map[int32]*fetcher{}, map[*partition]*fetcher{}
	r.mu.Unlock()
	r.wg.Wait()
}

// fetcher copies the partitions this broker follows from one leader.
type fetcher struct {
	r      *replication
	leader int32

	mu    sync.Mutex
	parts map[*partition]time.Time // partition → not fetched before (a delay after an error)
	kick  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc

	// Fetch loop only.
	cl       *kgo.Client
	addr     string
	batches  []engine.Batch
	asked    map[engine.TopicPartition]asked
	failures int
}

// asked is what a fetch asked for one partition.
type asked struct {
	p      *partition
	epoch  int32 // the leader epoch the follower knew
	offset int64
}

func newFetcher(r *replication, leader int32) *fetcher {
	ctx, cancel := context.WithCancel(r.b.serveCtx)
	return &fetcher{r: r, leader: leader, parts: map[*partition]time.Time{}, kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, asked: map[engine.TopicPartition]asked{}}
}

func (f *fetcher) add(p *partition) {
	f.mu.Lock()
	f.parts[p] = time.Time{}
	f.mu.Unlock()
	f.wake()
}

func (f *fetcher) remove(p *partition) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.parts, p)
	return len(f.parts)
}

func (f *fetcher) stop() { f.cancel() }

func (f *fetcher) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// delay keeps p out of the fetches for d (its leader said it is not, or
// not yet, the leader this broker thinks it is; the metadata will tell).
func (f *fetcher) delay(p *partition, d time.Duration) {
	f.mu.Lock()
	if _, ok := f.parts[p]; ok {
		f.parts[p] = time.Now().Add(d)
	}
	f.mu.Unlock()
}

func (f *fetcher) run() {
	defer f.r.wg.Done()
	defer func() {
		if f.cl != nil {
			f.cl.Close()
		}
	}()
	b := f.r.b
	for f.ctx.Err() == nil {
		req, next := f.request()
		if req == nil {
			wait := time.Hour
			if !next.IsZero() {
				wait = time.Until(next)
			}
			t := time.NewTimer(wait)
			select {
			case <-f.ctx.Done():
			case <-f.kick:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		resp, err := f.send(req)
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.failures++
			backoff := min(time.Duration(f.failures)*100*time.Millisecond, time.Second)
			if f.failures == 1 || f.failures%50 == 0 {
				b.log.Warn("replica fetch failed; retrying", "leader", f.leader, "addr", f.addr, "err", err, "retry_in", backoff)
			}
			t := time.NewTimer(backoff)
			select {
			case <-f.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		f.failures = 0
		if resp.ErrorCode != 0 {
			b.log.Warn("replica fetch refused", "leader", f.leader, "err", kerr.ErrorForCode(resp.ErrorCode))
			f.sleep(time.Second)
			continue
		}
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			for j := range rt.Partitions {
				rp := &rt.Partitions[j]
				a, ok := f.asked[engine.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}]
				if !ok {
					continue
				}
				if err := f.apply(a, rp); err != nil && f.ctx.Err() == nil {
					b.log.Warn("replica fetch: partition", "partition", a.p.tp.String(), "leader", f.leader, "err", err)
					f.delay(a.p, time.Second)
				}
			}
		}
	}
}

func (f *fetcher) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
	case <-t.C:
	}
}

// request builds the next fetch, or returns nil and when the first delayed
// partition may be fetched again (zero: none is waiting).
func (f *fetcher) request() (*kmsg.FetchRequest, time.Time) {
	b := f.r.b
	now := time.Now()
	clear(f.asked)
	req := kmsg.NewPtrFetchRequest()
	req.Version = replicaFetchVersion
	req.ReplicaID = b.coord.BrokerID()
	req.MaxWaitMillis = int32(b.cfg.ReplicaFetchWaitMaxMs.Milliseconds())
	req.MinBytes = max(b.cfg.ReplicaFetchMinBytes, 1)
	req.MaxBytes = 64 << 20
	perPartition := b.cfg.ReplicaFetchMaxBytes
	if perPartition <= 0 {
		perPartition = 1 << 20
	}
	var next time.Time
	topics := map[string]int{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, until := range f.parts {
		if until.After(now) {
			if next.IsZero() || until.Before(next) {
				next = until
			}
			continue
		}
		st := p.state.Load()
		if st.leader || st.leaderID != f.leader {
			continue // the move is on its way through follow/unfollow
		}
		start, end := p.log.Offsets()
		i, ok := topics[p.tp.Topic]
		if !ok {
			i = len(req.Topics)
			topics[p.tp.Topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.tp.Partition
		rp.CurrentLeaderEpoch = st.leaderEpoch
		rp.FetchOffset = end
		rp.LastFetchedEpoch = p.epochs.latest()
		rp.LogStartOffset = start
		rp.PartitionMaxBytes = perPartition
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		f.asked[p.tp] = asked{p: p, epoch: st.leaderEpoch, offset: end}
	}
	if len(f.asked) == 0 {
		return nil, next
	}
	return req, next
}

// send sends req to the leader, connecting to its advertised address.
func (f *fetcher) send(req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	b := f.r.b
	addr := ""
	for _, br := range b.coord.Snapshot().Brokers {
		if br.ID == f.leader {
			addr = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("leader %d is not a live broker", f.leader)
	}
	if f.cl == nil || addr != f.addr {
		if f.cl != nil {
			f.cl.Close()
		}
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(req.Key(), replicaFetchVersion)
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(addr),
			kgo.ClientID(fmt.Sprintf("strata-replica-%d", b.coord.BrokerID())),
			kgo.MaxVersions(versions),
			kgo.RequestTimeoutOverhead(b.cfg.ReplicaSocketTimeoutMs),
			kgo.DialTimeout(5*time.Second),
		)
		if err != nil {
			return nil, err
		}
		f.cl, f.addr = cl, addr
	}
	seeds := f.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("no connection to the leader")
	}
	resp, err := seeds[0].Request(f.ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.FetchResponse), nil
}

// apply takes one partition's answer.
func (f *fetcher) apply(a asked, rp *kmsg.FetchResponseTopicPartition) error {
	p := a.p
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		return p.replicaOutOfRange(f.ctx, f.leader, a, rp)
	case errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.FencedLeaderEpoch),
		errors.Is(err, kerr.UnknownLeaderEpoch), errors.Is(err, kerr.UnknownTopicOrPartition),
		errors.Is(err, kerr.KafkaStorageError):
		// The leader has not seen the new state yet, or this
		// broker has not: wait for the metadata.
		f.delay(p, 200*time.Millisecond)
		return nil
	default:
		return err
	}
	if rp.DivergingEpoch.Epoch >= 0 || rp.DivergingEpoch.EndOffset >= 0 {
		return p.truncateDiverged(f.ctx, f.leader, a, rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset, rp.HighWatermark)
	}
	var err error
	f.batches, err = p.appendReplica(f.ctx, f.leader, a, rp.RecordBatches, rp.HighWatermark, rp.LogStartOffset, f.batches[:0])
	clear(f.batches)
	return err
}

// follows reports whether p still follows leader at the epoch a fetch
// asked with (under appendMu): an answer to an older question is dropped.
func (p *partition) follows(leader int32, a asked) bool {
	st := p.state.Load()
	return !p.closed && !st.leader && st.leaderID == leader && st.leaderEpoch == a.epoch
}

// appendReplica appends the batches a leader sent and takes its high
// watermark and log start offset.
func (p *partition) appendReplica(ctx context.Context, leader int32, a asked, data []byte, hw, leaderStart int64, batches []engine.Batch) ([]engine.Batch, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, a) {
		return batches, nil
	}
	start, end := p.log.Offsets()
	if end != a.offset {
		return batches, nil // the log changed since the fetch was sent
	}
	latest := p.epochs.latest()
	for rest := data; len(rest) > 0; {
		h, err := engine.ParseBatchHeader(rest)
		if err != nil || h.Size() > len(rest) {
			break // a cut batch at the end of the answer: fetched again
		}
		raw := rest[:h.Size()]
		rest = rest[h.Size():]
		if h.LastOffset() < end {
			continue
		}
		if h.BaseOffset != end {
			return batches, fmt.Errorf("leader sent a batch at %d, the log ends at %d", h.BaseOffset, end)
		}
		if _, err := engine.CheckBatch(raw); err != nil {
			return batches, fmt.Errorf("leader sent a corrupt batch at %d: %w", h.BaseOffset, err)
		}
		if h.PartitionLeaderEpoch > latest {
			if err := p.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
				return batches, err
			}
			latest = h.PartitionLeaderEpoch
		}
		batches = append(batches, engine.Batch{Meta: h.Meta(), Data: raw})
		end = h.LastOffset() + 1
	}
	if len(batches) > 0 {
		// The idempotent producers' state is rebuilt from the log when
		// this replica leads.
		p.forgetDerived()
		n, err := engine.AppendBatches(ctx, p.log, batches)
		if err != nil {
			_, e := p.log.Offsets()
			_ = p.epochs.truncateFromEnd(e)
			if n == 0 {
				return batches, err
			}
		}
	}
	if leaderStart > start {
		if _, end := p.log.Offsets(); leaderStart <= end {
			if err := p.log.DeleteBefore(ctx, leaderStart); err != nil {
				return batches, err
			}
			_ = p.epochs.truncateFromStart(leaderStart)
		}
	}
	_, end = p.log.Offsets()
	p.hw.Store(min(max(hw, 0), end))
	if len(batches) > 0 {
		p.wake()
	}
	return batches, nil
}

// truncateDiverged cuts the log where it parts from the leader's: the
// leader's history has epoch up to endOffset.
func (p *partition) truncateDiverged(ctx context.Context, leader int32, a asked, epoch int32, endOffset, hw int64) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, a) {
		return nil
	}
	_, end := p.log.Offsets()
	to := end
	switch {
	case epoch < 0 || endOffset < 0:
		// The leader has no epoch at or below ours: keep what is
		// committed.
		to = min(end, max(hw, 0))
	default:
		e, mine := p.epochs.endOffsetFor(epoch, end)
		if e == epoch {
			to = min(mine, endOffset)
		} else {
			to = min(mine, end) // the next fetch compares again
		}
		if mine < 0 {
			to = min(endOffset, end)
		}
	}
	return p.truncateTo(ctx, to)
}

// replicaOutOfRange handles a fetch offset outside the leader's log: below
// its start the follower starts over there; above its end (a leader
// elected without this follower's last records) it truncates to the
// leader's high watermark.
func (p *partition) replicaOutOfRange(ctx context.Context, leader int32, a asked, rp *kmsg.FetchResponseTopicPartition) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.follows(leader, a) {
		return nil
	}
	start, end := p.log.Offsets()
	switch {
	case rp.LogStartOffset >= 0 && end < rp.LogStartOffset:
		if err := p.log.DeleteBefore(ctx, rp.LogStartOffset); err != nil {
			return err
		}
		p.forgetDerived()
		p.hw.Store(rp.LogStartOffset)
		return p.epochs.clearAll()
	case rp.HighWatermark >= 0 && rp.HighWatermark < end && rp.HighWatermark >= start:
		return p.truncateTo(ctx, rp.HighWatermark)
	}
	return fmt.Errorf("offset %d out of the leader's range (start %d, high watermark %d)", end, rp.LogStartOffset, rp.HighWatermark)
}

// truncateTo cuts the log to offset to (under appendMu). Also when it
// cuts nothing, epochs that begin at or past the log end go: a leadership
// of this replica's that wrote no batch leaves an epoch with no records,
// which its next leader does not know and which would otherwise be
// answered with the same divergence again and again.
func (p *partition) truncateTo(ctx context.Context, to int64) error {
	_, end := p.log.Offsets()
	if to >= end {
		return p.epochs.truncateFromEnd(end)
	}
	if err := p.log.Truncate(ctx, to); err != nil {
		return err
	}
	_, end = p.log.Offsets()
	p.forgetDerived()
	if p.hw.Load() > end {
		p.hw.Store(end)
	}
	p.logger.Info("truncated to where the leader's history parts", "partition", p.tp.String(), "offset", end)
	return p.epochs.truncateFromEnd(end)
}
