package plugins

// The host side's log client: a Log forwards each engine.Log call to its
// handle in the plugin run it is open in, opens itself again in a
// restarted run, and keeps the offsets every write returns, so Offsets
// makes no call. Appends carry their batches in the run's shared region
// over a lane when they can (shmRegion, lanes), in an Append call
// otherwise.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// appendMessageBytes is where Engine logs split AppendBatches into several
// calls, below gRPC's default 4 MiB message limit.
const appendMessageBytes = 3 << 20

// Log is a log of a plugin's engine. Besides engine.Log it implements
// engine.BatchAppender, appending several batches in one round trip. Logs
// whose plugin-side log implements engine.Sizer implement it too.
type Log struct {
	e    *Engine
	tp   engine.TopicPartition
	opts engine.LogOptions

	// hmu guards the log's handle h in the plugin run p it is open in
	// (nil once closed); a call that finds the plugin restarted opens the
	// log again in the new run, under hmu.
	hmu sync.Mutex
	h   uint64
	p   atomic.Pointer[proc]

	// offsets caches the plugin log's offsets, as every write call
	// returns them, so Offsets never makes a call (the host is the
	// log's only writer).
	offMu      sync.Mutex
	start, end int64
	closed     atomic.Bool
}

var (
	_ engine.Log           = (*Log)(nil)
	_ engine.BatchAppender = (*Log)(nil)
)

func (l *Log) setOffsets(start, end int64) {
	l.offMu.Lock()
	l.start, l.end = start, end
	l.offMu.Unlock()
}

// handle returns the running plugin and the log's handle in it, opening
// the log there first if the plugin restarted since.
func (l *Log) handle(ctx context.Context) (*proc, uint64, error) {
	if l.closed.Load() {
		return nil, 0, l.e.errClosed()
	}
	p, err := l.e.proc()
	if err != nil {
		return nil, 0, err
	}
	if err := l.reopen(ctx, p); err != nil {
		return nil, 0, err
	}
	l.hmu.Lock()
	defer l.hmu.Unlock()
	return p, l.h, nil
}

// reopen opens the log in p if it is not open there yet, and takes the
// offsets p's engine recovered.
func (l *Log) reopen(ctx context.Context, p *proc) error {
	if l.p.Load() == p {
		return nil
	}
	l.hmu.Lock()
	defer l.hmu.Unlock()
	if l.p.Load() == p {
		return nil
	}
	if l.closed.Load() {
		return l.e.errClosed()
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := p.c.OpenLog(ctx, &enginepb.OpenLogRequest{Tp: tpToPB(l.tp), Opts: logOptionsToPB(l.opts)})
	if err != nil {
		return l.e.result(ctx, p, "OpenLog", err)
	}
	if l.closed.Load() {
		// Closed (or deleted) while it was being opened again, when
		// Close found no plugin to close it in: close it here.
		p.c.CloseLog(ctx, &enginepb.LogRequest{Handle: resp.GetHandle()})
		return l.e.errClosed()
	}
	l.h = resp.GetHandle()
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	l.p.Store(p)
	return nil
}

// Append implements engine.Log.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	_, err := l.AppendBatches(ctx, []engine.Batch{{Meta: meta, Data: batch}})
	return err
}

