package broker

// InitProducerId (key 22): versions 0–5.
//
//   - Served: idempotent producers (transactional_id null). Producer ids come
//     from blocks that coordination reserves for this broker
//     (Coordinator.NextProducerIDBlock: blocks never overlap, across brokers
//     and restarts), handed out in order by one allocator per broker; a new
//     id starts at epoch 0. From v3 (KIP-360), a request that carries the
//     producer id and epoch the client has been using gets the same id with
//     the epoch bumped by one, so the client resets its sequence numbers
//     under a new epoch (the partitions fence the old one: package partition)
//     without spending an id; a client at epoch 32767 gets a new id at epoch
//     0 instead. Kafka hands an idempotent producer a new id on every request
//     and bumps only transactional ids this way; franz-go and the Java client
//     bump an idempotent producer's epoch locally (KIP-360) and ask only near
//     the epoch's end, so the difference shows only to clients that ask.
//     Nothing proves the id is the caller's own (Kafka keeps no record of
//     idempotent ids either): a client that bumps another client's id fences
//     that client, which then bumps again. producer_id and producer_epoch
//     must both be -1 or both be set, as Kafka requires (INVALID_REQUEST
//     otherwise). If no block can be reserved the answer is
//     COORDINATOR_LOAD_IN_PROGRESS, retriable, as Kafka answers while its
//     producer id manager waits for a block.
//   - Left out: transactions. A request with a transactional_id is answered
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED. The coordinator errors
//     (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
//     COORDINATOR_LOAD_IN_PROGRESS) are retriable: every client retries them
//     until its own timeout and the user learns nothing. INVALID_REQUEST
//     fails at once in the Java client and franz-go, but librdkafka retries
//     it every 500 ms until init_transactions times out.
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED is fatal in all of them (Java's
//     TransactionalIdAuthorizationException, a librdkafka fatal error,
//     non-retriable in franz-go and kafka-python), and it is true as far as
//     it goes: this broker authorises no transactional id. The broker logs
//     why.

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idempotence is the producer id allocator; the zero value is ready to
// use. (The producer-state clock is the partitions': partition.Manager.)
type idempotence struct {
	mu        sync.Mutex
	next, end int64 // the unused rest of the current block: [next, end)
}

// allocateProducerID returns an unused producer id, reserving a new block first if
// the current one is used up.
func (b *Broker) allocateProducerID(ctx context.Context) (int64, error) {
	x := &b.idem
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.next >= x.end {
		start, count, err := b.coord.NextProducerIDBlock(ctx)
		if err != nil {
			return -1, err
		}
		if start < 0 || count < 1 || start > math.MaxInt64-count {
			return -1, fmt.Errorf("broker: coordination reserved the producer id block [%d, +%d)", start, count)
		}
		x.next, x.end = start, start+count
	}
	id := x.next
	x.next++
	return id, nil
}

func handleInitProducerID(ctx context.Context, c *conn, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		c.b.log.Info("InitProducerId with a transactional id refused: transactions are not supported",
			"transactional_id", *req.TransactionalID)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	id, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		id, epoch = req.ProducerID, req.ProducerEpoch
	}
	switch {
	case id == -1 && epoch == -1:
	case id < 0 || epoch < 0:
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case epoch < math.MaxInt16:
		// KIP-360: the client's own id at the next epoch.
		resp.ProducerID, resp.ProducerEpoch = id, epoch+1
		return resp
	}
	// A new producer, or an epoch that cannot grow: a new id.
	id, err := c.b.allocateProducerID(ctx)
	if err != nil {
		c.b.log.Warn("no producer id block", "err", err)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
