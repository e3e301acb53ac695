package broker

// ControlledShutdown (key 7): versions 0–3.
//
//   - Served: the controller answers with the partitions the broker still
//     leads once it moved the others' leadership (coordination.Replication);
//     another broker answers NOT_CONTROLLER. A broker's own controlled
//     shutdown, which sends this request, is replication.ControlledShutdown.
//   - Left out: the broker epoch (v2+, KIP-380) is not checked.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/kafkaerr"
	"github.com/strata-broker/strata/coordination"
)

func handleControlledShutdown(ctx context.Context, c *conn, req *kmsg.ControlledShutdownRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ControlledShutdownResponse)
	r, ok := c.b.coord.(coordination.Replication)
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	remaining, err := r.ControlledShutdown(ctx, req.BrokerID)
	if err != nil {
		resp.ErrorCode = kafkaerr.Code(err)
		return resp
	}
	for _, p := range remaining {
		rp := kmsg.NewControlledShutdownResponsePartitionsRemaining()
		rp.Topic, rp.Partition = p.Topic, p.Partition
		resp.PartitionsRemaining = append(resp.PartitionsRemaining, rp)
	}
	return resp
}
