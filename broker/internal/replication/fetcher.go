package replication

// The fetchers: one per leader broker copies the partitions this broker
// follows from that leader. It sends Fetch requests as a replica
// (replica_id set, v12, so each partition carries the epoch of the
// follower's last batch), hands the answers to the partitions, which
// append through their own engine (replicas of one partition may use
// different engines), truncate where the histories part, and keep the
// leader's high watermark. Its next fetch tells the leader how far it got.

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

	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/engine"
)

// replicaFetchVersion is the Fetch version followers send: v12 carries
// last_fetched_epoch and answers diverging_epoch, and names topics (v13
// names them by id).
const replicaFetchVersion = 12

// Follow makes p fetch from the leader st names (a new leader epoch of
// the same leader is taken at the fetcher's next request).
func (r *Replicator) Follow(p *partition.Partition, st *partition.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if f := r.following[p]; f != nil {
		if f.leader == st.LeaderID {
			f.add(p) // clears a delay: the state it waited for came
			return
		}
		r.removeLocked(p, f)
	}
	f := r.fetchers[st.LeaderID]
	if f == nil {
		f = newFetcher(r, st.LeaderID)
		r.fetchers[st.LeaderID] = f
		r.wg.Add(1)
		go f.run()
	}
	f.add(p)
	r.following[p] = f
}

// Unfollow stops fetching p.
func (r *Replicator) Unfollow(p *partition.Partition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.following[p]; f != nil {
		r.removeLocked(p, f)
	}
}

func (r *Replicator) removeLocked(p *partition.Partition, f *fetcher) {
	delete(r.following, p)
	if f.remove(p) == 0 {
		delete(r.fetchers, f.leader)
		f.stop()
	}
}

// StopFetchers stops every fetcher and waits for them; no partition is
// followed afterwards.
func (r *Replicator) StopFetchers() {
	r.mu.Lock()
	r.closed = true
	for _, f := range r.fetchers {
		f.stop()
	}
	r.fetchers, r.following = map[int32]*fetcher{}, map[*partition.Partition]*fetcher{}
	r.mu.Unlock()
	r.wg.Wait()
}

// fetcher copies the partitions this broker follows from one leader.
type fetcher struct {
	r      *Replicator
	leader int32

	mu    sync.Mutex
	parts map[*partition.Partition]time.Time // partition → not fetched before (a delay after an error)
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
	p  *partition.Partition
	at partition.Position
}

func newFetcher(r *Replicator, leader int32) *fetcher {
	ctx, cancel := context.WithCancel(r.ctx)
	return &fetcher{r: r, leader: leader, parts: map[*partition.Partition]time.Time{}, kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, asked: map[engine.TopicPartition]asked{}}
}

func (f *fetcher) add(p *partition.Partition) {
	f.mu.Lock()
	f.parts[p] = time.Time{}
	f.mu.Unlock()
	f.wake()
}

func (f *fetcher) remove(p *partition.Partition) int {
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
func (f *fetcher) delay(p *partition.Partition, d time.Duration) {
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
	r := f.r
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
				r.log.Warn("replica fetch failed; retrying", "leader", f.leader, "addr", f.addr, "err", err, "retry_in", backoff)
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
			r.log.Warn("replica fetch refused", "leader", f.leader, "err", kerr.ErrorForCode(resp.ErrorCode))
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
					r.log.Warn("replica fetch: partition", "partition", a.p.TP().String(), "leader", f.leader, "err", err)
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
	r := f.r
	now := time.Now()
	clear(f.asked)
	req := kmsg.NewPtrFetchRequest()
	req.Version = replicaFetchVersion
	req.ReplicaID = r.coord.BrokerID()
	req.MaxWaitMillis = int32(r.cfg.ReplicaFetchWaitMaxMs.Milliseconds())
	req.MinBytes = max(r.cfg.ReplicaFetchMinBytes, 1)
	req.MaxBytes = 64 << 20
	perPartition := r.cfg.ReplicaFetchMaxBytes
	if perPartition <= 0 {
		perPartition = 1 << 20 // 0 would fetch nothing: Kafka's default
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
		st := p.State()
		if st.Leader || st.LeaderID != f.leader {
			continue // the move is on its way through Follow/Unfollow
		}
		start, end, lastEpoch := p.FetchFrom()
		tp := p.TP()
		i, ok := topics[tp.Topic]
		if !ok {
			i = len(req.Topics)
			topics[tp.Topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.CurrentLeaderEpoch = st.LeaderEpoch
		rp.FetchOffset = end
		rp.LastFetchedEpoch = lastEpoch
		rp.LogStartOffset = start
		rp.PartitionMaxBytes = perPartition
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		f.asked[tp] = asked{p: p, at: partition.Position{Epoch: st.LeaderEpoch, Offset: end}}
	}
	if len(f.asked) == 0 {
		return nil, next
	}
	return req, next
}

// send sends req to the leader, connecting to its advertised address.
func (f *fetcher) send(req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	r := f.r
	addr := ""
	for _, br := range r.coord.Snapshot().Brokers {
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
			kgo.ClientID(fmt.Sprintf("strata-replica-%d", r.coord.BrokerID())),
			kgo.MaxVersions(versions),
			kgo.RequestTimeoutOverhead(r.cfg.ReplicaSocketTimeoutMs),
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
		return p.ReplicaOutOfRange(f.ctx, f.leader, a.at, rp)
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
		return p.TruncateDiverged(f.ctx, f.leader, a.at, rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset, rp.HighWatermark)
	}
	var err error
	f.batches, err = p.AppendReplica(f.ctx, f.leader, a.at, rp.RecordBatches, rp.HighWatermark, rp.LogStartOffset, f.batches[:0])
	clear(f.batches)
	return err
}