// AppendBatches implements engine.BatchAppender. It sends the batches in
// as few requests as keep each under a few MiB, with their bytes in the
// plugin's shared region when it has room, over a lane (see appendCall).
func (l *Log) AppendBatches(ctx context.Context, batches []engine.Batch) (int, error) {
	done := 0
	for done < len(batches) {
		n, err := l.appendCall(ctx, batches[done:])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// appendCall appends the first of batches that fit in one request (at
// least one) and returns how many went in. They are copied, with their
// metadata, into a span of the plugin run's shared region if it has one
// with room, and the request goes over a lane; otherwise they travel in
// an Append call. The span is free again when the call is over, or, if
// the call was given up while the plugin read it, when the plugin is done
// with it.
func (l *Log) appendCall(ctx context.Context, batches []engine.Batch) (int, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return 0, err
	}
	k, size := 0, 0
	for _, b := range batches {
		if k > 0 && size+len(b.Data) > appendMessageBytes {
			break
		}
		k++
		size += len(b.Data)
	}
	batches = batches[:k]
	req := &enginepb.AppendRequest{Handle: h}
	var span *shmSpan
	if r := p.region(l.e); r != nil {
		span = r.alloc(k*shmRecordBytes + size)
	}
	if span != nil {
		defer span.release()
		shmPut(span.data, batches)
		req.ShmSpan, req.ShmTag, req.ShmLength, req.ShmBatches = span.off, span.tag, uint64(len(span.data)), uint32(k)
	} else {
		req.Batches = make([]*enginepb.Batch, k)
		for i, b := range batches {
			req.Batches[i] = &enginepb.Batch{Meta: metaToPB(b.Meta), Data: b.Data}
		}
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	if span != nil {
		if n, err, ok := l.laneAppend(ctx, p, req); ok {
			return n, err
		}
	}
	resp, err := p.c.Append(ctx, req)
	if err != nil {
		n := 0
		if st, ok := grpcStatus(err); ok {
			for _, d := range st.Details() {
				if ae, ok := d.(*enginepb.AppendError); ok {
					n = int(ae.GetAppended())
					l.setOffsets(ae.GetStart(), ae.GetEnd())
				}
			}
		}
		return n, l.e.result(ctx, p, "Append", err)
	}
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	return k, nil
}

// laneAppend sends req over a lane of p's and returns how many batches
// went in; ok is false if p has no lane to spare, and req went nowhere.
func (l *Log) laneAppend(ctx context.Context, p *proc, req *enginepb.AppendRequest) (n int, err error, ok bool) {
	ln := p.lanes.get(func() (*lane, error) {
		lctx, cancel := l.e.callContext(context.Background())
		defer cancel()
		return openLane(lctx, p.c)
	})
	if ln == nil {
		return 0, nil, false
	}
	reply, fit, err := ln.call(ctx, req)
	p.lanes.put(ln, fit)
	if err != nil {
		// Short of ctx, only a dead plugin (or one that broke the
		// lane's framing, which is as bad) fails a lane.
		if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("plugins: Append: %w", cerr), true
		}
		l.e.lost(p)
		return 0, fmt.Errorf("%w: Append: %v", ErrUnavailable, err), true
	}
	if o := reply.GetOffsets(); o != nil {
		l.setOffsets(o.GetStart(), o.GetEnd())
	}
	if reply.GetError() == nil && reply.GetCode() == 0 {
		return int(req.GetShmBatches()), nil, true
	}
	st := status.New(codes.Code(reply.GetCode()), reply.GetError().GetMessage())
	if d := reply.GetError(); d != nil {
		if wd, err := st.WithDetails(d); err == nil {
			st = wd
		}
	}
	return int(reply.GetAppended()), l.e.result(ctx, p, "Append", st.Err()), true
}

// Read implements engine.Log. The chunks are the host's own memory, one
// per message the plugin sent; they need no Release (Pin is nil).
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return engine.Records{}, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	stream, err := p.c.Read(ctx, &enginepb.ReadRequest{Handle: h, From: from, MaxBytes: int64(maxBytes)})
	if err != nil {
		return engine.Records{}, l.e.result(ctx, p, "Read", err)
	}
	var recs engine.Records
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			l.e.lost(p)
			return engine.Records{}, fmt.Errorf("%w: Read: stream ended before its last message", ErrUnavailable)
		}
		if err != nil {
			return engine.Records{}, l.e.result(ctx, p, "Read", err)
		}
		if len(m.GetData()) > 0 {
			recs.Chunks = append(recs.Chunks, m.GetData())
		}
		if m.GetLast() {
			recs.NextOffset = m.GetNextOffset()
			return recs, nil
		}
	}
}

// Offsets implements engine.Log. It makes no call, but in the moment
// after a restart that it finds the log not yet open in the new process:
// it returns the offsets the plugin reported after the last write, or
// after the log was opened again in a restarted plugin.
func (l *Log) Offsets() (start, end int64) {
	if g := l.e.gen.Load(); g != 0 && !l.closed.Load() && (l.p.Load() == nil || l.p.Load().gen != g) {
		l.handle(context.Background()) // on failure, the last known offsets
	}
	l.offMu.Lock()
	defer l.offMu.Unlock()
	return l.start, l.end
}

func (l *Log) offsetCall(ctx context.Context, method string, to int64,
	call func(enginepb.EngineClient, context.Context, *enginepb.OffsetRequest, ...grpc.CallOption) (*enginepb.OffsetsResponse, error)) error {
	p, h, err := l.handle(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := call(p.c, ctx, &enginepb.OffsetRequest{Handle: h, Offset: to})
	if resp != nil {
		l.setOffsets(resp.GetStart(), resp.GetEnd())
	}
	return l.e.result(ctx, p, method, err)
}

// Truncate implements engine.Log.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "Truncate", to, enginepb.EngineClient.Truncate)
}

// DeleteBefore implements engine.Log.
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "DeleteBefore", to, enginepb.EngineClient.DeleteBefore)
}

// OffsetForTime implements engine.Log.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := p.c.OffsetForTime(ctx, &enginepb.OffsetRequest{Handle: h, Offset: ts})
	if err != nil {
		return 0, l.e.result(ctx, p, "OffsetForTime", err)
	}
	return resp.GetOffset(), nil
}

// Sync implements engine.Log.
func (l *Log) Sync(ctx context.Context) error {
	p, h, err := l.handle(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	_, err = p.c.Sync(ctx, &enginepb.LogRequest{Handle: h})
	return l.e.result(ctx, p, "Sync", err)
}

// Close implements engine.Log. It closes the log in the plugin run it is
// open in (a run that died has nothing left to close).
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.e.mu.Lock()
	delete(l.e.logs, l)
	l.e.mu.Unlock()
	l.hmu.Lock()
	p, h := l.p.Swap(nil), l.h
	l.hmu.Unlock()
	if p == nil || l.e.closed.Load() {
		return nil
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	_, err := p.c.CloseLog(ctx, &enginepb.LogRequest{Handle: h})
	if err = l.e.result(ctx, p, "CloseLog", err); errors.Is(err, ErrUnavailable) {
		return nil
	}
	return err
}

// sizerLog is a Log whose plugin-side log implements engine.Sizer.
type sizerLog struct{ *Log }

var _ engine.Sizer = sizerLog{}

// Size implements engine.Sizer. It returns -1 if the call fails (the
// plugin died or the log is closed).
func (l sizerLog) Size() int64 {
	p, h, err := l.handle(context.Background())
	if err != nil {
		return -1
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	resp, err := p.c.Size(ctx, &enginepb.LogRequest{Handle: h})
	if err != nil {
		l.e.result(ctx, p, "Size", err)
		return -1
	}
	return resp.GetSize()
}
